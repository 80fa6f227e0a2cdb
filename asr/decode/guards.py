"""Hypotheses -> the same, checked: does the audio support the text, or is it a loop or non-speech?

Stateless pieces of the guards `Search` runs after the search that need torch: the CTC head's
support for a transcript and the audio played backwards for the reversal check. The verdicts on
what they measure (Whisper's no-speech rule, plausibility, an emptied hypothesis) are in
asr.decode.nonspeech, which the ONNX runtime shares.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from asr.results import Hypothesis

MAX_TOKENS_PER_SECOND = 8  # the reversal check's backwards reading stops here: no one speaks faster


def note_ctc_logprob(hyps: list[list[Hypothesis]], ctc_logits: Tensor, lengths: Tensor, blank: int,
                     targets_of: Callable[[list[int]], list[int]] = list) -> None:
    """Each utterance's best hypothesis gets the CTC head's log P(tokens | audio) per token (end
    included): how well the audio supports the text, whatever the decoder thought of it. A
    transcript the frames cannot hold (too long) gets none. `targets_of`: the hypothesis's tokens
    as the head's symbols (its letters, for a head that spells: then per letter)."""
    rows = [b for b, nbest in enumerate(hyps) if nbest[0].tokens]
    if not rows:
        return
    idx = torch.tensor(rows, device=ctc_logits.device)
    log_probs = ctc_logits[idx].float().log_softmax(-1).transpose(0, 1)  # (T', n, V)
    targets = [torch.tensor(targets_of(hyps[b][0].tokens), dtype=torch.long) for b in rows]
    nll = torch.nn.functional.ctc_loss(log_probs, torch.cat(targets).to(ctc_logits.device), lengths[idx].cpu(),
                                       torch.tensor([len(t) for t in targets]), blank, reduction="none")
    for b, t, loss in zip(rows, targets, nll.tolist()):
        hyps[b][0].ctc_logprob = -loss / (len(t) + 1) if math.isfinite(loss) else None


def reversed_audio(wav: Tensor, wav_lens: Tensor) -> Tensor:
    """(B, S) padded waveforms, each played backwards within its length (padding stays at the end)."""
    t = torch.arange(wav.shape[1], device=wav.device)
    lens = wav_lens.to(wav.device)[:, None]
    return wav.gather(1, (lens - 1 - t).clamp(min=0)) * (t < lens)


