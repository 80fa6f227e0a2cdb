"""Transcription results -> text, JSON lines, JSON, SRT, WebVTT and TSV.

`text` and `jsonl` stream one line per input file (to standard output or one file). `json`,
`srt`, `vtt` and `tsv` (Whisper's: start and end in integer milliseconds, text) write one file
per input into an output folder, named after the input; `all` writes each of those and a .txt.
Subtitle cues come from word times (split at about 7 seconds or 42 characters, and at every
segment boundary); without word times, one cue per segment.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from asr.results import SegmentText

STREAMED = ("text", "jsonl")
PER_FILE = ("json", "srt", "vtt", "tsv")
FORMATS = STREAMED + PER_FILE + ("all",)
ALL = ("txt",) + PER_FILE  # what `all` writes per input


def timestamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def cues(segments: list[SegmentText], max_seconds: float = 7.0, max_chars: int = 42) -> list[tuple[float, float, str]]:
    """(start, end, text) subtitle cues."""
    out = []
    for seg in segments:
        if not seg.text:
            continue
        if not seg.words:
            out.append((seg.start, seg.end, seg.text))
            continue
        cur: list = []
        for w in seg.words:
            if cur and (w.end - cur[0].start > max_seconds or len(" ".join(x.text for x in cur + [w])) > max_chars):
                out.append((cur[0].start, cur[-1].end, " ".join(x.text for x in cur)))
                cur = []
            cur.append(w)
        if cur:
            out.append((cur[0].start, cur[-1].end, " ".join(x.text for x in cur)))
    return out


def to_srt(segments: list[SegmentText]) -> str:
    blocks = [f"{n}\n{timestamp(a, ',')} --> {timestamp(b, ',')}\n{text}\n" for n, (a, b, text) in
              enumerate(cues(segments), 1)]
    return "\n".join(blocks)


def to_vtt(segments: list[SegmentText]) -> str:
    blocks = [f"{timestamp(a, '.')} --> {timestamp(b, '.')}\n{text}\n" for a, b, text in cues(segments)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_tsv(segments: list[SegmentText]) -> str:
    rows = [
        f"{round(1000 * s.start)}\t{round(1000 * s.end)}\t{s.text.replace(chr(9), ' ')}\n" for s in segments if s.text
    ]
    return "start\tend\ttext\n" + "".join(rows)


def render(fmt: str, result) -> str:
    """One result as a whole file in `fmt` (one of ALL)."""
    if fmt == "json":
        return json.dumps(to_dict(result), ensure_ascii=False, indent=1) + "\n"
    if fmt == "txt":
        return (result.text or "") + "\n"
    return {"srt": to_srt, "vtt": to_vtt, "tsv": to_tsv}[fmt](result.segments)


def to_dict(result) -> dict:
    """Everything about one file: text, duration, error, and segments with scores and words."""
    out = {"path": result.path, "text": result.text, "duration": round(result.duration, 3), "error": result.error,
           "segments": [_round(asdict(s)) for s in result.segments]}
    if result.language is not None:  # multilingual models
        out |= {"language": result.language, "language_probability": _round(result.language_probability)}
    return out


def _round(x):
    if isinstance(x, float):
        return round(x, 3) if x == x else None  # NaN (greedy has no score) -> null
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v) for v in x]
    return x


class ResultWriter:
    """Writes results as they come, in one of FORMATS; lists failures on standard error."""

    def __init__(self, fmt: str, output: str | Path | None, skipped: list[tuple[str, str]] = ()):
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r} (one of {', '.join(FORMATS)})")
        if fmt not in STREAMED and not output:
            raise ValueError(f"format {fmt} writes one file per input: give an output folder (-o DIR)")
        self.fmt, self.output = fmt, Path(output) if output else None
        self.per_file = ALL if fmt == "all" else (fmt,)
        self.wants_words = fmt in ("srt", "vtt", "all")
        self._names: set[str] = set()
        self._stream = None
        self.skipped = list(skipped)  # (path, why) of what a folder walk passed over: in the JSON formats too

    def __enter__(self) -> "ResultWriter":
        if self.fmt in STREAMED:
            self._stream = open(self.output, "w") if self.output else sys.stdout
        else:
            self.output.mkdir(parents=True, exist_ok=True)
        skipped = [{"path": path, "skipped": why} for path, why in self.skipped]
        if skipped and self.fmt == "jsonl":
            self._stream.write("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in skipped))
        elif skipped and self.fmt in ("json", "all"):
            self._names.add("skipped")  # an input named skipped.wav becomes skipped-2.json
            (self.output / "skipped.json").write_text(json.dumps(skipped, ensure_ascii=False, indent=1) + "\n")
        return self

    def __exit__(self, *exc) -> None:
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()

    def write(self, result) -> None:
        if result.error is not None:
            print(f"FAILED {result.path}: {result.error}", file=sys.stderr)
        if self.fmt == "jsonl":
            self._stream.write(json.dumps(to_dict(result), ensure_ascii=False) + "\n")
        elif self.fmt == "text":
            if result.error is None:
                self._stream.write(f"{result.path}\t{result.text}\n")
        elif result.error is None:
            name = self._name(result.path)
            for fmt in self.per_file:
                (self.output / f"{name}.{fmt}").write_text(render(fmt, result))
        if self._stream is not None:
            self._stream.flush()

    def _name(self, path: str) -> str:
        """The input's stem, made unique (two inputs a.wav in different folders: a, a-2; standard
        input, bytes and arrays: stdin, bytes, array)."""
        stem, n = ("stdin" if path == "-" else Path(path).stem.strip("<>")) or "audio", 1
        name = stem
        while name in self._names:
            n += 1
            name = f"{stem}-{n}"
        self._names.add(name)
        return name
