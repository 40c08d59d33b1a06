"""PCM16 WAV files: whole-file read and write, and the crash-safe stereo call recorder."""

from __future__ import annotations

import os
import struct
import wave
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from voiceagent.audio.format import BYTES_PER_SAMPLE, RATE_HZ

StrPath = str | os.PathLike[str]

_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
"""The canonical 44-byte header: RIFF, a 16-byte PCM fmt chunk, then the data chunk header."""
_WAVE_FORMAT_PCM = 1
_CHANNELS = 2
"""The recorder's channels: 0 (left) is the debtor, 1 (right) the agent."""
_MAX_DATA_BYTES = 0xFFFFFFFF - (_HEADER.size - 8)
"""RIFF sizes are 32-bit: about 37 hours of 8 kHz stereo PCM16."""
_HEADER_EVERY_MS = 1000
"""Audio written between header rewrites: the most a killed process can lose."""


@dataclass(frozen=True, slots=True)
class WavData:
    """The contents of a PCM16 WAV file."""

    rate_hz: int
    channels: int
    pcm16: bytes
    """Little-endian samples, interleaved when ``channels`` > 1."""

    @property
    def n_samples(self) -> int:
        """Samples per channel."""
        return len(self.pcm16) // (BYTES_PER_SAMPLE * self.channels)

    @property
    def duration_ms(self) -> int:
        """Milliseconds, rounded down."""
        return self.n_samples * 1000 // self.rate_hz


def read_wav(path: StrPath) -> WavData:
    """Reads a whole PCM16 WAV file; raises ValueError for any other sample width."""
    with wave.open(os.fspath(path), "rb") as reader:
        if reader.getsampwidth() != BYTES_PER_SAMPLE:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * reader.getsampwidth()}-bit")
        return WavData(
            rate_hz=reader.getframerate(),
            channels=reader.getnchannels(),
            pcm16=reader.readframes(reader.getnframes()),
        )


def write_wav(path: StrPath, pcm16: bytes, rate_hz: int, channels: int = 1) -> None:
    """Writes PCM16 little-endian samples (interleaved when ``channels`` > 1) as a WAV file."""
    if len(pcm16) % (BYTES_PER_SAMPLE * channels):
        raise ValueError(f"{len(pcm16)} bytes is not a whole number of {channels}-channel samples")
    with wave.open(os.fspath(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(BYTES_PER_SAMPLE)
        writer.setframerate(rate_hz)
        writer.writeframes(pcm16)


def _wav_header(rate_hz: int, channels: int, n_data_bytes: int) -> bytes:
    block_align = BYTES_PER_SAMPLE * channels
    return _HEADER.pack(
        b"RIFF",
        _HEADER.size - 8 + n_data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        _WAVE_FORMAT_PCM,
        channels,
        rate_hz,
        rate_hz * block_align,
        block_align,
        8 * BYTES_PER_SAMPLE,
        b"data",
        n_data_bytes,
    )


def _samples(pcm16: bytes, name: str) -> NDArray[np.int16]:
    if len(pcm16) % BYTES_PER_SAMPLE:
        raise ValueError(f"{name} needs an even number of bytes, got {len(pcm16)}")
    return np.frombuffer(pcm16, dtype="<i2")


class StereoRecorder:
    """Records a call as a stereo PCM16 WAV file: the debtor on the left, the agent on the right.

    The file is valid from the moment it is created. Audio streams through a buffered file, and
    about once per second of audio the buffer is flushed and the RIFF and data sizes are
    rewritten, so a process killed at any point (even SIGKILL) leaves a readable WAV missing at
    most the last second. There is no fsync: a power cut can lose more. Not thread-safe; each
    call is a small buffered write meant to run on a pool thread, off the event loop.
    """

    def __init__(self, path: StrPath, rate_hz: int = RATE_HZ) -> None:
        self.path = os.fspath(path)
        """Where the WAV file is written."""
        self.rate_hz = rate_hz
        """Hz."""
        self._n_samples = 0
        self._n_data_bytes = 0
        self._n_data_bytes_in_header = 0
        self._header_every_bytes = rate_hz * _HEADER_EVERY_MS // 1000 * _CHANNELS * BYTES_PER_SAMPLE
        self._file: BinaryIO | None = open(self.path, "wb")
        self._file.write(_wav_header(rate_hz, _CHANNELS, 0))
        self._file.flush()

    @property
    def duration_ms(self) -> int:
        """Milliseconds recorded so far, rounded down."""
        return self._n_samples * 1000 // self.rate_hz

    @property
    def closed(self) -> bool:
        """Whether `close` has run."""
        return self._file is None

    def write(self, debtor_pcm16: bytes, agent_pcm16: bytes) -> None:
        """Appends one stretch of both sides, padding the shorter side with silence."""
        if self._file is None:
            raise ValueError(f"recorder for {self.path} is closed")
        debtor = _samples(debtor_pcm16, "debtor_pcm16")
        agent = _samples(agent_pcm16, "agent_pcm16")
        n_samples = max(debtor.size, agent.size)
        n_bytes = n_samples * _CHANNELS * BYTES_PER_SAMPLE
        if self._n_data_bytes + n_bytes > _MAX_DATA_BYTES:
            raise ValueError(f"{self.path}: a WAV file cannot hold more than 4 GiB of audio")
        stereo = np.zeros((n_samples, _CHANNELS), dtype="<i2")
        stereo[: debtor.size, 0] = debtor
        stereo[: agent.size, 1] = agent
        self._file.write(stereo.data)
        self._n_samples += n_samples
        self._n_data_bytes += n_bytes
        if self._n_data_bytes - self._n_data_bytes_in_header >= self._header_every_bytes:
            self._write_sizes(self._file)

    def close(self) -> None:
        """Writes the final sizes and closes the file; closing twice does nothing."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            self._write_sizes(file)
        finally:
            file.close()

    def __enter__(self) -> StereoRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _write_sizes(self, file: BinaryIO) -> None:
        # The data must reach the OS before a header that counts it. The header then goes in a
        # single 44-byte write, so a kill never leaves the RIFF and data sizes disagreeing.
        file.flush()
        file.seek(0)
        file.write(_wav_header(self.rate_hz, _CHANNELS, self._n_data_bytes))
        file.seek(0, os.SEEK_END)
        file.flush()
        self._n_data_bytes_in_header = self._n_data_bytes
