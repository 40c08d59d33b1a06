"""Voicemail beep detection (a sustained pure tone, one small FFT per frame) and the wait for it.

A voicemail beep is a single sine (typically 400-2000 Hz) lasting 100 ms to about 1.5 s.
Speech is never a pure tone: even a steady vowel spreads its energy over several harmonics and
its pitch drifts. Each frame the detector takes a 40 ms Hann-windowed FFT (25 Hz bins) over the
previous and the current frame and asks three questions (FreeSWITCH mod_vmd/mod_avmd, research
section 2.4):

* purity: the peak (+-2 bins, the Hann main lobe) holds at least ``min_purity`` of the
  300-3400 Hz energy;
* stability: the interpolated peak frequency stays within ``max_drift`` of the run's first;
* level: the current 20 ms frame keeps at least half the run's mean energy (a tone that stops
  inside a frame is caught there, and the fraction of energy left says where it stopped).

A run of at least ``min_tone_ms`` of such frames is a tone; when it ends the detector waits
``gap_ms`` for a second tone (multi-tone beeps) and then reports the end of the last one.

``VoicemailWait`` is the policy after a ``machine`` verdict: the message starts after the beep,
or after ``silence_ms`` of silence when no beep comes, or at the hard cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from voiceagent.audio.format import BYTES_PER_FRAME, FRAME_MS, RATE_HZ, SAMPLES_PER_FRAME
from voiceagent.vad import Vad

_WINDOW = 2 * SAMPLES_PER_FRAME
"""Two frames: 40 ms, 25 Hz per FFT bin."""
_BIN_HZ = RATE_HZ / _WINDOW
_HANN = np.hanning(_WINDOW).astype(np.float32)
_BAND_LO = int(300 / _BIN_HZ)
_BAND_HI = int(3400 / _BIN_HZ) + 1
_LOBE = 2
"""Bins either side of the peak that belong to a Hann-windowed sine."""


@dataclass(frozen=True, slots=True)
class BeepConfig:
    """What counts as a beep (frequencies in Hz, durations in ms)."""

    min_hz: float = 400.0
    max_hz: float = 2000.0
    min_tone_ms: int = 140
    """Shorter runs are taken for vowels: at 100 ms a female voice's steady 2nd harmonic
    (430-520 Hz) passed as a beep 13 times in 3 minutes of Asterisk's recorded prompts; at
    140 ms none did (research 2.4 proposes 150 ms). Shorter beeps fall back to the silence cue."""
    max_tone_ms: int = 2000
    """Longer tones (fax, a stuck line) are not beeps."""
    min_purity: float = 0.9
    """Share of the 300-3400 Hz energy inside the peak's main lobe."""
    max_drift: float = 0.03
    """Largest relative change of the peak frequency within one tone."""
    min_level: float = 150.0
    """RMS (PCM16) below which a frame is too quiet to be a beep."""
    gap_ms: int = 200
    """Silence after a tone before it is reported (a second tone within it extends the beep)."""


class BeepDetector:
    """Per-call streaming beep detector: feed every inbound frame in order.

    Args:
        config: Thresholds; the defaults suit carrier and handset voicemail beeps.
    """

    def __init__(self, config: BeepConfig | None = None) -> None:
        self.config = config or BeepConfig()
        self._buf = np.zeros(_WINDOW, dtype=np.float32)
        self._run_frames = 0
        self._run_hz = 0.0
        self._run_energy = 0.0
        self._pending_end_ms: int | None = None
        self.tones = 0
        """Tones seen so far (a counter for the call record; never log per frame)."""
        self.last_hz = 0.0
        """Frequency of the last tone found."""

    @property
    def busy(self) -> bool:
        """A tone is in progress or about to be reported."""
        return self._run_frames > 0 or self._pending_end_ms is not None

    def push(self, pcm16_8k: bytes, t_ms: int) -> int | None:
        """Feed the frame that starts at ``t_ms``; returns the beep's end time once, when known.

        Args:
            pcm16_8k: One 20 ms PCM16 8 kHz frame.
            t_ms: Start of the frame, in milliseconds since the answer.

        Returns:
            The estimated end of the beep (ms since the answer), ``gap_ms`` after it ended;
            otherwise None.
        """
        if len(pcm16_8k) != BYTES_PER_FRAME:
            raise ValueError(f"a frame is {BYTES_PER_FRAME} bytes")
        c = self.config
        frame = np.frombuffer(pcm16_8k, dtype="<i2").astype(np.float32)
        self._buf[:SAMPLES_PER_FRAME] = self._buf[SAMPLES_PER_FRAME:]
        self._buf[SAMPLES_PER_FRAME:] = frame
        energy = float(np.dot(frame, frame)) / SAMPLES_PER_FRAME
        hz = self._tone_hz(energy)
        in_run = self._run_frames > 0
        continues = (
            hz is not None
            and (not in_run or abs(hz - self._run_hz) <= c.max_drift * self._run_hz)
            and (not in_run or energy >= 0.5 * self._run_energy)
        )
        if continues and hz is not None:
            if not in_run:
                self._run_hz = hz
                self._run_energy = energy
            else:
                n = self._run_frames
                self._run_energy = (self._run_energy * n + energy) / (n + 1)
            self._run_frames += 1
            if self._run_frames * FRAME_MS > c.max_tone_ms:
                self._pending_end_ms = None  # too long for a beep: forget the whole sequence
            return None
        if in_run:
            self._end_run(t_ms, energy, hz is not None)
            if hz is not None and energy >= self.config.min_level**2 * 4:
                self._run_frames, self._run_hz, self._run_energy = 1, hz, energy  # next tone
                return None
        if self._pending_end_ms is not None and t_ms + FRAME_MS - self._pending_end_ms >= c.gap_ms:
            end, self._pending_end_ms = self._pending_end_ms, None
            return end
        return None

    def _end_run(self, t_ms: int, energy: float, tail_is_tone: bool) -> None:
        c = self.config
        duration = self._run_frames * FRAME_MS
        if c.min_tone_ms <= duration <= c.max_tone_ms:
            # The tone stopped inside this frame: the energy left in it says where.
            tail = min(1.0, energy / self._run_energy) if tail_is_tone else 0.0
            self._pending_end_ms = t_ms + round(FRAME_MS * tail)
            self.tones += 1
            self.last_hz = self._run_hz
        self._run_frames = 0

    def _tone_hz(self, energy: float) -> float | None:
        """The interpolated peak frequency when the 40 ms window holds a pure tone, else None."""
        c = self.config
        if energy < c.min_level * c.min_level:
            return None
        spectrum = np.fft.rfft(self._buf * _HANN)
        power = spectrum.real * spectrum.real + spectrum.imag * spectrum.imag
        band = power[_BAND_LO:_BAND_HI]
        k = int(np.argmax(band))
        total = float(band.sum())
        lobe = float(band[max(0, k - _LOBE) : k + _LOBE + 1].sum())
        if total <= 0.0 or lobe < c.min_purity * total:
            return None
        peak = _BAND_LO + k
        a, b, d = np.log(power[peak - 1 : peak + 2] + 1e-9)
        denominator = a - 2 * b + d
        delta = 0.5 * (a - d) / denominator if denominator != 0 else 0.0
        hz = (peak + float(delta)) * _BIN_HZ
        return hz if c.min_hz <= hz <= c.max_hz else None

    def reset(self) -> None:
        """Forget any tone in progress."""
        self._buf[:] = 0.0
        self._run_frames = 0
        self._pending_end_ms = None


