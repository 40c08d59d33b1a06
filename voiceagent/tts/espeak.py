"""espeak-ng as a second, clearly different voice: the simulated debtor speaks with it."""

from __future__ import annotations

import io
import subprocess
import wave

from voiceagent.audio.resample import resample_pcm16
from voiceagent.nlu.lexicon import language_of

_VOICES = {"es": "es-419", "pt": "pt-br", "en": "en-us"}


class EspeakSpeaker:
    """Speaks text with espeak-ng (Debian package) and returns PCM16 8 kHz."""

    def __init__(self, locale: str, words_per_minute: int = 135, gap_10ms: int = 4) -> None:
        self.voice = _VOICES[language_of(locale)]
        self.words_per_minute = words_per_minute
        self.gap_10ms = gap_10ms
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
