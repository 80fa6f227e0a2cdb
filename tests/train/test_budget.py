"""A time budget (max_minutes): training stops when it is spent, the learning rate decays over it
(to its floor at the end), and a resumed run continues the clock instead of starting it again."""

from pathlib import Path

import torch

from asr.config import Config, load_config
from asr.storage import read_jsonl
from asr.train.optim import Clock, lr_lambda
from asr.train.trainer import train
from tests.conftest import logged

ROOT = Path(__file__).resolve().parents[2]
FAST = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "trainer.log_every_n_steps=1"]


def test_schedule_follows_the_clock_not_the_steps():
    cfg = load_config(Config, ROOT / "configs/tiny.yaml",
                      ["max_minutes=1", "max_steps=1000000", "optim.warmup_steps=10"])
    clock = Clock()
    factor = lr_lambda(cfg, clock)
    assert factor(0) == 0.1 and factor(9) == 1.0  # warmup counts steps
    assert factor(50) == 1.0  # no time spent: the decay has not begun, whatever the step
    clock.before = 30.0  # half the budget
    assert factor(50) == factor(999) == cfg.optim.min_lr_ratio + (1 - cfg.optim.min_lr_ratio) * 0.5
    clock.before = 90.0  # past the budget: the floor
    assert factor(50) == cfg.optim.min_lr_ratio
    steps = lr_lambda(load_config(Config, ROOT / "configs/tiny.yaml", ["max_steps=110", "optim.warmup_steps=10"]))
    assert steps(60) < 1.0 and steps(110) == cfg.optim.min_lr_ratio  # without a budget: over max_steps


def test_training_stops_when_the_budget_is_spent_and_resumes_its_clock(tiny_corpus, tmp_path):
    exp = tmp_path / "exp"
    overrides = [f"data.train={tiny_corpus / 'train.jsonl'}", f"data.dev={tiny_corpus / 'dev.jsonl'}",
                 "max_minutes=0.1", "max_steps=100000", "max_epochs=100000", "checkpoint_every_steps=1",
                 "optim.warmup_steps=5", "data.max_frames_per_batch=2000", *FAST]
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", overrides)
    train(cfg, exp)
    last = torch.load(exp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    steps = last["global_step"]
    assert 3 <= steps < 100000  # the budget stopped it, not the steps
    assert last["train_seconds"] > 3.0  # (saved just before the step that found the budget spent)
    # the rate after the last step: the budget is spent, so the cosine has reached (nearly) its floor
    assert last["lr_schedulers"][0]["_last_lr"][0] < 0.1 * cfg.optim.lr
    curve = logged(exp)
    assert sum(curve[-3:]) / 3 < sum(curve[:3]) / 3  # it learned something

    train(cfg, exp)  # the same budget again: already spent, so the resumed run stops at once
    runs = read_jsonl(exp / "runs.jsonl")
    assert len(runs) == 2 and runs[1]["from_step"] == steps and runs[1]["to_step"] - steps <= 1
    # the audio trained on (throughput tables read it): batches hold at most 2000 frames, 20 s
    assert 0 < runs[0]["audio_seconds"] <= steps * 20.0
    assert 6.0 <= runs[0]["train_seconds"] <= runs[0]["seconds"]  # the clock: the budget, validation not counted
    assert runs[1]["train_seconds"] >= runs[0]["train_seconds"]  # carried on by the resumed run
