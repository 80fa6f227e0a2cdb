"""Search over the decoder: batched greedy and beam search over scorers, with a KV cache.

    options = DecodeOptions.from_config(rec.cfg, beam_size=5)   # resolved once, at the edge
    search = Search(rec, options)
    nbest = search(rec.encode(wav, wav_lens))                   # B lists of Hypothesis, best first

Beam search adds up weighted scorers, the idea of ESPnet's ScorerInterface in our batched row
layout (the K hypotheses of an utterance are consecutive rows):
- full scorers give log probabilities over the whole vocabulary for every row: the attention
  decoder (`DecoderScorer`, weight 1 - ctc_weight) and an n-gram LM (`LMScorer`, lm_weight);
- partial scorers score only the few candidates the full scorers propose: CTC prefix scores
  (`CTCScorer`, ctc_weight), which keep hypotheses aligned with the audio (no loops, no early
  or late ends, nothing on silence).
Each scorer has `scores(...)` and `advance(rows, tokens, keep)`: rows[i] extended by tokens[i]
carry on; `keep` lists the utterances still decoding when some have finished. The decoder's KV
cache is created and reordered here (`KVCache.reorder`), never hidden in the network.
A model's own rules (its prompt, end token, tokens it must never emit) come from its tokenizer
as `Rules` and act as a filter on the summed scores. After the search, a segment the model hears
no speech in (`non_speech`: Whisper's no-speech probability, or how unlikely a CTC head finds the
text) keeps an empty hypothesis that says why.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .config import Config
from .ctc import CTCPrefixScorer, ctc_greedy, length_limits
from .lm import NGramLM
from .model import ASRModel
from .recognizer import Encoded, Recognizer
from .repetition import beam_finished, compression_ratio, trim_repetitions
from .results import Hypothesis
from .text import BLANK, SOS_EOS

NEG_INF = float("-inf")
LOOP_RATIO = 2.4  # a text whose gzip compression ratio is above this loops (Whisper's threshold)
MAX_TOKENS_PER_SECOND = 8  # the reversal check's backwards reading stops here: no one speaks faster


@dataclass(frozen=True)
class DecodeOptions:
    """How to search; resolved once from the model's config and the caller's overrides."""

    beam_size: int = 5  # 1 with no CTC and no LM weight = greedy
    ctc_weight: float = 0.3  # weight of CTC prefix scores (the decoder gets 1 - ctc_weight)
    lm: str | None = None  # an n-gram LM (ARPA over the model's tokens, `asr lm`) for shallow fusion
    lm_weight: float = 0.4
    length_penalty: float = 1.0  # hypotheses ranked by log prob / (tokens + 1) ** length_penalty
    n_best: int = 1
    max_len_ratio: float = 1.5  # max output tokens per encoder frame (plus a few)
    ctc_length_guard: bool = True  # cap outputs near the CTC best path's length; empty where CTC hears nothing
    pre_beam: float = 1.5  # decoder candidates per hypothesis that CTC scores: pre_beam x beam_size
    use_cache: bool = True  # False recomputes every prefix (the reference the cache must match)
    # Guards for models without CTC (Whisper's; the imported config sets them, None = off):
    patience: float | None = None  # stop at round(beam_size * patience) finished hypotheses; None: exact end detection
    compression_ratio_threshold: float | None = None  # gzip ratio of a text above this = a loop: decode it again
    # Segments with no speech the detector let through (babble, reversed speech; None = off): the text is
    # emptied and `Hypothesis.rejected` says why (transcription then leaves the segment out)
    no_speech_threshold: float | None = None  # P(<|nospeech|>) above this, and avg log prob below
    logprob_threshold: float = -1.0  # ... this: no speech (Whisper's rule)
    min_ctc_logprob: float | None = None  # the CTC head's log P(text | audio) per token below this: no speech
    reversed_margin: float | None = None  # the audio played backwards reads better than this much: no speech
    reversed_check_below: float | None = None  # ... checked only where `plausibility` is below this (None: all)
    no_repeat_ngram: int = 0  # >0: never repeat an n-gram of this many tokens (the loop guard's second try)
    # Whisper: predict timestamp tokens between the utterances of a window (its long-form mode; they never
    # reach the text) instead of starting from <|notimestamps|>; a model without them: an error
    timestamps: bool = False

    @classmethod
    def from_config(cls, cfg: Config, **overrides) -> "DecodeOptions":
        """The model's decode config (CTC weight None = as trained), then `overrides` (None = keep).
        An unknown name or a value out of range is a ValueError here, not at the first batch."""
        cls._known(overrides)
        d = cfg.decode
        values = {f.name: getattr(d, f.name) for f in dataclasses.fields(cls) if hasattr(d, f.name)}
        values["ctc_weight"] = cfg.optim.ctc_weight if d.ctc_weight is None else d.ctc_weight
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).checked()

    def replaced(self, **overrides) -> "DecodeOptions":
        """These options with `overrides` (None = keep), checked like `from_config`'s."""
        self._known(overrides)
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None}).checked()

    @classmethod
    def _known(cls, overrides: dict) -> None:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown decode option(s): {', '.join(unknown)}")

    def checked(self) -> "DecodeOptions":
        if self.beam_size < 1 or self.n_best < 1:
            raise ValueError(f"beam_size and n_best must be at least 1 (got {self.beam_size}, {self.n_best})")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], not {self.ctc_weight}")
        if self.lm_weight < 0 or self.max_len_ratio <= 0 or self.pre_beam < 1:
            raise ValueError("lm_weight must be >= 0, max_len_ratio > 0 and pre_beam >= 1")
        if self.patience is not None and self.patience <= 0 or self.no_repeat_ngram < 0:
            raise ValueError(f"patience must be > 0 (got {self.patience}), no_repeat_ngram >= 0")
        if self.no_speech_threshold is not None and not 0.0 <= self.no_speech_threshold <= 1.0:
            raise ValueError(f"no_speech_threshold must be in [0, 1], not {self.no_speech_threshold}")
        if self.reversed_margin is not None and self.reversed_margin < 0:
            raise ValueError(f"reversed_margin must be >= 0, not {self.reversed_margin}")
        if self.logprob_threshold > 0 or self.min_ctc_logprob is not None and self.min_ctc_logprob > 0:
            raise ValueError("logprob_threshold and min_ctc_logprob are log probabilities: at most 0 "
                             f"(got {self.logprob_threshold}, {self.min_ctc_logprob})")
        return self


