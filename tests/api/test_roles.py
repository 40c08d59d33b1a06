"""Every route checks a role: a table over ``app.routes``, so a new unchecked route fails here."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import bearer
from voiceagent.api.app import PUBLIC_ROUTES
from voiceagent.api.auth import ROLES
from voiceagent.api.deps import Need

EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/session"): {"operator", "supervisor", "admin"},
    ("DELETE", "/api/session"): {"operator", "supervisor", "admin"},
    ("GET", "/api/users"): {"admin"},
    ("POST", "/api/users"): {"admin"},
    ("PATCH", "/api/users/{user_id}"): {"admin"},
    ("POST", "/api/users/{user_id}/token"): {"admin"},
    ("DELETE", "/api/users/{user_id}/token"): {"admin"},
    ("POST", "/api/lists"): {"operator", "admin"},
    ("POST", "/api/campaigns/{campaign_id}/start"): {"operator", "admin"},
    ("POST", "/api/campaigns/{campaign_id}/pause"): {"operator", "admin"},
    ("POST", "/api/payments"): {"operator", "admin"},
    ("GET", "/api/metrics"): {"supervisor", "admin"},
    ("GET", "/metrics"): {"supervisor", "admin"},
    ("GET", "/api/calls/{call_id}/recording"): {"supervisor", "admin"},
    ("GET", "/api/calls/{call_id}/transcript"): {"supervisor", "admin"},
}
"""Routes whose roles are not the default (operators and supervisors)."""
STAFF = {"operator", "supervisor", "admin"}


def _needs(dependant: Any) -> list[Need]:
    found = [dependant.call] if isinstance(dependant.call, Need) else []
    for sub in dependant.dependencies:
        found += _needs(sub)
    return found


def _flat(routes: Any) -> Any:
    """Every route, included routers flattened (FastAPI >= 0.16x includes them lazily)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return routes
    return list(iter_route_contexts(routes))


def _routes(client: TestClient) -> list[tuple[str, str, Any]]:
    out = []
    for route in _flat(client.app.routes):  # type: ignore[attr-defined]
        assert route.path, route
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                out.append((method, route.path, route))
    assert len(out) > 25
    return out


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "987654", path)


def test_every_route_declares_roles(client: TestClient) -> None:
    unchecked = []
    for method, path, route in _routes(client):
        dependant = getattr(route, "dependant", None)
        needs = _needs(dependant) if dependant is not None else []
        if (method, path) in PUBLIC_ROUTES:
            assert not needs, f"{method} {path} is public yet checks a role"
        elif len(needs) != 1:
            unchecked.append(f"{method} {path}")
    assert not unchecked, f"routes without exactly one role check: {unchecked}"


def test_each_role_allowed_or_refused_per_route(client: TestClient, tokens: dict[str, str]) -> None:
    checked = 0
    for method, path, route in _routes(client):
        if (method, path) in PUBLIC_ROUTES:
            continue
        url = _concrete(path)
        body = {} if method in ("POST", "PATCH", "PUT") else None
        anonymous = client.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json()["error"]["code"] == "unauthorized"
        allowed = EXPECTED.get((method, path), STAFF)
        declared = _needs(route.dependant)[0].roles
        assert set(declared) | {"admin"} == allowed, (method, path, declared)
        for role in ROLES:
            response = client.request(method, url, json=body, headers=bearer(tokens[role]))
            if role in allowed:
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                error = response.json()["error"]
                assert error["code"] == "forbidden" and repr(role) in error["message"]
        checked += 1
    assert checked >= 20


def test_public_routes_answer_without_credentials(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    schema = client.get("/openapi.json")
    assert schema.status_code == 200 and "/api/calls" in schema.json()["paths"]
    assert client.get("/docs").status_code == 200
