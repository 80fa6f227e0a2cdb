"""Quality gate for synthetic audio: a strong pretrained model listens to every utterance, and those
it hears far from their text (mispronounced, truncated or garbled synthesis) leave the manifests.

    python -m asr.synth --config recipes/synth/conf/people.yaml --out data/synth/people \\
        gate_model=whisper-tiny.en gate_max_wer=0.5

Stage `gate`, after `manifests`, when `SynthConfig.gate_model` is set (any model `asr models` lists,
or a model file). Each utterance of `gate_splits` is transcribed (batched; the results are appended
to gate/<split>.jsonl as they come, so an interrupted gate resumes where it stopped) and scored by
its WER against the text, both sides through `asr.text.normalize`. Utterances above `gate_max_wer`
(and those the model cannot read) leave <split>.jsonl; gate/report.json counts, per split and
engine, what was checked and dropped; gate/<split>.jsonl keeps every hypothesis and
gate/<split>.all.jsonl the manifest as it was.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from asr.storage import read_jsonl, write_jsonl


def utterance_wer(reference: str, hypothesis: str) -> float:
    """Word error rate of one utterance after normalizing both sides (1.0 for an empty reference
    with any hypothesis, 0.0 for two empty ones)."""
    from asr.text.metrics import word_counts  # (it normalizes both sides)

    c = word_counts(reference, hypothesis)
    return c.edits / c.words if c.words else float(c.edits > 0)


def listen(rows: list[dict], cache: Path, model: str, batch_size: int = 16) -> dict[str, dict]:
    """{id: {"id", "hyp", "wer", "error"}} for every row: what is in `cache` already, the rest
    transcribed by `model` and appended to it."""
    done = {r["id"]: r for r in _read_cache(cache)}
    todo = [r for r in rows if r["id"] not in done]
    if todo:
        import asr

        transcriber = asr.load_model(model)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with open(cache, "a") as f:
            for row, result in zip(todo, transcriber.transcribe([r["audio"] for r in todo], batch_size=batch_size)):
                heard = {"id": row["id"], "hyp": result.text, "error": result.error,
                         "wer": None if result.error else round(utterance_wer(row["text"], result.text), 4)}
                f.write(json.dumps(heard) + "\n")
                f.flush()
                done[row["id"]] = heard
    return done


def _read_cache(path: Path) -> list[dict]:
    """The cached results; a last line cut short by a kill is dropped (and heard again)."""
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


def gate_split(out: Path, split: str, model: str, max_wer: float) -> dict[str, dict[str, int]]:
    """Filter <split>.jsonl; returns {engine: {"checked", "dropped"}}."""
    manifest, original = out / f"{split}.jsonl", out / "gate" / f"{split}.all.jsonl"
    if not original.exists():  # the manifest as it was, before any gate (a gate run again starts from it)
        original.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(original, read_jsonl(manifest))
    rows = read_jsonl(original)
    heard = listen(rows, out / "gate" / f"{split}.jsonl", model)
    checked, dropped, kept = Counter(), Counter(), []
    for r in rows:
        engine = r["speaker"].split(":")[0]
        checked[engine] += 1
        h = heard[r["id"]]
        if h["error"] is not None or h["wer"] > max_wer:
            dropped[engine] += 1
        else:
            kept.append(r)
    write_jsonl(manifest, kept)
    return {e: {"checked": checked[e], "dropped": dropped[e]} for e in sorted(checked)}


def stage_gate(out: Path, model: str, max_wer: float, splits: list[str]) -> dict:
    report = {"model": model, "max_wer": max_wer,
              "splits": {s: gate_split(out, s, model, max_wer) for s in splits}}
    (out / "gate" / "report.json").write_text(json.dumps(report, indent=1))
    for split, engines in report["splits"].items():
        lost = ", ".join(f"{e} {c['dropped']}/{c['checked']}" for e, c in engines.items())
        print(f"gate {split}: dropped {lost}", flush=True)
    return report
