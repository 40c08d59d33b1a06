"""The one audio format inside the core: PCM16 mono 8 kHz in 20 ms frames."""

from __future__ import annotations

from dataclasses import dataclass

RATE_HZ = 8000
"""Sample rate of every frame inside the core."""
FRAME_MS = 20
"""Duration of one frame."""
SAMPLES_PER_FRAME = RATE_HZ * FRAME_MS // 1000
"""160 samples."""
BYTES_PER_SAMPLE = 2
BYTES_PER_FRAME = SAMPLES_PER_FRAME * BYTES_PER_SAMPLE
"""320 bytes."""
SILENCE_FRAME = bytes(BYTES_PER_FRAME)
"""20 ms of digital silence."""


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """20 ms of PCM16 little-endian mono audio at 8 kHz, stamped with its position in the call."""

    pcm16_8k: bytes
    t_ms: int
    """Milliseconds since the call was answered."""

    def __post_init__(self) -> None:
        if len(self.pcm16_8k) != BYTES_PER_FRAME:
            raise ValueError(f"a frame is {BYTES_PER_FRAME} bytes, got {len(self.pcm16_8k)}")


def ms_to_samples(duration_ms: int, rate_hz: int = RATE_HZ) -> int:
    """Samples in ``duration_ms`` at ``rate_hz``."""
    return duration_ms * rate_hz // 1000


def samples_to_ms(n_samples: int, rate_hz: int = RATE_HZ) -> int:
    """Milliseconds in ``n_samples`` at ``rate_hz``."""
    return n_samples * 1000 // rate_hz
