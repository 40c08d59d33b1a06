"""Every Prometheus metric, defined in one place.

Two kinds:

* **Process metrics** updated by the code that sees the event (the call path, the loop-lag
  sampler): counters, histograms and gauges in :data:`REGISTRY`.
* **CRM figures** computed from the database on each scrape by :class:`CrmCollector`, with
  exactly the definitions of :mod:`voiceagent.reporting`, over the dials of the current UTC
  day (``voiceagent_day_*``, label ``campaign``; ``""`` for inbound calls). A ratio whose
  denominator is zero is left out of the scrape (no sample), never exported as 0.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent import reporting
from voiceagent.crm.models import Call, Campaign

if TYPE_CHECKING:
    from voiceagent.call.loopwatch import LoopLagMonitor

REGISTRY = CollectorRegistry(auto_describe=True)
"""Process-wide metrics (one per worker process)."""

CALLS_ENDED = Counter(
    "voiceagent_calls_ended",
    "Calls ended in this process, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
TURN_LATENCY = Histogram(
    "voiceagent_turn_latency_seconds",
    "End of debtor speech to the first agent audio frame out.",
    buckets=(0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0),
    registry=REGISTRY,
)
LOOP_LAG = Gauge(
    "voiceagent_loop_lag_seconds",
    "Worst event-loop lag (late wake-up of a 100 ms timer) over the last export interval.",
    registry=REGISTRY,
)
LOOP_LAG_SAMPLES = Histogram(
    "voiceagent_loop_lag_sample_seconds",
    "Every event-loop lag sample (100 ms apart).",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "voiceagent_webhook_deliveries",
    "Webhook POST attempts, by event type and result (ok, http_error, network_error).",
    ["event", "result"],
    registry=REGISTRY,
)

DAY_FIGURES: dict[str, tuple[str, str]] = {
    "attempts": ("voiceagent_day_attempts", "Dials today (UTC)."),
    "connected": ("voiceagent_day_connected", "Dials answered by a person today."),
    "contact_rate": ("voiceagent_day_contact_rate", "connected / attempts."),
    "right_party": ("voiceagent_day_right_party_contacts", "Right-party contacts today."),
    "cpc": ("voiceagent_day_cpc_ratio", "Right-party contacts / connected."),
    "tma_s": ("voiceagent_day_tma_seconds", "Mean handling time, answer to hang-up."),
    "tmo_s": ("voiceagent_day_tmo_seconds", "Mean operation time, dial to end of wrap-up."),
    "promises": ("voiceagent_day_promises", "Promises to pay made today."),
    "ptp_rate": ("voiceagent_day_ptp_rate", "Right-party calls with a promise / RPC."),
    "kept_rate": ("voiceagent_day_kept_rate", "Kept / due, of today's promises."),
    "transfers": ("voiceagent_day_transfers", "Calls transferred to a human."),
    "callbacks": ("voiceagent_day_callbacks", "Callbacks scheduled."),
    "stop_contacts": ("voiceagent_day_stop_contacts", "Stop-contact requests."),
    "abandoned": ("voiceagent_day_abandoned", "Answered dials the agent never spoke to."),
    "abandon_rate": ("voiceagent_day_abandon_rate", "abandoned / connected."),
    "avg_turn_latency_ms": (
        "voiceagent_day_turn_latency_avg_seconds",
        "Mean turn latency (seconds).",
    ),
}
"""Field of :class:`voiceagent.reporting.Figures` -> (metric name, help)."""
PROMISED = ("voiceagent_day_promised_amount_minor", "Promised today, minor units, per currency.")


class CrmCollector(Collector):
    """Computes the CRM figures from the database when Prometheus scrapes."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterable[Metric]:
        """Today's figures per campaign, calls in progress and campaigns by status."""
        now = datetime.now(UTC)
        start = datetime.combine(now.date(), time(0), UTC)
        with self.sessions() as s:
            rows = reporting.compute(s, start, now, ("campaign",), as_of=now.date())
            live = s.scalar(select(func.count()).where(Call.status == "in_progress"))
            statuses = list(
                s.execute(select(Campaign.status, func.count()).group_by(Campaign.status))
            )
        yield from _figures(rows)
        gauge = GaugeMetricFamily("voiceagent_calls_in_progress", "Calls in progress now.")
        gauge.add_metric([], float(live or 0))
        yield gauge
        by_status = GaugeMetricFamily(
            "voiceagent_campaigns", "Campaigns by status.", labels=["status"]
        )
        for status, n in statuses:
            by_status.add_metric([status], float(n))
        yield by_status


def _figures(rows: list[reporting.Figures]) -> Iterator[Metric]:
    families = {
        field: GaugeMetricFamily(name, doc, labels=["campaign"])
        for field, (name, doc) in DAY_FIGURES.items()
    }
    promised = GaugeMetricFamily(*PROMISED, labels=["campaign", "currency"])
    for row in rows:
        campaign = "" if row.group["campaign"] is None else str(row.group["campaign"])
        for field, family in families.items():
            value = getattr(row, field)
            if value is None:
                continue
            if field == "avg_turn_latency_ms":
                value = value / 1000
            family.add_metric([campaign], float(value))
        for currency, amount in sorted(row.promised_minor.items()):
            promised.add_metric([campaign, currency], float(amount))
    yield from families.values()
    yield promised


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


def app_registry(sessions: sessionmaker[Session]) -> CollectorRegistry:
    """A registry for one app's ``/metrics``: the process metrics plus the CRM figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(REGISTRY))
    registry.register(CrmCollector(sessions))
    return registry


async def export_loop_lag(monitor: LoopLagMonitor, every_s: float = 1.0) -> None:
    """Drain the monitor's samples into the loop-lag metrics every ``every_s`` (runs forever).

    Draining also keeps the monitor's sample list from growing for the life of the process.
    """
    while True:
        await asyncio.sleep(every_s)
        samples, monitor.samples_s[:] = list(monitor.samples_s), []
        for lag_s in samples:
            LOOP_LAG_SAMPLES.observe(lag_s)
        if samples:
            LOOP_LAG.set(max(samples))


@contextlib.asynccontextmanager
async def loop_lag_exporter(every_s: float = 1.0) -> AsyncIterator[None]:
    """Sample this loop's lag and export it while the context is open (an app lifespan)."""
    from voiceagent.call.loopwatch import LoopLagMonitor

    monitor = LoopLagMonitor()
    monitor.start()
    exporter = asyncio.get_running_loop().create_task(export_loop_lag(monitor, every_s))
    try:
        yield
    finally:
        exporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await exporter
        await monitor.stop()
