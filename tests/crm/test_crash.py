"""Write before speak survives kill -9: a real child process commits a promise and is killed."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select as sql_select

from voiceagent.crm.db import make_engine, session_factory
from voiceagent.crm.models import Call, Promise
from voiceagent.crm.sink import mark_interrupted_calls

ROOT = Path(__file__).resolve().parents[2]
READ_TIMEOUT_S = 30

CHILD = """
import sys, time
from datetime import date
from decimal import Decimal
from voiceagent.crm.db import make_engine, session_factory
from voiceagent.crm.sink import DbCallSink
from voiceagent.dialog.actions import RecordPromise

url, account_id, phone_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sink = DbCallSink(session_factory(make_engine(url)), worker="crash-child")
call_id = sink.open_call(
    dialplan_id="es-419/early", dialplan_version="3f2a", account_id=account_id,
    phone_id=phone_id, recording_path="/var/rec/crash.wav", transcript_path="/var/rec/crash.json",
)
sink.commit(call_id, RecordPromise(Decimal("150000.50"), "COP", date(2030, 1, 15), "full"))
sys.stdout.write("COMMITTED " + call_id + "\\n")
sys.stdout.flush()
time.sleep(600)
"""


def _read_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"child said nothing in {timeout_s} s: {buf!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"child exited: {proc.wait(5)} {buf!r}"
            buf += chunk
    return buf.decode().strip()


def test_promise_survives_sigkill(migrated_url: str, account: tuple[int, int]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, migrated_url, str(account[0]), str(account[1])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        line = _read_line(proc, READ_TIMEOUT_S)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert line.startswith("COMMITTED ")
    call_id = line.split()[1]

    engine = make_engine(migrated_url)  # a fresh engine: as a restarted worker would
    try:
        sessions = session_factory(engine)
        with sessions() as s:
            promise = s.scalars(sql_select(Promise)).one()
            assert (promise.call_id, promise.amount_minor, promise.status) == (
                call_id,
                15_000_050,
                "pending",
            )
            call = s.get(Call, call_id)
            assert call is not None and call.status == "in_progress"
        with sessions.begin() as s:
            assert mark_interrupted_calls(s) == [call_id]
        with sessions() as s:
            call = s.get(Call, call_id)
            assert call is not None
            assert (call.status, call.interrupted, call.outcome) == ("ended", True, "interrupted")
            assert call.recording_path == "/var/rec/crash.wav"
            assert call.transcript_path == "/var/rec/crash.json"
            assert call.ended_at is not None
    finally:
        engine.dispose()
