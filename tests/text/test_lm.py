"""The n-gram LM: Kneser-Ney against an independent computation, distributions that sum to one,
ARPA files that read back the same, and shallow fusion reaching the beam search."""

import math
from collections import Counter

import pytest
import torch

from asr.decode.options import DecodeOptions
from asr.decode.search import beam_search
from asr.text.lm import NGramLM, read_texts, train_lm
from asr.text.tokenizers import BLANK, SOS_EOS, CharTokenizer
from tests.decode.test_search import EOS, VOCAB, encode, make_model

TEXTS = ["turn on the light", "turn off the light", "set a timer", "set an alarm", "play some music",
         "turn on the radio", "set a timer for ten minutes"]


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.train(TEXTS)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_gives_a_distribution(tok, order):
    lm = train_lm(tok, TEXTS, order)
    contexts = [[], tok.encode("turn o"), tok.encode("set a t"), tok.encode("qqzz"), tok.encode("light")]
    for c in contexts:
        p = lm.logprobs(lm.context(c))
        assert p[BLANK] == float("-inf")
        assert torch.isfinite(p[SOS_EOS]) and p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_bigram_matches_kneser_ney_computed_independently(tok):
    sents = [[SOS_EOS, *tok.encode(t), SOS_EOS] for t in TEXTS]
    bigrams = Counter((a, b) for s in sents for a, b in zip(s, s[1:]))
    # unigram counts of KN: how many distinct tokens precede each token
    cont = Counter(b for (a, b) in bigrams)
    words = [SOS_EOS, 2, *range(3, tok.vocab_size)]  # </s>, UNK, the characters

    def d(counts):
        n1 = sum(c == 1 for c in counts.values())
        n2 = sum(c == 2 for c in counts.values())
        return min(max(n1 / (n1 + 2 * n2), 0.1), 0.9)

    d1, d2 = d(cont), d(bigrams)

    def p1(w):
        total = sum(cont.values())
        return max(cont[w] - d1, 0) / total + d1 * len(cont) / total / len(words)

    def p2(w, h):
        row = {b: c for (a, b), c in bigrams.items() if a == h}
        total = sum(row.values())
        return max(row.get(w, 0) - d2, 0) / total + d2 * len(row) / total * p1(w)

    lm = train_lm(tok, TEXTS, order=2)
    for h in (SOS_EOS, *tok.encode("tl")):
        lp = lm.logprobs(lm.context([] if h == SOS_EOS else [h]))
        for w in words:
            assert lp[w].item() == pytest.approx(math.log(p2(w, h)), abs=1e-5), (h, w)


def test_arpa_file_reads_back_the_same_model(tok, tmp_path):
    lm = train_lm(tok, TEXTS, order=3)
    lm.save_arpa(tmp_path / "lm.arpa", tok)
    text = (tmp_path / "lm.arpa").read_text()
    assert text.lstrip().startswith("\\data\\") and "\\3-grams:" in text and "<s>" in text and "</s>" in text
    back = NGramLM.load_arpa(tmp_path / "lm.arpa", tok)
    for t in TEXTS + ["tunr on the lihgt", "zzz"]:
        assert back.sentence_logprob(tok.encode(t)) == pytest.approx(lm.sentence_logprob(tok.encode(t)), abs=1e-4)
    # it prefers what it was trained on
    assert lm.sentence_logprob(tok.encode("turn on the light")) > lm.sentence_logprob(tok.encode("light the on turn"))


def test_arpa_for_another_tokenizer_is_refused(tok, tmp_path):
    other = CharTokenizer.train(["xyz qqq"])
    train_lm(other, ["xyz qqq"], order=2).save_arpa(tmp_path / "other.arpa", other)
    with pytest.raises(ValueError, match="not in the model's tokenizer"):
        NGramLM.load_arpa(tmp_path / "other.arpa", tok)
    (tmp_path / "bad.arpa").write_text("hello\n")
    with pytest.raises(ValueError, match="not an ARPA file"):
        NGramLM.load_arpa(tmp_path / "bad.arpa", tok)


def test_read_texts_takes_manifests_and_plain_text(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "Hello there"}\n\n{"id": "2", "text": "bye"}\n')
    (tmp_path / "b.txt").write_text("one line\nanother line\n")
    assert read_texts([tmp_path / "a.jsonl", tmp_path / "b.txt"]) == ["Hello there", "bye", "one line", "another line"]
    (tmp_path / "c.jsonl").write_text('{"id": "1"}\n')
    with pytest.raises(ValueError, match="c.jsonl:1"):
        read_texts([tmp_path / "c.jsonl"])


def test_shallow_fusion_steers_the_beam_and_weight_zero_changes_nothing():
    """An untrained model's beam search with a heavily weighted LM that knows one sentence
    says that sentence; with weight 0 it says what it says without an LM."""
    model = make_model()
    memory, mem_lens, ctc = encode(model, [40, 30])
    target = [3, 4, 5, 4, 6]
    lm = NGramLM.train([target] * 20 + [[7, 8], [9, 10, 11]], VOCAB, order=3)
    plain = beam_search(model, memory, mem_lens, None, DecodeOptions(beam_size=4, ctc_weight=0.0))
    zero = beam_search(model, memory, mem_lens, None, DecodeOptions(beam_size=4, ctc_weight=0.0, lm_weight=0.0), lm)
    assert [h[0].tokens for h in zero] == [h[0].tokens for h in plain]
    fused = beam_search(model, memory, mem_lens, None, DecodeOptions(beam_size=4, ctc_weight=0.0, lm_weight=20.0), lm)
    assert [h[0].tokens for h in fused] == [target, target]
    assert all(h[0].tokens != target for h in plain)  # ... which the acoustic model alone did not say
    assert EOS == SOS_EOS
