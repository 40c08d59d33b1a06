"""Pacing of the call loop: real time for live calls, fast-forward for simulations."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from voiceagent.audio.format import FRAME_MS


class Clock(Protocol):
    """Called once per 20 ms tick, after the tick's work."""

    async def tick(self, busy: bool) -> None:
        """Wait until the next tick is due."""
        ...


class TransportClock:
    """The transport paces the call (RTP arrives every 20 ms): just yield to other tasks."""

    async def tick(self, busy: bool) -> None:
        """Yield."""
        await asyncio.sleep(0)


class RealTimeClock:
    """Ticks on a 20 ms grid of the monotonic clock (no drift: deadlines, not sleeps)."""

    def __init__(self) -> None:
        self._next = time.monotonic()

    async def tick(self, busy: bool) -> None:
        """Sleep until the next 20 ms boundary."""
        self._next += FRAME_MS / 1000
        delay = self._next - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.2:
            self._next = time.monotonic()  # fell behind by >200 ms: do not try to catch up


class FastForwardClock:
    """Simulation time: free-running while idle, real time while an engine is working.

    Skipping idle time keeps a simulated call fast; running in real time while ASR, the dialog
    or TTS is busy keeps every measured latency honest (the debtor waits as long as in a call).
    """

    def __init__(self) -> None:
        self._real = RealTimeClock()

    async def tick(self, busy: bool) -> None:
        """Wait a real 20 ms only while engines are busy."""
        if busy:
            await self._real.tick(busy)
        else:
            self._real._next = time.monotonic()
            await asyncio.sleep(0)
