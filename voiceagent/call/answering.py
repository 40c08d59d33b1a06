"""The first seconds of an answered outbound call: who answered, and what to do about it.

A call session feeds every inbound frame here until it says what to do: start the dialog (a
person, or nobody clear), leave the limited-content voicemail (a machine or a call screener,
once its beep or greeting is over), or hang up. The dialog never starts on a machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voiceagent.call.amd import AmdClassifier, AmdConfig, AmdDecision
from voiceagent.call.beep import VoicemailCue, VoicemailWait
from voiceagent.vad import WebRtcVad

Verdict = Literal["start", "voicemail", "hangup"]


@dataclass(frozen=True, slots=True)
class AnswerOutcome:
    """What the gate decided, with the figures kept on the call record."""

    verdict: Verdict
    decision: AmdDecision
    cue: VoicemailCue | None = None

    @property
    def result(self) -> str | None:
        """The call result when the dialog does not run (``None`` when it does)."""
        if self.verdict == "start":
            return None
        if self.decision.kind == "screening":
            return "screened"
        return "voicemail_left" if self.verdict == "voicemail" else "machine"

    def record(self) -> dict[str, object]:
        """JSON-ready figures for the call's timings."""
        d = self.decision
        out: dict[str, object] = {
            "kind": d.kind,
            "reason": d.reason,
            "at_ms": d.at_ms,
            "greeting_ms": d.greeting_ms,
            "words": d.words,
            "verdict": self.verdict,
        }
        if self.cue is not None:
            out["voicemail_cue"] = {"reason": self.cue.reason, "at_ms": self.cue.at_ms}
        return out


class AnswerGate:
    """Classifies the answer, then waits for the beep when a message is to be left.

    Args:
        language: ``es``, ``pt`` or ``en`` (screening and voicemail phrases).
        leave_message: The campaign/dialplan leaves a voicemail; otherwise machines hang up.
    """

    def __init__(self, language: str, leave_message: bool) -> None:
        self.leave_message = leave_message
        self._amd = AmdClassifier(WebRtcVad(2), AmdConfig(language=language), expect_text=True)
        self._wait: VoicemailWait | None = None
        self._decision: AmdDecision | None = None
        self.outcome: AnswerOutcome | None = None

    @property
    def pending(self) -> bool:
        """Still listening (frames should keep coming)."""
        return self.outcome is None

    def push(self, pcm16_8k: bytes, t_ms: int) -> AnswerOutcome | None:
        """Feed one inbound frame (``t_ms`` since the answer); returns the outcome once."""
        if self.outcome is not None:
            return None
        if self._wait is not None:
            cue = self._wait.push(pcm16_8k, t_ms)
            if cue is None:
                return None
            assert self._decision is not None
            verdict: Verdict = "hangup" if cue.reason == "timeout" else "voicemail"
            return self._settle(AnswerOutcome(verdict, self._decision, cue))
        decision = self._amd.push(pcm16_8k, t_ms)
        return self._decided(decision)

    def hear(self, text: str) -> AnswerOutcome | None:
        """What the recognizer heard of the greeting (screening and voicemail phrases)."""
        if self._decision is not None:
            return None
        return self._decided(self._amd.hear_text(text))

    def _decided(self, decision: AmdDecision | None) -> AnswerOutcome | None:
        if decision is None:
            return None
        self._decision = decision
        if decision.kind in ("human", "unknown", "silence"):
            return self._settle(AnswerOutcome("start", decision))
        if not self.leave_message:
            return self._settle(AnswerOutcome("hangup", decision))
        if decision.beep_end_ms is not None:
            cue = VoicemailCue("beep", decision.at_ms, decision.beep_end_ms)
            return self._settle(AnswerOutcome("voicemail", decision, cue))
        self._wait = VoicemailWait(WebRtcVad(2))
        return None

    def _settle(self, outcome: AnswerOutcome) -> AnswerOutcome:
        self.outcome = outcome
        return outcome
