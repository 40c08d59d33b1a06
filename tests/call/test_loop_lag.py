"""Eight calls share one event loop, in real time, and nothing blocks it.

The engines are fakes here on purpose (this tests the session's own work on the loop: framing,
VAD, playout, recording hand-off). The loop-lag figures themselves are measured and printed by
benchmarks/loop_lag.py; this test only catches gross blocking (an engine or file call made on
the loop costs 100 ms or more), with a bound that a busy CI machine cannot trip.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pytest

from tests.call.speech import espeak
from tests.conftest import DIALPLANS, FIXTURES
from voiceagent.asr.fake import FakeRecognizer
from voiceagent.call.actions import JsonlSink
from voiceagent.call.clock import RealTimeClock
from voiceagent.call.loopwatch import LoopLagMonitor
from voiceagent.call.session import CallSession, Pools
from voiceagent.dialog.account import Account
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.loader import load_dialplan_cached
from voiceagent.telephony.simulated import SimulatedDebtor
from voiceagent.tts.cache import PromptCache
from voiceagent.tts.fake import FakeSynthesizer
from voiceagent.vad import Endpointer, WebRtcVad

pytestmark = pytest.mark.slow


async def run_calls(n: int, tmp_path: Path, answer: bytes) -> tuple[LoopLagMonitor, list[str]]:
    plan = load_dialplan_cached(str(DIALPLANS / "es-419" / "early.yaml"))
    account = Account.model_validate(
        json.loads((FIXTURES / "accounts" / "co-early.json").read_text())
    )
    pools = Pools.create()
    voice = PromptCache(tmp_path / "cache", FakeSynthesizer("es"))
    monitor = LoopLagMonitor(interval_ms=100)
    monitor.start()
    sessions = []
    for i in range(n):
        debtor = SimulatedDebtor(["sí, con ella habla", "<dtmf 4821>", "no me vuelvan a llamar"])
        debtor.prepare(lambda _text: answer)
        recognizer = FakeRecognizer(["sí, con ella habla", "no me vuelvan a llamar"])
        sessions.append(
            CallSession(
                call_id=f"c{i}",
                conversation=Conversation(plan, account, date(2026, 11, 18)),
                transport=debtor,
                recognizer=recognizer,
                voice=voice,
                endpointer=Endpointer(WebRtcVad(2)),
                pools=pools,
                sink=JsonlSink(tmp_path / f"crm{i}.jsonl"),
                clock=RealTimeClock(),
            )
        )
    try:
        results = await asyncio.wait_for(asyncio.gather(*(s.run() for s in sessions)), 120)
    finally:
        await monitor.stop()
        pools.shutdown()
    return monitor, [r.outcome["result"] for r in results]


def test_eight_calls_keep_loop_lag_low(tmp_path: Path) -> None:
    answer = espeak("sí, con ella habla")
    monitor, outcomes = asyncio.run(run_calls(8, tmp_path, answer))
    assert outcomes == ["stop_contact"] * 8
    assert len(monitor.samples_s) > 50
    assert monitor.quantile_s(0.99) < 0.08, monitor.quantile_s(0.99)
