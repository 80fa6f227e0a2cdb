"""Encoder output -> hypotheses: batched greedy search and beam search over weighted scorers.

The K hypotheses of an utterance are consecutive rows, and every live row of every utterance
decodes as one batch. Full scorers (the decoder, weight 1 - ctc_weight; an LM, lm_weight) score
the whole vocabulary; partial scorers (CTC prefix scores, ctc_weight) only the few candidates
the full ones propose, which keeps hypotheses aligned with the audio (no loops, no early or late
ends, nothing on silence). A model's `Rules` filter the summed scores.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.decode.hotwords import HotwordScorer, HotwordTree
from asr.decode.interfaces import FullScorer, PartialScorer
from asr.decode.options import DecodeOptions, Rules
from asr.decode.repetition import beam_finished
from asr.decode.scorers import NEG_INF, CTCScorer, DecoderScorer, LMScorer, RepeatBan, apply_timestamp_rules
from asr.model.network import ASRModel
from asr.results import Hypothesis
from asr.text.lm import NGramLM


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
                        options.use_cache, rules.no_speech, start_at=rules.start_at)
    first_rows = rows
    step, start = 0, len(rules.prompt)
    while rows.numel() > 0:
        logits = dec.logits()
        logits[:, list(rules.suppress) + (list(rules.suppress_at_start) if step == 0 else [])] = NEG_INF
        if rules.timestamps is not None:
            apply_timestamp_rules(rules.timestamps, logits, dec.tokens[:, start:])
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


def _candidates(
    full: list[tuple[float, FullScorer]], partial: list[tuple[float, PartialScorer]], C: int, rules: Rules, first: bool
) -> tuple[Tensor, Tensor]:
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
                max_lens: Tensor | None = None, rules: Rules = Rules(),
                hotwords: HotwordTree | None = None) -> list[list[Hypothesis]]:
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
    full, partial = _scorers(model, memory[utts], mem_lens[utts], ctc_logits, utts, o, lm, rules, hotwords)
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


def _scorers(
    model: ASRModel,
    memory: Tensor,
    mem_lens: Tensor,
    ctc_logits: Tensor | None,
    utts: Tensor,
    o: DecodeOptions,
    lm: NGramLM | None,
    rules: Rules,
    hotwords: HotwordTree | None = None,
) -> tuple[list[tuple[float, FullScorer]], list[tuple[float, PartialScorer]]]:
    """(weight, scorer) pairs for the live utterances: full scorers first (the decoder), then partial ones."""
    rows, device = utts.numel() * o.beam_size, memory.device
    use_ctc = o.ctc_weight > 0 and ctc_logits is not None
    full: list = [(1 - o.ctc_weight if use_ctc else 1.0,
                   DecoderScorer(model, memory, mem_lens, _prompt(rules, rows, device), o.use_cache, rules.no_speech,
                                 rules.timestamps, rules.start_at))]
    if lm is not None and o.lm_weight:
        full.append((o.lm_weight, LMScorer(lm, rows, device)))
    if hotwords is not None:
        vocab = model.decoder.token_embedding.num_embeddings
        full.append((1.0, HotwordScorer(hotwords, o.hotword_weight, rows, vocab, device)))
    if o.no_repeat_ngram:
        full.append((1.0, RepeatBan(o.no_repeat_ngram, rows, model.decoder.token_embedding.num_embeddings, device)))
    partial = (
        [(o.ctc_weight, CTCScorer(ctc_logits[utts], mem_lens, rules.eos, o.beam_size, rules.blank))] if use_ctc else []
    )
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
