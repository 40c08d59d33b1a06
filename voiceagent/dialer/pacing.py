"""How many calls to dial now: tie the dial rate to free bot capacity (research section 3.4).

Seats are compute, not people: ``seats`` is how many conversations this dialer can host,
``active`` how many it hosts, ``ringing`` how many dials wait for an answer. Progressive mode
dials one call per free seat (``seats - active - ringing``), so no answered call ever waits
for a seat. Predictive mode dials ``free / q`` (``q`` the measured answer rate) and then lowers
the number until the expected abandonment, ``E[(X - free)^+]`` with ``X ~ Binomial(N, q)``
answers out of ``N`` calls in flight, stays under ``target_abandon`` of the expected answers;
it falls back to progressive with too few samples or once the campaign's measured abandonment
over 30 days reaches its cap (3 %, US TSR safe harbor). Pure functions, no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voiceagent.dialer.campaigns import PacingConfig


@dataclass(frozen=True, slots=True)
class AnswerStats:
    """A campaign's measured dial results (rolling; the worker refreshes them)."""

    dials: int = 0
    """Attempts with a result."""
    answers: int = 0
    """Attempts that took a seat: answered by a person or a machine, and abandoned ones."""
    abandoned: int = 0
    """Answered with no free seat (counted against the cap)."""
    live: int = 0
    """Answered by a person (abandoned included): the cap's denominator."""

    @property
    def answer_rate(self) -> float:
        """``q``: P(a dial takes a seat)."""
        return self.answers / self.dials if self.dials else 0.0

    @property
    def abandon_rate(self) -> float:
        """Abandoned over live answers."""
        return self.abandoned / self.live if self.live else 0.0

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> AnswerStats:
        """From attempts by result (``campaigns.attempt_counts``)."""
        live = counts.get("answered", 0) + counts.get("abandoned", 0)
        answers = live + counts.get("machine", 0)
        ended = {k: v for k, v in counts.items() if k not in ("in_progress", "aborted")}
        return cls(
            dials=sum(ended.values()),
            answers=answers,
            abandoned=counts.get("abandoned", 0),
            live=live,
        )


def progressive(seats: int, active: int, ringing: int) -> int:
    """One dial per free seat: ``max(0, seats - active - ringing)``."""
    return max(0, seats - active - ringing)


def expected_overflow(n: int, q: float, free: int) -> float:
    """``E[(X - free)^+]`` for ``X ~ Binomial(n, q)``: answers that would find no seat."""
    if n <= free or q <= 0.0:
        return 0.0
    total = 0.0
    pmf = (1.0 - q) ** n if q < 1.0 else 0.0
    for k in range(n + 1):
        if k > 0:
            if q >= 1.0:
                pmf = 1.0 if k == n else 0.0
            else:
                pmf *= (n - k + 1) / k * q / (1.0 - q)
        if k > free:
            total += (k - free) * pmf
    return total


def predictive(
    seats: int, active: int, ringing: int, q: float, *, max_ratio: float, target: float
) -> int:
    """Dials for the free seats at answer rate ``q``, lowered until the abandon guard holds.

    Args:
        seats: Conversations this dialer can host.
        active: Conversations in progress.
        ringing: Dials not answered yet.
        q: Measured P(answer takes a seat), in ``(0, 1]``.
        max_ratio: Most dials in flight per free seat.
        target: Expected abandoned / expected answers allowed for the calls in flight.
    """
    free = max(0, seats - active)
    if free == 0 or q <= 0.0:
        return 0
    want = min(math.floor(free / q), math.floor(free * max_ratio)) - ringing
    dials = max(0, want)
    while dials > 0:
        n = ringing + dials
        if expected_overflow(n, q, free) <= target * n * q:
            break
        dials -= 1
    return max(dials, progressive(seats, active, ringing))


@dataclass(frozen=True, slots=True)
class Pacer:
    """Applies a campaign's :class:`PacingConfig` under its channel limit."""

    config: PacingConfig

    def dials(
        self, *, seats: int, channels_free: int, active: int, ringing: int, stats: AnswerStats
    ) -> int:
        """How many calls to reserve now.

        Args:
            seats: Conversations this dialer can host.
            channels_free: Campaign channels not in use (``max_channels`` minus calls in
                progress across every dialer).
            active: This dialer's conversations in progress.
            ringing: This dialer's dials not answered yet.
            stats: The campaign's measured results (30 days).
        """
        c = self.config
        if (
            c.mode == "progressive"
            or stats.live < c.min_samples
            or stats.abandon_rate >= c.abandon_cap
        ):
            want = progressive(seats, active, ringing)
        else:
            want = predictive(
                seats,
                active,
                ringing,
                stats.answer_rate,
                max_ratio=c.max_ratio,
                target=c.target_abandon,
            )
        return max(0, min(want, channels_free))
