"""The GPU recipe on the CPU at a tiny size: pack a corpus as Opus, train for a fixed few seconds
through recipes/gpu/run.sh, and read back throughput, counted FLOPs and WER."""

import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf
import torch

from asr.data.manifest import read_manifest
from tests.conftest import logged

ROOT = Path(__file__).resolve().parents[2]


def test_pack_then_fixed_time_run_reports_throughput_flops_and_wer(tiny_corpus, tmp_path):
    pack = tmp_path / "pack"
    subprocess.run([sys.executable, str(ROOT / "recipes/gpu/pack.py"), str(tiny_corpus), str(pack),
                    "--splits", "train", "dev", "--no-wheels"], check=True, cwd=ROOT)
    originals, packed = read_manifest(tiny_corpus / "train.jsonl"), read_manifest(pack / "train.jsonl")
    assert [e["id"] for e in packed] == [e["id"] for e in originals]
    for e in packed[:5]:  # Opus files in the pack, as long as the originals
        assert Path(e["audio"]).parent == pack / "audio" / "train" and e["audio"].endswith(".opus")
        info = sf.info(e["audio"])
        assert info.format == "OGG" and info.samplerate == 16000 and abs(info.duration - e["duration"]) < 0.01

    exp, out = tmp_path / "exp", tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "recipes/gpu/run.sh"), "--minutes", "0.15", "--conf", "configs/tiny.yaml",
                           "--pack", str(pack), "--exp", str(exp), "--out", str(out), "--workers", "0",
                           "trainer.enable_model_summary=false", "trainer.log_every_n_steps=1",
                           "data.max_frames_per_batch=2000", "optim.warmup_steps=5"],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-3000:]
    curve = logged(exp)
    assert sum(curve[-3:]) / 3 < sum(curve[:3]) / 3  # it learned something in its seconds
    mfu = json.loads((out / "mfu.json").read_text())
    assert mfu["audio_seconds_per_second"] > 0 and mfu["steps"] > 3 and mfu["mfu"] is None  # no peak known on a CPU
    # counted FLOPs are at least the encoder's matrix products: 2 FLOPs per weight and frame forward, twice
    # that backward, at 25 encoder frames per second of audio
    state = torch.load(exp / "model.pt", weights_only=True)["state_dict"]
    enc = sum(v.numel() for k, v in state.items() if ".blocks." in k and k.startswith("model.encoder") and v.dim() == 2)
    assert mfu["gflops_per_audio_second"] * 1e9 > 6 * enc * 25
    assert "WER" in (out / "wer.txt").read_text()
    assert {p.name for p in out.iterdir()} >= {"train.log", "wer.txt", "mfu.json", "runs.jsonl", "config.yaml"}
