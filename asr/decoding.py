"""Search over the decoder: batched greedy and beam search with a KV cache.

Cross-attention keys/values are computed once per utterance; self-attention keys/values grow one
step at a time. Finished rows leave the batch and beams are re-ranked with one operation,
`KVCache.reorder`. Beam search can add CTC prefix scores (joint CTC/attention decoding), which
keeps hypotheses aligned with the audio: no loops, no early or late ends, nothing on silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .ctc import CTCPrefixScorer
from .lm import NGramLM
from .model import ASRModel
from .text import BLANK, SOS_EOS


def max_output_lengths(mem_lens: Tensor, ratio: float, limit: int) -> Tensor:
    """Longest output each utterance may produce: proportional to its encoder length."""
    return (mem_lens.float() * ratio).long().add(8).clamp(max=limit - 1)


@torch.no_grad()
def greedy_search(
    model: ASRModel, memory: Tensor, mem_lens: Tensor, max_len_ratio: float = 1.5, use_cache: bool = True,
    max_lens: Tensor | None = None,
) -> list[list[int]]:
    """Most likely next token at every step, for a batch of encoder outputs (B, T', D).

    Returns B token-id lists without start/end tokens. Each output is at most proportional to its
    encoder length, and at most `max_lens` tokens where given (0 = emit nothing). `use_cache=False`
    recomputes the whole prefix at each step (the reference the cached path must match exactly).
    """
    B, device = memory.shape[0], memory.device
    limits = max_output_lengths(mem_lens, max_len_ratio, model.cfg.max_target_len)
    if max_lens is not None:
        limits = torch.minimum(limits, max_lens.to(device))
    results: list[list[int]] = [[] for _ in range(B)]
    rows = torch.nonzero(limits > 0).flatten()  # original index of each live row
    memory, mem_lens, limits = memory[rows], mem_lens[rows], limits[rows]
    tokens = torch.full((rows.numel(), 1), SOS_EOS, dtype=torch.long, device=device)
    cache = model.decoder.new_cache() if use_cache else None
    step = 0
    while rows.numel() > 0:
        inputs = tokens[:, -1:] if use_cache else tokens
        logits = model.decoder(inputs, memory, mem_lens, cache)[:, -1]  # (b, V)
        logits[:, BLANK] = float("-inf")  # the CTC blank is not a decoder output
        next_tok = logits.argmax(-1)  # (b,)
        tokens = torch.cat([tokens, next_tok[:, None]], 1)
        step += 1
        done = (next_tok == SOS_EOS) | (step >= limits)
        if done.any():
            for r in torch.nonzero(done).flatten().tolist():
                seq = tokens[r, 1:].tolist()
                results[rows[r]] = seq[:-1] if seq[-1] == SOS_EOS else seq
            keep = torch.nonzero(~done).flatten()
            rows, tokens, memory, mem_lens, limits = rows[keep], tokens[keep], memory[keep], mem_lens[keep], limits[keep]
            if cache is not None:
                cache.reorder(keep, keep)
    return results


def trim_repetitions(seq: list[int], reference: list[int], min_repeats: int = 3, max_period: int = 12) -> list[int]:
    """Cut a loop off the end of a greedy output: if `seq` ends with a unit (1..max_period tokens)
    repeated at least `min_repeats` times, keep only as many repeats as `reference` (the CTC best
    path, which cannot loop) contains in a row, and at least one."""
    for period in range(1, min(max_period, len(seq) // min_repeats) + 1):
        unit = seq[-period:]
        reps = 1
        while reps * period + period <= len(seq) and seq[len(seq) - (reps + 1) * period : len(seq) - reps * period] == unit:
            reps += 1
        if reps >= min_repeats:
            allowed = max(1, _max_run(reference, unit))
            if reps > allowed:
                return seq[: len(seq) - (reps - allowed) * period]
    return seq


def _max_run(seq: list[int], unit: list[int]) -> int:
    """Most consecutive repeats of `unit` anywhere in `seq`."""
    p, best = len(unit), 0
    for start in range(len(seq)):
        n = 0
        while seq[start + n * p : start + (n + 1) * p] == unit:
            n += 1
        best = max(best, n)
    return best


@dataclass
class Hypothesis:
    tokens: list[int]  # without start/end tokens
    score: float  # what hypotheses are ranked by: log_prob / (tokens + 1) ** length_penalty
    log_prob: float  # weighted attention + CTC (+ LM) log probability, end token included


@torch.no_grad()
def beam_search(
    model: ASRModel, memory: Tensor, mem_lens: Tensor, ctc_logits: Tensor | None = None, beam_size: int = 5,
    ctc_weight: float = 0.0, length_penalty: float = 1.0, max_len_ratio: float = 1.5,
    max_lens: Tensor | None = None, n_best: int = 1, use_cache: bool = True, pre_beam: float = 1.5,
    lm: NGramLM | None = None, lm_weight: float = 0.0,
) -> list[list[Hypothesis]]:
    """Beam search for a batch of encoder outputs (B, T', D): B lists of the n best hypotheses.

    All B x beam_size hypotheses decode as one batch; the beams of an utterance share its
    cross-attention keys/values. Each step scores a few candidates per hypothesis (the best by the
    decoder, plus end-of-sentence) as (1 - ctc_weight) x attention + ctc_weight x CTC prefix score
    (+ lm_weight x the n-gram LM's log probability: shallow fusion).
    An utterance stops when no live hypothesis can beat its n-th best finished one: scores only
    fall as tokens are added, so a live hypothesis ends at best with its current log probability
    divided by the longest length it may reach. A length limit (from the encoder length, and
    `max_lens` where given) bounds the rest.
    """
    B, K, device = memory.shape[0], beam_size, memory.device
    limits = max_output_lengths(mem_lens, max_len_ratio, model.cfg.max_target_len)
    if max_lens is not None:
        limits = torch.minimum(limits, max_lens.to(device))
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    for b in torch.nonzero(limits <= 0).flatten().tolist():
        finished[b].append(Hypothesis([], 0.0, 0.0))
    utts = torch.nonzero(limits > 0).flatten()  # original index of each live utterance
    memory, mem_lens, limits = memory[utts], mem_lens[utts], limits[utts]
    scorer = CTCPrefixScorer(ctc_logits[utts], mem_lens, SOS_EOS) if ctc_weight > 0 and ctc_logits is not None else None
    ctc_state = scorer.initial_state(K) if scorer else None
    C = max(K, int(pre_beam * K)) if scorer else K  # decoder candidates per hypothesis (CTC scores only these)
    n = utts.numel()
    tokens = torch.full((n * K, 1), SOS_EOS, dtype=torch.long, device=device)
    scores = torch.full((n, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis per utterance to start with
    cache = model.decoder.new_cache() if use_cache else None
    step = 0
    while utts.numel() > 0:
        step += 1
        n = utts.numel()
        logits = model.decoder(tokens[:, -1:] if use_cache else tokens, memory, mem_lens, cache)[:, -1]
        logp = logits.float().log_softmax(-1)  # (nK, V)
        full = logp if scorer is None else (1 - ctc_weight) * logp  # the scores over the whole vocabulary
        if lm is not None and lm_weight:
            full = full + lm_weight * lm.batch_logprobs([lm.context(row) for row in tokens[:, 1:].tolist()]).to(device)
        # candidates: the best tokens by those, and always end-of-sentence (CTC may want to stop)
        ranked = full.clone()
        ranked[:, [BLANK, SOS_EOS]] = float("-inf")
        cand = torch.cat([ranked.topk(min(C, logp.shape[1] - 2), -1).indices,
                          torch.full_like(tokens[:, :1], SOS_EOS)], 1)  # (nK, C)
        cand_score = full.gather(1, cand)
        if scorer is not None:
            cand_score = cand_score + ctc_weight * scorer.score(ctc_state, cand)
        Cn = cand.shape[1]
        total = (scores.view(-1, 1) + cand_score).view(n, K * Cn)
        top_score, top = total.topk(min(2 * K, K * Cn), -1)  # (n, 2K): enough for K that do not end
        top_tok = cand.view(n, K * Cn).gather(1, top)
        parent = torch.arange(n, device=device)[:, None] * K + top // Cn  # row of the extended hypothesis
        at_limit = step >= limits  # (n,)
        ends = (top_tok == SOS_EOS) | at_limit[:, None]

        # hypotheses that end among the K best are finished
        fin = ends & (torch.arange(top.shape[1], device=device) < K) & torch.isfinite(top_score)
        if fin.any():
            for u, j in torch.nonzero(fin).tolist():
                tok, s = int(top_tok[u, j]), float(top_score[u, j])
                seq = tokens[parent[u, j], 1:].tolist() + ([] if tok == SOS_EOS else [tok])
                finished[int(utts[u])].append(Hypothesis(seq, s / (len(seq) + 1) ** length_penalty, s))

        # the K best that do not end carry on
        order = torch.argsort(ends.int(), dim=1, stable=True)[:, :K]
        scores = top_score.gather(1, order)
        rows = parent.gather(1, order).view(-1)
        new_tok = top_tok.gather(1, order).view(-1)
        tokens = torch.cat([tokens[rows], new_tok[:, None]], 1)

        # an utterance is done when no live hypothesis can beat its n-th best finished one
        best_live = scores.max(1).values / (limits + 1).float() ** length_penalty
        done = at_limit | ~torch.isfinite(scores.max(1).values)
        for u in range(n):
            hyps = finished[int(utts[u])]
            if len(hyps) >= n_best and sorted(h.score for h in hyps)[-n_best] >= float(best_live[u]):
                done[u] = True
        keep = torch.nonzero(~done).flatten()
        live_rows = (keep[:, None] * K + torch.arange(K, device=device)).view(-1)
        tokens, scores = tokens[live_rows], scores[keep]
        rows = rows.view(n, K)[keep].view(-1)  # parents of the hypotheses that carry on
        if cache is not None:
            cache.reorder(rows, keep if keep.numel() < n else None)
        if scorer is not None and keep.numel() > 0:
            scorer.select_utterances(keep)
            ctc_state = scorer.advance(ctc_state, rows, new_tok.view(n, K)[keep].view(-1))
        utts, memory, mem_lens, limits = utts[keep], memory[keep], mem_lens[keep], limits[keep]
    return [sorted(h, key=lambda h: -h.score)[:n_best] for h in finished]
