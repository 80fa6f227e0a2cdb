"""Long recordings -> segments the model can decode, and their transcripts -> one transcript.

Voice activity is decided per 10 ms frame (25 ms long) by one of two detectors, each scoring a
stretch of audio once and judging frames from the scores:
- `SileroVAD` (`asr.audio.silero`; transcription's default, `DecodeConfig.vad`): silero-vad's speech
  probability per 32 ms chunk, run once over the recording as it streams in. It says "no speech" for noise, music,
  tones and clicks, which the energy detector takes for speech. It hears speech in babble and in
  reversed speech too (they are made of speech sounds): only the search can reject those
  (`decoding.non_speech`).
- `EnergyVAD`: a frame is speech when its energy in the speech band is `margin_db` above the quiet
  floor of its stretch (the 10th-percentile frame energy) and above an absolute floor. It tells
  pauses from speech in clean and stationary-noise recordings, and needs no model; it stands in
  when silero-vad is not installed.
Segments with no speech are never decoded, so nothing is invented there.

`Segmenter` cuts a stream of audio blocks into pieces like the utterances a model is trained on:
at the first pause of at least `sentence_pause` seconds once a segment is `min_segment` long,
else in the longest pause before `max_segment`. A stretch with no pause at all is cut at
`max_segment`, and the next segment starts `overlap` seconds earlier; `stitch` then keeps each
word from the side that holds the middle of the overlap, by the words' times. Each segment is
trimmed at its cuts to its speech plus `pad` seconds of silence, the edges of a training clip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from asr.audio.vad import FRAME, HOP, Detector, EnergyVAD, frame_energy_db, n_frames, pauses, speech_frames
from asr.results import SegmentText

log = logging.getLogger(__name__)


@dataclass
class Segment:
    start: float  # seconds into the recording
    samples: np.ndarray
    sample_rate: int
    overlap: float = 0.0  # seconds shared with the previous segment (a cut with no pause to use)
    overlap_after: float = 0.0  # ... and with the next one
    speech_seconds: float | None = None  # how much of it the segmenter's detector called speech
    speech_prob: float | None = None  # the detector's mean speech probability over it (silero only)

    def has_speech(self, min_speech: float = 0.2, margin_db: float = 6.0) -> bool:
        """At least `min_speech` seconds of speech frames: as the segmenter's detector found, else
        by energy against the segment's own quiet floor."""
        seconds = self.speech_seconds
        if seconds is None:
            seconds = int(speech_frames(frame_energy_db(self.samples, self.sample_rate), margin_db).sum()) * HOP
        return seconds >= min_speech

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / self.sample_rate

    def tail(self, seconds: float) -> "Segment":
        """The segment from `seconds` into it to its end (its speech judged again, by energy)."""
        cut = min(len(self.samples), round(seconds * self.sample_rate))
        return Segment(self.start + cut / self.sample_rate, self.samples[cut:], self.sample_rate,
                       overlap_after=self.overlap_after)


