"""Hypotheses -> the same, checked: does the audio support the text, or is it a loop or non-speech?

Stateless pieces of the guards `Search` runs after the search: the CTC head's support for a
transcript, Whisper's no-speech rule, the audio played backwards for the reversal check, and an
emptied hypothesis that says why it was left out.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
from torch import Tensor

from asr.decode.options import DecodeOptions
from asr.results import Hypothesis

LOOP_RATIO = 2.4  # a text whose gzip compression ratio is above this loops (Whisper's threshold)
MAX_TOKENS_PER_SECOND = 8  # the reversal check's backwards reading stops here: no one speaks faster


def note_ctc_logprob(hyps: list[list[Hypothesis]], ctc_logits: Tensor, lengths: Tensor, blank: int,
                     targets_of: Callable[[list[int]], list[int]] = list, per_unit: bool = True) -> None:
    """Each utterance's best hypothesis gets the CTC head's log P(tokens | audio) per token (end
    included): how well the audio supports the text, whatever the decoder thought of it. A
    transcript the frames cannot hold (too long) gets none. `targets_of`: the hypothesis's tokens
    as the head's symbols (its letters, for a head that spells: then per letter); `per_unit` False:
    the total log probability."""
    rows = [b for b, nbest in enumerate(hyps) if nbest[0].tokens]
    if not rows:
        return
    idx = torch.tensor(rows, device=ctc_logits.device)
    log_probs = ctc_logits[idx].float().log_softmax(-1).transpose(0, 1)  # (T', n, V)
    targets = [torch.tensor(targets_of(hyps[b][0].tokens), dtype=torch.long) for b in rows]
    nll = torch.nn.functional.ctc_loss(log_probs, torch.cat(targets).to(ctc_logits.device), lengths[idx].cpu(),
                                       torch.tensor([len(t) for t in targets]), blank, reduction="none")
    for b, t, loss in zip(rows, targets, nll.tolist()):
        hyps[b][0].ctc_logprob = (-loss / (len(t) + 1) if per_unit else -loss) if math.isfinite(loss) else None


def plausibility(h: Hypothesis) -> float:
    """How well the audio supports the hypothesis, per token: the CTC head's log probability where
    there is one (it sees only the audio), else the decoder's mean log probability."""
    return h.ctc_logprob if h.ctc_logprob is not None else h.log_prob / (len(h.tokens) + 1)


def reversed_audio(wav: Tensor, wav_lens: Tensor) -> Tensor:
    """(B, S) padded waveforms, each played backwards within its length (padding stays at the end)."""
    t = torch.arange(wav.shape[1], device=wav.device)
    lens = wav_lens.to(wav.device)[:, None]
    return wav.gather(1, (lens - 1 - t).clamp(min=0)) * (t < lens)


def emptied(h: Hypothesis, reason: str) -> Hypothesis:
    """`h` left out: no tokens or text, its scores kept, and why."""
    return dataclasses.replace(h, tokens=[], text="", rejected=reason)


def non_speech(h: Hypothesis, o: DecodeOptions, text_tokens: int | None = None) -> str | None:
    """Why the segment decoded as `h` holds no speech by the options' rules, or None. Whisper's rule
    (openai-whisper's): no speech is likely and the transcript unlikely. A CTC head's: the audio
    hardly supports the transcript (babble and reversed speech, which the voice activity detector
    takes for speech, decode into text the CTC head finds far less likely than speech's). Where the
    CTC head supports the text at least `ctc_speech_logprob`, Whisper's rule is not applied: one or
    two real words that the decoder doubts are kept.

    `text_tokens`: how many of h's tokens are text (with timestamp tokens): the transcript's log
    probability is then taken per text token. Timestamps the grammar forces have log probability
    near 0 and would otherwise lift the mean of one invented word on noise above the threshold."""
    avg = h.log_prob / ((len(h.tokens) if text_tokens is None else text_tokens) + 1)
    p = h.no_speech_prob
    heard = None not in (o.ctc_speech_logprob, h.ctc_logprob) and h.ctc_logprob >= o.ctc_speech_logprob
    if (o.no_speech_threshold is not None and p is not None and p > o.no_speech_threshold
            and avg < o.logprob_threshold and not heard):
        return f"P(no speech) {p:.2f} > {o.no_speech_threshold:g} and mean log prob {avg:.2f} < {o.logprob_threshold:g}"
    if o.min_ctc_logprob is not None and h.ctc_logprob is not None and h.ctc_logprob < o.min_ctc_logprob:
        return f"CTC log prob per token {h.ctc_logprob:.2f} < {o.min_ctc_logprob:g}"
    return None
