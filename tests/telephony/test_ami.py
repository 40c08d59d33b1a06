"""The AMI client against a fake Asterisk Manager that behaves like manager.c (ami_peer.py).

Every socket binds 127.0.0.1 on an ephemeral port; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.telephony.ami_peer import FakeManager, OriginateScript, ReceivedAction
from tests.telephony.audiosocket_peer import AsteriskPeer, Call, Calls
from voiceagent.telephony.ami import (
    AGENT_CONTEXT,
    DIAL_CONTEXT,
    AmiActionError,
    AmiAuthError,
    AmiClient,
    AmiDisconnectedError,
    DialOutcome,
    dial_outcome_for,
    transfer_hook,
)
from voiceagent.telephony.audiosocket import AudioSocketConfig, AudioSocketServer
from voiceagent.telephony.sipconfig import DialResult

CALL_UUID = "0B5E4F4E-8B1C-4C8E-9A5D-3F2B1A0C9D8E"  # upper case on purpose: must be normalised
MakeClient = Callable[..., Awaitable[AmiClient]]


@pytest.fixture
async def ami() -> AsyncIterator[FakeManager]:
    async with FakeManager() as manager:
        yield manager


@pytest.fixture
async def make_client(ami: FakeManager) -> AsyncIterator[MakeClient]:
    clients: list[AmiClient] = []

    async def make(secret: str = "s3cret", **kwargs: Any) -> AmiClient:
        kwargs.setdefault("backoff_s", (0.05, 0.2))
        client = AmiClient("127.0.0.1", ami.port, "voiceagent", secret, 2.0, **kwargs)
        clients.append(client)
        await client.start()
        return client

    yield make
    for client in clients:
        await asyncio.wait_for(client.close(), 5)


def originate_kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "call_uuid": CALL_UUID,
        "campaign": "early-2026",
        "attempt_id": 4711,
        "caller_id": '"Cobranzas" <5215500000000>',
        "ring_timeout_s": 30,
    }
    return kwargs | overrides


# --- login --------------------------------------------------------------------------------------


async def test_login_sends_credentials_and_an_event_mask(
    ami: FakeManager, make_client: MakeClient
) -> None:
    client = await make_client()
    assert client.connected and ami.logins == 1
    [login] = ami.actions("login")
    assert login.get("Username") == "voiceagent" and login.get("Secret") == "s3cret"
    assert login.get("Events") == "call"  # OriginateResponse is a CALL-class event
    assert login.get("ActionID")
    await client.ping()
    assert [a.action for a in ami.received] == ["login", "ping"]


async def test_bad_secret_is_a_clear_error_that_never_shows_the_secret(
    ami: FakeManager, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AmiAuthError, match="Authentication failed") as info:
        await asyncio.wait_for(make_client(secret="wrong-secret-xyz"), 5)
    assert "voiceagent" in str(info.value)
    assert "wrong-secret-xyz" not in str(info.value) + caplog.text
    await asyncio.sleep(0.3)  # longer than the backoff: start() failed, so no reconnection
    assert ami.connections == 1 and ami.logins == 0


# --- transfer -----------------------------------------------------------------------------------


async def test_setvar_for_a_transfer_is_exactly_what_the_dialplan_reads(
    ami: FakeManager, make_client: MakeClient
) -> None:
    client = await make_client()
    await client.set_transfer_target(CALL_UUID, "agents")
    [setvar] = ami.actions("setvar")
    action_id = setvar.get("ActionID")
    assert (
        setvar.raw
        == (
            f"Action: Setvar\r\nActionID: {action_id}\r\n"
            "Variable: VOICEAGENT_XFER_0b5e4f4e8b1c4c8e9a5d3f2b1a0c9d8e\r\nValue: agents\r\n\r\n"
        ).encode()
    )
    # [voiceagent-after] on the UUID as Asterisk's UUID() or the AudioSocket server spells it:
    assert ami.after_audiosocket(CALL_UUID.lower()) == "agents"
    assert ami.globals == {}  # the dialplan clears it


async def test_caller_id_published_by_the_inbound_route_is_read_back(
    ami: FakeManager, make_client: MakeClient
) -> None:
    client = await make_client()
    # What [from-carrier] does before AudioSocket(): Set(GLOBAL(VOICEAGENT_CID_<hex>)=...)
    ami.globals["VOICEAGENT_CID_0b5e4f4e8b1c4c8e9a5d3f2b1a0c9d8e"] = "+573001234567"
    assert await client.caller_id(CALL_UUID) == "+573001234567"
    [getvar] = ami.actions("getvar")
    assert getvar.get("Variable") == "VOICEAGENT_CID_0b5e4f4e8b1c4c8e9a5d3f2b1a0c9d8e"
    assert await client.caller_id("11111111-2222-3333-4444-555555555555") == ""
    ami.globals["VOICEAGENT_CID_0b5e4f4e8b1c4c8e9a5d3f2b1a0c9d8e"] = "anonymous"
    assert await client.caller_id(CALL_UUID) == ""  # not a number: no account lookup


def test_the_inbound_route_publishes_and_clears_the_caller_id() -> None:
    from tests.conftest import ROOT

    conf = (ROOT / "asterisk" / "extensions.conf").read_text(encoding="utf-8")
    cid = "GLOBAL(VOICEAGENT_CID_${FILTER(0123456789abcdef,${CALL_UUID})})"
    inbound = conf.split("\n[from-carrier]\n")[1].split("\n[")[0]
    after = conf.split("\n[voiceagent-after]\n")[1].split("\n[")[0]
    assert f"Set({cid}=${{CALLERID(num)}})" in inbound
    assert inbound.index(cid) < inbound.index("AudioSocket(")
    assert f"Set({cid}=)" in after


async def test_transfer_targets_the_dialplan_would_mangle_are_rejected(
    ami: FakeManager, make_client: MakeClient
) -> None:
    client = await make_client()
    for target in ("Agents", "agents\r\nAction: Originate", "", "a-b"):
        with pytest.raises(ValueError):
            await client.set_transfer_target(CALL_UUID, target)
    with pytest.raises(ValueError):
        await client.set_transfer_target("not-a-uuid", "agents")
    assert ami.actions("setvar") == []


async def test_audiosocket_transfer_sets_the_variable_before_the_hangup_frame(
    ami: FakeManager, make_client: MakeClient
) -> None:
    client = await make_client()
    calls = Calls(lambda: Call(end_after_ticks=5, transfer_to="agents"))
    server = AudioSocketServer(
        calls, AudioSocketConfig(host="127.0.0.1", port=0), on_transfer=transfer_hook(client)
    )
    await server.start()
    peer = AsteriskPeer("127.0.0.1", server.port)
    try:
        await peer.connect()
        assert await peer.wait_ended(5) == "server_hangup"
        variable = "VOICEAGENT_XFER_" + peer.call_uuid.hex
        assert ami.globals == {variable: "agents"}
        assert ami.globals_set_at[variable] < peer.received[-1].t  # before the 0x00 frame
        assert peer.received[-1].kind == 0x00 and peer.error == ""
        assert ami.after_audiosocket(str(peer.call_uuid)) == "agents"
    finally:
        await peer.close()
        await server.close()


def test_the_dialplan_reads_the_variable_and_context_the_client_uses() -> None:
    conf = (ROOT / "asterisk" / "extensions.conf").read_text(encoding="utf-8")
    assert "Set(XFER_VAR=VOICEAGENT_XFER_${FILTER(0123456789abcdef,${CALL_UUID})})" in conf
    assert "Set(TARGET=${FILTER(abcdefghijklmnopqrstuvwxyz0123456789_," in conf
    dial = conf.split(f"\n[{DIAL_CONTEXT}]\n")[1].split("\n[")[0]
    agent = conf.split(f"\n[{AGENT_CONTEXT}]\n")[1].split("\n[")[0]
    assert re.search(r"^exten => _X\.,1,", dial, re.M)  # digits only: the client drops the '+'
    assert re.search(r"^exten => s,1,", agent, re.M)
    assert "AudioSocket(${CALL_UUID}," in agent


# --- originate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "reason", "outcome"),
    [
        ("Success", 4, DialOutcome.ANSWERED),
        ("Failure", 5, DialOutcome.BUSY),
        ("Failure", 3, DialOutcome.NO_ANSWER),
        ("Failure", 8, DialOutcome.CONGESTION),
        ("Failure", 0, DialOutcome.FAILED),
        ("Failure", 1, DialOutcome.FAILED),
    ],
)
async def test_originate_maps_the_originate_response(
    ami: FakeManager, make_client: MakeClient, response: str, reason: int, outcome: DialOutcome
) -> None:
    ami.originate = lambda _a: OriginateScript(response, reason)
    client = await make_client()
    result = await asyncio.wait_for(client.originate("+5215512345678", **originate_kwargs()), 5)
    assert result.outcome is outcome and result.reason == reason
    assert result.call_uuid == CALL_UUID.lower()
    assert (result.uniqueid == "<null>") is (reason == 0)
    [action] = ami.actions("originate")
    assert action.get("Channel") == f"Local/5215512345678@{DIAL_CONTEXT}"
    assert (action.get("Context"), action.get("Exten"), action.get("Priority")) == (
        AGENT_CONTEXT,
        "s",
        "1",
    )
    assert action.get_all("Variable") == [
        f"CALL_UUID={CALL_UUID.lower()}",
        "CAMPAIGN=early-2026",
        "ATTEMPT_ID=4711",
    ]
    assert action.get("CallerID") == '"Cobranzas" <5215500000000>'
    assert action.get("Timeout") == "30000" and action.get("Async") == "true"


def test_dial_outcomes_map_onto_the_sip_adapters_results() -> None:
    assert dial_outcome_for("Failure", 5).dial_result is DialResult.BUSY
    assert dial_outcome_for("Failure", 3).dial_result is DialResult.NO_ANSWER
    assert dial_outcome_for("Failure", 8).dial_result is DialResult.FAILED
    assert dial_outcome_for("Success", 4).dial_result is None


async def test_events_interleaved_with_responses_reach_subscribers_not_actions(
    ami: FakeManager, make_client: MakeClient
) -> None:
    ami.chatter = True  # a Newchannel and someone else's OriginateResponse before each response
    ami.originate = lambda _a: OriginateScript("Failure", 5, delay_s=0.2)
    client = await make_client()
    sub = client.subscribe(["Newchannel"])
    results = await asyncio.wait_for(
        asyncio.gather(
            client.originate("5215512345678", **originate_kwargs()),
            *(client.ping() for _ in range(5)),
            client.set_transfer_target(CALL_UUID, "disputes"),
        ),
        5,
    )
    assert (
        results[0] is not None and results[0].outcome is DialOutcome.BUSY
    )  # not the foreign Success that came first
    assert len(ami.actions("ping")) == 5
    event = await sub.get(1)
    assert event.get("Event") == "Newchannel" and event.get("Channel") == "PJSIP/carrier-00000001"
    with pytest.raises(AmiActionError, match="No such channel"):
        await client.hangup("PJSIP/nobody-00000000")


async def test_events_are_not_mistaken_for_responses_with_the_same_action_id(
    ami: FakeManager, make_client: MakeClient
) -> None:
    client = await make_client()
    sub = client.subscribe()

    def originate(a: ReceivedAction) -> OriginateScript:
        return OriginateScript("Failure", 3, delay_s=0.05)

    ami.originate = originate
    result = await asyncio.wait_for(client.originate("5215512345678", **originate_kwargs()), 5)
    event = await sub.get(1)  # the OriginateResponse also has Response: and the same ActionID
    assert event.get("Event") == "OriginateResponse" and event.get("Response") == "Failure"
    assert result.outcome is DialOutcome.NO_ANSWER


# --- connection loss ----------------------------------------------------------------------------


async def test_a_drop_mid_action_fails_it_then_the_client_reconnects(
    ami: FakeManager, make_client: MakeClient
) -> None:
    client = await make_client()
    ami.drop_on = "setvar"
    with pytest.raises(AmiDisconnectedError, match="Setvar"):
        await asyncio.wait_for(client.set_transfer_target(CALL_UUID, "agents"), 1.5)
    await ami.wait_for(lambda: ami.logins == 2, 3)
    await asyncio.wait_for(client.set_transfer_target(CALL_UUID, "agents"), 3)
    assert ami.globals == {"VOICEAGENT_XFER_0b5e4f4e8b1c4c8e9a5d3f2b1a0c9d8e": "agents"}
    assert client.reconnects == 1


async def test_waiting_for_originate_response_survives_a_reconnection(
    ami: FakeManager, make_client: MakeClient
) -> None:
    ami.originate = lambda _a: OriginateScript("Success", 4, delay_s=0.6)
    client = await make_client()
    pending = asyncio.create_task(client.originate("5215512345678", **originate_kwargs()))
    await ami.wait_for(lambda: bool(ami.actions("originate")), 2)
    await asyncio.sleep(0.05)  # let the acknowledgement arrive
    ami.disconnect_all()
    await ami.wait_for(lambda: ami.logins == 2, 2)
    result = await asyncio.wait_for(pending, 3)
    assert result.outcome is DialOutcome.ANSWERED


async def test_keepalive_pings_and_close_logs_off(
    ami: FakeManager, make_client: MakeClient
) -> None:
    client = await make_client(keepalive_s=0.05)
    await ami.wait_for(lambda: len(ami.actions("ping")) >= 2, 2)
    await asyncio.wait_for(client.close(), 3)
    assert ami.received[-1].action == "logoff"
    assert not client.connected
    await asyncio.sleep(0.3)
    assert ami.logins == 1  # no reconnection after the Goodbye


# --- injection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"number": "5215512345678\r\nAction: Hangup"},
        {"number": "55/1234"},
        {"number": "55&1234"},
        {"number": "55,1234"},
        {"number": "+52 55 1234"},
        {"number": "SIP/evil"},
        {"number": ""},
        {"campaign": "early,CALL_UUID=evil"},
        {"attempt_id": "1\nAction: Originate"},
        {"caller_id": "Cobranzas\r\nChannel: PJSIP/999"},
        {"call_uuid": "not-a-uuid"},
        {"ring_timeout_s": 0},
    ],
)
async def test_injection_is_rejected_before_anything_is_sent(
    ami: FakeManager, make_client: MakeClient, overrides: dict[str, Any]
) -> None:
    client = await make_client()
    number = overrides.pop("number", "5215512345678")
    with pytest.raises(ValueError):
        await client.originate(number, **originate_kwargs(**overrides))
    with pytest.raises(ValueError):
        await client.action("Setvar", [("Variable", "X"), ("Value", "a\r\nAction: Originate")])
    assert [a.action for a in ami.received] == ["login"]


async def test_action_ids_are_unique_and_not_shared_between_clients(
    ami: FakeManager, make_client: MakeClient
) -> None:
    a, b = await make_client(), await make_client()
    await asyncio.gather(a.ping(), a.ping(), b.ping())
    ids = [x.get("ActionID") for x in ami.received]
    assert len(set(ids)) == len(ids) == 5
