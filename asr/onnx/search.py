"""Encoder output (numpy) -> hypotheses: asr.decode's greedy and beam search with CTC prefix scores,
in numpy, for the torch-free runtime.

The same options and rules (`asr.decode.options`), scorer interfaces (`asr.decode.interfaces`),
candidates, end detection, length limits and length penalty as asr.decode, row for row (the K
hypotheses of an utterance are consecutive rows), so that an exported model finds the hypotheses
its torch original finds; tests/onnx/ check that. The decoder is anything with
`step(tokens, memory_lens, self_kv, cross_kv) -> (logits, self_kv)` and `empty_cache(rows)`:
asr.onnx.runtime's ONNX Runtime session. Not ported: n-gram LM fusion, the n-gram ban, timestamp
tokens (`NOT_PORTED` says which options). asr.onnx.runtime applies the guards after the search,
but for the reversal check (`GUARDS`).
Nothing here imports torch (asr.decode.search and asr.decode.ctc do, hence this second copy of their logic).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from asr.decode.interfaces import FullScorer, PartialScorer
from asr.decode.options import AUTO, DecodeOptions, Rules
from asr.decode.repetition import beam_finished, trim_repetitions
from asr.results import Hypothesis
from asr.text.tokenizers import BLANK

NEG_INF = float("-inf")
# option -> its value that turns it off (and language: detection is not ported, only English or none)
NOT_PORTED = {"lm": None, "no_repeat_ngram": 0, "timestamps": False, "task": "transcribe", "prompt": None,
              "hotwords": None, "chunk": 0}
# run by asr.decode.task.Search after its search, not by asr.onnx.runtime (it decodes the audio backwards)
GUARDS = ("reversed_margin",)


def supported(o: DecodeOptions) -> DecodeOptions:
    """`o`, or a ValueError naming the options it sets that this search does not honour."""
    bad = [k for k, off in NOT_PORTED.items() if getattr(o, k) != off]
    bad += ["language"] if o.language not in (*AUTO, "en") else []
    if bad:
        raise ValueError(f"decode option(s) {', '.join(bad)} not supported on ONNX Runtime")
    return o


def guards_set(o: DecodeOptions) -> list[str]:
    """The guards `o` turns on, which this runtime does not apply."""
    return [g for g in GUARDS if getattr(o, g) not in (None, float("inf"))]


class Decoder(Protocol):
    def step(
        self, tokens: np.ndarray, memory_lens: np.ndarray, self_kv: list, cross_kv: list
    ) -> tuple[np.ndarray, list]: ...

    def empty_cache(self, rows: int) -> list: ...


class Encoded(NamedTuple):
    lengths: np.ndarray  # (B,) valid encoder frames
    ctc_logits: np.ndarray | None  # (B, T', V)
    cross_kv: list[np.ndarray]  # k, v of each decoder layer, (B, H, T', Dh)


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return (np.log(np.exp(x - m).sum(axis, keepdims=True)) + m).squeeze(axis)


def take(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.take_along_axis(x, index, 1)


# --------------------------------------------------------------------------- CTC (asr.ctc)


def ctc_greedy(ctc_logits: np.ndarray, lens: np.ndarray, blank: int = BLANK) -> list[list[int]]:
    out = []
    for frames, n in zip(ctc_logits.argmax(-1).tolist(), lens.tolist()):
        frames = frames[:n]
        out.append([t for i, t in enumerate(frames) if t != blank and (i == 0 or frames[i - 1] != t)])
    return out


def length_limits(best_paths: list[list[int]], slack: float = 0.25, extra: int = 4) -> np.ndarray:
    n = np.array([len(s) for s in best_paths], dtype=np.int64)
    return np.where(n > 0, (n.astype(np.float32) * np.float32(1 + slack)).astype(np.int64) + extra, 0)


def _shift(x: np.ndarray, first: float) -> np.ndarray:
    return np.concatenate([np.full_like(x[..., :1], first), x[..., :-1]], -1)


def _linear_recurrence(log_p: np.ndarray, log_u: np.ndarray) -> np.ndarray:
    """a[t] = p[t] * (a[t-1] + u[t]) in log space, for all t at once (asr.ctc._linear_recurrence)."""
    cum = np.cumsum(log_p, -1)
    with np.errstate(invalid="ignore"):
        return cum + np.logaddexp.accumulate(log_u - _shift(cum, 0.0), axis=-1)


@dataclass
class CTCState:
    r_nonblank: np.ndarray  # (N, T)
    r_blank: np.ndarray  # (N, T)
    prefix: np.ndarray  # (N,)
    last: np.ndarray  # (N,)

    def select(self, rows: np.ndarray) -> CTCState:
        return CTCState(self.r_nonblank[rows], self.r_blank[rows], self.prefix[rows], self.last[rows])


class CTCPrefixScorer:
    """asr.ctc.CTCPrefixScorer in numpy (float64, the forward recursions as linear recurrences)."""

    def __init__(self, ctc_logits: np.ndarray, lens: np.ndarray, eos: int, blank: int = BLANK):
        self.log_probs = log_softmax(ctc_logits.astype(np.float64))  # (B, T, V)
        self.lens, self.eos, self.blank = lens, eos, blank
        self.valid = np.arange(self.log_probs.shape[1])[None, :] < lens[:, None]

    def select_utterances(self, keep: np.ndarray) -> None:
        self.log_probs, self.lens, self.valid = self.log_probs[keep], self.lens[keep], self.valid[keep]

    def initial_state(self, rows_per_utt: int) -> CTCState:
        blank = np.repeat(np.cumsum(self.log_probs[..., self.blank], -1), rows_per_utt, 0)
        n = blank.shape[0]
        return CTCState(np.full_like(blank, NEG_INF), blank, np.zeros(n), np.full(n, -1, dtype=np.int64))

    def _start_probs(self, state: CTCState, cand: np.ndarray):
        N, C = cand.shape
        utt = np.arange(N) // (N // self.log_probs.shape[0])
        x_c = self.log_probs[utt[:, None], :, cand]  # (N, C, T)
        r_h = np.logaddexp(state.r_nonblank, state.r_blank)
        phi = np.where((cand == state.last[:, None])[..., None], state.r_blank[:, None, :], r_h[:, None, :])
        first = np.broadcast_to(np.where(state.last < 0, 0.0, NEG_INF)[:, None, None], (N, C, 1))
        return x_c, np.concatenate([first, phi[..., :-1]], -1), utt

    def score(self, state: CTCState, cand: np.ndarray) -> np.ndarray:
        x_c, phi_prev, utt = self._start_probs(state, cand)
        prefix = logsumexp(np.where(self.valid[utt][:, None, :], phi_prev + x_c, NEG_INF))  # (N, C)
        is_eos = cand == self.eos
        if is_eos.any():
            r_h = np.logaddexp(state.r_nonblank, state.r_blank)
            prefix = np.where(is_eos, take(r_h, (self.lens[utt] - 1)[:, None]), prefix)
        with np.errstate(invalid="ignore"):
            delta = np.where(state.prefix[:, None] == NEG_INF, NEG_INF, prefix - state.prefix[:, None])
        return delta.astype(np.float32)

    def advance(self, state: CTCState, rows: np.ndarray, tokens: np.ndarray) -> CTCState:
        parent = state.select(rows)
        x_c, phi_prev, utt = self._start_probs(parent, tokens[:, None])
        x_c, phi_prev = x_c[:, 0], phi_prev[:, 0]  # (N, T)
        r_nonblank = _linear_recurrence(x_c, phi_prev)
        r_blank = _linear_recurrence(self.log_probs[utt, :, self.blank], _shift(r_nonblank, NEG_INF))
        prefix = logsumexp(np.where(self.valid[utt], phi_prev + x_c, NEG_INF))
        return CTCState(r_nonblank, r_blank, prefix, tokens)


# --------------------------------------------------------------------------- scorers


class DecoderScorer:
    """Full scorer: the decoder's log probabilities; owns the KV cache and reorders it."""

    def __init__(self, decoder: Decoder, cross_kv: list[np.ndarray], mem_lens: np.ndarray, prompt: np.ndarray,
                 rules: Rules | None = None):
        self.decoder, self.cross_kv, self.mem_lens = decoder, cross_kv, mem_lens
        self.tokens = self.pending = prompt  # (N, L) every token so far / not yet seen by the decoder
        self.self_kv = decoder.empty_cache(prompt.shape[0])
        # Whisper's P(<|nospeech|>) after the start token: the graph gives the last position's logits only,
        # so the first call feeds the prompt up to the start token, then the rest
        self.no_speech, self.start_at = (None, 0) if rules is None else (rules.no_speech, rules.start_at)
        self.no_speech_probs: np.ndarray | None = None

    def logits(self) -> np.ndarray:
        if self.no_speech is not None and self.no_speech_probs is None:
            head, self.pending = self.pending[:, : self.start_at + 1], self.pending[:, self.start_at + 1 :]
            logits, self.self_kv = self.decoder.step(head, self.mem_lens, self.self_kv, self.cross_kv)
            self.no_speech_probs = np.exp(log_softmax(logits.astype(np.float32))[:, self.no_speech])
            if not self.pending.shape[1]:
                return logits
        logits, self.self_kv = self.decoder.step(self.pending, self.mem_lens, self.self_kv, self.cross_kv)
        return logits

    def scores(self) -> np.ndarray:
        return log_softmax(self.logits().astype(np.float32))

    def advance(self, rows: np.ndarray, tokens: np.ndarray, keep: np.ndarray | None) -> None:
        self.tokens = np.concatenate([self.tokens[rows], tokens[:, None]], 1)
        self.pending = tokens[:, None]
        self.self_kv = [t[rows] for t in self.self_kv]
        if keep is not None:
            self.cross_kv, self.mem_lens = [t[keep] for t in self.cross_kv], self.mem_lens[keep]


