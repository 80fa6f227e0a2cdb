"""End to end on a tiny synthesized corpus: the CLI trains, evaluates and transcribes; a model
overfits a handful of utterances until it transcribes them exactly; a killed run resumes."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import asr
from asr.cli import main
from asr.config import Config, load_config
from asr.data.manifest import read_manifest, write_manifest
from asr.model.recognizer import export
from asr.storage import read_jsonl
from asr.text.normalize import normalize
from asr.train.trainer import train
from tests.conftest import logged

ROOT = Path(__file__).resolve().parents[2]
FAST = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "trainer.log_every_n_steps=1"]


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
    curve = logged(exp)
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
    rows = read_jsonl(out / "test" / "utterances.jsonl")  # the same rows for programs, worst first
    errors = [r["errors"] for r in rows]
    assert len(rows) == n_test and errors == sorted(errors, reverse=True)
    assert sum(errors) == summary["substitutions"] + summary["deletions"] + summary["insertions"]
    assert "WER" in capsys.readouterr().out

    # an n-gram LM over the model's tokens, from the training transcripts, fused into beam search
    lm = tmp_path / "lm.arpa"
    assert main(["lm", "-m", str(model), str(tiny_corpus / "train.jsonl"), "-o", str(lm), "--order", "3"]) == 0
    assert "\\3-grams:" in lm.read_text()
    assert main(["evaluate", "-m", str(model), str(tiny_corpus / "test.jsonl"), "--out", str(tmp_path / "eval_lm"),
                 "--lm", str(lm), "--lm-weight", "0.3"]) == 0
    fused = json.loads((tmp_path / "eval_lm" / "test" / "summary.json").read_text())
    assert fused["decode"]["lm"] == str(lm) and fused["decode"]["lm_weight"] == 0.3
    assert fused["utterances"] == n_test

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


def overfit_config(manifest: Path, *overrides: str) -> Config:
    return load_config(Config, ROOT / "configs/tiny.yaml", [
        f"data.train={manifest}", f"data.dev={manifest}", "max_steps=250", "optim.warmup_steps=30",
        "optim.lr=3e-3", "optim.label_smoothing=0.0", "specaugment.freq_masks=0", "specaugment.time_masks=0",
        "model.d_model=96", "model.enc_layers=3", "model.dec_layers=2", "data.max_frames_per_batch=100000",
        "checkpoint_every_steps=1000", "trainer.check_val_every_n_epoch=100", "trainer.log_every_n_steps=5", *FAST,
        *overrides])


@pytest.mark.slow
def test_overfit_a_handful_of_utterances(tiny_corpus, tmp_path):
    entries = read_manifest(tiny_corpus / "train.jsonl")[:6]
    manifest = tmp_path / "six.jsonl"
    write_manifest(manifest, entries)
    model_path = train(overfit_config(manifest), tmp_path / "exp")
    curve = logged(tmp_path / "exp")
    assert curve[-1] < 0.3 * curve[0]
    model = asr.load_model(model_path)
    expected = [normalize(e["text"]) for e in entries]
    assert [r.text for r in model.transcribe([e["audio"] for e in entries])] == expected  # beam 5 + CTC
    assert [r.text for r in model.transcribe([e["audio"] for e in entries], beam_size=1, ctc_weight=0.0)] == expected


@pytest.mark.slow
def test_another_language_end_to_end(tmp_path, capsys):
    """A Spanish corpus (asr.synth.commands_es read by espeak's Spanish voices): its manifests say
    "es"; a model with tokenizer.language=es overfits six utterances and writes them back with their
    accents, reports Spanish, refuses English, and asr evaluate scores it with the multilingual normalizer."""
    from asr.synth.corpus import SynthConfig, build_corpus
    from asr.text.normalize import normalize_any

    build_corpus(load_config(SynthConfig, ROOT / "recipes/synth/conf/tiny.yaml", ["language=es"]), tmp_path / "c")
    entries = read_manifest(tmp_path / "c/train.jsonl")
    assert {e["language"] for e in entries} == {"es"}
    assert all(e["speaker"].startswith("espeak:es") for e in entries)
    accented = sorted(entries, key=lambda e: -sum(c in "áéíóúñü" for c in e["text"]))[:6]
    assert any(c in "áéíóúñü" for e in accented for c in e["text"])
    manifest = tmp_path / "six.jsonl"
    write_manifest(manifest, accented)
    model_path = train(overfit_config(manifest, "tokenizer.language=es"), tmp_path / "exp")
    curve = logged(tmp_path / "exp")
    assert curve[-1] < 0.3 * curve[0]
    model = asr.load_model(model_path)
    results = list(model.transcribe([e["audio"] for e in accented]))
    assert [r.text for r in results] == [normalize_any(e["text"]) for e in accented]  # accents kept
    assert {r.language for r in results} == {"es"}
    with pytest.raises(ValueError, match="transcribes es only"):
        list(asr.load_model(model_path, language="en").transcribe([accented[0]["audio"]]))
    capsys.readouterr()
    assert main(["evaluate", "-m", str(model_path), str(manifest), "--out", str(tmp_path / "eval")]) == 0
    summary = json.loads((tmp_path / "eval/six/summary.json").read_text())
    assert summary["wer"] == 0.0 and summary["by_language"]["es"]["wer"] == 0.0


def test_final_weights_are_validated_when_training_stops_mid_epoch(tiny_corpus, tmp_path):
    """max_steps falls mid-epoch, and no epoch-end validation happens before it: the final weights
    are validated anyway, and exported when they are the best (they are the only ones here)."""
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", [
        f"data.train={tiny_corpus / 'train.jsonl'}", f"data.dev={tiny_corpus / 'dev.jsonl'}", "max_steps=7",
        "data.max_frames_per_batch=1500", "trainer.check_val_every_n_epoch=1000", "checkpoint_every_steps=1000", *FAST])
    train(cfg, tmp_path / "exp")
    final = torch.load(tmp_path / "exp" / "checkpoints" / "final.ckpt", map_location="cpu", weights_only=False)
    assert final["global_step"] == 7
    assert len(logged(tmp_path / "exp", "val/wer")) == 1  # once, at the end
    exported = torch.load(tmp_path / "exp" / "model.pt", weights_only=True)["state_dict"]
    again = torch.load(export(tmp_path / "exp" / "checkpoints" / "final.ckpt", tmp_path / "again.pt"),
                       weights_only=True)["state_dict"]
    assert exported.keys() == again.keys() and all(torch.equal(exported[k], again[k]) for k in exported)


RESUME = ["max_steps=12", "checkpoint_every_steps=2", "data.max_frames_per_batch=1000",  # 8 batches an epoch
          "optim.accumulate_grad_batches=2", "data.num_workers=1", "model.dropout=0.1",  # 4 steps an epoch
          "augment.speed_factors=[0.9,1.0,1.1]", "augment.noise_prob=0.5", "augment.reverb_prob=0.3",
          "trainer.check_val_every_n_epoch=1", "trainer.enable_progress_bar=false",
          "trainer.enable_model_summary=false"]


def run_train(exp: Path, corpus: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, str(ROOT / "tests/e2e/run_train.py"), str(exp), f"data.train={corpus / 'train.jsonl'}",
            f"data.dev={corpus / 'dev.jsonl'}", *RESUME, *extra]
    return subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
def test_killed_training_resumes_exactly(tiny_corpus, tmp_path):
    """SIGKILL mid-step, resume from last.ckpt: the final weights equal an uninterrupted run's, bit for bit.

    The run has dropout, SpecAugment, speed/noise/reverb augmentation in a data worker, gradient
    accumulation, three epochs and a validation after each; one resume starts from a checkpoint in
    the middle of an epoch, the other from one taken on an epoch's last batch."""
    ref = tmp_path / "ref"
    done = run_train(ref, tiny_corpus, "--record", str(ref / "record"))
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((ref / "record" / "record-rank0.json").read_text())
    epochs = {}
    for b in record["batches"]:
        epochs.setdefault(b["epoch"], []).append(b["ids"])
    assert sorted(epochs) == [0, 1, 2] and len(record["val_wer"]) == 3  # epoch boundaries and validations
    assert epochs[1] != epochs[2]  # each epoch has its own batch order
    final = torch.load(ref / "checkpoints" / "last.ckpt", weights_only=False)
    assert final["global_step"] == 12 and len(record["batches"]) == 24  # 2 batches accumulated per step
    assert final["lr_schedulers"][0]["last_epoch"] == 12  # the lr schedule counts optimizer steps

    rng = random.Random()
    mid_epoch = rng.choice([2, 6, 10])  # 4 optimizer steps an epoch: these checkpoints fall inside one
    epoch_end = rng.choice([4, 8])
    for ckpt_step in (mid_epoch, epoch_end):
        kill_at = ckpt_step + rng.choice([0, 1])  # killed in step kill_at, before its weight update
        exp = tmp_path / f"killed-{kill_at}"
        killed = run_train(exp, tiny_corpus, "--kill-at-step", str(kill_at))
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        last = exp / "checkpoints" / "last.ckpt"
        saved = torch.load(last, weights_only=False)
        assert saved["global_step"] == ckpt_step
        assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"]  # the loader's position was saved
        assert not list(last.parent.glob("*.tmp"))  # no half-written checkpoint left behind

        resumed = run_train(exp, tiny_corpus)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert "Restoring states from the checkpoint" in resumed.stderr + resumed.stdout
        after = torch.load(last, weights_only=False)
        assert after["global_step"] == 12
        assert after["state_dict"].keys() == final["state_dict"].keys()
        # runs.jsonl: the killed run kept the step of its last checkpoint, the resumed one went on from it
        runs = read_jsonl(exp / "runs.jsonl")
        assert [(r["from_step"], r["to_step"]) for r in runs] == [(0, ckpt_step), (ckpt_step, 12)]
        assert all(r["seconds"] > 0 and r["hardware"] for r in runs)
        differ = [k for k in final["state_dict"] if not torch.equal(final["state_dict"][k], after["state_dict"][k])]
        assert not differ, f"killed at step {kill_at}: {len(differ)} tensors differ, e.g. {differ[:3]}"
        for a, b in zip(final["optimizer_states"][0]["state"].values(), after["optimizer_states"][0]["state"].values()):
            assert all(torch.equal(a[k], b[k]) for k in a), f"killed at step {kill_at}: optimizer state differs"


@pytest.mark.slow
def test_killed_training_resumes_exactly_with_encoder_options(tiny_corpus, tmp_path):
    """Conformer blocks and rotary positions through a kill and a resume: the same weights as a run
    that was never interrupted."""
    options = ["model.block=conformer", "model.enc_positions=rope", "model.dec_positions=rope",
               "model.conv_kernel=7", "max_steps=6"]
    ref = tmp_path / "ref"
    assert run_train(ref, tiny_corpus, *options).returncode == 0
    exp = tmp_path / "killed"
    assert run_train(exp, tiny_corpus, *options, "--kill-at-step", "4").returncode == -signal.SIGKILL
    resumed = run_train(exp, tiny_corpus, *options)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    want, got = (torch.load(e / "checkpoints" / "last.ckpt", weights_only=False) for e in (ref, exp))
    assert got["global_step"] == want["global_step"] == 6
    assert any(".conv.depthwise." in k for k in want["state_dict"])  # the options were on
    assert all(torch.equal(want["state_dict"][k], got["state_dict"][k]) for k in want["state_dict"])


@pytest.mark.slow
def test_ddp_two_cpu_processes(tiny_corpus, tmp_path):
    """Two ranks (gloo) through Lightning's DDP under torchrun: identical weights after every step's
    gradient averaging, disjoint batches from the sampler, validation WER summed over both ranks."""
    rec = tmp_path / "record"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            str(ROOT / "tests/e2e/run_train.py"), str(tmp_path / "exp"), f"data.train={tiny_corpus / 'train.jsonl'}",
            f"data.dev={tiny_corpus / 'dev.jsonl'}", "max_steps=6", "checkpoint_every_steps=3",
            "data.max_frames_per_batch=1000", "trainer.strategy=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
            "trainer.check_val_every_n_epoch=1", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "--record", str(rec), "--skew-val-counts"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads((rec / f"record-rank{r}.json").read_text()) for r in range(2)]
    weights = [torch.load(rec / f"weights-rank{r}.pt", weights_only=True) for r in range(2)]
    assert [r["world_size"] for r in records] == [2, 2] and [r["global_step"] for r in records] == [6, 6]

    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    for epoch in {b["epoch"] for b in records[0]["batches"]}:
        ids = [{i for b in r["batches"] if b["epoch"] == epoch for i in b["ids"]} for r in records]
        assert ids[0] and ids[1] and not ids[0] & ids[1], f"epoch {epoch}: ranks share utterances"

    # each validation: both ranks log the WER of the two ranks' counts together, not their own
    assert len(records[0]["val_wer"]) >= 1
    for v, (c0, c1) in enumerate(zip(records[0]["val_counts"], records[1]["val_counts"])):
        total = 100.0 * (c0[0] + c1[0]) / (c0[1] + c1[1])
        assert records[0]["val_wer"][v] == pytest.approx(total) == records[1]["val_wer"][v]
        assert 100.0 * c0[0] / c0[1] != pytest.approx(total)  # the ranks' own WERs differ from it
