"""Per-frame cost of the audio primitives on the call path, next to stdlib audioop baselines.

Usage: .venv/bin/python benchmarks/audio_frame_path.py [--frames 50000] [--repeat 3]

Each row times a loop over ``--frames`` 20 ms frames (cycling through 50 distinct noise frames)
and prints the best of ``--repeat`` runs in microseconds per frame. Baselines run in the same
process. audioop has no crash-safe recorder, so that baseline is ``wave.writeframes`` (which
patches the header on every call) fed by ``audioop.tostereo`` and ``audioop.add``. The
resampling baseline, ``audioop.ratecv``, interpolates linearly: cheaper, and it aliases.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import warnings
import wave
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import soxr

from voiceagent.audio.format import RATE_HZ
from voiceagent.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from voiceagent.audio.resample import Resampler
from voiceagent.audio.wav import StereoRecorder

Step = Callable[[int], object]
"""Processes frame number ``i``."""
Setup = Callable[[], Step]
"""Builds fresh state (a resampler, a file) and returns the step to time."""

BUDGET_US = 200.0
"""STYLE.md 4.3: under 0.2 ms per frame per call."""
N_DISTINCT = 50


def _load_audioop() -> ModuleType | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:  # Python 3.13+ without the audioop-lts package
            return None
    return audioop


AUDIOOP = _load_audioop()


def noise_frames(rate_hz: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    samples = np.clip(rng.normal(0, 4000, (N_DISTINCT, rate_hz // 50)), -32768, 32767)
    return [row.astype("<i2").tobytes() for row in samples]


def time_us(setup: Setup | None, n_frames: int, repeat: int) -> float | None:
    if setup is None:
        return None
    best_s = float("inf")
    for _ in range(repeat):
        step = setup()
        start_s = time.perf_counter()
        for i in range(n_frames):
            step(i)
        best_s = min(best_s, time.perf_counter() - start_s)
    return best_s / n_frames * 1e6


def codec(convert: Callable[[bytes], bytes], frames: list[bytes]) -> Setup:
    return lambda: lambda i: convert(frames[i % N_DISTINCT])


def audioop_codec(name: str, frames: list[bytes]) -> Setup | None:
    if AUDIOOP is None:
        return None
    convert = getattr(AUDIOOP, name)
    return lambda: lambda i: convert(frames[i % N_DISTINCT], 2)


def resampler(in_rate_hz: int, out_rate_hz: int, frames: list[bytes], float32: bool) -> Setup:
    def setup() -> Step:
        stream = Resampler(in_rate_hz, out_rate_hz)
        convert = stream.process_float32 if float32 else stream.process
        return lambda i: convert(frames[i % N_DISTINCT])

    return setup


def ratecv(in_rate_hz: int, out_rate_hz: int, frames: list[bytes]) -> Setup | None:
    audioop = AUDIOOP
    if audioop is None:
        return None

    def setup() -> Step:
        state: list[object] = [None]

        def step(i: int) -> bytes:
            out, state[0] = audioop.ratecv(
                frames[i % N_DISTINCT], 2, 1, in_rate_hz, out_rate_hz, state[0]
            )
            return bytes(out)

        return step

    return setup


def recorder(path: Path, debtor: list[bytes], agent: list[bytes]) -> Setup:
    def setup() -> Step:
        stereo = StereoRecorder(path)
        return lambda i: stereo.write(debtor[i % N_DISTINCT], agent[i % N_DISTINCT])

    return setup


def wave_recorder(path: Path, debtor: list[bytes], agent: list[bytes]) -> Setup | None:
    audioop = AUDIOOP
    if audioop is None:
        return None

    def setup() -> Step:
        writer = wave.open(str(path), "wb")
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(RATE_HZ)

        def step(i: int) -> None:
            left = audioop.tostereo(debtor[i % N_DISTINCT], 2, 1, 0)
            right = audioop.tostereo(agent[i % N_DISTINCT], 2, 0, 1)
            writer.writeframes(audioop.add(left, right, 2))

        return step

    return setup


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    pcm_8k, agent_8k = noise_frames(8000, 1), noise_frames(8000, 2)
    pcm_16k, pcm_22k = noise_frames(16000, 3), noise_frames(22050, 4)
    ulaw = [pcm16_to_ulaw(frame) for frame in pcm_8k]
    alaw = [pcm16_to_alaw(frame) for frame in pcm_8k]
    linear = "audioop.ratecv (linear)"

    with tempfile.TemporaryDirectory() as tmp:
        rows: list[tuple[str, Setup, Setup | None, str]] = [
            (
                "mu-law decode",
                codec(ulaw_to_pcm16, ulaw),
                audioop_codec("ulaw2lin", ulaw),
                "ulaw2lin",
            ),
            (
                "mu-law encode",
                codec(pcm16_to_ulaw, pcm_8k),
                audioop_codec("lin2ulaw", pcm_8k),
                "lin2ulaw",
            ),
            (
                "A-law decode",
                codec(alaw_to_pcm16, alaw),
                audioop_codec("alaw2lin", alaw),
                "alaw2lin",
            ),
            (
                "A-law encode",
                codec(pcm16_to_alaw, pcm_8k),
                audioop_codec("lin2alaw", pcm_8k),
                "lin2alaw",
            ),
            (
                "resample 8k->16k",
                resampler(8000, 16000, pcm_8k, False),
                ratecv(8000, 16000, pcm_8k),
                linear,
            ),
            ("resample 8k->16k float32", resampler(8000, 16000, pcm_8k, True), None, "-"),
            (
                "resample 16k->8k",
                resampler(16000, 8000, pcm_16k, False),
                ratecv(16000, 8000, pcm_16k),
                linear,
            ),
            (
                "resample 22.05k->8k",
                resampler(22050, 8000, pcm_22k, False),
                ratecv(22050, 8000, pcm_22k),
                linear,
            ),
            (
                "recorder write (2 x 20 ms)",
                recorder(Path(tmp, "ours.wav"), pcm_8k, agent_8k),
                wave_recorder(Path(tmp, "wave.wav"), pcm_8k, agent_8k),
                "wave.writeframes + tostereo/add",
            ),
        ]
        print(
            f"Python {platform.python_version()}, numpy {np.__version__}, soxr {soxr.__version__}; "
            f"{args.frames} frames, best of {args.repeat}; budget {BUDGET_US:.0f} us/frame/call"
        )
        print(f"{'per 20 ms frame':<28}{'voiceagent us':>14}{'baseline us':>13}  baseline")
        for name, ours, baseline, baseline_name in rows:
            ours_us = time_us(ours, args.frames, args.repeat)
            baseline_us = time_us(baseline, args.frames, args.repeat)
            baseline_text = "-" if baseline_us is None else f"{baseline_us:.2f}"
            print(f"{name:<28}{ours_us or 0.0:>14.2f}{baseline_text:>13}  {baseline_name}")


if __name__ == "__main__":
    main()
