"""CTC: prefix scores against brute force, the greedy path, forced alignment."""

import itertools
import math

import pytest
import torch

from asr.decode.ctc import CTCPrefixScorer, align_tokens, ctc_greedy, ctc_length_limits, ctc_prefix_beam_search
from asr.text.tokenizers import SOS_EOS as EOS


def collapse(path):
    out, prev = [], None
    for t in path:
        if t != prev and t != 0:
            out.append(t)
        prev = t
    return out


def brute_force(log_probs, prefix, exact):
    """Sum over every frame path whose collapsed output starts with (or equals) `prefix`."""
    T, V = log_probs.shape
    total = 0.0
    for path in itertools.product(range(V), repeat=T):
        out = collapse(path)
        if (out == prefix) if exact else (out[: len(prefix)] == prefix):
            total += math.exp(sum(float(log_probs[t, s]) for t, s in enumerate(path)))
    return math.log(total) if total > 0 else float("-inf")  # e.g. more labels than frames


def test_ctc_prefix_scores_match_brute_force():
    torch.manual_seed(0)
    V = 4  # blank, eos, two labels
    logits = torch.randn(2, 5, V) * 2
    lens = torch.tensor([5, 4])  # the second utterance is padded
    scorer = CTCPrefixScorer(logits, lens, eos=EOS)
    state = scorer.initial_state(1)
    cand = torch.tensor([[2, 3, EOS], [2, 3, EOS]])
    for prefix_len in range(3):  # extend with 2, then 2 again (a repeat)
        delta = scorer.score(state, cand)
        for b in range(2):
            lp = logits[b, : lens[b]].double().log_softmax(-1)
            prefix = [2] * prefix_len
            base = brute_force(lp, prefix, exact=False) if prefix else 0.0
            for j, c in enumerate([2, 3]):
                expected = brute_force(lp, prefix + [c], False) - base
                assert float(delta[b, j]) == (
                    pytest.approx(expected, abs=1e-5) if math.isfinite(expected) else expected
                )
            assert float(delta[b, 2]) == pytest.approx(brute_force(lp, prefix, True) - base, abs=1e-5)
        state = scorer.advance(state, torch.tensor([0, 1]), torch.tensor([2, 2]))  # both utterances take token 2


def test_prefix_beam_search_finds_the_most_probable_transcripts():
    """A beam wide enough to keep every prefix gives the exact n best transcripts and their log
    probabilities (every alignment summed, brute force over all frame paths), padded frames ignored."""
    torch.manual_seed(1)
    logits = torch.randn(2, 5, 3) * 2  # blank (0) and two labels
    lens = torch.tensor([5, 4])
    nbests = ctc_prefix_beam_search(logits, lens, beam=64, n_best=3, blank=0)
    for b, nbest in enumerate(nbests):
        lp = logits[b, : lens[b]].double().log_softmax(-1)
        exact: dict[tuple, float] = {}
        for path in itertools.product(range(3), repeat=int(lens[b])):
            out = tuple(collapse(path))
            p = math.exp(sum(float(lp[t, s]) for t, s in enumerate(path)))
            exact[out] = exact.get(out, 0.0) + p
        best = sorted(exact.items(), key=lambda kv: -kv[1])[:3]
        assert [tuple(tokens) for tokens, _ in nbest] == [tokens for tokens, _ in best]
        for (_, got), (_, p) in zip(nbest, best):
            assert got == pytest.approx(math.log(p), abs=1e-4)


def test_prefix_beam_search_counts_every_alignment_where_the_best_path_takes_one():
    """Two frames, P(a) = 0.4 each: the best path is two blanks (""), 0.36; "a" has three
    alignments (a a, a -, - a), 0.64 in all, and the prefix beam finds it."""
    logits = torch.log(torch.tensor([[[0.6, 0.4], [0.6, 0.4]]]))
    lens = torch.tensor([2])
    assert ctc_greedy(logits, lens, blank=0) == [[]]
    ((tokens, lp),) = ctc_prefix_beam_search(logits, lens, beam=2, blank=0)[0]
    assert tokens == [1] and lp == pytest.approx(math.log(0.64), abs=1e-6)
    # a repeat needs a blank between: "a a" takes 3 frames (a - a) and no fewer
    logits3 = torch.log(torch.tensor([[[0.1, 0.9], [0.9, 0.1], [0.1, 0.9]]]))
    ((tokens, lp),) = ctc_prefix_beam_search(logits3, torch.tensor([3]), beam=4, blank=0)[0]
    assert tokens == [1, 1] and lp == pytest.approx(math.log(0.9**3), abs=1e-6)


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    frames = [[0, 5, 5, 0, 5, 7, 7, 0], [0, 0, 0, 0, 0, 0, 0, 0]]
    logits = torch.nn.functional.one_hot(torch.tensor(frames), 10).float()
    assert ctc_greedy(logits, torch.tensor([8, 8])) == [[5, 5, 7], []]
    assert ctc_greedy(logits, torch.tensor([3, 8])) == [[5], []]  # frames past the length are ignored
    assert ctc_length_limits(logits, torch.tensor([8, 8])).tolist() == [7, 0]  # 3 * 1.25 + 4; nothing heard


def test_forced_alignment_finds_the_frames_of_each_token():
    frames = [0, 5, 5, 0, 0, 5, 7, 7, 7, 0]
    logits = torch.nn.functional.one_hot(torch.tensor(frames), 10).float() * 10
    spans = align_tokens(logits, [5, 5, 7])
    assert [(s.token, s.start, s.end) for s in spans] == [(5, 1, 3), (5, 5, 6), (7, 6, 9)]
    assert all(s.score > -0.01 for s in spans)
    assert align_tokens(logits[:3], [5, 5, 7]) is None  # cannot fit in 3 frames
