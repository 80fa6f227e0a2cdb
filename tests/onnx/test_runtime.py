"""ONNX export (asr.onnx.export) and the torch-free runtime (asr.onnx.runtime, asr.onnx.search): the graphs
compute what the torch model computes, and the numpy search finds the hypotheses asr.decode finds."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from asr.cli import main
from asr.config import Config, load_config
from asr.decode.ctc import CTCPrefixScorer
from asr.decode.options import DecodeOptions
from asr.decode.task import Search
from asr.model.recognizer import Recognizer
from asr.text.tokenizers import BLANK, SOS_EOS, CharTokenizer
from tests.train.test_finetune import whisper_file  # noqa: F401  (a tiny random Whisper-shaped model file)

ROOT = Path(__file__).resolve().parents[2]
SR = 16000
LENS = [24000, 17000, 4000, 900]  # 900 samples: fewer than the conv front end's 7 frames, padded by asr.onnx.runtime


def make_recognizer(seed: int = 0, *overrides: str) -> Recognizer:
    """configs/tiny.yaml, untrained, nudged so that search has something to find: the end token and
    the CTC blank made rarer (an untrained model otherwise ends at once and CTC hears nothing)."""
    torch.manual_seed(seed)
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", ["model.dec_layers=2", *overrides])
    rec = Recognizer(cfg, CharTokenizer(list(" abcdefghijklmnopqrstuvwxyz'"))).eval()
    with torch.no_grad():
        rec.model.decoder.token_embedding.weight[SOS_EOS] *= 0.3
        rec.model.ctc_head.bias[BLANK] -= 2.0
    return rec


def waves(lens: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Syllable-rate modulated noise, zero-padded to a batch."""
    rng = np.random.default_rng(seed)
    wav = np.zeros((len(lens), max(lens)), dtype=np.float32)
    for i, n in enumerate(lens):
        t = np.arange(n) / SR
        wav[i, :n] = 0.3 * np.abs(np.sin(2 * np.pi * (2 + i) * t)) * rng.standard_normal(n)
    return wav, np.array(lens)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Recognizer, Path]:
    """The model through the command line: model file -> `asr export -m ... --onnx DIR --int8`."""
    tmp = tmp_path_factory.mktemp("onnx")
    rec = make_recognizer()
    rec.save(tmp / "model.pt")
    assert main(["export", "-m", str(tmp / "model.pt"), "--onnx", str(tmp / "onnx"), "--int8"]) == 0
    return Recognizer.load(tmp / "model.pt"), tmp / "onnx"


@pytest.fixture(scope="module")
def ort_model(exported):
    from asr.onnx.runtime import OrtModel

    return OrtModel.load(exported[1])


@pytest.fixture(scope="module")
def exported_options(tmp_path_factory) -> tuple[Recognizer, Path]:
    """The encoder options together: Conformer blocks, rotary positions in encoder and decoder, features
    normalized per utterance."""
    tmp = tmp_path_factory.mktemp("onnx_options")
    rec = make_recognizer(0, "model.block=conformer", "model.enc_positions=rope", "model.dec_positions=rope",
                          "features.normalize=utterance")
    rec.save(tmp / "model.pt")
    assert main(["export", "-m", str(tmp / "model.pt"), "--onnx", str(tmp / "onnx")]) == 0
    return Recognizer.load(tmp / "model.pt"), tmp / "onnx"


@pytest.fixture(scope="module")
def exported_running(tmp_path_factory) -> tuple[Recognizer, Path]:
    """A streaming model's features: normalized by running statistics (a cumulative sum in the graph)."""
    tmp = tmp_path_factory.mktemp("onnx_running")
    rec = make_recognizer(0, "model.dynamic_chunk=true", "features.normalize=running")
    rec.features.mean.fill_(-3.0), rec.features.std.fill_(2.0)  # statistics the graph must carry
    rec.save(tmp / "model.pt")
    assert main(["export", "-m", str(tmp / "model.pt"), "--onnx", str(tmp / "onnx")]) == 0
    return Recognizer.load(tmp / "model.pt"), tmp / "onnx"


@pytest.fixture(scope="module")
def exported_shortest(tmp_path_factory) -> tuple[Recognizer, Path]:
    """Short audio padded to a shortest window (features.min_seconds: 1.2 s, between LENS' lengths): the
    graph keeps no pad of its own, the runtime pads to it and the graph's lengths are the window's."""
    tmp = tmp_path_factory.mktemp("onnx_shortest")
    rec = make_recognizer(0, "features.min_seconds=1.2")
    rec.save(tmp / "model.pt")
    assert main(["export", "-m", str(tmp / "model.pt"), "--onnx", str(tmp / "onnx")]) == 0
    return Recognizer.load(tmp / "model.pt"), tmp / "onnx"


