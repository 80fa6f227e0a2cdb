"""Search over the decoder: batched greedy decoding with a KV cache.

Cross-attention keys/values are computed once per utterance; self-attention keys/values grow one
step at a time. Rows that have emitted end-of-sentence leave the batch (`KVCache.reorder`), the
same operation beam search uses to re-rank hypotheses.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .model import ASRModel
from .text import SOS_EOS


def max_output_lengths(mem_lens: Tensor, ratio: float, limit: int) -> Tensor:
    """Longest output each utterance may produce: proportional to its encoder length."""
    return (mem_lens.float() * ratio).long().add(8).clamp(max=limit - 1)


@torch.no_grad()
def greedy_search(
    model: ASRModel, memory: Tensor, mem_lens: Tensor, max_len_ratio: float = 1.5, use_cache: bool = True
) -> list[list[int]]:
    """Most likely next token at every step, for a batch of encoder outputs (B, T', D).

    Returns B token-id lists without start/end tokens. `use_cache=False` recomputes the whole
    prefix at each step (the reference the cached path must match exactly).
    """
    B, device = memory.shape[0], memory.device
    limits = max_output_lengths(mem_lens, max_len_ratio, model.cfg.max_target_len)
    rows = torch.arange(B, device=device)  # original index of each live row
    tokens = torch.full((B, 1), SOS_EOS, dtype=torch.long, device=device)
    cache = model.decoder.new_cache() if use_cache else None
    results: list[list[int]] = [[] for _ in range(B)]
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
