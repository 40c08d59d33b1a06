"""A scripted synthesizer for testing other stages (call timing, playout, barge-in), never TTS."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

from voiceagent.audio.format import RATE_HZ
from voiceagent.tts.piper import split_clauses

MS_PER_CHAR = 60
"""Tone length per character of clause text (about 17 characters a second, like real speech)."""


class FakeSynthesizer:
    """Yields one deterministic tone per clause, MS_PER_CHAR long per character.

    The pitch comes from the clause text (same text, same bytes), so a test can tell clauses
    apart in what was played. ``rtf`` > 0 sleeps that fraction of each clause's duration, to
    stand in for synthesis time.
    """

    def __init__(self, language: str = "es", rtf: float = 0.0, amplitude: float = 0.3) -> None:
        self.language = language
        self.rtf = rtf
        """Seconds of simulated synthesis per second of audio."""
        self.amplitude = amplitude
        """Peak level, 0..1 of full scale."""
        self.name = f"fake/tone/{language}/a{amplitude:g}"
        self.texts: list[str] = []
        """Every clause synthesized, in order."""

    def clauses(self, text: str) -> list[str]:
        """The same clauses the Piper synthesizer would produce."""
        return split_clauses(text, self.language)

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Yield PCM16 mono 8 kHz, one tone per clause."""
        for clause in self.clauses(text):
            self.texts.append(clause)
            pcm16_8k = tone(clause, len(clause) * MS_PER_CHAR, self.amplitude)
            if self.rtf:
                time.sleep(self.rtf * len(clause) * MS_PER_CHAR / 1000)
            yield pcm16_8k


def tone(text: str, duration_ms: int, amplitude: float = 0.3) -> bytes:
    """A sine between 300 and 1100 Hz picked by ``text``, with 10 ms fades (PCM16 8 kHz)."""
    import numpy as np

    n_samples = duration_ms * RATE_HZ // 1000
    hz = 300 + int.from_bytes(hashlib.sha256(text.encode()).digest()[:2], "little") % 800
    i = np.arange(n_samples)
    n_fade = max(1, min(RATE_HZ // 100, n_samples // 2))
    fade = np.minimum(1.0, np.minimum(i + 1, n_samples - i) / n_fade)
    wave = amplitude * 32767 * fade * np.sin(2 * np.pi * hz * i / RATE_HZ)
    return np.rint(wave).astype("<i2").tobytes()
