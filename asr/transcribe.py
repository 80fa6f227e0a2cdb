"""Files and folders -> text: streamed, segmented, batched recognition that reports broken
files and carries on.

Every file is read block by block (`stream_audio`) and cut into segments at pauses (`Segmenter`),
so an hour-long recording costs no more memory than a minute. Segments of all files go through
the recognizer in length-sorted batches; segments with no speech are never decoded. Each file's
result comes out, in order, as soon as its last segment is decoded.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from .audio import AudioError, audio_duration, load_audio, stream_audio
from .ctc import align_tokens
from .segment import Segment, Segmenter, SegmentText, Word, has_speech, stitch

log = logging.getLogger(__name__)
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf"}


@dataclass
class Result:
    path: str
    text: str | None = None
    duration: float = 0.0
    error: str | None = None  # why the file could not be transcribed
    segments: list[SegmentText] = field(default_factory=list)


def find_audio(paths: Iterable[str | Path]) -> list[str]:
    """Files as given; folders searched recursively for audio extensions (sorted)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            # a dangling link is listed too: it is reported as missing, not silently skipped
            out += sorted(str(f) for f in p.rglob("*")
                          if f.suffix.lower() in AUDIO_EXTENSIONS and (f.is_file() or f.is_symlink()))
        else:
            out.append(str(p))
    return out


def words_from_alignment(rec, tokens: list[int], ctc_logits: torch.Tensor, start: float) -> list[Word] | None:
    """Word times from the CTC forced alignment of a transcript (None if it cannot be aligned)."""
    spans = align_tokens(ctc_logits, tokens)
    if spans is None:
        return None
    fs = rec.frame_seconds
    words: list[Word] = []
    scores: list[float] = []
    for span in spans:
        piece = rec.tokenizer.piece(span.token)
        if piece.startswith(" ") or not words:
            if words:
                words[-1].score = float(np.mean(scores))
            text = piece.strip()
            if not text:  # a lone space (character tokenizer): the next token starts the word
                continue
            words.append(Word(text, start + span.start * fs, start + span.end * fs, 0.0))
            scores = [span.score]
        else:
            words[-1].text += piece
            words[-1].end = start + span.end * fs
            scores.append(span.score)
    if words:
        words[-1].score = float(np.mean(scores))
    return words


class _Batcher:
    """Collects segments, decodes them in length-sorted batches, and hands back SegmentTexts."""

    def __init__(self, rec, batch_size: int, word_timestamps: bool, options: dict):
        self.rec, self.batch_size, self.word_timestamps, self.options = rec, batch_size, word_timestamps, options

    def decode(self, items: list[tuple[int, Segment]]) -> Iterator[tuple[int, Segment, SegmentText]]:
        order = sorted(range(len(items)), key=lambda k: len(items[k][1].samples))
        for b in range(0, len(order), self.batch_size):
            batch = [items[k] for k in order[b : b + self.batch_size]]
            lens = torch.tensor([len(s.samples) for _, s in batch])
            wav = torch.zeros(len(batch), int(lens.max()))
            for j, (_, s) in enumerate(batch):
                wav[j, : len(s.samples)] = torch.from_numpy(s.samples)
            memory, mem_lens, ctc_logits = self.rec.encode(wav, lens)
            for j, ((i, seg), nbest) in enumerate(zip(batch, self.rec.search(memory, mem_lens, ctc_logits, **self.options))):
                best = nbest[0]
                out = SegmentText(seg.start, seg.end, best.text, best.score, None, seg.overlap,
                                  [(h.text, h.score) for h in nbest[1:]] or None)
                if self.word_timestamps or seg.overlap or seg.overlap_after:
                    out.words = words_from_alignment(self.rec, best.tokens, ctc_logits[j, : int(mem_lens[j])].cpu(), seg.start)
                yield i, seg, out


Source = str | tuple[str, float, float]  # a file, or (file, offset, duration) for a slice of one


