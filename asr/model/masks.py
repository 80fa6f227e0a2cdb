"""Lengths -> masks: the one place padded positions are decided.

Convention: `valid` masks are True where a position holds real data. Attention masks for
`scaled_dot_product_attention` are boolean and True where attention is *allowed*.
"""

from __future__ import annotations

import torch
from torch import Tensor


def lengths_to_mask(lens: Tensor, max_len: int | None = None) -> Tensor:
    """(B,) lengths -> (B, T) bool, True at positions < length."""
    max_len = int(lens.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lens.device)[None, :] < lens[:, None]


def key_padding_mask(lens: Tensor, max_len: int) -> Tensor:
    """(B,) key lengths -> (B, 1, 1, S) attention mask: each query may see only real keys."""
    return lengths_to_mask(lens, max_len)[:, None, None, :]


def key_padding_mask_or_none(lens: Tensor, max_len: int) -> Tensor | None:
    """key_padding_mask, or None when every row is full length (Whisper's fixed 30 s windows): without
    a mask, scaled_dot_product_attention can use its fused kernel instead of materializing the scores."""
    if torch.compiler.is_exporting() or torch.jit.is_tracing():  # a graph (ONNX) must keep the mask: lengths vary
        return key_padding_mask(lens, max_len)
    return None if bool((lens >= max_len).all()) else key_padding_mask(lens, max_len)


def chunk_mask(length: int, chunk: int, device: torch.device | None = None) -> Tensor:
    """(length, length) mask of chunked attention (WeNet's): a frame sees every frame up to the end
    of its own chunk of `chunk` frames, nothing after it, so an encoder frame never changes once
    its chunk has arrived."""
    ends = (torch.arange(length, device=device) // chunk + 1) * chunk  # where each query's chunk ends
    return torch.arange(length, device=device)[None, :] < ends[:, None]


def causal_mask(q_len: int, k_len: int, device: torch.device | None = None) -> Tensor:
    """(q_len, k_len) lower-triangular mask; the queries are the last q_len of k_len positions."""
    offset = k_len - q_len
    q = torch.arange(q_len, device=device)[:, None] + offset
    k = torch.arange(k_len, device=device)[None, :]
    return k <= q