class SpeechGate:
    """Speech flag per frame: the VAD, above a floor level and above the line's own noise.

    The noise floor is the quietest frame of the last ``noise_window_ms`` (minimum statistics):
    a hissing line does not turn into words.
    """

    def __init__(
        self,
        vad: Vad,
        min_level: float = 200.0,
        noise_factor: float = 2.5,
        noise_window_ms: int = 2000,
    ) -> None:
        self.vad = vad
        self.min_level = min_level
        self.noise_factor = noise_factor
        self._levels = np.zeros(max(1, noise_window_ms // FRAME_MS))
        self._i = 0

    def is_speech(self, pcm16_8k: bytes) -> bool:
        """True when the frame holds speech."""
        samples = np.frombuffer(pcm16_8k, dtype="<i2").astype(np.float32)
        level = float(np.sqrt(np.dot(samples, samples) / len(samples)))
        self._levels[self._i] = level
        self._i = (self._i + 1) % len(self._levels)
        floor = float(self._levels.min())
        if level < self.min_level or level < self.noise_factor * floor:
            return False
        return self.vad.is_speech(pcm16_8k)


VoicemailCueReason = Literal["beep", "silence", "timeout"]


@dataclass(frozen=True, slots=True)
class VoicemailCue:
    """Start the voicemail message now."""

    reason: VoicemailCueReason
    at_ms: int
    beep_end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class VoicemailWaitConfig:
    """How long to wait for the beep (ms)."""

    silence_ms: int = 1500
    """No beep: this much silence after the greeting means the machine is recording."""
    max_wait_ms: int = 45_000
    """Hard cap since the answer (research 2.4)."""


class VoicemailWait:
    """After a ``machine`` verdict: wait for the beep, or for the greeting to end without one.

    Args:
        vad: Per-frame speech flag.
        config: Waiting limits.
        gate: The speech flag (the classifier's levels are the usual choice).
        beep: Beep thresholds.
    """

    def __init__(
        self,
        vad: Vad,
        config: VoicemailWaitConfig | None = None,
        beep: BeepConfig | None = None,
        gate: SpeechGate | None = None,
    ) -> None:
        self.config = config or VoicemailWaitConfig()
        self._gate = gate or SpeechGate(vad)
        self._beep = BeepDetector(beep)
        self._silence = 0
        self._done = False

    def push(self, pcm16_8k: bytes, t_ms: int) -> VoicemailCue | None:
        """Feed the frame starting at ``t_ms``; returns the cue once.

        Args:
            pcm16_8k: One 20 ms PCM16 8 kHz frame.
            t_ms: Start of the frame, ms since the answer.

        Returns:
            The cue on the frame that settles it, else None.
        """
        if self._done:
            return None
        end = t_ms + FRAME_MS
        beep_end = self._beep.push(pcm16_8k, t_ms)
        if beep_end is not None:
            return self._cue("beep", end, beep_end)
        self._silence = 0 if self._gate.is_speech(pcm16_8k) else self._silence + FRAME_MS
        if self._silence >= self.config.silence_ms and not self._beep.busy:
            return self._cue("silence", end)
        if end >= self.config.max_wait_ms:
            return self._cue("timeout", end)
        return None

    def _cue(self, reason: VoicemailCueReason, at_ms: int, beep: int | None = None) -> VoicemailCue:
        self._done = True
        return VoicemailCue(reason=reason, at_ms=at_ms, beep_end_ms=beep)