OTHER_GRAPHS = {"conformer+rope": "exported_options", "running": "exported_running", "shortest": "exported_shortest"}


@pytest.fixture(params=["transformer", *OTHER_GRAPHS])
def graphs(request):
    """(exported, ort_model) for the default network, the encoder options, running normalization and a
    shortest window."""
    from asr.onnx.runtime import OrtModel

    if request.param == "transformer":
        return request.getfixturevalue("exported"), request.getfixturevalue("ort_model")
    exported = request.getfixturevalue(OTHER_GRAPHS[request.param])
    return exported, OrtModel.load(exported[1])


@torch.no_grad()
def test_encoder_graph_matches_torch(graphs):
    (rec, _), ort_model = graphs
    wav, lens = waves(LENS[:3])  # not the traced batch size or lengths
    enc = ort_model.encode(wav, lens)
    ref = rec.encode(torch.from_numpy(wav), torch.from_numpy(lens))
    assert enc.lengths.tolist() == ref.lengths.tolist()
    np.testing.assert_allclose(enc.ctc_logits, ref.ctc_logits.numpy(), atol=1e-4)
    cross = [t for b in rec.model.decoder.blocks for t in b.cross_attn.project_kv(ref.memory)]
    for got, want in zip(enc.cross_kv, cross, strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4)
    memory = ort_model.encoder.run(["memory"], {"wav": wav, "wav_lens": lens})[0]
    np.testing.assert_allclose(memory, ref.memory.numpy(), atol=1e-4)
    one = ort_model.encode(wav[1:2, : LENS[1]], lens[1:2])  # a batch of one, unpadded
    ref = rec.encode(torch.from_numpy(wav[1:2, : LENS[1]]), torch.from_numpy(lens[1:2]))
    np.testing.assert_allclose(one.ctc_logits, ref.ctc_logits.numpy(), atol=1e-4)


@torch.no_grad()
def test_decoder_step_matches_torch_step_by_step(graphs):
    """Prompt first (empty cache), then one token at a time; 3 hypotheses per utterance share its cross k/v."""
    (rec, _), ort_model = graphs
    wav, lens = waves(LENS[:2])
    ref = rec.encode(torch.from_numpy(wav), torch.from_numpy(lens))
    enc = ort_model.encode(wav, lens)
    cache, K = rec.model.decoder.new_cache(), 3
    tokens = torch.full((2 * K, 1), SOS_EOS)
    self_kv = ort_model.empty_cache(2 * K)
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        want = rec.model.decoder(tokens, ref.memory, ref.lengths, cache)[:, -1]
        got, self_kv = ort_model.step(tokens.numpy(), enc.lengths, self_kv, enc.cross_kv)
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4)
        assert self_kv[0].shape[2] == cache.length
        tokens = torch.randint(3, rec.tokenizer.vocab_size, (2 * K, 1), generator=gen)


SEARCHES = {"greedy": {"beam_size": 1, "ctc_weight": 0.0},
            "greedy-unguarded": {"beam_size": 1, "ctc_weight": 0.0, "ctc_length_guard": False},  # to the length limit
            "beam": {"beam_size": 3, "ctc_weight": 0.3},
            "beam-no-ctc": {"beam_size": 4, "ctc_weight": 0.0, "length_penalty": 0.5},
            "n-best": {"beam_size": 3, "ctc_weight": 0.5, "n_best": 3},
            "patience": {"beam_size": 3, "ctc_weight": 0.3, "patience": 1.0}}


@pytest.mark.parametrize("name", SEARCHES)
def test_search_finds_the_torch_hypotheses(exported, ort_model, name):
    rec, _ = exported
    wav, lens = waves(LENS, seed=1)
    options = DecodeOptions.from_config(rec.cfg, **SEARCHES[name])
    options = dataclasses.replace(options, reversed_margin=None)  # a rule after the search, not applied on ORT
    want = Search(rec, options).decode(torch.from_numpy(wav), torch.from_numpy(lens))
    got = ort_model.decode(wav, lens, **SEARCHES[name])
    assert [[h.tokens for h in nb] for nb in got] == [[h.tokens for h in nb] for nb in want]
    assert all(nb[0].tokens for nb in want)  # the search had something to find
    for g, w in zip(got, want):
        assert [h.text for h in g] == [h.text for h in w]
        assert [h.score for h in g] == pytest.approx([h.score for h in w], abs=1e-3)
        assert g[0].ctc_logprob == pytest.approx(w[0].ctc_logprob, abs=1e-3)  # the CTC head's support, noted alike


