"""Is a decoded segment speech? Whisper's no-speech rule, the CTC head's support, and an emptied
hypothesis that says why: pure functions on hypotheses, without torch, so the ONNX runtime applies
the same rules as asr.decode (asr.decode.guards computes what they read).
"""

from __future__ import annotations

import dataclasses

from asr.decode.options import DecodeOptions
from asr.results import Hypothesis

LOOP_RATIO = 2.4  # a text whose gzip compression ratio is above this loops (Whisper's threshold)


def plausibility(h: Hypothesis) -> float:
    """How well the audio supports the hypothesis, per token: the CTC head's log probability where
    there is one (it sees only the audio), else the decoder's mean log probability."""
    return h.ctc_logprob if h.ctc_logprob is not None else h.log_prob / (len(h.tokens) + 1)


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
