"""The recognizer side of a call: speech batches in, one final transcript per turn out.

One task per call owns the call's recognizer session and awaits each batch before the next, so
the session is never used from two threads. The state's grammar is switched between turns;
a grammar result that is not confident enough is decoded again free-form (a grammar always
"hears" one of its phrases).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from voiceagent.asr.base import Recognizer, RecognizerSession, Transcript, is_confident
from voiceagent.vad import SpeechEnded

log = logging.getLogger(__name__)
T = TypeVar("T")

RunIn = Callable[..., Awaitable[Any]]
"""``run_in(pool, fn, *args)``: the call's way of running blocking work on a pool."""


@dataclass(frozen=True, slots=True)
class Heard:
    """The final transcript of one debtor turn."""

    speech: SpeechEnded
    transcript: Transcript
    asr_ms: float
    """From the end of the turn to the final transcript (free-form re-decode included)."""


@dataclass(frozen=True, slots=True)
class _Grammar:
    phrases: tuple[str, ...] | None


_DISCARD = SpeechEnded(onset_ms=-1, end_ms=-1, speech_ms=0, pcm16_8k=b"")
"""Marker: finish the recognizer's utterance and throw the result away (it was noise)."""


class Listener:
    """Feeds one call's recognizer and hands each final to ``out`` as :class:`Heard`."""

    def __init__(
        self,
        recognizer: Recognizer,
        pool: ThreadPoolExecutor,
        run_in: RunIn,
        out: asyncio.Queue[tuple[str, Any]],
        min_confidence: float,
    ) -> None:
        self.recognizer = recognizer
        self.pool = pool
        self._run_in = run_in
        self._out = out
        self.min_confidence = min_confidence
        self.supports_grammar = recognizer.supports_grammar
        self._queue: asyncio.Queue[bytes | SpeechEnded | _Grammar] = asyncio.Queue(maxsize=64)
        self._freeform: RecognizerSession | None = None
        self.dropped_batches = 0
        """Batches dropped because the recognizer fell behind (said once, then counted)."""

    def speech(self, pcm16_8k: bytes) -> None:
        """Queue a batch of the current utterance's audio."""
        self._put(pcm16_8k)

    def end_of_turn(self, ev: SpeechEnded) -> None:
        """The utterance is over: the final goes out once decoded."""
        self._put(ev)

    def discard(self) -> None:
        """The utterance was noise: finish it and throw the result away."""
        self._put(_DISCARD)

    def grammar(self, phrases: Sequence[str] | None) -> None:
        """Recognize the next turns against these phrases (None: free-form)."""
        if self.supports_grammar:
            self._put(_Grammar(tuple(phrases) if phrases is not None else None))

    def _put(self, item: bytes | SpeechEnded | _Grammar) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            if not self.dropped_batches:
                log.warning("recognizer queue full: dropping batches")
            self.dropped_batches += 1

    async def run(self) -> None:
        """The feeder task: runs until cancelled with the call."""
        session = self.recognizer.open()
        audio: list[bytes] = []
        grammar_on = False
        while True:
            item = await self._queue.get()
            if isinstance(item, _Grammar):
                phrases = list(item.phrases) if item.phrases is not None else None
                await self._run_in(self.pool, session.set_grammar, phrases)
                grammar_on = phrases is not None
            elif item is _DISCARD:
                audio.clear()
                await self._run_in(self.pool, session.finish)
            elif isinstance(item, SpeechEnded):
                started = time.perf_counter()
                final = await self._run_in(self.pool, session.finish)
                if grammar_on and not is_confident(final, self.min_confidence):
                    final = await self._run_in(self.pool, self._decode_freeform, audio)
                audio = []
                asr_ms = (time.perf_counter() - started) * 1000
                await self._out.put(("heard", Heard(item, final, asr_ms)))
            else:
                audio.append(item)
                await self._run_in(self.pool, session.accept, item)

    def _decode_freeform(self, audio: list[bytes]) -> Transcript:
        """A grammar always hears something: decode the same utterance without one."""
        if self._freeform is None:
            self._freeform = self.recognizer.open(None)
        for chunk in audio:
            self._freeform.accept(chunk)
        return self._freeform.finish()
