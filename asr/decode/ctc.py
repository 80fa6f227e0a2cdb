"""What the CTC head says about a transcript: best path, prefix probabilities, alignments.

The attention decoder can loop, stop early or run past the audio; the CTC head cannot, because
its alignment is monotonic and covers every frame. Search uses it in three ways:
- `ctc_greedy` / `ctc_length_limits`: a cheap bound on how long an output may be;
- `CTCPrefixScorer`: the probability that a transcript *starts with* a prefix, scored for a few
  candidate next tokens per hypothesis (joint CTC/attention decoding, Watanabe et al. 2017);
- `align_tokens`: forced alignment of a finished transcript, for word timestamps.
With all the weight on it (`ctc_weight` 1) the head is the whole search, no decoder pass: its best
path at beam 1, `ctc_prefix_beam_search` wider (live partials of a streaming model, WeNet's way).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from asr.text.tokenizers import BLANK

NEG_INF = float("-inf")


def ctc_greedy(ctc_logits: Tensor, mem_lens: Tensor, blank: int = BLANK) -> list[list[int]]:
    """Best path of the CTC head: argmax per frame, repeats merged, blanks removed."""
    best = ctc_logits.argmax(-1).tolist()  # (B, T')
    out = []
    for frames, n in zip(best, mem_lens.tolist()):
        frames = frames[:n]
        out.append([t for i, t in enumerate(frames) if t != blank and (i == 0 or frames[i - 1] != t)])
    return out


def _lse(a: float, b: float) -> float:
    """log(e^a + e^b) of two floats."""
    if a < b:
        a, b = b, a
    return a if b == NEG_INF else a + math.log1p(math.exp(b - a))


def ctc_prefix_beam_search(ctc_logits: Tensor, mem_lens: Tensor, beam: int, n_best: int = 1,
                           blank: int = BLANK) -> list[list[tuple[list[int], float]]]:
    """The `n_best` most probable transcripts of each utterance under the CTC head alone, with
    log P(transcript | audio) summed over all its alignments (Hannun et al. 2014), where the best
    path takes one alignment's. Frame by frame, each of the `beam` prefixes kept is extended by
    the frame's `beam` likeliest tokens; a prefix's probability is split into alignments that end
    in a blank and in a non-blank, so that a repeated token is a new one only after a blank."""
    log_probs = ctc_logits.float().log_softmax(-1).cpu()
    out = []
    for lp, n in zip(log_probs, mem_lens.tolist()):
        top_lp, top_id = lp[:n].topk(min(beam, lp.shape[-1]), -1)
        rows, top_lp, top_id = lp[:n].tolist(), top_lp.tolist(), top_id.tolist()
        kept: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}  # prefix: (ends blank, non-blank)
        for row, cand_lp, cand in zip(rows, top_lp, top_id):
            nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
            for prefix, (p_b, p_nb) in kept.items():
                both = _lse(p_b, p_nb)
                stay = nxt[prefix]
                stay[0] = _lse(stay[0], both + row[blank])  # a blank: the prefix unchanged
                if prefix:  # its last token again, no blank between: still the same prefix
                    stay[1] = _lse(stay[1], p_nb + row[prefix[-1]])
                for c, c_lp in zip(cand, cand_lp):
                    if c == blank:
                        continue
                    grown = nxt[prefix + (c,)]
                    # the last token again is a new one only after a blank
                    grown[1] = _lse(grown[1], (p_b if prefix and c == prefix[-1] else both) + c_lp)
            best = sorted(nxt.items(), key=lambda kv: _lse(*kv[1]), reverse=True)[:beam]
            kept = {prefix: (p_b, p_nb) for prefix, (p_b, p_nb) in best}
        ranked = sorted(((list(p), _lse(*v)) for p, v in kept.items()), key=lambda x: x[1], reverse=True)
        out.append(ranked[:n_best])
    return out


def length_limits(best_paths: list[list[int]], device: torch.device, slack: float = 0.25, extra: int = 4) -> Tensor:
    """A cheap guard against attention loops and invented text: the attention decoder may emit at
    most (1 + slack) x the CTC best path's length (+ extra); none at all where CTC hears nothing."""
    n = torch.tensor([len(s) for s in best_paths], device=device)
    return torch.where(n > 0, (n.float() * (1 + slack)).long() + extra, torch.zeros_like(n))


def ctc_length_limits(ctc_logits: Tensor, mem_lens: Tensor, slack: float = 0.25, extra: int = 4,
                      blank: int = BLANK) -> Tensor:
    """`length_limits` of the CTC best paths of a batch."""
    return length_limits(ctc_greedy(ctc_logits, mem_lens, blank), mem_lens.device, slack, extra)


def _shift(x: Tensor, first: float) -> Tensor:
    """x[..., t-1] at position t along the last axis, `first` at t = 0."""
    return F.pad(x[..., :-1], (1, 0), value=first)


def _linear_recurrence(log_p: Tensor, log_u: Tensor) -> Tensor:
    """a[t] = p[t] * (a[t-1] + u[t]) with a[-1] = 0, in log space, for all t at once:
    a[t] = P[t] * sum_{s<=t} u[s] / P[s-1] with P the running product of p."""
    cum = log_p.cumsum(-1)
    return cum + torch.logcumsumexp(log_u - _shift(cum, 0.0), -1)


@dataclass
class CTCState:
    """Forward variables of each hypothesis's prefix h over all frames: log P(frames 0..t emit
    exactly h, ending in a non-blank / a blank), and log P(the transcript starts with h)."""

    r_nonblank: Tensor  # (N, T)
    r_blank: Tensor  # (N, T)
    prefix: Tensor  # (N,)
    last: Tensor  # (N,) last token of h (-1 for the empty prefix)

    def select(self, rows: Tensor) -> "CTCState":
        return CTCState(self.r_nonblank[rows], self.r_blank[rows], self.prefix[rows], self.last[rows])


