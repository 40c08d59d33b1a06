"""One SIP call as a ``CallTransport``: inbound jitter queue, flushable outbound queue, control.

Nothing here imports rfcvoip. ``pyvoip.py`` plugs :class:`RtpInboundSink`,
:class:`RtpOutboundSource` and :func:`dtmf_parser` into rfcvoip's RTP client (its receive and
transmit threads call them) and implements :class:`CallControl` with rfcvoip's SIP layer, using
:func:`build_refer` for blind transfers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from voiceagent.audio.format import BYTES_PER_FRAME, FRAME_MS, SILENCE_FRAME
from voiceagent.telephony.base import Inbound

log = logging.getLogger(__name__)

EVENTS = "0123456789*#ABCD"
"""RFC 4733 event codes 0-15."""
SIPFRAG_STATUS = re.compile(r"SIP/2\.0\s+(\d{3})")

INBOX_FRAMES = 10
"""Inbound frames held before the oldest is dropped (200 ms)."""
PRIME_FRAMES = 2
"""Frames queued before ``read`` starts consuming after an underrun (40 ms jitter cushion)."""
OUTBOX_FRAMES = 1500
"""Outbound frames held (30 s); beyond that the oldest are dropped and counted."""


class CallControl(Protocol):
    """Blocking SIP operations on one dialog (run on the endpoint's pool, never on the loop)."""

    def hangup(self) -> None:
        """Send BYE and stop media."""
        ...

    def refer(self, target: str) -> TransferResult:
        """Send an in-dialog REFER to ``target`` and wait for its outcome."""
        ...


@dataclass(frozen=True, slots=True)
class TransferResult:
    """What the far end said about a blind transfer."""

    refer_status: int | None
    """Final response to the REFER (202 when accepted), None when nothing came back."""
    notify_status: int | None = None
    """Status line of the last NOTIFY sipfrag (e.g. 200 once the target answered)."""


class RtpInboundSink:
    """Takes rfcvoip's decoded PCM16 (in place of its jitter buffer) and hands on 20 ms frames.

    Called on rfcvoip's RTP receive thread; ``deliver`` must be thread-safe.
    """

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self._deliver = deliver
        self._carry = b""

    def write(self, offset: int, data: bytes) -> None:
        """One decoded packet (``offset`` is rfcvoip's byte position; arrival order is kept)."""
        buf = self._carry + data if self._carry else data
        n_frames = len(buf) // BYTES_PER_FRAME
        for i in range(n_frames):
            self._deliver(buf[i * BYTES_PER_FRAME : (i + 1) * BYTES_PER_FRAME])
        self._carry = buf[n_frames * BYTES_PER_FRAME :]

    def rebuild(self, reset: bool, offset: int = 0, data: bytes = b"") -> None:
        """A new RTP source started: drop any partial frame of the old one."""
        self._carry = b""
        self.write(offset, data)

    def available(self) -> int:
        """Nothing is buffered here (frames go straight to the call's inbox)."""
        return 0

    def read(self, length: int = BYTES_PER_FRAME) -> bytes:
        """Silence: audio is read from the call, not from rfcvoip."""
        return bytes(length)


MAX_RTP_BYTES = 1292
"""Largest RTP packet taken: 12-byte header + 160 ms of G.711 (a 20 ms packet is 172 bytes)."""
SSRC_HANDOVER_S = 0.2
"""A new audio SSRC is taken only after the current one has been silent this long."""


class RtpSourceLock:
    """Keeps one audio stream per call: oversized packets and a second SSRC are refused.

    rfcvoip decodes any RTP packet with a static audio payload type, whatever its SSRC, so
    anyone who finds the port can inject audio into the dialog (and one 8 KB packet became
    50 frames). A real source change (transfer, re-INVITE) is taken once the old SSRC stops.
    """

    def __init__(self, audio_payload_types: frozenset[int] = frozenset({0, 8})) -> None:
        self._audio = audio_payload_types
        self._ssrc = b""
        self._last_s = 0.0
        self.refused = 0

    def accept(self, packet: bytes, now_s: float) -> bool:
        """Whether to decode ``packet`` (telephone-events and other types are not locked)."""
        if len(packet) > MAX_RTP_BYTES:
            self.refused += 1
            return False
        if len(packet) < 12 or packet[1] & 0x7F not in self._audio:
            return True
        ssrc = packet[8:12]
        if ssrc != self._ssrc and self._ssrc and now_s - self._last_s < SSRC_HANDOVER_S:
            self.refused += 1
            return False
        self._ssrc, self._last_s = ssrc, now_s
        return True


class RtpOutboundSource:
    """Replaces rfcvoip's output buffer: its transmit thread pulls one packet every 20 ms.

    The loop appends frames; ``clear`` (barge-in) takes effect on the next packet.
    """

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque(maxlen=OUTBOX_FRAMES)
        self.silence_byte = b"\x00"
        self.bufferLock = threading.RLock()
        """rfcvoip's attribute name; taken only by its own ``write_audio`` path."""
        self.underruns = 0
        self.dropped_frames = 0
        self.sent_frames = 0
        self._primed = False

    def configure(self, frame_bytes: int, period: float, silence_byte: bytes) -> None:
        """Called by rfcvoip before each packet; the frame size is fixed by the call."""
        self.silence_byte = silence_byte

    def push(self, pcm16_8k: bytes) -> None:
        """Queue audio (any length, cut into 20 ms frames; the last one is padded)."""
        for start in range(0, len(pcm16_8k), BYTES_PER_FRAME):
            frame = pcm16_8k[start : start + BYTES_PER_FRAME]
            if len(frame) < BYTES_PER_FRAME:
                frame = frame.ljust(BYTES_PER_FRAME, b"\0")
            if len(self.frames) == OUTBOX_FRAMES:
                self.dropped_frames += 1
            self.frames.append(frame)

    def clear(self) -> None:
        """Drop everything queued."""
        self.frames.clear()
        self._primed = False

    def read(self, length: int = BYTES_PER_FRAME) -> bytes:
        """The next packet's PCM16 (rfcvoip transmit thread); silence while empty or priming."""
        if not self._primed:
            if len(self.frames) < PRIME_FRAMES:
                return bytes(length)
            self._primed = True
        out = bytearray()
        while len(out) < length:
            try:
                out += self.frames.popleft()
            except IndexError:
                self.underruns += 1
                self._primed = False
                break
        if len(out) > length:  # only with a ptime other than 20 ms
            self.frames.appendleft(bytes(out[length:]))
            del out[length:]
        if out:
            self.sent_frames += 1
        return bytes(out.ljust(length, b"\0"))

    def write(self, offset: int, data: bytes) -> None:
        """Keep rfcvoip's own ``write_audio`` path working."""
        self.push(data)

    def available(self) -> int:
        """Bytes queued."""
        return len(self.frames) * BYTES_PER_FRAME

    def snapshot(self) -> dict[str, float | int]:
        """Counters for diagnostics."""
        return {"queued_ms": len(self.frames) * FRAME_MS, "underruns": self.underruns}


@dataclass
class CallStats:
    """Per-call counters (never logged per frame)."""

    frames_in: int = 0
    inbound_dropped: int = 0
    """Frames dropped because the inbox was full (the oldest goes)."""
    inbound_underruns: int = 0
    """Ticks that returned silence because nothing had arrived."""


class SipCall:
    """An answered SIP call: the ``CallTransport`` a call session reads and writes."""

    def __init__(
        self,
        call_id: str,
        caller_id: str,
        direction: str,
        control: CallControl,
        executor: Executor,
        loop: asyncio.AbstractEventLoop,
        media_timeout_s: float = 30.0,
    ) -> None:
        self.call_id = call_id
        self.caller_id = caller_id
        """The far end's user part (the debtor's number)."""
        self.direction = direction
        """``inbound`` or ``outbound``."""
        self.stats = CallStats()
        self.outbound = RtpOutboundSource()
        self.inbound_sink = RtpInboundSink(self._deliver)
        self.transfer_result: TransferResult | None = None
        self.answered_at = time.monotonic()
        """Monotonic seconds when the call was answered."""
        self.ended_by: str | None = None
        """``remote``, ``agent``, ``transfer`` or ``media_timeout`` once the call is over."""
        self.media_timeout_s = media_timeout_s
        """Seconds without inbound RTP after which the far end is taken as gone (no BYE came)."""
        self._control = control
        self._executor = executor
        self._loop = loop
        self._inbox: deque[bytes] = deque()
        self._dtmf: list[str] = []
        self._primed = False
        self._next_tick = time.monotonic()
        self._last_rx = self._next_tick
        self._ended = asyncio.Event()  # binds to the loop on first wait, not here

    # --- called from rfcvoip threads ---

    def _deliver(self, frame: bytes) -> None:
        self._loop.call_soon_threadsafe(self._offer, frame)

    def deliver_dtmf(self, digit: str) -> None:
        """A telephone-event started (rfcvoip RTP thread)."""
        self._loop.call_soon_threadsafe(self._dtmf.append, digit)

    def remote_hangup(self) -> None:
        """The far end sent BYE (rfcvoip SIP thread)."""
        self._loop.call_soon_threadsafe(self._mark_ended, "remote")

    # --- loop side ---

    def _offer(self, frame: bytes) -> None:
        self.stats.frames_in += 1
        self._last_rx = time.monotonic()
        if len(self._inbox) >= INBOX_FRAMES:
            self._inbox.popleft()
            self.stats.inbound_dropped += 1
        self._inbox.append(frame)

    def _mark_ended(self, by: str) -> None:
        if self.ended_by is None:
            self.ended_by = by
        self._ended.set()

    @property
    def ended(self) -> bool:
        """True once either side has hung up (or the call was transferred)."""
        return self.ended_by is not None

    async def wait_ended(self, timeout_s: float) -> bool:
        """Wait until the call ends; False on timeout."""
        if self.ended:
            return True
        try:
            await asyncio.wait_for(self._ended.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def read(self) -> Inbound:
        """The next 20 ms on the call's own clock; silence when nothing arrived."""
        if self.ended:
            return Inbound(SILENCE_FRAME, hangup=True)
        self._next_tick += FRAME_MS / 1000
        delay = self._next_tick - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.2:
            self._next_tick = time.monotonic()  # the loop stalled: do not burst to catch up
        if self.ended:
            return Inbound(SILENCE_FRAME, hangup=True)
        if time.monotonic() - self._last_rx > self.media_timeout_s:
            await self._end_from_here("media_timeout")
            return Inbound(SILENCE_FRAME, hangup=True)
        dtmf = ""
        if self._dtmf:
            dtmf, self._dtmf = "".join(self._dtmf), []
        if not self._primed and len(self._inbox) >= PRIME_FRAMES:
            self._primed = True
        if self._primed and self._inbox:
            return Inbound(self._inbox.popleft(), dtmf=dtmf)
        if self._primed:
            self._primed = False
            self.stats.inbound_underruns += 1
        return Inbound(SILENCE_FRAME, dtmf=dtmf)

    async def write(self, pcm16_8k: bytes) -> None:
        """Queue audio for the far end (one frame per tick, or a whole clip)."""
        if not self.ended:
            self.outbound.push(pcm16_8k)

    def flush(self) -> None:
        """Drop all queued outbound audio (barge-in); the next packet is silence."""
        self.outbound.clear()

    @property
    def queued_ms(self) -> int:
        """Outbound audio not yet sent."""
        return len(self.outbound.frames) * FRAME_MS

    async def hangup(self) -> None:
        """End the call from our side (BYE)."""
        await self._end_from_here("agent")

    async def _end_from_here(self, reason: str) -> None:
        if self.ended:
            return
        self._mark_ended(reason)
        self.outbound.clear()
        await self._loop.run_in_executor(self._executor, self._control.hangup)

    async def transfer(self, target: str) -> bool:
        """Blind transfer (REFER); False when refused or unanswered (the call goes on).

        Accepted (2xx): our leg ends here. Refused: the agent offers a callback instead.
        """
        if self.ended:
            return False
        self.outbound.clear()
        result = await self._loop.run_in_executor(self._executor, self._control.refer, target)
        self.transfer_result = result
        if result.refer_status is None or not 200 <= result.refer_status < 300:
            log.warning("call %s: transfer refused (%s)", self.call_id, result.refer_status)
            return False
        self._mark_ended("transfer")
        await self._loop.run_in_executor(self._executor, self._control.hangup)
        return True


@dataclass
class PendingRefer:
    """A REFER waiting for its final response and NOTIFY (filled in by the SIP thread)."""

    status: int | None = None
    notify_status: int | None = None
    answered: threading.Event = field(default_factory=threading.Event)
    notified: threading.Event = field(default_factory=threading.Event)


def build_refer(sip: Any, request: Any, refer_to: str) -> str:
    """An in-dialog REFER: rfcvoip's BYE for the dialog, re-labelled, plus Refer-To."""
    lines = sip.gen_bye(request).split("\r\n")
    lines[0] = "REFER" + lines[0][len("BYE") :]
    out: list[str] = []
    for line in lines:
        if line.startswith("CSeq:"):
            line = line.replace(" BYE", " REFER")
        if line.startswith("Content-Length:"):
            out.append(f"Refer-To: <{refer_to}>")
            out.append(f"Referred-By: <{sip._contact_uri()}>")
        out.append(line)
    return "\r\n".join(out)


def dtmf_parser(session: SipCall) -> Callable[[Any], None]:
    """A replacement for rfcvoip's telephone-event parser that reports each event once."""
    last: list[tuple[int, int] | None] = [None]

    def parse(packet: Any) -> None:
        payload = packet.payload
        if len(payload) < 4 or payload[0] >= len(EVENTS):
            return
        event = (packet.timestamp, payload[0])
        if event == last[0] and not packet.marker:
            return  # the same event's updates and its three end packets (RFC 4733 2.5)
        last[0] = event
        session.deliver_dtmf(EVENTS[payload[0]])

    return parse
