"""Encoder time per Whisper window by rows per call: why `Recognizer.encode` takes at most
ENCODER_FRAMES (one 30 s window) per call on a CPU.

    nice python recipes/benchmarks/encoder_batch.py [--compute-types float32 int8] [--threads 2]

16 clips of data/real/dev.jsonl (every third), each padded to Whisper's 30 s window; the model's
encoder (`model.encode` on the features, without the chunking) called on 1, 2, 4 and 16 rows at a
time; best of 3 after a warm-up. Prints ms per window.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from asr.audio.read import load_audio
from asr.data.manifest import read_manifest
from asr.model import catalogue as models

ROOT = Path(__file__).resolve().parents[2]


def best_of(f, n: int = 3) -> float:
    f()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default=str(ROOT / "data/real/dev.jsonl"))
    ap.add_argument("--compute-types", nargs="+", default=["float32", "int8"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    wavs = [torch.from_numpy(load_audio(e["audio"])) for e in read_manifest(args.manifest)[::3][:16]]
    lens = torch.tensor([len(w) for w in wavs])
    batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    print("| compute type | rows per call | ms per window |\n|---|---:|---:|")
    for ct in args.compute_types:
        rec = models.load("whisper-tiny.en", "cpu", ct)
        with torch.no_grad():
            feats, flens = rec.features(batch, lens)
            for rows in (1, 2, 4, 16):
                s = best_of(
                    lambda: [rec.model.encode(feats[i : i + rows], flens[i : i + rows]) for i in range(0, 16, rows)]
                )
                print(f"| {ct} | {rows} | {1000 * s / 16:.0f} |", flush=True)


if __name__ == "__main__":
    main()