class CTCPrefixScorer:
    """Prefix scores of candidate next tokens, batched over hypotheses and candidates.

    The usual formulation loops over frames for every output step; here each step solves the two
    forward recursions for all frames at once as linear recurrences (cumulative sums in log space,
    float64), so a step costs a handful of tensor ops of size hypotheses x candidates x frames.
    """

    def __init__(self, ctc_logits: Tensor, mem_lens: Tensor, eos: int, blank: int = BLANK):
        self.log_probs = ctc_logits.double().log_softmax(-1)  # (B, T, V)
        self.lens = mem_lens
        self.eos, self.blank = eos, blank
        frames = torch.arange(self.log_probs.shape[1], device=mem_lens.device)
        self.valid = frames[None, :] < mem_lens[:, None]  # (B, T)

    def select_utterances(self, keep: Tensor) -> None:
        self.log_probs, self.lens, self.valid = self.log_probs[keep], self.lens[keep], self.valid[keep]

    def initial_state(self, rows_per_utt: int) -> CTCState:
        """The empty prefix, repeated for every hypothesis row."""
        blank = self.log_probs[..., self.blank].cumsum(-1).repeat_interleave(rows_per_utt, 0)  # all blanks so far
        n = blank.shape[0]
        return CTCState(torch.full_like(blank, NEG_INF), blank, blank.new_zeros(n),
                        torch.full((n,), -1, dtype=torch.long, device=blank.device))

    def _start_probs(self, state: CTCState, cand: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """For candidates cand (N, C): log p(c) at every frame (N, C, T), and phi[t-1] (N, C, T),
        the log probability that h has been emitted by frame t-1 so that c may start at frame t
        (after a blank when c repeats h's last token)."""
        N, C = cand.shape
        utt = self._utterance_of_rows(N)
        x_c = self.log_probs[utt[:, None], :, cand]  # (N, C, T)
        r_h = torch.logaddexp(state.r_nonblank, state.r_blank)
        phi = torch.where((cand == state.last[:, None])[..., None], state.r_blank[:, None, :], r_h[:, None, :])
        first = torch.where(state.last < 0, 0.0, NEG_INF)[:, None, None].expand(N, C, 1)  # the empty prefix
        return x_c, torch.cat([first.to(phi.dtype), phi[..., :-1]], -1), utt

    def _utterance_of_rows(self, n: int) -> Tensor:
        B = self.log_probs.shape[0]
        return torch.arange(n, device=self.lens.device) // (n // B)  # rows are grouped by utterance

    def score(self, state: CTCState, cand: Tensor) -> Tensor:
        """log P(prefix h+c) - log P(prefix h) for candidate next tokens cand (N, C) of each
        hypothesis h; for c = end-of-sentence, log P(transcript is exactly h) - log P(prefix h)."""
        x_c, phi_prev, utt = self._start_probs(state, cand)
        starts = (phi_prev + x_c).masked_fill(~self.valid[utt][:, None, :], NEG_INF)  # c first emitted at t
        prefix = torch.logsumexp(starts, -1)  # (N, C)
        is_eos = cand == self.eos
        if is_eos.any():
            r_h = torch.logaddexp(state.r_nonblank, state.r_blank)
            end = r_h.gather(1, (self.lens[utt] - 1)[:, None])  # (N, 1)
            prefix = torch.where(is_eos, end, prefix)
        delta = torch.where(state.prefix[:, None] == NEG_INF, NEG_INF, prefix - state.prefix[:, None])
        return delta.float()

    def advance(self, state: CTCState, rows: Tensor, tokens: Tensor) -> CTCState:
        """The states of hypotheses rows[i] extended by tokens[i] (not end-of-sentence). Only
        the survivors of a beam step pay for the forward recursions over all frames."""
        parent = state.select(rows)
        x_c, phi_prev, utt = self._start_probs(parent, tokens[:, None])
        x_c, phi_prev = x_c[:, 0], phi_prev[:, 0]  # (N, T)
        r_nonblank = _linear_recurrence(x_c, phi_prev)
        r_blank = _linear_recurrence(self.log_probs[utt, :, self.blank], _shift(r_nonblank, NEG_INF))
        prefix = torch.logsumexp((phi_prev + x_c).masked_fill(~self.valid[utt], NEG_INF), -1)
        return CTCState(r_nonblank, r_blank, prefix, tokens)


@dataclass
class TokenSpan:
    token: int
    start: int  # first encoder frame
    end: int  # one past the last frame
    score: float  # mean log probability of the token's frames


def align_tokens(ctc_logits: Tensor, tokens: list[int], blank: int = BLANK) -> list[TokenSpan] | None:
    """Forced alignment of `tokens` to one utterance's CTC logits (T, V). None when the
    transcript cannot fit the frames (too long for them, counting blanks between repeats)."""
    if not tokens:
        return []
    repeats = sum(a == b for a, b in zip(tokens, tokens[1:]))
    if len(tokens) + repeats > ctc_logits.shape[0]:
        return None
    from torchaudio.functional import forced_align, merge_tokens

    log_probs = ctc_logits.float().log_softmax(-1)[None]
    labels, scores = forced_align(log_probs, torch.tensor([tokens], dtype=torch.int32), blank=blank)
    return [TokenSpan(s.token, s.start, s.end, s.score) for s in merge_tokens(labels[0], scores[0], blank=blank)]
