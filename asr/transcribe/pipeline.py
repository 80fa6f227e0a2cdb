"""Files and folders -> results: streamed, segmented, batched recognition that reports broken
files and carries on.

    search = Search(Recognizer.load("model.pt"), DecodeOptions.from_config(cfg, beam_size=5))
    for result in recognize(search, ["a.wav", "b.flac"], SegmentOptions(vad="energy")): ...

Every file is read block by block (`stream_audio`), brought to a working level (quiet speech is
lifted, as `normalize_level` says; training data is never touched) and cut into segments at pauses
(`Segmenter`, with the voice activity detector `SegmentOptions.vad`: silero, or energy), so an
hour-long recording costs no more memory than a minute. Besides files, the API takes bytes,
binary file objects and arrays or tensors with their sample rate. Segments of all inputs go
through the search in length-sorted batches; segments with no speech are never decoded, and those
the search hears no speech in (babble, reversed speech) are left out (`Result.rejected`). Each
input's result comes out, in input order, as soon as its last segment is decoded. Two bundles of
options travel by keyword, each checked where it is made: the search's (`DecodeOptions`) and the
segmentation's (`SegmentOptions`); the edges make them: `Transcriber` (the Python API,
`asr.load_model`), `transcribe` (the CLI's, which also writes the output), the service and evaluation.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import torch

from asr.audio.files import find_audio, scan_audio
from asr.audio.read import AudioError, audio_duration, from_array, load_audio, stream_audio
from asr.audio.segment import Segment, Segmenter, shortest_segment, stitch
from asr.audio.silero import make_vad
from asr.audio.vad import checked_vad
from asr.config import Config
from asr.decode.options import DecodeOptions
from asr.decode.task import Search
from asr.model.recognizer import Recognizer
from asr.results import Result, SegmentText
from asr.transcribe.batches import decode_segments
from asr.transcribe.live import LiveOptions, Stream

log = logging.getLogger(__name__)
LIVE_FIELDS = {f.name for f in dataclasses.fields(LiveOptions)}


@dataclass(frozen=True)
class SegmentOptions:
    """How recordings become batches of segments (None: the model's decode config, `settled`)."""

    max_segment: float | None = None  # longest segment in seconds; long recordings are cut at pauses
    vad: str | None = None  # speech detector: "silero" (energy if silero-vad is not installed) or "energy"
    batch_size: int | None = None  # segments per model call
    word_timestamps: bool = False  # words with times in each segment
    progress: bool = False  # a progress bar on stderr (shown on a terminal only)

    def __post_init__(self) -> None:
        if self.vad is not None:
            checked_vad(self.vad)
        if (self.batch_size is not None and self.batch_size < 1) or (self.max_segment is not None
                                                                     and self.max_segment <= 0):
            raise ValueError(f"batch_size must be at least 1 and max_segment positive (got {self.batch_size}, "
                             f"{self.max_segment})")

    def settled(self, cfg: Config) -> SegmentOptions:
        """These options with what they leave open taken from a model's config."""
        d = cfg.decode
        return dataclasses.replace(self, max_segment=self.max_segment or d.max_segment, vad=self.vad or d.vad,
                                   batch_size=self.batch_size or d.batch_size)


@dataclass
class Samples:
    """An array or tensor given to the API: read when its turn comes (see audio.from_array)."""

    data: np.ndarray | torch.Tensor  # (samples,) or (channels, samples)
    sample_rate: int
    name: str = "<array>"


# a file ("-": standard input), (file, offset, duration) for a slice of one, bytes, a binary file object, or samples
Source = str | tuple[str, float, float] | bytes | BinaryIO | Samples
Input = str | os.PathLike | bytes | bytearray | BinaryIO | np.ndarray | torch.Tensor  # what Transcriber takes


def _segments(
    sources: list[Source], sample_rate: int, segmenter: Segmenter
) -> Iterator[tuple[int, Segment | None, str | None]]:
    """(source index, segment, None) for each segment of each source, then (source index, None,
    error or None) when the source is done. A file that breaks part-way reports its error."""
    for i, src in enumerate(sources):
        try:
            for seg in segmenter.segments(_blocks(src, sample_rate)):
                yield i, seg, None
        except AudioError as e:
            yield i, None, e.reason
        else:
            yield i, None, None


def _blocks(src: Source, sample_rate: int) -> Iterator[np.ndarray]:
    """The audio of a source, at a working level: detection and features then treat speech
    recorded at -50 dBFS as they treat speech at -6 (the gain only falls within a file, so a
    long one still streams)."""
    if isinstance(src, tuple):  # a slice of a recording (a Kaldi segment): read just that
        return iter([load_audio(src[0], sample_rate, offset=src[1], duration=src[2], normalize=True)])
    if isinstance(src, Samples):
        return iter([from_array(src.data, src.sample_rate, sample_rate, src.name, normalize=True)])
    return stream_audio(src, sample_rate, normalize=True)


def source_name(src: Source) -> str:
    """What a result and its errors call the source."""
    if isinstance(src, (str, Samples)):
        return src if isinstance(src, str) else src.name
    if isinstance(src, tuple):
        return src[0]
    if isinstance(src, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return str(getattr(src, "name", "<file object>"))


class _InOrder:
    """Collects decoded segments per file and hands back finished files in input order."""

    def __init__(self, sources: list[Source]):
        self.results = [Result(source_name(p)) for p in sources]
        self.pieces: dict[int, list[SegmentText]] = {}
        self.ended: dict[int, str | None] = {}  # file -> error, once all its segments have been read
        self.outstanding: dict[int, int] = {}  # file -> segments read but not yet decoded
        self.next = 0

    def expect(self, i: int) -> None:
        self.outstanding[i] = self.outstanding.get(i, 0) + 1

    def add(self, i: int, text: SegmentText) -> None:
        self.pieces.setdefault(i, []).append(text)
        self.outstanding[i] -= 1

    def finished(self) -> Iterator[Result]:
        while self.next in self.ended and not self.outstanding.get(self.next):
            r = self.results[self.next]
            r.error = self.ended.pop(self.next)
            segs = self.pieces.pop(self.next, [])
            if r.error is None:
                segs = stitch(sorted(segs, key=lambda s: s.start))  # rejected ones too: they hold the seams
                r.segments = [s for s in segs if s.rejected is None]
                r.rejected = [s for s in segs if s.rejected is not None]
                r.text = " ".join(s.text for s in r.segments if s.text)
                r.language, r.language_probability = _language(r.segments or r.rejected)
            else:
                log.warning("cannot transcribe %s: %s", r.path, r.error)
            yield r
            self.next += 1


def _language(segments: list[SegmentText]) -> tuple[str | None, float | None]:
    """A file's language: the one most of its segments' time was decoded in, with the detector's mean
    probability over those segments (None where it was forced)."""
    seconds: dict[str, float] = {}
    for s in segments:
        if s.language is not None:
            seconds[s.language] = seconds.get(s.language, 0.0) + s.end - s.start
    if not seconds:
        return None, None
    language = max(seconds, key=seconds.get)
    probs = [s.language_probability for s in segments if s.language == language and s.language_probability is not None]
    return language, (sum(probs) / len(probs) if probs else None)


def _progress_bar(sources: list[Source], show: bool):
    from tqdm import tqdm

    total = 0.0
    for p in sources if show else []:
        try:
            total += audio_duration(p) if isinstance(p, str) else p[2] if isinstance(p, tuple) else 0.0
        except AudioError:
            pass
    return tqdm(total=round(total), unit="s", desc="audio", disable=not (show and sys.stderr.isatty()), leave=False)


def recognize(search: Search, sources: list[Source], options: SegmentOptions = SegmentOptions()) -> Iterator[Result]:
    """Yield one Result per source, in order. Unreadable ones give a Result with `error` set; the
    others go on. `options` shape the segments (what they leave open: the model's decode config)."""
    o = options.settled(search.rec.cfg)
    sr = search.rec.cfg.features.sample_rate
    # a model that pads its input to a window cuts late (shortest_segment); one that keeps its place in
    # a window of many utterances (Whisper with timestamps) fills its windows
    window = search.rec.cfg.features.pad_to_seconds
    padded = window > 0
    shortest = shortest_segment(o.max_segment, window)
    segmenter = Segmenter(sr, o.max_segment, min_segment=shortest, fill=padded and search.rules.timestamps is not None,
                          detector=make_vad(o.vad, sr))
    files, pending = _InOrder(sources), []
    bar = _progress_bar(sources, o.progress)
    for i, seg, err in _segments(sources, sr, segmenter):
        if seg is None:
            files.ended[i] = err
        else:
            files.results[i].duration = max(files.results[i].duration, seg.end)
            if seg.has_speech():
                pending.append((i, seg))
                files.expect(i)
            else:
                bar.update(len(seg.samples) / sr)
        if len(pending) >= o.batch_size * 4 or (seg is None and i == len(sources) - 1):
            for j, done_seg, text in decode_segments(search, pending, o.batch_size, o.word_timestamps):
                files.add(j, text)
                bar.update(len(done_seg.samples) / sr)
            pending.clear()
        yield from files.finished()
    bar.close()


class Transcriber:
    """A model ready to transcribe files: what `asr.load_model` returns.

        model = asr.load_model("model.pt", beam_size=5)
        for r in model.transcribe(["a.wav", "folder/", wav_bytes, samples], sample_rate=44100): ...
    """

    def __init__(self, rec: Recognizer, **options):
        self.recognizer = rec
        self.search = Search(rec, DecodeOptions.from_config(rec.cfg, **options))

    def transcribe(self, audio: Input | list[Input], sample_rate: int | None = None, batch_size: int | None = None,
                   word_timestamps: bool = False, max_segment: float | None = None, vad: str | None = None,
                   **options) -> Iterator[Result]:
        """One Result per input, lazily (a generator), in input order. `audio`: a path ("-" reads
        standard input), a folder (searched for audio files: one result each), bytes of an audio
        file, a binary file object, a numpy array or torch tensor of samples at `sample_rate`
        (default: the model's, 16 kHz; shape (samples,) or (channels, samples)), or a list of
        any of these. `word_timestamps`, `max_segment`, `vad` ("silero" or "energy") and
        `batch_size` shape the segments (`SegmentOptions`; None: the model's decode config).
        `options` override this model's decode options for this call. Options and input types
        are checked before any audio is read."""
        search = self.search
        if options:
            search = Search(self.recognizer, search.options.replaced(**options))
        segments = SegmentOptions(max_segment=max_segment, vad=vad, batch_size=batch_size,
                                  word_timestamps=word_timestamps)
        rate = sample_rate or self.recognizer.cfg.features.sample_rate
        sources = [s for x in (audio if isinstance(audio, (list, tuple)) else [audio]) for s in _sources(x, rate)]
        return recognize(search, sources, segments)


    def stream(self, **options) -> Stream:
        """A live stream (`asr.transcribe.live`): feed it blocks of samples at the model's rate,
        get partial and final text as events. `options`: `LiveOptions` fields (vad, update_every,
        end_silence, max_utterance, ...) and decode options for this stream (language, prompt, ...)."""
        live = {k: options.pop(k) for k in [k for k in options if k in LIVE_FIELDS]}
        search = Search(self.recognizer, self.search.options.replaced(**options)) if options else self.search
        return Stream(search, LiveOptions(**live))


def _sources(x: Input, sample_rate: int) -> list[Source]:
    """One input of the API -> its sources: a folder's audio files, or the input itself."""
    if isinstance(x, (str, os.PathLike)):
        return find_audio([x])
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return [Samples(x, sample_rate, "<tensor>" if isinstance(x, torch.Tensor) else "<array>")]
    if isinstance(x, (bytes, bytearray, memoryview)) or hasattr(x, "read"):
        return [x]
    raise TypeError(f"cannot transcribe a {type(x).__name__}: give paths, folders, bytes, binary file objects, "
                    "numpy arrays or torch tensors")


def transcribe(model: str | Path | Recognizer, paths: list[str | Path], *, output: str | Path | None = None,
               fmt: str = "text", segments: SegmentOptions = SegmentOptions(),
               **options) -> tuple[list[Result], int]:
    """Transcribe files and folders ("-": standard input) and write the results (see
    asr.transcribe.writers for the formats). `segments` shape the segments; `options` override the
    model's decode config (beam_size=1, lm="x.arpa", ...): a name that is not a decode option is an
    error before any audio is read. Folders are searched for audio files; what a search skips is
    said in one line on stderr (and in the JSON formats). Returns (results, number failed)."""
    from asr.model.catalogue import load
    from asr.transcribe.writers import ResultWriter

    rec = model if isinstance(model, Recognizer) else load(model, "auto")
    search = Search(rec, DecodeOptions.from_config(rec.cfg, **options))
    found = scan_audio(paths)
    if found.skipped:
        print(f"asr transcribe: {found.summary()}", file=sys.stderr)
    results = []
    with ResultWriter(fmt, output, skipped=found.skipped) as writer:
        segments = dataclasses.replace(segments, word_timestamps=segments.word_timestamps or writer.wants_words)
        for r in recognize(search, found.files, segments):
            results.append(r)
            writer.write(r)
    return results, sum(r.error is not None for r in results)
