"""One connected call, start to end: account, dialplan, session, recording, CRM.

The call is opened in the CRM before the first word and closed after the last; a crash in
between leaves it for ``prepare_database`` to close as interrupted, with its partial recording.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from voiceagent.audio.wav import StereoRecorder
from voiceagent.call.clock import Clock, TransportClock
from voiceagent.call.session import CallResult, CallSession, SessionConfig
from voiceagent.call.simulate import latency_summary
from voiceagent.crm import repo
from voiceagent.crm.models import Account as AccountRow
from voiceagent.crm.models import Phone
from voiceagent.crm.sink import DbCallSink
from voiceagent.dialog.account import Account
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.loader import load_dialplan_cached
from voiceagent.dialog.model import Dialplan
from voiceagent.dialog.prompts import MissingAccountField
from voiceagent.dialog.routing import Routing, RoutingError
from voiceagent.telephony.base import CallTransport
from voiceagent.vad import Endpointer, WebRtcVad
from voiceagent.worker.accounts import AccountNotCallable, dialog_account
from voiceagent.worker.engines import Engines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallSpec:
    """What telephony (or the dialer) knows when a call connects."""

    direction: str
    """``inbound`` or ``outbound``."""
    caller_id: str = ""
    """The far end's number (inbound: who is calling; identifies a callback)."""
    account_id: int | None = None
    """Known for outbound calls (the dialer reserved it)."""
    phone_id: int | None = None
    attempt_id: int | None = None
    transport_ref: str = ""
    """The transport's own id (SIP Call-ID, AudioSocket UUID), kept in the logs."""


@dataclass
class Prepared:
    """A call ready to connect: its account, plan and engines (made while it rings)."""

    account: Account
    account_id: int
    phone_id: int | None
    plan: Dialplan


@dataclass(frozen=True)
class CallOutcome:
    """What the worker reports about a finished call."""

    call_id: str
    outcome: str
    right_party: bool
    result: CallResult | None = None


