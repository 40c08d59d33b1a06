"""Scripted conversations per language: each reaches its expected outcome.

Scenarios live in tests/dialog/conversations/<locale>.yaml. Besides each scenario's own
expectations, every run is checked for the invariants no dialplan may break:
- write before speak: a promise/callback/flag action comes before any words in the same turn;
- a debt is never disclosed before right-party verification;
- the US debt-collector disclosure comes right after verification and is not interruptible.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import DIALPLANS, FIXTURES
from voiceagent.dialog import actions as act
from voiceagent.dialog.account import Account
from voiceagent.dialog.chat import feed_line
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.loader import load_dialplan_cached
from voiceagent.dialog.speech import money

HERE = Path(__file__).resolve().parent / "conversations"
_WRITES = (act.RecordPromise, act.ScheduleCallback, act.RecordFlag)


def _scenarios() -> list[Any]:
    params = []
    for path in sorted(HERE.glob("*.yaml")):
        suite = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        for sc in suite["scenarios"]:
            merged = {**{k: v for k, v in suite.items() if k != "scenarios"}, **sc}
            params.append(pytest.param(merged, id=f"{path.stem}:{sc['name']}"))
    return params


def _account(name: str, overrides: dict[str, Any] | None) -> Account:
    data = json.loads((FIXTURES / "accounts" / name).read_text(encoding="utf-8"))
    data.update(overrides or {})
    return Account.model_validate(data)


def _run(conv: Conversation, turns: list[str]) -> list[list[act.Action]]:
    steps = [conv.start()]
    for turn in turns:
        if conv.ended:
            break
        steps.append(feed_line(conv, turn))
    return steps


@pytest.mark.parametrize("sc", _scenarios())
def test_conversation(sc: dict[str, Any]) -> None:
    plan = load_dialplan_cached(str(DIALPLANS / sc["dialplan"]))
    account = _account(sc["account"], sc.get("account_overrides"))
    conv = Conversation(plan, account, date.fromisoformat(str(sc["today"])))
    steps = _run(conv, [str(t) for t in sc["turns"]])
    expect = sc["expect"]
    outcome = conv.outcome()
    transcript = "\n".join(f"{t.speaker}: {t.text}" for t in conv.transcript)

    assert outcome["result"] == expect["result"], transcript
    if "promise" in expect:
        want = expect["promise"]
        got = outcome["promise"]
        if want is None:
            assert got is None, transcript
        else:
            assert got is not None, transcript
            assert got["date"] == str(want["date"]), transcript
            assert Decimal(str(got["amount"])) == Decimal(str(want["amount"])), transcript
    if "callback_at" in expect:
        assert outcome["callback_at"] == expect["callback_at"], transcript
    if "ended" in expect:
        assert conv.ended == expect["ended"], transcript

    flat = [a for s in steps for a in s]
    said = [a.prompt_id for a in flat if isinstance(a, act.Say)]
    for prompt_id in expect.get("prompts", []):
        assert prompt_id in said, f"{prompt_id} never said\n{transcript}"
    for prompt_id in expect.get("not_prompts", []):
        assert prompt_id not in said, f"{prompt_id} said\n{transcript}"
    kinds = [type(a).__name__ for a in flat if not isinstance(a, act.Say)]
    for kind in expect.get("actions", []):
        assert kind in kinds, f"no {kind} in {kinds}\n{transcript}"
    for kind in expect.get("not_actions", []):
        assert kind not in kinds, f"{kind} in {kinds}\n{transcript}"

    _check_write_before_speak(steps)
    _check_no_disclosure_before_verification(conv, account, steps, plan.dialplan.locale)
    _check_collector_disclosure(plan, steps)


def _check_write_before_speak(steps: list[list[act.Action]]) -> None:
    for step in steps:
        first_say = next((i for i, a in enumerate(step) if isinstance(a, act.Say)), len(step))
        for i, a in enumerate(step):
            if isinstance(a, _WRITES):
                assert i < first_say, f"{a} comes after words in the same turn: {step}"


def _check_no_disclosure_before_verification(
    conv: Conversation, account: Account, steps: list[list[act.Action]], locale: str
) -> None:
    lang = locale.split("-")[0]
    owed_words = money(account.amount_owed, account.currency, lang)
    verified_at = next((i for i, s in enumerate(conv.state.trace) if s == "verified"), None)
    texts = [a.text for s in steps for a in s if isinstance(a, act.Say)]
    if verified_at is None:
        for text in texts:
            assert owed_words not in text, f"amount disclosed to an unverified party: {text}"


def _check_collector_disclosure(plan: Any, steps: list[list[act.Action]]) -> None:
    disclosure = plan.compliance.collector_disclosure
    if disclosure is None:
        return
    for step in steps:
        says = [a for a in step if isinstance(a, act.Say)]
        ids = [a.prompt_id for a in says]
        if "debt_disclosure" in ids:
            assert disclosure in ids and ids.index(disclosure) < ids.index("debt_disclosure")
        for a in says:
            if a.prompt_id == disclosure:
                assert not a.interruptible


def test_every_language_reaches_every_outcome() -> None:
    from voiceagent.dialog.model import RESULTS

    reached: dict[str, set[str]] = {}
    for param in _scenarios():
        sc = param.values[0]
        locale = str(sc["dialplan"]).split("/")[0]
        reached.setdefault(locale, set()).add(sc["expect"]["result"])
    assert set(reached) == {"es-419", "pt-BR", "en-US"}
    for locale, results in reached.items():
        assert results == set(RESULTS), f"{locale} misses {set(RESULTS) - results}"
