"""The network: a transformer encoder over feature frames and a decoder that cross-attends to it.

    frames (B, T, F) --Encoder--> memory (B, T', D) --CTC head--> (B, T', V)
    tokens (B, L)    --Decoder(memory)--> logits (B, L, V)

A plain nn.Module: no training loop and no search live here. Incremental decoding keeps its
keys/values in a `KVCache` that the search code owns and can reorder (for beams).

Encoder options (ModelConfig): rotary positions in self-attention instead of added ones
(`enc_positions: rope`, `dec_positions: rope`), and Conformer blocks (`block: conformer`: macaron
feed-forward halves around attention and a convolution module). The plain transformer stays the default.

The same network hosts OpenAI Whisper exactly (asr/importers.py fills it): Whisper's conv1d front
end (2x), a stored encoder position table, learned decoder positions, no embedding scaling and
no CTC head are ModelConfig options, never a second model class. A CTC head trained on it later
spells letters (`ctc_vocab: letters`), through blocks of its own (`ctc_layers`) where the encoder stays frozen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asr.config import ModelConfig
from asr.model.masks import causal_mask, chunk_mask, key_padding_mask_or_none, lengths_to_mask
from asr.text.tokenizers import LETTERS

MIN_FRAMES = 7  # the conv front end needs 7 input frames to produce one output frame
# Incremental decoding keeps cross-attention keys/values per utterance from this many encoder frames
# on (KVCache.fill_cross); shorter memories stay one batch: per utterance, long memories are copied
# less when beams reorder, short ones pay for more attention calls (recipes/benchmarks/README.md,
# "int8 details" lists the timings behind 200).
PER_UTTERANCE_FRAMES = 200


def sinusoids(length: int, channels: int, offset: int = 0, device: torch.device | None = None) -> Tensor:
    """(length, channels) sinusoidal position encodings starting at position `offset`."""
    pos = torch.arange(offset, offset + length, device=device, dtype=torch.float32)[:, None]
    inv = torch.exp(-math.log(10000.0) * torch.arange(0, channels, 2, device=device).float() / channels)
    ang = pos * inv[None, :]  # (length, channels/2)
    return torch.stack([ang.sin(), ang.cos()], dim=-1).flatten(1)  # interleave sin/cos


class Rotary(NamedTuple):
    """Rotary position embedding (RoPE, Su et al. 2021) for positions offset..offset+L-1: queries and keys
    are turned by angles proportional to their positions, so q.k depends only on their distance."""

    cos: Tensor  # (L, Dh/2)
    sin: Tensor

    @classmethod
    def at(cls, length: int, head_dim: int, offset: int = 0, device: torch.device | None = None,
           base: float = 10000.0) -> "Rotary":
        pos = torch.arange(offset, offset + length, device=device, dtype=torch.float32)[:, None]
        inv = base ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
        ang = pos * inv[None, :]
        return cls(ang.cos(), ang.sin())

    def __call__(self, x: Tensor) -> Tensor:
        """(B, H, L, Dh) -> the same, each position's pairs (x_i, x_{i+Dh/2}) rotated (GPT-NeoX's layout)."""
        a, b = x.chunk(2, dim=-1)
        cos, sin = self.cos.to(x.dtype), self.sin.to(x.dtype)
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


@dataclass
class KVCache:
    """Per decoder layer: self-attention keys/values grown one step at a time, and
    cross-attention keys/values computed once from the encoder memory.

    Self-attention rows are hypotheses; cross-attention rows are utterances. In beam search the
    K hypotheses of an utterance are consecutive rows and share its one cross-attention row.
    Cross-attention keys/values are (B, H, T', Dh) tensors (a short memory, or a graph's inputs
    in ONNX), or, for a long memory, one (1, H, T'_b, Dh) pair per utterance, its valid frames only
    (`fill_cross`): an utterance that finishes leaves without copying the others' (for 16 Whisper
    windows, 300 MB a time), and each attends to its own frames without a mask."""

    self_kv: list[tuple[Tensor, Tensor] | None] = field(default_factory=list)
    cross_kv: list[tuple[Tensor, Tensor] | list[tuple[Tensor, Tensor]] | None] = field(default_factory=list)

    @property
    def length(self) -> int:
        first = self.self_kv[0] if self.self_kv else None
        return 0 if first is None else first[0].shape[2]

    def fill_cross(self, attns: list["MultiHeadAttention"], memory: Tensor, memory_lens: Tensor) -> None:
        """Each layer's cross-attention keys/values: one batch, or from PER_UTTERANCE_FRAMES encoder
        frames on one contiguous pair per utterance."""
        lens = memory_lens.tolist()
        for i, attn in enumerate(attns):
            k, v = attn.project_kv(memory)
            self.cross_kv[i] = (k, v) if memory.shape[1] < PER_UTTERANCE_FRAMES else \
                [(k[b:b + 1, :, :n].contiguous(), v[b:b + 1, :, :n].contiguous()) for b, n in enumerate(lens)]

    def reorder(self, index: Tensor, cross_index: Tensor | None = None) -> None:
        """Keep hypothesis rows `index` (in that order): beam re-ranking, or dropping finished rows;
        and utterance rows `cross_index` when utterances leave the batch."""
        self.self_kv = [None if kv is None else (kv[0][index], kv[1][index]) for kv in self.self_kv]
        if cross_index is not None:
            keep = cross_index.tolist()
            self.cross_kv = [kv if kv is None else [kv[j] for j in keep] if isinstance(kv, list)
                             else (kv[0][cross_index], kv[1][cross_index]) for kv in self.cross_kv]


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def split(self, x: Tensor) -> Tensor:
        B, L, D = x.shape
        return x.view(B, L, self.n_heads, D // self.n_heads).transpose(1, 2)  # (B, H, L, D/H)

    def forward(
        self, x: Tensor, kv: tuple[Tensor, Tensor], mask: Tensor | None, qk: list[Tensor] | None = None,
        rope: Rotary | None = None,
    ) -> Tensor:
        """With a list `qk`, the attention logits q.k/sqrt(d) (B, H, L, S) are appended to it (Whisper's
        word timing): computed explicitly then, since the fused kernel of the normal path returns none.
        `rope`: the queries' rotary positions (the keys were turned by `project_kv`)."""
        q = self.split(self.query(x))
        if rope is not None:
            q = rope(q)
        k, v = kv
        if mask is not None and mask.dtype == torch.bool and (torch.compiler.is_exporting() or torch.jit.is_tracing()):
            # a graph: an additive mask, added to the scores, where a boolean one becomes a Where over every
            # (B, H, L, S) score (27% of a 15-s Whisper encoder pass on ONNX Runtime)
            mask = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, -1e9)
        if qk is None:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            logits = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (B, H, L, S)
            qk.append(logits)
            y = logits.masked_fill(~mask, float("-inf")).softmax(-1) @ v if mask is not None else logits.softmax(-1) @ v
        B, H, L, Dh = y.shape
        return self.out(y.transpose(1, 2).reshape(B, L, H * Dh))

    def project_kv(self, source: Tensor, rope: Rotary | None = None) -> tuple[Tensor, Tensor]:
        k = self.split(self.key(source))
        return k if rope is None else rope(k), self.split(self.value(source))

    def attend_each(self, x: Tensor, kvs: list[tuple[Tensor, Tensor]]) -> Tensor:
        """forward for (B, L, D) queries where row b attends only to its own keys/values kvs[b]."""
        q = self.split(self.query(x))
        y = torch.cat([F.scaled_dot_product_attention(q[b:b + 1], k, v) for b, (k, v) in enumerate(kvs)])
        B, H, L, Dh = y.shape
        return self.out(y.transpose(1, 2).reshape(B, L, H * Dh))


