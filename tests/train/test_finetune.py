"""Fine-tuning an imported Whisper-shaped model with our trainer (`asr train --init`): the
imported tokenizer and decoding conventions are kept, frozen layers stay fixed, a new CTC head
is trained from scratch, the loss falls, and the exported model round-trips and decodes."""

from pathlib import Path

import pytest
import torch

from tests.conftest import logged

pytest.importorskip("tokenizers", reason="WhisperTokenizer needs the tokenizers package")
import tests.model.test_importers as W  # tiny random Whisper checkpoints
from asr.config import Config, load_config
from asr.model.catalogue import import_model
from asr.model.recognizer import Recognizer
from asr.train.trainer import train
from tests.text.test_whisper_tokenizer import tiny_tokenizer_json

ROOT = Path(__file__).resolve().parents[2]
# a 2 s window (100 encoder frames) and room for a command's bytes as tokens
DIMS = {**W.DIMS, "n_mels": 80, "n_audio_ctx": 100, "n_text_ctx": 512}


@pytest.fixture(scope="module")
def whisper_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_whisper")
    mp = pytest.MonkeyPatch()
    mp.setattr(W, "DIMS", DIMS)
    try:
        src = W.write_openai(W.random_whisper(), root / "openai", tiny_tokenizer_json())
    finally:
        mp.undo()
    return import_model(src, root / "whisper.pt")


def finetune(whisper_file, corpus, exp, *overrides):
    cfg = load_config(Config, ROOT / "configs/finetune_whisper.yaml", [
        f"init={whisper_file}", f"data.train={corpus / 'train.jsonl'}", f"data.dev={corpus / 'dev.jsonl'}",
        "max_steps=25", "optim.lr=3e-3", "optim.warmup_steps=5", "data.max_frames_per_batch=4000",
        "checkpoint_every_steps=1000", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=1", "trainer.check_val_every_n_epoch=1000", *overrides])
    return train(cfg, exp)


@pytest.mark.slow
def test_finetune_frozen_encoder_learns_and_keeps_the_whisper_conventions(whisper_file, tiny_corpus, tmp_path):
    init = Recognizer.load(whisper_file)
    model_path = finetune(whisper_file, tiny_corpus, tmp_path / "exp")
    curve = logged(tmp_path / "exp")
    assert sum(curve[-3:]) / 3 < 0.8 * sum(curve[:3]) / 3  # it learned
    tuned = Recognizer.load(model_path)
    assert tuned.tokenizer.to_dict() == init.tokenizer.to_dict()  # Whisper's tokenizer, prompt and rules kept
    assert tuned.cfg.features == init.cfg.features and tuned.model.ctc_head is None
    before, after = init.model.state_dict(), tuned.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))  # frozen
    assert not torch.equal(before["decoder.blocks.0.mlp.0.weight"], after["decoder.blocks.0.mlp.0.weight"])


@pytest.mark.slow
def test_finetune_trains_a_new_ctc_head_and_decodes_with_it(whisper_file, tiny_corpus, tmp_path):
    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search

    model_path = finetune(whisper_file, tiny_corpus, tmp_path / "exp", "model.ctc=true", "optim.ctc_weight=0.3",
                          "freeze=[]")
    ctc = logged(tmp_path / "exp", "train/ctc_loss")
    assert len(ctc) > 10 and sum(ctc[-3:]) / 3 < sum(ctc[:3]) / 3
    rec = Recognizer.load(model_path)
    assert rec.model.ctc_head is not None
    search = Search(rec, DecodeOptions.from_config(rec.cfg, beam_size=2))  # joint CTC/attention decoding
    assert search.options.ctc_weight == pytest.approx(0.3)
    wav = torch.randn(1, 16000) * 0.1
    (nbest,) = search.decode(wav, torch.tensor([16000]))
    assert isinstance(nbest[0].text, str)
