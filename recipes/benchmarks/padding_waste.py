"""Padding waste: padded frames / all frames of the batches, for DurationBatchSampler and for a
random fixed-size batcher making the same number of batches from the same manifest.

    .venv/bin/python recipes/benchmarks/padding_waste.py [MANIFEST ...] [--max-frames 20000] [--epochs 3]

Defaults to data/synth/commands/train.jsonl and data/synth/prose/train.jsonl where they exist.
Frames are 10 ms feature frames from the manifests' durations; no audio is read.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from asr.config import DataConfig
from asr.data.dataset import FRAMES_PER_SECOND, DurationBatchSampler
from asr.data.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]

DEFAULTS = [ROOT / "data/synth/commands/train.jsonl", ROOT / "data/synth/prose/train.jsonl"]


def waste(batches: list[list[int]], frames: list[int]) -> float:
    padded = sum(max(frames[i] for i in b) * len(b) for b in batches)
    return 1 - sum(frames[i] for b in batches for i in b) / padded


def random_batches(n: int, batch_size: float, rng: random.Random) -> list[list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    count = max(1, round(n / batch_size))
    return [order[k * n // count : (k + 1) * n // count] for k in range(count)]  # sizes differ by at most 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifests", nargs="*", type=Path)
    ap.add_argument("--max-frames", type=int, default=DataConfig.max_frames_per_batch)
    ap.add_argument("--max-batch-size", type=int, default=DataConfig.max_batch_size)
    ap.add_argument("--epochs", type=int, default=3, help="averaged over this many epochs (reshuffles)")
    args = ap.parse_args()
    manifests = args.manifests or [p for p in DEFAULTS if p.exists()]
    if not manifests:
        sys.exit("no manifest given and none of the defaults exist: " + ", ".join(map(str, DEFAULTS)))

    print(
        "| manifest | utterances | batches/epoch | mean batch | DurationBatchSampler waste | random fixed-size waste |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for path in manifests:
        durations = [e["duration"] for e in read_manifest(path)]
        frames = [max(1, round(d * FRAMES_PER_SECOND)) for d in durations]
        sampler = DurationBatchSampler(durations, args.max_frames, args.max_batch_size, shuffle=True, seed=0)
        ours, theirs, n_batches = [], [], []
        for epoch in range(1, args.epochs + 1):  # epoch 0 would be the SortaGrad (sorted) order: same batches
            sampler.set_epoch(epoch)
            batches = sampler.batches()
            n_batches.append(len(batches))
            ours.append(waste(batches, frames))
            theirs.append(waste(random_batches(len(frames), len(frames) / len(batches), random.Random(epoch)), frames))
        nb = sum(n_batches) / len(n_batches)
        print(f"| {path} | {len(frames)} | {nb:.0f} | {len(frames) / nb:.1f} | {100 * sum(ours) / len(ours):.1f}% "
              f"| {100 * sum(theirs) / len(theirs):.1f}% |")


if __name__ == "__main__":
    main()
