"""Search over the decoder: batched greedy decoding with a KV cache.

Cross-attention keys/values are computed once per utterance; self-attention keys/values grow one
step at a time. Rows that have emitted end-of-sentence leave the batch (`KVCache.reorder`), the
same operation beam search uses to re-rank hypotheses.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .model import ASRModel
from .text import BLANK, SOS_EOS


def max_output_lengths(mem_lens: Tensor, ratio: float, limit: int) -> Tensor:
    """Longest output each utterance may produce: proportional to its encoder length."""
    return (mem_lens.float() * ratio).long().add(8).clamp(max=limit - 1)


def ctc_greedy(ctc_logits: Tensor, mem_lens: Tensor) -> list[list[int]]:
    """Best path of the CTC head: argmax per frame, repeats merged, blanks removed."""
    best = ctc_logits.argmax(-1).tolist()  # (B, T')
    out = []
    for frames, n in zip(best, mem_lens.tolist()):
        frames = frames[:n]
        out.append([t for i, t in enumerate(frames) if t != BLANK and (i == 0 or frames[i - 1] != t)])
    return out


def ctc_length_limits(ctc_logits: Tensor, mem_lens: Tensor, slack: float = 0.25, extra: int = 4) -> Tensor:
    """A cheap guard against attention loops and invented text: the attention decoder may emit at
    most (1 + slack) x the CTC best path's length (+ extra); none at all where CTC hears nothing."""
    n = torch.tensor([len(s) for s in ctc_greedy(ctc_logits, mem_lens)], device=mem_lens.device)
    return torch.where(n > 0, (n.float() * (1 + slack)).long() + extra, torch.zeros_like(n))


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
                cache.reorder(keep)
    return results
