"""Model properties: shapes and masks over lengths, causality, padding invariance, cached decoding."""

import pytest
import torch

from asr.config import ModelConfig
from asr.decode.options import DecodeOptions
from asr.decode.search import greedy_search
from asr.model.masks import causal_mask, key_padding_mask, lengths_to_mask
from asr.model.network import ASRModel, Conv2dSubsampling

N_FEATS, VOCAB = 80, 30


def make_model(frontend: str = "conv2d", seed: int = 0) -> ASRModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        frontend=frontend, d_model=32, n_heads=2, enc_layers=2, dec_layers=2, conv_channels=8, dropout=0.0
    )
    return ASRModel(cfg, N_FEATS, VOCAB).eval()


def test_lengths_to_mask_matches_hand_written():
    lens = torch.tensor([3, 1, 4])
    expected = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(lengths_to_mask(lens), expected)
    assert key_padding_mask(lens, 4).shape == (3, 1, 1, 4)
    assert torch.equal(causal_mask(2, 4), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool))


@pytest.mark.parametrize("T", [7, 8, 9, 10, 33, 100, 101])
def test_conv_frontend_length_formula_matches_output(T):
    sub = Conv2dSubsampling(N_FEATS, 16, 4)
    x, lens = sub(torch.randn(1, T, N_FEATS), torch.tensor([T]))
    assert x.shape[1] == int(lens[0])


@pytest.mark.parametrize("frontend", ["conv2d", "stack"])
@pytest.mark.parametrize("lengths", [[7], [50, 7], [100, 64, 13], [3, 40]])
def test_shapes_over_lengths(frontend, lengths):
    model = make_model(frontend)
    B, T = len(lengths), max(lengths)
    feats = torch.randn(B, T, N_FEATS)
    tokens = torch.randint(3, VOCAB, (B, 5))
    logits, (_, mem_lens, ctc_logits) = model(feats, torch.tensor(lengths), tokens)
    assert logits.shape == (B, 5, VOCAB)
    assert ctc_logits.shape[0] == B and ctc_logits.shape[2] == VOCAB
    assert int(mem_lens.max()) <= ctc_logits.shape[1]
    assert (mem_lens >= 1).all()
    assert torch.isfinite(logits).all() and torch.isfinite(ctc_logits).all()


def test_decoder_is_causal():
    model = make_model()
    feats = torch.randn(1, 60, N_FEATS)
    tokens = torch.randint(3, VOCAB, (1, 8))
    changed = tokens.clone()
    changed[0, 5] = (tokens[0, 5] + 1 - 3) % (VOCAB - 3) + 3
    a, _ = model(feats, torch.tensor([60]), tokens)
    b, _ = model(feats, torch.tensor([60]), changed)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("frontend", ["conv2d", "stack"])
@pytest.mark.parametrize("T", [20, 37, 64])
def test_padding_frames_change_nothing(frontend, T):
    model = make_model(frontend)
    feats = torch.randn(1, T, N_FEATS)
    tokens = torch.randint(3, VOCAB, (1, 6))
    lens = torch.tensor([T])
    padded = torch.cat([feats, torch.randn(1, 29, N_FEATS) * 5], 1)  # garbage, not zeros
    a, (_, la, ca) = model(feats, lens, tokens)
    b, (_, lb, cb) = model(padded, lens, tokens)
    assert torch.equal(la, lb)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ca[:, : int(la)], cb[:, : int(la)], atol=1e-5, rtol=1e-5)


