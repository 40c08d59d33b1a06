"""Cross-checks of a schema-valid dialplan: references, placeholders, compliance, disclosure.

Each check returns ``(path, message)`` pairs; the loader turns paths into file lines.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator

from voiceagent.dialog.model import (
    BranchState,
    CallbackState,
    ChoiceState,
    Dialplan,
    PromiseState,
    StateBase,
    VerifyState,
)

Path = tuple[str | int, ...]
Issue = tuple[Path, str]

ACCOUNT_VARS = frozenset({"name", "first_name", "creditor", "agent_name", "currency", "phone"})
"""Placeholders that never reveal a debt (usable before right-party verification)."""
DEBT_VARS = frozenset(
    {
        "amount_owed",
        "days_past_due",
        "due_date",
        "portfolio",
        "full_payment_deadline",
        "installments_max",
        "installment_min",
        "installment_deadline",
        "hardship_installments_max",
        "hardship_installment_min",
        "hardship_deadline",
        "settlement_amount",
        "settlement_deadline",
        "discount_percent",
    }
)
"""Placeholders that reveal the debt: only after verification."""
SETTLEMENT_VARS = frozenset({"settlement_amount", "settlement_deadline", "discount_percent"})
"""Only said in states a ``settlement_available`` branch leads to."""
PROMISE_VARS = frozenset({"promise_amount", "promise_date"})
COUNTER_VARS = frozenset({"counter_amount", "counter_date"})
CALLBACK_VARS = frozenset({"callback_when"})
# Words that tell a third party there is a debt; prompts said before verification must avoid them.
DISCLOSING_WORDS = {
    "es-419": r"deuda|adeud|saldo|mora|moros|atras|vencid|cobranza|cobro|pago|pagar|cuota|obligaci",
    "pt-BR": r"d[ií]vida|d[eé]bito|saldo|atras|vencid|cobran[cç]a|pagamento|pagar|parcela|inadimpl",
    "en-US": r"debt|owe|balance|past due|overdue|collect|payment|\bpay\b|installment|delinquen",
}


def check_plan(plan: Dialplan) -> list[Issue]:
    """Return every cross-reference, placeholder, compliance and disclosure problem."""
    return [
        *_check_targets(plan),
        *_check_prompt_refs(plan),
        *_check_placeholders(plan),
        *_check_compliance(plan),
        *_check_disclosure(plan),
        *_check_voicemail(plan),
        *_check_transfer_fallback(plan),
        *_check_reachable(plan),
    ]


def _targets(plan: Dialplan) -> Iterator[tuple[Path, str]]:
    """Every (path, target state) reference in the plan."""
    yield ("start",), plan.start
    yield ("defaults", "no_input"), plan.defaults.no_input
    yield ("defaults", "no_match"), plan.defaults.no_match
    for section in ("any", "unverified", "verified"):
        for intent, target in getattr(plan.handlers, section).items():
            yield ("handlers", section, intent), target
    for name, state in plan.states.items():
        base: Path = ("states", name)
        for intent, target in state.on.items():
            yield (*base, "on", intent), target
        if state.next:
            yield (*base, "next"), state.next
        for fb in ("no_input", "no_match"):
            fallback = getattr(state, fb)
            if fallback is not None and fallback.then:
                yield (*base, fb, "then"), fallback.then
        if isinstance(state, PromiseState):
            yield (*base, "promise", "recorded"), state.promise.recorded
            yield (*base, "promise", "gave_up"), state.promise.gave_up
        if isinstance(state, CallbackState):
            yield (*base, "callback", "scheduled"), state.callback.scheduled
        if isinstance(state, ChoiceState):
            for target in state.options:
                yield (*base, "options", target), target
        if isinstance(state, BranchState):
            for i, case in enumerate(state.cases):
                yield (*base, "cases", i, "goto"), case.goto
            yield (*base, "otherwise"), state.otherwise


def _check_targets(plan: Dialplan) -> Iterator[Issue]:
    for path, target in _targets(plan):
        in_on = "on" in path or path[0] == "handlers"
        if target == "$repeat" and not in_on:
            yield path, "`$repeat` is only allowed as an intent handler"
        elif target == "$return" and path[-1] != "next":
            yield path, "`$return` is only allowed as `next`"
        elif not target.startswith("$") and target not in plan.states:
            yield path, f"unknown state {target!r}"


def _prompt_refs(plan: Dialplan) -> Iterator[tuple[Path, str, str]]:
    """Every (path, prompt id, state name or '') reference."""
    for key in ("bot_disclosure", "recording_notice", "collector_disclosure"):
        value = getattr(plan.compliance, key)
        if value:
            yield ("compliance", key), value, ""
    for name, state in plan.states.items():
        for path, prompt_id in _state_prompts(state):
            yield ("states", name, *path), prompt_id, name


def _state_prompts(state: StateBase) -> Iterator[tuple[Path, str]]:
    for i, prompt_id in enumerate(state.say):
        yield ("say", i), prompt_id
    if state.reprompt:
        yield ("reprompt",), state.reprompt
    for fb in ("no_input", "no_match"):
        fallback = getattr(state, fb)
        if fallback is not None and fallback.reprompt:
            yield (fb, "reprompt"), fallback.reprompt
    if isinstance(state, VerifyState):
        yield ("retry",), state.retry
    if isinstance(state, PromiseState):
        for key in ("ask_date", "ask_amount", "counter_date", "counter_amount", "past_date"):
            yield ("promise", key), getattr(state.promise, key)
        yield ("promise", "confirm"), state.promise.confirm
    if isinstance(state, CallbackState):
        yield ("callback", "ask_when"), state.callback.ask_when
        yield ("callback", "confirm"), state.callback.confirm


def _check_prompt_refs(plan: Dialplan) -> Iterator[Issue]:
    for path, prompt_id, _ in _prompt_refs(plan):
        if prompt_id not in plan.prompts:
            yield path, f"unknown prompt {prompt_id!r}"


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a prompt text uses."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def _allowed_dynamic(plan: Dialplan) -> dict[str, frozenset[str]]:
    """Prompt id -> call-time placeholders it may use (values that exist when it is said)."""
    allowed: dict[str, set[str]] = {}
    recorded_targets = set()
    scheduled_targets = set()
    for state in plan.states.values():
        if isinstance(state, PromiseState):
            allowed.setdefault(state.promise.confirm, set()).update(PROMISE_VARS)
            allowed.setdefault(state.promise.counter_date, set()).update(COUNTER_VARS)
            allowed.setdefault(state.promise.counter_amount, set()).update(COUNTER_VARS)
            recorded_targets.add(state.promise.recorded)
        if isinstance(state, CallbackState):
            allowed.setdefault(state.callback.confirm, set()).update(CALLBACK_VARS)
            scheduled_targets.add(state.callback.scheduled)
    settlement_targets = {
        case.goto
        for state in plan.states.values()
        if isinstance(state, BranchState)
        for case in state.cases
        if case.if_ == "settlement_available"
    }
    for name in settlement_targets:
        target = plan.states.get(name)
        for prompt_id in target.say if target else []:
            allowed.setdefault(prompt_id, set()).update(SETTLEMENT_VARS)
    if plan.transfer.no_agents is not None:
        allowed.setdefault(plan.transfer.no_agents, set()).update(CALLBACK_VARS)
    if plan.machine.voicemail is not None:
        allowed.setdefault(plan.machine.voicemail, set())
    for name in recorded_targets | scheduled_targets:
        after = plan.states.get(name)
        if after is None:
            continue
        extra = PROMISE_VARS if name in recorded_targets else CALLBACK_VARS
        for prompt_id in after.say:
            allowed.setdefault(prompt_id, set()).update(extra)
    return {k: frozenset(v) for k, v in allowed.items()}


def _check_placeholders(plan: Dialplan) -> Iterator[Issue]:
    static = (ACCOUNT_VARS | DEBT_VARS | set(plan.account_fields)) - SETTLEMENT_VARS
    dynamic = _allowed_dynamic(plan)
    for prompt_id in plan.prompts:
        text = plan.prompt(prompt_id).text
        try:
            used = placeholders(text)
        except ValueError as exc:
            yield ("prompts", prompt_id), f"bad template: {exc}"
            continue
        for var in sorted(used - static - dynamic.get(prompt_id, frozenset())):
            if var in PROMISE_VARS | COUNTER_VARS | CALLBACK_VARS | SETTLEMENT_VARS:
                msg = f"{{{var}}} has no value where this prompt is said"
            else:
                msg = f"unknown placeholder {{{var}}} (declare it in account_fields)"
            yield ("prompts", prompt_id), msg


def _check_compliance(plan: Dialplan) -> Iterator[Issue]:
    start = plan.states.get(plan.start)
    if start is None:
        return
    for key in ("bot_disclosure", "recording_notice"):
        if getattr(plan.compliance, key) not in start.say:
            yield ("states", plan.start, "say"), f"the first state must say compliance.{key}"
    disclosure = plan.compliance.collector_disclosure
    if disclosure is None or disclosure not in plan.prompts:
        return
    if plan.prompt(disclosure).interruptible:
        yield ("prompts", disclosure), "the collector disclosure must be `interruptible: false`"
    for name, state in plan.states.items():
        if isinstance(state, VerifyState):
            target = plan.states.get(state.on["verified"])
            if target is not None and (not target.say or target.say[0] != disclosure):
                msg = f"state after verification must say {disclosure!r} first"
                yield ("states", name, "on", "verified"), msg


def _edges(plan: Dialplan, verified: bool) -> dict[str, set[str]]:
    """State graph; with ``verified=False`` only the edges usable before verification."""
    h = plan.handlers
    handlers = set(h.any.values()) | set(h.unverified.values())
    if verified:
        handlers |= set(h.verified.values())
    graph: dict[str, set[str]] = {}
    for name, state in plan.states.items():
        out: set[str] = set()
        for path, target in _targets(plan):
            if path[:2] == ("states", name):
                if not verified and isinstance(state, VerifyState) and path[-1] == "verified":
                    continue
                out.add(target)
        if state.kind != "end":
            out.update(handlers)
        out.update({plan.defaults.no_input, plan.defaults.no_match})
        graph[name] = {t for t in out if not t.startswith("$")}
    return graph


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _check_disclosure(plan: Dialplan) -> Iterator[Issue]:
    """Nothing said before right-party verification may reveal that a debt exists."""
    words = re.compile(DISCLOSING_WORDS[plan.dialplan.locale], re.IGNORECASE)
    before = _reach(_edges(plan, verified=False), plan.start)
    for name in sorted(before & set(plan.states)):
        state = plan.states[name]
        if isinstance(state, PromiseState):
            yield ("states", name), "a promise can be taken only after verification"
        for path, prompt_id in _state_prompts(state):
            if prompt_id not in plan.prompts:
                continue
            text = plan.prompt(prompt_id).text
            leaked = placeholders(text) & (DEBT_VARS | PROMISE_VARS | COUNTER_VARS)
            hit = words.search(text)
            if leaked or hit:
                what = f"{{{sorted(leaked)[0]}}}" if leaked else repr(hit.group(0)) if hit else ""
                yield (
                    ("states", name, *path),
                    f"prompt {prompt_id!r} reveals the debt ({what}) but can be said before "
                    "right-party verification",
                )


def _check_voicemail(plan: Dialplan) -> Iterator[Issue]:
    """A voicemail may be heard by anyone: the limited-content rule (no debt, no amounts)."""
    prompt_id = plan.machine.voicemail
    if prompt_id is None:
        return
    path: Path = ("machine", "voicemail")
    if prompt_id not in plan.prompts:
        yield path, f"unknown prompt {prompt_id!r}"
        return
    text = plan.prompt(prompt_id).text
    words = re.compile(DISCLOSING_WORDS[plan.dialplan.locale], re.IGNORECASE)
    allowed = {"agent_name", "first_name", "name"}
    leaked = placeholders(text) - allowed
    if leaked:
        yield (
            path,
            (
                f"voicemail {prompt_id!r} uses {{{sorted(leaked)[0]}}}: a voicemail may only name "
                f"the agent and the person ({', '.join(sorted(allowed))})"
            ),
        )
    if hit := words.search(text):
        yield path, f"voicemail {prompt_id!r} reveals the debt ({hit.group(0)!r})"
    if plan.prompt(prompt_id).interruptible:
        yield path, f"voicemail {prompt_id!r} must be non-interruptible (interruptible: false)"


def _check_transfer_fallback(plan: Dialplan) -> Iterator[Issue]:
    prompt_id = plan.transfer.no_agents
    if prompt_id is None:
        return
    path: Path = ("transfer", "no_agents")
    if prompt_id not in plan.prompts:
        yield path, f"unknown prompt {prompt_id!r}"
        return
    allowed = ACCOUNT_VARS | CALLBACK_VARS
    extra = placeholders(plan.prompt(prompt_id).text) - allowed
    if extra:
        yield path, f"prompt {prompt_id!r} may only use {{callback_when}} and account names"


def _check_reachable(plan: Dialplan) -> Iterator[Issue]:
    reached = _reach(_edges(plan, verified=True), plan.start)
    for name in plan.states:
        if name not in reached:
            yield ("states", name), "state is never reached from `start`"