def _segments(sources: list[Source], sample_rate: int, segmenter: Segmenter) -> Iterator[tuple[int, Segment | None, str | None]]:
    """(source index, segment, None) for each segment of each source, then (source index, None,
    error or None) when the source is done. A file that breaks part-way reports its error."""
    for i, src in enumerate(sources):
        try:
            if isinstance(src, str):
                blocks = stream_audio(src, sample_rate)
            else:  # a slice of a recording (a Kaldi segment): read just that
                blocks = iter([load_audio(src[0], sample_rate, offset=src[1], duration=src[2])])
            for seg in segmenter.segments(blocks):
                yield i, seg, None
        except AudioError as e:
            yield i, None, e.reason
        else:
            yield i, None, None


def recognize_files(rec, paths: list[Source], batch_size: int = 16, word_timestamps: bool = False,
                    progress: bool = False, max_segment: float | None = None, **options) -> Iterator[Result]:
    """Yield one Result per path (or slice), in order. Unreadable files give a Result with `error`
    set. `options` override the model's decode config (beam_size, ctc_weight, ...)."""
    from tqdm import tqdm

    sr = rec.cfg.features.sample_rate
    segmenter = Segmenter(sr, max_segment or rec.cfg.decode.max_segment)
    batcher = _Batcher(rec, batch_size, word_timestamps, options)
    results = [Result(p if isinstance(p, str) else p[0]) for p in paths]
    pieces: dict[int, list[SegmentText]] = {}
    ended: dict[int, str | None] = {}  # file -> error, once all its segments have been read
    pending: list[tuple[int, Segment]] = []
    outstanding: dict[int, int] = {}  # file -> segments read but not yet decoded
    next_out = 0
    total = 0.0
    if progress:
        for p in paths:
            try:
                total += audio_duration(p) if isinstance(p, str) else p[2]
            except AudioError:
                pass
    bar = tqdm(total=round(total), unit="s", desc="audio", disable=not (progress and sys.stderr.isatty()), leave=False)

    def finished() -> Iterator[Result]:
        nonlocal next_out
        while next_out in ended and not outstanding.get(next_out):
            r = results[next_out]
            r.error = ended.pop(next_out)
            segs = pieces.pop(next_out, [])
            if r.error is None:
                r.segments = stitch(sorted(segs, key=lambda s: s.start))
                r.text = " ".join(s.text for s in r.segments if s.text)
            else:
                log.warning("cannot transcribe %s: %s", r.path, r.error)
            yield r
            next_out += 1

    def flush() -> None:
        for i, seg, text in batcher.decode(pending):
            pieces.setdefault(i, []).append(text)
            outstanding[i] -= 1
            bar.update(len(seg.samples) / sr)
        pending.clear()

    for i, seg, err in _segments(paths, sr, segmenter):
        if seg is None:
            ended[i] = err
        else:
            results[i].duration = max(results[i].duration, seg.end)
            if has_speech(seg.samples, sr):
                pending.append((i, seg))
                outstanding[i] = outstanding.get(i, 0) + 1
            else:
                bar.update(len(seg.samples) / sr)
        if len(pending) >= batch_size * 4:
            flush()
        yield from finished()
    flush()
    yield from finished()
    bar.close()


def transcribe(model, paths: list[str | Path], output: str | Path | None = None, fmt: str = "text",
               batch_size: int = 16, device: str = "cpu", word_timestamps: bool = False,
               **options) -> tuple[list[Result], int]:
    """Transcribe files and folders and write the results (see asr.writers for the formats).
    Returns (results, number that failed)."""
    from .recognizer import Recognizer
    from .writers import ResultWriter

    rec = model if isinstance(model, Recognizer) else Recognizer.load(model, device)
    files = find_audio(paths)
    results = []
    with ResultWriter(fmt, output) as writer:
        word_timestamps = word_timestamps or writer.wants_words
        for r in recognize_files(rec, files, batch_size, word_timestamps, progress=output is not None, **options):
            results.append(r)
            writer.write(r)
    return results, sum(r.error is not None for r in results)
