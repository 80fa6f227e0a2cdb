"""Throughput and model FLOPs utilization of a training run, from its folder.

    python recipes/gpu/mfu.py EXP [--batches 20] [--peak-tflops 989]

The run's runs.jsonl gives the audio it trained on and the seconds of training steps (validation
not counted). FLOPs per second of audio are counted, not estimated: one training step's
forward and backward pass (the losses as the trainer computes them) under torch's FlopCounterMode,
over `--batches` batches drawn from the training manifest by the trainer's own sampler (padding
included, as trained: the padded fraction is printed beside it). MFU is the achieved FLOP/s over the
device's peak: dense bf16 (recipes/benchmarks/train_speed.py's table: 989 TFLOP/s for an H100 or H200),
or `--peak-tflops`. Prints one
JSON object (and writes it to EXP/mfu.json).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from asr.config import Config, load_config, to_dict
from asr.data.dataset import DurationBatchSampler, SpeechDataset, collate
from asr.data.manifest import read_manifest
from asr.storage import read_jsonl
from asr.text.tokenizers import tokenizer_from_dict
from asr.train.trainer import ASRTask

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from train_speed import peak_flops  # noqa: E402 (the known GPUs' peaks, shared with the training benchmark)


def flops_per_audio_second(exp: Path, n_batches: int, device: torch.device) -> tuple[float, float]:
    """(training FLOPs per second of audio, padded fraction of the frames) over sampled batches."""
    cfg = load_config(Config, exp / "config.yaml")
    tokenizer = tokenizer_from_dict(json.loads((exp / "tokenizer.json").read_text()))
    task = ASRTask(to_dict(cfg), tokenizer.to_dict()).to(device)
    entries = read_manifest(cfg.data.train)
    sampler = DurationBatchSampler([e["duration"] for e in entries], cfg.data.max_frames_per_batch,
                                   cfg.data.max_batch_size, seed=cfg.seed)
    batches = random.Random(0).sample(list(sampler), min(n_batches, len(sampler)))
    data = SpeechDataset(entries, tokenizer, cfg.features.sample_rate)
    flops = seconds = padded = 0.0
    for indices in batches:
        batch = collate([data[i] for i in indices]).to(device)
        with FlopCounterMode(display=False) as counter:
            losses, _ = task.model_step(batch, augment=False)
            losses["loss"].backward()
        task.zero_grad(set_to_none=True)
        flops += counter.get_total_flops()
        seconds += float(batch.wav_lens.sum()) / cfg.features.sample_rate
        padded += 1 - float(batch.wav_lens.sum()) / batch.wav.numel()
    return flops / seconds, padded / len(batches)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("exp", type=Path)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--peak-tflops", type=float, help="the device's dense peak (default: known GPUs' bf16)")
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runs = read_jsonl(args.exp / "runs.jsonl")
    train_seconds = runs[-1]["train_seconds"]  # the training clock: validation not counted
    audio_per_second = sum(r.get("audio_seconds", 0.0) for r in runs) / train_seconds
    per_audio_second, padded = flops_per_audio_second(args.exp, args.batches, device)
    achieved = per_audio_second * audio_per_second
    peak = peak_flops(device, args.peak_tflops)
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "hardware": runs[-1]["hardware"], "steps": runs[-1]["to_step"], "train_seconds": round(train_seconds, 1),
              "audio_seconds_per_second": round(audio_per_second, 1),
              "gflops_per_audio_second": round(per_audio_second / 1e9, 2), "padded_fraction": round(padded, 3),
              "achieved_tflops": round(achieved / 1e12, 3), "peak_tflops": peak / 1e12 if peak else None,
              "mfu": round(achieved / peak, 4) if peak else None}
    (args.exp / "mfu.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
