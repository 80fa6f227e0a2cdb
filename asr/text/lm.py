"""A token n-gram language model for shallow fusion in beam search.

Trained on text with the acoustic model's own tokenizer (interpolated Kneser-Ney, the
discount of each order estimated from its counts of counts), and stored as an ARPA file of the
tokenizer's pieces, a word-initial piece written with a leading "▁" as in SentencePiece. An
ARPA file another tool made over the same pieces (KenLM's `lmplz` on tokenized text) loads too.

Ids are the model's: `SOS_EOS` is `<s>` where it opens a context and `</s>` where it is
predicted; `BLANK` is never predicted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import torch
from torch import Tensor

from asr.storage import read_jsonl, write_text
from asr.text.tokenizers import BLANK, N_SPECIAL, SOS_EOS, UNK, Tokenizer

LN10 = math.log(10.0)
Gram = tuple[int, ...]


class NGramLM:
    """log P(token | the n-1 tokens before it), backing off to shorter contexts ARPA-style:
    P(w | h) = p(h w) when listed, else bow(h) x P(w | h without its first token)."""

    def __init__(self, order: int, vocab_size: int, logp: dict[Gram, float], bow: dict[Gram, float]):
        self.order, self.vocab_size = order, vocab_size
        self.logp, self.bow = logp, bow  # natural logs
        rows: dict[Gram, list[tuple[int, float]]] = defaultdict(list)
        for gram, lp in logp.items():
            rows[gram[:-1]].append((gram[-1], lp))
        self._listed = {
            h: (torch.tensor([w for w, _ in r]), torch.tensor([lp for _, lp in r])) for h, r in rows.items()
        }
        self._cache: dict[Gram, Tensor] = {}

    # ------------------------------------------------------------------ scoring

    def context(self, tokens: Iterable[int]) -> Gram:
        """The state after `tokens` (without the start token): the longest suffix of
        <s> + tokens, at most order - 1 long, that the model knows as a context."""
        h = (SOS_EOS, *tokens)[-(self.order - 1):] if self.order > 1 else ()
        while h and h not in self._listed and h not in self.bow:
            h = h[1:]
        return h

    def extend(self, h: Gram, token: int) -> Gram:
        """The state after context `h` and then `token`: `context` of a sequence, one token at a
        time. (A known context's prefixes are known contexts, so backing off from the long end
        gives what `context` of the whole sequence gives.)"""
        g = (*h, token)[-(self.order - 1):] if self.order > 1 else ()
        while g and g not in self._listed and g not in self.bow:
            g = g[1:]
        return g

    def logprobs(self, h: Gram) -> Tensor:
        """log P(w | h) for every id w of the vocabulary, as a float tensor (-inf for blank)."""
        vec = self._cache.get(h)
        if vec is None:
            if h:
                vec = self.logprobs(h[1:]) + self.bow.get(h, 0.0)
            else:  # unigrams: a token the file does not list cannot be predicted
                vec = torch.full((self.vocab_size,), float("-inf"))
            if h in self._listed:
                ids, lps = self._listed[h]
                vec = vec.clone()
                vec[ids] = lps
            vec[BLANK] = float("-inf")
            if len(self._cache) > 50_000:  # (a vocabulary-sized vector each)
                self._cache.clear()
            self._cache[h] = vec
        return vec

    def batch_logprobs(self, contexts: list[Gram]) -> Tensor:
        return torch.stack([self.logprobs(h) for h in contexts])

    def sentence_logprob(self, tokens: list[int]) -> float:
        """log P(tokens, then </s>)."""
        total, seq = 0.0, list(tokens) + [SOS_EOS]
        for i, w in enumerate(seq):
            total += float(self.logprobs(self.context(seq[:i]))[w])
        return total

    # ------------------------------------------------------------------ training

    @classmethod
    def train(cls, sentences: Iterable[list[int]], vocab_size: int, order: int = 4) -> "NGramLM":
        """Interpolated Kneser-Ney. Counts of the highest order, and of n-grams that start with
        <s>, are raw counts; lower orders count the distinct tokens seen before them."""
        if order < 1:
            raise ValueError("order must be at least 1")
        raw: dict[Gram, int] = defaultdict(int)
        for tokens in sentences:
            seq = [SOS_EOS, *tokens, SOS_EOS]
            for i in range(1, len(seq)):  # the n-grams predicting seq[i]
                for k in range(1, order + 1):
                    if i - k + 1 < 0:
                        break
                    raw[tuple(seq[i - k + 1 : i + 1])] += 1
        if not raw:
            raise ValueError("no text to train a language model on")
        # (a unigram (SOS_EOS,) is </s>; longer grams hold SOS_EOS first only as <s>)
        adjusted: dict[Gram, int] = {
            g: c for g, c in raw.items() if len(g) == order or (len(g) > 1 and g[0] == SOS_EOS)
        }
        left: dict[Gram, int] = defaultdict(int)
        for g in raw:
            if len(g) > 1:
                left[g[1:]] += 1  # one more distinct token seen before g[1:]
        adjusted.update(left)
        # discounts per order from counts of counts: D = n1 / (n1 + 2 n2)
        discount = {}
        for k in range(1, order + 1):
            n1 = sum(1 for g, c in adjusted.items() if len(g) == k and c == 1)
            n2 = sum(1 for g, c in adjusted.items() if len(g) == k and c == 2)
            discount[k] = min(max(n1 / (n1 + 2 * n2), 0.1), 0.9) if n1 + n2 else 0.5
        totals: dict[Gram, int] = defaultdict(int)
        types: dict[Gram, int] = defaultdict(int)
        for g, c in adjusted.items():
            totals[g[:-1]] += c
            types[g[:-1]] += 1
        bow = {h: discount[len(h) + 1] * types[h] / totals[h] for h in totals}  # the mass each context passes down
        words = [SOS_EOS, UNK, *range(N_SPECIAL, vocab_size)]  # what may be predicted (SOS_EOS: </s>)
        logp: dict[Gram, float] = {}
        for g in sorted(adjusted, key=len):  # lower orders first: each interpolates with the one below
            h = g[:-1]
            lower = math.exp(logp[g[1:]]) if h else 1.0 / len(words)
            logp[g] = math.log(max(adjusted[g] - discount[len(g)], 0.0) / totals[h] + bow[h] * lower)
        for w in words:  # every token gets its unigram (the uniform share), so nothing scores -inf
            logp.setdefault((w,), math.log(bow[()] / len(words)))
        return cls(order, vocab_size, logp, {h: math.log(b) for h, b in bow.items() if h and b > 0})

    # ------------------------------------------------------------------ ARPA files

    def save_arpa(self, path: str | Path, tokenizer: Tokenizer) -> None:
        """Write ARPA (log10), grams of the tokenizer's pieces; `<s>` gets its backoff line."""
        by_order: dict[int, list[Gram]] = defaultdict(list)
        for g in self.logp:
            by_order[len(g)].append(g)
        start = (SOS_EOS,)
        lines = ["", "\\data\\"]
        counts = {k: len(v) + (1 if k == 1 else 0) for k, v in by_order.items()}  # + the <s> line
        lines += [f"ngram {k}={counts[k]}" for k in sorted(counts)]
        for k in sorted(by_order):
            lines += ["", f"\\{k}-grams:"]
            if k == 1:
                lines.append(f"-99\t<s>\t{self.bow.get(start, 0.0) / LN10:.6f}")
            for g in sorted(by_order[k]):
                text = " ".join(_word(i, j, len(g), tokenizer) for j, i in enumerate(g))
                line = f"{self.logp[g] / LN10:.6f}\t{text}"
                if k < self.order and g in self.bow and g[-1] != SOS_EOS:
                    line += f"\t{self.bow[g] / LN10:.6f}"
                lines.append(line)
        lines += ["", "\\end\\", ""]
        write_text(path, "\n".join(lines))

    @classmethod
    def load_arpa(cls, path: str | Path, tokenizer: Tokenizer) -> "NGramLM":
        """Read an ARPA file over `tokenizer`'s pieces. A gram with a piece the tokenizer does
        not have is an error (the LM was made for another tokenizer)."""
        ids = {_word(i, 1, 2, tokenizer): i for i in range(N_SPECIAL, tokenizer.vocab_size)}
        ids.update({"<s>": SOS_EOS, "</s>": SOS_EOS, "<unk>": UNK})
        logp: dict[Gram, float] = {}
        bow: dict[Gram, float] = {}
        order, section = 0, None
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("ngram ") or line == "\\data\\":
                    continue
                if line == "\\end\\":
                    break
                if line.startswith("\\") and line.endswith("-grams:"):
                    section = int(line[1:].split("-")[0])
                    order = max(order, section)
                    continue
                if section is None:
                    raise ValueError(f"{path}:{n}: not an ARPA file (expected \\data\\ and \\1-grams:)")
                parts = line.split()
                if len(parts) not in (section + 1, section + 2):
                    raise ValueError(f"{path}:{n}: expected {section} tokens, a log probability and maybe a backoff")
                try:
                    gram = tuple(ids[w] for w in parts[1 : section + 1])
                except KeyError as e:
                    raise ValueError(f"{path}:{n}: token {e.args[0]!r} is not in the model's tokenizer") from None
                if parts[1] != "<s>" or section > 1:
                    logp[gram] = float(parts[0]) * LN10
                if len(parts) == section + 2:
                    bow[gram] = float(parts[-1]) * LN10
        if not logp:
            raise ValueError(f"{path}: no n-grams")
        bow.pop((), None)
        return cls(order, tokenizer.vocab_size, logp, bow)


def _word(i: int, position: int, length: int, tokenizer: Tokenizer) -> str:
    if i == SOS_EOS:
        return "<s>" if position == 0 and length > 1 else "</s>"
    if i == UNK:
        return "<unk>"
    return tokenizer.piece(i).replace(" ", "\u2581")


def train_lm(tokenizer: Tokenizer, texts: Iterable[str], order: int = 4) -> NGramLM:
    return NGramLM.train((tokenizer.encode(t) for t in texts), tokenizer.vocab_size, order)


def read_texts(paths: Iterable[str | Path]) -> list[str]:
    """Sentences from JSONL manifests (each line's "text") and plain text files (one a line)."""
    texts = []
    for path in paths:
        if str(path).endswith(".jsonl"):
            for n, row in enumerate(read_jsonl(path), 1):
                if not isinstance(row.get("text"), str):
                    raise ValueError(f"{path}:{n}: entry {n} has no \"text\"")
                texts.append(row["text"])
        else:
            texts += [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts
