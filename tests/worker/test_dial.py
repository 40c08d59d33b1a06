"""`voiceagent dial`: one outbound SIP call for a CRM account, through kamailio to sipp."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.crm.conftest import make_account
from tests.model_gate import need
from tests.telephony import sipstack as ss
from tests.worker.test_runner import runner_for, sessions  # noqa: F401  (fixture)
from voiceagent.config import Settings
from voiceagent.crm.models import Call
from voiceagent.telephony.sipconfig import DialResult
from voiceagent.worker.dialout import dial_once

pytestmark = [pytest.mark.sip]


@pytest.fixture(scope="module")
def kam(tmp_path_factory: pytest.TempPathFactory) -> Any:
    need(ss.have_tools(), "kamailio and sipp (apt-get install kamailio sip-tester)")
    with ss.run_kamailio(tmp_path_factory.mktemp("kamailio")) as kamailio:
        yield kamailio


def settings_for(kam: ss.Kamailio, tmp_path: Path) -> Settings:
    low, high = ss.free_rtp_range()
    return Settings(
        data_dir=tmp_path,
        sip_registrar="127.0.0.1",
        sip_registrar_port=kam.port,
        sip_user="agent",
        sip_password=ss.PASSWORD,
        sip_port=ss.free_udp_port(),
        rtp_port_low=low,
        rtp_port_high=high,
    )


async def test_dial_runs_the_call_and_records_it(
    kam: ss.Kamailio,
    sessions: sessionmaker[Session],  # noqa: F811
    tmp_path: Path,
) -> None:
    with sessions.begin() as s:
        account, _ = make_account(s)
        account.days_past_due = 12
        account_id = account.id
    runner = runner_for(sessions, tmp_path, [])
    async with ss.rtp_sink() as (sink, sink_port):
        uas = await ss.start_sipp(
            tmp_path, "uas_silent", keys={"rtpsink": str(sink_port)}, timeout_s=80
        )
        try:
            done = await asyncio.wait_for(
                dial_once(settings_for(kam, tmp_path), f"p{uas.port}", account_id, 10, runner),
                90,
            )
        finally:
            runner.engines.shutdown()
        result = await uas.result()
    assert not isinstance(done, DialResult)
    assert result.rc == 0, result.messages[-3000:]
    with sessions() as s:
        call = s.get(Call, done.call_id)
        assert call is not None and call.direction == "outbound" and call.status == "ended"
        assert call.account_id == account_id
    # The callee heard the agent: the silent line was classified, then the greeting played.
    loud = [p for p in sink.packets if np.sqrt(np.mean(p.pcm16.astype(float) ** 2)) > 500]
    assert len(loud) > 25


async def test_dial_busy_is_reported(
    kam: ss.Kamailio,
    sessions: sessionmaker[Session],  # noqa: F811
    tmp_path: Path,
) -> None:
    with sessions.begin() as s:
        account_id = make_account(s)[0].id
    runner = runner_for(sessions, tmp_path, [])
    uas = await ss.start_sipp(tmp_path, "uas_busy")
    try:
        done = await asyncio.wait_for(
            dial_once(settings_for(kam, tmp_path), f"p{uas.port}", account_id, 10, runner), 60
        )
    finally:
        runner.engines.shutdown()
    await uas.result()
    assert done == DialResult.BUSY
