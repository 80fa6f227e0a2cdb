"""Search: CTC prefix scores against brute force, beam search against greedy and against itself
(cached vs recomputed, batched vs alone), n-best order, loop trimming, forced alignment, and the
rules that find no speech in a segment."""


import dataclasses

import pytest
import torch

from asr.config import ModelConfig
from asr.decode.guards import note_ctc_logprob as _note_ctc_logprob
from asr.decode.guards import reversed_audio
from asr.decode.nonspeech import non_speech, plausibility
from asr.decode.options import DecodeOptions
from asr.decode.repetition import trim_repetitions
from asr.decode.search import beam_search, greedy_search
from asr.model.network import ASRModel
from asr.results import Hypothesis
from tests.decode.test_ctc import brute_force

N_FEATS, VOCAB, EOS = 80, 12, 1


def make_model(seed: int = 0) -> ASRModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(d_model=32, n_heads=2, enc_layers=2, dec_layers=2, conv_channels=8, dropout=0.0)
    model = ASRModel(cfg, N_FEATS, VOCAB).eval()
    with torch.no_grad():  # an untrained tied-embedding model ends at once; make it rarer
        model.decoder.token_embedding.weight[EOS] *= 0.3
    return model


def encode(model, lens):
    feats = torch.randn(len(lens), max(lens), N_FEATS)
    memory, mem_lens = model.encoder(feats, torch.tensor(lens))
    return memory, mem_lens, model.ctc_head(memory)


# --------------------------------------------------------------------------- beam search


def test_beam_of_one_equals_greedy():
    model = make_model(1)
    memory, mem_lens, _ = encode(model, [120, 60, 33])
    greedy = greedy_search(model, memory, mem_lens, DecodeOptions(max_len_ratio=2.0))
    beam = beam_search(model, memory, mem_lens, None, DecodeOptions(beam_size=1, length_penalty=0.0, max_len_ratio=2.0))
    assert [h[0].tokens for h in beam] == greedy
    assert max(len(s) for s in greedy) > 10


@pytest.mark.parametrize("ctc_weight", [0.0, 0.3])
@pytest.mark.parametrize("per_utterance_from", [1000, 1])  # cross-attention k/v as a batch, or per utterance
def test_cached_beam_equals_uncached(ctc_weight, per_utterance_from, monkeypatch):
    monkeypatch.setattr("asr.model.network.PER_UTTERANCE_FRAMES", per_utterance_from)
    model = make_model(2)
    memory, mem_lens, ctc = encode(model, [100, 47])
    kw = dict(beam_size=4, ctc_weight=ctc_weight, max_len_ratio=1.0, n_best=3)
    cached = beam_search(model, memory, mem_lens, ctc, DecodeOptions(use_cache=True, **kw))
    uncached = beam_search(model, memory, mem_lens, ctc, DecodeOptions(use_cache=False, **kw))
    assert [[h.tokens for h in n] for n in cached] == [[h.tokens for h in n] for n in uncached]
    for a, b in zip(cached, uncached):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)


@pytest.mark.parametrize("ctc_weight", [0.0, 0.5])
def test_batched_beam_equals_one_at_a_time(ctc_weight):
    model = make_model(3)
    feats = torch.randn(3, 90, N_FEATS)
    lens = torch.tensor([90, 50, 71])
    memory, mem_lens = model.encoder(feats, lens)
    kw = DecodeOptions(beam_size=3, ctc_weight=ctc_weight, n_best=2)
    batched = beam_search(model, memory, mem_lens, model.ctc_head(memory), kw)
    for i in range(3):
        m, ml = model.encoder(feats[i : i + 1, : int(lens[i])], lens[i : i + 1])
        alone = beam_search(model, m, ml, model.ctc_head(m), kw)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in batched[i]]


def test_nbest_is_sorted_distinct_and_scored_by_length_penalty():
    model = make_model(4)
    memory, mem_lens, ctc = encode(model, [80])
    for lp in (0.0, 1.0):
        nbest = beam_search(
            model, memory, mem_lens, ctc, DecodeOptions(beam_size=6, ctc_weight=0.3, length_penalty=lp, n_best=5)
        )[0]
        assert len(nbest) == 5
        scores = [h.score for h in nbest]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in nbest}) == 5
        for h in nbest:
            assert h.score == pytest.approx(h.log_prob / (len(h.tokens) + 1) ** lp)