class CTCScorer:
    """Partial scorer: CTC prefix scores of a few candidate tokens per row."""

    def __init__(self, ctc_logits: np.ndarray, mem_lens: np.ndarray, eos: int, rows_per_utt: int):
        self.prefix = CTCPrefixScorer(ctc_logits, mem_lens, eos)
        self.state = self.prefix.initial_state(rows_per_utt)

    def scores(self, cand: np.ndarray) -> np.ndarray:
        return self.prefix.score(self.state, cand)

    def advance(self, rows: np.ndarray, tokens: np.ndarray, keep: np.ndarray | None) -> None:
        if keep is not None:
            self.prefix.select_utterances(keep)
        self.state = self.prefix.advance(self.state, rows, tokens)


# --------------------------------------------------------------------------- search


def ctc_log_likelihood(log_probs: np.ndarray, targets: list[int], blank: int = BLANK) -> float:
    """log P(targets | frames) for one utterance's CTC log-probabilities (T, V): the forward recursion
    over the targets with blanks between them (torch's ctc_loss, negated); -inf where they cannot fit."""
    ext = np.full(2 * len(targets) + 1, blank, dtype=np.int64)
    ext[1::2] = targets
    skip = np.zeros(len(ext), dtype=bool)  # a label may follow the one two back across a blank
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    alpha = np.full(len(ext), NEG_INF)
    alpha[: min(2, len(ext))] = log_probs[0, ext[:2]]
    for t in range(1, log_probs.shape[0]):
        one = np.concatenate([[NEG_INF], alpha])[: len(alpha)]
        two = np.where(skip, np.concatenate([[NEG_INF, NEG_INF], alpha])[: len(alpha)], NEG_INF)
        alpha = np.logaddexp(np.logaddexp(alpha, one), two) + log_probs[t, ext]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if len(ext) > 1 else alpha[-1])