@dataclass(frozen=True)
class Rules:
    """A model's decoding conventions, from its tokenizer."""

    prompt: tuple[int, ...] = (SOS_EOS,)  # what the decoder is fed before the first output token
    eos: int = SOS_EOS
    suppress: tuple[int, ...] = (BLANK,)  # never emitted (our CTC blank; Whisper's special tokens)
    suppress_at_start: tuple[int, ...] = ()  # not as the first token (Whisper: a blank space, end)
    no_speech: int | None = None  # Whisper's <|nospeech|>: its probability after the start token says "silence"
    blank: int = BLANK  # the CTC head's blank (a Whisper model's trained head uses <|nospeech|>)
    timestamp_begin: int | None = None  # Whisper's <|0.00|>: this id and the ones above are timestamps
    timestamps: "TimestampRules | None" = None  # decoding with timestamp tokens (`with_timestamps`)

    @classmethod
    def of(cls, tokenizer) -> "Rules":
        return cls(**tokenizer.decoding_rules())

    def with_timestamps(self, max_initial: int) -> "Rules":
        """These rules for decoding with timestamp tokens: the prompt without <|notimestamps|> (the
        token just below the first timestamp), and Whisper's timestamp grammar; the first timestamp
        at most `max_initial` steps in."""
        if self.timestamp_begin is None:
            raise ValueError("this model has no timestamp tokens: decode without timestamps")
        prompt = tuple(t for t in self.prompt if t != self.timestamp_begin - 1)
        return dataclasses.replace(self, prompt=prompt, timestamps=TimestampRules(self.timestamp_begin, self.eos,
                                                                                   max_initial, self.suppress))

    def text_tokens(self, tokens: list[int]) -> list[int]:
        """`tokens` without timestamp tokens."""
        return tokens if self.timestamp_begin is None else [t for t in tokens if t < self.timestamp_begin]

    def unfinished(self, tokens: list[int]) -> int | None:
        """Where an output with timestamps opened an utterance it did not transcribe (it ends in two
        timestamps: a closing and an opening one), in timestamp steps; None if it did not."""
        if self.timestamps is None or len(tokens) < 2 or min(tokens[-2:]) < self.timestamp_begin:
            return None
        return tokens[-1] - self.timestamp_begin


