"""Whisper on any input length, step by step, on real speech: WER, loops, speed, memory (issue 31's table).

    python recipes/real/make_devset.py                     # data/real/dev.jsonl: the real clips
    python recipes/distill/ablation.py --rows padded unpadded exp/distill/ce exp/distill/kd ... [--fw]

Each row is a model on the same clips with the same decode settings (greedy, the model's own guards),
`--threads` CPU threads, in a fresh process (so peak RSS is its own; loading is not timed):
- `padded`: whisper-tiny.en as imported, every segment padded to the 30 s window (today's default);
- `unpadded`: the same weights fed only the audio there is (segments cut at pauses, at most
  --max-segment s), no training: what the decoder does on input shorter than it ever saw;
- an experiment folder, model file or model name (recipes/distill/run.sh trains them): its own config
  decides, but for decode options after a colon: `exp/distill/ctc:beam_size=4,ctc_weight=0.3` (the
  joint CTC/attention search of a model with a CTC head; values are numbers or `none`);
- `onnx:DIR[:OPTIONS]`: a model exported by `asr export -m MODEL --onnx DIR --int8`, on ONNX Runtime without torch
  (asr.onnx.runtime: a clip one segment, a long file cut at pauses by the energy detector into segments
  of at most --max-segment s; its guards but the reversal check);
- with --fw: faster-whisper tiny.en int8 (the same weights through CTranslate2), the speed reference.
Sets: `short`, every clip of the manifest as its own file; `long`, the clips end to end (0.5 s apart,
cycled to --long-minutes; recipes/benchmarks/whisper.py builds the same file). Columns: WER (both sides
normalized), loops (clips whose transcript repeats itself: a unit of 1-6 words three times in a row, or
zlib compression ratio over 2.4), empty (clips given no text at all: every clip here is speech), real-time
factor, peak RSS.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes/benchmarks"))
from common import rtf, run_fresh, wer  # noqa: E402
from whisper import long_file, run_fw  # noqa: E402

from asr.data.manifest import read_manifest  # noqa: E402
from asr.decode.repetition import compression_ratio, trim_repetitions  # noqa: E402


def loops(text: str) -> bool:
    """Does a transcript repeat itself: a 1-6 word unit three times running, or compression ratio > 2.4?"""
    words = text.lower().split()
    return compression_ratio(text) > 2.4 or any(
        trim_repetitions(words[:end], [], 3, 6) != words[:end] for end in range(3, len(words) + 1))


def parse_options(given: str) -> dict:
    """"beam_size=4,ctc_weight=0.3" -> {"beam_size": 4, "ctc_weight": 0.3} (`none` -> None)."""
    return {k: None if v == "none" else float(v) if "." in v or "e" in v else int(v)
            for k, v in (kv.split("=") for kv in given.split(",") if kv)}


def run_row(row: str, paths: list[str], compute_type: str, threads: int, batch_size: int,
            max_segment: float, reversal_check: bool = True) -> tuple[list[str], float]:
    import torch

    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search
    from asr.model import catalogue
    from asr.transcribe.pipeline import SegmentOptions, recognize

    torch.set_num_threads(threads)
    row, _, given = row.partition(":")
    overrides = parse_options(given)
    if row in ("padded", "unpadded"):
        rec = catalogue.load("whisper-tiny.en", "cpu", compute_type)
    else:
        path = Path(row) / "model.pt" if Path(row).is_dir() else Path(row)
        rec = catalogue.load(path if path.exists() else row, "cpu", compute_type)
    options = DecodeOptions.from_config(rec.cfg, **{"beam_size": 1, **overrides})  # (None there means keep)
    options = dataclasses.replace(options, **{k: v for k, v in overrides.items() if v is None})
    if not reversal_check:
        options = dataclasses.replace(options, reversed_margin=None)
    segment = rec.cfg.decode.max_segment
    if row == "unpadded":  # what `any_length` sets, without the training
        rec.cfg.features.pad_to_seconds = 0.0
        options, segment = dataclasses.replace(options, timestamps=False), max_segment
    search = Search(rec, options)
    start = time.perf_counter()
    texts = [r.text or "" for r in recognize(search, paths, SegmentOptions(max_segment=segment, vad="energy",
                                                                           batch_size=batch_size))]
    return texts, time.perf_counter() - start


def run_onnx(folder: str, paths: list[str], compute_type: str, threads: int,
             batch_size: int, max_segment: float) -> tuple[list[str], float]:
    """asr.onnx.runtime alone (torch is never imported in this process); a long file is cut at pauses
    into segments of at most `max_segment` s by the energy detector."""
    from asr.onnx.runtime import OrtModel

    folder, _, given = folder.partition(":")
    model = OrtModel.load(folder, int8=compute_type == "int8", threads=threads, **parse_options(given))
    start = time.perf_counter()
    texts = [r.text or "" for r in model.transcribe(paths, batch_size=batch_size, max_segment=max_segment)]
    return texts, time.perf_counter() - start


def child(args: argparse.Namespace) -> None:
    spec = json.loads(Path(args.run).read_text())
    if args.row == "fw":
        hyps, seconds = run_fw(spec["paths"], 1, "int8", args.threads)
    elif args.row.startswith("onnx:"):
        hyps, seconds = run_onnx(args.row[5:], spec["paths"], args.compute_type, args.threads, args.batch_size,
                                 args.max_segment)
    else:
        hyps, seconds = run_row(args.row, spec["paths"], args.compute_type, args.threads, args.batch_size,
                                args.max_segment, not args.no_reversal_check)
    print(json.dumps({"wer": wer(spec["refs"], hyps), "loops": sum(map(loops, hyps)),
                      "empty": sum(not h.strip() for h in hyps), "seconds": seconds,
                      "rtf": rtf(seconds, spec["audio_seconds"]), "hyps": hyps}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", nargs="+", default=["padded", "unpadded"],
                    help="padded, unpadded, or experiment folders / model files")
    ap.add_argument("--fw", action="store_true", help="add faster-whisper tiny.en int8 (the bench extra)")
    ap.add_argument("--manifest", default=str(ROOT / "data/real/dev.jsonl"))
    ap.add_argument("--sets", nargs="+", default=["short", "long"], choices=["short", "long"])
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--compute-type", default="int8", choices=["int8", "float32"])
    ap.add_argument("--max-segment", type=float, default=20.0, help="`unpadded`: longest segment, seconds")
    ap.add_argument("--no-reversal-check", action="store_true",
                    help="ours: without the reversal check (decode.reversed_margin), which faster-whisper lacks")
    ap.add_argument("--json", help="write every row's figures (and transcripts) here")
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--row", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        return child(args)
    manifest = read_manifest(args.manifest)
    work = ROOT / "data/real/bench"
    work.mkdir(parents=True, exist_ok=True)
    sets = {"short": ([e["audio"] for e in manifest], [e["text"] for e in manifest],
                      sum(e["duration"] for e in manifest))}
    if "long" in args.sets:
        path, ref = long_file(manifest, args.long_minutes, work / f"long{args.long_minutes:g}min-every1.wav")
        sets["long"] = ([path], [ref], sf.info(path).duration)
    rows = args.rows + (["fw"] if args.fw else [])
    results = []
    print(f"{len(manifest)} clips ({sets['short'][2] / 60:.1f} min) from {args.manifest}; {args.threads} threads, "
          f"ours {args.compute_type}, greedy{', no reversal check' if args.no_reversal_check else ''}")
    print(f"{'row':<34}{'set':<7}{'WER %':>7}{'loops':>7}{'empty':>7}{'RTF':>8}{'peak MB':>9}", flush=True)
    for name in args.sets:
        paths, refs, seconds = sets[name]
        spec = work / f"ablation-{name}.json"
        spec.write_text(json.dumps({"set": name, "paths": paths, "refs": refs, "audio_seconds": seconds}))
        for row in rows:
            cmd = [sys.executable, __file__, "--run", str(spec), "--row", row, "--threads", str(args.threads),
                   "--batch-size", str(args.batch_size), "--compute-type", args.compute_type,
                   "--max-segment", str(args.max_segment)] + ["--no-reversal-check"] * args.no_reversal_check
            try:
                stdout, peak_mb = run_fresh(cmd)
            except subprocess.CalledProcessError as e:
                print(f"{row:<34}{name:<7} FAILED: {e.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = {**json.loads(stdout.strip().splitlines()[-1]), "peak_rss_mb": peak_mb, "row": row, "set": name}
            results.append(r)
            print(f"{row:<34}{name:<7}{r['wer']:>7.2f}{r['loops']:>7}{r['empty']:>7}{r['rtf']:>8.4f}{peak_mb:>9.0f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
