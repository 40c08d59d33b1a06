"""Call listing: filters, pagination with a total, clear 404 and 422 errors."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import bearer
from tests.api.seed import seed


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> dict[str, Any]:
    with sessions.begin() as s:
        return seed(s)


def test_filters_and_pages(
    client: TestClient, tokens: dict[str, str], seeded: dict[str, Any]
) -> None:
    auth = bearer(tokens["operator"])
    everything = client.get("/api/calls", headers=auth).json()
    assert everything["total"] == 6 and len(everything["items"]) == 6
    rpc = client.get("/api/calls", params={"right_party": "true"}, headers=auth).json()
    assert sorted(c["id"] for c in rpc["items"]) == ["call-5", "call-6", "call-7", "call-8"]
    page = client.get(
        "/api/calls", params={"limit": 2, "offset": 2, "campaign_id": seeded["c1"]}, headers=auth
    ).json()
    assert page["total"] == 6 and page["limit"] == 2 and page["offset"] == 2
    assert [c["id"] for c in page["items"]] == ["call-8", "call-7"]  # newest first
    window = client.get(
        "/api/calls",
        params={"from": "2026-03-02T10:55:00Z", "to": "2026-03-02T11:15:00", "outcome": "done"},
        headers=auth,
    ).json()
    assert [c["id"] for c in window["items"]] == ["call-8", "call-7"]
    detail = client.get("/api/calls/call-6", headers=auth).json()
    assert detail["campaign_id"] == seeded["c1"]
    assert [e["kind"] for e in detail["events"]] == ["transfer"]
    promises = client.get(
        "/api/promises", params={"due_from": "2026-03-06", "due_to": "2026-04-01"}, headers=auth
    ).json()
    assert [p["call_id"] for p in promises["items"]] == ["call-5", "call-8"]
    campaign = client.get(f"/api/campaigns/{seeded['c1']}", headers=auth).json()
    assert campaign["progress"]["attempts"] == 11


def test_errors_are_clear_json(client: TestClient, tokens: dict[str, str]) -> None:
    auth = bearer(tokens["supervisor"])
    missing = client.get("/api/calls/nope", headers=auth)
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "unknown call 'nope'"}}
    bad = client.get("/api/calls", params={"from": "yesterday", "limit": 0}, headers=auth)
    assert bad.status_code == 422
    message = bad.json()["error"]["message"]
    assert "from" in message and "limit" in message
    backwards = client.get(
        "/api/calls", params={"from": "2026-03-02", "to": "2026-03-01"}, headers=auth
    )
    assert backwards.json()["error"]["message"] == "'to' must not be before 'from'"
    status = client.get("/api/calls", params={"status": "flying"}, headers=auth)
    assert status.status_code == 422
    start = client.post("/api/campaigns/1/start", headers=bearer(tokens["operator"]))
    assert start.status_code == 404  # no campaign 1 in an empty database


def test_campaign_start_and_pause(
    client: TestClient, tokens: dict[str, str], seeded: dict[str, Any]
) -> None:
    auth = bearer(tokens["operator"])
    c1 = seeded["c1"]
    assert client.post(f"/api/campaigns/{c1}/pause", headers=auth).status_code == 409  # draft
    started = client.post(f"/api/campaigns/{c1}/start", headers=auth)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running"
    paused = client.post(f"/api/campaigns/{c1}/pause", headers=auth)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    listed = client.get("/api/campaigns", params={"status": "paused"}, headers=auth).json()
    assert [c["id"] for c in listed["items"]] == [c1]
