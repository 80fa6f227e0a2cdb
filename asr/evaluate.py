"""Word and character error rates with jiwer, and a per-utterance report sorted worst first.

Corpus WER is total word edits / total reference words (not a mean of per-utterance rates).
References and hypotheses both go through `asr.text.normalize` first.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jiwer

from .data import read_manifest
from .recognizer import Recognizer
from .text import normalize
from .transcribe import recognize_files


@dataclass
class Counts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    words: int = 0  # reference words

    @property
    def edits(self) -> int:
        return self.substitutions + self.deletions + self.insertions


def word_counts(ref: str, hyp: str) -> Counts:
    """Edit counts of one normalized (ref, hyp) pair; an empty reference makes every word an insertion."""
    if not ref.split():
        return Counts(insertions=len(hyp.split()))
    if not hyp.split():
        return Counts(deletions=len(ref.split()), words=len(ref.split()))
    o = jiwer.process_words(ref, hyp)
    return Counts(o.substitutions, o.deletions, o.insertions, o.substitutions + o.deletions + o.hits)


def char_counts(ref: str, hyp: str) -> tuple[int, int]:
    """(character edits, reference characters)."""
    if not ref:
        return len(hyp), 0
    if not hyp:
        return len(ref), len(ref)
    o = jiwer.process_characters(ref, hyp)
    return o.substitutions + o.deletions + o.insertions, o.substitutions + o.deletions + o.hits


def error_counts(refs: list[str], hyps: list[str]) -> tuple[int, int]:
    """(total word edits, total reference words) over a list of normalized pairs."""
    counts = [word_counts(r, h) for r, h in zip(refs, hyps)]
    return sum(c.edits for c in counts), sum(c.words for c in counts)


def evaluate(model: str | Path | Recognizer, manifest: str | Path, out_dir: str | Path,
             batch_size: int | None = None, **options) -> dict:
    """Decode every utterance of `manifest`, write report.txt and summary.json to `out_dir`.
    `options` override the model's decode config (beam_size, ctc_weight, length_penalty)."""
    rec = model if isinstance(model, Recognizer) else Recognizer.load(model)
    entries = read_manifest(manifest)
    sources = [(e["audio"], e["offset"], e["duration"]) if e.get("offset") is not None else e["audio"] for e in entries]
    rows, failed, total, chars = [], [], Counts(), [0, 0]
    results = recognize_files(rec, sources, batch_size or rec.cfg.decode.batch_size, **options)
    started, audio_seconds = time.perf_counter(), 0.0
    for e, res in zip(entries, results):
        audio_seconds += res.duration
        if res.error is not None:
            failed.append({"id": e["id"], "audio": res.path, "error": res.error})
            continue
        ref, hyp = normalize(e["text"]), res.text
        c = word_counts(ref, hyp)
        ce, cw = char_counts(ref, hyp)
        for k in ("substitutions", "deletions", "insertions", "words"):
            setattr(total, k, getattr(total, k) + getattr(c, k))
        chars[0] += ce
        chars[1] += cw
        rows.append({"id": e["id"], "ref": ref, "hyp": hyp, **asdict(c), "errors": c.edits})

    summary = {
        "manifest": str(manifest), "wer": 100.0 * total.edits / max(total.words, 1),
        "cer": 100.0 * chars[0] / max(chars[1], 1), "substitutions": total.substitutions,
        "deletions": total.deletions, "insertions": total.insertions, "utterances": len(rows),
        "reference_words": total.words, "failed": len(failed),
        "audio_seconds": round(audio_seconds, 2), "decode_seconds": round(time.perf_counter() - started, 2),
        "decode": {**asdict(rec.decode_settings(**options)), "lm": rec.lm_path},
    }
    summary["rtf"] = round(summary["decode_seconds"] / max(audio_seconds, 1e-9), 4)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows.sort(key=lambda r: (-r["errors"], -r["errors"] / max(r["words"], 1), r["id"]))
    with open(out_dir / "report.txt", "w") as f:
        f.write(format_summary(summary) + "\n\n")
        for r in rows:
            f.write(f"{r['id']}  errors={r['errors']} (S={r['substitutions']} D={r['deletions']} "
                    f"I={r['insertions']}) / {r['words']} words\n  REF: {r['ref']}\n  HYP: {r['hyp']}\n")
        for fl in failed:
            f.write(f"{fl['id']}  FAILED: {fl['error']}\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if failed:
        (out_dir / "failed.jsonl").write_text("".join(json.dumps(x) + "\n" for x in failed))
    return summary


def format_summary(s: dict) -> str:
    return (f"WER {s['wer']:.2f}%  CER {s['cer']:.2f}%  (S={s['substitutions']} D={s['deletions']} "
            f"I={s['insertions']} over {s['reference_words']} words, {s['utterances']} utterances"
            + (f", {s['failed']} unreadable" if s.get("failed") else "") + ")")


def format_table(summaries: dict[str, dict]) -> str:
    """A fixed-width WER table: one row per test set."""
    head = f"{'test set':<22}{'utts':>6}{'words':>8}{'WER %':>8}{'CER %':>8}{'sub':>6}{'del':>6}{'ins':>6}"
    lines = [head, "-" * len(head)]
    for name, s in summaries.items():
        lines.append(f"{name:<22}{s['utterances']:>6}{s['reference_words']:>8}{s['wer']:>8.2f}{s['cer']:>8.2f}"
                     f"{s['substitutions']:>6}{s['deletions']:>6}{s['insertions']:>6}")
    return "\n".join(lines)
