"""Checkpoint averaging: the exact mean of known weights, the right checkpoints chosen, and a
model averaged from a real (tiny) run that loads and transcribes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

import asr
from asr.cli import main
from asr.config import Config, load_config, to_dict
from asr.data.manifest import read_manifest
from asr.text.tokenizers import train_tokenizer
from asr.train.average import average, average_checkpoints, select_checkpoints
from asr.train.trainer import ASRTask, train

ROOT = Path(__file__).resolve().parents[2]
FAST = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "trainer.log_every_n_steps=1"]


def fake_checkpoint(path: Path, task_args: dict, seed: int, step: int, wer: float,
                    monitor: str = "val/wer") -> dict[str, torch.Tensor]:
    """A checkpoint shaped like Lightning's (what average reads), with weights drawn from `seed`."""
    torch.manual_seed(seed)
    task = ASRTask(**task_args)
    with torch.no_grad():
        for t in [*task.parameters(), *task.buffers()]:  # (shared modules appear under two names)
            t.normal_()
    state = {k: v.clone() for k, v in task.state_dict().items()}
    key = f"ModelCheckpoint{{'monitor': '{monitor}', 'mode': 'min', 'every_n_train_steps': 0}}"
    torch.save({"hyper_parameters": task_args, "state_dict": state, "global_step": step,
                "callbacks": {key: {"monitor": monitor, "current_score": torch.tensor(wer)}}}, path)
    return state


@pytest.fixture
def task_args() -> dict:
    cfg = load_config(Config, ROOT / "configs/tiny.yaml")
    return {"config": to_dict(cfg), "tokenizer": train_tokenizer("char", ["call mom", "what time is it"]).to_dict()}


def test_average_of_known_weights_is_their_exact_mean(tmp_path, task_args):
    ckpts = tmp_path / "exp" / "checkpoints"
    ckpts.mkdir(parents=True)
    a = fake_checkpoint(ckpts / "best-10.ckpt", task_args, seed=1, step=10, wer=40.0)
    b = fake_checkpoint(ckpts / "best-30.ckpt", task_args, seed=2, step=30, wer=20.0)
    fake_checkpoint(ckpts / "best-20.ckpt", task_args, seed=3, step=20, wer=55.0)  # the worst: left out
    chosen = select_checkpoints(tmp_path / "exp", 2, "best")
    assert [p.name for p, _ in chosen] == ["best-30.ckpt", "best-10.ckpt"]
    assert chosen[0][1] == "step 30, val/wer 20.00"

    out = average(tmp_path / "exp", tmp_path / "avg.pt", n=2, by="best")
    blob = torch.load(out, weights_only=True)
    state = blob["state_dict"]
    checked = 0
    for k, v in state.items():  # the exported keys are the recognizer's: task keys minus "recognizer."
        expected = ((a[f"recognizer.{k}"].double() + b[f"recognizer.{k}"].double()) / 2).float()
        assert torch.equal(v, expected), k
        checked += 1
    assert checked == len([k for k in a if k.startswith("recognizer.")]) and checked > 10
    assert not torch.equal(state["features.mean"], a["recognizer.features.mean"])


def test_integer_tensors_come_from_the_latest_and_mismatches_are_refused(tmp_path, task_args):
    paths = []
    for step, count in ((5, 3), (9, 7), (7, 1)):
        p = tmp_path / f"step-{step}.ckpt"
        torch.save({"hyper_parameters": task_args, "global_step": step,
                    "state_dict": {"w": torch.full((2,), float(step), dtype=torch.float16),
                                   "count": torch.tensor([count])}}, p)
        paths.append(p)
    _, avg = average_checkpoints(paths)
    assert avg["w"].dtype == torch.float16 and torch.equal(avg["w"], torch.full((2,), 7.0, dtype=torch.float16))
    assert avg["count"].tolist() == [7]  # from step 9
    torch.save({"hyper_parameters": task_args, "global_step": 11, "state_dict": {"w": torch.zeros(3),
                                                                                   "count": torch.tensor([0])}},
               tmp_path / "odd.ckpt")
    with pytest.raises(ValueError, match="shape"):
        average_checkpoints([*paths, tmp_path / "odd.ckpt"])
    with pytest.raises(FileNotFoundError, match="step-"):
        select_checkpoints(tmp_path / "nothing", 3, "last")


def val_wer_by_step(exp: Path) -> dict[int, float]:
    with open(exp / "logs" / "metrics.csv") as f:
        return {int(r["step"]): float(r["val/wer"]) for r in csv.DictReader(f) if r.get("val/wer")}


@pytest.mark.slow
def test_average_a_real_run_loads_and_transcribes(tiny_corpus, tmp_path, capsys):
    exp = tmp_path / "exp"
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", [
        f"data.train={tiny_corpus / 'train.jsonl'}", f"data.dev={tiny_corpus / 'dev.jsonl'}", "max_steps=30",
        "checkpoint_every_steps=10", "keep_best=3", "keep_last=2", "trainer.check_val_every_n_epoch=2", *FAST])
    train(cfg, exp)
    ckpts = exp / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step-*.ckpt")) == ["step-20.ckpt", "step-30.ckpt"]
    wers = val_wer_by_step(exp)
    assert len(wers) > 3  # more validations than checkpoints kept
    chosen = select_checkpoints(exp, 3, "best")
    assert len(chosen) == 3 and len(list(ckpts.glob("best-*.ckpt"))) == 3
    # the scores read from Lightning's checkpoints are the three lowest dev WERs of the log
    scores = sorted(float(note.rsplit(" ", 1)[1]) for _, note in chosen)
    assert scores == pytest.approx(sorted(wers.values())[:3], abs=0.01)

    for by, n in (("best", 3), ("last", 2)):
        assert main(["average", str(exp), "-n", str(n), "--by", by]) == 0
        path = exp / f"model_avg_{by}{n}.pt"
        results = list(
            asr.load_model(path).transcribe([e["audio"] for e in read_manifest(tiny_corpus / "test.jsonl")[:3]])
        )
        assert len(results) == 3 and all(r.error is None and isinstance(r.text, str) for r in results)
    assert "step-30.ckpt" in capsys.readouterr().out
    key = "model.encoder.frontend.proj.weight"
    averaged = torch.load(exp / "model_avg_last2.pt", weights_only=True)["state_dict"][key]
    w20, w30 = (torch.load(ckpts / f"step-{s}.ckpt", weights_only=False)["state_dict"]
                [f"recognizer.{key}"] for s in (20, 30))
    assert not torch.equal(w20, w30) and torch.equal(averaged, ((w20.double() + w30.double()) / 2).float())


def test_checkpoints_chosen_by_dev_loss_are_ranked_by_it(tmp_path, task_args):
    """select_by: val/loss (a CTC head on a frozen decoder): the best are the lowest losses, and say so."""
    ckpts = tmp_path / "exp" / "checkpoints"
    ckpts.mkdir(parents=True)
    for step, loss in ((10, 2.5), (20, 0.9), (30, 1.4)):
        fake_checkpoint(ckpts / f"best-{step}.ckpt", task_args, seed=step, step=step, wer=loss, monitor="val/loss")
    chosen = select_checkpoints(tmp_path / "exp", 2, "best")
    assert [note for _, note in chosen] == ["step 20, val/loss 0.90", "step 30, val/loss 1.40"]