class MLP(nn.Sequential):
    def __init__(self, d_model: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(d_model, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d_model))


class EncoderBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.attn_ln, self.attn = nn.LayerNorm(d), MultiHeadAttention(d, cfg.n_heads, cfg.attn_dropout)
        self.mlp_ln, self.mlp = nn.LayerNorm(d), MLP(d, d * cfg.ffn_mult, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None, rope: Rotary | None = None,
                valid: Tensor | None = None) -> Tensor:
        h = self.attn_ln(x)
        x = x + self.drop(self.attn(h, self.attn.project_kv(h, rope), mask, rope=rope))
        return x + self.drop(self.mlp(self.mlp_ln(x)))


class ConvModule(nn.Module):
    """Conformer's convolution module: pointwise convolution and GLU, a depthwise convolution over time,
    normalization, SiLU, pointwise convolution. LayerNorm, not the paper's BatchNorm: no batch statistics,
    so a padded batch and an utterance alone give the same output. `causal`: the kernel sees only past
    frames (a streaming model: chunked attention must not leak the next chunk through the convolution)."""

    def __init__(self, d_model: int, kernel: int, causal: bool):
        super().__init__()
        self.ln = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, groups=d_model)
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.pad = (kernel - 1, 0) if causal else ((kernel - 1) // 2, kernel // 2)

    def forward(self, x: Tensor, valid: Tensor | None) -> Tensor:
        h = F.glu(self.pointwise_in(self.ln(x)), dim=-1)
        if valid is not None:  # padded frames must not leak into real ones through the kernel
            h = h.masked_fill(~valid, 0.0)
        h = self.depthwise(F.pad(h.transpose(1, 2), self.pad)).transpose(1, 2)
        return self.pointwise_out(F.silu(self.norm(h)))


class ConformerBlock(nn.Module):
    """Gulati et al. 2020: half a feed-forward, self-attention, convolution, half a feed-forward, LayerNorm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.ff1_ln, self.ff1 = nn.LayerNorm(d), MLP(d, d * cfg.ffn_mult, cfg.dropout)
        self.attn_ln, self.attn = nn.LayerNorm(d), MultiHeadAttention(d, cfg.n_heads, cfg.attn_dropout)
        self.conv = ConvModule(d, cfg.conv_kernel, causal=cfg.dynamic_chunk)
        self.ff2_ln, self.ff2 = nn.LayerNorm(d), MLP(d, d * cfg.ffn_mult, cfg.dropout)
        self.ln_out = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None, rope: Rotary | None = None,
                valid: Tensor | None = None) -> Tensor:
        x = x + 0.5 * self.drop(self.ff1(self.ff1_ln(x)))
        h = self.attn_ln(x)
        x = x + self.drop(self.attn(h, self.attn.project_kv(h, rope), mask, rope=rope))
        x = x + self.drop(self.conv(x, valid))
        x = x + 0.5 * self.drop(self.ff2(self.ff2_ln(x)))
        return self.ln_out(x)


class DecoderBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.attn_ln, self.attn = nn.LayerNorm(d), MultiHeadAttention(d, cfg.n_heads, cfg.attn_dropout)
        self.cross_attn_ln, self.cross_attn = nn.LayerNorm(d), MultiHeadAttention(d, cfg.n_heads, cfg.attn_dropout)
        self.mlp_ln, self.mlp = nn.LayerNorm(d), MLP(d, d * cfg.ffn_mult, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, memory: Tensor, memory_mask: Tensor | None, cache: KVCache | None, i: int,
                cross_qk: list[Tensor] | None = None, rope: Rotary | None = None) -> Tensor:
        h = self.attn_ln(x)
        k, v = self.attn.project_kv(h, rope)  # keys are cached turned by their positions
        if cache is not None:  # append this step's keys/values to the ones already computed
            if cache.self_kv[i] is not None:
                k, v = torch.cat([cache.self_kv[i][0], k], 2), torch.cat([cache.self_kv[i][1], v], 2)
            cache.self_kv[i] = (k, v)
        self_mask = causal_mask(x.shape[1], k.shape[2], x.device)
        x = x + self.drop(self.attn(h, (k, v), self_mask, rope=rope))

        cross = cache.cross_kv[i] if cache is not None else self.cross_attn.project_kv(memory)
        h = self.cross_attn_ln(x)
        N, L, D = h.shape
        B = len(cross) if isinstance(cross, list) else cross[0].shape[0]  # utterances; N = B x hypotheses each
        # the hypotheses of one utterance query its memory together: (N, L, D) -> (B, N/B * L, D)
        h = h.reshape(B, N // B * L, D)
        y = self.cross_attn.attend_each(h, cross) if isinstance(cross, list) else \
            self.cross_attn(h, cross, memory_mask, cross_qk)
        x = x + self.drop(y.view(N, L, D))
        return x + self.drop(self.mlp(self.mlp_ln(x)))


class Conv2dSubsampling(nn.Module):
    """Two 3x3 stride-2 convolutions over (time, frequency): 4x fewer frames."""

    subsampling = 4

    def __init__(self, n_feats: int, d_model: int, channels: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, 2), nn.GELU(), nn.Conv2d(channels, channels, 3, 2), nn.GELU()
        )
        f = ((n_feats - 1) // 2 - 1) // 2
        self.proj = nn.Linear(channels * f, d_model)

    @staticmethod
    def out_lengths(lens: Tensor) -> Tensor:
        return (((lens - 1) // 2 - 1) // 2).clamp(min=1)

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[1] < MIN_FRAMES:
            x = F.pad(x, (0, 0, 0, MIN_FRAMES - x.shape[1]))
        x = self.conv(x.unsqueeze(1))  # (B, C, T/4, F/4)
        B, C, T, Fq = x.shape
        x = self.proj(x.permute(0, 2, 1, 3).reshape(B, T, C * Fq))  # (B, T/4, D)
        return x, self.out_lengths(lens)


class FrameStacking(nn.Module):
    """Stack 4 consecutive frames and project: dense frame vectors straight into the encoder."""

    def __init__(self, n_feats: int, d_model: int, stride: int = 4):
        super().__init__()
        self.stride = self.subsampling = stride
        self.proj = nn.Linear(n_feats * stride, d_model)

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        B, T, Fd = x.shape
        if T % self.stride:
            x = F.pad(x, (0, 0, 0, self.stride - T % self.stride))
        x = x.reshape(B, -1, Fd * self.stride)  # (B, T/4, 4F)
        return self.proj(x), (lens // self.stride).clamp(min=1)


class Conv1dSubsampling(nn.Module):
    """Whisper's front end: a width-3 convolution over time, then a stride-2 one: 2x fewer frames."""

    subsampling = 2

    def __init__(self, n_feats: int, d_model: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_feats, d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(d_model, d_model, 3, stride=2, padding=1)

    @staticmethod
    def out_lengths(lens: Tensor) -> Tensor:
        return (lens - 1) // 2 + 1

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        x = F.gelu(self.conv1(x.transpose(1, 2)))  # (B, D, T)
        x = F.gelu(self.conv2(x))  # (B, D, T/2)
        return x.transpose(1, 2), self.out_lengths(lens)


BLOCKS: dict[str, type[nn.Module]] = {"transformer": EncoderBlock, "conformer": ConformerBlock}


def make_frontend(cfg: ModelConfig, n_feats: int) -> nn.Module:
    if cfg.frontend == "conv2d":
        return Conv2dSubsampling(n_feats, cfg.d_model, cfg.conv_channels)
    if cfg.frontend == "stack":
        return FrameStacking(n_feats, cfg.d_model)
    if cfg.frontend == "conv1d":
        return Conv1dSubsampling(n_feats, cfg.d_model)
    raise ValueError(f"model.frontend must be 'conv2d', 'stack' or 'conv1d', not {cfg.frontend!r}")


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, n_feats: int):
        super().__init__()
        self.frontend = make_frontend(cfg, n_feats)
        self.subsampling: int = self.frontend.subsampling  # feature frames per encoder frame
        # scale content up before adding unit-amplitude positions, so positions don't swamp it (ESPnet's
        # xscale); Whisper adds its positions unscaled
        self.xscale = math.sqrt(cfg.d_model) if cfg.scale_embeddings else 1.0
        if cfg.enc_positions not in ("sinusoidal", "table", "rope"):
            raise ValueError(f"model.enc_positions must be 'sinusoidal', 'table' or 'rope', not {cfg.enc_positions!r}")
        if cfg.block not in BLOCKS:
            raise ValueError(f"model.block must be one of {sorted(BLOCKS)}, not {cfg.block!r}")
        # Whisper's table is a buffer: imported (its sinusoid layout differs from ours), never trained
        table = sinusoids(cfg.max_source_len, cfg.d_model) if cfg.enc_positions == "table" else None
        self.register_buffer("positional_embedding", table)
        self.rope = cfg.enc_positions == "rope"  # positions inside self-attention, none added to the input
        self.head_dim = cfg.d_model // cfg.n_heads
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(BLOCKS[cfg.block](cfg) for _ in range(cfg.enc_layers))
        self.convolves = cfg.block == "conformer"
        self.ln_post = nn.LayerNorm(cfg.d_model)

    def positions(self, length: int, x: Tensor, offset: int = 0) -> Tensor:
        """(length, D) positions for encoder frames offset..offset+length-1."""
        if self.positional_embedding is None:
            return sinusoids(length, x.shape[2], offset, device=x.device).to(x.dtype)
        if offset + length > len(self.positional_embedding):
            raise ValueError(f"{offset + length} encoder frames exceed the position table's "
                             f"{len(self.positional_embedding)}")
        return self.positional_embedding[offset : offset + length].to(x.dtype)

    def forward(self, feats: Tensor, feat_lens: Tensor, chunk: int = 0) -> tuple[Tensor, Tensor]:
        """(B, T, F) frames -> (B, T', D) memory and its lengths. `chunk` > 0: chunked attention, each
        frame seeing the frames up to the end of its chunk of `chunk` frames (streaming)."""
        x, lens = self.frontend(feats, feat_lens)
        T = x.shape[1]
        rope = Rotary.at(T, self.head_dim, device=x.device) if self.rope else None
        x = self.drop(x * self.xscale if self.rope else x * self.xscale + self.positions(T, x))
        mask = key_padding_mask_or_none(lens, T)
        valid = None if mask is None or not self.convolves else lengths_to_mask(lens, T)[:, :, None]
        if chunk > 0 and chunk < T:
            chunks = chunk_mask(T, chunk, x.device)
            mask = chunks if mask is None else mask & chunks
        for block in self.blocks:
            x = block(x, mask, rope, valid)
        return self.ln_post(x), lens


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.d_model = cfg.d_model
        self.token_embedding = nn.Embedding(vocab_size, cfg.d_model)
        # std d^-1/2: scaled inputs have unit variance, and tied output logits start near unit scale
        nn.init.normal_(self.token_embedding.weight, std=cfg.d_model**-0.5)
        self.scale = math.sqrt(cfg.d_model) if cfg.scale_embeddings else 1.0
        if cfg.dec_positions not in ("sinusoidal", "learned", "rope"):
            raise ValueError(f"model.dec_positions must be 'sinusoidal', 'learned' or 'rope', "
                             f"not {cfg.dec_positions!r}")
        learned = cfg.dec_positions == "learned"  # Whisper's (n_text_ctx, D) table
        self.rope = cfg.dec_positions == "rope"
        self.head_dim = cfg.d_model // cfg.n_heads
        table = nn.Parameter(0.01 * torch.randn(cfg.max_target_len, cfg.d_model)) if learned else None
        self.register_parameter("positional_embedding", table)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.dec_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.out = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, vocab_size, bias=False)

    def new_cache(self) -> KVCache:
        n = len(self.blocks)
        return KVCache([None] * n, [None] * n)

    def positions(self, offset: int, length: int, x: Tensor) -> Tensor:
        """(length, D) positions for tokens offset..offset+length-1."""
        if self.positional_embedding is None:
            return sinusoids(length, self.d_model, offset, x.device).to(x.dtype)
        if offset + length > len(self.positional_embedding):
            raise ValueError(f"{offset + length} tokens exceed the {len(self.positional_embedding)} learned positions")
        return self.positional_embedding[offset:offset + length].to(x.dtype)

    def forward(self, tokens: Tensor, memory: Tensor, memory_lens: Tensor, cache: KVCache | None = None,
                cross_qk: list[Tensor] | None = None) -> Tensor:
        """(N, L) tokens -> (N, L, V) logits, for memory (B, T', D) with N a multiple of B: rows
        [k*N/B, (k+1)*N/B) are hypotheses of utterance k. With a cache, `tokens` are only the new positions.
        With a list `cross_qk`, each layer appends its cross-attention logits (B, H, N/B * L, T')."""
        offset = cache.length if cache is not None else 0
        x = self.token_embedding(tokens) * self.scale
        rope = Rotary.at(tokens.shape[1], self.head_dim, offset, x.device) if self.rope else None
        x = self.drop(x if self.rope else x + self.positions(offset, tokens.shape[1], x))
        if cache is not None and cache.cross_kv[0] is None:  # the first step
            cache.fill_cross([block.cross_attn for block in self.blocks], memory, memory_lens)
        per_utterance = cache is not None and isinstance(cache.cross_kv[0], list)
        memory_mask = None if per_utterance else key_padding_mask_or_none(memory_lens, memory.shape[1])
        for i, block in enumerate(self.blocks):
            x = block(x, memory, memory_mask, cache, i, cross_qk, rope)
        x = self.ln(x)
        return x @ self.token_embedding.weight.T if self.out is None else self.out(x)


