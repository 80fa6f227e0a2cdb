"""The two kinds of scorer a beam search adds up (ESPnet's ScorerInterface and PartialScorerInterface).

Rows are hypotheses in the batched layout: the K hypotheses of an utterance are consecutive rows.
`Array` is a torch Tensor in `asr.decode` and a numpy array in `asr.onnx.search`; nothing here
imports either. A new scorer (an LM, hotwords, a model's own rules) implements one of these and
joins `Search` as a (weight, scorer) pair, without a change to the loop.
"""

from __future__ import annotations

from typing import Any, Protocol

Array = Any  # (torch.Tensor | numpy.ndarray): what the search computes with


class FullScorer(Protocol):
    """Scores every token of the vocabulary for every row (the attention decoder, an n-gram LM)."""

    def scores(self) -> Array:
        """(N, V) log probabilities of the next token for each of the N live rows."""
        ...

    def advance(self, rows: Array, tokens: Array, keep: Array | None) -> None:
        """Rows `rows[i]` extended by `tokens[i]` (both (N',)) are the new rows; `keep`: the
        indices of the utterances still decoding, when some have just finished (None: all)."""
        ...


class PartialScorer(Protocol):
    """Scores only the few candidates the full scorers propose (CTC prefix scores: costly per token)."""

    def scores(self, cand: Array) -> Array:
        """(N, C) candidate token ids -> (N, C) log-probability increments of appending each."""
        ...

    def advance(self, rows: Array, tokens: Array, keep: Array | None) -> None:
        """As `FullScorer.advance`."""
        ...