def test_numpy_ctc_likelihood_matches_torch():
    from asr.onnx.search import ctc_log_likelihood

    gen = torch.Generator().manual_seed(0)
    logp = (torch.randn(12, 6, generator=gen) * 2).log_softmax(-1)
    for targets in ([2, 3, 3, 4], [5], [], [2, 2, 2, 2, 2, 2, 2]):  # repeats need blanks between; the last cannot fit
        want = -torch.nn.functional.ctc_loss(logp[:, None], torch.tensor([targets], dtype=torch.long),
                                             torch.tensor([12]), torch.tensor([len(targets)]), reduction="sum").item()
        got = ctc_log_likelihood(logp.double().numpy(), targets, BLANK)
        assert got == pytest.approx(want, abs=1e-4) if np.isfinite(want) else got == -np.inf


@torch.no_grad()
def test_whisper_shaped_models_run_on_onnx_runtime_with_their_guards(whisper_file, tmp_path):  # noqa: F811
    """A Whisper-shaped model (Whisper's front end, position table, tied output, no CTC head) fed
    only the audio there is: ORT finds the torch search's tokens, Whisper's P(no speech) and the
    no-speech verdicts (the reversal check, which decodes again, is the one guard left out)."""
    from asr.onnx.runtime import OrtModel

    rec = Recognizer.load(whisper_file)
    rec.cfg.features.pad_to_seconds = 0.0  # any length (a model trained with any_length: true)
    # the loop guard decodes again on torch and only trims here: off, so the texts judged are the same
    rec.cfg.decode = dataclasses.replace(rec.cfg.decode, timestamps=False, reversed_margin=None,
                                         compression_ratio_threshold=None, no_speech_threshold=0.0,
                                         logprob_threshold=-2.0)
    rec.save(tmp_path / "any.pt")
    assert main(["export", "-m", str(tmp_path / "any.pt"), "--onnx", str(tmp_path / "onnx")]) == 0
    wav, lens = waves([16000, 9000, 24000], seed=3)
    for beam in (1, 2):
        want = Search(rec, DecodeOptions.from_config(rec.cfg, beam_size=beam)).decode(torch.from_numpy(wav),
                                                                                      torch.from_numpy(lens))
        got = OrtModel.load(tmp_path / "onnx").decode(wav, lens, beam_size=beam)
        assert [nb[0].tokens for nb in got] == [nb[0].tokens for nb in want]
        assert [nb[0].no_speech_prob for nb in got] == pytest.approx([nb[0].no_speech_prob for nb in want], abs=1e-4)
        assert [nb[0].rejected for nb in got] == [nb[0].rejected for nb in want]
        assert all(nb[0].no_speech_prob is not None for nb in got)


def test_numpy_ctc_prefix_scores_match_torch():
    from asr.onnx.search import CTCPrefixScorer as NumpyCTC

    gen = torch.Generator().manual_seed(0)
    logits, lens = torch.randn(2, 9, 6, generator=gen) * 2, torch.tensor([9, 6])
    ref, ours = CTCPrefixScorer(logits, lens, eos=SOS_EOS), NumpyCTC(logits.numpy(), lens.numpy(), eos=SOS_EOS)
    s_ref, s_ours = ref.initial_state(2), ours.initial_state(2)
    cand = torch.tensor([[2, 3, SOS_EOS]] * 4)
    for tok in ([2, 3, 2, 4], [2, 2, 5, 3]):  # a repeat in the second step
        np.testing.assert_allclose(ours.score(s_ours, cand.numpy()), ref.score(s_ref, cand).numpy(), atol=1e-6)
        rows = torch.tensor([0, 0, 3, 2])
        s_ref = ref.advance(s_ref, rows, torch.tensor(tok))
        s_ours = ours.advance(s_ours, rows.numpy(), np.array(tok))


