"""Writing files so that a kill at any moment leaves the old file or the new one, never half of
one; and JSON lines (manifests, reports, failure lists), read and written in one place.

Every file the toolkit writes for later use (model files, checkpoints, tokenizers, manifests,
LMs) goes through `atomic_write`: a temporary file in the same folder, fsync, then rename.
Files derived from installed packages (converted models, TTS assets) live under `cache_dir()`.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterable, Iterator


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """`with atomic_write(path) as f: f.write(...)`: the file appears complete, or not at all.
    Binary with mode="wb". The temporary name is unique, so concurrent writers (DDP ranks) never
    write into each other's file; the last rename wins."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj, path: str | Path) -> None:
    """torch.save, atomically."""
    import torch

    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def cache_dir() -> Path:
    """$ASR_CACHE, else $XDG_CACHE_HOME/asr, else ~/.cache/asr."""
    if os.environ.get("ASR_CACHE"):
        return Path(os.environ["ASR_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asr"


def write_text(path: str | Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text)


def read_jsonl(path: str | Path) -> list[dict]:
    """One JSON object a line (blank lines skipped); a malformed line is an error naming file and line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def jsonl_line(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Atomically: a reader never sees half a manifest."""
    with atomic_write(path) as f:
        f.writelines(jsonl_line(r) for r in rows)
