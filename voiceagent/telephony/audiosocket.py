"""Asterisk AudioSocket server: one TCP connection per call, one asyncio loop for all of them.

Asterisk's ``AudioSocket(uuid,host:port)`` connects here and sends the call UUID first. Each
connection becomes an `AudioSocketTransport` handed to ``handler(transport, call_uuid)``.
``read()`` paces the call on our own monotonic 20 ms clock and returns silence when Asterisk sent
nothing (it sends nothing while the channel is silent); ``write()`` sends one slin 8 kHz frame
straight away (Asterisk has no jitter buffer, so the per-tick write is the pacing). Hangup is a
``0x00`` frame from us and EOF from Asterisk. A transfer cannot travel over AudioSocket: we hand
the target to ``on_transfer`` and then hang up, and the dialplan continues after ``AudioSocket()``
(see asterisk/extensions.conf and docs/asterisk.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voiceagent.audio.format import BYTES_PER_FRAME, FRAME_MS, RATE_HZ, SILENCE_FRAME
from voiceagent.audio.resample import Resampler
from voiceagent.telephony.audiosocket_protocol import (
    AUDIO_RATES_HZ,
    HANGUP_FRAME,
    Kind,
    ProtocolError,
    describe_error,
    encode,
    parse_dtmf,
    parse_uuid,
    read_frame,
)
from voiceagent.telephony.base import Inbound

log = logging.getLogger(__name__)

DEFAULT_PORT = 9092
"""TCP port the dialplan's ``AudioSocket(${UUID()},voiceagent:9092)`` points at."""
_AUDIO_HEADER = bytes((Kind.SLIN, BYTES_PER_FRAME >> 8, BYTES_PER_FRAME & 0xFF))
_TICK_S = FRAME_MS / 1000
_MAX_DTMF = 32

Handler = Callable[["AudioSocketTransport", str], Awaitable[None]]
"""Runs one call: ``await handler(transport, call_uuid)``; the call ends when it returns."""
TransferHook = Callable[[str, str], Awaitable[None]]
"""``await on_transfer(call_uuid, target)``: tell Asterisk where to send the call next."""


@dataclass(frozen=True)
class AudioSocketConfig:
    """Server limits and timings."""

    host: str = "127.0.0.1"
    """Bind address: loopback, or the compose network's address; never a public one."""
    port: int = DEFAULT_PORT
    """0 picks a free port (tests)."""
    max_connections: int = 64
    """Calls at once; further connections get a hangup frame and are closed."""
    inbound_max_frames: int = 10
    """Reassembled 20 ms frames queued from Asterisk; beyond it the oldest is dropped."""
    first_frame_timeout_s: float = 5.0
    """How long a new connection has to send its UUID frame."""
    payload_timeout_s: float = 2.0
    """How long a frame's payload may lag behind its header."""
    keepalive_after_s: float = 1.0
    """Send a silence frame if the call wrote nothing for this long (Asterisk gives up at 2 s)."""
    flood_audio_factor: float = 4.0
    """More than this many seconds of audio within one second closes the connection."""
    flood_max_frames_per_s: int = 1000
    """More frames than this within one second closes the connection."""
    transfer_timeout_s: float = 3.0
    """How long ``on_transfer`` may take before we hang up anyway."""


