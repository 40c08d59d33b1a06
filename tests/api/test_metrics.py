"""Metric values against figures computed by hand from tests/api/seed.py (pins the formulas)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import bearer
from tests.api.seed import AS_OF, DAY, seed
from voiceagent import reporting


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> dict[str, Any]:
    with sessions.begin() as s:
        return seed(s)


def _by_campaign(rows: list[reporting.Figures], campaign: int) -> reporting.Figures:
    (row,) = [r for r in rows if r.group["campaign"] == campaign]
    return row


def test_campaign_figures_match_hand_computation(
    sessions: sessionmaker[Session], seeded: dict[str, Any]
) -> None:
    with sessions() as s:
        rows = reporting.compute(s, *DAY, ("campaign",), as_of=AS_OF)
    c1 = _by_campaign(rows, seeded["c1"])
    assert c1.attempts == 10  # the 03-01 dial is outside the range
    assert c1.connected == 6
    assert c1.contact_rate == 0.6  # 6 / 10
    assert c1.right_party == 4
    assert c1.cpc == 0.6667  # 4 / 6
    # TMA: answer -> hang-up of the 6 connected: (120 + 180 + 60 + 240 + 30 + 6) / 6
    assert c1.tma_s == 106.0
    # TMO: dial -> wrap-up end of all 10: 4 x 30 (ringing) + (10 + 120 + 5: slip written
    # after hang-up) + (10 + 180) + (10 + 60) + (10 + 240) + (10 + 30) + (10 + 6) = 821 / 10
    assert c1.tmo_s == 82.1
    assert c1.promises == 3
    assert c1.ptp_rate == 0.75  # RPC calls 5, 6, 8 have a promise, of 4 RPC
    assert c1.promised_minor == {"COP": 350_000, "USD": 5_000}
    # due by 03-20: the kept one (due 03-10) and the broken one (03-05); 04-01 is not due yet
    assert (c1.promises_due, c1.promises_kept, c1.kept_rate) == (2, 1, 0.5)
    assert (c1.transfers, c1.callbacks, c1.stop_contacts) == (1, 1, 1)
    assert (c1.abandoned, c1.abandon_rate) == (1, 0.1667)
    assert (c1.turns, c1.avg_turn_latency_ms) == (3, 1000.0)  # (800 + 1200 + 1000) / 3


def test_zero_denominators_are_null_not_zero(
    sessions: sessionmaker[Session], seeded: dict[str, Any]
) -> None:
    with sessions() as s:
        rows = reporting.compute(s, *DAY, ("campaign",), as_of=AS_OF)
    c2 = _by_campaign(rows, seeded["c2"])  # one dial, answered by a machine
    assert (c2.attempts, c2.connected, c2.contact_rate) == (1, 0, 0.0)
    assert c2.cpc is None and c2.tma_s is None and c2.ptp_rate is None
    assert c2.kept_rate is None and c2.avg_turn_latency_ms is None
    assert c2.tmo_s == 8.0
    with sessions() as s:
        (empty,) = reporting.compute(
            s, datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC)
        )
    assert empty.attempts == 0 and empty.contact_rate is None and empty.tmo_s is None


def test_agent_and_day_groups(sessions: sessionmaker[Session], seeded: dict[str, Any]) -> None:
    with sessions() as s:
        agents = reporting.compute(s, *DAY, ("agent",), as_of=AS_OF)
        days = reporting.compute(s, DAY[0].replace(day=1), DAY[1], ("day", "dialplan"))
    by_agent = {r.group["agent"]: r for r in agents}
    assert set(by_agent) == {"virtual", "human:maria"}
    assert by_agent["virtual"].attempts == 11
    maria = by_agent["human:maria"]
    assert (maria.attempts, maria.connected, maria.tma_s, maria.promises) == (1, 1, 180.0, 1)
    keys = [(r.group["day"], r.group["dialplan"], r.attempts) for r in days]
    assert keys == [
        ("2026-03-01", "es-419/early@v3", 1),
        ("2026-03-02", "es-419/early@v3", 10),
        ("2026-03-02", "es-419/late@v1", 1),
    ]


def test_metrics_endpoint(
    client: TestClient, tokens: dict[str, str], seeded: dict[str, Any]
) -> None:
    params = {
        "from": "2026-03-02T00:00:00Z",
        "to": "2026-03-03",
        "group_by": "campaign",
        "as_of": AS_OF.isoformat(),
    }
    response = client.get("/api/metrics", params=params, headers=bearer(tokens["supervisor"]))
    assert response.status_code == 200, response.text
    rows = {r["group"]["campaign"]: r for r in response.json()["rows"]}
    assert rows[seeded["c1"]]["tmo_s"] == 82.1 and rows[seeded["c1"]]["cpc"] == 0.6667
    assert rows[seeded["c2"]]["cpc"] is None
    assert rows[seeded["c1"]]["promised_minor"] == {"COP": 350_000, "USD": 5_000}
    bad = client.get(
        "/api/metrics", params={**params, "group_by": "weekday"}, headers=bearer(tokens["admin"])
    )
    assert bad.status_code == 422
    assert "weekday" in bad.json()["error"]["message"]
    backwards = client.get(
        "/api/metrics",
        params={**params, "from": "2026-03-04"},
        headers=bearer(tokens["supervisor"]),
    )
    assert backwards.status_code == 422 and backwards.json()["error"]["code"] == "invalid_request"
