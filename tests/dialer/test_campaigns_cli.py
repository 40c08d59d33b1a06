"""``voiceagent campaigns``: start, pause, resume, stop and status on a seeded SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.dialer.fixtures_dialer import cmp_sessions, seed
from voiceagent.cli import app
from voiceagent.crm.db import make_engine, upgrade
from voiceagent.dialer import campaigns as cmp

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A migrated SQLite database with a draft campaign ``c`` over a list of 5 accounts."""
    database = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    upgrade(database)
    engine = make_engine(database)
    try:
        list_id = seed(engine, 5)
        with cmp_sessions(engine).begin() as s:
            cmp.create(s, "c", list_id, cmp.CampaignConfig(jurisdiction="CO"))
    finally:
        engine.dispose()
    return database


def _json(url: str, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["campaigns", *args, "--json", "--database-url", url])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_start_queues_the_list_and_status_shows_it(url: str) -> None:
    assert _json(url, "status", "c")["status"] == "draft"
    started = _json(url, "start", "c")
    assert started["status"] == "running"
    assert started["accounts"] == {"pending": 5, "in_progress": 0, "done": 0, "done_by_result": {}}
    assert _json(url, "status", "c") == started
    assert _json(url, "pause", "c")["status"] == "paused"
    assert _json(url, "status", "c")["status"] == "paused"
    assert _json(url, "resume", "c")["status"] == "running"
    stopped = _json(url, "stop", "c")
    assert stopped["status"] == "finished" and stopped["accounts"]["pending"] == 5


def test_text_status_lists_the_counts(url: str) -> None:
    runner.invoke(app, ["campaigns", "start", "c", "--database-url", url])
    result = runner.invoke(app, ["campaigns", "status", "c", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "campaign 'c': running" in result.stdout
    assert "accounts: 5 pending, 0 in progress, 0 done" in result.stdout


def test_unknown_campaign_and_illegal_transition_fail_with_exit_code_1(url: str) -> None:
    result = runner.invoke(app, ["campaigns", "status", "nope", "--database-url", url])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no campaign 'nope'"
    result = runner.invoke(app, ["campaigns", "pause", "c", "--database-url", url])
    assert result.exit_code == 1
    assert "campaign 'c' is draft; cannot make it paused" in result.stderr
    assert _json(url, "status", "c")["status"] == "draft"  # nothing changed


def test_the_real_entry_point_prints_json(url: str) -> None:
    """``python -m voiceagent campaigns ...`` in a subprocess (the installed command path)."""
    base = [sys.executable, "-m", "voiceagent", "campaigns"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args, code in ((["start", "c"], 0), (["status", "c"], 0), (["status", "zz"], 1)):
        done = subprocess.run(
            [*base, *args, "--json", "--database-url", url],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )
        assert done.returncode == code, done.stderr
    assert json.loads(done.stdout or "{}") == {}  # the failing call printed nothing on stdout
    assert "no campaign 'zz'" in done.stderr
    status = subprocess.run(
        [*base, "status", "c", "--json", "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    assert json.loads(status.stdout)["accounts"]["pending"] == 5