def _limits(mem_lens: np.ndarray, o: DecodeOptions, rules: Rules, max_target_len: int,
            max_lens: np.ndarray | None) -> np.ndarray:
    limits = (mem_lens.astype(np.float32) * o.max_len_ratio).astype(np.int64) + 8
    limits = np.minimum(limits, max_target_len - len(rules.prompt))
    return limits if max_lens is None else np.minimum(limits, max_lens)


def _prompt(rules: Rules, rows: int) -> np.ndarray:
    return np.tile(np.array([rules.prompt], dtype=np.int64), (rows, 1))


def greedy_hypotheses(decoder: Decoder, enc: Encoded, o: DecodeOptions, rules: Rules, max_target_len: int,
                      max_lens: np.ndarray | None = None) -> list[Hypothesis]:
    """asr.decode.greedy_hypotheses: the most likely token at every step, batched, KV cache."""
    limits = _limits(enc.lengths, o, rules, max_target_len, max_lens)
    results = [Hypothesis([], 0.0, 0.0) for _ in range(len(limits))]
    rows = np.nonzero(limits > 0)[0]
    limits, logp = limits[rows], np.zeros(len(rows), dtype=np.float32)
    dec = DecoderScorer(decoder, [t[rows] for t in enc.cross_kv], enc.lengths[rows], _prompt(rules, len(rows)), rules)
    step, start, first_rows = 0, len(rules.prompt), rows
    while len(rows):
        logits = dec.logits().astype(np.float32)
        if step == 0 and dec.no_speech_probs is not None:
            for r, p in zip(first_rows.tolist(), dec.no_speech_probs.tolist()):
                results[r].no_speech_prob = p
        logits[:, list(rules.suppress) + (list(rules.suppress_at_start) if step == 0 else [])] = NEG_INF
        next_tok = logits.argmax(-1)
        logp += take(log_softmax(logits), next_tok[:, None])[:, 0]
        step += 1
        done = (next_tok == rules.eos) | (step >= limits)
        for r in np.nonzero(done)[0].tolist():
            seq = dec.tokens[r, start:].tolist() + [int(next_tok[r])]
            seq = seq[:-1] if seq[-1] == rules.eos else seq
            lp = float(logp[r])
            results[rows[r]] = dataclasses.replace(results[rows[r]], tokens=seq, log_prob=lp,
                                                   score=lp / (len(seq) + 1) ** o.length_penalty)
        keep = np.nonzero(~done)[0]
        if len(keep) == 0:
            break
        dec.advance(keep, next_tok[keep], keep)
        rows, limits, logp = rows[keep], limits[keep], logp[keep]
    return results


