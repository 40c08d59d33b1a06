"""One call: transport frames -> Endpointer -> recognizer -> dialog -> synthesizer -> playout.

One task runs the 20 ms tick loop (read a frame, detect speech, barge-in, send a frame, record);
one task feeds the recognizer in 100 ms batches; one task runs the dialog and speaks. Engine
calls go to bounded pools; nothing blocking runs on the event loop. Barge-in is decided here,
and only here: sustained debtor speech over interruptible agent audio flushes the playout and
stops the synthesis; if what was said turns out to be a backchannel ("ajá", "mhm", "tá"), the
interrupted prompt resumes from the clause that was cut.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import Any, TypeVar

from voiceagent.asr.base import Recognizer
from voiceagent.audio.format import FRAME_MS
from voiceagent.call.actions import WRITES, CallSink
from voiceagent.call.answering import AnswerGate, AnswerOutcome
from voiceagent.call.backchannel import is_backchannel
from voiceagent.call.clock import Clock
from voiceagent.call.grammar import grammar_for
from voiceagent.call.journal import Journal
from voiceagent.call.listener import Heard, Listener
from voiceagent.call.playout import Playout, Segment
from voiceagent.call.types import CallResult, Pools, SessionConfig, TurnMetrics
from voiceagent.dialog import actions as act
from voiceagent.dialog.conversation import Conversation
from voiceagent.telephony.base import CallTransport
from voiceagent.tts.cache import PromptCache
from voiceagent.vad import Endpointer, SpeechEnded, SpeechStarted

__all__ = ["CallResult", "CallSession", "Pools", "SessionConfig", "TurnMetrics"]
log = logging.getLogger(__name__)
T = TypeVar("T")
_BATCH_FRAMES = 5  # 100 ms of speech per hop to the recognizer thread


@dataclass
class _Interrupted:
    says: list[act.Say]
    clause: int


class CallSession:
    """Runs one call to its end; see the module docstring for the tasks and their roles."""

    def __init__(
        self,
        call_id: str,
        conversation: Conversation,
        transport: CallTransport,
        recognizer: Recognizer,
        voice: PromptCache,
        endpointer: Endpointer,
        pools: Pools,
        sink: CallSink,
        clock: Clock,
        record: Callable[[bytes, bytes], None] | None = None,
        config: SessionConfig | None = None,
    ) -> None:
        self.call_id = call_id
        self.conv = conversation
        self.transport = transport
        self.recognizer = recognizer
        self.voice = voice
        self.endpointer = endpointer
        self.pools = pools
        self.sink = sink
        self.clock = clock
        self._record = record
        self.config = config or SessionConfig()
        self.lang = conversation.ctx.plan.dialplan.locale
        self.playout = Playout()
        self.result = CallResult(outcome={})
        self.t_ms = 0
        self._busy = 0
        self._inputs: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=16)
        machine = conversation.ctx.plan.machine
        self._gate: AnswerGate | None = None
        if self.config.amd:
            leave = machine.voicemail is not None and machine.on_machine == "message"
            self._gate = AnswerGate(self.lang[:2], leave_message=leave)
        self._started = False
        self.journal = Journal(sink, call_id, pools.io)
        compliance = conversation.ctx.plan.compliance
        self._disclosures = {
            p
            for p in (
                compliance.bot_disclosure,
                compliance.recording_notice,
                compliance.collector_disclosure,
            )
            if p
        }
        self._verified_noted = False
        self._callback_instead: datetime | None = None
        """Set when a refused transfer became a scheduled callback."""
        self._started_ms = 0 if self._gate is None else 1 << 62
        """Call time the dialog started; earlier speech is not an answer to it."""
        self.listener = Listener(
            recognizer, pools.asr, self._run_in, self._inputs, self.config.grammar_min_confidence
        )
        self._speaking_gen = 0
        self._barge_pending: int | None = None
        self._barged_at: int | None = None
        self._interrupted: _Interrupted | None = None
        self._worker_idle = True
        self._idle_ms = 0
        self._closing: act.Action | None = None
        self._pending_turn: TurnMetrics | None = None
        self._record_buf: list[tuple[bytes, bytes]] = []
        self._turn_open = False
        """From the end of the debtor's speech until the reply's first audio is queued."""
        self._cut: Segment | None = None
        self._drained = asyncio.Event()
        self._ahead_wake = asyncio.Event()
        self._ahead_done: set[str] = set()
        self._logged_say = 0
        self._say_no = 0
        self._agent_levels: deque[float] = deque([0.0] * 20, maxlen=20)

    async def _run_in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        self._busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
        finally:
            self._busy -= 1

    async def run(self) -> CallResult:
        """Answer, talk, and return when the call has ended."""
        try:
            async with asyncio.TaskGroup() as tg:
                feeder = tg.create_task(self.listener.run())
                worker = tg.create_task(self._dialog_worker())
                ahead = tg.create_task(self._ahead_loop())
                journal = tg.create_task(self.journal.run())
                self.journal.note("answered", amd=self._gate is not None)
                if self._gate is None:
                    await self._inputs.put(("start", None))
                await self._tick_loop()
                worker.cancel()
                feeder.cancel()
                ahead.cancel()
                self.journal.note("hangup", ended_by=self.result.ended_by, at_ms=self.t_ms)
                await self.journal.drain(5.0)
                journal.cancel()
        finally:
            await self._flush_recording()
        self.result.outcome = self.conv.outcome()
        if self._callback_instead is not None:
            self.result.outcome["result"] = "callback"
            self.result.outcome["callback_at"] = self._callback_instead.isoformat()
        answered = self._gate.outcome if self._gate is not None else None
        if answered is not None and answered.result is not None:
            self.result.outcome["result"] = answered.result
        self.result.duration_ms = self.t_ms
        self.result.transcript.sort(key=lambda t: t["start_ms"])
        return self.result

    async def prepare(self) -> None:
        """Render the account's values in every prompt before the call is answered.

        The dialer awaits this while the phone rings (an inbound call, once the caller is
        identified); the greeting and the offers then come whole from the prompt cache.
        """
        await self._render_ahead()

    async def _render_ahead(self) -> None:
        """Render every prompt the call could say next that is not rendered yet.

        One prompt per pool job, so a live synthesis waits behind at most one prompt. Not
        counted as busy: the call never waits for it.
        """
        loop = asyncio.get_running_loop()
        for parts in self.conv.prompts_ahead():
            text = "".join(piece for piece, _ in parts)
            if text in self._ahead_done:
                continue
            self._ahead_done.add(text)
            await loop.run_in_executor(self.pools.tts, self.voice.prerender_parts, [parts])

    async def _ahead_loop(self) -> None:
        """Whenever the agent starts a reply, render what may follow it (see SessionConfig)."""
        if not self.config.render_ahead:
            return
        while True:
            await self._ahead_wake.wait()
            self._ahead_wake.clear()
            await self._render_ahead()

    async def _tick_loop(self) -> None:
        while True:
            inbound = await self.transport.read()
            if inbound.hangup:
                self.conv.hangup()
                self.result.ended_by = "debtor"
                return
            if inbound.dtmf:
                await self._inputs.put(("dtmf", inbound.dtmf))
            self._on_frame(inbound.pcm16_8k)
            out = self.playout.next_frame()
            self._log_playing()
            if not self.playout.busy:
                self._drained.set()
            if self._pending_turn is not None and self.playout.current is not None:
                self._pending_turn.first_frame_ms = self.t_ms
                self._pending_turn = None
            await self.transport.write(out)
            self._record_buf.append((inbound.pcm16_8k, out))
            if len(self._record_buf) >= 50:
                await self._flush_recording()
            self.t_ms += FRAME_MS
            if self._closing is not None and not self.playout.busy and self._worker_idle:
                if await self._close():
                    return
            if self.t_ms >= self.config.max_call_ms:
                self.result.ended_by = "max_call_ms"
                await self.transport.hangup()
                return
            await self.clock.tick(busy=self._busy > 0 or self._turn_open)

    def _log_playing(self) -> None:
        """Transcript lines for the agent are written when the audio actually starts playing."""
        seg = self.playout.current
        if seg is not None and seg.say_no != self._logged_say:
            self._logged_say = seg.say_no
            self._transcribe("agent", seg.say_text, self.t_ms, None)
            if seg.prompt_id in self._disclosures:
                self.journal.note("disclosure_played", prompt=seg.prompt_id, at_ms=self.t_ms)

    def _on_frame(self, pcm16_8k: bytes) -> None:
        if self._gate is not None and self._gate.pending:
            answered = self._gate.push(pcm16_8k, self.t_ms)
            if answered is not None:
                self._answered(answered)
        # Echo comes back delayed: compare with the loudest agent frame of the last 400 ms.
        self._agent_levels.append(self.playout.level)
        agent_level = max(self._agent_levels)
        for ev in self.endpointer.push(pcm16_8k, self.t_ms, agent_level):
            if isinstance(ev, SpeechStarted):
                self._idle_ms = 0
                seg = self.playout.current
                if seg is not None and seg.interruptible:
                    self._barge_pending = ev.onset_ms
            elif isinstance(ev, SpeechEnded):
                self._barge_pending = None
                self._turn_open = True
                if ev.undrained_pcm16_8k:
                    self.listener.speech(ev.undrained_pcm16_8k)
                self.listener.end_of_turn(ev)
            else:
                # Noise: the recognizer may hold some of it; finish and discard.
                self._barge_pending = None
                self.listener.discard()
        if self.endpointer.in_speech:
            if self.endpointer.undrained_frames() >= _BATCH_FRAMES:
                self.listener.speech(self.endpointer.drain())
            self._check_barge_in()
        elif self._waiting_for_debtor():
            self._idle_ms += FRAME_MS
            if self._idle_ms >= self.config.no_input_ms:
                self._idle_ms = 0
                self._inputs.put_nowait(("silence", None))

    def _answered(self, answered: AnswerOutcome) -> None:
        """Who answered is known: start the dialog, leave the voicemail, or hang up."""
        self.result.answer = answered.record()
        if answered.verdict == "start":
            self._inputs.put_nowait(("start", None))
        elif answered.verdict == "voicemail":
            self._inputs.put_nowait(("voicemail", None))
        else:
            self._closing = act.Hangup()

    def _waiting_for_debtor(self) -> bool:
        return (
            self._worker_idle
            and not self._turn_open
            and not self.playout.busy
            and self._inputs.empty()
            and self._closing is None
            and not self.conv.ended
        )

    def _check_barge_in(self) -> None:
        if self._barge_pending is None or not self.playout.busy:
            return
        seg = self.playout.current
        if seg is None or not seg.interruptible:
            return
        if self.endpointer.speech_ms >= self.config.barge_in_ms:
            self._speaking_gen += 1
            self._cut = self.playout.flush()
            if self.result.transcript and self.result.transcript[-1]["speaker"] == "agent":
                self.result.transcript[-1]["interrupted_ms"] = self.t_ms
            self._barged_at = self.t_ms
            self.result.barge_ins.append({"onset_ms": self._barge_pending, "stopped_ms": self.t_ms})
            self._barge_pending = None

    def _update_grammar(self) -> None:
        if self.listener.supports_grammar and not self.conv.ended and self.conv.state.state:
            self.listener.grammar(grammar_for(self.conv.ctx.plan, self.conv.state.state))

    async def _dialog_worker(self) -> None:
        while True:
            kind, payload = await self._inputs.get()
            self._worker_idle = False
            try:
                await self._handle(kind, payload)
            finally:
                self._turn_open = False
                self._worker_idle = self._inputs.empty()
                self._idle_ms = 0

    async def _handle(self, kind: str, payload: Any) -> None:
        if kind == "no_agents":  # the dialog has ended with its transfer; the call has not
            await self._no_agents(payload)
            return
        if self.conv.ended:
            return
        metrics: TurnMetrics | None = None
        if kind == "resume":
            await self._speak(payload.says, payload.clause, None)
            return
        if kind == "voicemail":
            await self._leave_voicemail()
            return
        if kind == "heard" and payload.speech.onset_ms < self._started_ms:
            # Said before the dialog started ("¿Aló?", a voicemail greeting): it helps tell
            # who answered and goes into the transcript, but it is not an answer to anything.
            text = payload.transcript.text.strip()
            if text:
                self._transcribe("debtor", text, payload.speech.onset_ms, payload.speech.end_ms)
            if self._gate is not None and self._gate.pending:
                answered = self._gate.hear(text)
                if answered is not None:
                    self._answered(answered)
            return
        if not self._started and kind != "start":
            return
        if kind == "start":
            self._started = True
            self._started_ms = self.t_ms
            actions = self.conv.start()
        elif kind == "silence":
            actions = self.conv.silence()
        elif kind == "dtmf":
            actions = self.conv.dtmf(payload)
        else:
            heard: Heard = payload
            ev = heard.speech
            metrics = TurnMetrics(end_of_speech_ms=ev.end_ms, asr_ms=heard.asr_ms)
            text = heard.transcript.text.strip()
            barged = self._barged_at is not None and self._barged_at >= ev.onset_ms
            if barged and self._resume_after_backchannel(ev, text):
                return
            self._barged_at = None
            self._interrupted = None
            if not text:
                return  # noise the recognizer found no words in: not a turn
            self._transcribe("debtor", text, ev.onset_ms, ev.end_ms)
            started = time.perf_counter()
            actions = self.conv.hear(text)
            metrics.dialog_ms = (time.perf_counter() - started) * 1000
        if self.conv.state.verified and not self._verified_noted:
            self._verified_noted = True
            self.journal.note("right_party_verified", at_ms=self.t_ms)
        self._update_grammar()
        await self._execute(actions, metrics)

    async def _leave_voicemail(self) -> None:
        """The dialplan's limited-content message, whole (never cut), then hang up."""
        prompt_id = self.conv.ctx.plan.machine.voicemail
        if prompt_id is not None:
            parts = self.conv.ctx.renderer.render_parts(prompt_id)
            text = "".join(piece for piece, _ in parts)
            await self._speak([act.Say(text, prompt_id, interruptible=False, parts=parts)], 0, None)
        self._closing = act.Hangup()

    def _resume_after_backchannel(self, ev: SpeechEnded, text: str) -> bool:
        interrupted = self._interrupted
        if interrupted is None or ev.speech_ms > self.config.backchannel_max_ms:
            return False
        if not is_backchannel(text, self.lang):
            return False
        self._transcribe("debtor", text, ev.onset_ms, ev.end_ms)
        self._barged_at = None
        self._interrupted = None
        self._inputs.put_nowait(("resume", interrupted))
        return True

    async def _execute(self, actions: list[act.Action], metrics: TurnMetrics | None) -> None:
        says: list[act.Say] = []
        for action in actions:
            if isinstance(action, WRITES):
                # Write before speak: the commit completes before any later words are queued.
                await self._run_in(self.pools.io, self.sink.commit, self.call_id, action)
            if isinstance(action, act.Say):
                says.append(action)
            elif says:
                await self._speak(says, 0, metrics)
                says, metrics = [], None
            if isinstance(action, act.Hangup | act.Transfer):
                self._closing = action
        if says:
            await self._speak(says, 0, metrics)

    async def _speak(
        self, says: list[act.Say], from_clause: int, metrics: TurnMetrics | None
    ) -> None:
        gen = self._speaking_gen
        first = True
        clause_no = 0
        for say in says:
            clauses = self.voice.plan(say.text, say.parts)
            self._say_no += 1
            say_no = self._say_no
            skip = max(0, min(len(clauses), from_clause - clause_no))
            text = say.text if skip == 0 else "… " + " ".join(c.text for c in clauses[skip:])
            for i, clause in enumerate(clauses):
                clause_no += 1
                if clause_no <= from_clause:
                    continue
                started = time.perf_counter()
                pcm = await self._run_in(self.pools.tts, self.voice.render, clause)
                if gen != self._speaking_gen:
                    self._interrupted = _Interrupted(says, self._clause_of_cut(says, clause_no - 1))
                    return
                if first and metrics is not None:
                    metrics.tts_first_ms = (time.perf_counter() - started) * 1000
                    self._pending_turn = metrics
                    self.result.turns.append(metrics)
                first = False
                self._turn_open = False
                seg = Segment(say.prompt_id, i, say.interruptible, say_no, text)
                while not self.playout.push(pcm, seg):
                    await self._wait_drained()
                self._ahead_wake.set()
                self.playout.end_segment(seg)
        # Wait for the audio to play out, so a barge-in can still record where it cut.
        if self.playout.busy and gen == self._speaking_gen:
            await self._wait_drained()
        if gen != self._speaking_gen:
            self._interrupted = _Interrupted(says, self._clause_of_cut(says, clause_no))

    async def _wait_drained(self) -> None:
        """Until the playout queue is empty (played out, or flushed by a barge-in)."""
        self._drained.clear()
        if self.playout.busy:
            await self._drained.wait()

    def _clause_of_cut(self, says: list[act.Say], default: int) -> int:
        """Global clause index (across ``says``) of the clause that was playing when cut."""
        cut, self._cut = self._cut, None
        if cut is None:
            return default
        offset = 0
        for say in says:
            if say.prompt_id == cut.prompt_id:
                return offset + cut.clause
            offset += len(self.voice.clauses(say.text))
        return default

    def _transcribe(self, speaker: str, text: str, start_ms: int, end_ms: int | None) -> None:
        self.result.transcript.append(
            {"speaker": speaker, "text": text, "start_ms": start_ms, "end_ms": end_ms}
        )

    async def _close(self) -> bool:
        """Hang up or transfer; False when the transfer was refused (the call goes on)."""
        closing = self._closing
        if isinstance(closing, act.Transfer):
            await self._handoff(closing.target)
            if await self.transport.transfer(closing.target) is False:
                self._closing = None
                self._inputs.put_nowait(("no_agents", closing.target))
                return False
            self.result.ended_by = f"transfer:{closing.target}"
        else:
            self.result.ended_by = "agent"
            await self.transport.hangup()
        return True

    async def _handoff(self, target: str) -> None:
        """What the human who takes the call needs, committed before the transfer."""
        handoff = getattr(self.sink, "handoff", None)
        if handoff is None:
            return
        st = self.conv.state
        summary = {
            "target": target,
            "debtor": self.conv.ctx.account.name,
            "verified": st.verified,
            "dialog_state": st.state,
            "hardship": st.hardship,
            "outcome_so_far": self.conv.outcome(),
            "last_prompts": [say.prompt_id for say in st.last_says],
            "transcript": self.result.transcript[-30:],
        }
        try:
            await self._run_in(self.pools.io, handoff, self.call_id, summary)
        except Exception:  # the transfer must not fail because the summary could not be written
            log.exception("call %s: hand-off summary not written", self.call_id)

    async def _no_agents(self, target: str) -> None:
        """Nobody took the transfer: schedule a callback (committed first), say so, hang up."""
        fallback = self.conv.ctx.plan.transfer
        day = self.conv.ctx.today + timedelta(days=1)
        at = datetime.combine(day, dt_time.fromisoformat(fallback.callback_at))
        await self._run_in(self.pools.io, self.sink.commit, self.call_id, act.ScheduleCallback(at))
        self._callback_instead = at
        log.info("call %s: transfer to %s refused; callback scheduled", self.call_id, target)
        if fallback.no_agents is not None:
            r = self.conv.ctx.renderer
            parts = r.render_parts(fallback.no_agents, callback_when=r.when(at))
            text = "".join(piece for piece, _ in parts)
            say = act.Say(text, fallback.no_agents, interruptible=False, parts=parts)
            await self._speak([say], 0, None)
        self._closing = act.Hangup()

    async def _flush_recording(self) -> None:
        if not self._record_buf or self._record is None:
            self._record_buf.clear()
            return
        left = b"".join(f[0] for f in self._record_buf)
        right = b"".join(f[1] for f in self._record_buf)
        self._record_buf.clear()
        try:
            await self._run_in(self.pools.io, self._record, left, right)
        except (OSError, ValueError) as exc:
            # The call goes on without its recording; said once a second at most, never per frame.
            self.result.recording_errors += 1
            log.error("call %s: recording write failed: %s", self.call_id, exc)