@dataclass(frozen=True)
class TimestampRules:
    """Whisper's timestamp grammar (openai-whisper's ApplyTimestampRules), as a logit filter: the
    output opens with a timestamp (within `max_initial` steps of the start); each utterance's text
    stands between an opening and a closing timestamp (after an opening one comes text, after a
    closing one the next opening one or the end); timestamps never go back in time; and where the
    timestamps together are likelier than any single other token, a timestamp it is. In a window
    of many utterances they keep the decoder's place: without them tiny.en skips whole utterances
    of a 25-30 s window."""

    begin: int  # <|0.00|>; one id per 20 ms above it
    eot: int
    max_initial: int  # steps of 20 ms: openai-whisper's max_initial_timestamp, 1 s
    suppress: tuple[int, ...] = ()  # never emitted: out before the rule weighs timestamps against text

    def apply(self, logits: Tensor, tokens: Tensor) -> None:
        """(N, V) next-token logits of rows whose outputs so far are `tokens` (N, L), filtered in place."""
        begin = self.begin
        logits[:, list(self.suppress) + [begin - 1]] = NEG_INF  # and <|notimestamps|>
        if tokens.shape[1] == 0:
            logits[:, :begin] = NEG_INF
            logits[:, begin + self.max_initial + 1 :] = NEG_INF
        else:
            last = tokens[:, -1] >= begin
            before = tokens[:, -2] >= begin if tokens.shape[1] > 1 else torch.ones_like(last)
            logits[last & before, begin:] = NEG_INF  # an opening timestamp: text (or the end)
            logits[last & ~before, : self.eot] = NEG_INF  # a closing one: the next opening one or the end
            newest = torch.where(tokens >= begin, tokens, -1).max(1).values  # the last timestamp (-1: none)
            lowest = torch.where(last & ~before, newest, newest + 1)  # the closing one may equal the opening one
            ids = torch.arange(begin, logits.shape[1], device=logits.device)
            logits[:, begin:].masked_fill_((ids < lowest[:, None]) & (newest[:, None] >= 0), NEG_INF)
        # in log probabilities; the softmax's normalizer is the same on both sides, so logits compare alike
        stamp = logits[:, begin:].float().logsumexp(-1) > logits[:, :begin].max(-1).values
        logits[stamp, :begin] = NEG_INF


# --------------------------------------------------------------------------- scorers


class DecoderScorer:
    """Full scorer: the attention decoder's log P(next token | prefix, audio) for every row."""

    def __init__(self, model: ASRModel, memory: Tensor, mem_lens: Tensor, prompt: Tensor, use_cache: bool,
                 no_speech: int | None = None, timestamps: TimestampRules | None = None):
        self.model, self.memory, self.mem_lens = model, memory, mem_lens
        self.tokens = prompt  # (N, L) every token so far
        self.start, self.timestamps = prompt.shape[1], timestamps
        self.pending = prompt  # what the decoder has not seen yet (all of it without a cache)
        self.cache = model.decoder.new_cache() if use_cache else None
        self.no_speech = no_speech
        self.no_speech_probs: Tensor | None = None  # (N,) Whisper's P(<|nospeech|>) after the first prompt token

    def logits(self) -> Tensor:
        inputs = self.pending if self.cache is not None else self.tokens
        out = self.model.decoder(inputs, self.memory, self.mem_lens, self.cache)  # (N, L, V)
        if self.no_speech is not None and self.no_speech_probs is None:  # the first call sees the prompt
            # read as openai-whisper does: unfiltered logits at <|startoftranscript|>, the prompt's first token
            self.no_speech_probs = out[:, 0].float().softmax(-1)[:, self.no_speech]
        return out[:, -1]  # (N, V)

    def scores(self) -> Tensor:
        logits = self.logits().float()
        if self.timestamps is not None:  # before the softmax: what it leaves is renormalized (openai-whisper)
            self.timestamps.apply(logits, self.tokens[:, self.start :])
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


# --------------------------------------------------------------------------- search


def max_output_lengths(mem_lens: Tensor, ratio: float, limit: int) -> Tensor:
    """Longest output each utterance may produce: proportional to its encoder length."""
    return (mem_lens.float() * ratio).long().add(8).clamp(max=limit)


def _limits(model: ASRModel, mem_lens: Tensor, options: DecodeOptions, rules: Rules, max_lens: Tensor | None) -> Tensor:
    limits = max_output_lengths(mem_lens, options.max_len_ratio, model.cfg.max_target_len - len(rules.prompt))
    return limits if max_lens is None else torch.minimum(limits, max_lens.to(limits.device))


def _prompt(rules: Rules, rows: int, device: torch.device) -> Tensor:
    return torch.tensor([rules.prompt], dtype=torch.long, device=device).expand(rows, -1)


