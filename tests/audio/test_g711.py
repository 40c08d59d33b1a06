"""G.711 and pyVoIP u8 tables, checked against the stdlib audioop reference for every input."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest

from voiceagent.audio.g711 import (
    alaw_to_pcm16,
    pcm16_to_alaw,
    pcm16_to_u8,
    pcm16_to_ulaw,
    u8_to_pcm16,
    ulaw_to_pcm16,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    # Deprecated in 3.11 and gone in 3.13, where the audioop-lts package provides it.
    audioop = pytest.importorskip("audioop")

ALL_CODES = bytes(range(256))
ALL_PCM16 = np.arange(65536, dtype=np.uint32).astype("<u2").tobytes()
"""Every int16 sample value, in uint16 order."""


def _pcm16(values: list[int]) -> bytes:
    return np.array(values, dtype="<i2").tobytes()


def test_ulaw_decode_matches_audioop_for_all_codes() -> None:
    assert ulaw_to_pcm16(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_ulaw_encode_matches_audioop_for_all_samples() -> None:
    assert pcm16_to_ulaw(ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16, 2)


def test_alaw_decode_matches_audioop_for_all_codes() -> None:
    assert alaw_to_pcm16(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def test_alaw_encode_matches_audioop_for_all_samples() -> None:
    assert pcm16_to_alaw(ALL_PCM16) == audioop.lin2alaw(ALL_PCM16, 2)


def test_u8_matches_pyvoip_conversions() -> None:
    # pyVoIP's u8 is audioop's signed 8-bit audio biased by 128.
    assert u8_to_pcm16(ALL_CODES) == audioop.lin2lin(audioop.bias(ALL_CODES, 1, -128), 1, 2)
    assert pcm16_to_u8(ALL_PCM16) == audioop.bias(audioop.lin2lin(ALL_PCM16, 2, 1), 1, 128)


def test_u8_path_matches_pyvoip_rtp_codec() -> None:
    # pyVoIP RTPClient.parse_pcmu and encode_pcmu, composed from our tables.
    assert pcm16_to_u8(ulaw_to_pcm16(ALL_CODES)) == audioop.bias(
        audioop.ulaw2lin(ALL_CODES, 1), 1, 128
    )
    assert pcm16_to_ulaw(u8_to_pcm16(ALL_CODES)) == audioop.lin2ulaw(
        audioop.bias(ALL_CODES, 1, -128), 1
    )


def test_known_codes_without_reference() -> None:
    # Anchors that hold without audioop: full scale, zero and the smallest steps.
    assert ulaw_to_pcm16(bytes([0x00, 0x80, 0xFF, 0x7F, 0xFE])) == _pcm16([-32124, 32124, 0, 0, 8])
    assert alaw_to_pcm16(bytes([0xAA, 0x2A, 0xD5, 0x55])) == _pcm16([32256, -32256, 8, -8])
    assert pcm16_to_ulaw(_pcm16([0, 32767, -32768])) == bytes([0xFF, 0x80, 0x00])
    assert pcm16_to_alaw(_pcm16([0, 32767, -32768])) == bytes([0xD5, 0xAA, 0x2A])
    assert u8_to_pcm16(bytes([0x80, 0x00, 0xFF])) == _pcm16([0, -32768, 32512])
    assert pcm16_to_u8(_pcm16([0, -1, 32767, -32768])) == bytes([0x80, 0x7F, 0xFF, 0x00])


@pytest.mark.parametrize(
    ("decode", "encode"),
    [(ulaw_to_pcm16, pcm16_to_ulaw), (alaw_to_pcm16, pcm16_to_alaw), (u8_to_pcm16, pcm16_to_u8)],
)
def test_decoded_values_survive_reencoding(
    decode: Callable[[bytes], bytes], encode: Callable[[bytes], bytes]
) -> None:
    decoded = decode(ALL_CODES)
    assert decode(encode(decoded)) == decoded


def test_lengths_and_empty_input() -> None:
    frame_ulaw = bytes(160)
    assert len(ulaw_to_pcm16(frame_ulaw)) == 320
    assert len(pcm16_to_ulaw(bytes(320))) == 160
    for convert in (ulaw_to_pcm16, pcm16_to_ulaw, alaw_to_pcm16, pcm16_to_alaw):
        assert convert(b"") == b""


@pytest.mark.parametrize("encode", [pcm16_to_ulaw, pcm16_to_alaw, pcm16_to_u8])
def test_encoders_reject_odd_byte_counts(encode: Callable[[bytes], bytes]) -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        encode(b"\x00\x00\x00")
