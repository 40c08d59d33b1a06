"""Outbound answers through the whole session: a machine gets the voicemail after its beep and
never the dialog; a person gets the dialog. Real speech (espeak-ng) and a real VAD; the
recognizer and the agent's voice are fakes (this isolates the session's answer handling)."""

from __future__ import annotations

import asyncio
import json
import wave
from datetime import date
from pathlib import Path

import numpy as np

from tests.call.speech import espeak
from tests.conftest import DIALPLANS, FIXTURES
from voiceagent.asr.fake import FakeRecognizer
from voiceagent.audio.format import RATE_HZ
from voiceagent.audio.wav import StereoRecorder
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

PLAN = load_dialplan_cached(str(DIALPLANS / "es-419" / "early.yaml"))
ACCOUNT = Account.model_validate(json.loads((FIXTURES / "accounts" / "co-early.json").read_text()))
GREETING = (
    "Hola, se ha comunicado con el buzón de voz de Juan Pérez. En este momento no puedo "
    "atender, deje su mensaje después del tono."
)


class Sink:
    def __init__(self) -> None:
        self.actions: list[act.Action] = []

    def commit(self, call_id: str, action: act.Action) -> None:
        self.actions.append(action)


def write_wav(path: Path, pcm16_8k: bytes) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE_HZ)
        wav.writeframes(pcm16_8k)
    return path


def beep(hz: float = 1000.0, duration_ms: int = 500) -> bytes:
    t = np.arange(RATE_HZ * duration_ms // 1000) / RATE_HZ
    return (6000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def run(lines: list[str], heard: list[str], tmp_path: Path) -> tuple[CallResult, Sink, Path]:
    line = SimulatedDebtor(lines, speaks_first=True)
    line.prepare(espeak)
    pools = Pools.create()
    sink = Sink()
    recording = tmp_path / "call.wav"
    recorder = StereoRecorder(recording)
    synth = FakeSynthesizer("es")
    session = CallSession(
        call_id="amd",
        conversation=Conversation(PLAN, ACCOUNT, date(2026, 11, 18)),
        transport=line,
        recognizer=FakeRecognizer(heard),  # type: ignore[arg-type]
        voice=PromptCache(tmp_path / "cache", synth),
        endpointer=Endpointer(WebRtcVad(2)),
        pools=pools,
        sink=sink,  # type: ignore[arg-type]
        clock=FastForwardClock(),
        record=recorder.write,
        config=SessionConfig(amd=True),
    )
    try:
        result = asyncio.run(asyncio.wait_for(session.run(), 120))
    finally:
        recorder.close()
        pools.shutdown()
    return result, sink, recording


def agent_onset_ms(recording: Path) -> int:
    with wave.open(str(recording)) as wav:
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    loud = np.flatnonzero(np.abs(stereo[:, 1].astype(np.int32)) > 1000)
    assert loud.size, "the agent never spoke"
    return int(loud[0]) * 1000 // RATE_HZ


def test_machine_gets_the_voicemail_after_the_beep_and_never_the_dialog(tmp_path: Path) -> None:
    greeting = write_wav(tmp_path / "greeting.wav", espeak(GREETING))
    tone = write_wav(tmp_path / "beep.wav", beep())
    # The greeting (~6 s), 150 ms, the beep; then the machine records whatever we say.
    result, sink, recording = run([f"<audio {greeting} {tone}>", "<silence>"], [], tmp_path)
    assert result.answer is not None
    assert result.answer["kind"] == "machine" and result.answer["verdict"] == "voicemail"
    assert result.outcome["result"] == "voicemail_left"
    said = [line["text"] for line in result.transcript if line["speaker"] == "agent"]
    assert said == [PLAN.prompt("voicemail").text.format(name=ACCOUNT.name, agent_name="Sofía")]
    assert sink.actions == []  # nothing about a debt was recorded or said
    greeting_ms = len(espeak(GREETING)) * 1000 // (2 * RATE_HZ)
    beep_end_ms = 700 + greeting_ms + 150 + 500  # first line starts after the 700 ms pause
    onset = agent_onset_ms(recording)
    assert beep_end_ms <= onset <= beep_end_ms + 800, (onset, beep_end_ms)
    assert result.ended_by == "agent"


def test_person_who_says_alo_gets_the_dialog(tmp_path: Path) -> None:
    lines = ["¿Aló?", "sí, con ella habla", "<hangup>"]
    result, _, recording = run(lines, ["aló", "sí, con ella habla"], tmp_path)
    assert result.answer is not None and result.answer["kind"] == "human"
    said = [line["text"] for line in result.transcript if line["speaker"] == "agent"]
    assert said and said[0].startswith("Hola, le saluda Sofía")  # the dialplan's greeting
    # The agent waited for the person's hello, and answered it within 1.5 s.
    assert 700 + 400 <= agent_onset_ms(recording) <= 700 + 3000
    assert result.outcome["result"] != "voicemail_left"
