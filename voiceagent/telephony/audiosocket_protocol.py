"""Asterisk AudioSocket framing: ``kind (1 byte) | length (2 bytes, big-endian) | payload``.

What a real Asterisk does with it (see docs/asterisk.md): the first frame is always the call
UUID as 16 raw bytes; audio frames vary in size (a 24-byte tail ends a prompt); nothing at all is
sent while the channel is silent; DTMF arrives on key-up as one ASCII byte; Asterisk accepts only
audio and hangup from us and ends the call on anything else; it hangs up by closing TCP.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from dataclasses import dataclass

HEADER_BYTES = 3
"""Kind (1 byte) plus payload length (2 bytes, big-endian)."""
MAX_PAYLOAD_BYTES = 8192
"""Largest payload accepted (a 20 ms slin192 frame is 7680 bytes; Asterisk sends 320)."""
DTMF_KEYS = frozenset("0123456789*#ABCD")


class Kind(enum.IntEnum):
    """Frame kinds defined by Asterisk's ``res_audiosocket``."""

    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    SLIN = 0x10
    """Signed linear 16-bit little-endian mono, 8 kHz."""
    SLIN_12K = 0x11
    SLIN_16K = 0x12
    SLIN_24K = 0x13
    SLIN_32K = 0x14
    SLIN_44K = 0x15
    SLIN_48K = 0x16
    SLIN_96K = 0x17
    SLIN_192K = 0x18
    ERROR = 0xFF


_KINDS = frozenset(int(k) for k in Kind)

AUDIO_RATES_HZ: dict[int, int] = {
    Kind.SLIN: 8000,
    Kind.SLIN_12K: 12000,
    Kind.SLIN_16K: 16000,
    Kind.SLIN_24K: 24000,
    Kind.SLIN_32K: 32000,
    Kind.SLIN_44K: 44100,
    Kind.SLIN_48K: 48000,
    Kind.SLIN_96K: 96000,
    Kind.SLIN_192K: 192000,
}
"""Sample rate of each audio kind (Hz)."""

ERROR_CODES = {0x00: "none", 0x01: "hangup", 0x02: "frame forwarding", 0x04: "memory"}
"""Meaning of the one-byte payload of an Asterisk ``0xff`` error frame."""


class ProtocolError(Exception):
    """The peer broke the AudioSocket protocol; the connection must be closed."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One AudioSocket frame."""

    kind: int
    payload: bytes = b""

    def __bytes__(self) -> bytes:
        return encode(self.kind, self.payload)


def encode(kind: int, payload: bytes = b"") -> bytes:
    """Serializes one frame (header plus payload)."""
    n_bytes = len(payload)
    if n_bytes > 0xFFFF:
        raise ValueError(f"an AudioSocket payload holds at most 65535 bytes, got {n_bytes}")
    return bytes((kind, n_bytes >> 8, n_bytes & 0xFF)) + payload


HANGUP_FRAME = encode(Kind.HANGUP)
"""The only control frame we may send to Asterisk."""


def parse(frame_bytes: bytes) -> Frame:
    """Parses exactly one serialized frame (for captures and tests: ``bytes(parse(x)) == x``)."""
    if len(frame_bytes) < HEADER_BYTES:
        raise ProtocolError(f"truncated header: {len(frame_bytes)} of {HEADER_BYTES} bytes")
    kind, n_bytes = _header(frame_bytes[:HEADER_BYTES])
    payload = frame_bytes[HEADER_BYTES:]
    if len(payload) != n_bytes:
        raise ProtocolError(f"kind 0x{kind:02x}: header says {n_bytes} bytes, got {len(payload)}")
    return Frame(kind, bytes(payload))


def _header(header: bytes) -> tuple[int, int]:
    kind = header[0]
    if kind not in _KINDS:
        raise ProtocolError(f"unknown frame kind 0x{kind:02x}")
    return kind, (header[1] << 8) | header[2]


async def read_frame(
    reader: asyncio.StreamReader,
    payload_timeout_s: float = 2.0,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> Frame | None:
    """Reads the next frame; ``None`` on EOF between frames (how Asterisk hangs up).

    Waiting for a header has no timeout (Asterisk is silent while the channel is); once a header
    has arrived, its payload must follow within ``payload_timeout_s``.

    Raises:
        ProtocolError: unknown kind, oversized payload, or a frame cut short (EOF or stall).
    """
    try:
        header = await reader.readexactly(HEADER_BYTES)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError(f"truncated header: {len(exc.partial)} of 3 bytes, then EOF") from exc
    kind, n_bytes = _header(header)
    if n_bytes > max_payload_bytes:
        raise ProtocolError(f"kind 0x{kind:02x}: payload of {n_bytes} bytes is over the limit")
    if n_bytes == 0:
        return Frame(kind)
    try:
        async with asyncio.timeout(payload_timeout_s):
            payload = await reader.readexactly(n_bytes)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError(
            f"truncated frame: kind 0x{kind:02x} announced {n_bytes} bytes, "
            f"got {len(exc.partial)} then EOF"
        ) from exc
    except TimeoutError as exc:
        raise ProtocolError(
            f"truncated frame: kind 0x{kind:02x} announced {n_bytes} bytes, "
            f"payload stalled for {payload_timeout_s:g} s"
        ) from exc
    return Frame(kind, payload)


def parse_uuid(payload: bytes) -> str:
    """The call UUID of a ``0x01`` frame (16 raw bytes) as canonical text."""
    if len(payload) != 16:
        raise ProtocolError(f"a UUID frame carries 16 raw bytes, got {len(payload)}")
    return str(uuid.UUID(bytes=payload))


def parse_dtmf(payload: bytes) -> str:
    """The key of a ``0x03`` frame (one ASCII byte)."""
    key = payload.decode("ascii", errors="replace")
    if len(payload) != 1 or key not in DTMF_KEYS:
        raise ProtocolError(f"a DTMF frame carries one key of 0-9*#A-D, got {payload!r}")
    return key


def describe_error(payload: bytes) -> str:
    """Human text for the payload of an Asterisk ``0xff`` error frame."""
    if not payload:
        return "error (no code)"
    return f"error 0x{payload[0]:02x} ({ERROR_CODES.get(payload[0], 'unknown code')})"
