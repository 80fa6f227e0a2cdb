"""Encoder output -> n best hypotheses with text: one model's search, its options fixed.

    options = DecodeOptions.from_config(rec.cfg, beam_size=5)   # settled once, at the edge
    search = Search(rec, options)
    nbest = search(rec.encode(wav, wav_lens))                   # B lists of Hypothesis, best first

`Search` assembles the roles: the model's `Rules` (its prompt, end token, suppressed tokens; with
Whisper's timestamp grammar when asked), an n-gram LM where one is given, the search proper
(`asr.decode.search`: greedy, or beam over scorers; or the CTC head's best path alone, with
`ctc_weight` 1 and beam 1: no decoder pass), the CTC length guard, and after it the
guards (`asr.decode.guards`): a loop decoded again, a segment the model hears no speech in
(Whisper's no-speech probability, or how unlikely a CTC head finds the text) and speech played
backwards keep an empty hypothesis that says why.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from asr.decode.ctc import ctc_greedy, ctc_prefix_beam_search, length_limits
from asr.decode.guards import MAX_TOKENS_PER_SECOND, note_ctc_logprob, reversed_audio
from asr.decode.hotwords import HotwordTree
from asr.decode.nonspeech import LOOP_RATIO, emptied, non_speech, plausibility
from asr.decode.options import AUTO, DecodeOptions, Rules
from asr.decode.repetition import compression_ratio, trim_repetitions
from asr.decode.search import beam_search, greedy_hypotheses
from asr.model.masks import lengths_to_mask
from asr.model.recognizer import Encoded, Recognizer
from asr.results import Hypothesis
from asr.text.lm import NGramLM


class Search:
    """A model's search with its options fixed: encoder output -> n best hypotheses with text."""

    def __init__(self, rec: Recognizer, options: DecodeOptions):
        self.rec, self.options = rec, options
        if options.ctc_only and not rec.cfg.model.ctc_tokens:
            raise ValueError("ctc_weight 1 decodes with the CTC head alone: this model has no CTC head over its "
                             "tokens")
        rules = Rules.of(rec.tokenizer.decoding_rules()).with_language(options.language).with_task(options.task)
        if options.prompt:
            rules = rules.with_prompt(rec.tokenizer.encode(" " + options.prompt.strip()))
        # a multilingual model told no language detects it in each segment (`detect_language`)
        self.detect = bool(rules.languages) and options.language in AUTO
        self.rules = self.plain = rules  # plain: without timestamps (the reversal check's)
        self._languages: dict[str, Search] = {}
        self.lm = NGramLM.load_arpa(options.lm, rec.tokenizer) if options.lm else None
        words = [w for w in (options.hotwords or "").split(",") if w.strip()]
        self.hotwords = HotwordTree.of(words, rec.tokenizer) if words else None
        if options.timestamps:  # the first timestamp within 1 s (openai-whisper's max_initial_timestamp)
            # they score text tokens, not timestamps (a head that spells scores finished texts)
            if rec.cfg.model.ctc_tokens or self.lm is not None:
                raise ValueError("decoding with timestamp tokens is for a model without a CTC head and "
                                 "without an LM (imported Whisper): turn timestamps off")
            self.rules = self.rules.with_timestamps(round(1.0 / rec.frame_seconds))

    def __call__(
        self, enc: Encoded, wav: Tensor | None = None, wav_lens: Tensor | None = None
    ) -> list[list[Hypothesis]]:
        """The n best hypotheses of each encoded segment; with its waveforms (`wav`, `wav_lens`),
        the reversal check (`reversed_margin`) runs too. A multilingual model detects each
        segment's language first (unless told one) and decodes the segments of each language
        together; the hypotheses say which language, and how sure the detector was."""
        if not self.detect:
            hyps = self._decode(enc, wav, wav_lens)
            for h in (h for nbest in hyps for h in nbest):
                h.language = self.rules.language
            return hyps
        found = self.detect_language(enc)
        hyps: list[list[Hypothesis]] = [[] for _ in found]
        for code in dict.fromkeys(c for c, _ in found):  # each language once, in order of appearance
            rows = [b for b, (c, _) in enumerate(found) if c == code]
            idx = torch.tensor(rows, device=enc.memory.device)
            part = Encoded(*(None if t is None else t[idx] for t in enc))
            waves = (None, None) if wav is None else (wav[idx.to(wav.device)], wav_lens[idx.to(wav_lens.device)])
            for b, nbest in zip(rows, self._speaking(code)._decode(part, *waves)):
                hyps[b] = nbest
        for nbest, (code, p) in zip(hyps, found):
            for h in nbest:
                h.language, h.language_probability = code, p
        return hyps

    @torch.no_grad()
    def detect_language(self, enc: Encoded) -> list[tuple[str, float]]:
        """Whisper's language identification: the decoder's distribution over the language tokens
        after the start token, for each encoded segment -> (its likeliest language, probability)."""
        r = self.plain
        start = torch.tensor([r.prompt[: r.start_at + 1]], device=enc.memory.device).expand(len(enc.lengths), -1)
        logits = self.rec.model.decoder(start, enc.memory, enc.lengths, None)[:, -1].float()  # (B, V)
        probs = logits[:, r.language_begin : r.language_begin + len(r.languages)].softmax(-1)
        best, index = probs.max(-1)
        return [(r.languages[i], p) for i, p in zip(index.tolist(), best.tolist())]

    def with_prompt(self, text: str) -> Search:
        """This search with `text` as Whisper's previous-text prompt (live transcription: the text
        before); the LM, hotword tree and options are shared, not rebuilt."""
        search = copy.copy(self)
        search.rules, search._languages = self.rules.with_prompt(self.rec.tokenizer.encode(" " + text.strip())), {}
        return search

    def _speaking(self, code: str) -> Search:
        """This search for speech in language `code` (made once per language)."""
        if code not in self._languages:
            search = copy.copy(self)
            search.detect = False
            search.rules, search.plain = self.rules.with_language(code), self.plain.with_language(code)
            self._languages[code] = search
        return self._languages[code]

    def _decode(self, enc: Encoded, wav: Tensor | None, wav_lens: Tensor | None) -> list[list[Hypothesis]]:
        """The search and its guards, in this search's language."""
        o = self.options
        hyps = self._search(enc, o)
        if o.compression_ratio_threshold is not None:
            self._guard_loops(enc, hyps)
        if enc.ctc_logits is not None:
            note_ctc_logprob(hyps, enc.ctc_logits, enc.lengths, self.rec.ctc_blank, self.rec.ctc_targets)
        self._reject_non_speech(hyps)
        if o.reversed_margin not in (None, math.inf) and wav is not None:  # inf: off (where None means "keep")
            self._reject_reversed(enc, wav, wav_lens, hyps)
        return hyps

    def _search(self, enc: Encoded, o: DecodeOptions, cap: Tensor | None = None,
                rules: Rules | None = None) -> list[list[Hypothesis]]:
        """The search proper; `cap`: at most this many tokens per row; `rules`: other than the search's."""
        memory, mem_lens, ctc_logits = enc
        rules = rules or self.rules
        spells = self.rec.cfg.model.spells
        spelled = ctc_logits if spells else None
        if spells:  # letters: no token-level guard or prefix scores; the n best are rescored instead
            ctc_logits, o = None, dataclasses.replace(o, ctc_length_guard=False)
        best_path = (
            ctc_greedy(ctc_logits, mem_lens, rules.blank) if o.ctc_length_guard and ctc_logits is not None else None
        )
        max_lens = length_limits(best_path, mem_lens.device) if best_path is not None else None
        if cap is not None:
            max_lens = cap.to(mem_lens.device) if max_lens is None else torch.minimum(max_lens, cap.to(max_lens.device))
        if o.ctc_only and ctc_logits is not None and o.beam_size == 1:  # the best path, scored by its log prob
            paths = best_path if best_path is not None else ctc_greedy(ctc_logits, mem_lens, rules.blank)
            frames = lengths_to_mask(mem_lens, ctc_logits.shape[1])
            lps = (ctc_logits.float().log_softmax(-1).amax(-1) * frames).sum(-1).tolist()  # the path's log prob
            hyps = [[Hypothesis(p, lp / (len(p) + 1) ** o.length_penalty, lp)] for p, lp in zip(paths, lps)]
        elif o.ctc_only and ctc_logits is not None:  # the prefix beam: every alignment of each transcript counted
            nbests = ctc_prefix_beam_search(ctc_logits, mem_lens, o.beam_size, o.n_best, rules.blank)
            hyps = [[Hypothesis(p, lp / (len(p) + 1) ** o.length_penalty, lp) for p, lp in nb] for nb in nbests]
        elif o.greedy:
            hyps = [[h] for h in greedy_hypotheses(self.rec.model, memory, mem_lens, o, max_lens, rules)]
            if best_path is not None:  # cut loops the CTC path does not support
                for (h,), ref in zip(hyps, best_path):
                    h.tokens = trim_repetitions(h.tokens, ref)
        else:
            joint = spelled is not None and o.ctc_weight > 0
            wide = dataclasses.replace(o, n_best=o.beam_size) if joint else o  # the whole beam, to rescore
            hyps = beam_search(
                self.rec.model, memory, mem_lens, ctc_logits, wide, self.lm if o.lm else None, max_lens, rules,
                self.hotwords if o.hotwords else None,
            )
            if joint:
                hyps = self._rescore(hyps, spelled, mem_lens, o)
        for nbest in hyps:
            for h in nbest:
                h.text = self.rec.tokenizer.decode(h.tokens)  # (timestamp tokens stay in h.tokens, not in the text)
        return hyps

    def _rescore(self, hyps: list[list[Hypothesis]], ctc_logits: Tensor, mem_lens: Tensor,
                 o: DecodeOptions) -> list[list[Hypothesis]]:
        """Joint CTC/attention scores for a CTC head that spells: each finished hypothesis of the beam
        gets (1 - ctc_weight) x its decoder log probability + ctc_weight x the CTC head's log
        P(its letters | audio), and the n best by that are kept. (Prefix scores token by token,
        as for a head over the decoder's tokens, would need each token spelled alone; the
        normalizer reads numbers across tokens.) A text the frames cannot hold is dropped."""
        out = []
        for b, nbest in enumerate(hyps):
            targets = [torch.tensor(self.rec.ctc_targets(h.tokens), dtype=torch.long) for h in nbest]
            frames = ctc_logits[b : b + 1, : int(mem_lens[b])].float().log_softmax(-1).transpose(0, 1)
            nll = F.ctc_loss(frames.expand(-1, len(nbest), -1), torch.cat(targets).to(frames.device),
                             mem_lens[b : b + 1].expand(len(nbest)).cpu(), torch.tensor([len(t) for t in targets]),
                             self.rec.ctc_blank, reduction="none").tolist()
            scored = []
            for h, loss in zip(nbest, nll):
                if math.isfinite(loss):  # (an empty transcript is scored too: all blanks)
                    lp = (1 - o.ctc_weight) * h.log_prob - o.ctc_weight * loss
                    scored.append(dataclasses.replace(h, score=lp / (len(h.tokens) + 1) ** o.length_penalty,
                                                      log_prob=lp))
            out.append(sorted(scored, key=lambda h: -h.score)[: o.n_best] or nbest[: o.n_best])
        return out

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
                nbest[:] = [emptied(best, reason)]

    def _reject_reversed(self, enc: Encoded, wav: Tensor, wav_lens: Tensor, hyps: list[list[Hypothesis]]) -> None:
        """Speech played backwards sounds like speech to a voice activity detector and decodes into
        confident-looking text, but the same audio played forwards again is speech, and reads
        better still. So each transcribed segment is also decoded backwards (greedily); where that
        transcript's `plausibility` beats the forward one's by more than `reversed_margin`, the
        segment holds no speech. Speech itself reads far worse backwards; a backwards transcript
        that loops does not count. Costs one more encoder pass and greedy search per segment checked:
        with `reversed_check_below`, only the segments whose transcript is not already confident;
        with `reversed_check_min_seconds`, only segments that long (one short word played backwards
        can read as well as forwards, so the check would drop real words).
        Both readings are greedy and without timestamp tokens, as the margins were chosen: a forward
        transcript decoded with them is read again without them (a decoder pass, no encoder pass)."""
        below = self.options.reversed_check_below
        shortest = self.options.reversed_check_min_seconds * self.rec.cfg.features.sample_rate
        rows = [
            b for b, nbest in enumerate(hyps)
            if nbest[0].rejected is None and self.rules.text_tokens(nbest[0].tokens) and wav_lens[b] >= shortest
        ]
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
        rev_enc = self.encode(reversed_audio(wav[idx], wav_lens[idx]), wav_lens[idx])
        backwards = self._search(rev_enc, greedy, cap, self.plain)
        if rev_enc.ctc_logits is not None:
            note_ctc_logprob(backwards, rev_enc.ctc_logits, rev_enc.lengths, self.rec.ctc_blank, self.rec.ctc_targets)
        loop = self.options.compression_ratio_threshold or LOOP_RATIO
        for b, (rev, *_), limit in zip(rows, backwards, cap.tolist()):
            best = hyps[b][0]
            # a loop ("I'm sorry, I'm sorry, ...") is confident nonsense, not a better reading
            readable = rev.tokens and len(rev.tokens) < limit and compression_ratio(rev.text) <= loop
            gain = plausibility(rev) - forward[b] if readable else -math.inf
            if gain > self.options.reversed_margin:
                reason = (f"reads better played backwards ({plausibility(rev):.2f} against {forward[b]:.2f} "
                          f"per token: {rev.text!r})")
                hyps[b] = [emptied(best, reason)]

    def unfinished(self, h: Hypothesis) -> float | None:
        """Seconds into its audio where `h` (decoded with timestamps) opened an utterance it did not
        transcribe, or None: the place to decode on from (openai-whisper seeks there)."""
        steps = self.rules.unfinished(h.tokens)
        return None if steps is None else steps * self.rec.frame_seconds

    def encode(self, wav: Tensor, wav_lens: Tensor) -> Encoded:
        """The model's encoder output for these waveforms, chunked as `options.chunk` says."""
        return self.rec.encode(wav, wav_lens, self.options.chunk)

    def decode(self, wav: Tensor, wav_lens: Tensor) -> list[list[Hypothesis]]:
        """(B, S) padded waveforms -> for each, its n best hypotheses."""
        return self(self.encode(wav, wav_lens), wav, wav_lens)