def test_batched_equals_single_utterance():
    model = make_model()
    x1, x2 = torch.randn(1, 40, N_FEATS), torch.randn(1, 90, N_FEATS)
    batch = torch.zeros(2, 90, N_FEATS)
    batch[0, :40], batch[1] = x1[0], x2[0]
    tokens = torch.randint(3, VOCAB, (2, 4))
    out, _ = model(batch, torch.tensor([40, 90]), tokens)
    single, _ = model(x1, torch.tensor([40]), tokens[:1])
    torch.testing.assert_close(out[:1], single, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("per_utterance_from", [1000, 1])  # cross-attention k/v as a batch, or per utterance
def test_cached_greedy_equals_uncached(per_utterance_from, monkeypatch):
    monkeypatch.setattr("asr.model.network.PER_UTTERANCE_FRAMES", per_utterance_from)
    model = make_model(seed=3)
    with torch.no_grad():  # an untrained tied-embedding model emits end-of-sentence at once; make it rare
        model.decoder.token_embedding.weight[1] *= 0.01
    feats = torch.randn(3, 200, N_FEATS)
    lens = torch.tensor([200, 80, 41])
    memory, mem_lens = model.encoder(feats, lens)
    cached = greedy_search(model, memory, mem_lens, DecodeOptions(max_len_ratio=3.0, use_cache=True))
    uncached = greedy_search(model, memory, mem_lens, DecodeOptions(max_len_ratio=3.0, use_cache=False))
    assert cached == uncached
    assert max(len(s) for s in cached) > 100  # long outputs compared


def test_greedy_batched_equals_one_at_a_time():
    model = make_model(seed=4)
    feats = torch.randn(2, 90, N_FEATS)
    lens = torch.tensor([90, 50])
    memory, mem_lens = model.encoder(feats, lens)
    batched = greedy_search(model, memory, mem_lens)
    for i in range(2):
        m, ml = model.encoder(feats[i : i + 1, : int(lens[i])], lens[i : i + 1])
        assert greedy_search(model, m, ml) == [batched[i]]


def test_greedy_respects_max_lens_and_zero_means_empty():
    model = make_model(seed=3)
    with torch.no_grad():
        model.decoder.token_embedding.weight[1] *= 0.01  # rarely stop by itself
    memory, mem_lens = model.encoder(torch.randn(2, 200, N_FEATS), torch.tensor([200, 200]))
    out = greedy_search(model, memory, mem_lens, DecodeOptions(max_len_ratio=3.0), max_lens=torch.tensor([5, 0]))
    assert len(out[0]) <= 5 and out[1] == []


def test_recognizer_encodes_a_batch_in_parts_as_in_one_call(monkeypatch):
    """On a CPU the encoder takes a few rows at a time (its activations stay in cache): the output,
    lengths and CTC logits are those of one call over the whole batch."""
    import asr.model.recognizer
    from asr.config import Config
    from asr.model.recognizer import Recognizer
    from asr.text.tokenizers import CharTokenizer

    torch.manual_seed(0)
    cfg = Config(model=ModelConfig(d_model=32, n_heads=2, enc_layers=2, dec_layers=1, conv_channels=8, dropout=0.0))
    rec = Recognizer(cfg, CharTokenizer(list(" abc"))).eval()
    wav, lens = torch.randn(5, 16000) * 0.1, torch.tensor([16000, 9000, 12000, 4000, 16000])
    whole = rec.encode(wav, lens)
    calls = []
    monkeypatch.setattr(asr.model.recognizer, "ENCODER_FRAMES", 250)  # 101 frames a row: 2 rows a call
    monkeypatch.setattr(rec.model, "encode", lambda *a, f=rec.model.encode: calls.append(a[0].shape[0]) or f(*a))
    parts = rec.encode(wav, lens)
    assert calls == [2, 2, 1]
    torch.testing.assert_close(parts.memory, whole.memory, atol=1e-5, rtol=1e-5)
    assert parts.lengths.tolist() == whole.lengths.tolist()
    torch.testing.assert_close(parts.ctc_logits, whole.ctc_logits, atol=1e-5, rtol=1e-5)


def test_chunk_mask_sees_to_the_end_of_its_chunk():
    from asr.model.masks import chunk_mask

    m = chunk_mask(5, 2)
    assert m.tolist() == [[True, True, False, False, False], [True, True, False, False, False],
                          [True, True, True, True, False], [True, True, True, True, False], [True] * 5]


def test_chunked_encoder_frames_do_not_change_as_audio_arrives():
    """With chunked attention a frame's output is final once its chunk has arrived (what streaming
    needs); with full context, frames change when more audio comes."""
    torch.manual_seed(0)
    model = ASRModel(ModelConfig(d_model=32, n_heads=2, enc_layers=2, dec_layers=1, conv_channels=8), 20, 12).eval()
    feats = torch.randn(1, 200, 20)
    longer = torch.cat([feats, torch.randn(1, 80, 20)], 1)
    with torch.no_grad():
        short, full = (model.encode(f, torch.tensor([f.shape[1]]), chunk=4).memory for f in (feats, longer))
        settled = (short.shape[1] - 2) // 4 * 4  # chunks clear of the front end's last frames
        assert settled >= 40 and torch.allclose(short[0, :settled], full[0, :settled], atol=1e-5)
        short, full = (model.encode(f, torch.tensor([f.shape[1]])).memory for f in (feats, longer))
        assert not torch.allclose(short[0, :settled], full[0, :settled], atol=1e-3)
