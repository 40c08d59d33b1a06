"""Dashboard fixtures: a migrated SQLite CRM seeded with the API's metric fixture, one user per
role (named after it), and one recorded call with a real stereo WAV and a timed transcript."""

from __future__ import annotations

import json
import math
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.api.conftest import PASSWORD, add_user
from tests.api.seed import seed
from voiceagent.api.app import create_app
from voiceagent.api.auth import ROLES
from voiceagent.api.deps import ApiConfig
from voiceagent.config import Settings
from voiceagent.crm.db import make_engine, session_factory, upgrade
from voiceagent.crm.models import Call, Promise

RATE_HZ = 8000
RECORDED_CALL = "call-rec"
RECORDING_S = 8.0
TRANSCRIPT: list[dict[str, Any]] = [
    {
        "speaker": "agent",
        "text": "Buenos días, ¿hablo con María Fernanda?",
        "start_ms": 0,
        "end_ms": 1800,
    },
    {"speaker": "debtor", "text": "Sí, con ella habla.", "start_ms": 2000, "end_ms": 3400},
    {"speaker": "agent", "text": "¿Puede pagar el viernes?", "start_ms": 3800, "end_ms": 4800},
    {"speaker": "debtor", "text": "Sí, el viernes pago.", "start_ms": 5200, "end_ms": 6600},
]
"""Agent lines sound on the right channel, debtor lines on the left, as the recorder writes."""
RECORDED_DAY = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)


def write_recording(path: Path) -> None:
    """A stereo PCM16 8 kHz WAV: a tone in each speaker's channel while they talk."""
    n_samples = int(RECORDING_S * RATE_HZ)
    left = [0] * n_samples
    right = [0] * n_samples
    for line in TRANSCRIPT:
        lane, freq = (right, 440.0) if line["speaker"] == "agent" else (left, 220.0)
        for i in range(line["start_ms"] * 8, line["end_ms"] * 8):
            lane[i] = int(12000 * math.sin(2 * math.pi * freq * i / RATE_HZ))
    frames = b"".join(struct.pack("<hh", lv, rv) for lv, rv in zip(left, right, strict=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE_HZ)
        out.writeframes(frames)


def add_recorded_call(s: Session, data_dir: Path, account_id: int) -> None:
    """An inbound call on 2026-03-05 with its recording, transcript and a promise."""
    rel_wav, rel_json = Path("rec") / f"{RECORDED_CALL}.wav", Path("rec") / f"{RECORDED_CALL}.json"
    write_recording(data_dir / rel_wav)
    (data_dir / rel_json).write_text(json.dumps({"lines": TRANSCRIPT}), encoding="utf-8")
    s.add(
        Call(
            id=RECORDED_CALL,
            account_id=account_id,
            direction="inbound",
            dialplan_id="es-419/early",
            dialplan_version="v3",
            status="ended",
            outcome="promise",
            right_party=True,
            started_at=RECORDED_DAY,
            ended_at=RECORDED_DAY.replace(second=8),
            duration_ms=int(RECORDING_S * 1000),
            recording_path=str(rel_wav),
            transcript_path=str(rel_json),
            timings={},
        )
    )
    s.flush()
    s.add(
        Promise(
            account_id=account_id,
            call_id=RECORDED_CALL,
            amount_minor=12_345_600,
            currency="COP",
            due_date=date(2026, 3, 13),
            status="pending",
        )
    )


@dataclass
class Seeded:
    """A seeded database and the files it points at."""

    url: str
    data_dir: Path
    ids: dict[str, Any]

    def app(self) -> Any:
        """A fresh app over this database (no background tasks)."""
        config = ApiConfig(session_secret="dashboard-test", data_dir=self.data_dir)
        settings = Settings(data_dir=self.data_dir)
        return create_app(settings, make_engine(self.url), config=config, background=False)


def build(root: Path) -> Seeded:
    """Migrate a SQLite CRM under ``root`` and seed it (metric fixture, users, recorded call)."""
    url = f"sqlite:///{root / 'crm.sqlite3'}"
    upgrade(url)
    data_dir = root / "data"
    engine = make_engine(url)
    with session_factory(engine).begin() as s:
        ids = seed(s)
        for role in ROLES:
            add_user(s, role, role)
        add_recorded_call(s, data_dir, ids["account"])
    engine.dispose()
    return Seeded(url, data_dir, ids)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return build(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def client(seeded: Seeded) -> Iterator[TestClient]:
    with TestClient(seeded.app(), follow_redirects=False) as test_client:
        yield test_client


def login(client: TestClient, role: str) -> str:
    """Log in as the user of ``role`` (the client keeps the cookie); returns the CSRF token."""
    client.cookies.clear()
    response = client.post("/api/session", data={"name": role, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])
