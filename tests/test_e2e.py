"""End to end on a tiny synthesized corpus: the CLI trains, evaluates and transcribes; a model
overfits a handful of utterances until it transcribes them exactly; a killed run resumes."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asr.cli import main
from asr.config import Config, load_config
from asr.data import read_manifest, write_manifest
from asr.recognizer import Recognizer
from asr.text import normalize
from asr.train import train

ROOT = Path(__file__).resolve().parent.parent
FAST = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "trainer.log_every_n_steps=1"]


def losses(exp: Path) -> list[float]:
    with open(exp / "logs" / "metrics.csv") as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


@pytest.mark.slow
def test_cli_train_evaluate_transcribe(tiny_corpus, tmp_path, capsys):
    exp = tmp_path / "exp"
    rc = main(["train", "-c", str(ROOT / "configs/tiny.yaml"), "--exp", str(exp),
               f"data.train={tiny_corpus / 'train.jsonl'}", f"data.dev={tiny_corpus / 'dev.jsonl'}",
               "max_steps=60", *FAST])
    assert rc == 0
    model = exp / "model.pt"
    blob = torch.load(model, weights_only=True)  # plain file: no pickled classes
    assert set(blob) >= {"config", "tokenizer", "state_dict"}
    assert (exp / "config.yaml").exists() and (exp / "checkpoints" / "last.ckpt").exists()
    curve = losses(exp)
    assert sum(curve[-3:]) / 3 < sum(curve[:3]) / 3  # it learned something

    out = tmp_path / "eval"
    assert main(["evaluate", "-m", str(model), str(tiny_corpus / "test.jsonl"), "--out", str(out)]) == 0
    summary = json.loads((out / "test" / "summary.json").read_text())
    n_test = len(read_manifest(tiny_corpus / "test.jsonl"))
    assert summary["utterances"] == n_test and summary["reference_words"] > 0
    assert summary["wer"] == pytest.approx(100 * (summary["substitutions"] + summary["deletions"]
                                                  + summary["insertions"]) / summary["reference_words"])
    report = (out / "test" / "report.txt").read_text()
    assert report.count("REF:") == n_test
    assert "WER" in capsys.readouterr().out

    # a folder of good files plus broken ones: every good file transcribed, the broken ones named
    folder = tmp_path / "clips"
    folder.mkdir()
    for e in read_manifest(tiny_corpus / "test.jsonl")[:3]:
        shutil.copy(e["audio"], folder / Path(e["audio"]).name)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    (folder / "empty.wav").write_bytes(b"")
    jsonl = tmp_path / "out.jsonl"
    assert main(["transcribe", "-m", str(model), str(folder), "-f", "jsonl", "-o", str(jsonl)]) == 1
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) == 5
    errors = {Path(r["path"]).name: r["error"] for r in rows if r["error"]}
    assert set(errors) == {"broken.wav", "empty.wav"} and "empty" in errors["empty.wav"]
    assert all(isinstance(r["text"], str) for r in rows if not r["error"])


def overfit_config(manifest: Path) -> Config:
    return load_config(Config, ROOT / "configs/tiny.yaml", [
        f"data.train={manifest}", f"data.dev={manifest}", "max_steps=150", "optim.warmup_steps=30",
        "optim.lr=3e-3", "optim.label_smoothing=0.0", "specaugment.freq_masks=0", "specaugment.time_masks=0",
        "model.d_model=96", "model.enc_layers=3", "model.dec_layers=2", "data.max_frames_per_batch=100000",
        "checkpoint_every_steps=1000", "trainer.check_val_every_n_epoch=100", "trainer.log_every_n_steps=5", *FAST])


@pytest.mark.slow
def test_overfit_a_handful_of_utterances(tiny_corpus, tmp_path):
    entries = read_manifest(tiny_corpus / "train.jsonl")[:6]
    manifest = tmp_path / "six.jsonl"
    write_manifest(manifest, entries)
    model_path = train(overfit_config(manifest), tmp_path / "exp")
    curve = losses(tmp_path / "exp")
    assert curve[-1] < 0.3 * curve[0]
    rec = Recognizer.load(model_path)
    results = rec.transcribe([e["audio"] for e in entries])
    assert [r.text for r in results] == [normalize(e["text"]) for e in entries]


@pytest.mark.slow
def test_killed_training_resumes_from_last_checkpoint(tiny_corpus, tmp_path):
    exp = tmp_path / "exp"
    args = [sys.executable, "-m", "asr", "train", "-c", str(ROOT / "configs/tiny.yaml"), "--exp", str(exp),
            f"data.train={tiny_corpus / 'train.jsonl'}", f"data.dev={tiny_corpus / 'dev.jsonl'}",
            "max_steps=40", "checkpoint_every_steps=5", "trainer.check_val_every_n_epoch=10", *FAST]
    last = exp / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert last.exists(), "no checkpoint was written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(last, weights_only=False)["global_step"]
    assert 0 < killed_at < 40

    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Restoring states from the checkpoint" in done.stderr + done.stdout
    assert torch.load(last, weights_only=False)["global_step"] == 40
    assert (exp / "model.pt").exists()
