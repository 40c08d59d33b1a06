"""The call session's own rules, isolated with fake engines (fast, deterministic text).

Real speech still drives the VAD (espeak-ng audio); the recognizer and the synthesizer are
fakes here because what is tested is the session: write before speak, hang-ups, silence.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.call.speech import espeak
from tests.conftest import DIALPLANS, FIXTURES
from voiceagent.asr.base import Transcript, Word
from voiceagent.asr.fake import FakeRecognizer
from voiceagent.call.clock import FastForwardClock
from voiceagent.call.session import CallResult, CallSession, Pools, SessionConfig
from voiceagent.dialog import actions as act
from voiceagent.dialog.account import Account
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.loader import load_dialplan_cached
from voiceagent.telephony.simulated import SimulatedDebtor
from voiceagent.tts.cache import PromptCache
from voiceagent.tts.fake import FakeSynthesizer
from voiceagent.vad import Endpointer, WebRtcVad

ACCOUNT = Account.model_validate(json.loads((FIXTURES / "accounts" / "co-early.json").read_text()))


class SlowSink:
    """A CRM that takes 300 ms per commit and remembers when each commit finished."""

    def __init__(self) -> None:
        self.committed: list[tuple[float, act.Action]] = []
        self.line: SimulatedDebtor | None = None
        self.committed_at_call_ms: list[int] = []
        """Where the call was (its clock) when each commit returned."""

    def commit(self, call_id: str, action: act.Action) -> None:
        time.sleep(0.3)
        self.committed.append((time.perf_counter(), action))
        if self.line is not None:
            self.committed_at_call_ms.append(self.line.t_ms)


class TimedSynth(FakeSynthesizer):
    """Remembers when each clause was synthesized."""

    def __init__(self) -> None:
        super().__init__("es")
        self.when: list[tuple[float, str]] = []

    def synthesize(self, text: str) -> Iterator[bytes]:
        for chunk in super().synthesize(text):
            self.when.append((time.perf_counter(), self.texts[-1]))
            yield chunk


def run(
    lines: list[str],
    texts: list[str],
    tmp_path: Path,
    sink: object,
    config: SessionConfig | None = None,
    recognizer: object | None = None,
) -> tuple[CallResult, SimulatedDebtor, TimedSynth]:
    plan = load_dialplan_cached(str(DIALPLANS / "es-419" / "early.yaml"))
    answer = espeak("sí, con ella habla")
    debtor = SimulatedDebtor(lines)
    debtor.prepare(lambda _t: answer)
    if isinstance(sink, SlowSink):
        sink.line = debtor
    synth = TimedSynth()
    pools = Pools.create()
    session = CallSession(
        call_id="t",
        conversation=Conversation(plan, ACCOUNT, date(2026, 11, 18)),
        transport=debtor,
        recognizer=recognizer or FakeRecognizer(texts),  # type: ignore[arg-type]
        voice=PromptCache(tmp_path / "cache", synth),
        endpointer=Endpointer(WebRtcVad(2)),
        pools=pools,
        sink=sink,  # type: ignore[arg-type]
        clock=FastForwardClock(),
        config=config,
    )
    try:
        result = asyncio.run(asyncio.wait_for(session.run(), 120))
    finally:
        pools.shutdown()
    return result, debtor, synth


def test_promise_is_committed_before_the_agent_says_it(tmp_path: Path) -> None:
    sink = SlowSink()
    lines = ["sí", "<dtmf 4821>", "sí", "el viernes", "sí", "no"]
    texts = ["sí, con ella habla", "sí", "el viernes", "sí", "no gracias"]
    result, _, synth = run(lines, texts, tmp_path, sink)
    assert result.outcome["result"] == "promise"
    kinds = [type(a).__name__ for _, a in sink.committed]
    assert kinds[0] == "RecordPromise"
    # The "quedó registrado" words were played only after the 300 ms commit returned (their
    # audio may be rendered ahead, while the debtor is still saying yes; never played before).
    committed_ms = sink.committed_at_call_ms[0]
    played_ms = [t["start_ms"] for t in result.transcript if t["text"].startswith("Listo")]
    assert played_ms and played_ms[0] >= committed_ms


def test_debtor_hangs_up_while_the_agent_talks(tmp_path: Path) -> None:
    result, debtor, _ = run(["sí", "<dtmf 4821>", "<hangup>"], ["sí"], tmp_path, SlowSink())
    assert result.ended_by == "debtor"
    assert result.outcome["result"] == "hangup"
    assert debtor.ended_by_agent is None


def test_silence_reprompts_then_closes_as_no_answer(tmp_path: Path) -> None:
    lines = ["<silence>", "<silence>", "<silence>", "<silence>"]
    result, debtor, _ = run(lines, [], tmp_path, SlowSink(), SessionConfig(no_input_ms=3000))
    assert result.outcome["result"] == "no_answer"
    asks = [e for e in result.transcript if e["text"].startswith("¿Hablo con")]
    assert len(asks) == 3  # the question, then two reprompts
    assert asks[1]["start_ms"] - asks[0]["start_ms"] >= 3000
    assert debtor.ended_by_agent == "hangup"


@pytest.mark.parametrize("turn", ["no me vuelvan a llamar"])
def test_stop_contact_is_committed_before_goodbye(tmp_path: Path, turn: str) -> None:
    sink = SlowSink()
    result, debtor, _ = run([turn], [turn], tmp_path, sink)
    assert result.outcome["result"] == "stop_contact"
    assert [type(a).__name__ for _, a in sink.committed] == ["RecordFlag"]
    assert debtor.ended_by_agent == "hangup"


def test_grammar_follows_the_dialog_state(tmp_path: Path) -> None:
    recognizer = FakeRecognizer(["sí, con ella habla", "no me vuelvan a llamar"])
    lines = ["sí", "<dtmf 4821>", "no me vuelvan a llamar"]
    result, _, _ = run(lines, [], tmp_path, SlowSink(), recognizer=recognizer)
    assert result.outcome["result"] == "stop_contact"
    grammars = [g for g in recognizer.grammars if g is not None]
    assert any("cuatro" in g for g in grammars)  # the identity check listens for digits
    assert any("cuatro" not in g and "[unk]" in g for g in grammars)


class GrammarForcing:
    """Grammar sessions return a forced, low-confidence word; free-form sessions the truth."""

    name = "forcing"
    supports_grammar = True

    def __init__(self, truth: list[str]) -> None:
        self.truth = truth
        self.freeform_used = 0

    def open(self, grammar: object = None) -> GrammarForcing.Session:
        return GrammarForcing.Session(self)

    class Session:
        def __init__(self, owner: GrammarForcing) -> None:
            self.owner = owner
            self.grammar = False

        def set_grammar(self, phrases: object) -> None:
            self.grammar = True

        def accept(self, pcm16_8k: bytes) -> None:
            return None

        def finish(self) -> Transcript:
            if self.grammar:
                return Transcript("no", True, (Word("no", 0, 200, 0.2),), 0.2, "forcing")
            self.owner.freeform_used += 1
            text = self.owner.truth.pop(0) if self.owner.truth else ""
            words = tuple(Word(w, 0, 200, 0.9) for w in text.split())
            return Transcript(text, True, words, 0.9, "forcing")


def test_low_confidence_grammar_result_is_decoded_again_free_form(tmp_path: Path) -> None:
    recognizer = GrammarForcing(["sí, con ella habla", "no me vuelvan a llamar"])
    lines = ["sí", "<dtmf 4821>", "no me vuelvan a llamar"]
    result, _, _ = run(lines, [], tmp_path, SlowSink(), recognizer=recognizer)
    assert recognizer.freeform_used >= 1
    assert result.outcome["result"] == "stop_contact"  # a forced "no" would have misled the dialog


class HandoffSink(SlowSink):
    """A CRM that also takes the hand-off summary of a transferred call."""

    def __init__(self) -> None:
        super().__init__()
        self.handoffs: list[dict[str, object]] = []

    def handoff(self, call_id: str, summary: dict[str, object]) -> None:
        self.handoffs.append(summary)


def run_transfer(tmp_path: Path, refuse: bool) -> tuple[CallResult, SimulatedDebtor, HandoffSink]:
    plan = load_dialplan_cached(str(DIALPLANS / "es-419" / "early.yaml"))
    answer = espeak("quiero hablar con un asesor")
    debtor = SimulatedDebtor(["quiero hablar con un asesor", "<silence>"], transfer_fails=refuse)
    debtor.prepare(lambda _t: answer)
    sink = HandoffSink()
    sink.line = debtor
    pools = Pools.create()
    session = CallSession(
        call_id="t",
        conversation=Conversation(plan, ACCOUNT, date(2026, 11, 18)),
        transport=debtor,
        recognizer=FakeRecognizer(["quiero hablar con un asesor"]),  # type: ignore[arg-type]
        voice=PromptCache(tmp_path / "cache", TimedSynth()),
        endpointer=Endpointer(WebRtcVad(2)),
        pools=pools,
        sink=sink,  # type: ignore[arg-type]
        clock=FastForwardClock(),
    )
    try:
        result = asyncio.run(asyncio.wait_for(session.run(), 120))
    finally:
        pools.shutdown()
    return result, debtor, sink


def test_a_transfer_hands_the_human_a_summary(tmp_path: Path) -> None:
    result, debtor, sink = run_transfer(tmp_path, refuse=False)
    assert debtor.transferred_to == "agents" and result.ended_by == "transfer:agents"
    (summary,) = sink.handoffs
    assert summary["target"] == "agents" and summary["debtor"] == ACCOUNT.name
    lines = summary["transcript"]
    assert isinstance(lines, list)
    assert any(line["speaker"] == "debtor" and "asesor" in line["text"] for line in lines)


def test_nobody_to_transfer_to_becomes_a_callback_not_a_drop(tmp_path: Path) -> None:
    result, debtor, sink = run_transfer(tmp_path, refuse=True)
    assert debtor.transferred_to is None  # refused
    callbacks = [a for _, a in sink.committed if isinstance(a, act.ScheduleCallback)]
    assert [c.at.isoformat() for c in callbacks] == ["2026-11-19T10:00:00"]
    said = [t for t in result.transcript if t["speaker"] == "agent"]
    assert said[-1]["text"].startswith("En este momento no hay asesores disponibles")
    # The callback was committed before the agent said it would call back.
    assert said[-1]["start_ms"] >= sink.committed_at_call_ms[-1]
    assert result.outcome["result"] == "callback" and result.ended_by == "agent"
    assert debtor.ended_by_agent == "hangup"
