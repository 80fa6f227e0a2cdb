"""Would a cascade close the student's gap? The any-length student first, the padded teacher again
where the student is unsure (Whisper's own fallback idea, with a second model instead of a second
temperature): what WER it reaches, and how much audio the teacher then decodes.

    python recipes/distill/cascade.py --manifests data/real/select.jsonl data/real/heldout.jsonl

Each clip is decoded by both models (greedy, their own guards, int8, 2 threads, the energy detector,
one clip a batch); the cascade is then simulated per confidence threshold: a clip goes to the
teacher where the student's least confident segment scores below it (its mean token log
probability), and, in the second half of the table, where the student wrote nothing too. Per-clip
results: data/distill/cascade.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STUDENT, TEACHER = "whisper-tiny.en-any", "whisper-tiny.en"
THRESHOLDS = (-0.2, -0.3, -0.4, -0.5, -0.6, -0.8, -1.0)


def decode(manifests: list[str]) -> dict:
    import torch

    from asr.data.manifest import read_manifest
    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search
    from asr.model import catalogue
    from asr.transcribe.pipeline import SegmentOptions, recognize

    torch.set_num_threads(2)
    clips: dict[str, dict] = {}
    for manifest in manifests:
        entries = read_manifest(manifest)
        for name in (STUDENT, TEACHER):
            rec = catalogue.load(name, "cpu", "int8")
            search = Search(rec, DecodeOptions.from_config(rec.cfg, beam_size=1))
            options = SegmentOptions(max_segment=rec.cfg.decode.max_segment, vad="energy", batch_size=1)
            for e, r in zip(entries, recognize(search, [e["audio"] for e in entries], options)):
                clip = clips.setdefault(e["id"], {"ref": e["text"], "manifest": manifest, "duration": e["duration"]})
                clip[name] = {"text": r.text or "", "scores": [s.score for s in r.segments]}
    return clips


def wer(clips: list[dict], texts: list[str]) -> float:
    import jiwer

    from asr.text.normalize import normalize

    refs = [normalize(c["ref"]) for c in clips]
    out = jiwer.process_words(refs, [normalize(t) for t in texts])
    return 100 * (out.substitutions + out.deletions + out.insertions) / sum(len(r.split()) for r in refs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifests", nargs="+", default=["data/real/select.jsonl", "data/real/heldout.jsonl"])
    ap.add_argument("--out", default="data/distill/cascade.json")
    args = ap.parse_args()
    clips = decode(args.manifests)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(clips, indent=1))
    for manifest in args.manifests:
        rows = [c for c in clips.values() if c["manifest"] == manifest]
        seconds = sum(c["duration"] for c in rows)
        print(f"\n{manifest}: {len(rows)} clips; student {wer(rows, [c[STUDENT]['text'] for c in rows]):.2f}%, "
              f"teacher {wer(rows, [c[TEACHER]['text'] for c in rows]):.2f}%\n")
        print("| to the teacher | threshold | WER % | clips to the teacher | share of the audio % |")
        print("|---|---:|---:|---:|---:|")
        for empty in (False, True):
            for threshold in THRESHOLDS:
                unsure = [min(c[STUDENT]["scores"], default=float("-inf")) < threshold
                          and (empty or bool(c[STUDENT]["scores"])) for c in rows]
                texts = [c[TEACHER if u else STUDENT]["text"] for c, u in zip(rows, unsure)]
                share = sum(c["duration"] for c, u in zip(rows, unsure) if u) / seconds
                print(f"| unsure{' or empty' if empty else ''} | {threshold} | {wer(rows, texts):.2f} "
                      f"| {sum(unsure)} of {len(rows)} | {100 * share:.0f} |")


if __name__ == "__main__":
    main()
