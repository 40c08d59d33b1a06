"""A fake Asterisk on the other end of an AudioSocket, behaving as a real one does.

It reproduces what was observed against Asterisk 23 (shared/research/asterisk-audiosocket.md):
the UUID as 16 raw bytes first; audio frames of varying size (320 B, then a short tail); nothing
at all while the channel is silent; DTMF as kind 0x03 on key-up; any frame from the server other
than audio or hangup is an error that ends the call; hanging up closes TCP without a 0x00 frame;
the call is dropped after 2 s with no traffic in either direction. Everything the server sends is
recorded with its arrival time, so tests can check pacing and content.

`Call` and `Calls` stand in for the other end: a call session that reads and writes once per
tick and records everything it was given.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from voiceagent.audio.format import SILENCE_FRAME
from voiceagent.telephony.audiosocket import AudioSocketTransport
from voiceagent.telephony.audiosocket_protocol import (
    AUDIO_RATES_HZ,
    Kind,
    ProtocolError,
    encode,
    read_frame,
)
from voiceagent.telephony.base import Inbound

IDLE_TIMEOUT_S = 2.0
"""Asterisk's AudioSocket() gives up after this long without traffic either way."""


@dataclass(frozen=True)
class Received:
    """One frame from the server, stamped with ``time.monotonic()`` on arrival."""

    t: float
    kind: int
    payload: bytes


