"""Evaluation of a model on manifests: WER/CER, a per-utterance report sorted worst first
(report.txt to read, utterances.jsonl for programs), and summary.json with the decode settings and
the real-time factor.

The counting is `asr.text.metrics`'s; references and hypotheses both go through the normalizer of
the entry's `language` first (`asr.text.normalize.normalizer`: English, or any script), so casing,
punctuation and digits never count as errors; languages written without spaces count characters.
With languages in the manifest, the report and summary.json have a row per language.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from asr.data.manifest import read_manifest
from asr.decode.options import DecodeOptions
from asr.decode.task import Search
from asr.model.catalogue import load
from asr.model.recognizer import Recognizer
from asr.storage import write_jsonl, write_text
from asr.text.metrics import Counts, char_counts, word_counts
from asr.text.normalize import NO_SPACES, normalizer
from asr.transcribe.pipeline import SegmentOptions, recognize


def evaluate(model: str | Path | Recognizer | Search, manifest: str | Path, out_dir: str | Path,
             batch_size: int | None = None, rows_into: list[dict] | None = None, **options) -> dict:
    """Decode every utterance of `manifest`, write report.txt, utterances.jsonl and summary.json to `out_dir`.
    `options` override the model's decode config (beam_size, ctc_weight, lm, ...); a Search
    comes with its options already fixed. A list `rows_into` receives the per-utterance rows,
    worst first (id, ref, hyp, counts, speaker, audio, offset, duration: what asr.report draws)."""
    if isinstance(model, Search):
        if options:
            raise ValueError("decode options are fixed by the Search given")
        search = model
    else:
        rec = model if isinstance(model, Recognizer) else load(model)
        search = Search(rec, DecodeOptions.from_config(rec.cfg, **options))
    entries = read_manifest(manifest)
    sources = [(e["audio"], e["offset"], e["duration"]) if e.get("offset") is not None else e["audio"] for e in entries]
    rows, failed, total, chars = [], [], Counts(), [0, 0]
    results = recognize(search, sources, SegmentOptions(batch_size=batch_size))
    started, audio_seconds = time.perf_counter(), 0.0
    for e, res in zip(entries, results):
        audio_seconds += res.duration
        if res.error is not None:
            failed.append({"id": e["id"], "audio": res.path, "error": res.error})
            continue
        lang = e.get("language")  # a manifest's language field picks the normalizer (English without one)
        norm = normalizer(lang)
        ref, hyp = norm(e["text"]), norm(res.text or "")  # display text (Whisper's) -> the WER form
        c = word_counts(ref, hyp, lang)  # (characters as words where a language writes no spaces)
        ce, cw = char_counts(ref, hyp, lang)
        for k in ("substitutions", "deletions", "insertions", "words"):
            setattr(total, k, getattr(total, k) + getattr(c, k))
        chars[0] += ce
        chars[1] += cw
        rows.append({"id": e["id"], "ref": ref, "hyp": hyp, **asdict(c), "errors": c.edits, "speaker": e.get("speaker"),
                     "audio": e["audio"], "offset": e.get("offset"), "duration": e.get("duration") or res.duration,
                     **({"language": lang} if lang else {})})

    summary = {
        "manifest": str(manifest), "wer": 100.0 * total.edits / max(total.words, 1),
        "cer": 100.0 * chars[0] / max(chars[1], 1), "substitutions": total.substitutions,
        "deletions": total.deletions, "insertions": total.insertions, "utterances": len(rows),
        "reference_words": total.words, "failed": len(failed),
        "audio_seconds": round(audio_seconds, 2), "decode_seconds": round(time.perf_counter() - started, 2),
        "decode": asdict(search.options),
    }
    summary["rtf"] = round(summary["decode_seconds"] / max(audio_seconds, 1e-9), 4)
    if any("language" in r for r in rows):
        summary["by_language"] = by_language(rows)
    out_dir = Path(out_dir)
    rows.sort(key=lambda r: (-r["errors"], -r["errors"] / max(r["words"], 1), r["id"]))
    write_text(out_dir / "report.txt", format_report(summary, rows, failed))
    write_jsonl(out_dir / "utterances.jsonl", rows)
    if rows_into is not None:
        rows_into.extend(rows)
    write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    if failed:
        write_jsonl(out_dir / "failed.jsonl", failed)
    return summary


def by_language(rows: list[dict]) -> dict[str, dict]:
    """Per language: utterances, reference words (characters where no spaces) and WER."""
    out: dict[str, dict] = {}
    for r in rows:
        d = out.setdefault(r.get("language") or "?", {"utterances": 0, "reference_words": 0, "errors": 0})
        d["utterances"] += 1
        d["reference_words"] += r["words"]
        d["errors"] += r["errors"]
    for d in out.values():
        d["wer"] = 100.0 * d.pop("errors") / max(d["reference_words"], 1)
    return dict(sorted(out.items()))


def format_report(summary: dict, rows: list[dict], failed: list[dict]) -> str:
    lines = [format_summary(summary), ""]
    for lang, d in summary.get("by_language", {}).items():
        unit = "characters" if lang in NO_SPACES else "words"
        lines.append(f"  {lang}: WER {d['wer']:.2f}% over {d['reference_words']} {unit}, {d['utterances']} utterances")
    if summary.get("by_language"):
        lines.append("")
    for r in rows:
        lines.append(f"{r['id']}  errors={r['errors']} (S={r['substitutions']} D={r['deletions']} "
                     f"I={r['insertions']}) / {r['words']} words\n  REF: {r['ref']}\n  HYP: {r['hyp']}")
    lines += [f"{fl['id']}  FAILED: {fl['error']}" for fl in failed]
    return "\n".join(lines) + "\n"


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
