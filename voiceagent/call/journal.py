"""A call's events, written as they happen: answered, disclosure played, verified, hang-up.

Commitments (promises, callbacks, flags) go through the sink's own ``commit``.

Events are queued and written in order on the io pool by one task, so the 20 ms tick never
waits for the database; a sink without an ``event`` method simply gets none.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

log = logging.getLogger(__name__)


class Journal:
    """Writes ``sink.event(call_id, kind, data)`` for each noted event, in order."""

    def __init__(self, sink: object, call_id: str, pool: ThreadPoolExecutor) -> None:
        self._write = getattr(sink, "event", None)
        self.call_id = call_id
        self.pool = pool
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=64)
        self.dropped = 0
        """Events not written because the database fell far behind (logged once)."""
        self.failed = 0

    def note(self, kind: str, **data: Any) -> None:
        """Queue an event (never blocks; drops and counts when the queue is full)."""
        if self._write is None:
            return
        try:
            self._queue.put_nowait((kind, data))
        except asyncio.QueueFull:
            if not self.dropped:
                log.error("call %s: event journal full; dropping events", self.call_id)
            self.dropped += 1

    async def run(self) -> None:
        """The writer task (cancelled with the call, after :meth:`drain`)."""
        loop = asyncio.get_running_loop()
        write = self._write
        if write is None:
            return
        while True:
            kind, data = await self._queue.get()
            try:
                await loop.run_in_executor(self.pool, write, self.call_id, kind, data)
            except Exception:
                if not self.failed:
                    log.exception("call %s: event %s not written", self.call_id, kind)
                self.failed += 1
            finally:
                self._queue.task_done()

    async def drain(self, timeout_s: float) -> None:
        """Wait (bounded) until every queued event is written."""
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
