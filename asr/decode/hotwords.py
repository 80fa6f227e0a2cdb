"""Hotwords -> a full scorer that biases beam search towards them (contextual biasing).

    tree = HotwordTree.of(["Kubernetes", "Dvořák"], tokenizer)
    scorer = HotwordScorer(tree, weight=2.0, rows=N, vocab_size=V, device=device)

A prefix tree holds the hotwords' token sequences. Each row remembers the tree node its last
tokens reached and the bonus earned on the way since the last completed hotword. A token that goes
one step deeper earns `weight`; completing a hotword keeps what was earned; any other token takes
the earned bonus back, so a hypothesis that starts a hotword and leaves it scores as it would have
without the tree (WeNet's and icefall's context graphs work this way). A token that starts a
hotword anew may follow an abandoned one. The scorer follows `asr.decode.interfaces.FullScorer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class HotwordTree:
    children: list[dict[int, int]] = field(default_factory=lambda: [{}])  # node -> {token: child node}
    ends: list[bool] = field(default_factory=lambda: [False])  # node completes a hotword

    @classmethod
    def of(cls, words: list[str], tokenizer) -> HotwordTree:
        """The tree of `words` as `tokenizer` writes them inside a sentence (Whisper: after a space)."""
        tree = cls()
        lead = " " if getattr(tokenizer, "kind", "") == "whisper" else ""
        for word in words:
            tokens = tokenizer.encode(lead + word.strip())
            if tokens:
                tree.add(tokens)
        if len(tree.children) == 1:
            raise ValueError(f"no hotword could be written in this model's tokens: {words}")
        return tree

    def add(self, tokens: list[int]) -> None:
        node = 0
        for t in tokens:
            if t not in self.children[node]:
                self.children.append({})
                self.ends.append(False)
                self.children[node][t] = len(self.children) - 1
            node = self.children[node][t]
        self.ends[node] = True

    def step(self, node: int, earned: float, token: int, weight: float) -> tuple[int, float, float]:
        """From `node` with `earned` bonus, `token` -> (next node, bonus earned since the last
        completed hotword, this token's score)."""
        child = self.children[node].get(token)
        if child is not None:
            return child, 0.0 if self.ends[child] else earned + weight, weight
        start = self.children[0].get(token)  # leave the match (taking its bonus back), maybe start another
        if start is not None:
            return start, 0.0 if self.ends[start] else weight, weight - earned
        return 0, 0.0, -earned


class HotwordScorer:
    """Full scorer: each row's bonus (or take-back) for every next token, from the hotword tree."""

    def __init__(self, tree: HotwordTree, weight: float, rows: int, vocab_size: int, device: torch.device):
        self.tree, self.weight, self.vocab_size, self.device = tree, weight, vocab_size, device
        self.state = [(0, 0.0)] * rows  # (node, earned) per row

    def scores(self) -> Tensor:
        out = torch.zeros(len(self.state), self.vocab_size)
        root = self.tree.children[0]
        for r, (node, earned) in enumerate(self.state):
            if earned:
                out[r] = -earned  # most tokens leave the match: its bonus is taken back
            for tokens in (root, self.tree.children[node]) if node else (root,):
                for t in tokens:
                    out[r, t] = self.tree.step(node, earned, t, self.weight)[2]
        return out.to(self.device)

    def advance(self, rows: Tensor, tokens: Tensor, keep: Tensor | None) -> None:
        self.state = [self.tree.step(*self.state[r], t, self.weight)[:2] for r, t in zip(rows.tolist(),
                                                                                         tokens.tolist())]