@dataclass
class AsteriskPeer:
    """One call as Asterisk's ``AudioSocket()`` application would make it."""

    host: str
    port: int
    call_uuid: uuid.UUID = field(default_factory=uuid.uuid4)
    idle_timeout_s: float = IDLE_TIMEOUT_S
    received: list[Received] = field(default_factory=list)
    end_reason: str = ""
    """``server_hangup`` (0x00), ``server_eof``, ``server_error`` (a kind Asterisk rejects),
    ``idle_timeout`` or ``peer_hangup``."""
    error: str = ""

    def __post_init__(self) -> None:
        self.ended = asyncio.Event()
        self._changed = asyncio.Condition()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_traffic = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, send_uuid: bool = True) -> None:
        """Open the TCP connection and, like Asterisk, send the UUID frame first."""
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), 5
        )
        if send_uuid:
            self._send(encode(Kind.UUID, self.call_uuid.bytes))
        self._tasks = [
            asyncio.create_task(self._receive()),
            asyncio.create_task(self._idle_watchdog()),
        ]

    def send_raw(self, frame_bytes: bytes) -> None:
        """Write arbitrary bytes (for tests of what a broken peer does)."""
        self._send(frame_bytes)

    def _send(self, frame_bytes: bytes) -> None:
        assert self._writer is not None
        if self.ended.is_set():
            return
        self._writer.write(frame_bytes)
        self._last_traffic = time.monotonic()

    async def play(
        self, pcm: bytes, kind: int = Kind.SLIN, chunk_sizes: Sequence[int] = (320,)
    ) -> None:
        """Send audio in real time, cutting it into ``chunk_sizes`` (cycled); the tail is short.

        Each chunk is sent when its audio is due (like Asterisk's 20 ms media clock, but on a
        deadline grid so the pace does not drift).
        """
        bytes_per_s = 2 * AUDIO_RATES_HZ[kind]
        start = time.monotonic()
        sent = 0
        i = 0
        while sent < len(pcm) and not self.ended.is_set():
            size = chunk_sizes[i % len(chunk_sizes)]
            i += 1
            self._send(encode(kind, pcm[sent : sent + size]))
            sent += size
            delay = start + sent / bytes_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    def dtmf(self, key: str) -> None:
        """A key released (Asterisk sends DTMF on key-up only)."""
        self._send(encode(Kind.DTMF, key.encode("ascii")))

    async def hang_up(self) -> None:
        """Hang up as Asterisk does: close TCP, no 0x00 frame."""
        self._finish("peer_hangup")
        await self.wait_ended(5)

    async def wait_ended(self, timeout_s: float) -> str:
        """Until the call is over; returns why."""
        await asyncio.wait_for(self.ended.wait(), timeout_s)
        return self.end_reason

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Until ``predicate()`` holds, re-checked on every frame received (or the end)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: predicate() or self.ended.is_set())
        assert predicate(), f"call ended ({self.end_reason}) before the condition held"

    def audio(self) -> list[Received]:
        """Audio frames from the server, in order."""
        return [r for r in self.received if r.kind in AUDIO_RATES_HZ]

    async def close(self) -> None:
        """Release everything (test teardown)."""
        self._finish(self.end_reason or "peer_hangup")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _finish(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended.set()
        if self._writer is not None:
            self._writer.close()

    async def _receive(self) -> None:
        assert self._reader is not None
        try:
            while not self.ended.is_set():
                try:
                    frame = await read_frame(self._reader)
                except ProtocolError as exc:
                    self.error = str(exc)
                    self._finish("server_error")
                    break
                if frame is None:
                    self._finish("server_eof")
                    break
                self._last_traffic = time.monotonic()
                self.received.append(Received(self._last_traffic, frame.kind, frame.payload))
                if frame.kind == Kind.HANGUP:
                    self._finish("server_hangup")
                elif frame.kind not in AUDIO_RATES_HZ:
                    # Asterisk logs an error and ends the call on any other kind (0x01, 0x03...).
                    self.error = f"server sent kind 0x{frame.kind:02x}"
                    self._finish("server_error")
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionError:
            self._finish("server_eof")
        async with self._changed:
            self._changed.notify_all()

    async def _idle_watchdog(self) -> None:
        while not self.ended.is_set():
            idle = time.monotonic() - self._last_traffic
            if idle >= self.idle_timeout_s:
                self._finish("idle_timeout")
                async with self._changed:
                    self._changed.notify_all()
                return
            await asyncio.sleep(min(0.1, self.idle_timeout_s - idle))


@dataclass
class Call:
    """A stand-in for CallSession: one read and one write per tick, everything recorded."""

    out: Callable[[int], bytes] = lambda _i: SILENCE_FRAME
    end_after_ticks: int | None = None
    transfer_to: str | None = None
    hold: asyncio.Event | None = None
    """When set, the call waits for this event before its first read (slow call setup)."""
    ticks: list[tuple[float, Inbound]] = field(default_factory=list)
    transport: AudioSocketTransport | None = None
    call_uuid: str = ""
    started: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ticked: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Until ``predicate()`` holds, re-checked after every tick."""
        async with asyncio.timeout(timeout_s), self.ticked:
            await self.ticked.wait_for(lambda: predicate() or self.done.is_set())
        assert predicate(), "the call ended before the condition held"

    async def run(self, transport: AudioSocketTransport, call_uuid: str) -> None:
        self.transport, self.call_uuid = transport, call_uuid
        self.started.set()
        try:
            if self.hold is not None:
                await asyncio.wait_for(self.hold.wait(), 10)
            tick = 0
            while True:
                inbound = await transport.read()
                self.ticks.append((time.monotonic(), inbound))
                async with self.ticked:
                    self.ticked.notify_all()
                if inbound.hangup:
                    return
                await transport.write(self.out(tick))
                tick += 1
                if self.end_after_ticks is not None and tick >= self.end_after_ticks:
                    if self.transfer_to is None:
                        await transport.hangup()
                    elif not await transport.transfer(self.transfer_to):
                        await transport.hangup()  # refused: the session would offer a callback
                    if transport.closed:
                        return
        finally:
            self.done.set()
            async with self.ticked:
                self.ticked.notify_all()

    def audio(self) -> bytes:
        return b"".join(i.pcm16_8k for _, i in self.ticks if i.pcm16_8k != SILENCE_FRAME)

    def dtmf(self) -> str:
        return "".join(i.dtmf for _, i in self.ticks)


class Calls:
    """The server's handler: one `Call` per connection, made by ``make`` and kept by UUID."""

    def __init__(self, make: Callable[[], Call] = Call) -> None:
        self.make = make
        self.by_uuid: dict[str, Call] = {}
        self._new = asyncio.Condition()

    async def __call__(self, transport: AudioSocketTransport, call_uuid: str) -> None:
        call = self.by_uuid[call_uuid] = self.make()
        async with self._new:
            self._new.notify_all()
        await call.run(transport, call_uuid)

    async def get(self, peer: AsteriskPeer, timeout_s: float = 5) -> Call:
        key = str(peer.call_uuid)
        async with asyncio.timeout(timeout_s), self._new:
            await self._new.wait_for(lambda: key in self.by_uuid)
        return self.by_uuid[key]
