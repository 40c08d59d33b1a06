"""The dialog engine: a pure ``step(ctx, state, event) -> (state, actions)``.

No I/O, no clock, no randomness: the call's "today" lives in the context. Side effects come
back as actions in the order they must happen; a CRM write always precedes the words about it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time

from voiceagent.dialog import actions as act
from voiceagent.dialog.events import Dtmf, Event, Hangup, Heard, NoInput, Start
from voiceagent.dialog.model import (
    BranchState,
    CallbackState,
    ChoiceState,
    EndState,
    PromiseState,
    StateBase,
    VerifyState,
)
from voiceagent.dialog.policy import judge
from voiceagent.dialog.state import (
    CallContext,
    DialogState,
    Out,
    dynamic,
    merge_slots,
    say,
    state_of,
    terms_of,
    with_result,
)
from voiceagent.nlu import Understanding
from voiceagent.nlu.lexicon import fold

__all__ = ["CallContext", "DialogState", "step"]

_MAX_HOPS = 50  # `next` chains longer than this are a dialplan loop


def step(ctx: CallContext, st: DialogState, event: Event) -> tuple[DialogState, Out]:
    """Advance the conversation by one event."""
    out: Out = []
    if st.ended:
        return st, out
    if isinstance(event, Start):
        st = _enter(ctx, st, ctx.plan.start, out, None)
    elif isinstance(event, Hangup):
        st = replace(with_result(st, "hangup"), ended=True)
    elif isinstance(event, NoInput):
        st = _fallback(ctx, st, "no_input", out)
    elif isinstance(event, Dtmf):
        st = _on_dtmf(ctx, st, event.digits, out)
    elif isinstance(event, Heard):
        u = ctx.nlu.understand(event.text, ctx.today, ctx.account.amount_owed)
        st = _on_heard(ctx, replace(st, spoken=True), u, out)
    says = tuple(a for a in out if isinstance(a, act.Say))
    if says:
        st = replace(st, last_says=says)
    return st, out


def _branch(ctx: CallContext, st: DialogState, state: BranchState) -> str:
    terms = terms_of(ctx, st)
    holds = {
        "settlement_available": terms.settlement_amount is not None,
        "installments_available": terms.installments_max > 1,
        "has_email": bool(ctx.account.email),
        "has_due_date": ctx.account.due_date is not None,
        "hardship": st.hardship,
    }
    for case in state.cases:
        if holds[case.if_]:
            return case.goto
    return state.otherwise


def _entry_actions(ctx: CallContext, state: StateBase, out: Out) -> act.Transfer | None:
    transfer = None
    for item in state.do:
        if isinstance(item, str):
            out.append(act.RecordFlag(flag=item.removeprefix("record_")))
        elif "send_slip" in item:
            out.append(act.SendSlip(channel=item["send_slip"]))
        else:
            transfer = act.Transfer(target=item["transfer"])
    return transfer


def _enter(
    ctx: CallContext, st: DialogState, name: str, out: Out, u: Understanding | None
) -> DialogState:
    """Enter a state: entry actions, prompts, and any `next` chain."""
    for _ in range(_MAX_HOPS):
        if name == "$repeat":
            out.extend(st.last_says)
            return st
        if name == "$return":
            return _resume(ctx, st, out)
        state = state_of(ctx, name)
        if name != st.state:
            st = replace(st, state=name, no_input=0, no_match=0, attempts=0, pending=None)
        st = replace(st, trace=(*st.trace, f"-> {name}"))
        if isinstance(state, BranchState):
            name = _branch(ctx, st, state)
            continue
        if state.outcome:
            st = with_result(st, state.outcome)
        transfer = _entry_actions(ctx, state, out)
        for prompt_id in state.say:
            say(ctx, st, out, prompt_id, **dynamic(ctx, st))
        if isinstance(state, PromiseState):
            st = replace(st, counters=0)
            return _promise_progress(ctx, merge_slots(st, u), state, out)
        if isinstance(state, CallbackState):
            return _callback_progress(ctx, merge_slots(st, u), state, out)
        if isinstance(state, EndState):
            out.append(transfer or act.Hangup())
            return replace(st, ended=True)
        if transfer is not None:
            out.append(transfer)
            return replace(st, ended=True)
        if state.next is None:
            return st
        name, u = state.next, None
    raise RuntimeError(f"dialplan {ctx.plan.dialplan.id}: `next` loop through {name!r}")


def _resume(ctx: CallContext, st: DialogState, out: Out) -> DialogState:
    """Go back to the state a side question interrupted and ask its question again."""
    name = st.return_to or ctx.plan.start
    state = state_of(ctx, name)
    st = replace(st, state=name, return_to=None)
    if isinstance(state, PromiseState):
        return _promise_progress(ctx, st, state, out)
    if isinstance(state, CallbackState):
        return _callback_progress(ctx, st, state, out)
    for prompt_id in [state.reprompt] if state.reprompt else state.say:
        say(ctx, st, out, prompt_id, **dynamic(ctx, st))
    return st


def _route(ctx: CallContext, st: DialogState, intent: str) -> str | None:
    state = state_of(ctx, st.state)
    h = ctx.plan.handlers
    for table in (state.on, h.verified if st.verified else h.unverified, h.any):
        if intent in table:
            return table[intent]
    if intent == "repeat":
        return "$repeat"
    return None


def _go(
    ctx: CallContext, st: DialogState, target: str, out: Out, u: Understanding | None
) -> DialogState:
    if target not in ("$repeat", "$return") and target != st.state:
        st = replace(st, return_to=st.state)
    if u is not None and u.intent == "cannot_pay" and st.verified:
        st = replace(st, hardship=True)
    return _enter(ctx, st, target, out, u)


def _fallback(ctx: CallContext, st: DialogState, kind: str, out: Out) -> DialogState:
    """Reprompt after silence or an unexpected answer, then give up to the fallback state."""
    state = state_of(ctx, st.state)
    count = (st.no_input if kind == "no_input" else st.no_match) + 1
    st = replace(st, no_input=count) if kind == "no_input" else replace(st, no_match=count)
    limit = ctx.plan.limits.no_input if kind == "no_input" else ctx.plan.limits.no_match
    fb = getattr(state, kind)
    if count > limit:
        target = (fb.then if fb and fb.then else None) or getattr(ctx.plan.defaults, kind)
        if kind == "no_input" and not st.spoken:
            st = with_result(st, "no_answer")
        return _go(ctx, st, target, out, None)
    if fb and fb.reprompt:
        say(ctx, st, out, fb.reprompt, **dynamic(ctx, st))
    elif state.reprompt:
        say(ctx, st, out, state.reprompt, **dynamic(ctx, st))
    else:
        # Only the question: a retry never repeats a disclosure or a whole turn.
        out.extend(st.last_says[-1:])
    return st


def _on_dtmf(ctx: CallContext, st: DialogState, digits: str, out: Out) -> DialogState:
    state = state_of(ctx, st.state)
    if isinstance(state, VerifyState):
        return _verify(ctx, st, state, digits, out)
    intent = ctx.plan.dtmf.get(digits[:1])
    if intent is None:
        return _fallback(ctx, st, "no_match", out)
    return _on_heard(ctx, st, Understanding(intent=intent, explain={"rule": "dtmf"}), out)


def _on_heard(ctx: CallContext, st: DialogState, u: Understanding, out: Out) -> DialogState:
    state = state_of(ctx, st.state)
    st = replace(st, trace=(*st.trace, f"{u.intent} [{u.explain.get('rule')}]"))
    if isinstance(state, VerifyState):
        if u.digits:
            return _verify(ctx, st, state, u.digits, out)
    elif isinstance(state, PromiseState | CallbackState) and _negotiates(state, u):
        return _negotiate(ctx, st, state, u, out)
    elif isinstance(state, ChoiceState):
        target = _choose(state, u.normalized)
        if target is not None:
            return _go(ctx, st, target, out, u)
    target = _route(ctx, st, u.intent)
    if target is None:
        return _fallback(ctx, st, "no_match", out)
    return _go(ctx, st, target, out, u)


def _choose(state: ChoiceState, normalized: str) -> str | None:
    words = f" {normalized} "
    for target, phrases in state.options.items():
        if any(f" {fold(p)} " in words for p in phrases):
            return target
    return None


def _verify(
    ctx: CallContext, st: DialogState, state: VerifyState, digits: str, out: Out
) -> DialogState:
    expected = (
        ctx.account.document_last4
        if state.factor == "document_last4"
        else str(ctx.account.birth_year)
    )
    # "ochenta y cinco" for 1985: the last two digits of a year are accepted.
    matches = digits == expected or (state.factor == "birth_year" and digits == expected[-2:])
    if matches:
        st = replace(st, verified=True, trace=(*st.trace, "verified"))
        return _go(ctx, st, state.on["verified"], out, None)
    attempts = st.attempts + 1
    if attempts >= state.attempts:
        return _go(ctx, replace(st, attempts=attempts), state.on["not_verified"], out, None)
    say(ctx, st, out, state.retry)
    return replace(st, attempts=attempts)


_NEGOTIATION = ("promise_to_pay", "affirm", "deny", "unknown")


def _negotiates(state: PromiseState | CallbackState, u: Understanding) -> bool:
    """Whether an answer belongs to the negotiation rather than to a handler (an objection)."""
    return u.intent in _NEGOTIATION or (
        isinstance(state, CallbackState) and u.intent == "callback_request"
    )


def _negotiate(
    ctx: CallContext,
    st: DialogState,
    state: PromiseState | CallbackState,
    u: Understanding,
    out: Out,
) -> DialogState:
    """Answers inside a promise or callback state: slots, yes to a read-back, no to a counter."""
    has_slots = u.date is not None or u.amount is not None or u.time is not None
    if st.pending == "confirm" and not has_slots:
        if u.intent in ("affirm", "promise_to_pay"):
            return _commit(ctx, st, state, out)
        if u.intent == "deny":
            st = replace(st, pending=None, draft_date=None, draft_time=None)
            if isinstance(state, PromiseState) and state.promise.plan in ("any", "installment"):
                st = replace(st, draft_amount=None)
            return _progress(ctx, st, state, out)
    if st.pending in ("counter_date", "counter_amount") and not has_slots:
        if u.intent in ("affirm", "promise_to_pay"):
            if st.pending == "counter_date":
                st = replace(st, draft_date=st.counter_date)
            else:
                st = replace(st, draft_amount=st.counter_amount)
            return _progress(ctx, replace(st, pending=None), state, out)
        if u.intent == "deny":
            refused_date = st.pending == "counter_date"
            st = replace(st, counters=st.counters + 1, pending=None)
            if st.counters > ctx.plan.limits.counter_offers:
                assert isinstance(state, PromiseState)
                return _go(ctx, with_result(st, "refused"), state.promise.gave_up, out, None)
            st = replace(st, draft_date=None) if refused_date else replace(st, draft_amount=None)
            return _progress(ctx, st, state, out)
    if has_slots:
        return _progress(ctx, replace(merge_slots(st, u), pending=None), state, out)
    return _fallback(ctx, st, "no_match", out)


def _progress(
    ctx: CallContext, st: DialogState, state: PromiseState | CallbackState, out: Out
) -> DialogState:
    if isinstance(state, PromiseState):
        return _promise_progress(ctx, st, state, out)
    return _callback_progress(ctx, st, state, out)


def _promise_progress(
    ctx: CallContext, st: DialogState, state: PromiseState, out: Out
) -> DialogState:
    """Ask for what is missing, counter what is outside policy, or read the promise back."""
    spec, terms, r = state.promise, terms_of(ctx, st), ctx.renderer
    default = spec.plan if spec.plan in ("full", "settlement") else spec.default_amount
    if st.draft_amount is None and default == "full":
        st = replace(st, draft_amount=terms.owed)
    if st.draft_amount is None and default == "settlement" and terms.settlement_amount:
        st = replace(st, draft_amount=terms.settlement_amount)
    if st.draft_date is None:
        say(ctx, st, out, spec.ask_date)
        return st
    if st.draft_amount is None:
        say(ctx, st, out, spec.ask_amount)
        return st
    verdict = judge(terms, st.draft_amount, st.draft_date, ctx.today, spec.plan)
    if verdict.reason == "past_date":
        say(ctx, st, out, spec.past_date)
        return replace(st, draft_date=None)
    if verdict.counter_date is not None:
        say(ctx, st, out, spec.counter_date, counter_date=r.date(verdict.counter_date))
        return replace(st, pending="counter_date", counter_date=verdict.counter_date)
    if verdict.counter_amount is not None:
        say(ctx, st, out, spec.counter_amount, counter_amount=r.money(verdict.counter_amount))
        return replace(st, pending="counter_amount", counter_amount=verdict.counter_amount)
    amount = min(st.draft_amount, terms.owed)
    st = replace(st, draft_amount=amount, pending="confirm")
    dyn = {"promise_amount": r.money(amount), "promise_date": r.date(_draft_date(st))}
    say(ctx, st, out, spec.confirm, **dyn)
    return st


def _draft_date(st: DialogState) -> date:
    """The promise date being confirmed (set whenever a read-back is pending)."""
    assert st.draft_date is not None
    return st.draft_date


def _callback_progress(
    ctx: CallContext, st: DialogState, state: CallbackState, out: Out
) -> DialogState:
    spec = state.callback
    if st.draft_date is None and st.draft_time is None:
        say(ctx, st, out, spec.ask_when)
        return st
    day = st.draft_date or ctx.today
    at = st.draft_time or time.fromisoformat(spec.default_time)
    when = datetime.combine(day, at)
    st = replace(st, draft_date=day, draft_time=at, pending="confirm")
    say(ctx, st, out, spec.confirm, callback_when=ctx.renderer.when(when))
    return st


def _commit(
    ctx: CallContext, st: DialogState, state: PromiseState | CallbackState, out: Out
) -> DialogState:
    """Write before speak: the CRM action precedes every word of the next state."""
    assert st.draft_date is not None
    if isinstance(state, PromiseState):
        assert st.draft_amount is not None
        terms = terms_of(ctx, st)
        verdict = judge(terms, st.draft_amount, st.draft_date, ctx.today, state.promise.plan)
        promise = act.RecordPromise(
            amount=st.draft_amount,
            currency=ctx.account.currency,
            due=st.draft_date,
            plan=verdict.plan,
        )
        out.append(promise)
        st = with_result(replace(st, promise=promise, pending=None), "promise")
        return _go(ctx, st, state.promise.recorded, out, None)
    at = datetime.combine(
        _draft_date(st), st.draft_time or time.fromisoformat(state.callback.default_time)
    )
    out.append(act.ScheduleCallback(at=at))
    st = with_result(replace(st, callback_at=at, pending=None), "callback")
    return _go(ctx, st, state.callback.scheduled, out, None)