class CTCHead(nn.Module):
    """A CTC head with blocks of its own above the encoder (`ctc_layers`), so an encoder kept as it
    was (Whisper's, frozen) is spelled out by a few trained blocks rather than one linear map."""

    def __init__(self, cfg: ModelConfig, size: int):
        super().__init__()
        self.blocks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.ctc_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.out = nn.Linear(cfg.d_model, size)

    def forward(self, memory: Tensor, lens: Tensor) -> Tensor:
        mask = key_padding_mask_or_none(lens, memory.shape[1])
        for block in self.blocks:
            memory = block(memory, mask)
        return self.out(self.ln(memory))


def make_ctc_head(cfg: ModelConfig, vocab_size: int) -> nn.Module | None:
    """None without `ctc`; a linear map to the decoder's vocabulary or to letters, or a `CTCHead`."""
    if not cfg.ctc:
        return None
    if cfg.ctc_vocab not in ("tokens", "letters"):
        raise ValueError(f"model.ctc_vocab must be 'tokens' or 'letters', not {cfg.ctc_vocab!r}")
    if cfg.ctc_layers and cfg.dynamic_chunk:
        raise ValueError("model.ctc_layers attend over the whole utterance: not with dynamic_chunk (streaming)")
    size = LETTERS.size if cfg.ctc_vocab == "letters" else vocab_size
    return CTCHead(cfg, size) if cfg.ctc_layers else nn.Linear(cfg.d_model, size)


