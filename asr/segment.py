"""Long recordings -> segments the model can decode, and their transcripts -> one transcript.

Voice activity is energy-based: a 25 ms frame is speech when its energy in the speech band is
`margin_db` above the quiet floor of its stretch of audio (the 10th-percentile frame energy) and
above an absolute floor.
That tells pauses from speech in clean and stationary-noise recordings alike, and says "nothing
here" for silence or steady noise, so those are never decoded (and nothing is invented there).

`Segmenter` cuts a stream of audio blocks into pieces like the utterances a model is trained on:
at the first pause of at least `sentence_pause` seconds once a segment is `min_segment` long,
else in the longest pause before `max_segment`. A stretch with no pause at all is cut at
`max_segment`, and the next segment starts `overlap` seconds earlier; `stitch` then keeps each
word from the side that holds the middle of the overlap, by the words' times. Each segment is
trimmed at its cuts to its speech plus `pad` seconds of silence, the edges of a training clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from .results import SegmentText

FRAME, HOP = 0.025, 0.01  # seconds


@dataclass
class Segment:
    start: float  # seconds into the recording
    samples: np.ndarray
    sample_rate: int
    overlap: float = 0.0  # seconds shared with the previous segment (a cut with no pause to use)
    overlap_after: float = 0.0  # ... and with the next one
    energy_db: np.ndarray | None = None  # speech-band energy of its frames, when already computed

    def has_speech(self, min_speech: float = 0.2, margin_db: float = 6.0) -> bool:
        """At least `min_speech` seconds of speech frames, against the segment's own quiet floor."""
        energy = self.energy_db if self.energy_db is not None else frame_energy_db(self.samples, self.sample_rate)
        return int(speech_frames(energy, margin_db).sum()) * HOP >= min_speech

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / self.sample_rate


def frame_energy_db(wav: np.ndarray, sample_rate: int, band: tuple[float, float] = (250.0, 4000.0)) -> np.ndarray:
    """Energy in the speech band of each 25 ms frame every 10 ms, in dB relative to full scale.
    Band-limited, so rumble and hiss (most of the energy of brown or blue noise) do not count."""
    win, hop = int(FRAME * sample_rate), int(HOP * sample_rate)
    if len(wav) < win:
        wav = np.pad(wav, (0, win - len(wav)))
    n_fft = 1 << (win - 1).bit_length()
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    keep = (freqs >= band[0]) & (freqs <= band[1])
    window = np.hanning(win).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(wav, win)[::hop]
    out = np.empty(len(frames))
    for i in range(0, len(frames), 4096):  # in chunks: bounded memory for hour-long audio
        spec = np.abs(np.fft.rfft(frames[i : i + 4096] * window, n_fft, axis=1)[:, keep]) ** 2
        out[i : i + 4096] = spec.sum(1) * 2 / (win * (window**2).mean() * win)
    return 10 * np.log10(out + 1e-12)


def speech_frames(energy_db: np.ndarray, margin_db: float = 6.0, floor_db: float = -55.0) -> np.ndarray:
    """Which frames are speech: well above the stretch's quiet floor, and not near digital silence."""
    quiet = np.percentile(energy_db, 10)
    return (energy_db > quiet + margin_db) & (energy_db > floor_db)


def has_speech(wav: np.ndarray, sample_rate: int, min_speech: float = 0.2, margin_db: float = 6.0) -> bool:
    """At least `min_speech` seconds of speech frames."""
    return Segment(0.0, wav, sample_rate).has_speech(min_speech, margin_db)