def greedy_search(model: ASRModel, memory: Tensor, mem_lens: Tensor, options: DecodeOptions = DecodeOptions(),
                  max_lens: Tensor | None = None, rules: Rules = Rules()) -> list[list[int]]:
    """Most likely next token at every step, for a batch of encoder outputs (B, T', D).

    Returns B token-id lists without prompt and end token. Each output is at most proportional
    to its encoder length, and at most `max_lens` tokens where given (0 = emit nothing)."""
    return [h.tokens for h in greedy_hypotheses(model, memory, mem_lens, options, max_lens, rules)]


@torch.no_grad()
def greedy_hypotheses(model: ASRModel, memory: Tensor, mem_lens: Tensor, options: DecodeOptions = DecodeOptions(),
                      max_lens: Tensor | None = None, rules: Rules = Rules()) -> list[Hypothesis]:
    """greedy_search's outputs as Hypotheses with their log probabilities (end token included;
    Whisper's avg log prob is log_prob / (tokens + 1))."""
    limits = _limits(model, mem_lens, options, rules, max_lens)
    results = [Hypothesis([], 0.0, 0.0) for _ in range(memory.shape[0])]
    rows = torch.nonzero(limits > 0).flatten()  # original index of each live row
    limits, logp = limits[rows], torch.zeros(rows.numel(), device=memory.device)
    dec = DecoderScorer(model, memory[rows], mem_lens[rows], _prompt(rules, rows.numel(), memory.device),
                        options.use_cache, rules.no_speech)
    first_rows = rows
    step, start = 0, len(rules.prompt)
    while rows.numel() > 0:
        logits = dec.logits()
        logits[:, list(rules.suppress) + (list(rules.suppress_at_start) if step == 0 else [])] = NEG_INF
        if rules.timestamps is not None:
            rules.timestamps.apply(logits, dec.tokens[:, start:])
        next_tok = logits.argmax(-1)  # (b,)
        logp += logits.float().log_softmax(-1).gather(1, next_tok[:, None])[:, 0]
        step += 1
        done = (next_tok == rules.eos) | (step >= limits)
        for r in torch.nonzero(done).flatten().tolist():
            seq = dec.tokens[r, start:].tolist() + [int(next_tok[r])]
            seq = seq[:-1] if seq[-1] == rules.eos else seq
            lp = float(logp[r])
            results[rows[r]] = Hypothesis(seq, lp / (len(seq) + 1) ** options.length_penalty, lp)
        keep = torch.nonzero(~done).flatten()
        if keep.numel() == 0:
            break
        dec.advance(keep, next_tok[keep], keep if keep.numel() < rows.numel() else None)
        rows, limits, logp = rows[keep], limits[keep], logp[keep]
    for r, p in zip(first_rows.tolist(), [] if dec.no_speech_probs is None else dec.no_speech_probs.tolist()):
        results[r].no_speech_prob = p
    return results


def _candidates(full: list, partial: list, C: int, rules: Rules, first: bool) -> tuple[Tensor, Tensor]:
    """(rows, C + 1) candidate tokens per row and their weighted scores: the C best by the full
    scorers, and always the end token (CTC may want to stop where the decoder does not)."""
    total = None
    for w, scorer in full:
        s = w * scorer.scores()
        total = s if total is None else total + s
    total[:, list(rules.suppress) + (list(rules.suppress_at_start) if first else [])] = NEG_INF
    ranked = total.clone()
    ranked[:, rules.eos] = NEG_INF
    k = min(C, total.shape[1] - 1 - len(rules.suppress))
    cand = torch.cat([ranked.topk(k, -1).indices, torch.full_like(ranked[:, :1], rules.eos, dtype=torch.long)], 1)
    score = total.gather(1, cand)
    for w, scorer in partial:
        score = score + w * scorer.scores(cand)
    return cand, score