class AudioSocketTransport:
    """One call over an AudioSocket connection; implements `CallTransport`."""

    def __init__(
        self,
        call_uuid: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        config: AudioSocketConfig,
        on_transfer: TransferHook | None = None,
    ) -> None:
        self.call_uuid = call_uuid
        self.config = config
        self._reader = reader
        self._writer = writer
        self._on_transfer = on_transfer
        self._loop = asyncio.get_running_loop()
        self._inbox: deque[bytes] = deque(maxlen=config.inbound_max_frames)
        self._partial = bytearray()
        self._last_audio_at = 0.0
        self._carry: dict[int, bytes] = {}
        self._resamplers: dict[int, Resampler] = {}
        self._dtmf = ""
        self._next_tick: float | None = None
        self._last_write_at = self._loop.time()
        self._window_start = self._loop.time()
        self._window_audio_s = 0.0
        self._window_frames = 0
        self.closed = False
        """No more audio will be exchanged (either side hung up, or the protocol broke)."""
        self.hangup_reason = ""
        """``asterisk`` (Asterisk hung up), ``agent``, ``transfer``, ``error`` or ``ended``."""
        self.error: str | None = None
        """Why the connection was closed for a protocol error, if it was."""
        self.transfer_target: str | None = None
        self.frames_in = 0
        """Reassembled 20 ms frames received."""
        self.frames_dropped = 0
        """Inbound frames dropped because the queue was full (oldest first)."""
        self.silent_ticks = 0
        """Ticks on which Asterisk had sent nothing, filled with silence."""
        self.frames_out = 0

    async def read(self) -> Inbound:
        """The next 20 ms tick: waits for our own clock, never for Asterisk."""
        if self.closed:
            return Inbound(SILENCE_FRAME, hangup=True)
        now = self._loop.time()
        if self._next_tick is None:
            self._next_tick = now
        else:
            self._next_tick += _TICK_S
            delay = self._next_tick - now
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.2:
                self._next_tick = now  # fell behind by >200 ms: do not try to catch up
            if self.closed:
                return Inbound(SILENCE_FRAME, hangup=True)
        dtmf, self._dtmf = self._dtmf, ""
        if self._inbox:
            return Inbound(self._inbox.popleft(), dtmf=dtmf)
        if self._partial and self._loop.time() - self._last_audio_at >= 2 * _TICK_S:
            # A prompt's short tail (e.g. 24 bytes) and then silence: play the tail now.
            frame = bytes(self._partial).ljust(BYTES_PER_FRAME, b"\0")
            self._partial.clear()
            return Inbound(frame, dtmf=dtmf)
        self.silent_ticks += 1
        return Inbound(SILENCE_FRAME, dtmf=dtmf)

    async def write(self, pcm16_8k: bytes) -> None:
        """Send one frame to Asterisk now (slin, 8 kHz); ignored once the call is closed."""
        if self.closed:
            return
        if len(pcm16_8k) == BYTES_PER_FRAME:
            self._writer.write(_AUDIO_HEADER + pcm16_8k)
        else:
            self._writer.write(encode(Kind.SLIN, pcm16_8k))
        self.frames_out += 1
        self._last_write_at = self._loop.time()
        if self._writer.transport.get_write_buffer_size() > 16 * BYTES_PER_FRAME:
            try:
                async with asyncio.timeout(1.0):
                    await self._writer.drain()
            except (TimeoutError, ConnectionError) as exc:
                self._close("error", f"Asterisk stopped reading our audio ({exc!r})")

    async def hangup(self) -> None:
        """End the call: a ``0x00`` frame, then close the connection."""
        self._close("agent")

    async def transfer(self, target: str) -> bool:
        """Hand ``target`` to the ``on_transfer`` hook, then hang up; False if it cannot.

        AudioSocket has no transfer frame. The dialplan continues after ``AudioSocket()``
        returns and routes the call by what the hook published (an AMI global variable, an HTTP
        lookup). Without a hook, or when it fails, the call stays connected and False is
        returned, so the agent can offer a callback instead of dropping the debtor.
        """
        self.transfer_target = target
        if self._on_transfer is None:
            log.error("call %s: transfer to %r but no on_transfer hook", self.call_uuid, target)
            return False
        try:
            async with asyncio.timeout(self.config.transfer_timeout_s):
                await self._on_transfer(self.call_uuid, target)
        except Exception:
            log.exception("call %s: on_transfer(%r) failed", self.call_uuid, target)
            return False
        self._close("transfer")
        return True

    def _close(self, reason: str, error: str | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self.hangup_reason = reason
        self.error = error
        if error is not None:
            log.error("call %s: %s; closing this connection", self.call_uuid, error)
        if reason != "asterisk" and not self._writer.is_closing():
            self._writer.write(HANGUP_FRAME)
        self._writer.close()

    async def serve(self, handler: Handler) -> None:
        """Run the receive loop and the keepalive beside ``handler`` until the call ends."""
        try:
            async with asyncio.TaskGroup() as tg:
                rx = tg.create_task(self._receive())
                keepalive = tg.create_task(self._keepalive())
                try:
                    await handler(self, self.call_uuid)
                finally:
                    rx.cancel()
                    keepalive.cancel()
        finally:
            self._close("ended")
            log.info(
                "call %s ended (%s): %d frames in, %d dropped, %d silent ticks, %d frames out",
                self.call_uuid, self.hangup_reason, self.frames_in, self.frames_dropped,
                self.silent_ticks, self.frames_out,
            )  # fmt: skip

    async def _receive(self) -> None:
        try:
            while not self.closed:
                frame = await read_frame(self._reader, self.config.payload_timeout_s)
                if frame is None:
                    self._close("asterisk")
                    return
                self._check_flood(frame.kind, len(frame.payload))
                if frame.kind in AUDIO_RATES_HZ:
                    self._on_audio(AUDIO_RATES_HZ[frame.kind], frame.payload)
                elif frame.kind == Kind.DTMF:
                    self._dtmf = (self._dtmf + parse_dtmf(frame.payload))[-_MAX_DTMF:]
                elif frame.kind == Kind.HANGUP:
                    self._close("asterisk")
                elif frame.kind == Kind.ERROR:
                    self._close("error", f"Asterisk sent {describe_error(frame.payload)}")
                else:
                    raise ProtocolError(f"unexpected frame kind 0x{frame.kind:02x} mid-call")
        except ProtocolError as exc:
            self._close("error", str(exc))
        except ConnectionError as exc:
            self._close("asterisk")
            log.info("call %s: connection lost (%r)", self.call_uuid, exc)

    def _check_flood(self, kind: int, n_bytes: int) -> None:
        now = self._loop.time()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_audio_s, self._window_frames = now, 0.0, 0
        self._window_frames += 1
        if kind in AUDIO_RATES_HZ:
            self._window_audio_s += n_bytes / (2 * AUDIO_RATES_HZ[kind])
        if self._window_audio_s > self.config.flood_audio_factor:
            raise ProtocolError(f"flood: {self._window_audio_s:.1f} s of audio within one second")
        if self._window_frames > self.config.flood_max_frames_per_s:
            raise ProtocolError(f"flood: over {self.config.flood_max_frames_per_s} frames/s")

    def _on_audio(self, rate_hz: int, payload: bytes) -> None:
        if rate_hz != RATE_HZ:
            payload = self._resample(rate_hz, payload)
        self._last_audio_at = self._loop.time()
        partial = self._partial
        partial += payload
        while len(partial) >= BYTES_PER_FRAME:
            if len(self._inbox) == self._inbox.maxlen:
                self.frames_dropped += 1  # deque(maxlen) drops the oldest
            self._inbox.append(bytes(partial[:BYTES_PER_FRAME]))
            del partial[:BYTES_PER_FRAME]
            self.frames_in += 1

    def _resample(self, rate_hz: int, payload: bytes) -> bytes:
        data = self._carry.pop(rate_hz, b"") + payload
        if len(data) % 2:
            self._carry[rate_hz] = data[-1:]
            data = data[:-1]
        resampler = self._resamplers.get(rate_hz)
        if resampler is None:
            log.info(
                "call %s: audio at %d Hz, resampling to %d Hz", self.call_uuid, rate_hz, RATE_HZ
            )
            resampler = self._resamplers[rate_hz] = Resampler(rate_hz, RATE_HZ)
        return resampler.process(data)

    async def _keepalive(self) -> None:
        # Asterisk's AudioSocket() gives up after 2 s without traffic; the session writes every
        # 20 ms, so this only fires while the handler is still setting the call up.
        while not self.closed:
            await asyncio.sleep(self.config.keepalive_after_s / 2)
            if self._loop.time() - self._last_write_at >= self.config.keepalive_after_s:
                await self.write(SILENCE_FRAME)


class AudioSocketServer:
    """Accepts Asterisk's AudioSocket connections and runs ``handler`` for each call."""

    def __init__(
        self,
        handler: Handler,
        config: AudioSocketConfig | None = None,
        on_transfer: TransferHook | None = None,
    ) -> None:
        self.handler = handler
        self.config = config or AudioSocketConfig()
        self.on_transfer = on_transfer
        self.active = 0
        """Calls in progress."""
        self.rejected = 0
        """Connections refused because ``max_connections`` calls were in progress."""
        self.protocol_errors = 0
        """Connections closed for breaking the protocol."""
        self._server: asyncio.Server | None = None
        self._calls: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._on_connection, self.config.host, self.config.port
        )
        log.info("AudioSocket server listening on %s:%d", self.config.host, self.port)

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop accepting calls; give those in progress ``grace_s`` to end, then cancel them."""
        if self._server is not None:
            self._server.close()
        calls = set(self._calls)
        if calls and grace_s > 0:
            await asyncio.wait(calls, timeout=grace_s)
        for task in calls:
            task.cancel()
        if calls:
            await asyncio.wait(calls, timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> AudioSocketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        if self.active >= self.config.max_connections:
            self.rejected += 1
            log.warning(
                "AudioSocket %s refused: %d calls in progress (max_connections)", peer, self.active
            )
            writer.write(HANGUP_FRAME)
            writer.close()
            return
        self.active += 1
        task = asyncio.current_task()
        if task is not None:
            self._calls.add(task)
        try:
            call_uuid = await self._first_frame(reader, peer)
            if call_uuid is None:
                self.protocol_errors += 1
                writer.write(HANGUP_FRAME)
                return
            transport = AudioSocketTransport(
                call_uuid, reader, writer, self.config, self.on_transfer
            )
            await transport.serve(self.handler)
            if transport.error is not None:
                self.protocol_errors += 1
        except Exception:
            log.exception("AudioSocket %s: the call handler failed", peer)
        except asyncio.CancelledError:
            # asyncio's start_server callback logs a cancelled connection task as an error.
            log.info("AudioSocket %s: call cancelled by server shutdown", peer)
        finally:
            self.active -= 1
            self._calls.discard(task)
            writer.close()

    async def _first_frame(self, reader: asyncio.StreamReader, peer: object) -> str | None:
        """The call UUID, or ``None`` (logged) when the first frame is anything else."""
        try:
            async with asyncio.timeout(self.config.first_frame_timeout_s):
                frame = await read_frame(reader, self.config.payload_timeout_s)
            if frame is None:
                raise ProtocolError("closed before sending its UUID frame")
            if frame.kind != Kind.UUID:
                raise ProtocolError(
                    f"first frame must be the UUID (kind 0x01), got kind 0x{frame.kind:02x}"
                )
            return parse_uuid(frame.payload)
        except TimeoutError:
            log.error(
                "AudioSocket %s: no UUID frame within %g s; closing this connection",
                peer,
                self.config.first_frame_timeout_s,
            )
        except (ProtocolError, ConnectionError) as exc:
            log.error("AudioSocket %s: %s; closing this connection", peer, exc)
        return None
