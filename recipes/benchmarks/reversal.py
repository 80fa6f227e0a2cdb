"""How the reversal check's margin was chosen: every clip of a manifest decoded greedily forwards and
played backwards; each clip is speech, and the same clip reversed stands for reversed speech.

    python recipes/benchmarks/reversal.py -m whisper-tiny.en data/real/dev.jsonl
    python recipes/benchmarks/reversal.py -m exp/synth/commands/model.pt data/synth/commands/test.jsonl --clips 150

For each margin (and checking only clips whose forward reading is below `--below`, as the Whisper
import does): speech lost (its backwards reading beats the forward one by more than the margin)
and reversed clips caught (the other way round); a reading that loops (gzip ratio > 2.4) never
counts as better. Readings are compared by `decoding.plausibility` (CTC log prob per token where
the model has a CTC head, else the mean log prob), as the check itself does.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from pathlib import Path

import torch

from asr.audio.read import load_audio
from asr.data.manifest import read_manifest
from asr.decode.nonspeech import LOOP_RATIO, plausibility
from asr.decode.options import DecodeOptions
from asr.decode.repetition import compression_ratio
from asr.decode.task import Search
from asr.model.catalogue import load

ROOT = Path(__file__).resolve().parents[2]


def readings(search: Search, wav) -> tuple[float, float, bool, bool]:
    """(forward plausibility, backwards plausibility, forward loops, backwards loops) of one clip."""
    out = []
    for w in (wav, wav[::-1].copy()):
        (h, *_), = search.decode(torch.from_numpy(w)[None], torch.tensor([len(w)]))
        out.append((plausibility(h), compression_ratio(h.text) > LOOP_RATIO))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("manifest")
    ap.add_argument("--clips", type=int, default=0, help="a fixed random sample of this many (0: all)")
    ap.add_argument("--margins", nargs="+", type=float, default=[0.0, 0.1, 0.2, 0.3])
    ap.add_argument("--below", nargs="+", type=float, default=[0.0, -0.4, -0.6], help="0: every clip checked")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rec = load(args.model)
    greedy = DecodeOptions.from_config(rec.cfg).replaced(beam_size=1, ctc_weight=0.0)
    search = Search(rec, dataclasses.replace(greedy, no_speech_threshold=None, min_ctc_logprob=None,
                                             compression_ratio_threshold=None, reversed_margin=None))
    entries = read_manifest(args.manifest)
    if args.clips:
        entries = random.Random(0).sample(entries, min(args.clips, len(entries)))
    rows = [readings(search, load_audio(e["audio"])) for e in entries]
    n = len(rows)
    print(f"{args.model} on {n} clips of {args.manifest}\n")
    print("| checked below | margin | speech lost | reversed caught | speech clips checked |")
    print("|---:|---:|---:|---:|---:|")
    for below in args.below:
        for m in args.margins:
            # a clip is speech: lost when its reversal reads better; reversed: caught when the clip (its reversal) does
            lost = sum(f < below and not rl and r - f > m for f, r, fl, rl in rows)
            caught = sum(r < below and not fl and f - r > m for f, r, fl, rl in rows)
            checked = sum(f < below for f, *_ in rows)
            print(f"| {below:g} | {m:g} | {lost} of {n} | {caught} of {n} | {checked} |")


if __name__ == "__main__":
    main()
