"""The ablation table of recipes/synth/README.md: trained models side by side on the same test sets,
split by voice engine, plus real human speech.

    python recipes/synth/ablation.py --data data/synth/commands_kokoro --real data/real/dev.jsonl \
        "B: + Kokoro, no blends=exp/ablation/B" "C: + Kokoro and blends=exp/ablation/C" ...

Each row is `label=EXP` (a folder with model.pt, from `asr train` or recipes/synth/run.sh). Every model
is decoded with its own decode config (beam 5 + CTC 0.3 for ours) on `--data`'s test and
test-unseen-voice and on `--real`; the per-utterance rows are kept in EXP/ablation/<set>.json, so a
row already evaluated on the same manifests is not decoded again, and an `asr evaluate --out
EXP/eval_*` of the same model, manifest and decode settings (its utterances.jsonl) is read instead of
decoding. Prints a markdown table (WER %): the whole sets and, within them, single engines (test:
Kokoro's seen voices; test-unseen-voice: held-out Kokoro voices, flite, held-out espeak variants),
then any `--extra TITLE=MANIFEST`.
`--written-forms` adds, for a display-text corpus (people), the utterances of test and test-unseen-voice
whose display text holds digits or symbols ("Meet me at 5:30."): where a model that writes display text
must write otherwise than it hears, and one that writes the spoken form need not; and the rest of
test-unseen-voice (prose and short replies: issue 13's 10% target is on prose).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import re
import sys
from pathlib import Path

import torch

from asr.config import Config, from_dict
from asr.decode.options import DecodeOptions
from asr.evaluate.scoring import evaluate
from asr.storage import read_jsonl

ROOT = Path(__file__).resolve().parents[2]

# (set, engine or None for the whole set, column title)
COLUMNS = [
    ("test", None, "test"),
    ("test", "kokoro", "test, Kokoro seen voices"),
    ("test-unseen-voice", None, "unseen"),
    ("test-unseen-voice", "kokoro", "unseen, held-out Kokoro voices"),
    ("test-unseen-voice", "flite", "unseen, flite"),
    ("test-unseen-voice", "espeak", "unseen, espeak variants"),
    ("real", None, "real clips"),
]
WRITTEN_COLUMNS = [("test", None, "test, written forms"), ("test-unseen-voice", None, "unseen, written forms")]
UNWRITTEN_COLUMN = ("test-unseen-voice", None, "unseen, no written forms")
WRITTEN = re.compile(r"[0-9$%&@#£€]")  # display text that is said otherwise: digits, money, symbols


def written_ids(manifest: Path, written: bool = True) -> set[str]:
    """Ids of the utterances whose display text holds digits or symbols (with written=False: none)."""
    with open(manifest, encoding="utf-8") as f:
        return {e["id"] for e in map(json.loads, f) if bool(WRITTEN.search(e["text"])) == written}


def rows_for(exp: Path, name: str, manifest: Path) -> list[dict]:
    """Per-utterance rows of EXP/model.pt on `manifest`, decoded once and cached beside the model."""
    cache = exp / "ablation" / f"{name}.json"
    model = exp / "model.pt"
    stamp = {"manifest": str(manifest), "manifest_mtime": manifest.stat().st_mtime,
             "model_mtime": model.stat().st_mtime}
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("stamp") == stamp:
            return saved["rows"]
    rows = evaluated_rows(exp, manifest)
    if rows is None:
        rows = []
        evaluate(model, manifest, exp / "ablation" / name, rows_into=rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"stamp": stamp, "rows": rows}))
    return rows


def evaluated_rows(exp: Path, manifest: Path) -> list[dict] | None:
    """The per-utterance rows of an `asr evaluate --out EXP/eval_*` of EXP/model.pt on `manifest`
    (EXP/eval_*/<set>/utterances.jsonl), if one was made after both with the model's own decode config."""
    model = exp / "model.pt"
    own = own_decode(model)
    newer_than = max(model.stat().st_mtime, manifest.stat().st_mtime)
    for summary in sorted(exp.glob("eval_*/*/summary.json")):
        rows = summary.parent / "utterances.jsonl"
        s = json.loads(summary.read_text())
        if (Path(s["manifest"]).resolve() == manifest.resolve() and s.get("decode") == own
                and rows.is_file() and rows.stat().st_mtime > newer_than):
            print(f"{exp}: {manifest} read from {rows}", file=sys.stderr)
            return read_jsonl(rows)
    return None


