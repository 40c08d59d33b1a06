"""Outbound answer handling: person, answering machine, call screening or dead air.

``AmdClassifier`` is Asterisk's ``AMD()`` (apps/app_amd.c) rebuilt on our per-frame VAD, with the
human-first thresholds of the research (``../shared/research/integration-amd-pacing.md`` 2.7):
a short greeting followed by a pause for us is a person; a long greeting (many words, or more
than 2.5 s of voice) is a machine; nobody speaking is silence; a screening prompt is recognised
from the recognizer's text. ``VoicemailWait`` then waits for the beep (``beep.py``) or for the
greeting to end before the limited-content voicemail message is played.

Both are pure logic fed one 20 ms frame at a time with its time since the answer; nothing here
reads a clock, logs per frame or does I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from voiceagent.audio.format import BYTES_PER_FRAME, FRAME_MS
from voiceagent.call.beep import BeepConfig, BeepDetector, SpeechGate
from voiceagent.vad import Vad

AmdKind = Literal["human", "machine", "screening", "silence", "unknown"]

SCREENING_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "screening service",
        "person you're calling",
        "person you are calling",
        "call assist",
        "recording this call",
        "state your name",
        "say your name",
        "name and reason",
        "name and the reason",
        "reason for calling",
        "why you're calling",
        "why you are calling",
        "what you're calling about",
        "what you are calling about",
        "see if this person is available",
    ),
    # No es/pt recordings of real screeners are public (research 2.5): these are the
    # translations the phones are likely to use; replace them with recorded wording.
    "es": (
        "servicio de filtrado",
        "filtro de llamadas",
        "asistente de llamadas",
        "esta grabando esta llamada",
        "diga su nombre",
        "indique su nombre",
        "su nombre y el motivo",
        "motivo de su llamada",
        "motivo de la llamada",
        "por que llama",
        "la persona a la que llama",
    ),
    "pt": (
        "servico de triagem",
        "triagem de chamadas",
        "assistente de chamadas",
        "gravando esta chamada",
        "diga seu nome",
        "informe seu nome",
        "seu nome e o motivo",
        "motivo da ligacao",
        "motivo da chamada",
        "por que esta ligando",
        "a pessoa para quem voce ligou",
    ),
}
"""Words of carrier and handset screeners (Google Call Screen / Call Assist, iOS 26)."""

VOICEMAIL_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "leave a message",
        "leave your message",
        "after the tone",
        "after the beep",
        "voicemail",
        "voice mail",
        "mailbox",
        "can't take your call",
        "cannot take your call",
        "unable to take your call",
    ),
    "es": (
        "deje su mensaje",
        "deje un mensaje",
        "despues del tono",
        "despues de la senal",
        "buzon de voz",
        "buzon",
        "no puedo atender",
        "grabe su mensaje",
    ),
    "pt": (
        "caixa postal",
        "apos o sinal",
        "apos o bip",
        "deixe sua mensagem",
        "deixe seu recado",
        "deixe uma mensagem",
        "nao posso atender",
        "grave sua mensagem",
    ),
}
"""Voicemail greeting keywords (research 2.7 stage 4), per language."""


@dataclass(frozen=True, slots=True)
class AmdConfig:
    """Thresholds in milliseconds: Asterisk ``AMD()`` defaults adapted for humans first.

    Asterisk's greeting (1500 ms) and word limit (3rd word) send "Aló, ¿quién habla?" to the
    machine path; here the greeting limit is 2.5 s of voice (LiveKit), the word limit 6
    (SignalWire) and the after-greeting pause 700 ms (between Asterisk's 800 and the 600 the
    research proposes for a 1.0 s p95 human decision).
    """

    initial_silence_ms: int = 2500
    """No word this long after the answer -> ``silence`` (Asterisk initial_silence)."""
    greeting_ms: int = 2500
    """Voice after the first word reaching this -> ``machine`` LONGGREETING."""
    after_greeting_silence_ms: int = 700
    """Silence after a shorter greeting -> ``human``."""
    total_analysis_ms: int = 4000
    """Still undecided here -> ``unknown`` (treat as a person, keep a machine watch)."""
    min_word_ms: int = 100
    """A voice run this long counts as a word."""
    between_words_ms: int = 50
    """Silence this long ends a word."""
    max_words: int = 6
    """The greeting reaching this many words -> ``machine`` MAXWORDS."""
    max_word_ms: int = 5000
    """One voice run this long -> ``machine`` MAXWORDLENGTH."""
    text_wait_ms: int = 1200
    """With ``expect_text``, a machine verdict waits for screening words until the greeting
    pauses this long (the recognizer's final text is in by then) ..."""
    text_max_wait_ms: int = 6000
    """... or at most this long."""
    min_level: float = 200.0
    """RMS (PCM16) below which a frame is silence whatever the VAD says."""
    noise_factor: float = 2.5
    """A speech frame must be this many times louder than the line's noise floor."""
    noise_window_ms: int = 2000
    """The noise floor is the quietest frame in this window."""
    language: str = "es"
    """``es``, ``pt`` or ``en``: which phrase lists ``hear_text`` matches."""


@dataclass(frozen=True, slots=True)
class AmdDecision:
    """The verdict, with the figures that led to it (for the call record and the evidence pack)."""

    kind: AmdKind
    reason: str
    """Asterisk-style cause, e.g. ``HUMAN-700-700``, ``LONGGREETING-2500-2500``."""
    at_ms: int
    """When it was decided (ms since the answer)."""
    greeting_ms: int
    """Voice heard since the first word."""
    words: int
    silence_ms: int
    """Silence that ended the analysis (initial silence, or the pause after the greeting)."""
    first_word_ms: int | None = None
    beep_end_ms: int | None = None
    """A beep already heard during the analysis: the voicemail can start at once."""
    phrase: str | None = None
    """The screening or voicemail phrase the recognizer's text matched."""


def normalize(text: str) -> str:
    """Lower case, accents and punctuation removed, apostrophes kept inside words."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " " + " ".join(re.sub(r"[^a-z0-9' ]+", " ", plain).split()) + " "


def match_phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    """The first of ``phrases`` found as whole words in ``text`` (both normalized), or None."""
    haystack = normalize(text)
    for phrase in phrases:
        if normalize(phrase) in haystack:
            return phrase
    return None


class AmdClassifier:
    """Classifies an answered call from its first seconds; feed every frame from the answer on.

    Args:
        vad: Per-frame speech flag (``WebRtcVad`` in production).
        config: Thresholds.
        expect_text: The session will call ``hear_text`` with the recognizer's partial text,
            so a machine verdict waits for screening words (``text_wait_ms``).
        beep: Beep thresholds (a beep during the analysis means a machine).
    """

    def __init__(
        self,
        vad: Vad,
        config: AmdConfig | None = None,
        expect_text: bool = False,
        beep: BeepConfig | None = None,
    ) -> None:
        self.config = config or AmdConfig()
        self.expect_text = expect_text
        c = self.config
        self._gate = SpeechGate(vad, c.min_level, c.noise_factor, c.noise_window_ms)
        self._beep = BeepDetector(beep)
        self._screening = SCREENING_PHRASES.get(self.config.language, ())
        self._voicemail = VOICEMAIL_PHRASES.get(self.config.language, ())
        self.decision: AmdDecision | None = None
        self._now = 0
        self._words = 0
        self._first_word_ms: int | None = None
        self._voice_run = 0
        self._silence_run = 0
        self._in_word = False
        self._greeting = 0
        self._candidate: AmdDecision | None = None

    def push(self, pcm16_8k: bytes, t_ms: int) -> AmdDecision | None:
        """Feed the frame starting at ``t_ms`` (ms since the answer); returns the verdict once.

        Args:
            pcm16_8k: One 20 ms PCM16 8 kHz frame.
            t_ms: Start of the frame.

        Returns:
            The decision on the frame that settles it, else None (also after it was given).
        """
        if len(pcm16_8k) != BYTES_PER_FRAME:
            raise ValueError(f"a frame is {BYTES_PER_FRAME} bytes")
        if self.decision is not None:
            return None
        self._now = end = t_ms + FRAME_MS
        beep_end = self._beep.push(pcm16_8k, t_ms)
        if beep_end is not None:
            return self._decide("machine", "BEEP", beep_end_ms=beep_end)
        self._count(self._gate.is_speech(pcm16_8k), t_ms)
        c = self.config
        if self._candidate is not None:
            paused = self._silence_run >= c.text_wait_ms
            if paused or end - self._candidate.at_ms >= c.text_max_wait_ms:
                return self._settle(self._candidate)
            return None
        if self._words == 0:
            if end >= c.initial_silence_ms:
                return self._decide("silence", f"INITIALSILENCE-{end}-{c.initial_silence_ms}")
        elif self._greeting >= c.greeting_ms:
            return self._machine(f"LONGGREETING-{self._greeting}-{c.greeting_ms}")
        elif self._words >= c.max_words:
            return self._machine(f"MAXWORDS-{self._words}-{c.max_words}")
        elif self._voice_run >= c.max_word_ms:
            return self._machine(f"MAXWORDLENGTH-{self._voice_run}-{c.max_word_ms}")
        elif self._silence_run >= c.after_greeting_silence_ms:
            return self._decide("human", f"HUMAN-{self._silence_run}-{c.after_greeting_silence_ms}")
        if end >= c.total_analysis_ms:
            return self._decide("unknown", f"TOOLONG-{end}")
        return None

    def hear_text(self, text: str) -> AmdDecision | None:
        """Give the recognizer's (partial) text of the greeting; may settle the verdict.

        Screening words make it ``screening``; voicemail words make it ``machine`` (once the
        callee has said at least one word, so a stale transcript cannot decide alone).

        Args:
            text: Everything recognized since the answer.

        Returns:
            The decision when this text settles it, else None.
        """
        if self.decision is not None:
            return None
        phrase = match_phrase(text, self._screening)
        if phrase is not None:
            return self._decide("screening", f"SCREENING-{phrase}", phrase=phrase)
        phrase = match_phrase(text, self._voicemail)
        if phrase is not None and self._words > 0:
            return self._decide("machine", f"KEYWORD-{phrase}", phrase=phrase)
        return None

    def _count(self, speech: bool, t_ms: int) -> None:
        """Asterisk's word counter: voice runs of min_word_ms split by between_words_ms."""
        c = self.config
        if speech:
            self._silence_run = 0
            self._voice_run += FRAME_MS
            if self._words > 0:
                self._greeting += FRAME_MS
            if not self._in_word and self._voice_run >= c.min_word_ms:
                self._in_word = True
                if self._words == 0:
                    self._first_word_ms = t_ms + FRAME_MS - self._voice_run
                    self._greeting = self._voice_run
                self._words += 1
            return
        self._silence_run += FRAME_MS
        if self._silence_run >= c.between_words_ms:
            self._voice_run = 0
            self._in_word = False

    def _machine(self, reason: str) -> AmdDecision | None:
        if not self.expect_text:
            return self._decide("machine", reason)
        self._candidate = self._make("machine", reason)
        return None

    def _decide(
        self, kind: AmdKind, reason: str, beep_end_ms: int | None = None, phrase: str | None = None
    ) -> AmdDecision:
        return self._settle(self._make(kind, reason, beep_end_ms, phrase))

    def _settle(self, decision: AmdDecision) -> AmdDecision:
        self.decision = decision
        return decision

    def _make(
        self, kind: AmdKind, reason: str, beep_end_ms: int | None = None, phrase: str | None = None
    ) -> AmdDecision:
        silence = self._silence_run if self._words else self._now
        return AmdDecision(
            kind=kind,
            reason=reason,
            at_ms=self._now,
            greeting_ms=self._greeting,
            words=self._words,
            silence_ms=silence,
            first_word_ms=self._first_word_ms,
            beep_end_ms=beep_end_ms,
            phrase=phrase,
        )