@dataclass
class Segmenter:
    sample_rate: int = 16000
    max_segment: float = 20.0  # seconds; keep near the longest utterances the model was trained on
    min_segment: float = 0.5  # no cut before this
    min_pause: float = 0.2  # a pause at least this long is a place to cut
    sentence_pause: float = 0.5  # ... and one this long ends a segment as soon as it may (sentences)
    overlap: float = 2.0  # shared by two segments cut where there is no pause
    margin_db: float = 6.0  # the energy detector's margin above the quiet floor
    pad: float = 0.15  # silence kept before the first and after the last speech frame, as in training clips
    # cut at the last sentence-long pause before max_segment, not the first after min_segment: fewer,
    # fuller segments (for a model that pays per padded window and keeps its place in it: Whisper with timestamps)
    fill: bool = False
    # which detector tells speech from pauses: None is the energy detector (no model, no torch); transcription
    # passes its own (`asr.audio.silero.make_vad(DecodeConfig.vad, ...)`: silero by default)
    detector: Detector | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.detector is None:
            self.detector = EnergyVAD(self.sample_rate, self.margin_db)

    def cut(
        self, window: np.ndarray, sentences_only: bool = False, scores: np.ndarray | None = None
    ) -> tuple[int, int]:
        """Where to end a segment starting at window[0] (sample index), and where the next one
        starts: the middle of the first sentence-long pause in range (with `fill`: the last), else
        of the longest pause in range, else max_segment with an overlap. With `sentences_only` (the
        end of a recording, where nothing forces a cut) only a sentence-long pause counts. `scores`: the
        detector's frame scores of the window, when the caller has them already (else the window
        is scored as a recording of its own)."""
        if scores is None:
            self.detector.start()
            self.detector.feed(window, last=True)
            scores = self.detector.scores(window, 0)
        speech = self.detector.speech(scores)
        lo, hi = self.min_segment / HOP, self.max_segment / HOP
        best = sentence = None  # (pause length, middle frame)
        for s, e in pauses(speech, round(self.min_pause / HOP)):
            mid = (s + e) // 2
            if not lo <= mid <= hi:
                continue
            if e - s >= self.sentence_pause / HOP:
                best = (e - s, mid)
                if self.fill:
                    sentence = best
                    continue
                break
            if not sentences_only and (best is None or e - s >= best[0]):
                best = (e - s, mid)
        best = sentence or best
        if best is not None:
            at = min(len(window), round(best[1] * HOP * self.sample_rate) + int(FRAME * self.sample_rate) // 2)
            return at, at
        end = len(window)
        return end, end - int(self.overlap * self.sample_rate)

    def segments(self, blocks: Iterable[np.ndarray]) -> Iterator[Segment]:
        """Consecutive audio blocks (any sizes) -> segments of at most max_segment seconds."""
        limit = int(self.max_segment * self.sample_rate)
        buf, start, overlap = np.zeros(0, dtype=np.float32), 0, 0.0
        self.detector.start()
        for block in blocks:
            buf = np.concatenate([buf, block])
            self.detector.feed(block)
            while len(buf) > limit:
                scores = self.detector.scores(buf[:limit], start)  # once per window: cut, then trim
                end, nxt = self.cut(buf[:limit], scores=scores)
                after = (end - nxt) / self.sample_rate
                yield self.trimmed(Segment(start / self.sample_rate, buf[:end], self.sample_rate, overlap, after),
                                   scores, head=start > 0)
                overlap = after
                buf, start = buf[nxt:], start + nxt
        scores = None
        self.detector.feed(np.zeros(0, np.float32), last=True)
        while len(buf) > self.min_segment * self.sample_rate:  # the rest: cut at pauses only
            scores = self.detector.scores(buf, start)
            end, nxt = self.cut(buf, sentences_only=True, scores=scores)
            if end != nxt or end >= len(buf):
                break
            yield self.trimmed(Segment(start / self.sample_rate, buf[:end], self.sample_rate, overlap), scores,
                               head=start > 0)
            overlap = 0.0
            buf, start, scores = buf[end:], start + end, None
        if len(buf) or start == 0:
            scores = self.detector.scores(buf, start) if scores is None else scores
            yield self.trimmed(Segment(start / self.sample_rate, buf, self.sample_rate, overlap), scores,
                               head=start > 0, tail=False)

    def trimmed(self, seg: Segment, scores: np.ndarray, head: bool = True, tail: bool = True) -> Segment:
        """The segment without the silence beyond `pad` before its first and after its last
        speech frame, so a model trained on clips sees the edges it learned (a cut in the middle
        of a long pause would otherwise hand it half a second of silence or more). Only sides made
        by a cut are trimmed (`head`, `tail`): the recording's own start and end stay as they are,
        so a clip shorter than a segment is decoded exactly as given. Speech is told from pauses
        by the detector's scores of the window the cut was chosen in (`scores`; it starts where
        the segment does): for energy, against the window's quiet floor, not the segment's alone,
        which may be almost all speech. A side shared with a neighbour (an overlap cut, in speech)
        is left as it is; so is a segment with no speech, which the caller skips. The segment
        keeps how much speech it holds and its speech probability, from its own frames' scores
        (when its frames line up with the window's; else has_speech judges it by energy)."""
        speech = self.detector.speech(scores)
        win, hop = int(FRAME * self.sample_rate), int(HOP * self.sample_rate)
        idx = np.nonzero(speech[: n_frames(len(seg.samples), self.sample_rate)])[0]
        a, b = 0, len(seg.samples)
        if len(idx):
            pad = round(self.pad * self.sample_rate)
            a = 0 if seg.overlap or not head else max(0, round(idx[0] * HOP * self.sample_rate) - pad)
            if tail and not seg.overlap_after:
                b = min(b, round((idx[-1] * HOP + FRAME) * self.sample_rate) + pad)
        out = Segment(seg.start + a / self.sample_rate, seg.samples[a:b], self.sample_rate, seg.overlap,
                      seg.overlap_after)
        if a % hop == 0 and b - a >= win:  # the segment's frames are frames of the window
            own = scores[a // hop : a // hop + (b - a - win) // hop + 1]
            out.speech_seconds = int(self.detector.speech(own).sum()) * HOP
            out.speech_prob = self.detector.probability(own)
        return out


def shortest_segment(longest: float, window: float) -> float:
    """Where a recording may first be cut. A model that pads every input to a `window` of seconds
    (Whisper's 30 s) pays the same for any segment up to it and hears more context in a longer one:
    no cut before two thirds of the longest segment it can take. Other models (0 window): Segmenter's
    own shortest. Not a shortest window (features.min_seconds): the student that has one learned on
    single utterances, and segments of several read far worse (whisper-tiny.en-any on a 3-minute
    real stream: 19.3% WER cut late, 6.8% cut at the first pause; recipes/distill/README.md)."""
    return 2 * min(longest, window) / 3 if window > 0 else Segmenter.min_segment


def stitch(pieces: list[SegmentText]) -> list[SegmentText]:
    """Resolve overlapping cuts: of the words two neighbouring segments both heard, keep each
    from the side holding the middle of the overlap (by word centre). Without word times (no
    alignment was possible), the longest run of words both sides share marks the seam."""
    out: list[SegmentText] = []
    for seg in pieces:
        if out and seg.overlap > 0:
            prev = out[-1]
            middle = seg.start + seg.overlap / 2
            if prev.words is not None and seg.words is not None:
                prev.words = [w for w in prev.words if (w.start + w.end) / 2 < middle]
                seg.words = [w for w in seg.words if (w.start + w.end) / 2 >= middle]
                prev.text = " ".join(w.text for w in prev.words)
                seg.text = " ".join(w.text for w in seg.words)
            else:
                prev.text, seg.text = _merge_by_text(prev.text, seg.text)
                prev.words = seg.words = None
            prev.end = middle
            seg.start = middle
        out.append(seg)
    return out


def _merge_by_text(left: str, right: str, window: int = 12) -> tuple[str, str]:
    """Drop from `right` the words it repeats from the end of `left` (the longest shared run
    of words within `window` words of the seam)."""
    from difflib import SequenceMatcher

    a, b = left.split(), right.split()
    tail, head = a[-window:], b[:window]
    m = SequenceMatcher(None, tail, head, autojunk=False).find_longest_match(0, len(tail), 0, len(head))
    if m.size == 0:
        return left, right
    cut_a = len(a) - len(tail) + m.a + m.size  # keep left up to the end of the shared run
    return " ".join(a[:cut_a]), " ".join(b[m.b + m.size :])
