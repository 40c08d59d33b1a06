"""Tokens (wrong, malformed, expired, revoked, disabled user) and the web session cookie."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import PASSWORD, add_user, bearer
from voiceagent.api.auth import (
    hash_password,
    new_token,
    verify_password,
)
from voiceagent.crm.models import User
from voiceagent.crm.types import utcnow


def _error(response: object) -> tuple[int, str]:
    r = response  # type: ignore[assignment]
    return r.status_code, r.json()["error"]["message"]  # type: ignore[attr-defined]


def test_wrong_and_malformed_tokens(client: TestClient, tokens: dict[str, str]) -> None:
    status, message = _error(client.get("/api/calls", headers=bearer(new_token())))
    assert (status, message) == (401, "unknown or revoked API token")
    status, message = _error(client.get("/api/calls", headers=bearer("hunter2")))
    assert status == 401 and "malformed" in message
    status, message = _error(client.get("/api/calls", headers={"Authorization": "Basic eDp5"}))
    assert status == 401 and "Bearer" in message
    response = client.get("/api/calls", headers=bearer(tokens["operator"]))
    assert response.status_code == 200


def test_expired_token(client: TestClient, sessions: sessionmaker[Session]) -> None:
    expired, fresh = (
        new_token(utcnow() - timedelta(seconds=1)),
        new_token(utcnow() + timedelta(days=1)),
    )
    with sessions.begin() as s:
        add_user(s, "old", "supervisor", expired)
        add_user(s, "new", "supervisor", fresh)
    status, message = _error(client.get("/api/calls", headers=bearer(expired)))
    assert status == 401 and "expired" in message
    assert client.get("/api/calls", headers=bearer(fresh)).status_code == 200
    # the expiry is part of what is hashed: editing it gives an unknown token, not a longer one
    forged = "va1.0." + expired.split(".", 2)[2]
    assert _error(client.get("/api/calls", headers=bearer(forged)))[0] == 401


def test_revoked_token_and_disabled_user(
    client: TestClient, tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    admin = bearer(tokens["admin"])
    with sessions() as s:
        ids = {u.name: u.id for u in s.scalars(select(User))}
    assert client.delete(f"/api/users/{ids['operator']}/token", headers=admin).status_code == 204
    status, message = _error(client.get("/api/calls", headers=bearer(tokens["operator"])))
    assert (status, message) == (401, "unknown or revoked API token")
    rotated = client.post(f"/api/users/{ids['operator']}/token", headers=admin, json={})
    assert rotated.status_code == 200
    assert client.get("/api/calls", headers=bearer(rotated.json()["token"])).status_code == 200
    changed = client.patch(f"/api/users/{ids['supervisor']}", headers=admin, json={"active": False})
    assert changed.status_code == 200 and changed.json()["active"] is False
    status, message = _error(client.get("/api/calls", headers=bearer(tokens["supervisor"])))
    assert status == 401 and "disabled" in message


def test_admin_creates_user_and_token_is_shown_once(
    client: TestClient, tokens: dict[str, str]
) -> None:
    admin = bearer(tokens["admin"])
    created = client.post("/api/users", headers=admin, json={"name": "ana", "role": "operator"})
    assert created.status_code == 201
    token = created.json()["token"]
    listed = client.get("/api/users", headers=admin).json()["items"]
    assert all("token" not in u and "api_token_hash" not in u for u in listed)
    me = client.get("/api/session", headers=bearer(token)).json()
    assert me == {"user": "ana", "role": "operator", "via": "token"}
    again = client.post("/api/users", headers=admin, json={"name": "ana", "role": "operator"})
    assert again.status_code == 409


def test_login_cookie_and_csrf(client: TestClient, tokens: dict[str, str]) -> None:
    bad = client.post("/api/session", data={"name": "supervisor", "password": "nope"})
    assert _error(bad) == (401, "wrong user name or password")
    response = client.post("/api/session", data={"name": "supervisor", "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    csrf = response.json()["csrf_token"]
    assert client.get("/api/session").json()["via"] == "session"
    assert client.get("/api/metrics?from=2026-01-01&to=2026-01-02").status_code == 200
    assert client.get("/api/calls/x/recording").status_code == 404  # role ok, no such call
    # unsafe methods with the cookie need the CSRF header
    assert _error(client.delete("/api/session"))[0] == 403
    assert client.delete("/api/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/session").status_code == 401


def test_tampered_and_expired_session(
    client: TestClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client.cookies.set("voiceagent_session", "eyJ1aWQiOjF9.forged.sig")
    status, message = _error(client.get("/api/session"))
    assert status == 401 and "invalid session" in message
    client.cookies.clear()
    real = time.time
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(real()) - 13 * 3600)
    client.post("/api/session", data={"name": "operator", "password": PASSWORD})
    monkeypatch.undo()
    status, message = _error(client.get("/api/session"))
    assert status == 401 and "expired" in message


def test_password_hashes() -> None:
    stored = hash_password("s3cret-pass")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("s3cret-pasS", stored)
    assert not verify_password("x", None) and not verify_password("x", "garbage")
