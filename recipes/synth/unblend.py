"""The "no blending" row of the ablation: a copy of a corpus whose training utterances read by a blend of
Kokoro voices are read again by the blend's heaviest parent, with the same sentence, rate, pitch,
level and padding. Everything else (the other engines' audio, dev and the test sets) is the corpus's
own, so two models trained on the two differ only in the blended speakers.

    python recipes/synth/unblend.py data/synth/commands_kokoro data/synth/commands_kokoro_noblend

Writes OUT/{train,dev,test,test-unseen-voice}.jsonl (train pointing at OUT/wav/train/ for the
re-read utterances, at the corpus's own files for the rest) and OUT/unblend.json (what was replaced).
Resumable: a re-read utterance already on disk is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf

from asr.storage import read_jsonl, write_jsonl
from asr.synth.corpus import synth_utterance
from asr.synth.kokoro import parse_blend

ROOT = Path(__file__).resolve().parents[2]


def heaviest_parent(blend: str) -> str:
    """The parent voice with the largest weight (the first listed among equals)."""
    return max(parse_blend(blend), key=lambda p: p[1])[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="a corpus folder from `python -m asr.synth` (with plan/train.jsonl)")
    ap.add_argument("out", type=Path)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    plan = {r["id"]: r for r in read_jsonl(args.corpus / "plan" / "train.jsonl")}
    (args.out / "wav" / "train").mkdir(parents=True, exist_ok=True)
    jobs, replaced = [], {}
    for row in plan.values():
        if row["engine"] == "kokoro" and "+" in row["voice"]:
            parent = heaviest_parent(row["voice"])
            replaced[row["id"]] = {"blend": row["voice"], "voice": parent}
            jobs.append({**row, "voice": parent, "speaker": f"kokoro:{parent}",
                         "audio": str((args.out / "wav" / "train" / f"{row['id']}.wav").resolve())})
    todo = [j for j in jobs if not os.path.exists(j["audio"])]
    print(f"{len(jobs)} blended training utterances -> their heaviest parent; {len(todo)} to synthesize",
          file=sys.stderr)
    start, failed = time.time(), []
    with ProcessPoolExecutor(args.workers) as pool:
        for i, (utt, err, _, _) in enumerate(pool.map(synth_utterance, todo, chunksize=4), 1):
            if err:
                failed.append(utt)
                print(f"\n{utt}: {err}", file=sys.stderr)
            print(f"\r  {i}/{len(todo)}  {time.time() - start:.0f} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    by_id = {j["id"]: j for j in jobs}
    rows = []
    for r in read_jsonl(args.corpus / "train.jsonl"):
        if r["id"] in replaced:
            if r["id"] in failed:
                continue
            job = by_id[r["id"]]
            r = {**r, "audio": job["audio"], "speaker": job["speaker"],
                 "duration": round(sf.info(job["audio"]).duration, 3)}
        rows.append(r)
    write_jsonl(args.out / "train.jsonl", rows)
    for split in ("dev", "test", "test-unseen-voice"):
        shutil.copyfile(args.corpus / f"{split}.jsonl", args.out / f"{split}.jsonl")
    (args.out / "unblend.json").write_text(json.dumps({"replaced": replaced, "failed": failed,
                                                       "seconds": round(time.time() - start, 1)}, indent=1) + "\n")
    print(f"{len(rows)} training utterances -> {args.out}/train.jsonl ({len(replaced) - len(failed)} re-read, "
          f"{len(failed)} failed and left out) in {time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
