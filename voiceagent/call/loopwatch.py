"""Event-loop lag: how late the loop wakes a 100 ms timer (anything blocking the loop shows)."""

from __future__ import annotations

import asyncio
import time

import numpy as np


class LoopLagMonitor:
    """Samples loop lag every ``interval_ms`` while running; keeps the samples (seconds)."""

    def __init__(self, interval_ms: int = 100) -> None:
        self.interval_s = interval_ms / 1000
        self.samples_s: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            self.samples_s.append(max(0.0, time.perf_counter() - started - self.interval_s))

    def start(self) -> None:
        """Begin sampling on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def quantile_s(self, q: float) -> float:
        """Lag quantile in seconds (0 with no samples)."""
        return float(np.quantile(self.samples_s, q)) if self.samples_s else 0.0
