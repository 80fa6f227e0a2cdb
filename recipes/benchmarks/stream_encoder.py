"""What a cached streaming encoder saves: the encoder's cost of one live update of an utterance that
has gone on for N seconds, encoded anew (the utterance so far, chunk mask) or through `EncoderStream`
(only what is new, the cached chunks' keys and values reused).

    python recipes/benchmarks/stream_encoder.py [--model exp/demo/stream_run/model.pt] [--sizes small base]

A model file is timed as it is; a size (`small`, `base`: configs/small.yaml, configs/base.yaml) is that
config untrained, with dynamic chunks and running normalization (timing needs no training). The audio
is speech-shaped noise; each row feeds it in `--update` second steps up to N seconds and reports the
mean time of the last five updates (features, encoder, CTC head: what a partial pays before its
search), on torch's threads (2 here).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]

SR = 16000


def recognizer(spec: str):
    from asr.config import Config, load_config
    from asr.model.recognizer import Recognizer
    from asr.text.tokenizers import CharTokenizer

    if Path(spec).is_file():
        return Recognizer.load(spec)
    cfg = load_config(Config, ROOT / f"configs/{spec}.yaml", ["model.dynamic_chunk=true", "features.normalize=running"])
    return Recognizer(cfg, CharTokenizer(list(" abcdefghijklmnopqrstuvwxyz'"))).eval()


def update_cost(rec, seconds: float, update: float, chunk: int, cached: bool) -> float:
    from asr.model.streaming import EncoderStream

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    stream, times = EncoderStream(rec, chunk), []
    for end in np.arange(update, seconds + 1e-9, update):
        samples = audio[: int(end * SR)]
        t = time.perf_counter()
        if cached:
            stream(samples)
        else:
            rec.encode(torch.from_numpy(samples)[None], torch.tensor([len(samples)]), chunk)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.mean(times[-5:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], help="model files (dynamic-chunk, causal features)")
    ap.add_argument("--sizes", nargs="*", default=["small", "base"])
    ap.add_argument("--seconds", nargs="+", type=float, default=[5, 10, 20])
    ap.add_argument("--update", type=float, default=0.5)
    ap.add_argument("--chunk", type=int, default=16)
    args = ap.parse_args()
    print(f"{torch.get_num_threads()} threads; an update every {args.update:g} s; chunks of {args.chunk} frames\n")
    print("| model | parameters | utterance so far s | encoded anew ms | cached ms | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for spec in [*args.model, *args.sizes]:
        rec = recognizer(spec)
        params = sum(p.numel() for p in rec.model.parameters()) / 1e6
        with torch.no_grad():
            for seconds in args.seconds:
                anew = update_cost(rec, seconds, args.update, args.chunk, cached=False)
                cached = update_cost(rec, seconds, args.update, args.chunk, cached=True)
                print(f"| {spec} | {params:.1f}M | {seconds:g} | {anew:.1f} | {cached:.1f} | {anew / cached:.1f}x |",
                      flush=True)


if __name__ == "__main__":
    main()