def test_runtime_path_never_imports_torch(exported, tmp_path):
    rec, folder = exported
    wav, lens = waves([20000, 12000], seed=2)
    for i, n in enumerate(lens):
        sf.write(tmp_path / f"{i}.wav", wav[i, :n], SR)
    sf.write(tmp_path / "8k.wav", wav[0, ::2], SR // 2)  # resampled by soxr
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    code = (
        "import sys; from asr.onnx.runtime import OrtModel; "
        "m = OrtModel.load(sys.argv[1], beam_size=1, ctc_weight=0.0); "
        "rs = m.transcribe(sys.argv[2:]); assert 'torch' not in sys.modules, 'torch was imported'; "
        "print('\\n'.join(repr(r.text) if r.error is None else 'ERROR' for r in rs))"
    )
    paths = [str(tmp_path / n) for n in ("0.wav", "1.wav", "8k.wav", "broken.wav")]
    out = subprocess.run([sys.executable, "-c", code, str(folder), *paths], capture_output=True, text=True, cwd=ROOT,
                         check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    want = Search(rec, DecodeOptions.from_config(rec.cfg, beam_size=1, ctc_weight=0.0)).decode(
        torch.from_numpy(wav), torch.from_numpy(lens))
    assert lines[:2] == [repr(nb[0].text) for nb in want]
    assert lines[3] == "ERROR"


def test_int8_graphs_load_and_decode(exported):
    from asr.onnx.runtime import OrtModel

    _rec, folder = exported
    assert (folder / "encoder.int8.onnx").stat().st_size < (folder / "encoder.onnx").stat().st_size
    model = OrtModel.load(folder, int8=True)
    wav, lens = waves(LENS, seed=1)
    hyps = model.decode(wav, lens, beam_size=2)
    assert len(hyps) == len(LENS) and all(len(nb) == 1 for nb in hyps)
    fp32 = OrtModel.load(folder).encode(wav, lens)
    enc = model.encode(wav, lens)
    assert enc.lengths.tolist() == fp32.lengths.tolist()
    assert np.corrcoef(enc.ctc_logits.ravel(), fp32.ctc_logits.ravel())[0, 1] > 0.9  # quantized, the same function


def test_a_shortest_window_pads_short_audio_in_the_runtime_not_in_the_graph(exported_shortest):
    """The graph's shortest input is the window (model.json says so); a shorter clip, padded by the
    runtime, gets the encoder frames and output the torch model gives it."""
    from asr.onnx.runtime import OrtModel

    rec, folder = exported_shortest
    window = round(1.2 * SR)
    assert json.loads((folder / "model.json").read_text())["dims"]["min_samples"] == window
    ort_model, frames = OrtModel.load(folder), []
    for n in (4000, 17000, 30000):
        wav, lens = waves([n], seed=n)
        enc = ort_model.encode(wav, lens)
        with torch.no_grad():
            ref = rec.encode(torch.from_numpy(wav), torch.from_numpy(lens))
        assert enc.lengths.tolist() == ref.lengths.tolist()
        np.testing.assert_allclose(enc.ctc_logits, ref.ctc_logits.numpy(), atol=1e-4)
        frames.append(int(enc.lengths[0]))
    assert frames[0] == frames[1] < frames[2]  # the two shorter than the window are as long as it


def test_export_without_onnx_needs_checkpoint_and_output():
    with pytest.raises(SystemExit):
        main(["export", "only-one-argument.ckpt"])


def test_long_files_are_cut_at_pauses_without_torch(exported, tmp_path):
    """A file longer than max_segment: cut at its pauses (the energy detector) into segments no longer
    than that, one per burst of sound, the silence after the last skipped; torch never imported. A short
    file stays one segment, decoded whole."""
    _rec, folder = exported
    bursts, _ = waves([5 * SR] * 5, seed=3)
    gap = np.zeros(SR, np.float32)
    sf.write(tmp_path / "long.wav", np.concatenate([np.concatenate([b, gap]) for b in bursts]), SR)  # 30 s
    sf.write(tmp_path / "short.wav", bursts[0][: 2 * SR], SR)
    code = (
        "import sys, json; from asr.onnx.runtime import OrtModel; "
        "m = OrtModel.load(sys.argv[1], beam_size=1, ctc_weight=0.0); decode, seen = m.decode, []; "
        "m.decode = lambda wav, lens, **o: (seen.extend(lens.tolist()), decode(wav, lens, **o))[1]; "
        "rs = m.transcribe(sys.argv[2:], max_segment=8.0); assert 'torch' not in sys.modules, 'torch was imported'; "
        "print(json.dumps([seen, [r.duration for r in rs], [r.text for r in rs]]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(folder), str(tmp_path / "long.wav"),
                          str(tmp_path / "short.wav")], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    seen, durations, texts = json.loads(out.stdout)
    assert durations == pytest.approx([30.0, 2.0]) and all(isinstance(t, str) for t in texts)
    assert 2 * SR in seen  # the short file whole
    cut = sorted(n for n in seen if n != 2 * SR)
    assert len(cut) == 5 and all(4.5 * SR <= n <= 5.5 * SR for n in cut)  # each burst (with its pad), no more
