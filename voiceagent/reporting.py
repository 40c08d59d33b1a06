"""Call-centre metrics over the CRM, defined once (the API, ``/metrics`` and reports use these).

Every figure is computed from one set of **dials**: each outbound attempt (``attempts`` row)
and each inbound call (``calls`` row without an attempt), selected by the moment the dial
started (``attempts.started_at``; for an inbound call ``calls.started_at``) in
``[from, to)``. Timestamps are UTC, so ``day`` is the **UTC** calendar day of the dial.

=====================  ==========================================================================
Figure                 Definition
=====================  ==========================================================================
attempts               Dials in the group (inbound calls count as one dial each).
connected              Dials answered by a person: ``attempts.answered_at`` set and ``result``
                       not ``machine``; every inbound call.
contact_rate           connected / attempts.
right_party            Connected dials whose call has ``right_party`` true.
cpc                    right_party / connected.
tma_s                  Mean over connected dials with a known hang-up of (hang-up - answer), in
                       seconds. Answer = ``attempts.answered_at`` (inbound: ``calls.started_at``);
                       hang-up = ``calls.ended_at``, else ``attempts.ended_at``.
tmo_s                  Mean over dials with a known end of (wrap-up end - dial start), seconds.
                       Dial start = ``attempts.started_at`` (inbound: ``calls.started_at``);
                       wrap-up end = the latest of ``attempts.ended_at``, ``calls.ended_at``
                       (written by ``close_call`` after the call's results) and the ``at`` of
                       the call's last ``call_events`` row. Dials with none of these (still
                       ringing or talking) are left out of numerator and denominator.
promises               Promise rows made on the group's calls.
ptp_rate               Right-party calls with at least one promise / right_party.
promised_minor         Sum of ``promises.amount_minor`` per currency (never across currencies).
promises_due           Promises not cancelled that are ``kept`` or due before ``as_of``
                       (``due_date < as_of``).
promises_kept          Of those, status ``kept`` (a payment reported by the creditor covered it).
kept_rate              promises_kept / promises_due.
transfers              Calls with at least one ``transfer`` call event.
callbacks              Callback rows scheduled on the group's calls.
stop_contacts          Calls that created a ``stop_contact`` contact restriction.
abandoned              Connected dials without a conversation (no ``calls`` row), or whose call
                       ended ``interrupted`` or with outcome ``no_answer``/``abandoned``/
                       ``dropped`` (the agent never spoke, or the line dropped).
abandon_rate           abandoned / connected.
turns                  Agent replies with a measured latency (``calls.timings``).
avg_turn_latency_ms    Mean of every ``calls.timings["turn_latency_ms"]`` entry (a list of
                       milliseconds, end of debtor speech -> first agent audio), turn-weighted.
=====================  ==========================================================================

A ratio whose denominator is zero is ``None`` (not 0). Group keys: ``campaign`` (campaign id,
``None`` for inbound), ``portfolio`` (the account's), ``day``, ``dialplan``
(``<dialplan_id>@<version>`` of the call, else of the campaign) and ``agent``: ``virtual``
holds every dial; a transferred call is counted **also** under ``human:<transfer target>``,
with the whole call's timings (the CRM keeps no separate human leg), so ``agent`` rows
overlap. Calls still in progress count with what they have committed so far.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from voiceagent.crm.models import (
    Account,
    Attempt,
    Call,
    Callback,
    CallEvent,
    Campaign,
    ContactRestriction,
    Promise,
)

GROUPS = ("campaign", "portfolio", "day", "dialplan", "agent")
"""Valid ``group_by`` keys."""
ABANDON_OUTCOMES = frozenset({"no_answer", "abandoned", "dropped", "interrupted"})
"""Call outcomes that count as abandoned when the dial was answered."""
VIRTUAL_AGENT = "virtual"


@dataclass(slots=True)
class Dial:
    """One attempt or inbound call with what its call produced (the unit every figure counts)."""

    campaign: int | None
    portfolio: int | None
    dialed_at: datetime
    answered_at: datetime | None
    hangup_at: datetime | None
    wrapup_end_at: datetime | None
    connected: bool
    right_party: bool
    abandoned: bool
    dialplan: str | None
    call_id: str | None
    transfer_targets: tuple[str, ...] = ()
    latencies_ms: tuple[float, ...] = ()
    promises: list[tuple[int, str, str, date]] = field(default_factory=list)
    """``(amount_minor, currency, status, due_date)`` of each promise made on the call."""
    callbacks: int = 0
    stop_contact: bool = False

    def keys(self, dimension: str) -> list[Any]:
        """The group key(s) of this dial along one dimension."""
        if dimension == "campaign":
            return [self.campaign]
        if dimension == "portfolio":
            return [self.portfolio]
        if dimension == "day":
            return [self.dialed_at.astimezone(UTC).date().isoformat()]
        if dimension == "dialplan":
            return [self.dialplan]
        if dimension == "agent":
            return [VIRTUAL_AGENT] + [f"human:{t}" for t in dict.fromkeys(self.transfer_targets)]
        raise ValueError(f"unknown group {dimension!r}; expected one of {', '.join(GROUPS)}")


@dataclass(slots=True)
class Figures:
    """The metrics of one group (see the module docstring for each definition)."""

    group: dict[str, Any]
    attempts: int = 0
    connected: int = 0
    contact_rate: float | None = None
    right_party: int = 0
    cpc: float | None = None
    tma_s: float | None = None
    tmo_s: float | None = None
    promises: int = 0
    ptp_rate: float | None = None
    promised_minor: dict[str, int] = field(default_factory=dict)
    promises_due: int = 0
    promises_kept: int = 0
    kept_rate: float | None = None
    transfers: int = 0
    callbacks: int = 0
    stop_contacts: int = 0
    abandoned: int = 0
    abandon_rate: float | None = None
    turns: int = 0
    avg_turn_latency_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def ratio(numerator: float, denominator: float, digits: int = 4) -> float | None:
    """``numerator / denominator`` rounded, or ``None`` when the denominator is zero."""
    return None if denominator == 0 else round(numerator / denominator, digits)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def _calls_in_range(frm: datetime, to: datetime) -> Select[Any]:
    """Ids of the calls of the dials in ``[frm, to)``."""
    return (
        select(Call.id)
        .outerjoin(Attempt, Attempt.id == Call.attempt_id)
        .where(
            or_(
                and_(
                    Call.attempt_id.is_not(None), Attempt.started_at >= frm, Attempt.started_at < to
                ),
                and_(Call.attempt_id.is_(None), Call.started_at >= frm, Call.started_at < to),
            )
        )
    )


_CALL_COLUMNS = (
    Call.id,
    Call.ended_at,
    Call.outcome,
    Call.right_party,
    Call.interrupted,
    Call.dialplan_id,
    Call.dialplan_version,
    Call.timings,
)


def _outbound(s: Session, frm: datetime, to: datetime, where: list[Any]) -> list[Any]:
    query = (
        select(
            Attempt.campaign_id,
            Account.portfolio_id,
            Attempt.started_at,
            Attempt.answered_at,
            Attempt.ended_at,
            Attempt.result,
            Campaign.dialplan_id,
            Campaign.dialplan_version,
            *_CALL_COLUMNS,
        )
        .select_from(Attempt)
        .join(Account, Account.id == Attempt.account_id)
        .outerjoin(Call, Call.attempt_id == Attempt.id)
        .outerjoin(Campaign, Campaign.id == Attempt.campaign_id)
        .where(Attempt.started_at >= frm, Attempt.started_at < to, *where)
    )
    return list(s.execute(query))


def _inbound(s: Session, frm: datetime, to: datetime, where: list[Any]) -> list[Any]:
    query = (
        select(Account.portfolio_id, Call.started_at, *_CALL_COLUMNS)
        .select_from(Call)
        .outerjoin(Account, Account.id == Call.account_id)
        .where(Call.attempt_id.is_(None), Call.started_at >= frm, Call.started_at < to, *where)
    )
    return list(s.execute(query))


def _latencies(timings: dict[str, Any] | None) -> tuple[float, ...]:
    values = (timings or {}).get("turn_latency_ms") or []
    if not isinstance(values, list):
        return ()
    return tuple(float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool))


def _dial(
    *,
    campaign: int | None,
    portfolio: int | None,
    dialed_at: datetime,
    answered_at: datetime | None,
    attempt_end: datetime | None,
    result: str | None,
    call: Any,
    fallback_plan: str | None,
) -> Dial:
    has_call = call.id is not None
    connected = answered_at is not None and result != "machine"
    abandoned = connected and (
        not has_call or bool(call.interrupted) or (call.outcome in ABANDON_OUTCOMES)
    )
    plan = f"{call.dialplan_id}@{call.dialplan_version}" if has_call else fallback_plan
    return Dial(
        campaign=campaign,
        portfolio=portfolio,
        dialed_at=dialed_at,
        answered_at=answered_at,
        hangup_at=call.ended_at if call.ended_at is not None else attempt_end,
        wrapup_end_at=_latest(attempt_end, call.ended_at),
        connected=connected,
        right_party=connected and bool(call.right_party),
        abandoned=abandoned,
        dialplan=plan,
        call_id=call.id,
        latencies_ms=_latencies(call.timings) if has_call else (),
    )


def load_dials(
    s: Session,
    frm: datetime,
    to: datetime,
    campaign_id: int | None = None,
    portfolio_id: int | None = None,
) -> list[Dial]:
    """Every dial in ``[frm, to)`` (aware datetimes) with the facts its call committed."""
    where_out: list[Any] = []
    where_in: list[Any] = []
    if campaign_id is not None:
        where_out.append(Attempt.campaign_id == campaign_id)
        where_in.append(false())  # inbound calls belong to no campaign
    if portfolio_id is not None:
        where_out.append(Account.portfolio_id == portfolio_id)
        where_in.append(Account.portfolio_id == portfolio_id)
    dials: list[Dial] = []
    for row in _outbound(s, frm, to, where_out):
        campaign, portfolio, dialed, answered, ended, result, c_plan, c_version = row[:8]
        call = _CallView(*row[8:])
        dials.append(
            _dial(
                campaign=campaign,
                portfolio=portfolio,
                dialed_at=dialed,
                answered_at=answered,
                attempt_end=ended,
                result=result,
                call=call,
                fallback_plan=f"{c_plan}@{c_version}" if c_plan is not None else None,
            )
        )
    for row in _inbound(s, frm, to, where_in):
        call = _CallView(*row[2:])
        dials.append(
            _dial(
                campaign=None,
                portfolio=row[0],
                dialed_at=row[1],
                answered_at=row[1],
                attempt_end=None,
                result=None,
                call=call,
                fallback_plan=None,
            )
        )
    _attach_call_facts(s, frm, to, {d.call_id: d for d in dials if d.call_id is not None})
    return dials


@dataclass(frozen=True, slots=True)
class _CallView:
    id: str | None
    ended_at: datetime | None
    outcome: str | None
    right_party: bool | None
    interrupted: bool | None
    dialplan_id: str | None
    dialplan_version: str | None
    timings: dict[str, Any] | None


def _attach_call_facts(s: Session, frm: datetime, to: datetime, by_call: dict[str, Dial]) -> None:
    if not by_call:
        return
    ids = _calls_in_range(frm, to).scalar_subquery()
    last_event = select(CallEvent.call_id, func.max(CallEvent.at)).where(CallEvent.call_id.in_(ids))
    for event_call, at in s.execute(last_event.group_by(CallEvent.call_id)):
        dial = by_call.get(event_call)
        if dial is not None:
            dial.wrapup_end_at = _latest(dial.wrapup_end_at, at)
    transfers = select(CallEvent.call_id, CallEvent.data).where(
        CallEvent.call_id.in_(ids), CallEvent.kind == "transfer"
    )
    for transfer_call, data in s.execute(transfers.order_by(CallEvent.id)):
        dial = by_call.get(transfer_call)
        if dial is not None:
            target = str((data or {}).get("target") or "unknown")
            dial.transfer_targets = (*dial.transfer_targets, target)
    promises = select(
        Promise.call_id, Promise.amount_minor, Promise.currency, Promise.status, Promise.due_date
    ).where(Promise.call_id.in_(ids))
    for promise_call, amount, currency, status, due in s.execute(promises.order_by(Promise.id)):
        if promise_call in by_call:
            by_call[promise_call].promises.append((int(amount), currency, status, due))
    callbacks = (
        select(Callback.call_id, func.count())
        .where(Callback.call_id.in_(ids))
        .group_by(Callback.call_id)
    )
    for callback_call, count in s.execute(callbacks):
        if callback_call in by_call:
            by_call[callback_call].callbacks = int(count)
    stops = select(ContactRestriction.source_call_id).where(
        ContactRestriction.source_call_id.in_(ids), ContactRestriction.kind == "stop_contact"
    )
    for (stop_call,) in s.execute(stops):
        if stop_call in by_call:
            by_call[stop_call].stop_contact = True


def aggregate(dials: Iterable[Dial], group: dict[str, Any], as_of: date) -> Figures:
    """The figures of one set of dials (``as_of``: the day promises are judged due against)."""
    fig = Figures(group=group)
    tma: list[float] = []
    tmo: list[float] = []
    latencies: list[float] = []
    rpc_with_promise = 0
    for d in dials:
        fig.attempts += 1
        operation = _seconds(d.dialed_at, d.wrapup_end_at)
        if operation is not None:
            tmo.append(operation)
        fig.transfers += bool(d.transfer_targets)
        fig.callbacks += d.callbacks
        fig.stop_contacts += d.stop_contact
        fig.promises += len(d.promises)
        latencies += d.latencies_ms
        for amount, currency, status, due in d.promises:
            fig.promised_minor[currency] = fig.promised_minor.get(currency, 0) + amount
            if status != "cancelled" and (status == "kept" or due < as_of):
                fig.promises_due += 1
                fig.promises_kept += status == "kept"
        if not d.connected:
            continue
        fig.connected += 1
        fig.abandoned += d.abandoned
        handling = _seconds(d.answered_at, d.hangup_at)
        if handling is not None:
            tma.append(handling)
        if d.right_party:
            fig.right_party += 1
            rpc_with_promise += bool(d.promises)
    fig.contact_rate = ratio(fig.connected, fig.attempts)
    fig.cpc = ratio(fig.right_party, fig.connected)
    fig.ptp_rate = ratio(rpc_with_promise, fig.right_party)
    fig.kept_rate = ratio(fig.promises_kept, fig.promises_due)
    fig.abandon_rate = ratio(fig.abandoned, fig.connected)
    fig.tma_s = ratio(sum(tma), len(tma), 3)
    fig.tmo_s = ratio(sum(tmo), len(tmo), 3)
    fig.turns = len(latencies)
    fig.avg_turn_latency_ms = ratio(sum(latencies), len(latencies), 1)
    return fig


def group_dials(
    dials: Iterable[Dial], group_by: Sequence[str]
) -> dict[tuple[Any, ...], list[Dial]]:
    """Dials by their key along each dimension of ``group_by`` (all in one group when empty)."""
    for name in group_by:
        if name not in GROUPS:
            raise ValueError(f"unknown group {name!r}; expected one of {', '.join(GROUPS)}")
    groups: dict[tuple[Any, ...], list[Dial]] = defaultdict(list)
    for d in dials:
        keys: list[tuple[Any, ...]] = [()]
        for name in group_by:
            keys = [k + (v,) for k in keys for v in d.keys(name)]
        for key in keys:
            groups[key].append(d)
    return groups


def compute(
    s: Session,
    frm: datetime,
    to: datetime,
    group_by: Sequence[str] = (),
    *,
    campaign_id: int | None = None,
    portfolio_id: int | None = None,
    as_of: date | None = None,
) -> list[Figures]:
    """The figures of the dials in ``[frm, to)``, one row per group, sorted by group key.

    Args:
        s: An open session.
        frm: Start of the range (aware; inclusive).
        to: End of the range (aware; exclusive).
        group_by: Dimensions from :data:`GROUPS`; empty for one row over everything.
        campaign_id: Only this campaign's dials.
        portfolio_id: Only this portfolio's dials.
        as_of: Promises due before this day count in the kept rate (default: today, UTC).

    Raises:
        ValueError: An unknown dimension in ``group_by``.
    """
    day = as_of or datetime.now(UTC).date()
    groups = group_dials(load_dials(s, frm, to, campaign_id, portfolio_id), group_by)
    if not group_by and not groups:
        groups[()] = []
    rows = [
        aggregate(dials, dict(zip(group_by, key, strict=True)), day)
        for key, dials in groups.items()
    ]
    rows.sort(key=lambda f: tuple((v is None, str(v)) for v in f.group.values()))
    return rows
