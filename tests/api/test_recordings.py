"""Recordings stream with HTTP Range and every access leaves an audit row; transcripts too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import bearer
from tests.crm.conftest import make_account
from voiceagent.audio.wav import write_wav
from voiceagent.crm.models import AuditLog, Call, User


@pytest.fixture
def recorded(sessions: sessionmaker[Session], data_dir: Path) -> bytes:
    """Call ``rec-1`` with a 1 s stereo WAV (relative path under the data dir) and a transcript."""
    (data_dir / "rec").mkdir(parents=True)
    pcm = bytes(range(256)) * 125  # 32000 bytes: 2000 stereo frames
    write_wav(data_dir / "rec" / "rec-1.wav", pcm, rate_hz=8000, channels=2)
    lines = [{"speaker": "agent", "text": "Hola", "start_ms": 0, "end_ms": 600}]
    (data_dir / "rec" / "rec-1.json").write_text(json.dumps(lines))
    with sessions.begin() as s:
        account, phone = make_account(s)
        s.add(
            Call(
                id="rec-1",
                account_id=account.id,
                phone_id=phone.id,
                dialplan_id="es-419/early",
                dialplan_version="v3",
                recording_path="rec/rec-1.wav",
                transcript_path=str(data_dir / "rec" / "rec-1.json"),
            )
        )
        s.add(Call(id="rec-2", dialplan_id="x", dialplan_version="1"))
    return (data_dir / "rec" / "rec-1.wav").read_bytes()


def _audits(sessions: sessionmaker[Session], action: str) -> list[tuple[str, str, str]]:
    with sessions() as s:
        rows = s.execute(
            select(User.name, AuditLog.entity_id, AuditLog.detail)
            .join(User, User.id == AuditLog.user_id)
            .where(AuditLog.action == action)
            .order_by(AuditLog.id)
        )
        return [(name, entity, detail.get("range")) for name, entity, detail in rows]


def test_recording_full_and_ranges_each_audited(
    client: TestClient,
    tokens: dict[str, str],
    recorded: bytes,
    sessions: sessionmaker[Session],
) -> None:
    auth = bearer(tokens["supervisor"])
    full = client.get("/api/calls/rec-1/recording", headers=auth)
    assert full.status_code == 200 and full.content == recorded
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-type"] == "audio/wav"
    size = len(recorded)
    part = client.get("/api/calls/rec-1/recording", headers={**auth, "Range": "bytes=44-143"})
    assert part.status_code == 206 and part.content == recorded[44:144]
    assert part.headers["content-range"] == f"bytes 44-143/{size}"
    tail = client.get("/api/calls/rec-1/recording", headers={**auth, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == recorded[-10:]
    open_end = client.get("/api/calls/rec-1/recording", headers={**auth, "Range": "bytes=100-"})
    assert open_end.content == recorded[100:]
    bad = client.get("/api/calls/rec-1/recording", headers={**auth, "Range": f"bytes={size}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{size}"
    assert _audits(sessions, "recording.read") == [
        ("supervisor", "rec-1", f"0-{size - 1}"),
        ("supervisor", "rec-1", "44-143"),
        ("supervisor", "rec-1", f"{size - 10}-{size - 1}"),
        ("supervisor", "rec-1", f"100-{size - 1}"),
    ]


def test_recording_refused_without_role_and_not_audited(
    client: TestClient,
    tokens: dict[str, str],
    recorded: bytes,
    sessions: sessionmaker[Session],
) -> None:
    refused = client.get("/api/calls/rec-1/recording", headers=bearer(tokens["operator"]))
    assert refused.status_code == 403 and refused.content != recorded
    assert client.get("/api/calls/rec-1/recording").status_code == 401
    assert _audits(sessions, "recording.read") == []


def test_missing_recording_and_unknown_call(
    client: TestClient, tokens: dict[str, str], recorded: bytes
) -> None:
    auth = bearer(tokens["admin"])
    unknown = client.get("/api/calls/nope/recording", headers=auth)
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"code": "not_found", "message": "unknown call 'nope'"}}
    none = client.get("/api/calls/rec-2/recording", headers=auth)
    assert none.status_code == 404 and "has no recording" in none.json()["error"]["message"]


def test_transcript(
    client: TestClient,
    tokens: dict[str, str],
    recorded: bytes,
    sessions: sessionmaker[Session],
) -> None:
    got = client.get("/api/calls/rec-1/transcript", headers=bearer(tokens["supervisor"]))
    assert got.status_code == 200
    assert got.json()["lines"][0]["text"] == "Hola"
    assert (
        client.get("/api/calls/rec-1/transcript", headers=bearer(tokens["operator"])).status_code
        == 403
    )
    assert [a[:2] for a in _audits(sessions, "transcript.read")] == [("supervisor", "rec-1")]
