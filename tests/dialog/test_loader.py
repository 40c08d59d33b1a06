"""Every shipped dialplan loads; a broken one is rejected naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DIALPLANS
from voiceagent.dialog.loader import DialplanError, load_dialplan, load_dialplan_text, parse_yaml

SHIPPED = sorted(DIALPLANS.glob("*/*.yaml"))
BASE = (DIALPLANS / "es-419" / "early.yaml").read_text(encoding="utf-8")


def test_the_four_required_dialplans_ship() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in SHIPPED}
    assert {
        "es-419/early.yaml",
        "es-419/late.yaml",
        "pt-BR/early.yaml",
        "en-US/early.yaml",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_dialplan_is_valid(path: Path) -> None:
    plan = load_dialplan(path)
    assert plan.dialplan.locale == path.parent.name


def _error(text: str) -> DialplanError:
    with pytest.raises(DialplanError) as info:
        load_dialplan_text(text, "broken.yaml")
    return info.value


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def _mutate(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "field", "message", "needle"),
    [
        (
            "on: {affirm: verify_document, deny: not_the_person}",
            "on: {affirm: verfy_document, deny: not_the_person}",
            "states.greeting.on.affirm",
            "unknown state 'verfy_document'",
            "verfy_document",
        ),
        (
            "on: {affirm: verify_document, deny: not_the_person}",
            "on: {afirm: verify_document, deny: not_the_person}",
            "states.greeting.on",
            "unknown intent 'afirm'",
            "afirm",
        ),
        (
            "    say: [ask_number_owner]",
            "    sya: [ask_number_owner]",
            "states.not_the_person.sya",
            "Extra inputs are not permitted",
            "sya:",
        ),
        (
            'ask_identity: "¿Hablo con {name}?"',
            'ask_identity: "¿Hablo con {nombre}?"',
            "prompts.ask_identity",
            "unknown placeholder {nombre}",
            "{nombre}",
        ),
        (
            'ask_identity: "¿Hablo con {name}?"',
            'ask_identity: "¿Hablo con {name}? Es por su deuda."',
            "states.greeting.say.2",
            "reveals the debt",
            "say: [bot_disclosure",
        ),
        (
            'who_unverified: "Soy {agent_name}',
            'who_unverified: "Por {amount_owed}. Soy {agent_name}',
            "states.who_unverified.say.0",
            "reveals the debt ({amount_owed})",
            "say: [who_unverified]",
        ),
        (
            "    say: [bot_disclosure, recording_notice, ask_identity]",
            "    say: [bot_disclosure, ask_identity]",
            "states.greeting.say",
            "compliance.recording_notice",
            "say: [bot_disclosure, ask_identity]",
        ),
        (
            'tell_amount: "El saldo pendiente es de {amount_owed}."',
            'tell_amount: "Usted pagará {promise_amount}."',
            "prompts.tell_amount",
            "{promise_amount} has no value where this prompt is said",
            "tell_amount: ",
        ),
        (
            "    factor: document_last4",
            "    factor: passport",
            "states.verify_document.factor",
            "Input should be",
            "factor: passport",
        ),
        (
            "limits: {no_input: 2, no_match: 2, counter_offers: 2}",
            "limits: {no_input: 9, no_match: 2, counter_offers: 2}",
            "limits.no_input",
            "less than or equal to 5",
            "limits:",
        ),
    ],
)
def test_broken_dialplan_names_file_line_and_field(
    old: str, new: str, field: str, message: str, needle: str
) -> None:
    text = _mutate(old, new)
    err = _error(text)
    problem = next((p for p in err.problems if p.field == field), None)
    assert problem is not None, str(err)
    assert problem.file == "broken.yaml"
    assert message in problem.message, str(err)
    assert problem.line == _line_of(text, needle), str(err)
    assert f"broken.yaml:{problem.line}: {field}:" in str(err)


def test_yaml_syntax_error_names_the_line() -> None:
    text = _mutate("  greeting:\n", "  greeting:\n   bad: [unclosed\n")
    err = _error(text)
    assert err.problems[0].line is not None
    assert "YAML error" in err.problems[0].message


def test_duplicate_keys_are_rejected() -> None:
    text = _mutate(
        "  greeting:\n",
        "  wrong_party_close:\n    kind: end\n    say: [wrong_party]\n  greeting:\n",
    )
    assert "YAML error" in str(_error(text))


def test_yes_no_on_stay_strings() -> None:
    # YAML 1.1 loaders turn these keys into booleans and two intents silently merge.
    assert parse_yaml("on: a\nyes: b\nno: c\n", "x.yaml") == {"on": "a", "yes": "b", "no": "c"}


def test_unreachable_state_is_reported() -> None:
    text = _mutate(
        "  no_answer_close:\n",
        "  orphan:\n    kind: end\n    say: [no_answer]\n\n  no_answer_close:\n",
    )
    err = _error(text)
    assert any(p.field == "states.orphan" and "never reached" in p.message for p in err.problems)


def test_missing_file_is_a_clear_error() -> None:
    with pytest.raises(DialplanError, match="cannot read"):
        load_dialplan(DIALPLANS / "es-419" / "nope.yaml")


def test_collector_disclosure_must_not_be_interruptible() -> None:
    text = (DIALPLANS / "en-US" / "early.yaml").read_text(encoding="utf-8")
    broken = text.replace(
        'for that purpose."\n    interruptible: false',
        'for that purpose."\n    interruptible: true',
    )
    assert broken != text
    assert "must be `interruptible: false`" in str(_error(broken))


def test_committed_json_schema_matches_the_model() -> None:
    from voiceagent.dialog.loader import schema_json

    committed = (DIALPLANS / "dialplan.schema.json").read_text(encoding="utf-8")
    hint = "run: voiceagent dialplan schema > dialplans/dialplan.schema.json"
    assert committed == schema_json(), hint


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("este es un mensaje para {name}", "llamamos por su deuda", "reveals the debt ('deuda')"),
        ("este es un mensaje para {name}", "su saldo es {amount_owed}", "uses {amount_owed}"),
        (
            'Gracias."\n    interruptible: false',
            'Gracias."\n    interruptible: true',
            "must be non-interruptible",
        ),
        ("  voicemail: voicemail\n", "  voicemail: nothing_here\n", "unknown prompt"),
    ],
)
def test_voicemail_must_be_limited_content(old: str, new: str, message: str) -> None:
    text = _mutate(old, new)
    err = _error(text)
    problem = next((p for p in err.problems if p.field == "machine.voicemail"), None)
    assert problem is not None, str(err)
    assert message in problem.message, str(err)
    assert problem.line == _line_of(text, "  voicemail: "), str(err)
