"""Outbound audio: a bounded, flushable queue that hands out exactly one 20 ms frame per tick."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from voiceagent.audio.format import BYTES_PER_FRAME, SAMPLES_PER_FRAME, SILENCE_FRAME
from voiceagent.vad import rms


@dataclass(frozen=True, slots=True)
class Segment:
    """Where a queued piece of speech came from (to resume it after a backchannel)."""

    prompt_id: str
    clause: int
    interruptible: bool
    say_no: int = 0
    """Which spoken prompt of the call this is (one number per Say, counting from 1)."""
    say_text: str = ""
    """The whole prompt's text (the transcript shows it when its first frame plays)."""


class Playout:
    """Frames waiting to be sent; ``flush`` drops them at once (barge-in).

    Bounded at ``max_frames`` (overflow rule: ``push`` refuses and the producer waits, since
    agent audio is never dropped silently). Cheap per tick: a deque pop, no copies.
    """

    def __init__(self, max_frames: int = 3000) -> None:
        self._frames: deque[tuple[bytes, Segment | None]] = deque()
        self._tail = b""
        self._max = max_frames
        self.current: Segment | None = None
        """The segment of the frame sent last (None while silent)."""
        self.level = 0.0
        """RMS of the frame sent last (for echo gating of inbound speech)."""
        self.frames_sent = 0
        self.frames_flushed = 0

    def room(self) -> int:
        """How many frames can still be queued."""
        return self._max - len(self._frames)

    def push(self, pcm16_8k: bytes, segment: Segment | None = None) -> bool:
        """Queue audio (any length; split into frames). False if the queue is full."""
        data = self._tail + pcm16_8k
        n_frames = len(data) // BYTES_PER_FRAME
        if n_frames > self.room():
            return False
        for i in range(n_frames):
            self._frames.append((data[i * BYTES_PER_FRAME : (i + 1) * BYTES_PER_FRAME], segment))
        self._tail = data[n_frames * BYTES_PER_FRAME :]
        return True

    def end_segment(self, segment: Segment | None = None) -> None:
        """Pad the last partial frame of a segment with silence and queue it."""
        if self._tail:
            padded = self._tail + bytes(BYTES_PER_FRAME - len(self._tail))
            self._tail = b""
            self._frames.append((padded, segment))

    @property
    def busy(self) -> bool:
        """Whether audio is queued."""
        return bool(self._frames)

    @property
    def queued_ms(self) -> int:
        """Milliseconds of audio queued."""
        return len(self._frames) * SAMPLES_PER_FRAME // 8

    def next_frame(self) -> bytes:
        """The frame to send this tick (silence when nothing is queued)."""
        if not self._frames:
            self.current = None
            self.level = 0.0
            return SILENCE_FRAME
        frame, segment = self._frames.popleft()
        self.current = segment
        self.level = rms(frame)
        self.frames_sent += 1
        return frame

    def flush(self) -> Segment | None:
        """Drop everything queued; returns the segment that was playing."""
        playing = self.current or (self._frames[0][1] if self._frames else None)
        self.frames_flushed += len(self._frames)
        self._frames.clear()
        self._tail = b""
        self.current = None
        self.level = 0.0
        return playing
