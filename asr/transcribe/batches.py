"""Segments -> their transcripts, in batches: what file transcription, evaluation and live
transcription share.

    for i, seg, text in decode_segments(search, [(0, segment), (1, other)], batch_size=8): ...
"""

from __future__ import annotations

import logging
from typing import Iterator

import torch

from asr.audio.segment import Segment
from asr.decode.task import Search
from asr.decode.timing import words_from_alignment, words_from_attention, words_from_letters
from asr.model.network import Encoded
from asr.results import Hypothesis, SegmentText

log = logging.getLogger(__name__)
# a decode with timestamps that stops early: the rest of its segment is decoded on from there if the decode
# covered this many seconds (no endless loop) and half as many are left
MIN_PROGRESS = 1.0


def decode_segments(search: Search, items: list[tuple[int, Segment]], batch_size: int,
                    word_timestamps: bool = False) -> Iterator[tuple[int, Segment, SegmentText]]:
    """(file index, segment) pairs -> the same with each segment's transcript, decoded in
    length-sorted batches (in that order, not the input's)."""
    order = sorted(range(len(items)), key=lambda k: len(items[k][1].samples))
    for b in range(0, len(order), batch_size):
        batch = [items[k] for k in order[b : b + batch_size]]
        for (i, seg), out in zip(batch, _decode_batch(search, [s for _, s in batch], word_timestamps)):
            yield i, seg, out


def decode_encoded(search: Search, seg: Segment, enc: Encoded) -> SegmentText:
    """One segment's transcript from its encoder output, computed already (a streaming encoder's)."""
    return _decode_batch(search, [seg], False, enc)[0]


def _decode_batch(search: Search, segs: list[Segment], word_timestamps: bool,
                  enc: Encoded | None = None) -> list[SegmentText]:
    """One batch of segments (and their encoder output, where computed already) -> their transcripts.
    Whisper decoding with timestamps may stop before a segment's speech does, opening an utterance it
    does not transcribe (mostly near the end of a full window): the rest of that segment, from there,
    is decoded as a segment of its own (in one more batch, and so on), and its text joins the
    segment's (openai-whisper's seek, batched)."""
    rec = search.rec
    lens = torch.tensor([len(s.samples) for s in segs])
    wav = torch.zeros(len(segs), int(lens.max()))
    for j, s in enumerate(segs):
        wav[j, : len(s.samples)] = torch.from_numpy(s.samples)
    enc = search.encode(wav, lens) if enc is None else enc
    outs, rest = [], []
    for j, (seg, nbest) in enumerate(zip(segs, search(enc, wav, lens))):
        out = _segment_text(seg, nbest)
        seconds = len(seg.samples) / seg.sample_rate
        at = search.unfinished(nbest[0]) if out.rejected is None else None
        tail = seg.tail(at) if at is not None and MIN_PROGRESS <= at < seconds - MIN_PROGRESS / 2 else None
        if tail is not None and tail.has_speech():
            rest.append((j, tail))
            seconds = at  # this transcript's words lie before the rest
        tokens = search.rules.text_tokens(nbest[0].tokens)  # without Whisper's timestamp tokens
        if (word_timestamps or seg.overlap or seg.overlap_after) and enc.ctc_logits is not None:
            align = words_from_letters if rec.cfg.model.spells else words_from_alignment  # letters, or tokens
            out.words = align(rec, tokens, enc.ctc_logits[j, : int(enc.lengths[j])].cpu(), seg.start)
        elif (word_timestamps or seg.overlap or seg.overlap_after) and rec.cfg.model.alignment_heads:
            # no CTC head (imported Whisper): the alignment heads' cross-attention, over the audio it transcribed
            out.words = words_from_attention(rec, tokens, enc.memory[j, : int(enc.lengths[j])], seconds, seg.start)
        outs.append(out)
    if rest:
        for (j, _), more in zip(rest, _decode_batch(search, [t for _, t in rest], word_timestamps)):
            _join(outs[j], more)
    return outs


def _join(out: SegmentText, more: SegmentText) -> None:
    """`more`, the transcript of the rest of `out`'s segment, appended to it (unless rejected)."""
    if more.rejected is None and more.text:
        out.text = f"{out.text} {more.text}".strip()
        if out.words is not None and more.words is not None:
            out.words += more.words


def _segment_text(seg: Segment, nbest: list[Hypothesis]) -> SegmentText:
    best = nbest[0]
    if best.rejected is not None:
        log.debug("no speech in %.2f-%.2f s: %s", seg.start, seg.end, best.rejected)
    return SegmentText(seg.start, seg.end, best.text, score=best.score, overlap=seg.overlap,
                       alternatives=[(h.text, h.score) for h in nbest[1:]] or None,
                       no_speech_prob=best.no_speech_prob, speech_prob=seg.speech_prob,
                       ctc_logprob=best.ctc_logprob, rejected=best.rejected, language=best.language,
                       language_probability=best.language_probability)