@torch.no_grad()
def beam_search(model: ASRModel, memory: Tensor, mem_lens: Tensor, ctc_logits: Tensor | None = None,
                options: DecodeOptions = DecodeOptions(), lm: NGramLM | None = None,
                max_lens: Tensor | None = None, rules: Rules = Rules()) -> list[list[Hypothesis]]:
    """Beam search for a batch of encoder outputs (B, T', D): B lists of the n best hypotheses.

    All B x beam_size hypotheses decode as one batch. An utterance stops when no live hypothesis
    can beat its n-th best finished one: scores only fall as tokens are added, so a live
    hypothesis ends at best with its current log probability divided by the longest length it
    may reach. A length limit (from the encoder length, and `max_lens` where given) bounds the rest.
    With `options.patience` (Whisper's rule) it stops instead at round(beam_size * patience) finished.
    """
    B, K, device, o = memory.shape[0], options.beam_size, memory.device, options
    limits = _limits(model, mem_lens, o, rules, max_lens)
    finished: list[list[Hypothesis]] = [[] if limits[b] > 0 else [Hypothesis([], 0.0, 0.0)] for b in range(B)]
    utts = torch.nonzero(limits > 0).flatten()  # original index of each live utterance
    limits, n = limits[utts], utts.numel()
    full, partial = _scorers(model, memory[utts], mem_lens[utts], ctc_logits, utts, o, lm, rules)
    first_utts = utts
    C = max(K, int(o.pre_beam * K)) if partial else K
    scores = torch.full((n, K), NEG_INF, device=device)
    scores[:, 0] = 0.0  # one live hypothesis per utterance to start with
    step = 0
    while utts.numel() > 0:
        step, n = step + 1, utts.numel()
        cand, cand_score = _candidates(full, partial, C, rules, first=step == 1)
        total = (scores.view(-1, 1) + cand_score).view(n, -1)
        top_score, top = total.topk(min(2 * K, total.shape[1]), -1)  # (n, 2K): enough for K that do not end
        top_tok = cand.view(n, -1).gather(1, top)
        parent = torch.arange(n, device=device)[:, None] * K + top // cand.shape[1]  # row extended
        ends = (top_tok == rules.eos) | (step >= limits)[:, None]
        _finish(finished, utts, full[0][1].tokens[:, len(rules.prompt):], parent, top_tok, top_score, ends, K, o, rules)
        order = torch.argsort(ends.int(), dim=1, stable=True)[:, :K]  # the K best that do not end carry on
        scores, rows, new_tok = top_score.gather(1, order), parent.gather(1, order), top_tok.gather(1, order)
        keep = torch.nonzero(~_done(finished, utts, scores, limits, step, o)).flatten()
        if keep.numel() == 0:
            break
        scores, rows, new_tok = scores[keep], rows[keep].view(-1), new_tok[keep].view(-1)
        for _, scorer in full + partial:
            scorer.advance(rows, new_tok, keep if keep.numel() < n else None)
        utts, limits = utts[keep], limits[keep]
    _note_no_speech(finished, first_utts, full[0][1].no_speech_probs, K)
    return [sorted(h, key=lambda h: -h.score)[: o.n_best] for h in finished]


def _note_no_speech(finished: list[list[Hypothesis]], utts: Tensor, probs: Tensor | None, K: int) -> None:
    """Each utterance's hypotheses carry its no-speech probability (its K rows share one prompt)."""
    if probs is not None:
        for u, p in zip(utts.tolist(), probs[::K].tolist()):
            for h in finished[u]:
                h.no_speech_prob = p


def _scorers(model: ASRModel, memory: Tensor, mem_lens: Tensor, ctc_logits: Tensor | None, utts: Tensor,
             o: DecodeOptions, lm: NGramLM | None, rules: Rules) -> tuple[list, list]:
    """(weight, scorer) pairs for the live utterances: full scorers first (the decoder), then partial ones."""
    rows, device = utts.numel() * o.beam_size, memory.device
    use_ctc = o.ctc_weight > 0 and ctc_logits is not None
    full: list = [(1 - o.ctc_weight if use_ctc else 1.0,
                   DecoderScorer(model, memory, mem_lens, _prompt(rules, rows, device), o.use_cache, rules.no_speech,
                                 rules.timestamps))]
    if lm is not None and o.lm_weight:
        full.append((o.lm_weight, LMScorer(lm, rows, device)))
    if o.no_repeat_ngram:
        full.append((1.0, RepeatBan(o.no_repeat_ngram, rows, model.decoder.token_embedding.num_embeddings, device)))
    partial = [(o.ctc_weight, CTCScorer(ctc_logits[utts], mem_lens, rules.eos, o.beam_size, rules.blank))] if use_ctc else []
    return full, partial