def test_length_limit_zero_gives_empty_and_limits_are_respected():
    model = make_model(6)
    memory, mem_lens, ctc = encode(model, [100, 100])
    out = beam_search(
        model, memory, mem_lens, ctc, DecodeOptions(beam_size=3, ctc_weight=0.0), max_lens=torch.tensor([4, 0])
    )
    assert len(out[0][0].tokens) <= 4 and out[1][0].tokens == []


def test_ctc_weight_one_follows_the_ctc_path():
    """With only CTC scores, a CTC head that is certain of a path is followed exactly, end included."""
    model = make_model(7)
    frames = [0, 5, 5, 0, 6, 0, 0, 7, 0, 0]
    ctc = torch.nn.functional.one_hot(torch.tensor([frames]), VOCAB).float() * 30
    memory = torch.randn(1, len(frames), 32)
    out = beam_search(
        model, memory, torch.tensor([len(frames)]), ctc, DecodeOptions(beam_size=4, ctc_weight=1.0, pre_beam=3.0)
    )
    # the decoder only proposes candidates (top 12 here = every token), CTC decides
    assert out[0][0].tokens == [5, 6, 7]


def test_trim_repetitions_keeps_what_ctc_supports():
    ha = [7, 8]
    assert trim_repetitions([3] + ha * 6, [3] + ha * 2) == [3] + ha * 2
    assert trim_repetitions([3] + ha * 6, [3]) == [3] + ha  # CTC heard no loop at all: keep one
    assert trim_repetitions([3, 4, 5, 5], [3, 4, 5]) == [3, 4, 5, 5]  # two repeats are normal ("too", "all")
    assert trim_repetitions([9] * 8, [9] * 8) == [9] * 8  # CTC hears it too: kept


# --------------------------------------------------------------------------- no speech


def test_ctc_logprob_is_the_ctc_likelihood_per_token_and_rejects_what_the_audio_does_not_support():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 4) * 2
    hyps = [[Hypothesis([2, 3], -1.0, -1.0)], [Hypothesis([], -1.0, -1.0)], [Hypothesis([2, 3, 2, 3, 2], -1.0, -1.0)]]
    _note_ctc_logprob(hyps, logits, torch.tensor([5, 5, 4]), blank=0)
    lp = logits[0].double().log_softmax(-1)
    assert hyps[0][0].ctc_logprob == pytest.approx(brute_force(lp, [2, 3], exact=True) / 3, abs=1e-5)
    assert hyps[1][0].ctc_logprob is None  # nothing to score
    assert hyps[2][0].ctc_logprob is None  # 5 tokens cannot fit in 4 frames
    o = DecodeOptions(min_ctc_logprob=-1.0)
    supported = Hypothesis([2], -0.5, -1.0, ctc_logprob=-0.2)
    assert non_speech(supported, o) is None and non_speech(hyps[0][0], DecodeOptions()) is None
    assert "CTC log prob per token -1.50 < -1" in non_speech(Hypothesis([2], -0.5, -1.0, ctc_logprob=-1.5), o)


def test_whisper_rule_needs_both_no_speech_and_an_unlikely_text():
    o = DecodeOptions(no_speech_threshold=0.3, logprob_threshold=-0.7)
    assert non_speech(Hypothesis([5, 6, 7], 0, -4.0, no_speech_prob=0.4), o).startswith("P(no speech) 0.40 > 0.3")
    assert non_speech(Hypothesis([5, 6, 7], 0, -2.0, no_speech_prob=0.4), o) is None  # likely text: speech
    assert non_speech(Hypothesis([5, 6, 7], 0, -4.0, no_speech_prob=0.2), o) is None
    assert non_speech(Hypothesis([5, 6, 7], 0, -4.0), o) is None  # a model without a no-speech token
    # a CTC head that supports the text overrules it (a short real word the decoder doubts is kept) ...
    heard = dataclasses.replace(o, ctc_speech_logprob=-0.5)
    assert non_speech(Hypothesis([5, 6, 7], 0, -4.0, no_speech_prob=0.4, ctc_logprob=-0.3), heard) is None
    # ... and one that hardly does, or is absent, does not
    assert non_speech(Hypothesis([5, 6, 7], 0, -4.0, no_speech_prob=0.4, ctc_logprob=-0.9), heard) is not None
    assert non_speech(Hypothesis([5, 6, 7], 0, -4.0, no_speech_prob=0.4), heard) is not None
    with pytest.raises(ValueError, match="ctc_speech_logprob"):
        DecodeOptions(ctc_speech_logprob=0.5).checked()


