"""Test speech for the recognizer tests: espeak-ng rendered to PCM16 8 kHz, silence, WAV files."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soxr

from voiceagent.audio.format import BYTES_PER_SAMPLE, RATE_HZ

ESPEAK = shutil.which("espeak-ng")
ASTERISK_ES = Path("/usr/share/asterisk/sounds/es")
"""Real human Spanish prompts (asterisk-core-sounds-es-wav, speaker es_MX Allison), 8 kHz."""
CHUNK_MS = 100
"""What the call session sends the recognizer per hop (STYLE.md: batch before crossing)."""


def read_wav_pcm16_8k(path: Path) -> bytes:
    """A mono 16-bit WAV file as PCM16 8 kHz (resampled when it has another rate)."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == BYTES_PER_SAMPLE, path
        rate_hz = wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    if rate_hz == RATE_HZ:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    resampled = soxr.resample(samples, rate_hz, RATE_HZ)
    return np.clip(np.round(resampled), -32768, 32767).astype("<i2").tobytes()


def espeak(text: str, voice: str, out_dir: Path, speed: int = 135, gap: int = 0) -> bytes:
    """``text`` spoken by espeak-ng (``-v voice -s speed -g gap``) as PCM16 8 kHz."""
    assert ESPEAK, "espeak-ng is not installed"
    key = hashlib.sha1(f"{voice}|{speed}|{gap}|{text}".encode()).hexdigest()[:16]
    wav = out_dir / f"espeak-{key}.wav"
    if not wav.exists():
        command = [ESPEAK, "-v", voice, "-s", str(speed), "-g", str(gap), "-w", str(wav), text]
        subprocess.run(command, check=True, capture_output=True, timeout=30)
    return read_wav_pcm16_8k(wav)


def silence(duration_ms: int) -> bytes:
    """Digital silence, PCM16 8 kHz."""
    return bytes(duration_ms * RATE_HZ // 1000 * BYTES_PER_SAMPLE)


def duration_ms(pcm16_8k: bytes) -> int:
    """Milliseconds of PCM16 8 kHz audio."""
    return len(pcm16_8k) // BYTES_PER_SAMPLE * 1000 // RATE_HZ


def chunks(pcm16_8k: bytes, chunk_ms: int = CHUNK_MS) -> Iterator[bytes]:
    """The audio in ``chunk_ms`` pieces, as the call session feeds a recognizer."""
    n_bytes = chunk_ms * RATE_HZ // 1000 * BYTES_PER_SAMPLE
    for start in range(0, len(pcm16_8k), n_bytes):
        yield pcm16_8k[start : start + n_bytes]