def _finish(finished: list[list[Hypothesis]], utts: Tensor, prefixes: Tensor, parent: Tensor, top_tok: Tensor,
            top_score: Tensor, ends: Tensor, K: int, o: DecodeOptions, rules: Rules) -> None:
    """Hypotheses that end among an utterance's K best join its finished list."""
    fin = ends & (torch.arange(top_tok.shape[1], device=ends.device) < K) & torch.isfinite(top_score)
    for u, j in torch.nonzero(fin).tolist():
        tok, s = int(top_tok[u, j]), float(top_score[u, j])
        seq = prefixes[parent[u, j]].tolist() + ([] if tok == rules.eos else [tok])
        finished[int(utts[u])].append(Hypothesis(seq, s / (len(seq) + 1) ** o.length_penalty, s))


def _done(finished: list[list[Hypothesis]], utts: Tensor, scores: Tensor, limits: Tensor, step: int,
          o: DecodeOptions) -> Tensor:
    """(n,) bool: utterances at their length limit, with no live hypothesis left, or whose n-th
    best finished hypothesis no live one can beat (with patience: that have enough finished ones)."""
    best = scores.max(1).values
    best_live = best / (limits + 1).float() ** o.length_penalty
    done = (step >= limits) | ~torch.isfinite(best)
    enough = None if o.patience is None else max(o.n_best, round(o.beam_size * o.patience))
    for u in range(utts.numel()):
        done[u] |= beam_finished([h.score for h in finished[int(utts[u])]], float(best_live[u]), o.n_best, enough)
    return done


# --------------------------------------------------------------------------- guards


# compression_ratio, trim_repetitions: asr.repetition (shared with the torch-free ONNX Runtime path)


def _note_ctc_logprob(hyps: list[list[Hypothesis]], ctc_logits: Tensor, lengths: Tensor, blank: int) -> None:
    """Each utterance's best hypothesis gets the CTC head's log P(tokens | audio) per token (end
    included): how well the audio supports the text, whatever the decoder thought of it. A
    transcript the frames cannot hold (too long) gets none."""
    rows = [b for b, nbest in enumerate(hyps) if nbest[0].tokens]
    if not rows:
        return
    idx = torch.tensor(rows, device=ctc_logits.device)
    log_probs = ctc_logits[idx].float().log_softmax(-1).transpose(0, 1)  # (T', n, V)
    targets = [torch.tensor(hyps[b][0].tokens) for b in rows]
    nll = torch.nn.functional.ctc_loss(log_probs, torch.cat(targets).to(ctc_logits.device), lengths[idx].cpu(),
                                       torch.tensor([len(t) for t in targets]), blank, reduction="none")
    for b, t, loss in zip(rows, targets, nll.tolist()):
        hyps[b][0].ctc_logprob = -loss / (len(t) + 1) if math.isfinite(loss) else None


def plausibility(h: Hypothesis) -> float:
    """How well the audio supports the hypothesis, per token: the CTC head's log probability where
    there is one (it sees only the audio), else the decoder's mean log probability."""
    return h.ctc_logprob if h.ctc_logprob is not None else h.log_prob / (len(h.tokens) + 1)


def reversed_audio(wav: Tensor, wav_lens: Tensor) -> Tensor:
    """(B, S) padded waveforms, each played backwards within its length (padding stays at the end)."""
    t = torch.arange(wav.shape[1], device=wav.device)
    lens = wav_lens.to(wav.device)[:, None]
    return wav.gather(1, (lens - 1 - t).clamp(min=0)) * (t < lens)


def _emptied(h: Hypothesis, reason: str) -> Hypothesis:
    """`h` left out: no tokens or text, its scores kept, and why."""
    return dataclasses.replace(h, tokens=[], text="", rejected=reason)


def non_speech(h: Hypothesis, o: DecodeOptions, text_tokens: int | None = None) -> str | None:
    """Why the segment decoded as `h` holds no speech by the options' rules, or None. Whisper's rule
    (openai-whisper's): no speech is likely and the transcript unlikely. A CTC head's: the audio
    hardly supports the transcript (babble and reversed speech, which the voice activity detector
    takes for speech, decode into text the CTC head finds far less likely than speech's).

    `text_tokens`: how many of h's tokens are text (with timestamp tokens): the transcript's log
    probability is then taken per text token. Timestamps the grammar forces have log probability
    near 0 and would otherwise lift the mean of one invented word on noise above the threshold."""
    avg = h.log_prob / ((len(h.tokens) if text_tokens is None else text_tokens) + 1)
    p = h.no_speech_prob
    if o.no_speech_threshold is not None and p is not None and p > o.no_speech_threshold and avg < o.logprob_threshold:
        return f"P(no speech) {p:.2f} > {o.no_speech_threshold:g} and mean log prob {avg:.2f} < {o.logprob_threshold:g}"
    if o.min_ctc_logprob is not None and h.ctc_logprob is not None and h.ctc_logprob < o.min_ctc_logprob:
        return f"CTC log prob per token {h.ctc_logprob:.2f} < {o.min_ctc_logprob:g}"
    return None


