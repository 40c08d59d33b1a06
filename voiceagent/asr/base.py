"""The recognizer interface: one shared model per process, one session per call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Word:
    """One recognized word with its timing and confidence."""

    text: str
    start_ms: int
    end_ms: int
    confidence: float
    """0..1; a grammar always "hears" something, so low values mean a forced match."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a recognizer heard in one utterance."""

    text: str
    final: bool
    words: tuple[Word, ...] = field(default=())
    confidence: float = 1.0
    """Mean word confidence (1.0 when the engine gives none)."""
    engine: str = ""


def is_confident(transcript: Transcript, min_confidence: float) -> bool:
    """Whether a final has real words heard with at least ``min_confidence`` (engine-agnostic)."""
    heard = [w for w in transcript.words if w.text not in ("[unk]", "<unk>")]
    return bool(transcript.text.strip()) and bool(heard) and transcript.confidence >= min_confidence


class RecognizerSession(Protocol):
    """One call's recognizer: fed speech (PCM16 8 kHz), asked for the final text at end of turn."""

    def accept(self, pcm16_8k: bytes) -> Transcript | None:
        """Feed audio; return a partial transcript when the engine has one."""
        ...

    def finish(self) -> Transcript:
        """End the utterance and return the final transcript; the session is ready for the next."""
        ...

    def set_grammar(self, phrases: Sequence[str] | None) -> None:
        """Recognize only ``phrases`` from the next utterance on (None: free-form again).

        Engines without grammars (``Recognizer.supports_grammar`` False) accept and ignore it.
        """
        ...


class Recognizer(Protocol):
    """A loaded model shared by every call in the process."""

    name: str
    supports_grammar: bool
    """Whether sessions honour ``set_grammar`` (a call then switches grammars per state)."""

    def open(self, grammar: Sequence[str] | None = None) -> RecognizerSession:
        """A new per-call session, optionally restricted to a grammar of phrases."""
        ...