class Encoded(NamedTuple):
    memory: Tensor  # (B, T', D) encoder output
    lengths: Tensor  # (B,) valid frames of each row
    ctc_logits: Tensor | None  # (B, T', V), None for a model without a CTC head


class ASRModel(nn.Module):
    def __init__(self, cfg: ModelConfig, n_feats: int, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg, n_feats)
        self.decoder = Decoder(cfg, vocab_size)
        self.ctc_head = make_ctc_head(cfg, vocab_size)

    @property
    def subsampling(self) -> int:
        """Feature frames per encoder frame (4 for conv2d and stack, 2 for Whisper's conv1d)."""
        return self.encoder.subsampling

    def encode(self, feats: Tensor, feat_lens: Tensor, chunk: int = 0) -> Encoded:
        """(B, T, F) frames -> encoder output, its lengths and CTC logits (None without a CTC head);
        `chunk`: chunked attention (`Encoder.forward`)."""
        memory, mem_lens = self.encoder(feats, feat_lens, chunk)
        if self.ctc_head is None:
            return Encoded(memory, mem_lens, None)
        head = self.ctc_head
        return Encoded(memory, mem_lens, head(memory, mem_lens) if isinstance(head, CTCHead) else head(memory))

    def forward(self, feats: Tensor, feat_lens: Tensor, tokens: Tensor, chunk: int = 0) -> tuple[Tensor, Encoded]:
        """Teacher forcing: -> decoder logits (B, L, V), and the encoder's output."""
        enc = self.encode(feats, feat_lens, chunk)
        return self.decoder(tokens, enc.memory, enc.lengths), enc
