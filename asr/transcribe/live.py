"""Live transcription: audio that arrives in blocks -> events while the person is still speaking.

    stream = asr.load_model("whisper-base").stream(end_silence=0.8)
    for block in blocks:                       # float32 mono at the model's rate, any block size
        for event in stream.feed(block):
            print(event.kind, event.start, event.text)
    for event in stream.close():               # the last utterance's final text
        ...

Events (`Event.kind`): "speech_started", "partial" (the utterance so far: `stable` is the part
that will not change before the final, `text` all of it), "final" (one utterance, with its times),
"speech_stopped". Any model works: it is decoded as a file would be (`decode_segments`).

- **Endpointing**: the speech detector (silero, or energy) judges every 10 ms frame as it arrives.
  An utterance starts at `min_speech` seconds of speech (plus `pre_roll` before it) and ends after
  `end_silence` seconds without speech, or at `max_utterance` seconds, cut in the longest pause of
  its last third (at the end where there is none); the rest starts the next utterance. No audio is
  decoded outside utterances, so silence stays empty.
- **Partials**: every `update_every` seconds of new speech the utterance so far is decoded again
  (greedy, without the reversal check; a model with a CTC head over its tokens reads that head alone,
  `partial_ctc`: its best path, or its prefix beam search with `partial_beam` > 1), but no sooner than
  twice the utterance's last partial
  decode took, so a slow model on a slow machine updates less often instead of falling behind. Words that
  two successive decodes agree on from the start are committed (LocalAgreement-2, the policy of
  whisper_streaming): a partial's `stable` words only ever grow.
  A streaming model decoded in chunks keeps its encoder's cached chunks through the utterance
  (`cache_encoder`, `asr.model.streaming`): a decode encodes only the audio that is new, and its
  partials and final are still what the file gives for the same audio. (Such decodes run where the
  stream is fed, outside a service's shared batches: the cache belongs to the stream.)
- **Finals**: the whole utterance decoded once more at its end, with full context; what a file
  transcription of that stretch gives. The final's audio ends `post_roll` after the last speech, so
  it is complete well before `end_silence` has passed: it is decoded after `speculate` seconds of
  silence, while the stream waits to see whether the speech resumes; its text is shown as a
  partial at once, and the final is sent the moment the silence is long enough. No partial is
  decoded in the silence before it (it would only delay that decode). Speech that resumes in time
  discards the decode (the work is lost, not the text).
  Whisper models are prompted with the last `prompt_chars` characters of the finals before
  (whisper_streaming's 200), as `--prompt` would; not a model trained to take any length
  (`any_length`), which was distilled without a prompt: with one, whisper-tiny.en-any's live WER
  was 26% against 14% for the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass
from typing import Callable, Iterable, TextIO

import numpy as np

from asr.audio.segment import Segment
from asr.audio.silero import make_vad
from asr.audio.vad import FRAME, HOP, checked_vad
from asr.decode.task import Search
from asr.model.streaming import EncoderStream, streams
from asr.results import SegmentText
from asr.transcribe.batches import decode_encoded, decode_segments
from asr.transcribe.writers import timestamp

PROMPT_CHARS = 200  # the finals before that prompt a Whisper model's next (whisper_streaming's)
SILENCE_BEGUN = 0.06  # seconds since the last speech frame (more than the detector's lag while speech goes on)
KINDS = ("speech_started", "partial", "final", "speech_stopped")


@dataclass(frozen=True)
class LiveOptions:
    """Endpointing and update rules (seconds); checked where made."""

    vad: str = "silero"  # "silero" (energy where silero-vad is missing) or "energy"
    update_every: float = 1.0  # new audio between two partial decodes of an utterance
    min_speech: float = 0.25  # speech that opens an utterance
    end_silence: float = 0.6  # non-speech that closes one (OpenAI's server VAD: 0.5)
    max_utterance: float = 20.0  # longest utterance (Whisper's window is 30 s)
    pre_roll: float = 0.3  # audio kept before the first speech frame
    post_roll: float = 0.1  # ... and after the last: where the final's audio ends
    # Whisper models: the finals before, as the prompt of the next (0: none; None: 200, or 0 for an any_length model)
    prompt_chars: int | None = None
    partial_beam: int = 1  # beam of the partial decodes (1: greedy, the fastest); finals use the stream's own
    # partials of a model with a CTC head over its tokens from that head alone (no decoder pass: WeNet's CTC
    # partials): its best path, or its prefix beam search with partial_beam > 1; finals still use the joint search
    partial_ctc: bool = True
    keep_up: bool = True  # partials no sooner than twice the last one took (False: every update_every, however slow)
    # seconds of silence after which the final is decoded ahead, while end_silence is waited out (None: only
    # once it has passed); sooner pays for a wasted decode at more of the pauses inside an utterance
    speculate: float | None = 0.1
    # a streaming model decoded in chunks (DecodeOptions.chunk, `streams`): its encoder keeps the chunks already
    # heard (keys, values and output; WeNet's cached left context) and each decode encodes only what is new;
    # False: the utterance so far is encoded anew at every decode
    cache_encoder: bool = True

    def __post_init__(self) -> None:
        checked_vad(self.vad)
        times = (self.update_every, self.min_speech, self.end_silence, self.max_utterance)
        if self.speculate is not None and self.speculate < 0:
            raise ValueError(f"speculate must be None or not negative, not {self.speculate}")
        if (min(times) <= 0 or self.partial_beam < 1 or min(self.pre_roll, self.post_roll, self.prompt_chars or 0) < 0
                or self.max_utterance < 2 * self.end_silence):
            raise ValueError("update_every, min_speech, end_silence and max_utterance must be positive, pre_roll, "
                             "post_roll and prompt_chars not negative, and max_utterance at least twice end_silence "
                             f"(got {self.update_every}, {self.min_speech}, {self.end_silence}, {self.max_utterance}, "
                             f"{self.pre_roll}, {self.post_roll}, {self.prompt_chars})")


@dataclass
class Event:
    kind: str  # one of KINDS
    start: float  # seconds into the stream: the utterance's start
    end: float  # ... and end (partials: the audio decoded so far)
    text: str = ""
    stable: str = ""  # partials: the committed words (a prefix of `text`)
    language: str | None = None
    rejected: str | None = None  # finals: why the search heard no speech (text is then "")

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, "") or k == "text"}


def agreed(a: list[str], b: list[str]) -> int:
    """How many words two decodes share from the start (LocalAgreement)."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def decode_one(search: Search, seg: Segment) -> SegmentText:
    """One segment's transcript, decoded at once on the calling thread."""
    ((_, _, text),) = decode_segments(search, [(0, seg)], 1)
    return text


