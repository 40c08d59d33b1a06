"""Readable views of a dialplan: a transition table and a Mermaid state diagram."""

from __future__ import annotations

from voiceagent.dialog.model import (
    BranchState,
    CallbackState,
    ChoiceState,
    Dialplan,
    PromiseState,
    VerifyState,
)


def transitions(plan: Dialplan) -> list[tuple[str, str, str]]:
    """Every (from, on what, to) edge a state itself declares (handlers listed separately)."""
    edges: list[tuple[str, str, str]] = []
    for name, state in plan.states.items():
        for intent, target in state.on.items():
            edges.append((name, intent, target))
        if state.next:
            edges.append((name, "next", state.next))
        if isinstance(state, PromiseState):
            edges.append((name, "promise recorded", state.promise.recorded))
            edges.append((name, "counter-offers refused", state.promise.gave_up))
        if isinstance(state, CallbackState):
            edges.append((name, "callback scheduled", state.callback.scheduled))
        if isinstance(state, ChoiceState):
            for target, phrases in state.options.items():
                edges.append((name, "says " + "/".join(phrases[:3]), target))
        if isinstance(state, BranchState):
            for case in state.cases:
                edges.append((name, f"if {case.if_}", case.goto))
            edges.append((name, "otherwise", state.otherwise))
    return edges


def table(plan: Dialplan) -> str:
    """A plain-text table of states, their prompts and their transitions."""
    h = plan.dialplan
    lines = [f"{h.id} v{h.version} ({h.locale}) - {h.description}", f"start: {plan.start}", ""]
    width = max(len(n) for n in plan.states)
    for name, state in plan.states.items():
        extra = f" factor={state.factor}" if isinstance(state, VerifyState) else ""
        outcome = f" outcome={state.outcome}" if state.outcome else ""
        lines.append(
            f"{name:<{width}}  [{state.kind}{extra}{outcome}] says: {', '.join(state.say) or '-'}"
        )
        for src, on, dst in transitions(plan):
            if src == name:
                lines.append(f"{'':<{width}}    {on} -> {dst}")
    lines.append("")
    for section in ("any", "unverified", "verified"):
        handlers = getattr(plan.handlers, section)
        if handlers:
            pairs = ", ".join(f"{i} -> {t}" for i, t in handlers.items())
            lines.append(f"handlers ({section}): {pairs}")
    return "\n".join(lines)


def _node(name: str) -> str:
    return name.replace("$", "_")


def mermaid(plan: Dialplan) -> str:
    """A Mermaid ``stateDiagram-v2`` of the plan (global handlers as notes)."""
    lines = ["stateDiagram-v2", f"    [*] --> {plan.start}"]
    for src, on, dst in transitions(plan):
        target = "[*]" if dst == "$return" else _node(dst)
        label = "back to the question" if dst == "$return" else on
        lines.append(f"    {_node(src)} --> {target}: {label}")
    for name, state in plan.states.items():
        if state.kind == "end":
            lines.append(f"    {name} --> [*]")
    for section in ("any", "unverified", "verified"):
        handlers = getattr(plan.handlers, section)
        if handlers:
            pairs = "<br/>".join(f"{i} → {t}" for i, t in handlers.items())
            lines.append(f"    note right of {plan.start}: from any state ({section})<br/>{pairs}")
    return "\n".join(lines)