# --------------------------------------------------------------------------- one model's search


class Search:
    """A model's search with its options fixed: encoder output -> n best hypotheses with text."""

    def __init__(self, rec: Recognizer, options: DecodeOptions):
        self.rec, self.options = rec, options
        self.rules = self.plain = Rules.of(rec.tokenizer)  # plain: without timestamps (the reversal check's)
        self.lm = NGramLM.load_arpa(options.lm, rec.tokenizer) if options.lm else None
        if options.timestamps:  # the first timestamp within 1 s (openai-whisper's max_initial_timestamp)
            if rec.cfg.model.ctc or self.lm is not None:  # they score text tokens, not timestamps
                raise ValueError("decoding with timestamp tokens is for a model without a CTC head and "
                                 "without an LM (imported Whisper): turn timestamps off")
            self.rules = self.rules.with_timestamps(round(1.0 / rec.frame_seconds))

    @property
    def greedy(self) -> bool:
        return self._greedy(self.options)

    def _greedy(self, o: DecodeOptions) -> bool:
        no_lm = self.lm is None or o.lm_weight == 0
        return o.beam_size == 1 and o.ctc_weight == 0 and no_lm and not o.no_repeat_ngram

    def __call__(self, enc: Encoded, wav: Tensor | None = None, wav_lens: Tensor | None = None) -> list[list[Hypothesis]]:
        """The n best hypotheses of each encoded segment; with its waveforms (`wav`, `wav_lens`),
        the reversal check (`reversed_margin`) runs too."""
        o = self.options
        hyps = self._search(enc, o)
        if o.compression_ratio_threshold is not None:
            self._guard_loops(enc, hyps)
        if enc.ctc_logits is not None:
            _note_ctc_logprob(hyps, enc.ctc_logits, enc.lengths, self.rules.blank)
        self._reject_non_speech(hyps)
        if o.reversed_margin not in (None, math.inf) and wav is not None:  # inf: off (where None means "keep")
            self._reject_reversed(enc, wav, wav_lens, hyps)
        return hyps

    def _search(self, enc: Encoded, o: DecodeOptions, cap: Tensor | None = None,
                rules: Rules | None = None) -> list[list[Hypothesis]]:
        """The search proper; `cap`: at most this many tokens per row; `rules`: other than the search's."""
        memory, mem_lens, ctc_logits = enc
        rules = rules or self.rules
        best_path = ctc_greedy(ctc_logits, mem_lens, rules.blank) if o.ctc_length_guard and ctc_logits is not None else None
        max_lens = length_limits(best_path, mem_lens.device) if best_path is not None else None
        if cap is not None:
            max_lens = cap.to(mem_lens.device) if max_lens is None else torch.minimum(max_lens, cap.to(max_lens.device))
        if self._greedy(o):
            hyps = [[h] for h in greedy_hypotheses(self.rec.model, memory, mem_lens, o, max_lens, rules)]
            if best_path is not None:  # cut loops the CTC path does not support
                for (h,), ref in zip(hyps, best_path):
                    h.tokens = trim_repetitions(h.tokens, ref)
        else:
            hyps = beam_search(self.rec.model, memory, mem_lens, ctc_logits, o, self.lm, max_lens, rules)
        for nbest in hyps:
            for h in nbest:
                h.text = self.rec.tokenizer.decode(h.tokens)  # (timestamp tokens stay in h.tokens, not in the text)
        return hyps

    def _guard_loops(self, enc: Encoded, hyps: list[list[Hypothesis]]) -> None:
        """Outputs whose text compresses too well (Whisper's sign of a loop) are decoded again by a
        search that may not repeat a 3-gram; what still loops loses its repeated tail."""
        limit = self.options.compression_ratio_threshold
        bad = [b for b, nbest in enumerate(hyps) if compression_ratio(nbest[0].text) > limit]
        if not bad:
            return
        idx = torch.tensor(bad, device=enc.memory.device)
        retry = self._search(Encoded(*(None if t is None else t[idx] for t in enc)),
                             dataclasses.replace(self.options, no_repeat_ngram=3))
        for b, nbest in zip(bad, retry):
            for h in nbest:
                if compression_ratio(h.text) > limit:
                    h.tokens = trim_repetitions(h.tokens, [], min_repeats=2)
                    h.text = self.rec.tokenizer.decode(h.tokens)
            hyps[b] = nbest

    def _reject_non_speech(self, hyps: list[list[Hypothesis]]) -> None:
        """A segment the model hears no speech in (`non_speech`) keeps one hypothesis: empty, with the reason."""
        for nbest in hyps:
            best = nbest[0]
            reason = non_speech(best, self.options, len(self.rules.text_tokens(best.tokens)))
            if reason is not None:
                nbest[:] = [_emptied(best, reason)]

    def _reject_reversed(self, enc: Encoded, wav: Tensor, wav_lens: Tensor, hyps: list[list[Hypothesis]]) -> None:
        """Speech played backwards sounds like speech to a voice activity detector and decodes into
        confident-looking text, but the same audio played forwards again is speech, and reads
        better still. So each transcribed segment is also decoded backwards (greedily); where that
        transcript's `plausibility` beats the forward one's by more than `reversed_margin`, the
        segment holds no speech. Speech itself reads far worse backwards; a backwards transcript
        that loops does not count. Costs one more encoder pass and greedy search per segment checked:
        with `reversed_check_below`, only the segments whose transcript is not already confident.
        Both readings are greedy and without timestamp tokens, as the margins were chosen: a forward
        transcript decoded with them is read again without them (a decoder pass, no encoder pass)."""
        below = self.options.reversed_check_below
        rows = [b for b, nbest in enumerate(hyps) if nbest[0].rejected is None and self.rules.text_tokens(nbest[0].tokens)]
        if not rows:
            return
        greedy = dataclasses.replace(self.options, beam_size=1, ctc_weight=0.0, lm=None, no_repeat_ngram=0,
                                     compression_ratio_threshold=None, reversed_margin=None)
        # faster than anyone speaks (8 tokens a second, or twice the forward reading: characters) is a loop:
        # no need to decode it to the model's limit
        sr = self.rec.cfg.features.sample_rate
        readings = {b: hyps[b][0] for b in rows}
        if self.rules.timestamps is not None:
            idx = torch.tensor(rows, device=wav.device)
            cap = (wav_lens[idx].double() * MAX_TOKENS_PER_SECOND / sr).ceil().long() + 8
            plain = self._search(Encoded(enc.memory[idx], enc.lengths[idx], None), greedy, cap, self.plain)
            readings = {b: h for b, (h, *_) in zip(rows, plain)}
        forward = {b: plausibility(h) for b, h in readings.items()}
        rows = [b for b in rows if below is None or forward[b] < below]
        if not rows:
            return
        idx = torch.tensor(rows, device=wav.device)
        twice = torch.tensor([2 * len(readings[b].tokens) for b in rows], device=wav.device)
        cap = torch.maximum((wav_lens[idx].double() * MAX_TOKENS_PER_SECOND / sr).ceil().long(), twice) + 8
        rev_enc = self.rec.encode(reversed_audio(wav[idx], wav_lens[idx]), wav_lens[idx])
        backwards = self._search(rev_enc, greedy, cap, self.plain)
        if rev_enc.ctc_logits is not None:
            _note_ctc_logprob(backwards, rev_enc.ctc_logits, rev_enc.lengths, self.rules.blank)
        loop = self.options.compression_ratio_threshold or LOOP_RATIO
        for b, (rev, *_), limit in zip(rows, backwards, cap.tolist()):
            best = hyps[b][0]
            # a loop ("I'm sorry, I'm sorry, ...") is confident nonsense, not a better reading
            readable = rev.tokens and len(rev.tokens) < limit and compression_ratio(rev.text) <= loop
            gain = plausibility(rev) - forward[b] if readable else -math.inf
            if gain > self.options.reversed_margin:
                reason = (f"reads better played backwards ({plausibility(rev):.2f} against {forward[b]:.2f} "
                          f"per token: {rev.text!r})")
                hyps[b] = [_emptied(best, reason)]

    def unfinished(self, h: Hypothesis) -> float | None:
        """Seconds into its audio where `h` (decoded with timestamps) opened an utterance it did not
        transcribe, or None: the place to decode on from (openai-whisper seeks there)."""
        steps = self.rules.unfinished(h.tokens)
        return None if steps is None else steps * self.rec.frame_seconds

    def decode(self, wav: Tensor, wav_lens: Tensor) -> list[list[Hypothesis]]:
        """(B, S) padded waveforms -> for each, its n best hypotheses."""
        return self(self.rec.encode(wav, wav_lens), wav, wav_lens)
