"""Best hour to call: answer and right-party-contact rates by local weekday and hour.

Learned from the project's own ``attempts`` (every dial) in a look-back window. Each attempt
falls in a cell ``(weekday, hour)`` of the **debtor's local time** (``accounts.timezone``;
Monday = 0). Per cell, with the definitions of :mod:`voiceagent.reporting`:

* answer rate = attempts answered by a person (``answered_at`` set, result not ``machine``)
  / attempts;
* right-party-contact rate (``p_rpc``) = attempts whose call had ``right_party`` / attempts.

Few attempts fall in any one cell, so each rate is a Beta-posterior mean shrunk toward its
parent level, with a prior worth ``prior_strength`` attempts::

    global rate          p0      = (x + 1) / (n + 2)
    global hour          g[h]    = (x[h] + k p0) / (n[h] + k)             (weekdays pooled)
    global cell          g[d,h]  = (x[d,h] + k g[h]) / (n[d,h] + k)
    segment cell         s[d,h]  = (x[d,h] + k g[d,h]) / (n[d,h] + k)
    account cell         a[d,h]  = (x[d,h] + k s[d,h]) / (n[d,h] + k)

A cell without data of its own takes its parent's rate. (Scaling the parent by the child's
overall rate was tried and dropped: an account called only at its one good hour looks
excellent overall, and the scaling then made every hour it was never called look even
better.) A segment that answers less than average therefore shows the global rates in cells
it has not tried yet, which steers some calls there: a mild exploration, not a bug.

A segment is a portfolio and an account locale; an account gets its own level only with at
least ``min_account_attempts`` attempts in the window, otherwise it is ranked exactly like its
segment (and a segment without history like the global profile).

:meth:`BestHours.order_key` lets the dialer order the accounts it may call now, inside the
compliance window, by their estimated chance of a right-party contact now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voiceagent.crm.models import Account, Attempt, Call, Portfolio

CELLS = 7 * 24
"""Cells per profile: index ``weekday * 24 + hour``."""
SegmentKey = tuple[int, str]
"""``(portfolio_id, locale)``."""


class AccountLike(Protocol):
    """What ranking needs of an account (an ``Account`` row has it)."""

    @property
    def id(self) -> int: ...  # noqa: D102
    @property
    def portfolio_id(self) -> int: ...  # noqa: D102
    @property
    def locale(self) -> str: ...  # noqa: D102
    @property
    def timezone(self) -> str: ...  # noqa: D102


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@lru_cache(maxsize=65536)
def _local_cell(tz: str, quarter_hour: int) -> int:
    """Cell of a UTC quarter-hour in ``tz`` (every UTC offset is a multiple of 15 minutes)."""
    local = datetime.fromtimestamp(quarter_hour * 900, UTC).astimezone(_zone(tz))
    return local.weekday() * 24 + local.hour


def local_cell(at: datetime, tz: str) -> tuple[int, int]:
    """``(weekday, hour)`` of an aware moment in the IANA zone ``tz``."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass an aware (UTC) moment")
    cell = _local_cell(tz, int(at.timestamp()) // 900)
    return divmod(cell, 24)


@dataclass(slots=True)
class Counts:
    """Attempts, answers and right-party contacts per cell."""

    n: list[int] = field(default_factory=lambda: [0] * CELLS)
    answered: list[int] = field(default_factory=lambda: [0] * CELLS)
    rpc: list[int] = field(default_factory=lambda: [0] * CELLS)

    def add(self, cell: int, answered: bool, rpc: bool) -> None:
        """Count one attempt."""
        self.n[cell] += 1
        self.answered[cell] += answered
        self.rpc[cell] += rpc

    @property
    def attempts(self) -> int:
        """All attempts counted."""
        return sum(self.n)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Estimated rates of one cell for one account or segment."""

    weekday: int
    """Monday = 0."""
    hour: int
    """Local hour, 0-23."""
    p_answer: float
    p_rpc: float
    attempts: int
    """Attempts observed in this cell at the estimate's own level (account or segment)."""


@dataclass(frozen=True, slots=True)
class _Profile:
    answer: tuple[float, ...]
    rpc: tuple[float, ...]
    base_answer: float
    base_rpc: float
    counts: Counts


def _shrink(x: list[int], n: list[int], parent: list[float], k: float) -> tuple[float, ...]:
    """Posterior means with a Beta prior of strength ``k`` centred on the parent's rates."""
    return tuple(
        (x[c] + k * parent[c]) / (n[c] + k) if n[c] + k else parent[c] for c in range(CELLS)
    )


def _child(counts: Counts, parent: _Profile, k: float) -> _Profile:
    total = counts.attempts
    base_answer = (sum(counts.answered) + k * parent.base_answer) / (total + k)
    base_rpc = (sum(counts.rpc) + k * parent.base_rpc) / (total + k)
    return _Profile(
        _shrink(counts.answered, counts.n, list(parent.answer), k),
        _shrink(counts.rpc, counts.n, list(parent.rpc), k),
        base_answer,
        base_rpc,
        counts,
    )


def _global(counts: Counts, k: float) -> _Profile:
    total = counts.attempts
    p0_answer = (sum(counts.answered) + 1) / (total + 2)
    p0_rpc = (sum(counts.rpc) + 1) / (total + 2)

    def by_hour(x: list[int]) -> list[float]:
        xs = [sum(x[d * 24 + h] for d in range(7)) for h in range(24)]
        return [float(v) for v in xs]

    n_hour = by_hour(counts.n)
    hour_answer = [
        (a + k * p0_answer) / (n + k) for a, n in zip(by_hour(counts.answered), n_hour, strict=True)
    ]
    hour_rpc = [
        (r + k * p0_rpc) / (n + k) for r, n in zip(by_hour(counts.rpc), n_hour, strict=True)
    ]
    return _Profile(
        _shrink(counts.answered, counts.n, [hour_answer[c % 24] for c in range(CELLS)], k),
        _shrink(counts.rpc, counts.n, [hour_rpc[c % 24] for c in range(CELLS)], k),
        p0_answer,
        p0_rpc,
        counts,
    )


def _estimates(profile: _Profile) -> list[Estimate]:
    return [
        Estimate(c // 24, c % 24, profile.answer[c], profile.rpc[c], profile.counts.n[c])
        for c in range(CELLS)
    ]


class BestHours:
    """A fitted model: global, per-segment and per-account profiles (see the module docstring).

    Build it with :meth:`fit`; it is immutable and cheap to query, so a dialer refits it now
    and then (say hourly) and shares it between workers' decisions.
    """

    def __init__(
        self,
        overall: Counts,
        segments: dict[SegmentKey, Counts],
        accounts: dict[int, Counts],
        *,
        segment_names: dict[SegmentKey, str] | None = None,
        prior_strength: float = 10.0,
    ) -> None:
        self.prior_strength = prior_strength
        self.segment_names = segment_names or {}
        self.overall = _global(overall, prior_strength)
        self.segments = {
            key: _child(c, self.overall, prior_strength) for key, c in segments.items()
        }
        self._account_counts = accounts
        self._accounts: dict[int, _Profile] = {}

    @classmethod
    def fit(
        cls,
        session: Session,
        *,
        now: datetime,
        lookback_days: int = 90,
        min_account_attempts: int = 20,
        prior_strength: float = 10.0,
        portfolio_ids: Iterable[int] | None = None,
    ) -> BestHours:
        """Learn from the attempts started in ``[now - lookback_days, now)``."""
        since = now - timedelta(days=lookback_days)
        window = [Attempt.started_at >= since, Attempt.started_at < now]
        if portfolio_ids is not None:
            window.append(Account.portfolio_id.in_(list(portfolio_ids)))
        heavy = set(
            session.scalars(
                select(Attempt.account_id)
                .join(Account, Account.id == Attempt.account_id)
                .where(*window)
                .group_by(Attempt.account_id)
                .having(func.count() >= min_account_attempts)
            )
        )
        rows = session.execute(
            select(
                Attempt.account_id,
                Attempt.started_at,
                Attempt.answered_at,
                Attempt.result,
                Call.right_party,
                Account.portfolio_id,
                Account.locale,
                Account.timezone,
            )
            .join(Account, Account.id == Attempt.account_id)
            .outerjoin(Call, Call.attempt_id == Attempt.id)
            .where(*window)
            .execution_options(yield_per=10_000)
        )
        overall = Counts()
        segments: dict[SegmentKey, Counts] = {}
        accounts: dict[int, Counts] = {}
        for account_id, started, answered_at, result, right_party, folio, locale, tz in rows:
            cell = _local_cell(tz, int(started.timestamp()) // 900)
            answered = answered_at is not None and result != "machine"
            rpc = bool(answered and right_party)
            overall.add(cell, answered, rpc)
            segments.setdefault((folio, locale), Counts()).add(cell, answered, rpc)
            if account_id in heavy:
                accounts.setdefault(account_id, Counts()).add(cell, answered, rpc)
        folio_ids = {folio for folio, _ in segments}
        folio_names = {
            folio_id: name
            for folio_id, name in session.execute(
                select(Portfolio.id, Portfolio.name).where(Portfolio.id.in_(folio_ids))
            )
        }
        names = {key: str(folio_names.get(key[0], key[0])) for key in segments}
        return cls(overall, segments, accounts, segment_names=names, prior_strength=prior_strength)

    def _profile(self, account: AccountLike) -> _Profile:
        if account.id in self._account_counts:
            profile = self._accounts.get(account.id)
            if profile is None:
                parent = self._segment(account)
                profile = _child(self._account_counts[account.id], parent, self.prior_strength)
                self._accounts[account.id] = profile
            return profile
        return self._segment(account)

    def _segment(self, account: AccountLike) -> _Profile:
        return self.segments.get((account.portfolio_id, account.locale), self.overall)

    def has_own_profile(self, account: AccountLike) -> bool:
        """Whether the account had enough attempts to be estimated on its own."""
        return account.id in self._account_counts

    def estimates(self, account: AccountLike) -> list[Estimate]:
        """Every cell's estimate for the account, Monday 00h first."""
        return _estimates(self._profile(account))

    def segment_estimates(self, key: SegmentKey | None) -> list[Estimate]:
        """Every cell's estimate for a segment (``None``: the global profile)."""
        return _estimates(self.overall if key is None else self.segments[key])

    def rank_hours(self, account: AccountLike) -> list[tuple[int, int, float]]:
        """``(weekday, local hour, p_rpc)`` for all 168 cells, best first."""
        ranked = sorted(self.estimates(account), key=lambda e: (-e.p_rpc, -e.p_answer, e.weekday))
        return [(e.weekday, e.hour, e.p_rpc) for e in ranked]

    def estimate_at(self, account: AccountLike, at: datetime) -> Estimate:
        """The estimate for the cell that ``at`` falls in, in the account's local time."""
        weekday, hour = local_cell(at, account.timezone)
        profile = self._profile(account)
        c = weekday * 24 + hour
        return Estimate(weekday, hour, profile.answer[c], profile.rpc[c], profile.counts.n[c])

    def order_key(self, account: AccountLike, now: datetime) -> tuple[float, float]:
        """Sort key (ascending) for accounts the dialer may call at ``now``: likeliest RPC first.

        Combine it after the dialer's own keys (callbacks, campaign priority), e.g.
        ``sorted(candidates, key=lambda a: (a.priority, *model.order_key(a, now)))``.
        """
        estimate = self.estimate_at(account, now)
        return (-estimate.p_rpc, -estimate.p_answer)
