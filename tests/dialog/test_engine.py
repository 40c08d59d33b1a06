"""The engine is pure: same inputs, same outputs; writes come before the words about them."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import date

import pytest

from tests.conftest import DIALPLANS, FIXTURES
from voiceagent.dialog import actions as act
from voiceagent.dialog.account import Account
from voiceagent.dialog.engine import CallContext, DialogState, step
from voiceagent.dialog.events import Heard, NoInput, Start
from voiceagent.dialog.loader import load_dialplan_cached
from voiceagent.dialog.prompts import MissingAccountField

PLAN = load_dialplan_cached(str(DIALPLANS / "es-419" / "early.yaml"))
ACCOUNT = Account.model_validate(json.loads((FIXTURES / "accounts" / "co-early.json").read_text()))
TODAY = date(2026, 11, 18)
TURNS = ["sí", "4821", "sí", "el lunes", "sí", "no"]


def run() -> list[tuple[DialogState, list[act.Action]]]:
    ctx = CallContext.create(PLAN, ACCOUNT, TODAY)
    st = DialogState()
    history = []
    for event in [Start(), *(Heard(t) for t in TURNS)]:
        st, actions = step(ctx, st, event)
        history.append((st, actions))
    return history


def test_deterministic() -> None:
    assert run() == run()


def test_state_is_immutable() -> None:
    st = DialogState()
    with pytest.raises(FrozenInstanceError):
        st.state = "x"  # type: ignore[misc]


def test_promise_is_recorded_before_it_is_confirmed_aloud() -> None:
    _, actions = run()[5]  # "sí" to the read-back
    kinds = [type(a).__name__ for a in actions]
    assert kinds[0] == "RecordPromise"
    assert kinds.index("RecordPromise") < kinds.index("Say")
    says = [a for a in actions if isinstance(a, act.Say)]
    assert says[0].prompt_id == "promise_recorded"


def test_no_input_reprompts_then_gives_up() -> None:
    ctx = CallContext.create(PLAN, ACCOUNT, TODAY)
    st, first = step(ctx, DialogState(), Start())
    st, again = step(ctx, st, NoInput())
    assert [a.prompt_id for a in again if isinstance(a, act.Say)] == ["ask_identity"]
    st, _ = step(ctx, st, NoInput())
    st, last = step(ctx, st, NoInput())
    assert st.ended and st.result == "no_answer"
    assert isinstance(last[-1], act.Hangup)


def test_events_after_the_end_do_nothing() -> None:
    ctx = CallContext.create(PLAN, ACCOUNT, TODAY)
    st, _ = step(ctx, DialogState(), Start())
    st, _ = step(ctx, st, Heard("número equivocado"))
    assert st.ended
    assert step(ctx, st, Heard("sí")) == (st, [])


def test_account_missing_a_field_the_plan_needs_fails_before_the_call() -> None:
    plan = PLAN.model_copy(update={"account_fields": ["contract", "branch_office"]})
    with pytest.raises(MissingAccountField, match="branch_office"):
        CallContext.create(plan, ACCOUNT, TODAY)


def test_a_plan_that_verifies_by_birth_year_needs_it_before_the_call() -> None:
    plan = load_dialplan_cached(str(DIALPLANS / "en-US" / "early.yaml"))
    account = Account.model_validate(
        json.loads((FIXTURES / "accounts" / "us-early.json").read_text())
    )
    CallContext.create(plan, account, date(2026, 11, 18))  # has a birth year
    with pytest.raises(MissingAccountField, match="birth_year"):
        CallContext.create(
            plan, account.model_copy(update={"birth_year": None}), date(2026, 11, 18)
        )
    CallContext.create(PLAN, ACCOUNT.model_copy(update={"birth_year": None}), date(2026, 11, 18))
