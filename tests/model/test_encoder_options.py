"""Encoder options (rotary positions, Conformer blocks): each keeps the network's contracts (padding
changes nothing, cached decoding equals uncached, chunked frames settle for streaming), and RoPE is
relative."""

import pytest
import torch

from asr.config import ModelConfig
from asr.decode.options import DecodeOptions
from asr.decode.search import greedy_search
from asr.model.network import ASRModel, Rotary

N_FEATS, VOCAB = 40, 30
OPTIONS = {
    "rope": dict(enc_positions="rope", dec_positions="rope"),
    "conformer": dict(block="conformer"),
    "conformer+rope": dict(block="conformer", enc_positions="rope", dec_positions="rope"),
    "conformer streaming": dict(block="conformer", enc_positions="rope", dynamic_chunk=True),
}


def make_model(seed: int = 0, **options) -> ASRModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(d_model=32, n_heads=2, enc_layers=2, dec_layers=2, conv_channels=8, dropout=0.0,
                      conv_kernel=7, **options)
    model = ASRModel(cfg, N_FEATS, VOCAB).eval()
    with torch.no_grad():  # an untrained tied-embedding model emits end-of-sentence at once; make it rare
        model.decoder.token_embedding.weight[1] *= 0.01
    return model


def test_rope_scores_depend_only_on_distance():
    """q.k after rotation is the same for positions (m, n) and (m + s, n + s): relative positions."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 9, 16), torch.randn(1, 2, 9, 16)
    at0, at7 = Rotary.at(9, 16), Rotary.at(9, 16, offset=7)
    torch.testing.assert_close(at0(q) @ at0(k).transpose(-1, -2), at7(q) @ at7(k).transpose(-1, -2),
                               atol=1e-4, rtol=1e-4)
    # ... and rotation changes them: the scores do depend on the distance
    assert not torch.allclose(at0(q) @ at0(k).transpose(-1, -2), q @ k.transpose(-1, -2), atol=1e-2)
    torch.testing.assert_close(at7(q).norm(dim=-1), q.norm(dim=-1))  # a rotation keeps lengths


def test_rope_encoder_is_shift_invariant():
    """Without added positions, a block with RoPE sees only relative order: its output is the same
    whatever absolute position the rotation starts from."""
    model = make_model(**OPTIONS["rope"])
    x = torch.randn(1, 24, 32)
    rope0, rope5 = Rotary.at(24, 16), Rotary.at(24, 16, offset=5)
    block = model.encoder.blocks[0]
    torch.testing.assert_close(block(x, None, rope0), block(x, None, rope5), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_padding_and_batching_change_nothing(name):
    model = make_model(**OPTIONS[name])
    x1, x2 = torch.randn(1, 40, N_FEATS), torch.randn(1, 90, N_FEATS)
    batch = torch.randn(2, 90, N_FEATS) * 5  # padding is garbage, not zeros
    batch[0, :40], batch[1] = x1[0], x2[0]
    tokens = torch.randint(3, VOCAB, (2, 5))
    out, enc = model(batch, torch.tensor([40, 90]), tokens)
    single, enc1 = model(x1, torch.tensor([40]), tokens[:1])
    torch.testing.assert_close(out[:1], single, atol=1e-5, rtol=1e-5)
    n = int(enc1.lengths[0])
    torch.testing.assert_close(enc.ctc_logits[0, :n], enc1.ctc_logits[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_cached_decoding_equals_uncached(name):
    model = make_model(seed=3, **OPTIONS[name])
    feats, lens = torch.randn(3, 120, N_FEATS), torch.tensor([120, 80, 41])
    memory, mem_lens = model.encoder(feats, lens)
    tokens = torch.randint(3, VOCAB, (3, 9))
    whole = model.decoder(tokens, memory, mem_lens)
    cache = model.decoder.new_cache()
    steps = torch.cat([model.decoder(tokens[:, i:i + 1], memory, mem_lens, cache) for i in range(9)], 1)
    torch.testing.assert_close(steps, whole, atol=1e-5, rtol=1e-5)
    cached = greedy_search(model, memory, mem_lens, DecodeOptions(max_len_ratio=2.0, use_cache=True))
    uncached = greedy_search(model, memory, mem_lens, DecodeOptions(max_len_ratio=2.0, use_cache=False))
    assert cached == uncached and max(len(s) for s in cached) > 10


def test_streaming_conformer_frames_settle_and_full_context_ones_do_not():
    """With dynamic_chunk the convolution looks only back, so a chunk's frames are final once it has
    arrived; the full-context Conformer's kernel reaches into the next chunk."""
    for streaming in (True, False):
        model = make_model(block="conformer", enc_positions="rope", dynamic_chunk=streaming)
        feats = torch.randn(1, 200, N_FEATS)
        longer = torch.cat([feats, torch.randn(1, 80, N_FEATS)], 1)
        with torch.no_grad():
            short, full = (model.encode(f, torch.tensor([f.shape[1]]), chunk=4).memory for f in (feats, longer))
        settled = (short.shape[1] - 2) // 4 * 4
        assert settled >= 40
        assert torch.allclose(short[0, :settled], full[0, :settled], atol=1e-5) == streaming


def test_unknown_block_or_positions_is_a_clear_error():
    with pytest.raises(ValueError, match="model.block"):
        make_model(block="zipformer")
    with pytest.raises(ValueError, match="model.enc_positions"):
        make_model(enc_positions="alibi")
