"""Prompts rendered ahead: what a call can say next, with the values it knows by then."""

from __future__ import annotations

import json
from datetime import date

from tests.conftest import DIALPLANS, FIXTURES
from voiceagent.dialog import actions as act
from voiceagent.dialog.account import Account
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.loader import load_dialplan_cached

PLAN = load_dialplan_cached(str(DIALPLANS / "es-419" / "early.yaml"))
ACCOUNT = Account.model_validate(json.loads((FIXTURES / "accounts" / "co-early.json").read_text()))


def texts(parts_list: list[tuple[tuple[str, bool], ...]]) -> set[str]:
    return {"".join(piece for piece, _ in parts) for parts in parts_list}


def said(actions: list[act.Action]) -> list[act.Say]:
    return [a for a in actions if isinstance(a, act.Say)]


def test_before_the_call_every_prompt_with_account_values_is_known() -> None:
    conv = Conversation(PLAN, ACCOUNT, date(2026, 11, 18))
    ahead = texts(conv.prompts_ahead())
    greeting = said(conv.start())
    assert greeting and all(s.text in ahead for s in greeting)
    assert any("María Fernanda López" in t for t in ahead)
    assert not any("{" in t for t in ahead)  # nothing half-rendered
    # Prompts that need the debtor's words are not guessed.
    assert not any(t.startswith("Listo, su compromiso") for t in ahead)


def test_a_read_back_makes_its_confirmation_known_before_the_yes() -> None:
    conv = Conversation(PLAN, ACCOUNT, date(2026, 11, 18))
    conv.start()
    conv.hear("sí, con ella habla")
    conv.dtmf("4821")
    conv.hear("sí, claro")
    readback = said(conv.hear("el viernes"))
    assert any("20 de noviembre" in s.text for s in readback)
    ahead = texts(conv.prompts_ahead())
    confirmed = said(conv.hear("sí, es correcto"))
    recorded = [s for s in confirmed if s.prompt_id == "promise_recorded"]
    assert recorded and recorded[0].text in ahead


def test_say_parts_spell_the_text_and_mark_the_values() -> None:
    says = said(Conversation(PLAN, ACCOUNT, date(2026, 11, 18)).start())
    assert says
    for say in says:
        assert "".join(piece for piece, _ in say.parts) == say.text
    values = [piece for say in says for piece, variable in say.parts if variable]
    assert "Banco Andino" in values and all(v.strip() for v in values)
