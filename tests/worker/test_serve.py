"""serve's telephony wiring: an inbound call behind Asterisk (AudioSocket + AMI) is identified
by the caller ID the dialplan published, runs the dialog and lands in the CRM."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from tests.crm.conftest import make_account
from tests.telephony.ami_peer import FakeManager
from tests.telephony.audiosocket_peer import AsteriskPeer
from tests.worker.test_runner import runner_for, sessions  # noqa: F401  (fixture)
from voiceagent.config import Settings
from voiceagent.crm.models import Call
from voiceagent.worker.serve import start_telephony


async def test_audiosocket_callback_is_identified_through_ami(
    sessions: sessionmaker[Session],  # noqa: F811
    tmp_path: Path,
) -> None:
    with sessions.begin() as s:
        account, _ = make_account(s)
        account.days_past_due = 12
        account_id = account.id
    runner = runner_for(sessions, tmp_path, [])
    async with FakeManager() as ami, AsyncExitStack() as stack:
        stack.callback(runner.engines.shutdown)
        settings = Settings(
            data_dir=tmp_path,
            audiosocket=True,
            audiosocket_port=0,
            ami_host="127.0.0.1",
            ami_port=ami.port,
            ami_username=ami.username,
            ami_secret=ami.secret,
        )
        started = await start_telephony(settings, runner, stack)
        peer = AsteriskPeer("127.0.0.1", started.audiosocket.port)
        # What [from-carrier] does before AudioSocket(): publish the caller ID.
        ami.globals[f"VOICEAGENT_CID_{peer.call_uuid.hex}"] = "+573001234567"
        await peer.connect()
        await peer.wait_until(lambda: any(r.payload.strip(b"\0") for r in peer.audio()), 10)
        await peer.hang_up()
        for _ in range(100):  # the runner closes the call in the CRM just after the hang-up
            with sessions() as s:
                calls = s.query(Call).all()
            if calls and calls[0].status == "ended":
                break
            await asyncio.sleep(0.05)
    assert len(calls) == 1
    call = calls[0]
    assert call.account_id == account_id and call.direction == "inbound"
    assert call.status == "ended" and call.dialplan_id == "es-419-early"
