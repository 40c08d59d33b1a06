"""G.711 mu-law and A-law, and pyVoIP's unsigned 8-bit linear audio, to and from PCM16.

Every conversion is one numpy table lookup: decoding indexes a 256-entry table with the code
bytes, encoding indexes a 65536-entry table with the uint16 view of the samples. The tables are
built once at import and reproduce the stdlib ``audioop`` (Sun g711.c) codecs bit for bit, so
audio matches what pyVoIP, which uses ``audioop``, produced before ``audioop`` left the stdlib.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_SEG_END_ULAW = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_END_ALAW = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159
"""Largest 14-bit magnitude that mu-law encodes before it saturates."""


def _all_codes() -> NDArray[np.int32]:
    return np.arange(256, dtype=np.int32)


def _all_samples() -> NDArray[np.int32]:
    """Every int16 value, ordered so that position ``i`` holds the sample whose uint16 is ``i``."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _ulaw_decode_table() -> NDArray[np.int16]:
    code = ~_all_codes() & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    pcm = np.where(code & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS)
    return pcm.astype("<i2")


def _ulaw_encode_table() -> NDArray[np.uint8]:
    # 14-bit input, as audioop feeds it: an arithmetic shift, so -1 becomes -1, not 0.
    pcm14 = _all_samples() >> 2
    negative = pcm14 < 0
    mask = np.where(negative, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm14), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_SEG_END_ULAW, magnitude, side="left").astype(np.int32)
    code = (seg << 4) | ((magnitude >> (np.minimum(seg, 7) + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_decode_table() -> NDArray[np.int16]:
    code = _all_codes() ^ 0x55
    seg = (code & 0x70) >> 4
    magnitude = ((code & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    magnitude = magnitude << np.maximum(seg - 1, 0)
    pcm: NDArray[np.int32] = np.where(code & 0x80, magnitude, -magnitude)
    return pcm.astype("<i2")


def _alaw_encode_table() -> NDArray[np.uint8]:
    pcm13 = _all_samples() >> 3
    negative = pcm13 < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -pcm13 - 1, pcm13)
    seg = np.searchsorted(_SEG_END_ALAW, magnitude, side="left").astype(np.int32)
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = (seg << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _u8_decode_table() -> NDArray[np.int16]:
    # pyVoIP's u8 is audioop's signed 8-bit audio biased by +128; widening shifts it left by 8.
    return ((_all_codes() - 0x80) << 8).astype("<i2")


def _u8_encode_table() -> NDArray[np.uint8]:
    # Narrowing keeps the high byte (floor division by 256), then pyVoIP adds the +128 bias.
    return (((_all_samples() >> 8) + 0x80) & 0xFF).astype(np.uint8)


_ULAW_TO_PCM16 = _ulaw_decode_table()
_PCM16_TO_ULAW = _ulaw_encode_table()
_ALAW_TO_PCM16 = _alaw_decode_table()
_PCM16_TO_ALAW = _alaw_encode_table()
_U8_TO_PCM16 = _u8_decode_table()
_PCM16_TO_U8 = _u8_encode_table()
for _table in (
    _ULAW_TO_PCM16,
    _PCM16_TO_ULAW,
    _ALAW_TO_PCM16,
    _PCM16_TO_ALAW,
    _U8_TO_PCM16,
    _PCM16_TO_U8,
):
    _table.flags.writeable = False
del _table


def _decode(table: NDArray[np.int16], codes: bytes) -> bytes:
    return table.take(np.frombuffer(codes, dtype=np.uint8)).tobytes()


def _encode(table: NDArray[np.uint8], pcm16: bytes) -> bytes:
    if len(pcm16) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm16)}")
    return table.take(np.frombuffer(pcm16, dtype="<u2")).tobytes()


def ulaw_to_pcm16(ulaw: bytes) -> bytes:
    """Decodes G.711 mu-law (PCMU) bytes into PCM16 little-endian, two bytes per code."""
    return _decode(_ULAW_TO_PCM16, ulaw)


def pcm16_to_ulaw(pcm16: bytes) -> bytes:
    """Encodes PCM16 little-endian into G.711 mu-law (PCMU), one byte per sample."""
    return _encode(_PCM16_TO_ULAW, pcm16)


def alaw_to_pcm16(alaw: bytes) -> bytes:
    """Decodes G.711 A-law (PCMA) bytes into PCM16 little-endian, two bytes per code."""
    return _decode(_ALAW_TO_PCM16, alaw)


def pcm16_to_alaw(pcm16: bytes) -> bytes:
    """Encodes PCM16 little-endian into G.711 A-law (PCMA), one byte per sample."""
    return _encode(_PCM16_TO_ALAW, pcm16)


def u8_to_pcm16(u8: bytes) -> bytes:
    """Widens pyVoIP's unsigned 8-bit linear audio (silence = 0x80) into PCM16 little-endian."""
    return _decode(_U8_TO_PCM16, u8)


def pcm16_to_u8(pcm16: bytes) -> bytes:
    """Narrows PCM16 little-endian into pyVoIP's unsigned 8-bit linear audio (the high byte)."""
    return _encode(_PCM16_TO_U8, pcm16)