@functools.cache
def own_decode(model: Path) -> dict:
    """The decode settings a model file's config gives, as summary.json stores them."""
    cfg = from_dict(Config, torch.load(model, map_location="cpu", weights_only=True, mmap=True)["config"])
    return json.loads(json.dumps(dataclasses.asdict(DecodeOptions.from_config(cfg))))


def wer(rows: list[dict], engine: str | None, ids: set[str] | None = None) -> tuple[float | None, int]:
    """(WER %, utterances) over the rows of one engine (the part of `speaker` before ':'), or all;
    with `ids`, only those utterances. None where no utterance (or word) is left."""
    picked = [r for r in rows if (engine is None or (r.get("speaker") or "").split(":")[0] == engine)
              and (ids is None or r["id"] in ids)]
    words = sum(r["words"] for r in picked)
    return (100.0 * sum(r["errors"] for r in picked) / words if words else None), len(picked)


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", help="LABEL=EXP (a folder holding model.pt)")
    ap.add_argument("--data", type=Path, required=True,
                    help="corpus folder with test.jsonl and test-unseen-voice.jsonl")
    ap.add_argument("--real", type=Path, help="a manifest of real human speech (recipes/real/make_devset.py)")
    ap.add_argument("--extra", action="append", default=[], metavar="TITLE=MANIFEST",
                    help="one more column: WER on this manifest (e.g. recipes/real/add_sounds.py's noisy copy)")
    ap.add_argument("--written-forms", action="store_true",
                    help="add test and test-unseen-voice restricted to display text with digits or symbols, "
                         "and test-unseen-voice without them")
    ap.add_argument("--json", type=Path, help="also write the table's numbers here")
    args = ap.parse_args()

    sets = {"test": args.data / "test.jsonl", "test-unseen-voice": args.data / "test-unseen-voice.jsonl"}
    if args.real:
        sets["real"] = args.real
    columns = [c for c in COLUMNS if c[0] in sets]
    subsets: dict[str, set[str]] = {}  # column title -> the utterance ids it keeps
    if args.written_forms:
        for column in WRITTEN_COLUMNS:  # each right after its whole set
            columns.insert(1 + [c[0] for c in columns].index(column[0]), column)
            subsets[column[2]] = written_ids(sets[column[0]])
        set_name, _, title = UNWRITTEN_COLUMN
        columns.insert(1 + [c[2] for c in columns].index("unseen, written forms"), UNWRITTEN_COLUMN)
        subsets[title] = written_ids(sets[set_name], written=False)
    for spec in args.extra:
        title, _, path = spec.rpartition("=")
        if not title:
            sys.exit(f"--extra is TITLE=MANIFEST, not {spec!r}")
        name = "extra-" + "".join(ch if ch.isalnum() else "_" for ch in title)
        sets[name] = Path(path)
        columns.append((name, None, title))
    table, counts = [], {}
    for spec in args.rows:
        label, _, exp = spec.rpartition("=")
        if not label:
            sys.exit(f"a row is LABEL=EXP, not {spec!r}")
        exp = Path(exp)
        if not (exp / "model.pt").is_file():
            sys.exit(f"{exp}/model.pt: no such model (train the row first)")
        results = {name: rows_for(exp, name, path) for name, path in sets.items()}
        cells = []
        for set_name, engine, title in columns:
            value, n = wer(results[set_name], engine, subsets.get(title))
            counts[title] = n
            cells.append(value)
        table.append((label, cells))
        print(f"{label}: " + ", ".join(f"{c[2]} {cell(v)}" for c, v in zip(columns, cells)), file=sys.stderr)

    print("| row | " + " | ".join(f"{c[2]} ({counts[c[2]]})" for c in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for label, cells in table:
        print(f"| {label} | " + " | ".join(cell(v) for v in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({label: dict(zip([c[2] for c in columns], cells)) for label, cells in table},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
