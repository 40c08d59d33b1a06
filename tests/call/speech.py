"""Real test speech from espeak-ng (Debian), as PCM16 8 kHz."""

from __future__ import annotations

import shutil
from functools import lru_cache

from tests.model_gate import need


@lru_cache(maxsize=64)
def espeak(text: str, locale: str = "es-419") -> bytes:
    need(shutil.which("espeak-ng") is not None, "espeak-ng (apt-get install espeak-ng)")
    from voiceagent.tts.espeak import EspeakSpeaker

    return EspeakSpeaker(locale).speak(text)
