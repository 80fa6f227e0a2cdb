"""One utterance through a streaming model's encoder as its audio grows, paying only for what is new.

A model trained with `model.dynamic_chunk` decodes in chunks (`DecodeOptions.chunk`): an encoder frame
sees every frame up to the end of its own chunk, so once a chunk's audio has arrived its frames never
change. `EncoderStream` keeps them: each block's keys and values, the encoder output and the CTC head's
logits of every whole chunk whose audio is complete (WeNet's cached left context), and computes only
the chunks after them. Asked for the audio so far, it returns what `Recognizer.encode(audio, chunk)`
returns for the same audio: the cached chunks, and the chunk still growing computed afresh (not kept).

Features must be causal for this: `features.normalize` running, global or none (not `utterance`, whose
statistics move with every new frame); the front end conv2d and the blocks transformer (`streams`).
A feature frame is complete once its window (centred, n_fft samples) lies inside the audio; conv2d
reads feature frames 4j..4j+6 for encoder frame j, so a chunk of encoder frames [j, j + C) is final
once feature frame 4(j + C) + 2 is complete.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from asr.model.network import MIN_FRAMES, Conv2dSubsampling, Encoded, Encoder, EncoderBlock, Rotary
from asr.model.recognizer import Recognizer


def streams(rec: Recognizer, chunk: int) -> bool:
    """Can `rec` encode an utterance chunk by chunk with cached left context? Transformer blocks after
    the conv2d front end (a Conformer's convolution would need a cache of its own), causal features."""
    if chunk <= 0 or not rec.cfg.model.dynamic_chunk:
        return False
    enc = rec.model.encoder
    return (isinstance(enc.frontend, Conv2dSubsampling)
            and all(isinstance(b, EncoderBlock) for b in enc.blocks)
            and rec.cfg.features.normalize in ("running", "global", "none") and rec.cfg.features.pad_to_seconds == 0)


def encoder_step(enc: Encoder, x: Tensor, past: list[tuple[Tensor, Tensor] | None]) -> Tensor:
    """(B, C, D) front-end output for the next C encoder frames -> their encoder output, each attending
    to every frame before (each block's keys/values in `past`, grown here) and to the other C: what
    `Encoder.forward` with chunk C gives for frames that form one chunk."""
    offset = 0 if past[0] is None else past[0][0].shape[2]
    rope = Rotary.at(x.shape[1], enc.head_dim, offset, x.device) if enc.rope else None
    x = x * enc.xscale if enc.rope else x * enc.xscale + enc.positions(x.shape[1], x, offset)
    for i, block in enumerate(enc.blocks):
        h = block.attn_ln(x)
        k, v = block.attn.project_kv(h, rope)
        if past[i] is not None:
            k, v = torch.cat([past[i][0], k], 2), torch.cat([past[i][1], v], 2)
        past[i] = (k, v)
        x = x + block.attn(h, (k, v), None, rope=rope)
        x = x + block.mlp(block.mlp_ln(x))
    return enc.ln_post(x)


class EncoderStream:
    """The encoder of one utterance whose audio only grows (see the module docstring)."""

    def __init__(self, rec: Recognizer, chunk: int):
        if not streams(rec, chunk):
            raise ValueError("cached streaming needs a dynamic-chunk model with a conv2d front end, transformer "
                             "blocks and causal features (normalize running, global or none), and a chunk")
        self.rec, self.chunk = rec, chunk
        self.n_fft, self.hop = rec.cfg.features.n_fft, rec.features.hop
        self.past: list[tuple[Tensor, Tensor] | None] = [None] * len(rec.model.encoder.blocks)
        self.memory: list[Tensor] = []  # (1, chunk, D) per cached chunk
        self.ctc: list[Tensor] = []
        self.computed = 0  # encoder frames computed, cached or not, over the stream's life (the work done)

    @property
    def cached(self) -> int:
        """Encoder frames kept."""
        return len(self.memory) * self.chunk

    @torch.no_grad()
    def __call__(self, samples: np.ndarray) -> Encoded:
        """The encoding of `samples`, the utterance's audio from its start (the same audio each time,
        usually more of it; where less, the chunks it no longer covers are dropped)."""
        rec = self.rec
        wav = torch.from_numpy(np.ascontiguousarray(samples, np.float32))[None].to(rec.device)
        feats, lens = rec.features(wav, torch.tensor([wav.shape[1]], device=rec.device))
        n = feats.shape[1]
        total = int(rec.model.encoder.frontend.out_lengths(lens)[0])  # encoder frames of the whole audio
        if n < MIN_FRAMES:  # shorter than the front end reads: padded, as a file is
            return rec.model.encode(feats, lens, self.chunk)
        complete = min(n, (len(samples) - self.n_fft // 2) // self.hop + 1)  # frames inside the audio
        while self.memory and 4 * self.cached + 3 > complete:  # less audio than before (a final ending
            self.memory.pop()  # before the last partial's audio did): forget the chunks it cut
            self.ctc.pop()
            self.past = [(k[:, :, : self.cached], v[:, :, : self.cached]) for k, v in self.past]
        while True:  # cache whole chunks whose feature frames are all complete
            j = self.cached
            if j + self.chunk > total or 4 * (j + self.chunk) + 3 > complete:
                break
            mem = self._chunk(feats[:, 4 * j : 4 * (j + self.chunk) + 3], self.past)
            self.memory.append(mem)
            self.ctc.append(self._ctc(mem))
        memory, ctc = list(self.memory), list(self.ctc)
        j = self.cached
        if j < total:  # the chunk still growing (or the last ones), on a copy of the cache
            past = list(self.past)
            for start in range(j, total, self.chunk):
                end = min(start + self.chunk, total)
                mem = self._chunk(feats[:, 4 * start : 4 * end + 3], past)
                memory.append(mem)
                ctc.append(self._ctc(mem))
        logits = torch.cat(ctc, 1) if ctc and ctc[0] is not None else None
        return Encoded(torch.cat(memory, 1), torch.tensor([total], device=rec.device), logits)

    def _chunk(self, feats: Tensor, past: list) -> Tensor:
        x, _ = self.rec.model.encoder.frontend(feats, torch.tensor([feats.shape[1]]))
        self.computed += x.shape[1]
        return encoder_step(self.rec.model.encoder, x, past)

    def _ctc(self, memory: Tensor) -> Tensor | None:
        head = self.rec.model.ctc_head
        return None if head is None else head(memory)
