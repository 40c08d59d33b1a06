"""Payments reported back keep promises, idempotently on the creditor's reference."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import bearer
from tests.crm.conftest import make_account
from voiceagent.crm.models import Promise


def test_payment_keeps_promise_once(
    client: TestClient, tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        account, _ = make_account(s)
        promise = Promise(
            account_id=account.id,
            amount_minor=200_000,
            currency="COP",
            due_date=date(2026, 3, 10),
            created_at=None,
        )
        promise.created_at = __import__("voiceagent.crm.types").crm.types.utcnow()
        s.add(promise)
        s.flush()
        account_id, promise_id, folio = account.id, promise.id, account.portfolio_id
    auth = bearer(tokens["operator"])
    body = {
        "portfolio_id": folio,
        "account_ref": "A-1",
        "amount_minor": 200_000,
        "currency": "COP",
        "paid_on": date.today().isoformat(),
        "external_ref": "TX-9",
    }
    first = client.post("/api/payments", json=body, headers=auth)
    assert first.status_code == 201, first.text
    assert first.json()["kept_promise_ids"] == [promise_id]
    assert first.json()["duplicate"] is False
    again = client.post("/api/payments", json={**body, "account_id": None}, headers=auth)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["payment"]["id"] == first.json()["payment"]["id"]
    promises = client.get("/api/promises", params={"status": "kept"}, headers=auth).json()
    assert [p["id"] for p in promises["items"]] == [promise_id] and promises["total"] == 1
    listed = client.get("/api/payments", params={"account_id": account_id}, headers=auth).json()
    assert listed["total"] == 1
    clash = client.post("/api/payments", json={**body, "amount_minor": 1}, headers=auth)
    assert clash.status_code == 409


def test_payment_errors(client: TestClient, tokens: dict[str, str]) -> None:
    auth = bearer(tokens["operator"])
    body = {
        "account_id": 424242,
        "amount_minor": 100,
        "currency": "COP",
        "paid_on": "2026-03-01",
        "external_ref": "TX-1",
    }
    unknown = client.post("/api/payments", json=body, headers=auth)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "unknown account 424242"
    invalid = client.post(
        "/api/payments", json={**body, "amount_minor": 0, "currency": "cop"}, headers=auth
    )
    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert error["code"] == "invalid_request" and "amount_minor" in error["message"]
    assert "currency" in error["message"]
    no_key = client.post("/api/payments", json={**body, "account_id": None}, headers=auth)
    assert no_key.status_code == 422 and "account_id" in no_key.json()["error"]["message"]
    refused = client.post("/api/payments", json=body, headers=bearer(tokens["supervisor"]))
    assert refused.status_code == 403