def _candidates(
    full: list[tuple[float, FullScorer]], partial: list[tuple[float, PartialScorer]], C: int, rules: Rules, first: bool
) -> tuple[np.ndarray, np.ndarray]:
    """asr.decode._candidates: the C best tokens by the full scorers, and always the end token."""
    total = sum(w * scorer.scores() for w, scorer in full)
    total[:, list(rules.suppress) + (list(rules.suppress_at_start) if first else [])] = NEG_INF
    ranked = total.copy()
    ranked[:, rules.eos] = NEG_INF
    k = min(C, total.shape[1] - 1 - len(rules.suppress))
    best = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
    cand = np.concatenate([best, np.full_like(best[:, :1], rules.eos)], 1)
    score = take(total, cand)
    for w, scorer in partial:
        score = score + w * scorer.scores(cand)
    return cand, score


def beam_search(decoder: Decoder, enc: Encoded, o: DecodeOptions, rules: Rules, max_target_len: int,
                max_lens: np.ndarray | None = None) -> list[list[Hypothesis]]:
    """asr.decode.beam_search (without an LM): B lists of the n best hypotheses."""
    B, K = len(enc.lengths), o.beam_size
    limits = _limits(enc.lengths, o, rules, max_target_len, max_lens)
    finished: list[list[Hypothesis]] = [[] if limits[b] > 0 else [Hypothesis([], 0.0, 0.0)] for b in range(B)]
    utts = np.nonzero(limits > 0)[0]
    limits, n = limits[utts], len(utts)
    full, partial = _scorers(decoder, enc, utts, o, rules)
    first_utts = utts
    C = max(K, int(o.pre_beam * K)) if partial else K
    scores = np.full((n, K), NEG_INF, dtype=np.float32)
    scores[:, 0] = 0.0
    step = 0
    while len(utts):
        step, n = step + 1, len(utts)
        cand, cand_score = _candidates(full, partial, C, rules, first=step == 1)
        total = (scores.reshape(-1, 1) + cand_score).reshape(n, -1)
        top = np.argsort(-total, axis=1, kind="stable")[:, : min(2 * K, total.shape[1])]
        top_score, top_tok = take(total, top), take(cand.reshape(n, -1), top)
        parent = np.arange(n)[:, None] * K + top // cand.shape[1]
        ends = (top_tok == rules.eos) | (step >= limits)[:, None]
        _finish(finished, utts, full[0][1].tokens[:, len(rules.prompt):], parent, top_tok, top_score, ends, K, o, rules)
        order = np.argsort(ends.astype(np.int8), axis=1, kind="stable")[:, :K]
        scores, rows, new_tok = take(top_score, order), take(parent, order), take(top_tok, order)
        keep = np.nonzero(~_done(finished, utts, scores, limits, step, o))[0]
        if len(keep) == 0:
            break
        scores, rows, new_tok = scores[keep], rows[keep].reshape(-1), new_tok[keep].reshape(-1)
        for _, scorer in full + partial:
            scorer.advance(rows, new_tok, keep if len(keep) < n else None)
        utts, limits = utts[keep], limits[keep]
    probs = full[0][1].no_speech_probs
    for u, p in zip(first_utts.tolist(), [] if probs is None else probs[::K].tolist()):
        for h in finished[u]:
            h.no_speech_prob = p
    return [sorted(h, key=lambda h: -h.score)[: o.n_best] for h in finished]


