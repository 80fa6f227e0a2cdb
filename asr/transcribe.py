"""Files and folders -> text: batched recognition that reports broken files and carries on.

Recordings longer than `max_segment` seconds are cut at the quietest point near each window's
end and the pieces decoded separately (a simple long-form scheme; see the README's limits).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from .audio import AudioError, load_audio

log = logging.getLogger(__name__)
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf"}


@dataclass
class Result:
    path: str
    text: str | None = None
    duration: float = 0.0
    error: str | None = None  # why the file could not be transcribed


def find_audio(paths: Iterable[str | Path]) -> list[str]:
    """Files as given; folders searched recursively for audio extensions (sorted)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
        else:
            out.append(str(p))
    return out


def split_long(wav: np.ndarray, sample_rate: int, max_segment: float) -> list[np.ndarray]:
    """Cut a long waveform into pieces of at most `max_segment` seconds, each cut at the
    quietest 50 ms in the last quarter of its window so that words are rarely split."""
    limit = int(max_segment * sample_rate)
    hop = sample_rate // 20
    pieces, start = [], 0
    while len(wav) - start > limit:
        window = wav[start + limit * 3 // 4 : start + limit]
        n = len(window) // hop
        energy = (window[: n * hop].reshape(n, hop) ** 2).mean(1)
        cut = start + limit * 3 // 4 + int(energy.argmin()) * hop + hop // 2
        pieces.append(wav[start:cut])
        start = cut
    pieces.append(wav[start:])
    return pieces


def _load(path: str, sample_rate: int) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_audio(path, sample_rate), None
    except AudioError as e:
        return None, e.reason


def recognize_files(rec, paths: list[str], batch_size: int = 16, max_segment: float = 30.0,
                    progress: bool = False) -> Iterator[Result]:
    """Yield one Result per path, in order. Unreadable files give a Result with `error` set."""
    sr = rec.cfg.features.sample_rate
    group = max(batch_size * 4, 1)  # load this many files, then decode them in length-sorted batches
    for g in range(0, len(paths), group):
        chunk = paths[g : g + group]
        results = [Result(p) for p in chunk]
        pieces: list[tuple[int, np.ndarray]] = []  # (index in chunk, samples)
        for i, p in enumerate(chunk):
            wav, err = _load(p, sr)
            if err is not None:
                results[i].error = err
                log.warning("cannot transcribe %s: %s", p, err)
                continue
            results[i].duration = len(wav) / sr
            pieces += [(i, w) for w in split_long(wav, sr, max_segment)]
        texts: dict[int, list[tuple[int, str]]] = {}  # file -> (piece order, text)
        order = sorted(range(len(pieces)), key=lambda k: len(pieces[k][1]))
        for b in range(0, len(order), batch_size):
            batch = [pieces[k] for k in order[b : b + batch_size]]
            lens = torch.tensor([len(w) for _, w in batch])
            wav = torch.zeros(len(batch), int(lens.max()))
            for j, (_, w) in enumerate(batch):
                wav[j, : len(w)] = torch.from_numpy(w)
            for (k, (i, _)), text in zip(zip(order[b : b + batch_size], batch), rec.decode(wav, lens)):
                texts.setdefault(i, []).append((k, text))
        for i, r in enumerate(results):
            if r.error is None:  # pieces of one file in their original order
                r.text = " ".join(t for _, t in sorted(texts.get(i, [])) if t)
        if progress:
            print(f"\r{min(g + group, len(paths))}/{len(paths)} files", end="", file=sys.stderr, flush=True)
        yield from results
    if progress and paths:
        print(file=sys.stderr)


def transcribe(model, paths: list[str | Path], output: str | Path | None = None, fmt: str = "text",
               batch_size: int = 16, device: str = "cpu") -> tuple[list[Result], int]:
    """Transcribe files and folders; print or write txt/JSONL. Returns (results, number failed)."""
    from .recognizer import Recognizer

    rec = model if isinstance(model, Recognizer) else Recognizer.load(model, device)
    files = find_audio(paths)
    out = open(output, "w") if output else sys.stdout
    results = []
    try:
        for r in recognize_files(rec, files, batch_size, progress=output is not None):
            results.append(r)
            if fmt == "jsonl":
                out.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
            elif r.error is None:
                out.write(f"{r.path}\t{r.text}\n")
            out.flush()
    finally:
        if output:
            out.close()
    failed = [r for r in results if r.error is not None]
    for r in failed:
        print(f"FAILED {r.path}: {r.error}", file=sys.stderr)
    return results, len(failed)
