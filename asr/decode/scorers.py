"""Scorers a search adds up (`asr.decode.interfaces`): the attention decoder, an n-gram LM, CTC
prefix scores, an n-gram ban; and Whisper's timestamp grammar as a logit filter.

Each scorer owns its state for the live rows and moves it with `advance(rows, tokens, keep)`: the
decoder's KV cache is created and reordered here (`KVCache.reorder`), never hidden in the network.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.decode.ctc import CTCPrefixScorer
from asr.decode.options import TimestampRules
from asr.model.network import ASRModel
from asr.text.lm import NGramLM
from asr.text.tokenizers import BLANK

NEG_INF = float("-inf")


def apply_timestamp_rules(ts: TimestampRules, logits: Tensor, tokens: Tensor) -> None:
    """(N, V) next-token logits of rows whose outputs so far are `tokens` (N, L), filtered in place
    by Whisper's timestamp grammar (`TimestampRules` says what it allows)."""
    begin = ts.begin
    logits[:, list(ts.suppress) + [begin - 1]] = NEG_INF  # and <|notimestamps|>
    if tokens.shape[1] == 0:
        logits[:, :begin] = NEG_INF
        logits[:, begin + ts.max_initial + 1 :] = NEG_INF
    else:
        last = tokens[:, -1] >= begin
        before = tokens[:, -2] >= begin if tokens.shape[1] > 1 else torch.ones_like(last)
        logits[last & before, begin:] = NEG_INF  # an opening timestamp: text (or the end)
        logits[last & ~before, : ts.eot] = NEG_INF  # a closing one: the next opening one or the end
        newest = torch.where(tokens >= begin, tokens, -1).max(1).values  # the last timestamp (-1: none)
        lowest = torch.where(last & ~before, newest, newest + 1)  # the closing one may equal the opening one
        ids = torch.arange(begin, logits.shape[1], device=logits.device)
        logits[:, begin:].masked_fill_((ids < lowest[:, None]) & (newest[:, None] >= 0), NEG_INF)
    # in log probabilities; the softmax's normalizer is the same on both sides, so logits compare alike
    stamp = logits[:, begin:].float().logsumexp(-1) > logits[:, :begin].max(-1).values
    logits[stamp, :begin] = NEG_INF


class DecoderScorer:
    """Full scorer: the attention decoder's log P(next token | prefix, audio) for every row."""

    def __init__(self, model: ASRModel, memory: Tensor, mem_lens: Tensor, prompt: Tensor, use_cache: bool,
                 no_speech: int | None = None, timestamps: TimestampRules | None = None, start_at: int = 0):
        self.model, self.memory, self.mem_lens = model, memory, mem_lens
        self.tokens = prompt  # (N, L) every token so far
        self.start, self.timestamps = prompt.shape[1], timestamps
        self.pending = prompt  # what the decoder has not seen yet (all of it without a cache)
        self.cache = model.decoder.new_cache() if use_cache else None
        self.no_speech, self.start_at = no_speech, start_at  # start_at: where the start token is in the prompt
        self.no_speech_probs: Tensor | None = None  # (N,) Whisper's P(<|nospeech|>) after the first prompt token

    def logits(self) -> Tensor:
        inputs = self.pending if self.cache is not None else self.tokens
        out = self.model.decoder(inputs, self.memory, self.mem_lens, self.cache)  # (N, L, V)
        if self.no_speech is not None and self.no_speech_probs is None:  # the first call sees the prompt
            # read as openai-whisper does: unfiltered logits at <|startoftranscript|> (after any text prompt)
            self.no_speech_probs = out[:, self.start_at].float().softmax(-1)[:, self.no_speech]
        return out[:, -1]  # (N, V)

    def scores(self) -> Tensor:
        logits = self.logits().float()
        if self.timestamps is not None:  # before the softmax: what it leaves is renormalized (openai-whisper)
            apply_timestamp_rules(self.timestamps, logits, self.tokens[:, self.start :])
        return logits.log_softmax(-1)

    def advance(self, rows: Tensor, tokens: Tensor, keep: Tensor | None) -> None:
        self.tokens = torch.cat([self.tokens[rows], tokens[:, None]], 1)
        self.pending = tokens[:, None]
        if self.cache is not None:
            self.cache.reorder(rows, keep)
        if keep is not None:  # a filled cache holds what the decoder reads of the memory from now on
            self.mem_lens = self.mem_lens[keep]
            if self.cache is None:
                self.memory = self.memory[keep]


class LMScorer:
    """Full scorer: an n-gram LM's log P(next token | the last n-1 tokens) for every row."""

    def __init__(self, lm: NGramLM, rows: int, device: torch.device):
        self.lm, self.device = lm, device
        self.contexts = [lm.context([])] * rows

    def scores(self) -> Tensor:
        return self.lm.batch_logprobs(self.contexts).to(self.device)

    def advance(self, rows: Tensor, tokens: Tensor, keep: Tensor | None) -> None:
        self.contexts = [self.lm.extend(self.contexts[r], t) for r, t in zip(rows.tolist(), tokens.tolist())]


class CTCScorer:
    """Partial scorer: CTC prefix scores of a few candidate tokens per row."""

    def __init__(self, ctc_logits: Tensor, mem_lens: Tensor, eos: int, rows_per_utt: int, blank: int = BLANK):
        self.prefix = CTCPrefixScorer(ctc_logits, mem_lens, eos, blank)
        self.state = self.prefix.initial_state(rows_per_utt)

    def scores(self, cand: Tensor) -> Tensor:
        return self.prefix.score(self.state, cand)

    def advance(self, rows: Tensor, tokens: Tensor, keep: Tensor | None) -> None:
        if keep is not None:
            self.prefix.select_utterances(keep)
        self.state = self.prefix.advance(self.state, rows, tokens)


class RepeatBan:
    """Full scorer (weight 1): -inf for any token that would repeat an n-gram the row already holds."""

    def __init__(self, n: int, rows: int, vocab_size: int, device: torch.device):
        self.n, self.vocab_size, self.device = n, vocab_size, device
        self.history: list[list[int]] = [[] for _ in range(rows)]

    def scores(self) -> Tensor:
        out = torch.zeros(len(self.history), self.vocab_size, device=self.device)
        k = self.n - 1
        for r, seq in enumerate(self.history):
            if len(seq) < self.n:
                continue
            tail = seq[len(seq) - k:] if k else []
            banned = [seq[i + k] for i in range(len(seq) - k) if seq[i:i + k] == tail]
            out[r, banned] = NEG_INF
        return out

    def advance(self, rows: Tensor, tokens: Tensor, keep: Tensor | None) -> None:
        self.history = [self.history[r] + [t] for r, t in zip(rows.tolist(), tokens.tolist())]
