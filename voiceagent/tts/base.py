"""The synthesizer interface: text in, PCM16 8 kHz chunks out, sentence by sentence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class Synthesizer(Protocol):
    """A loaded voice shared by every call in the process (thread-safe per call)."""

    name: str
    """Identifies the voice and its synthesis parameters (part of the prompt-cache key)."""

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Yield PCM16 mono 8 kHz audio, one chunk per clause, as soon as each is ready."""
        ...