class Stream:
    """One live audio stream through a model's search (see the module docstring)."""

    def __init__(self, search: Search, options: LiveOptions = LiveOptions(),
                 decoder: Callable[[Search, Segment], SegmentText] | None = None):
        """`decoder`: how a segment is decoded (default: at once, on this thread, `decode_one`); a service
        passes one that batches the decodes of many streams (`asr.transcribe.realtime.SharedDecoder`)."""
        self.search, self.options, self.decoder = search, options, decoder or decode_one
        self.rate = search.rec.cfg.features.sample_rate
        self.prompt_chars = options.prompt_chars if options.prompt_chars is not None else \
            0 if search.rec.cfg.any_length else PROMPT_CHARS
        self.vad = make_vad(options.vad, self.rate)
        self.vad.start()
        self.hop, self.win = int(HOP * self.rate), int(FRAME * self.rate)
        self.audio = np.zeros(0, np.float32)  # the stream from sample `self.base` on
        self.base = 0
        self.fed = 0  # samples fed in all
        self.frames = np.zeros(0, bool)  # speech per frame, from frame `self.frame0` on
        self.scores = np.zeros(0, np.float32)
        self.frame0 = 0
        self.utt_start: int | None = None  # sample where the open utterance starts
        self.last_speech = 0  # sample after the last speech frame
        self.decoded_to = 0  # sample up to which the open utterance was last decoded
        self.previous: list[str] = []  # the last partial's words
        self.stable: list[str] = []  # committed words of the open utterance
        self.history = ""  # finals so far (the prompt of Whisper models)
        self.searches: dict[bool, Search] = {False: search}  # partial? -> its search (the partial one made on use)
        self.prompted: dict[tuple[str, bool], Search] = {}
        self.closed = False
        self.partial_seconds = 0.0  # wall time of the last partial decode
        self.speculated: tuple[tuple[int, int, str], object] | None = None  # ((start, end, prompt), its final)
        chunk = search.options.chunk
        self.caches = options.cache_encoder and streams(search.rec, chunk)
        self.encoder: tuple[int, EncoderStream] | None = None  # (the utterance's first sample, its encoder)

    # ------------------------------------------------------------------ input

    def feed(self, block: np.ndarray) -> list[Event]:
        """The next samples (float32 mono at the model's rate) -> the events they complete."""
        if self.closed:
            raise ValueError("this stream is closed")
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self.audio = np.concatenate([self.audio, block])
        self.fed += len(block)
        self.vad.feed(block)
        self._judge()
        return self._advance(final=False)

    def flush(self) -> list[Event]:
        """Finalize the open utterance now (a client's "commit"); the stream goes on."""
        if self.closed:
            raise ValueError("this stream is closed")
        return self._advance(final=True)

    def close(self) -> list[Event]:
        """The stream ends: the open utterance (if any) is finalized."""
        if self.closed or not self.fed:
            self.closed = True
            return []
        self.vad.feed(np.zeros(0, np.float32), last=True)
        self._judge()
        self.closed = True
        return self._advance(final=True)

    def _judge(self) -> None:
        """Speech or not for every frame whose window has fully arrived."""
        done = self.frame0 + len(self.frames)
        total = (self.fed - self.win) // self.hop + 1 if self.fed >= self.win else 0
        if total <= done:
            return
        lo = done * self.hop - self.base
        wav = self.audio[lo : (total - 1) * self.hop + self.win - self.base]
        scores = self.vad.scores(wav, done * self.hop)[: total - done]
        self.scores = np.concatenate([self.scores, scores])[-3000:]  # 30 s: the energy detector's floor
        speech = self.vad.speech(self.scores)[-len(scores):]
        self.frames = np.concatenate([self.frames, speech])

    # ------------------------------------------------------------------ endpointing

    def _advance(self, final: bool) -> list[Event]:
        o, events = self.options, []
        while True:
            if self.utt_start is None and not self._open(events):
                break
            end = self._end(final)
            if end is None and o.speculate is not None and self.fed - self.last_speech > SILENCE_BEGUN * self.rate:
                events += self._speculate()  # the trailing silence: the final ahead, or nothing (no partial)
                break
            if end is None:
                every = max(o.update_every, 2 * self.partial_seconds) if o.keep_up else o.update_every
                if self.fed - self.decoded_to >= every * self.rate:
                    events += self._partial()
                break
            events += self._finish(*end)
            if final and self.utt_start is None and not self._speech_after(self.base):
                break
        self._trim()
        return events

    def _open(self, events: list[Event]) -> bool:
        """Start an utterance at the first run of `min_speech` of speech frames, if there is one."""
        need = max(1, round(self.options.min_speech / HOP))
        run = np.convolve(self.frames.astype(np.int32), np.ones(need, np.int32), "valid")
        hits = np.nonzero(run >= need)[0]
        if not len(hits):
            return False
        first = self.frame0 + int(hits[0])
        # the pre-roll reaches back no further than where the last utterance ended
        self.utt_start = max(self.base, self.decoded_to, first * self.hop - int(self.options.pre_roll * self.rate))
        self.last_speech = self.decoded_to = self.utt_start
        self.previous, self.stable = [], []
        self.partial_seconds = 0.0  # keep_up paces within an utterance: one slow decode must not silence the rest
        events.append(Event("speech_started", self._t(self.utt_start), self._t(self.utt_start)))
        return True

    def _end(self, final: bool) -> tuple[int, int] | None:
        """(where the open utterance ends, where the next audio starts), or None while it goes on."""
        o = self.options
        f_start = max(0, self.utt_start // self.hop - self.frame0)
        speech = np.nonzero(self.frames[f_start:])[0]
        if len(speech):
            self.last_speech = max(self.last_speech, (self.frame0 + f_start + int(speech[-1])) * self.hop + self.win)
        pad = int(o.post_roll * self.rate)
        if final or self.fed - self.last_speech >= o.end_silence * self.rate:
            end = min(self.fed, self.last_speech + pad)
            return end, end
        if self.fed - self.utt_start < o.max_utterance * self.rate:
            return None
        # too long: cut in the longest pause of the last third, else at the end
        span = self.frames[f_start:]
        third = len(span) * 2 // 3
        best, best_len, run = None, 0, 0
        for i in range(third, len(span)):
            run = 0 if span[i] else run + 1
            if run > best_len:
                best, best_len = i - run // 2, run
        cut = (self.frame0 + f_start + best) * self.hop if best is not None and best_len >= 5 else self.fed
        return cut, cut

    def _speculate(self) -> list[Event]:
        """In the trailing silence: once the final's audio is complete, decode it ahead (see the
        module docstring) and show it as a partial; before that, and after, nothing."""
        o = self.options
        end = self.last_speech + int(o.post_roll * self.rate)
        key = (self.utt_start, end, self.history)
        if (self.fed < max(end, self.last_speech + int(o.speculate * self.rate))
                or (self.speculated is not None and self.speculated[0] == key)):
            return []
        text = self._decode(self.utt_start, end, self.history, partial=False)
        self.speculated, self.decoded_to = (key, text), self.fed
        return [] if text.rejected is not None else self._shown(text, end)

    def _speech_after(self, sample: int) -> bool:
        return bool(self.frames[max(0, sample // self.hop - self.frame0):].any())

    def _finish(self, end: int, next_start: int) -> list[Event]:
        start = self.utt_start
        ahead = self.speculated
        self.speculated = None
        if ahead is not None and ahead[0] == (start, end, self.history):
            text = ahead[1]
        else:
            text = self._decode(start, end, self.history, partial=False)
        self.utt_start = None
        self.decoded_to = next_start
        if text.text and self.prompt_chars:
            self.history = f"{self.history} {text.text}".strip()[-self.prompt_chars :]
        # frames before the next start are spent: an utterance opens on speech after it
        keep = max(0, next_start // self.hop - self.frame0)
        self.frames[:keep] = False
        return [Event("final", self._t(start), self._t(end), text.text, language=text.language,
                      rejected=text.rejected),
                Event("speech_stopped", self._t(start), self._t(end))]

    def _partial(self) -> list[Event]:
        start, end, began = self.utt_start, self.fed, time.perf_counter()
        text = self._decode(start, end, self.history, partial=True)
        self.decoded_to, self.partial_seconds = end, time.perf_counter() - began
        return [] if text.rejected is not None else self._shown(text, end)

    def _shown(self, text, end: int) -> list[Event]:
        """A decode of the open utterance up to `end` as a partial: LocalAgreement-2 commits the
        words it shares with the decode before."""
        start, words = self.utt_start, text.text.split()
        n = agreed(self.previous, words)
        if n > len(self.stable):
            self.stable = words[:n]
        self.previous = words
        shown = self.stable + (words[len(self.stable):] if words[: len(self.stable)] == self.stable else [])
        return [Event("partial", self._t(start), self._t(end), " ".join(shown), " ".join(self.stable),
                      language=text.language)]

    # ------------------------------------------------------------------ decoding and housekeeping

    def _decode(self, start: int, end: int, prompt: str, partial: bool):
        search = self._search(prompt, partial)
        seg = Segment(self._t(start), self.audio[start - self.base : end - self.base].copy(), self.rate)
        if not self.caches:
            return self.decoder(search, seg)
        if self.encoder is None or self.encoder[0] != start:  # a new utterance: a new cache
            self.encoder = (start, EncoderStream(search.rec, search.options.chunk))
        return decode_encoded(search, seg, self.encoder[1](seg.samples))

    def _search(self, prompt: str, partial: bool) -> Search:
        """The (partial or final) search, prompted with the text before where the model takes a
        prompt (Whisper) and was given none of its own."""
        if partial not in self.searches:  # greedy (partial_beam), without the reversal check (the final runs it)
            ctc = self.options.partial_ctc and self.search.rec.cfg.model.ctc_tokens
            options = self.search.options.replaced(beam_size=self.options.partial_beam, n_best=1,
                                                   reversed_margin=math.inf, ctc_weight=1.0 if ctc else None)
            self.searches[True] = Search(self.search.rec, options)
        search = self.searches[partial]
        if not prompt or not self.prompt_chars or search.rules.previous is None or search.options.prompt:
            return search
        if (prompt, partial) not in self.prompted:
            self.prompted = {k: v for k, v in self.prompted.items() if k[0] == prompt}  # the latest prompt only
            self.prompted[prompt, partial] = search.with_prompt(prompt)
        return self.prompted[prompt, partial]

    def _trim(self) -> None:
        """Forget audio and frames nothing will read again (memory stays flat on an endless stream)."""
        keep_from = self.utt_start if self.utt_start is not None else self.fed - int(
            (self.options.pre_roll + self.options.min_speech + 1.0) * self.rate)
        keep_from = max(self.base, min(keep_from, self.fed - self.win, (self.frame0 + len(self.frames)) * self.hop))
        drop = keep_from - self.base
        if drop > self.rate:  # in steps of at least a second
            self.audio, self.base = self.audio[drop:], keep_from
            f_drop = max(0, keep_from // self.hop - self.frame0 - 1)
            self.frames, self.frame0 = self.frames[f_drop:], self.frame0 + f_drop

    def _t(self, sample: int) -> float:
        return round(sample / self.rate, 3)


# --------------------------------------------------------------------------- output (asr live)

LIVE_FORMATS = ("text", "srt", "vtt", "jsonl")


class LiveWriter:
    """Events -> a terminal and a file as they come: the partial line redrawn in place on a terminal
    (`show`), final lines scrolling (on `out`), and the finals as text, SRT or WebVTT cues, or every
    event as a JSON line (with `wall`, the seconds since the stream began, for latency)."""

    def __init__(self, out: TextIO, fmt: str = "text", show: TextIO | None = None):
        if fmt not in LIVE_FORMATS:
            raise ValueError(f"live output format must be one of {', '.join(LIVE_FORMATS)}, not {fmt!r}")
        self.out, self.fmt, self.show = out, fmt, show
        self.cues, self.began = 0, time.monotonic()
        if fmt == "vtt":
            self._write("WEBVTT\n\n")

    def __call__(self, event: Event) -> None:
        if self.show is not None and event.kind == "partial":
            width = shutil.get_terminal_size().columns - 1
            self.show.write("\r\033[K" + event.text[-width:])
            self.show.flush()
        if event.kind != "final" and self.fmt != "jsonl":
            return
        if self.show is not None and event.kind == "final":
            self.show.write("\r\033[K")
            self.show.flush()
        if self.fmt == "jsonl":
            self._write(json.dumps({**event.to_dict(), "wall": round(time.monotonic() - self.began, 3)},
                                   ensure_ascii=False) + "\n")
        elif not event.text:
            return
        elif self.fmt == "text":
            self._write(f"[{timestamp(event.start, '.')} --> {timestamp(event.end, '.')}] {event.text}\n")
        else:
            self.cues += 1
            sep = "," if self.fmt == "srt" else "."
            number = f"{self.cues}\n" if self.fmt == "srt" else ""
            self._write(f"{number}{timestamp(event.start, sep)} --> {timestamp(event.end, sep)}\n{event.text}\n\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()  # a file being followed (tail -f) or a pipe sees each line as it comes


def run(stream: Stream, blocks: Iterable[np.ndarray], write: Callable[[Event], None]) -> None:
    """Feed `blocks` through `stream`, each event to `write`; the stream is closed however it ends
    (Ctrl-C keeps the last utterance)."""
    try:
        for block in blocks:
            for event in stream.feed(block):
                write(event)
    finally:
        for event in stream.close():
            write(event)