def test_letters_spell_the_normalized_text_and_targets_follow_the_head():
    from asr.text.tokenizers import LETTERS

    ids = LETTERS.encode(" Ask not, 42 times!")
    assert LETTERS.decode(ids) == "ask not forty two times" and LETTERS.blank not in ids
    assert LETTERS.encode("¿—!") == [] and LETTERS.size == 29


def test_reversed_audio_plays_each_row_backwards_within_its_length():
    wav = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 0.0, 0.0]])
    assert reversed_audio(wav, torch.tensor([4, 2])).tolist() == [[4.0, 3.0, 2.0, 1.0], [6.0, 5.0, 0.0, 0.0]]


def test_plausibility_is_the_ctc_log_prob_where_there_is_one_else_the_mean_log_prob():
    assert plausibility(Hypothesis([5, 6, 7], 0, -2.0)) == pytest.approx(-0.5)  # end token included
    assert plausibility(Hypothesis([5, 6, 7], 0, -2.0, ctc_logprob=-1.25)) == -1.25


@pytest.mark.parametrize("bad", [{"no_speech_threshold": 1.5}, {"min_ctc_logprob": 2.0}, {"logprob_threshold": 0.5},
                                 {"reversed_margin": -0.1}, {"reversed_check_min_seconds": -1.0}])
def test_no_speech_options_are_checked(bad):
    with pytest.raises(ValueError):
        DecodeOptions().replaced(**bad)


def test_ctc_only_search_is_the_best_path_without_a_decoder_pass(monkeypatch):
    """ctc_weight 1 with beam 1 (live partials): the CTC head's best path, scored by its log prob; wider,
    its prefix beam search; the decoder never runs; a model without a CTC head over its tokens refuses it."""
    from asr.decode.ctc import ctc_greedy
    from asr.decode.task import Search
    from tests.conftest import untrained_recognizer

    rec = untrained_recognizer()
    options = DecodeOptions.from_config(rec.cfg, beam_size=1, ctc_weight=1.0, ctc_length_guard=False)
    assert options.ctc_only and not DecodeOptions.from_config(rec.cfg, beam_size=2, ctc_weight=0.9).ctc_only
    wav, lens = 0.3 * torch.randn(3, 16000), torch.tensor([16000, 12000, 6000])
    with torch.no_grad():
        enc = rec.encode(wav, lens)
    monkeypatch.setattr(rec.model.decoder, "forward", lambda *a, **k: pytest.fail("the decoder ran"))
    hyps = Search(rec, options)(enc)
    paths = ctc_greedy(enc.ctc_logits, enc.lengths, rec.ctc_blank)
    assert [nbest[0].tokens for nbest in hyps] == paths and any(paths)
    for (h,), row, n in zip(hyps, enc.ctc_logits, enc.lengths.tolist()):
        assert h.log_prob == pytest.approx(float(row[:n].log_softmax(-1).max(-1).values.sum()), rel=1e-4)
        assert h.text == rec.tokenizer.decode(h.tokens)
    wide = Search(rec, options.replaced(beam_size=4, n_best=2))(enc)  # the prefix beam: no decoder either
    for nbest, row, n in zip(wide, enc.ctc_logits, enc.lengths.tolist()):
        assert len(nbest) == 2 and nbest[0].log_prob >= nbest[1].log_prob
        best_path_lp = float(row[:n].log_softmax(-1).max(-1).values.sum())
        assert nbest[0].log_prob >= best_path_lp - 1e-3  # every alignment of it, not one path
    with pytest.raises(ValueError, match="CTC head alone"):
        Search(untrained_recognizer("model.ctc=false"), options)