class CallRunner:
    """Runs connected calls for a worker process (any transport, any direction)."""

    def __init__(
        self,
        engines: Engines,
        sessions: sessionmaker[Session],
        routing: Routing,
        dialplans_dir: Path,
        recordings_dir: Path,
        *,
        today: Callable[[], date] = date.today,
        session_config: SessionConfig | None = None,
        fallback_transfer: str = "",
        region: str | None = None,
    ) -> None:
        self.engines = engines
        self.sessions = sessions
        self.sink = DbCallSink(sessions)
        self.routing = routing
        self.dialplans_dir = dialplans_dir
        self.recordings_dir = recordings_dir
        self.today = today
        self.session_config = session_config
        self.fallback_transfer = fallback_transfer
        """Where an inbound caller we cannot identify goes (a human queue); empty: hang up."""
        self.region = region
        """Default region for caller IDs in national format."""
        self.active: dict[str, CallSession] = {}
        """Calls in progress, by CRM call id (the dashboard's live view reads this)."""

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.engines.pools.io, fn, *args)

    async def prepare(self, spec: CallSpec) -> Prepared | None:
        """Find the account and its dialplan, load the engines; None for an unknown caller."""
        found = await self._db(self._find_account, spec)
        if found is None:
            return None
        account, account_id, phone_id = found
        try:
            route = self.routing.select(account)
        except RoutingError as exc:
            raise AccountNotCallable(str(exc)) from None
        plan = route.apply(load_dialplan_cached(str(self.dialplans_dir / route.dialplan)))
        engines = await self.engines.for_locale(plan.dialplan.locale)
        await self.engines.prerender(plan, engines.voice)
        return Prepared(account, account_id, phone_id, plan)

    def _find_account(self, spec: CallSpec) -> tuple[Account, int, int | None] | None:
        with self.sessions() as s:
            phone = s.get(Phone, spec.phone_id) if spec.phone_id is not None else None
            if spec.account_id is not None:
                row = s.get(AccountRow, spec.account_id)
                if row is None:
                    raise AccountNotCallable(f"no account {spec.account_id}")
            else:
                row = repo.account_by_phone(s, spec.caller_id, self.region)
                if row is None:
                    return None
            return dialog_account(s, row, phone), row.id, phone.id if phone else None

    async def run(
        self,
        transport: CallTransport,
        spec: CallSpec,
        prepared: Prepared | None = None,
        clock: Clock | None = None,
        amd: bool = False,
    ) -> CallOutcome:
        """Run a connected call to its end. ``clock`` defaults to the transport's pace.

        ``amd``: an answered outbound call; the dialog starts only once a person is heard (a
        machine gets the dialplan's voicemail).
        """
        if prepared is None:
            try:
                prepared = await self.prepare(spec)
            except (AccountNotCallable, MissingAccountField) as exc:
                log.error("call %s: cannot run the dialog: %s", spec.transport_ref, exc)
                return await self._unidentified(transport, spec, "not_callable")
        if prepared is None:
            return await self._unidentified(transport, spec, "unidentified")
        config = replace(self.session_config or SessionConfig(), amd=amd)
        return await self._converse(transport, spec, prepared, clock or TransportClock(), config)

    async def _converse(
        self,
        transport: CallTransport,
        spec: CallSpec,
        prepared: Prepared,
        clock: Clock,
        config: SessionConfig,
    ) -> CallOutcome:
        plan = prepared.plan
        engines = await self.engines.for_locale(plan.dialplan.locale)
        call_id = uuid.uuid4().hex
        recording, transcript = self._paths(call_id)
        await self._db(lambda: recording.parent.mkdir(parents=True, exist_ok=True))
        await self._db(
            lambda: self.sink.open_call(
                dialplan_id=plan.dialplan.id,
                dialplan_version=str(plan.dialplan.version),
                account_id=prepared.account_id,
                phone_id=prepared.phone_id,
                attempt_id=spec.attempt_id,
                direction=spec.direction,
                recording_path=str(recording),
                transcript_path=str(transcript),
                call_id=call_id,
            )
        )
        log.info("call %s (%s) started: dialplan %s", call_id, spec.transport_ref, plan.dialplan.id)
        conversation = Conversation(plan, prepared.account, self.today())
        recorder = StereoRecorder(recording)
        session = CallSession(
            call_id=call_id,
            conversation=conversation,
            transport=transport,
            recognizer=engines.recognizer,
            voice=engines.voice,
            endpointer=Endpointer(WebRtcVad(2)),
            pools=self.engines.pools,
            sink=self.sink,
            clock=clock,
            record=recorder.write,
            config=config,
        )
        self.active[call_id] = session
        result: CallResult | None = None
        try:
            result = await session.run()
        finally:
            self.active.pop(call_id, None)
            await self._db(recorder.close)
            outcome = (result.outcome.get("result") if result else None) or "failed"
            right_party = conversation.state.verified
            timings = _timings(result) if result is not None else {"error": True}
            if result is not None:
                text = json.dumps(result.transcript, ensure_ascii=False, indent=1)
                await self._db(lambda: transcript.write_text(text, encoding="utf-8"))
            await self._db(
                lambda: self.sink.close_call(
                    call_id, outcome, right_party=right_party, timings=timings
                )
            )
        log.info("call %s ended: %s", call_id, outcome)
        return CallOutcome(call_id, outcome, right_party, result)

    async def _unidentified(
        self, transport: CallTransport, spec: CallSpec, outcome: str
    ) -> CallOutcome:
        """A caller with no account we may talk about: a human queue, or a polite hang-up."""
        call_id = uuid.uuid4().hex
        await self._db(
            lambda: self.sink.open_call(
                dialplan_id="none",
                dialplan_version="0",
                direction=spec.direction,
                attempt_id=spec.attempt_id,
                call_id=call_id,
            )
        )
        try:
            if self.fallback_transfer:
                await transport.transfer(self.fallback_transfer)
            else:
                await transport.hangup()
        finally:
            await self._db(lambda: self.sink.close_call(call_id, outcome))
        return CallOutcome(call_id, outcome, right_party=False)

    def _paths(self, call_id: str) -> tuple[Path, Path]:
        day = datetime.now(UTC)
        folder = self.recordings_dir / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
        return folder / f"{call_id}.wav", folder / f"{call_id}.json"


def _timings(result: CallResult) -> dict[str, Any]:
    """The figures a supervisor's metrics need, kept with the call."""
    return {
        "duration_ms": result.duration_ms,
        "ended_by": result.ended_by,
        "latency_ms": latency_summary(result),
        "turn_latency_ms": [t.latency_ms for t in result.turns if t.latency_ms is not None],
        "answer": result.answer,
        "turns": [
            {
                "end_of_speech_ms": t.end_of_speech_ms,
                "latency_ms": t.latency_ms,
                "asr_ms": round(t.asr_ms, 1),
                "tts_first_ms": round(t.tts_first_ms, 1),
            }
            for t in result.turns
        ],
        "barge_ins": result.barge_ins,
        "recording_errors": result.recording_errors,
    }
