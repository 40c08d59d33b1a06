"""A conversation driven turn by turn: the Python API a call session (or ``chat``) uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from voiceagent.dialog import actions as act
from voiceagent.dialog.account import Account
from voiceagent.dialog.engine import CallContext, DialogState, step
from voiceagent.dialog.events import Dtmf, Event, Hangup, Heard, NoInput, Start
from voiceagent.dialog.model import Dialplan
from voiceagent.dialog.state import dynamic, terms_of


@dataclass(frozen=True, slots=True)
class Turn:
    """One line of the transcript."""

    speaker: str
    """``agent`` or ``debtor``."""
    text: str


class Conversation:
    """Holds one call's dialog state; each method feeds one event and returns the actions."""

    def __init__(self, plan: Dialplan, account: Account, today: date) -> None:
        self.ctx = CallContext.create(plan, account, today)
        self.state = DialogState()
        self.transcript: list[Turn] = []

    @property
    def ended(self) -> bool:
        """Whether the call is over (hung up, transferred or closed)."""
        return self.state.ended

    def _feed(self, event: Event) -> list[act.Action]:
        self.state, actions = step(self.ctx, self.state, event)
        for a in actions:
            if isinstance(a, act.Say):
                self.transcript.append(Turn("agent", a.text))
        return actions

    def start(self) -> list[act.Action]:
        """The call is answered."""
        return self._feed(Start())

    def hear(self, text: str) -> list[act.Action]:
        """The debtor said ``text``."""
        self.transcript.append(Turn("debtor", text))
        return self._feed(Heard(text))

    def silence(self) -> list[act.Action]:
        """The debtor said nothing before the timeout."""
        self.transcript.append(Turn("debtor", "<silence>"))
        return self._feed(NoInput())

    def dtmf(self, digits: str) -> list[act.Action]:
        """The debtor pressed keys."""
        self.transcript.append(Turn("debtor", f"<dtmf {digits}>"))
        return self._feed(Dtmf(digits))

    def hangup(self) -> list[act.Action]:
        """The debtor hung up."""
        return self._feed(Hangup())

    def prompts_ahead(self) -> list[tuple[tuple[str, bool], ...]]:
        """Every prompt that could be said with what the call knows now, rendered as parts.

        A speech layer renders these ahead of time (the confirmation of a promise the debtor
        is still agreeing to); most were rendered before and cost nothing.
        """
        st, r = self.state, self.ctx.renderer
        values = dynamic(self.ctx, st)
        if st.pending == "confirm" and st.draft_date is not None:
            # A read-back is waiting for "yes": the confirmation will use the same values.
            if st.draft_amount is not None:
                values.setdefault("promise_amount", r.money(st.draft_amount))
                values.setdefault("promise_date", r.date(st.draft_date))
            if st.draft_time is not None:
                at = datetime.combine(st.draft_date, st.draft_time)
                values.setdefault("callback_when", r.when(at))
        return r.known_parts(terms_of(self.ctx, st), **values)

    def outcome(self) -> dict[str, Any]:
        """The call's result, promise and callback as JSON-ready values."""
        st = self.state
        promise = None
        if st.promise is not None:
            amount = st.promise.amount
            promise = {
                "date": st.promise.due.isoformat(),
                "amount": int(amount) if amount == amount.to_integral() else float(amount),
                "currency": st.promise.currency,
                "plan": st.promise.plan,
            }
        callback: datetime | None = st.callback_at
        return {
            "result": st.result or ("hangup" if st.spoken else "no_answer"),
            "promise": promise,
            "callback_at": callback.isoformat(timespec="minutes") if callback else None,
        }
