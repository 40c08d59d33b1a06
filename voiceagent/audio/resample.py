"""Sample-rate conversion for PCM16 audio: streaming (state kept between chunks) and one-shot.

Both run libsoxr at its HQ setting on float32 samples and round to int16 here. libsoxr's own
int16 output adds random TPDF dither, which turns digital silence into +-2 LSB of noise and makes
every run differ; float32 keeps the output deterministic and streaming equal to one-shot.
"""

from __future__ import annotations

import numpy as np
import soxr
from numpy.typing import ArrayLike, NDArray

_FULL_SCALE = 32768.0
"""Float amplitude 1.0 in PCM16 steps; float = pcm16 / 32768 makes int16 -> float -> int16 exact."""

_PCM16_MIN = np.float32(-32768.0)
_PCM16_MAX = np.float32(32767.0)


def _pcm16_samples(pcm16: bytes) -> NDArray[np.int16]:
    if len(pcm16) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm16)}")
    return np.frombuffer(pcm16, dtype="<i2")


def _to_pcm16(samples_pcm16_scale: NDArray[np.float32]) -> bytes:
    if samples_pcm16_scale.size == 0:
        return b""
    rounded = np.rint(samples_pcm16_scale)
    # np.maximum/np.minimum in place: np.clip's dispatch costs several microseconds per call.
    np.maximum(rounded, _PCM16_MIN, out=rounded)
    np.minimum(rounded, _PCM16_MAX, out=rounded)
    return rounded.astype("<i2").tobytes()


def pcm16_to_float32(pcm16: bytes) -> NDArray[np.float32]:
    """Returns PCM16 little-endian samples as float32 in [-1.0, 1.0), the form Whisper expects."""
    return _pcm16_samples(pcm16).astype(np.float32) * np.float32(1.0 / _FULL_SCALE)


def float32_to_pcm16(samples: ArrayLike) -> bytes:
    """Returns float samples in [-1.0, 1.0] as PCM16 little-endian; clips, and NaN becomes 0."""
    scaled = np.nan_to_num(np.asarray(samples, dtype=np.float32).ravel() * np.float32(_FULL_SCALE))
    return _to_pcm16(scaled)


def resample_pcm16(pcm16: bytes, in_rate_hz: int, out_rate_hz: int) -> bytes:
    """Resamples a whole PCM16 mono clip; gives the same samples as a `Resampler` fed in chunks."""
    if in_rate_hz == out_rate_hz:
        _pcm16_samples(pcm16)
        return bytes(pcm16)
    samples = _pcm16_samples(pcm16).astype(np.float32)
    if samples.size == 0:
        return b""
    return _to_pcm16(soxr.resample(samples, in_rate_hz, out_rate_hz, quality="HQ"))


class Resampler:
    """Streaming PCM16 mono resampler that keeps filter state between chunks.

    libsoxr works in blocks, so output comes in bursts. Fed 20 ms at a time at HQ, 8 kHz <->
    16 kHz returns nothing for five calls, then about 100 ms at once; 22.05 kHz -> 8 kHz returns
    about 68 ms every third call. Callers must accept empty results, and call `flush` at the end
    of a stream (an utterance, a prompt) to get the tail; it also resets the state for the next
    stream. Output is time-aligned with the input: libsoxr removes its filter delay.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ValueError(f"rates must be positive, got {in_rate_hz} -> {out_rate_hz}")
        self.in_rate_hz = in_rate_hz
        """Hz."""
        self.out_rate_hz = out_rate_hz
        """Hz."""
        self._stream = soxr.ResampleStream(
            in_rate_hz, out_rate_hz, 1, dtype="float32", quality="HQ"
        )
        self._pending = False

    def process(self, pcm16: bytes) -> bytes:
        """Feeds PCM16 at ``in_rate_hz``; returns the output ready so far, often empty."""
        return _to_pcm16(self._feed(pcm16))

    def flush(self) -> bytes:
        """Returns the buffered tail as PCM16 and resets the state for a new stream."""
        return _to_pcm16(self._drain())

    def process_float32(self, pcm16: bytes) -> NDArray[np.float32]:
        """Like `process`, but returns float32 in [-1.0, 1.0) without rounding (for ASR)."""
        return self._feed(pcm16) * np.float32(1.0 / _FULL_SCALE)

    def flush_float32(self) -> NDArray[np.float32]:
        """Like `flush`, but returns float32 in [-1.0, 1.0) without rounding (for ASR)."""
        return self._drain() * np.float32(1.0 / _FULL_SCALE)

    def _feed(self, pcm16: bytes) -> NDArray[np.float32]:
        samples = _pcm16_samples(pcm16).astype(np.float32)
        if samples.size == 0:
            return samples
        self._pending = True
        out: NDArray[np.float32] = self._stream.resample_chunk(samples)
        return out

    def _drain(self) -> NDArray[np.float32]:
        if not self._pending:
            return np.zeros(0, dtype=np.float32)
        out: NDArray[np.float32] = self._stream.resample_chunk(
            np.zeros(0, dtype=np.float32), last=True
        )
        self._stream.clear()
        self._pending = False
        return out
