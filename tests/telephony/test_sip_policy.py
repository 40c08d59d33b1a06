"""No toll-fraud relay: INVITEs from sources not allowed (403) or to numbers not served (404).

The disallowed source is 127.0.0.2 (all of 127/8 is loopback on Linux); the registrar,
kamailio, listens on 127.0.0.1, which is the endpoint's default allowed source.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from tests.model_gate import need
from tests.telephony import sipstack as ss
from tests.telephony.test_sip import Recorder, agent, caller_audio
from voiceagent.telephony.sipguard import (
    Rejection,
    check_inbound_invite,
    request_user,
    source_networks,
)

pytestmark = [pytest.mark.sip]

OUTSIDER = "127.0.0.2"


@pytest.fixture(scope="module")
def kam(tmp_path_factory: pytest.TempPathFactory) -> Any:
    need(ss.have_tools(), "kamailio and sipp (apt-get install kamailio sip-tester)")
    with ss.run_kamailio(tmp_path_factory.mktemp("kamailio")) as kamailio:
        yield kamailio


def test_request_user_and_policy_decisions() -> None:
    assert request_user(b"INVITE sip:agent@10.0.0.1:5060 SIP/2.0\r\n") == "agent"
    assert request_user(b"INVITE sips:+573001234567@pbx;user=phone SIP/2.0\r\n") == (
        "+573001234567"
    )
    assert request_user(b"INVITE tel:+573001234567;phone-context=x SIP/2.0\r\n") == (
        "+573001234567"
    )
    assert request_user(b"INVITE sip:alice:pw@host SIP/2.0\r\n") == "alice"
    assert request_user(b"INVITE sip:10.0.0.1 SIP/2.0\r\n") == ""
    nets = source_networks(["10.1.2.3", "192.0.2.0/24"])
    raw = b"INVITE sip:agent@10.0.0.1 SIP/2.0\r\n"
    served = {"agent", "6015551234"}
    assert check_inbound_invite(raw, "10.1.2.3", nets, served) is None
    assert check_inbound_invite(raw, "192.0.2.77", nets, served) is None
    assert check_inbound_invite(raw, "10.1.2.4", nets, served) == Rejection(403, "Forbidden")
    assert check_inbound_invite(raw, None, nets, served) == Rejection(403, "Forbidden")
    assert check_inbound_invite(raw, "pbx.example", nets, served) == Rejection(403, "Forbidden")
    relay = b"INVITE sip:0015559876@10.0.0.1 SIP/2.0\r\n"
    assert check_inbound_invite(relay, "10.1.2.3", nets, served) == Rejection(404, "Not Found")
    assert check_inbound_invite(relay, "10.9.9.9", nets, served) == Rejection(403, "Forbidden")
    with pytest.raises(ValueError):
        source_networks(["not-an-ip"])


async def test_invite_from_a_source_not_allowed_gets_403_and_no_relay(
    kam: ss.Kamailio, tmp_path: Path
) -> None:
    rec = Recorder()
    async with agent(kam, rec) as endpoint:
        assert endpoint.allowed_networks == (ipaddress.ip_network("127.0.0.1/32"),)
        port = endpoint.config.sip_port
        # A raw peer on another address tries to have the agent call an international number.
        probe = ss.SipProbe(bind=OUTSIDER)
        try:
            for user in ("00573001234567", "agent"):
                msg = ss.invite(f"fraud-{user}", probe.port, port)
                msg = msg.replace(b"INVITE sip:agent@", f"INVITE sip:{user}@".encode(), 1)
                replies = probe.exchange(msg, port, wait_s=1.0)
                replies += probe.drain(0.3)
                assert [ss.sip_status(r) for r in replies] == [403], replies
                assert b"Call-ID: fraud-" in replies[0]
        finally:
            probe.close()
        # sipp from the same outside address: 403, never 100/180/200.
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_rejected",
            remote=f"127.0.0.1:{port}",
            service="agent",
            local_ip=OUTSIDER,
        )
        result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]
        assert result.count(r"^SIP/2\.0 403 Forbidden") == 1
        assert result.count(r"^SIP/2\.0 (180|200)") == 0
        await asyncio.sleep(0.2)
        assert rec.calls == []
        assert endpoint.active_calls == 0
    # The agent sent no INVITE anywhere (kamailio logs every request it gets).
    sent = [ln for ln in kam.log().splitlines() if re.search(r"REQ INVITE .*(0057|fraud)", ln)]
    assert sent == []


async def test_allowed_sources_admits_a_configured_network(
    kam: ss.Kamailio, tmp_path: Path
) -> None:
    caller_audio(tmp_path)
    rec = Recorder()
    async with agent(kam, rec, allowed_sources=("127.0.0.0/29",)) as endpoint:
        port = endpoint.config.sip_port
        async with ss.rtp_sink() as (_sink, sink_port):
            sipp = await ss.start_sipp(
                tmp_path,
                "uac_stream",
                remote=f"127.0.0.1:{port}",
                local_ip=OUTSIDER,
                pause_ms=1000,
                keys={"rtpsink": str(sink_port)},
            )
            result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]
        await asyncio.wait_for(rec.hangup_seen.wait(), 2)
    assert len(rec.calls) == 1
    assert len(rec.frames) > 20


async def test_unserved_number_through_the_proxy_gets_404_then_calls_still_work(
    kam: ss.Kamailio, tmp_path: Path
) -> None:
    caller_audio(tmp_path)
    rec = Recorder()
    async with agent(kam, rec) as endpoint:
        # kamailio's test route sends R-URI user "p<port>" to 127.0.0.1:<port> unchanged, so
        # the agent sees an allowed source (the proxy) asking for a number it does not serve.
        unserved = f"p{endpoint.config.sip_port}"
        sipp = await ss.start_sipp(
            tmp_path, "uac_rejected", remote=f"127.0.0.1:{kam.port}", service=unserved
        )
        result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]
        assert result.count(r"^SIP/2\.0 404 Not Found") == 1
        assert result.count(r"^SIP/2\.0 (180|200)") == 0
        assert rec.calls == []
        # A normal call to the agent's own extension right after is answered.
        async with ss.rtp_sink() as (sink, sink_port):
            sipp = await ss.start_sipp(
                tmp_path,
                "uac_stream",
                remote=f"127.0.0.1:{kam.port}",
                pause_ms=1000,
                keys={"rtpsink": str(sink_port)},
            )
            result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]
        await asyncio.wait_for(rec.hangup_seen.wait(), 2)
        assert len(rec.calls) == 1
        assert len(rec.frames) > 20


async def test_served_numbers_lists_the_dids_answered(kam: ss.Kamailio, tmp_path: Path) -> None:
    caller_audio(tmp_path)
    rec = Recorder()
    sip_port = ss.free_udp_port()
    did = f"p{sip_port}"
    async with (
        agent(kam, rec, sip_port=sip_port, served_numbers=("agent", did)),
        ss.rtp_sink() as (_sink, sink_port),
    ):
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_stream",
            remote=f"127.0.0.1:{kam.port}",
            service=did,
            pause_ms=1000,
            keys={"rtpsink": str(sink_port)},
        )
        result = await sipp.result()
        assert result.rc == 0, result.messages[-3000:]
        await asyncio.wait_for(rec.hangup_seen.wait(), 2)
    assert len(rec.calls) == 1
