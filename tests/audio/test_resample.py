"""Streaming and one-shot resampling: chunked equals one-shot, lengths, frequencies, clipping."""

from __future__ import annotations

import numpy as np
import pytest

from voiceagent.audio.resample import (
    Resampler,
    float32_to_pcm16,
    pcm16_to_float32,
    resample_pcm16,
)

RATE_PAIRS = [(8000, 16000), (16000, 8000), (22050, 8000)]


def _noise_pcm16(rate_hz: int, seconds: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    samples = np.clip(rng.normal(0.0, 6000.0, int(rate_hz * seconds)), -32768, 32767)
    return samples.astype("<i2").tobytes()


def _tone_pcm16(freq_hz: float, rate_hz: int, seconds: float, amplitude: float = 0.5) -> bytes:
    t_s = np.arange(int(rate_hz * seconds)) / rate_hz
    return float32_to_pcm16(amplitude * np.sin(2 * np.pi * freq_hz * t_s))


def _stream(resampler: Resampler, pcm16: bytes, chunk_bytes: int) -> bytes:
    chunks = [
        resampler.process(pcm16[i : i + chunk_bytes]) for i in range(0, len(pcm16), chunk_bytes)
    ]
    return b"".join(chunks) + resampler.flush()


def _samples(pcm16: bytes) -> np.ndarray:
    return np.frombuffer(pcm16, dtype="<i2").astype(np.int32)


def _peak_hz(pcm16: bytes, rate_hz: int) -> float:
    samples = _samples(pcm16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate_hz)[np.argmax(spectrum)])


def _rms(pcm16: bytes) -> float:
    return float(np.sqrt(np.mean(_samples(pcm16).astype(np.float64) ** 2)))


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), RATE_PAIRS)
def test_streaming_in_20ms_chunks_matches_one_shot(in_rate_hz: int, out_rate_hz: int) -> None:
    pcm16 = _noise_pcm16(in_rate_hz, 2.0)
    one_shot = _samples(resample_pcm16(pcm16, in_rate_hz, out_rate_hz))
    streamed = _samples(_stream(Resampler(in_rate_hz, out_rate_hz), pcm16, in_rate_hz // 50 * 2))
    assert streamed.size == one_shot.size
    assert np.max(np.abs(streamed - one_shot)) <= 1


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), RATE_PAIRS)
def test_output_length_follows_the_rate_ratio(in_rate_hz: int, out_rate_hz: int) -> None:
    pcm16 = _noise_pcm16(in_rate_hz, 3.0)
    expected_samples = 3 * out_rate_hz
    assert len(resample_pcm16(pcm16, in_rate_hz, out_rate_hz)) == 2 * expected_samples
    streamed = _stream(Resampler(in_rate_hz, out_rate_hz), pcm16, in_rate_hz // 50 * 2)
    assert len(streamed) == 2 * expected_samples


def test_chunk_size_does_not_change_the_output() -> None:
    pcm16 = _noise_pcm16(8000, 1.0, seed=3)
    reference = _stream(Resampler(8000, 16000), pcm16, 320)
    for chunk_bytes in (2, 98, 1000, len(pcm16)):
        assert _stream(Resampler(8000, 16000), pcm16, chunk_bytes) == reference


@pytest.mark.parametrize(("in_rate_hz", "out_rate_hz"), [(8000, 16000), (22050, 8000)])
def test_tone_keeps_its_frequency_and_level(in_rate_hz: int, out_rate_hz: int) -> None:
    tone = _tone_pcm16(1000.0, in_rate_hz, 1.0)
    out = _stream(Resampler(in_rate_hz, out_rate_hz), tone, in_rate_hz // 50 * 2)
    assert _peak_hz(out, out_rate_hz) == pytest.approx(1000.0, abs=1.0)
    assert _rms(out) == pytest.approx(_rms(tone), rel=0.02)


def test_flush_resets_for_the_next_stream() -> None:
    pcm16 = _noise_pcm16(8000, 0.5, seed=1)
    resampler = Resampler(8000, 16000)
    first = _stream(resampler, pcm16, 320)
    assert _stream(resampler, pcm16, 320) == first
    assert resampler.flush() == b""


def test_silence_stays_digital_silence() -> None:
    # libsoxr's int16 mode would dither this into +-2 LSB noise.
    out = _stream(Resampler(8000, 16000), bytes(16000), 320)
    assert out == bytes(len(out)) and len(out) == 32000


def test_process_float32_is_process_without_rounding() -> None:
    pcm16 = _noise_pcm16(8000, 1.0, seed=2)
    as_pcm16 = _samples(_stream(Resampler(8000, 16000), pcm16, 320))
    resampler = Resampler(8000, 16000)
    chunks = [resampler.process_float32(pcm16[i : i + 320]) for i in range(0, len(pcm16), 320)]
    as_float32 = np.concatenate([*chunks, resampler.flush_float32()])
    assert as_float32.dtype == np.float32
    assert np.max(np.abs(as_float32 * 32768 - as_pcm16)) <= 0.5 + 1e-3


def test_equal_rates_pass_through() -> None:
    pcm16 = _noise_pcm16(8000, 0.1)
    assert resample_pcm16(pcm16, 8000, 8000) == pcm16


def test_empty_and_odd_input() -> None:
    assert resample_pcm16(b"", 8000, 16000) == b""
    resampler = Resampler(8000, 16000)
    assert resampler.process(b"") == b""
    assert resampler.flush() == b""
    with pytest.raises(ValueError, match="even number of bytes"):
        resampler.process(b"\x00")
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 8000)


def test_float32_to_pcm16_clips_and_rounds() -> None:
    samples = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, np.nan, 1 / 65536], np.float32)
    expected = [0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 0]
    assert float32_to_pcm16(samples) == np.array(expected, dtype="<i2").tobytes()
    assert float32_to_pcm16([0.25]) == np.array([8192], dtype="<i2").tobytes()


def test_pcm16_float32_round_trip_is_exact_for_every_value() -> None:
    every_value = np.arange(-32768, 32768, dtype="<i2").tobytes()
    as_float32 = pcm16_to_float32(every_value)
    assert as_float32.dtype == np.float32
    assert as_float32.min() == -1.0 and as_float32.max() < 1.0
    assert float32_to_pcm16(as_float32) == every_value
