from __future__ import annotations

from fastapi.testclient import TestClient

from voiceagent.api.app import create_app
from voiceagent.config import Settings


def test_health() -> None:
    client = TestClient(create_app(Settings()))
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
