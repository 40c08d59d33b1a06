"""What a call session is given (pools, timings) and what it leaves behind (result, metrics)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pools:
    """The named, bounded thread pools engine calls run on."""

    asr: ThreadPoolExecutor
    tts: ThreadPoolExecutor
    io: ThreadPoolExecutor

    @classmethod
    def create(cls, asr: int = 2, tts: int = 2, io: int = 2) -> Pools:
        """Pools sized from config."""
        return cls(
            ThreadPoolExecutor(asr, thread_name_prefix="asr"),
            ThreadPoolExecutor(tts, thread_name_prefix="tts"),
            ThreadPoolExecutor(io, thread_name_prefix="io"),
        )

    def shutdown(self) -> None:
        """Stop the pools."""
        for pool in (self.asr, self.tts, self.io):
            pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class SessionConfig:
    """Turn-taking timings (milliseconds)."""

    barge_in_ms: int = 200
    """Debtor speech over interruptible agent audio for this long stops the agent."""
    backchannel_max_ms: int = 900
    """Longer utterances are never treated as backchannels."""
    no_input_ms: int = 6000
    """Silence after the agent finished asking before the dialog gets NoInput."""
    max_call_ms: int = 20 * 60_000
    grammar_min_confidence: float = 0.7
    """A grammar result less confident than this is decoded again free-form."""
    amd: bool = False
    """Outbound: classify who answered before the dialog starts (a person starts it; a machine
    gets the dialplan's voicemail after the beep, or a hang-up)."""
    render_ahead: bool = True
    """While the agent speaks, render the prompts that may follow with the values the call
    knows by then (a promise's amount and date), so the next reply comes from the cache."""


@dataclass
class TurnMetrics:
    """Latency of one agent reply, measured from the true end of the debtor's speech."""

    end_of_speech_ms: int
    asr_ms: float = 0.0
    dialog_ms: float = 0.0
    tts_first_ms: float = 0.0
    first_frame_ms: int | None = None
    """Call time of the reply's first audio frame out."""

    @property
    def latency_ms(self) -> int | None:
        """End of speech -> first agent audio frame out."""
        return None if self.first_frame_ms is None else self.first_frame_ms - self.end_of_speech_ms


@dataclass
class CallResult:
    """What a finished call leaves behind."""

    outcome: dict[str, Any]
    transcript: list[dict[str, Any]] = field(default_factory=list)
    turns: list[TurnMetrics] = field(default_factory=list)
    barge_ins: list[dict[str, int]] = field(default_factory=list)
    duration_ms: int = 0
    ended_by: str = ""
    recording_errors: int = 0
    """Seconds of recording that could not be written (disk full, ...)."""
    answer: dict[str, Any] | None = None
    """Answering-machine detection figures (outbound calls with ``SessionConfig.amd``)."""
