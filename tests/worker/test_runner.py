"""A whole call through the worker's runner: CRM account -> dialplan -> session -> CRM rows.

Engines are the fakes (this tests the wiring; real engines are tested in tests/call); the
database is real SQLite, migrated; the debtor is the scripted simulated line.
"""

from __future__ import annotations

import asyncio
import json
import wave
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.call.speech import espeak
from tests.conftest import DIALPLANS
from tests.crm.conftest import make_account
from voiceagent.asr.fake import FakeRecognizer
from voiceagent.call.clock import FastForwardClock
from voiceagent.crm.db import make_engine, session_factory, upgrade
from voiceagent.crm.models import Call, CallEvent, Promise
from voiceagent.dialog.routing import load_routing
from voiceagent.telephony.simulated import SimulatedDebtor
from voiceagent.tts.cache import PromptCache
from voiceagent.tts.fake import FakeSynthesizer
from voiceagent.worker.calls import CallRunner, CallSpec
from voiceagent.worker.engines import Engines, LocaleEngines

SCRIPT = ["sí, con ella habla", "<dtmf 4050>", "sí, claro", "el viernes", "sí", "no, gracias"]


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    upgrade(url)
    return session_factory(make_engine(url))


def runner_for(sessions: sessionmaker[Session], tmp_path: Path, heard: list[str]) -> CallRunner:
    engines = Engines(asr="fake", models_dir=tmp_path / "models", cache_dir=tmp_path / "cache")
    engines._loaded["es-419"] = LocaleEngines(
        recognizer=FakeRecognizer(heard),  # type: ignore[arg-type]
        voice=PromptCache(tmp_path / "cache", FakeSynthesizer("es")),
    )
    return CallRunner(
        engines,
        sessions,
        load_routing(DIALPLANS / "routing.yaml"),
        DIALPLANS,
        tmp_path / "recordings",
        today=lambda: date(2026, 11, 18),
        region="CO",
    )


def debtor(lines: list[str]) -> SimulatedDebtor:
    line = SimulatedDebtor(lines)
    answer = espeak("sí, con ella habla")
    line.prepare(lambda _text: answer)
    return line


def test_outbound_promise_lands_in_the_crm_with_recording_and_transcript(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions.begin() as s:
        account, phone = make_account(s)
        account.days_past_due = 12  # routing.yaml: es-419 early collections
        account_id, phone_id = account.id, phone.id
    runner = runner_for(sessions, tmp_path, [t for t in SCRIPT if not t.startswith("<")])
    spec = CallSpec("outbound", account_id=account_id, phone_id=phone_id)
    try:
        outcome = asyncio.run(
            asyncio.wait_for(runner.run(debtor(SCRIPT), spec, clock=FastForwardClock()), 120)
        )
    finally:
        runner.engines.shutdown()
    assert outcome.outcome == "promise" and outcome.right_party
    with sessions() as s:
        call = s.get(Call, outcome.call_id)
        assert call is not None
        assert (call.status, call.outcome, call.right_party) == ("ended", "promise", True)
        assert call.dialplan_id == "es-419-early"
        assert call.duration_ms is not None and call.timings["turns"]
        promise = s.scalar(select(Promise).where(Promise.call_id == call.id))
        assert promise is not None and promise.due_date == date(2026, 11, 20)
        events = select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.id)
        kinds = [e.kind for e in s.scalars(events)]
        # Written as they happened, in order (not at hang-up).
        assert kinds[:3] == ["answered", "disclosure_played", "disclosure_played"]
        assert kinds.index("right_party_verified") < kinds.index("record_promise")
        assert kinds[-1] == "hangup"
        recording, transcript = Path(call.recording_path or ""), Path(call.transcript_path or "")
    with wave.open(str(recording)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        assert wav.getnframes() > 8000 * 5
    lines = json.loads(transcript.read_text(encoding="utf-8"))
    assert {line["speaker"] for line in lines} == {"agent", "debtor"}


def test_inbound_caller_is_found_by_caller_id_in_national_format(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions.begin() as s:
        make_account(s)
    runner = runner_for(sessions, tmp_path, ["no me vuelva a llamar"])
    spec = CallSpec("inbound", caller_id="300 123 4567")
    try:
        outcome = asyncio.run(
            asyncio.wait_for(
                runner.run(debtor(["no me vuelva a llamar"]), spec, clock=FastForwardClock()), 60
            )
        )
    finally:
        runner.engines.shutdown()
    with sessions() as s:
        call = s.get(Call, outcome.call_id)
        assert call is not None and call.account_id is not None
        assert call.direction == "inbound" and call.status == "ended"


def test_unknown_caller_is_hung_up_and_recorded_as_unidentified(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    runner = runner_for(sessions, tmp_path, [])
    line = debtor(["hola"])
    try:
        outcome = asyncio.run(runner.run(line, CallSpec("inbound", caller_id="+5215512345678")))
    finally:
        runner.engines.shutdown()
    assert outcome.outcome == "unidentified" and line.ended_by_agent == "hangup"
    with sessions() as s:
        call = s.get(Call, outcome.call_id)
        assert call is not None and call.account_id is None and call.outcome == "unidentified"
