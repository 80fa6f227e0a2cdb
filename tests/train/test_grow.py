"""Training on from a model into a deeper network (`init=... init_grow=true`): the model's blocks fill
the bottom of each stack and the added ones start as identities, so the deeper network computes
exactly what the model did; training then moves the added blocks."""

import dataclasses
from pathlib import Path

import pytest
import torch

from asr.config import Config, load_config
from asr.model.recognizer import Recognizer, export
from asr.text.tokenizers import CharTokenizer
from asr.train.trainer import fine_tuning_config, start_from, train
from tests.conftest import logged

ROOT = Path(__file__).resolve().parents[2]


def random_model(seed: int = 0) -> Recognizer:
    """A tiny model whose every weight is drawn (no zero projections it could hide behind)."""
    torch.manual_seed(seed)
    rec = Recognizer(load_config(Config, ROOT / "configs/tiny.yaml"), CharTokenizer(list(" abcdefgh'")))
    with torch.no_grad():
        for p in rec.model.parameters():
            p.normal_(0, 0.3)
    return rec.eval()


def deepened(init: Recognizer, enc_layers: int, dec_layers: int) -> Recognizer:
    model = dataclasses.replace(init.cfg.model, enc_layers=enc_layers, dec_layers=dec_layers)
    cfg = fine_tuning_config(dataclasses.replace(Config(), model=model, init_grow=True), init.cfg)
    torch.manual_seed(1)
    rec = Recognizer(cfg, init.tokenizer)
    start_from(rec, init)
    return rec.eval()


def test_a_deepened_model_computes_exactly_what_its_init_did():
    init = random_model()
    deep = deepened(init, enc_layers=4, dec_layers=3)
    assert (len(deep.model.encoder.blocks), len(deep.model.decoder.blocks)) == (4, 3)
    old, new = init.model.state_dict(), deep.model.state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old)  # the model's weights, all of them, in place
    assert "encoder.blocks.3.mlp.0.weight" in new and new["encoder.blocks.3.mlp.0.weight"].abs().sum() > 0
    torch.manual_seed(2)
    wav, lens = 0.1 * torch.randn(2, 16000), torch.tensor([16000, 11000])
    tokens = torch.randint(0, init.tokenizer.vocab_size, (2, 6))
    with torch.no_grad():
        a, b = init.encode(wav, lens), deep.encode(wav, lens)
        assert torch.equal(a.lengths, b.lengths) and torch.allclose(a.memory, b.memory, atol=1e-6)
        la, lb = init.model.decoder(tokens, a.memory, a.lengths), deep.model.decoder(tokens, b.memory, b.lengths)
    assert la.abs().max() > 1 and torch.allclose(la, lb, atol=1e-5)
    # without the zeroed projections the added blocks would change the output (the check can fail)
    with torch.no_grad():
        deep.model.encoder.blocks[3].mlp[-1].bias.normal_(0, 0.5)  # (not a constant: ln_post removes it)
        assert not torch.allclose(deep.encode(wav, lens).memory, a.memory, atol=1e-3)


def test_init_grow_refuses_a_shallower_network():
    init = random_model()
    with pytest.raises(ValueError, match="fewer than the init model's 2/1"):
        deepened(init, enc_layers=1, dec_layers=1)


def test_without_init_grow_the_network_is_the_models():
    init = random_model()
    model = dataclasses.replace(init.cfg.model, enc_layers=5)
    cfg = fine_tuning_config(dataclasses.replace(Config(), model=model), init.cfg)
    assert cfg.model.enc_layers == init.cfg.model.enc_layers == 2


@pytest.mark.slow
def test_training_on_into_a_deeper_network_starts_where_the_model_was_and_moves_the_added_blocks(tiny_corpus, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    overrides = [f"data.train={tiny_corpus / 'train.jsonl'}", f"data.dev={tiny_corpus / 'dev.jsonl'}",
                 "max_steps=8", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                 "trainer.log_every_n_steps=1"]
    train(load_config(Config, ROOT / "configs/tiny.yaml", overrides), first)
    # the run's last weights (its model.pt is its best dev step, which at 8 steps can be any of them)
    export(first / "checkpoints" / "last.ckpt", first / "last.pt")
    deeper = ["max_steps=6", f"init={first / 'last.pt'}", "init_grow=true", "model.enc_layers=3", "model.dec_layers=2"]
    train(load_config(Config, ROOT / "configs/tiny.yaml", [*overrides, *deeper]), second)
    rec = Recognizer.load(second / "model.pt")
    assert (rec.cfg.model.enc_layers, rec.cfg.model.dec_layers) == (3, 2)
    state = rec.model.state_dict()
    for out in ("encoder.blocks.2.mlp.3.weight", "encoder.blocks.2.attn.out.weight", "decoder.blocks.1.mlp.3.weight"):
        assert state[out].abs().max() > 0, out  # started at zero; gradients reached it
    a, b = logged(first), logged(second)
    assert a[-1] < a[0] - 0.5, a  # the first run learned
    assert b[0] < a[0] - 0.5, (a, b)  # the deeper run began from its last weights, not from scratch
