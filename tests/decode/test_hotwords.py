"""Hotwords: the bonus along a hotword, taken back when the hypothesis leaves it, kept when it is
finished; and a search that then writes the hotword."""

import random

import pytest
import torch

from asr.decode.hotwords import HotwordScorer, HotwordTree
from asr.decode.options import DecodeOptions
from asr.decode.search import beam_search
from asr.text.tokenizers import CharTokenizer
from tests.decode.test_search import EOS, encode, make_model

W = 2.0


def tree() -> HotwordTree:
    t = HotwordTree()
    t.add([5, 6, 7])
    t.add([5, 8])
    return t


def total(t: HotwordTree, tokens: list[int]) -> float:
    """The scorer's sum over `tokens`, as the search adds it up step by step."""
    node, earned, score = 0, 0.0, 0.0
    for tok in tokens:
        node, earned, s = t.step(node, earned, tok, W)
        score += s
    return score


def finished(tokens: list[int]) -> int:
    """Tokens inside finished hotwords, matched left to right (the brute-force reference)."""
    n, i = 0, 0
    while i < len(tokens):
        for word in ([5, 6, 7], [5, 8]):
            if tokens[i : i + len(word)] == word:
                n, i = n + len(word), i + len(word)
                break
        else:
            i += 1
    return n


def test_a_finished_hotword_keeps_its_bonus_and_an_abandoned_one_gives_it_back():
    t = tree()
    assert total(t, [5, 6, 7, EOS]) == 3 * W  # finished: kept
    assert total(t, [5, 6, 9, EOS]) == 0.0  # left after two tokens: taken back at the third
    assert total(t, [5, 6, EOS]) == 0.0  # unfinished at the end: the end token takes it back
    assert total(t, [5, 5, 8, EOS]) == 2 * W  # abandoned, then another started at once
    rng = random.Random(0)
    for _ in range(300):
        seq = [rng.choice([5, 6, 7, 8, 9]) for _ in range(rng.randint(0, 10))] + [EOS]
        assert total(t, seq) == pytest.approx(finished(seq) * W), seq


def test_the_scorer_gives_each_row_its_bonus_for_every_next_token():
    scorer = HotwordScorer(tree(), W, rows=2, vocab_size=12, device=torch.device("cpu"))
    scorer.advance(torch.tensor([0, 1]), torch.tensor([5, 9]), None)  # row 0 started a hotword, row 1 did not
    s = scorer.scores()
    assert s[0, 6] == W and s[0, 8] == W  # deeper into either hotword
    assert s[0, 9] == -W and s[0, EOS] == -W  # leaving: the bonus back
    assert s[0, 5] == 0.0  # leaving and starting again: back, then earned anew
    assert s[1, 5] == W and s[1].abs().sum() == W  # row 1: only a hotword's first token scores
    scorer.advance(torch.tensor([0]), torch.tensor([6]), torch.tensor([0]))  # row 0 carries on alone
    assert scorer.scores()[0, 7] == W and scorer.scores()[0, 9] == -2 * W


def test_the_tree_writes_words_as_the_tokenizer_does():
    tok = CharTokenizer.train(["kubernetes and more"])
    t = HotwordTree.of(["kubernetes", " and "], tok)
    assert total(t, tok.encode("kubernetes") + [EOS]) == len("kubernetes") * W
    with pytest.raises(ValueError, match="no hotword"):
        HotwordTree.of(["  "], tok)


def test_a_heavy_hotword_is_written_and_a_weightless_one_changes_nothing():
    model = make_model()
    memory, lens, ctc_logits = encode(model, [40, 30])
    o = DecodeOptions(beam_size=4, ctc_weight=0.0, max_len_ratio=1.0)
    plain = beam_search(model, memory, lens, None, o)
    words = HotwordTree()
    words.add([3, 4, 5])
    none = beam_search(model, memory, lens, None, DecodeOptions(**{**o.__dict__, "hotword_weight": 0.0}),
                       hotwords=words)
    assert [h.tokens for h, *_ in none] == [h.tokens for h, *_ in plain]
    heavy = beam_search(model, memory, lens, None, DecodeOptions(**{**o.__dict__, "hotword_weight": 30.0}),
                        hotwords=words)
    for h, *_ in heavy:
        assert any(h.tokens[i : i + 3] == [3, 4, 5] for i in range(len(h.tokens))), h.tokens