def _scorers(
    decoder: Decoder, enc: Encoded, utts: np.ndarray, o: DecodeOptions, rules: Rules
) -> tuple[list[tuple[float, FullScorer]], list[tuple[float, PartialScorer]]]:
    rows = len(utts) * o.beam_size
    use_ctc = o.ctc_weight > 0 and enc.ctc_logits is not None
    cross = [t[utts] for t in enc.cross_kv]
    full = [
        (1 - o.ctc_weight if use_ctc else 1.0,
         DecoderScorer(decoder, cross, enc.lengths[utts], _prompt(rules, rows), rules))
    ]
    partial = (
        [(o.ctc_weight, CTCScorer(enc.ctc_logits[utts], enc.lengths[utts], rules.eos, o.beam_size))] if use_ctc else []
    )
    return full, partial


def _finish(finished: list[list[Hypothesis]], utts: np.ndarray, prefixes: np.ndarray, parent: np.ndarray,
            top_tok: np.ndarray, top_score: np.ndarray, ends: np.ndarray, K: int, o: DecodeOptions,
            rules: Rules) -> None:
    fin = ends & (np.arange(top_tok.shape[1]) < K) & np.isfinite(top_score)
    for u, j in zip(*np.nonzero(fin)):
        tok, s = int(top_tok[u, j]), float(top_score[u, j])
        seq = prefixes[parent[u, j]].tolist() + ([] if tok == rules.eos else [tok])
        finished[int(utts[u])].append(Hypothesis(seq, s / (len(seq) + 1) ** o.length_penalty, s))


def _done(finished: list[list[Hypothesis]], utts: np.ndarray, scores: np.ndarray, limits: np.ndarray, step: int,
          o: DecodeOptions) -> np.ndarray:
    best = scores.max(1)
    best_live = best / (limits + 1).astype(np.float32) ** o.length_penalty
    done = (step >= limits) | ~np.isfinite(best)
    enough = None if o.patience is None else max(o.n_best, round(o.beam_size * o.patience))
    for u in range(len(utts)):
        done[u] |= beam_finished([h.score for h in finished[int(utts[u])]], float(best_live[u]), o.n_best, enough)
    return done


def search(decoder: Decoder, enc: Encoded, o: DecodeOptions, rules: Rules, max_target_len: int,
           tokenizer) -> list[list[Hypothesis]]:
    """asr.decode.task.Search._search: the CTC length guard, greedy (loops trimmed) or beam, then text."""
    best_path = ctc_greedy(enc.ctc_logits, enc.lengths) if o.ctc_length_guard and enc.ctc_logits is not None else None
    max_lens = length_limits(best_path) if best_path is not None else None
    if o.greedy:
        hyps = [[h] for h in greedy_hypotheses(decoder, enc, o, rules, max_target_len, max_lens)]
        if best_path is not None:
            for (h,), ref in zip(hyps, best_path):
                h.tokens = trim_repetitions(h.tokens, ref)
    else:
        hyps = beam_search(decoder, enc, o, rules, max_target_len, max_lens)
    for nbest in hyps:
        for h in nbest:
            h.text = tokenizer.decode(h.tokens)
    return hyps
