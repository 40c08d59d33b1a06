"""WAV read/write and the stereo call recorder, including a recorder killed with SIGKILL."""

from __future__ import annotations

import select
import shutil
import signal
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from voiceagent.audio.format import BYTES_PER_FRAME, SAMPLES_PER_FRAME
from voiceagent.audio.wav import StereoRecorder, WavData, read_wav, write_wav

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30


def _frame_pair(index: int) -> tuple[bytes, bytes]:
    """A distinct, reproducible 20 ms frame for each side: the debtor ramps up, the agent down."""
    ramp = np.arange(index * SAMPLES_PER_FRAME, (index + 1) * SAMPLES_PER_FRAME) % 20000
    return ramp.astype("<i2").tobytes(), (-ramp - 1).astype("<i2").tobytes()


def _channels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path), "rb") as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (2, 2)
        stereo = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return stereo[0::2], stereo[1::2]


def _joined(frames: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(frames), dtype="<i2")


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    pcm16 = np.arange(-4000, 4000, 3, dtype="<i2").tobytes()
    write_wav(tmp_path / "mono.wav", pcm16, 16000)
    assert read_wav(tmp_path / "mono.wav") == WavData(16000, 1, pcm16)
    write_wav(tmp_path / "stereo.wav", pcm16[:-2], 8000, channels=2)
    stereo = read_wav(tmp_path / "stereo.wav")
    assert (stereo.rate_hz, stereo.channels, stereo.pcm16) == (8000, 2, pcm16[:-2])
    assert stereo.n_samples == len(pcm16[:-2]) // 4
    assert WavData(8000, 1, bytes(16000)).duration_ms == 1000


def test_read_rejects_other_sample_widths(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "u8.wav"), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(8000)
        writer.writeframes(bytes(80))
    with pytest.raises(ValueError, match="16-bit"):
        read_wav(tmp_path / "u8.wav")
    with pytest.raises(ValueError, match="whole number"):
        write_wav(tmp_path / "bad.wav", bytes(6), 8000, channels=2)


def test_recorder_puts_debtor_left_and_agent_right(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    pairs = [_frame_pair(i) for i in range(120)]
    with StereoRecorder(path) as recorder:
        for debtor, agent in pairs:
            recorder.write(debtor, agent)
        assert recorder.duration_ms == 2400
    assert recorder.closed
    left, right = _channels(path)
    np.testing.assert_array_equal(left, _joined([debtor for debtor, _ in pairs]))
    np.testing.assert_array_equal(right, _joined([agent for _, agent in pairs]))


def test_recorder_pads_the_shorter_side_with_silence(tmp_path: Path) -> None:
    debtor, agent = _frame_pair(7)
    with StereoRecorder(tmp_path / "pad.wav") as recorder:
        recorder.write(debtor, agent[:100])
        recorder.write(b"", agent)
        recorder.write(debtor[:2], b"")
    left, right = _channels(tmp_path / "pad.wav")
    expected_left = _joined([debtor, bytes(BYTES_PER_FRAME), debtor[:2]])
    expected_right = _joined([agent[:100], bytes(BYTES_PER_FRAME - 100), agent, bytes(2)])
    np.testing.assert_array_equal(left, expected_left)
    np.testing.assert_array_equal(right, expected_right)


def test_close_writes_an_exact_header(tmp_path: Path) -> None:
    path = tmp_path / "exact.wav"
    recorder = StereoRecorder(path, rate_hz=8000)
    for i in range(73):
        recorder.write(*_frame_pair(i))
    recorder.close()
    recorder.close()
    n_data_bytes = 73 * SAMPLES_PER_FRAME * 4
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        *(b"RIFF", 36 + n_data_bytes, b"WAVE", b"fmt ", 16, 1, 2, 8000, 32000, 4, 16),
        *(b"data", n_data_bytes),
    )
    assert path.read_bytes()[:44] == header
    assert path.stat().st_size == 44 + n_data_bytes
    with wave.open(str(path), "rb") as reader:
        assert (reader.getframerate(), reader.getnframes()) == (8000, 73 * SAMPLES_PER_FRAME)
    with pytest.raises(ValueError, match="closed"):
        recorder.write(*_frame_pair(0))


def test_open_recorder_file_is_readable_and_at_most_a_second_behind(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    with StereoRecorder(path) as recorder:
        with wave.open(str(path), "rb") as reader:
            assert reader.getnframes() == 0
        for i in range(125):
            recorder.write(*_frame_pair(i))
        with wave.open(str(path), "rb") as reader:
            seconds = reader.getnframes() / reader.getframerate()
        assert recorder.duration_ms / 1000 - 1.0 <= seconds <= recorder.duration_ms / 1000


def test_recorder_rejects_odd_byte_counts(tmp_path: Path) -> None:
    with StereoRecorder(tmp_path / "odd.wav") as recorder:
        with pytest.raises(ValueError, match="agent_pcm16"):
            recorder.write(bytes(320), bytes(3))


CHILD = """
import sys, time
sys.path.insert(0, sys.argv[2])
from tests.audio.test_wav import _frame_pair
from voiceagent.audio.wav import StereoRecorder

recorder = StereoRecorder(sys.argv[1])
for i in range(155):
    recorder.write(*_frame_pair(i))
print("ready", flush=True)
for i in range(155, 3155):
    recorder.write(*_frame_pair(i))
    time.sleep(0.001)
time.sleep(60)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_recorder_killed_with_sigkill_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "killed.wav"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(ROOT)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], TIMEOUT_S)
        assert ready, "child did not write 3 s of audio in time"
        assert child.stdout.readline() == b"ready\n"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=TIMEOUT_S)
        if child.stdout is not None:
            child.stdout.close()

    left, right = _channels(path)
    assert left.size >= 2 * 8000
    n_frames = left.size // SAMPLES_PER_FRAME
    pairs = [_frame_pair(i) for i in range(n_frames)]
    np.testing.assert_array_equal(
        left[: n_frames * SAMPLES_PER_FRAME], _joined([d for d, _ in pairs])
    )
    np.testing.assert_array_equal(
        right[: n_frames * SAMPLES_PER_FRAME], _joined([a for _, a in pairs])
    )
    if shutil.which("sox"):
        soxi = subprocess.run(
            ["sox", "--i", "-s", str(path)], capture_output=True, timeout=TIMEOUT_S, check=True
        )
        assert int(soxi.stdout) == left.size
        decoded = subprocess.run(
            ["sox", str(path), "-t", "raw", "-"], capture_output=True, timeout=TIMEOUT_S, check=True
        )
        assert len(decoded.stdout) == left.size * 4
