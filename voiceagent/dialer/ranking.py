"""Order the calls the rules allow now by best hours, without starving anyone.

:func:`voiceagent.dialer.queue.reserve` calls :func:`rank` when the dialer has a fitted
:class:`~voiceagent.dialer.besthours.BestHours` model: it decides on :data:`RANK_WINDOW` times
the calls it needs (at least :data:`RANK_MIN_WINDOW`) and keeps the best ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from voiceagent.dialer import queue_batch as qb
from voiceagent.dialer.besthours import BestHours

RANK_WINDOW = 4
"""With a best-hours model, each reservation chooses its ``n`` calls among ``4 n`` candidates
(at least :data:`RANK_MIN_WINDOW`)."""
RANK_MIN_WINDOW = 32
"""A progressive dialer reserves one call at a time: it still chooses among 32."""
MAX_DEFER = timedelta(hours=1)
"""An entry due longer than this is called in due order whatever its estimate (no starving)."""


class _Debtor(NamedTuple):
    """What :class:`BestHours` needs of a candidate's account."""

    id: int
    portfolio_id: int
    locale: str
    timezone: str


def rank(
    allowed: list[tuple[qb.Candidate, qb.PhoneRow, str]], model: BestHours, now: datetime
) -> list[tuple[qb.Candidate, qb.PhoneRow, str]]:
    """Order calls allowed now: callbacks, then priority, then the likeliest right-party contact.

    Callbacks keep their due order, and so do entries overdue by more than :data:`MAX_DEFER`
    (ahead of the others of their priority): the estimate reorders, it never starves anyone.
    Ties keep the candidates' order (due time, then id).
    """

    def key(item: tuple[qb.Candidate, qb.PhoneRow, str]) -> tuple[int, int, int, float, float]:
        c = item[0]
        if c.callback_id is not None:
            return (0, 0, 0, 0.0, 0.0)
        if now - c.next_at > MAX_DEFER:
            return (1, c.priority, 0, 0.0, 0.0)
        debtor = _Debtor(c.account_id, c.portfolio_id, c.locale, c.timezone)
        return (1, c.priority, 1, *model.order_key(debtor, now))

    return sorted(allowed, key=key)
