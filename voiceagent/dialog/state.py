"""What one conversation knows: the fixed call context and the evolving dialog state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from decimal import Decimal

from voiceagent.dialog import actions as act
from voiceagent.dialog.account import Account
from voiceagent.dialog.model import RESULTS, Dialplan, StateBase
from voiceagent.dialog.policy import Terms, terms_for
from voiceagent.dialog.prompts import PromptRenderer
from voiceagent.nlu import Understander, Understanding, understander_for

# A later result replaces the call's result only if it ranks at least as high.
_RANK = {r: i for i, r in enumerate(reversed(RESULTS))}
_RANK.update({"no_answer": -2, "hangup": -1})


@dataclass(frozen=True)
class CallContext:
    """Everything fixed for one call: plan, account, day and the derived offer terms."""

    plan: Dialplan
    account: Account
    today: date
    terms: Terms
    hardship_terms: Terms
    renderer: PromptRenderer
    nlu: Understander

    @classmethod
    def create(cls, plan: Dialplan, account: Account, today: date) -> CallContext:
        """Build the context; raises MissingAccountField before any word is said."""
        terms = terms_for(plan.offers, account, today)
        return cls(
            plan=plan,
            account=account,
            today=today,
            terms=terms,
            hardship_terms=terms_for(plan.offers, account, today, hardship=True),
            renderer=PromptRenderer(plan, account, terms),
            nlu=understander_for(plan.dialplan.locale),
        )


@dataclass(frozen=True)
class DialogState:
    """Where one conversation stands (immutable; ``step`` returns a new one)."""

    state: str = ""
    verified: bool = False
    hardship: bool = False
    no_input: int = 0
    no_match: int = 0
    attempts: int = 0
    counters: int = 0
    return_to: str | None = None
    pending: str | None = None
    """``confirm``, ``counter_date`` or ``counter_amount`` inside a promise or callback state."""
    draft_date: date | None = None
    draft_amount: Decimal | None = None
    draft_time: time | None = None
    counter_date: date | None = None
    """The latest date the agent offered instead of the debtor's."""
    counter_amount: Decimal | None = None
    """The minimum amount the agent offered instead of the debtor's."""
    promise: act.RecordPromise | None = None
    callback_at: datetime | None = None
    result: str | None = None
    ended: bool = False
    spoken: bool = False
    """Whether the debtor has said anything at all (silence to the end is ``no_answer``)."""
    last_says: tuple[act.Say, ...] = ()
    trace: tuple[str, ...] = field(default=())
    """Why each transition happened (rule ids, intents), for explanations."""


Out = list[act.Action]


def state_of(ctx: CallContext, name: str) -> StateBase:
    """The dialplan state called ``name``."""
    return ctx.plan.states[name]


def terms_of(ctx: CallContext, st: DialogState) -> Terms:
    """Today's offer terms (the hardship ones once the debtor said they cannot pay)."""
    return ctx.hardship_terms if st.hardship else ctx.terms


def with_result(st: DialogState, result: str) -> DialogState:
    """Set the call result unless a stronger one is already set."""
    if st.result is None or _RANK[result] >= _RANK[st.result]:
        return replace(st, result=result)
    return st


def say(ctx: CallContext, st: DialogState, out: Out, prompt_id: str, **dyn: str) -> None:
    """Append a rendered prompt to the actions."""
    prompt = ctx.plan.prompt(prompt_id)
    parts = ctx.renderer.render_parts(prompt_id, terms_of(ctx, st), **dyn)
    text = "".join(piece for piece, _ in parts)
    out.append(
        act.Say(text=text, prompt_id=prompt_id, interruptible=prompt.interruptible, parts=parts)
    )


def dynamic(ctx: CallContext, st: DialogState) -> dict[str, str]:
    """Call-time values for prompts that the load checks allow to use them."""
    dyn: dict[str, str] = {}
    if st.promise is not None:
        dyn["promise_amount"] = ctx.renderer.money(st.promise.amount)
        dyn["promise_date"] = ctx.renderer.date(st.promise.due)
    if st.callback_at is not None:
        dyn["callback_when"] = ctx.renderer.when(st.callback_at)
    return dyn


def merge_slots(st: DialogState, u: Understanding | None) -> DialogState:
    """Keep the date, amount and time an utterance gave (earlier values stay otherwise)."""
    if u is None:
        return st
    return replace(
        st,
        draft_date=u.date or st.draft_date,
        draft_amount=u.amount if u.amount is not None else st.draft_amount,
        draft_time=u.time or st.draft_time,
    )
