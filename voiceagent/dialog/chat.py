"""Text conversations with the agent: the dialplan author's shell (``voiceagent chat``)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from voiceagent.dialog import actions as act
from voiceagent.dialog.account import Account
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.loader import load_dialplan
from voiceagent.dialog.model import Dialplan

SILENCE = "<silence>"
HANGUP = "<hangup>"
_MAX_TURNS = 200


def _describe(action: act.Action) -> str | None:
    """A one-line note for a non-speech action (shown in interactive chat)."""
    if isinstance(action, act.RecordPromise):
        return f"[CRM] promise {action.amount} {action.currency} due {action.due} ({action.plan})"
    if isinstance(action, act.ScheduleCallback):
        return f"[CRM] callback at {action.at.isoformat(timespec='minutes')}"
    if isinstance(action, act.RecordFlag):
        return f"[CRM] {action.flag}"
    if isinstance(action, act.SendSlip):
        return f"[slip] sent by {action.channel}"
    if isinstance(action, act.Transfer):
        return f"[transfer] to {action.target}"
    if isinstance(action, act.Hangup):
        return "[hangup]"
    return None


def _show(actions: list[act.Action], out: TextIO) -> None:
    for a in actions:
        line = f"agent: {a.text}" if isinstance(a, act.Say) else _describe(a)
        if line:
            out.write(line + "\n")


def feed_line(conv: Conversation, line: str) -> list[act.Action]:
    """Feed one script line (text, ``<silence>``, ``<dtmf 1234>``, ``<hangup>``)."""
    stripped = line.strip()
    if stripped == SILENCE or not stripped:
        return conv.silence()
    if stripped == HANGUP:
        return conv.hangup()
    if stripped.startswith("<dtmf ") and stripped.endswith(">"):
        return conv.dtmf(stripped[6:-1].strip())
    return conv.hear(stripped)


def pick_plan(account: Account, dialplan: Path | None) -> Dialplan:
    """The given dialplan, or the one ``dialplans/routing.yaml`` picks for the account."""
    if dialplan is not None:
        return load_dialplan(dialplan)
    from voiceagent.config import get_settings
    from voiceagent.dialog.routing import load_routing

    settings = get_settings()
    route = load_routing(settings.dialplans_dir / "routing.yaml").select(account)
    return route.apply(load_dialplan(settings.dialplans_dir / route.dialplan))


def run_chat(
    account: Account,
    dialplan: Path | None,
    script: Path | None,
    today: date,
    interactive: bool,
) -> dict[str, Any]:
    """Run one conversation from a script or the terminal; return transcript and outcome."""
    plan = pick_plan(account, dialplan)
    conv = Conversation(plan, account, today)
    actions = conv.start()
    if interactive:
        _show(actions, sys.stdout)
    lines: list[str] | None = None
    if script is not None:
        lines = script.read_text(encoding="utf-8").splitlines()
    turns = 0
    while not conv.ended and turns < _MAX_TURNS:
        turns += 1
        if lines is not None:
            if not lines:
                conv.hangup()
                break
            line = lines.pop(0)
        else:
            sys.stdout.write("debtor> ")
            sys.stdout.flush()
            raw = sys.stdin.readline()
            if not raw:
                conv.hangup()
                break
            line = raw
        actions = feed_line(conv, line)
        if interactive:
            _show(actions, sys.stdout)
    return {
        "transcript": [{"speaker": t.speaker, "text": t.text} for t in conv.transcript],
        "outcome": conv.outcome(),
    }
