"""ONNX Runtime against torch: speed, memory, WER and identical hypotheses, in one run.

    python recipes/benchmarks/onnx_speed.py --model exp/synth/commands/model.pt \
        --manifest data/synth/commands/test.jsonl --workdir exp/bench_onnx

Exports the model (`asr export -m MODEL --onnx WORKDIR/onnx --int8`) unless already there, then
runs each system in a fresh process (peak RSS is the process's own): torch (asr.decode.task.Search),
ONNX Runtime fp32 and int8 (asr.onnx.runtime, no torch imported). Every system decodes the same clips in the
same length-sorted batches (file reading is not timed), greedy and beam; RTF = decode seconds /
audio seconds on `--threads` threads. Then the import time of each path in a fresh interpreter
(median of `--repeats`), with and without loading the model.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import batches, read_clips, wer

HERE = Path(__file__).resolve().parent

ROOT = HERE.parent.parent
SYSTEMS = ("torch", "ort-fp32", "ort-int8")
SEARCHES = {"greedy": {"beam_size": 1, "ctc_weight": 0.0}, "beam 5 + CTC 0.3": {"beam_size": 5, "ctc_weight": 0.3}}


def decoder_of(system: str, model: str, onnx_dir: Path, threads: int):
    """system -> decode(wav (B, S) np, lens (B,) np, **options) -> texts."""
    if system == "torch":
        import torch

        from asr.decode.options import DecodeOptions
        from asr.decode.task import Search
        from asr.model.recognizer import Recognizer

        torch.set_num_threads(threads)
        rec = Recognizer.load(model)

        def run(wav, lens, **o):
            nbest = Search(rec, DecodeOptions.from_config(rec.cfg, **o)).decode(
                torch.from_numpy(wav), torch.from_numpy(lens)
            )
            return [nb[0].text for nb in nbest]
        return run
    from asr.onnx.runtime import OrtModel

    ort_model = OrtModel.load(onnx_dir, int8=system == "ort-int8", threads=threads)
    return lambda wav, lens, **o: [nb[0].text for nb in ort_model.decode(wav, lens, **o)]


def worker(args: argparse.Namespace) -> None:
    """One system in this process: hypotheses and seconds for every search, and the peak RSS."""
    from asr.onnx.runtime import pad

    wavs, _ = read_clips(args.manifest, args.clips)
    decode = decoder_of(args.worker, args.model, Path(args.workdir) / "onnx", args.threads)
    decode(*pad(wavs[:2]), **SEARCHES["greedy"])  # warm-up: first-call allocations are not decoding
    out = {}
    for name, options in SEARCHES.items():
        hyps = [""] * len(wavs)
        start = time.perf_counter()
        for idx in batches([len(w) for w in wavs], args.batch_size):
            for i, text in zip(idx, decode(*pad([wavs[i] for i in idx]), **options)):
                hyps[i] = text
        out[name] = {"hyps": hyps, "seconds": time.perf_counter() - start}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["torch_imported"] = "torch" in sys.modules
    (Path(args.workdir) / f"{args.worker}.json").write_text(json.dumps(out))


IMPORTS = {
    "torch": ("from asr.decode.task import Search; from asr.model.recognizer import Recognizer",
              "Recognizer.load({model!r})"),
    "ort": ("from asr.onnx.runtime import OrtModel", "OrtModel.load({onnx!r})"),
}


def import_seconds(path: str, load: bool, model: str, onnx_dir: Path) -> float:
    """Wall time of the imports (and the model load) of one path in a fresh interpreter."""
    imp, ld = IMPORTS[path]
    body = imp + ("; " + ld.format(model=model, onnx=str(onnx_dir)) if load else "")
    code = f"import time; t = time.perf_counter(); {body}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return float(out.stdout.split()[-1])


def export(model: str, onnx_dir: Path) -> None:
    if (onnx_dir / "model.json").is_file() and (onnx_dir / "decoder.int8.onnx").is_file():
        return
    subprocess.run([sys.executable, "-m", "asr", "export", "-m", model, "--onnx", str(onnx_dir), "--int8"],
                   cwd=ROOT, check=True)


def table(args: argparse.Namespace, results: dict, audio_seconds: float, refs: list[str]) -> list[str]:
    lines = ["| system | search | RTF | speed vs torch | WER % | same hypothesis as torch | peak RSS (MB) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name in SEARCHES:
        base = results["torch"][name]
        for system in SYSTEMS:
            r = results[system][name]
            same = sum(a == b for a, b in zip(r["hyps"], base["hyps"]))
            lines.append(f"| {system} | {name} | {r['seconds'] / audio_seconds:.4f} | "
                         f"{base['seconds'] / r['seconds']:.2f}x | {wer(refs, r['hyps']):.2f} | "
                         f"{same}/{len(refs)} | {results[system]['peak_rss_mb']:.0f} |")
    return lines


def import_table(args: argparse.Namespace, onnx_dir: Path) -> list[str]:
    lines = ["| path | import (s) | import + load model (s) |", "|---|---:|---:|"]
    for path in IMPORTS:
        cells = [statistics.median(import_seconds(path, load, args.model, onnx_dir) for _ in range(args.repeats))
                 for load in (False, True)]
        lines.append(f"| {path} | {cells[0]:.2f} | {cells[1]:.2f} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="exp/synth/commands/model.pt")
    p.add_argument("--manifest", default="data/synth/commands/test.jsonl")
    p.add_argument("--workdir", default="exp/bench_onnx")
    p.add_argument("--clips", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    workdir, onnx_dir = Path(args.workdir), Path(args.workdir) / "onnx"
    workdir.mkdir(parents=True, exist_ok=True)
    export(args.model, onnx_dir)
    for system in SYSTEMS:
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--worker", system], cwd=ROOT, check=True)
    results = {s: json.loads((workdir / f"{s}.json").read_text()) for s in SYSTEMS}
    assert not results["ort-fp32"]["torch_imported"] and not results["ort-int8"]["torch_imported"]
    wavs, refs = read_clips(args.manifest, args.clips)
    audio = sum(len(w) for w in wavs) / 16000
    sizes = {f.name: f.stat().st_size / 2**20 for f in sorted(onnx_dir.glob("*.onnx"))}
    lines = [f"{len(refs)} clips, {audio / 60:.1f} min of audio, batch {args.batch_size}, {args.threads} threads", ""]
    lines += table(args, results, audio, refs) + [""] + import_table(args, onnx_dir) + [""]
    lines.append("graphs: " + ", ".join(f"{k} {v:.1f} MB" for k, v in sizes.items()))
    print("\n".join(lines))
    (workdir / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
