"""JSONL manifests <-> lists of utterance entries: {"id", "audio", "duration", "text", "speaker"}.

The one reader and writer of manifests: training, evaluation, recipes and benchmarks use it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from asr.storage import read_jsonl, write_jsonl

REQUIRED = ("id", "audio", "text")

log = logging.getLogger(__name__)


def read_manifest(path: str | Path, text: bool = True) -> list[dict]:
    """Parse a JSONL manifest; a malformed line or a missing field is an error naming the file.
    `text=False`: audio without transcripts (what a teacher transcribes, `asr teach`) is fine."""
    entries = read_jsonl(path)
    for n, e in enumerate(entries, 1):
        missing = [k for k in REQUIRED if k not in e and (text or k != "text")]
        if missing:
            raise ValueError(f"{path}: entry {n}: missing field(s) {', '.join(missing)}")
        e.setdefault("duration", 0.0)
        e.setdefault("speaker", "")
    return entries


def write_manifest(path: str | Path, entries: list[dict]) -> None:
    write_jsonl(path, entries)


def filter_by_duration(entries: list[dict], max_duration: float) -> list[dict]:
    kept = [e for e in entries if e["duration"] <= max_duration]
    if len(kept) < len(entries):
        log.warning("dropped %d of %d utterances longer than %.1f s", len(entries) - len(kept), len(entries), max_duration)
    return kept
