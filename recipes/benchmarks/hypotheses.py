"""The same hypotheses before and after a change: dump a model's transcripts, then compare two dumps.

    python recipes/benchmarks/hypotheses.py dump -m MODEL MANIFEST [-n 100] [--onnx DIR] -o OUT.jsonl
    PYTHONPATH=/path/to/old/checkout python recipes/benchmarks/hypotheses.py dump ... -o before.jsonl
    python recipes/benchmarks/hypotheses.py compare before.jsonl after.jsonl

`dump` transcribes the first N utterances of a manifest through the public API (`asr.load_model`)
with greedy search and with the model's default decoding, and, with --onnx, through the ONNX
Runtime path too (the graphs `asr export -m MODEL --onnx DIR` wrote). It reads the manifest with
json alone and finds the runtime under either layout, so that one script runs against the code
before and after a restructuring (PYTHONPATH points at the other checkout). `compare` prints, per
model and setting, how many of N hypotheses are identical, and the first few that differ.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

SETTINGS = {"greedy": {"beam_size": 1, "ctc_weight": 0.0}, "default": {}}


def ort_model(folder: str):
    for name in ("asr.onnx.runtime", "asr.ort"):  # the layout after, and before, the packages
        try:
            return importlib.import_module(name).OrtModel.load(folder)
        except ModuleNotFoundError:
            continue
    raise SystemExit("no ONNX runtime module found")


def dump(args: argparse.Namespace) -> None:
    import asr

    rows = [json.loads(line) for line in Path(args.manifest).read_text().splitlines() if line.strip()][: args.n]
    paths = [r["audio"] for r in rows]
    out = []
    for setting, options in SETTINGS.items():
        model = asr.load_model(args.model, device="cpu", **options)
        texts = [r.text if r.error is None else f"ERROR {r.error}" for r in model.transcribe(paths)]
        out += [{"system": "torch", "setting": setting, "id": r["id"], "text": t} for r, t in zip(rows, texts)]
        if args.onnx:
            onnx = ort_model(args.onnx)
            results = onnx.transcribe(paths, **options)
            out += [{"system": "onnx", "setting": setting, "id": r["id"], "text": res.text}
                    for r, res in zip(rows, results)]
    Path(args.output).write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in out))
    print(f"{len(out)} hypotheses -> {args.output}")


def compare(args: argparse.Namespace) -> int:
    def read(path):
        return {(o["system"], o["setting"], o["id"]): o["text"] for o in map(json.loads, open(path))}

    a, b = read(args.before), read(args.after)
    if set(a) != set(b):
        print(f"different utterances: {len(set(a) ^ set(b))} only in one of the dumps")
    differ = 0
    for system, setting in sorted({k[:2] for k in a}):
        keys = [k for k in a if k[:2] == (system, setting) and k in b]
        diff = [k for k in keys if a[k] != b[k]]
        differ += len(diff)
        print(f"{system:<6} {setting:<8} {len(keys) - len(diff)} of {len(keys)} identical")
        for k in diff[:3]:
            print(f"    {k[2]}: {a[k]!r} -> {b[k]!r}")
    return 1 if differ or set(a) != set(b) else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("-m", "--model", required=True)
    d.add_argument("manifest")
    d.add_argument("-n", type=int, default=100)
    d.add_argument("--onnx", help="a folder of ONNX graphs of the same model (asr export --onnx)")
    d.add_argument("-o", "--output", required=True)
    c = sub.add_parser("compare")
    c.add_argument("before")
    c.add_argument("after")
    args = ap.parse_args()
    if args.command == "dump":
        dump(args)
        return 0
    return compare(args)


if __name__ == "__main__":
    raise SystemExit(main())
