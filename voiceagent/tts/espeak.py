"""espeak-ng as a second, clearly different voice: the simulated debtor speaks with it."""

from __future__ import annotations

import io
import subprocess
import wave

from voiceagent.audio.resample import resample_pcm16
from voiceagent.nlu.lexicon import language_of

_VOICES = {"es": "es-419", "pt": "pt-br", "en": "en-us"}
# Slowed down: Whisper base understands slow espeak-ng well through the 8 kHz telephone band,
# default-speed espeak-ng poorly (measured in ../shared/research/spanish-asr-hunt.md and here).
_PACE = {"es": (135, 4), "pt": (120, 6), "en": (135, 4)}


class EspeakSpeaker:
    """Speaks text with espeak-ng (Debian package) and returns PCM16 8 kHz."""

    def __init__(
        self, locale: str, words_per_minute: int | None = None, gap_10ms: int | None = None
    ) -> None:
        lang = language_of(locale)
        self.voice = _VOICES[lang]
        self.words_per_minute = words_per_minute or _PACE[lang][0]
        self.gap_10ms = gap_10ms if gap_10ms is not None else _PACE[lang][1]
        self.name = f"espeak-ng:{self.voice}:{words_per_minute}:{gap_10ms}"

    def speak(self, text: str) -> bytes:
        """Synthesize one line (blocking: run it on a pool)."""
        proc = subprocess.run(
            [
                "espeak-ng",
                "-v",
                self.voice,
                "-s",
                str(self.words_per_minute),
                "-g",
                str(self.gap_10ms),
                "--stdout",
                text,
            ],
            capture_output=True,
            timeout=30,
            check=True,
        )
        with wave.open(io.BytesIO(proc.stdout)) as wav:
            rate = wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
        return resample_pcm16(pcm, rate, 8000)