def pauses(speech: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """(first, last + 1) frame of each run of non-speech at least `min_frames` long."""
    edges = np.diff(np.concatenate([[1], speech.astype(np.int8), [1]]))
    starts, ends = np.nonzero(edges == -1)[0], np.nonzero(edges == 1)[0]
    return [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= min_frames]


@dataclass
class Segmenter:
    sample_rate: int = 16000
    max_segment: float = 20.0  # seconds; keep near the longest utterances the model was trained on
    min_segment: float = 0.5  # no cut before this
    min_pause: float = 0.2  # a pause at least this long is a place to cut
    sentence_pause: float = 0.5  # ... and one this long ends a segment as soon as it may (sentences)
    overlap: float = 2.0  # shared by two segments cut where there is no pause
    margin_db: float = 6.0
    pad: float = 0.15  # silence kept before the first and after the last speech frame, as in training clips

    def cut(self, window: np.ndarray, sentences_only: bool = False, energy: np.ndarray | None = None) -> tuple[int, int]:
        """Where to end a segment starting at window[0] (sample index), and where the next one
        starts: the middle of the first sentence-long pause in range, else of the longest
        pause in range, else max_segment with an overlap. With `sentences_only` (the end of a
        recording, where nothing forces a cut) only a sentence-long pause counts. `energy`: the
        window's frame energies, when the caller has them already."""
        energy = frame_energy_db(window, self.sample_rate) if energy is None else energy
        speech = speech_frames(energy, self.margin_db)
        lo, hi = self.min_segment / HOP, self.max_segment / HOP
        best = None  # (pause length, middle frame)
        for s, e in pauses(speech, round(self.min_pause / HOP)):
            mid = (s + e) // 2
            if not lo <= mid <= hi:
                continue
            if e - s >= self.sentence_pause / HOP:
                best = (e - s, mid)
                break
            if not sentences_only and (best is None or e - s >= best[0]):
                best = (e - s, mid)
        if best is not None:
            at = min(len(window), round(best[1] * HOP * self.sample_rate) + int(FRAME * self.sample_rate) // 2)
            return at, at
        end = len(window)
        return end, end - int(self.overlap * self.sample_rate)

    def segments(self, blocks: Iterable[np.ndarray]) -> Iterator[Segment]:
        """Consecutive audio blocks (any sizes) -> segments of at most max_segment seconds."""
        limit = int(self.max_segment * self.sample_rate)
        buf, start, overlap = np.zeros(0, dtype=np.float32), 0, 0.0
        for block in blocks:
            buf = np.concatenate([buf, block])
            while len(buf) > limit:
                energy = frame_energy_db(buf[:limit], self.sample_rate)  # once per window: cut, then trim
                end, nxt = self.cut(buf[:limit], energy=energy)
                after = (end - nxt) / self.sample_rate
                yield self.trimmed(Segment(start / self.sample_rate, buf[:end], self.sample_rate, overlap, after),
                                   energy, head=start > 0)
                overlap = after
                buf, start = buf[nxt:], start + nxt
        energy = None
        while len(buf) > self.min_segment * self.sample_rate:  # the rest: cut at pauses only
            energy = frame_energy_db(buf, self.sample_rate)
            end, nxt = self.cut(buf, sentences_only=True, energy=energy)
            if end != nxt or end >= len(buf):
                break
            yield self.trimmed(Segment(start / self.sample_rate, buf[:end], self.sample_rate, overlap), energy,
                               head=start > 0)
            overlap = 0.0
            buf, start, energy = buf[end:], start + end, None
        if len(buf) or start == 0:
            energy = frame_energy_db(buf, self.sample_rate) if energy is None else energy
            yield self.trimmed(Segment(start / self.sample_rate, buf, self.sample_rate, overlap), energy,
                               head=start > 0, tail=False)

    def trimmed(self, seg: Segment, energy: np.ndarray, head: bool = True, tail: bool = True) -> Segment:
        """The segment without the silence beyond `pad` before its first and after its last
        speech frame, so a model trained on clips sees the edges it learned (a cut in the middle
        of a long pause would otherwise hand it half a second of silence or more). Only sides made
        by a cut are trimmed (`head`, `tail`): the recording's own start and end stay as they are,
        so a clip shorter than a segment is decoded exactly as given. Speech is told
        from pauses against the quiet floor of the window the cut was chosen in (`energy`: its
        frame energies; it starts where the segment does), not of the segment alone, which may be
        almost all speech. A side shared with a neighbour (an overlap cut, in speech) is left as
        it is; so is a segment with no speech, which the caller skips. The segment keeps its
        slice of `energy` (when its frames line up with the window's) for `has_speech`."""
        speech = speech_frames(energy, self.margin_db)
        win, hop = int(FRAME * self.sample_rate), int(HOP * self.sample_rate)
        n_frames = max(1, (len(seg.samples) - win) // hop + 1)
        idx = np.nonzero(speech[:n_frames])[0]
        a, b = 0, len(seg.samples)
        if len(idx):
            pad = round(self.pad * self.sample_rate)
            a = 0 if seg.overlap or not head else max(0, round(idx[0] * HOP * self.sample_rate) - pad)
            if tail and not seg.overlap_after:
                b = min(b, round((idx[-1] * HOP + FRAME) * self.sample_rate) + pad)
        own = None
        if a % hop == 0 and b - a >= win:  # the segment's frames are frames of the window
            own = energy[a // hop : a // hop + (b - a - win) // hop + 1]
        return Segment(seg.start + a / self.sample_rate, seg.samples[a:b], self.sample_rate, seg.overlap,
                       seg.overlap_after, own)


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
