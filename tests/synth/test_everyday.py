"""Everyday sentences (display and spoken forms), the mixed corpus text stage, and display text
kept through tokenizer training, data loading and WER."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import yaml

from asr.config import Config, load_config, save_config
from asr.data.dataset import SpeechDataset
from asr.synth import corpus, everyday
from asr.synth.corpus import SPLITS, SynthConfig, choose_sentences, mix_counts
from asr.synth.engines import available_engines
from asr.text.metrics import error_counts, word_counts
from asr.text.normalize import normalize
from asr.text.tokenizers import train_tokenizer
from asr.train.inputs import prepare_tokenizer

ROWS = everyday.generate(3000, seed=0)
SPOKEN = re.compile(r"[a-z' ,.?!]+")


# --------------------------------------------------------------------------- the generator


def test_generate_is_deterministic_per_seed_and_distinct():
    assert everyday.generate(200, seed=0) == ROWS[:200]
    assert everyday.generate(200, seed=1) != ROWS[:200]
    assert len({normalize(r["spoken"]) for r in ROWS}) == len(ROWS)  # no two sound the same


def test_generate_is_varied():
    per_template = Counter(r["template"] for r in ROWS)
    assert len(per_template) >= 0.9 * len(everyday.TEMPLATES)
    assert max(per_template.values()) < 0.04 * len(ROWS)  # no structure dominates
    assert len({r["text"].split()[0] for r in ROWS}) > 60  # many openings
    assert sum(bool(re.search(r"\d", r["text"])) for r in ROWS) > 0.6 * len(ROWS)
    assert sum(r["text"].endswith("?") for r in ROWS) > 0.15 * len(ROWS)
    for slot in ("$", "%", ":", "-"):
        assert any(slot in r["text"] for r in ROWS), slot


def test_spoken_form_is_words_and_agrees_with_display_under_normalize():
    for r in ROWS:
        assert SPOKEN.fullmatch(r["spoken"]), r
        assert normalize(r["text"]) == normalize(r["spoken"]), r
    assert error_counts([r["text"] for r in ROWS], [r["spoken"] for r in ROWS])[0] == 0


def test_templates_fill_display_and_spoken():
    rng = random.Random(3)
    text, spoken = everyday.fill("Meet me at {time} on {date}.", rng)
    assert text.startswith("Meet me at ") and text.endswith(".") and not text.endswith("..")
    assert spoken.startswith("meet me at ") and not re.search(r"\d", spoken)
    assert everyday.spoken_clean("Call me: at 5 p.m..") == "call me, at p m."


# --------------------------------------------------------------------------- corpus text stage


def mixed_config(**kw) -> SynthConfig:
    return SynthConfig(source="mixed", mix={"commands": 0.5, "everyday": 0.5}, utts_train=300, utts_dev=50,
                       utts_test=50, utts_unseen=20, seed=2, **kw)


def test_mixed_source_rows_carry_text_and_spoken(tmp_path):
    corpus.stage_text(mixed_config(), tmp_path)
    rows = {s: corpus.read_jsonl(tmp_path / "text" / f"{s}.jsonl") for s in SPLITS}
    everything = [r for s in ("train", "dev", "test") for r in rows[s]]
    assert Counter(r["source"] for r in everything) == {"commands": 200, "everyday": 200}
    assert len({normalize(r["text"]) for r in everything}) == 400  # disjoint splits, nothing said twice
    for r in everything:
        assert set(r) == {"id", "text", "spoken", "source"}
        assert SPOKEN.fullmatch(r["spoken"])
        if r["source"] == "commands":
            assert r["spoken"] == r["text"]
    assert any(re.search(r"\d", r["text"]) for r in everything)  # display text kept


def test_mix_shares_and_validation():
    assert mix_counts({"prose": 0.6, "everyday": 0.4}, 19500) == {"everyday": 7800, "prose": 11700}
    assert sum(mix_counts({"a": 1, "b": 1, "c": 1}, 100).values()) == 100
    for bad in [{"source": "mixed"}, {"source": "mixed", "mix": {"novels": 1.0}}, {"mix": {"prose": 1.0}},
                {"source": "mixed", "mix": {"prose": -1.0, "everyday": 1.0}}, {"source": "poems"}]:
        with pytest.raises(ValueError):
            corpus.validate(SynthConfig(**bad))
    assert len(choose_sentences(SynthConfig(source="everyday", utts_train=100, utts_unseen=10))["train"]) == 100


def test_corpus_built_before_mix_existed_is_not_refused(tmp_path):
    cfg = SynthConfig(utts_train=10)
    save_config(cfg, tmp_path / "synth.yaml")
    old = yaml.safe_load((tmp_path / "synth.yaml").read_text())
    del old["mix"]
    (tmp_path / "synth.yaml").write_text(yaml.safe_dump(old))
    corpus._check_config(cfg, tmp_path)
    with pytest.raises(ValueError, match="mix"):
        corpus._check_config(mixed_config(), tmp_path)


def test_engines_read_the_spoken_form(tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(corpus, "synthesize", lambda text, voice, pad, peak: said.append(text) or np.zeros(160))
    job = {"id": "u1", "engine": "espeak", "voice": "en", "rate": 1.0, "pitch": 1.0, "pad": 0.1, "peak": 0.5,
           "audio": str(tmp_path / "u1.wav"), "text": "It costs $12.50.", "spoken": "it costs twelve dollars."}
    assert corpus.synth_utterance(job)[1] is None and said == ["it costs twelve dollars."]
    del job["spoken"]  # a plan written before spoken forms existed
    assert corpus.synth_utterance(job)[1] is None and said[-1] == "It costs $12.50."


@pytest.mark.skipif("espeak" not in available_engines(), reason="espeak not installed")
def test_espeak_reads_everyday_spoken_forms(tmp_path):
    for i, r in enumerate(ROWS[:3]):
        job = {"id": f"u{i}", "engine": "espeak", "voice": "en", "rate": 1.0, "pitch": 1.0, "pad": 0.1,
               "peak": 0.5, "audio": str(tmp_path / f"u{i}.wav"), **r}
        _, err, _, seconds = corpus.synth_utterance(job)
        assert err is None and seconds > 0.5 and sf.info(job["audio"]).samplerate == 16000


# --------------------------------------------------------------------------- display text through training


SENTENCE = "Meet me at 5:30 on May 3rd."


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_display_text_comes_back_from_data_loading(tmp_path, kind):
    texts = [r["text"] for r in ROWS[:1500]] + [SENTENCE]
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32) + 0.1, 16000)
    (tmp_path / "train.jsonl").write_text(json.dumps({"id": "a", "audio": str(tmp_path / "a.wav"), "text": SENTENCE}))
    cfg = load_config(Config, None, [f"tokenizer.kind={kind}", "tokenizer.vocab_size=300", "tokenizer.text=display"])
    tok = prepare_tokenizer(cfg, [{"text": t} for t in texts], tmp_path)
    assert tok.text == "display" and tok.decode(tok.encode(SENTENCE)) == SENTENCE
    _, _, tokens, text, _ = SpeechDataset([{"id": "a", "audio": str(tmp_path / "a.wav"), "text": SENTENCE}], tok)[0]
    assert text == SENTENCE and tok.decode(tokens.tolist()) == SENTENCE
    # the experiment's tokenizer.json is kept, and a config asking for the other form is refused
    assert prepare_tokenizer(cfg, [], tmp_path).to_dict() == tok.to_dict()
    with pytest.raises(ValueError, match="tokenizer.text"):
        prepare_tokenizer(load_config(Config, None, [f"tokenizer.kind={kind}"]), [], tmp_path)


def test_normalized_tokenizer_is_unchanged_by_default():
    tok = train_tokenizer("char", [SENTENCE])
    assert tok.decode(tok.encode(SENTENCE)) == "meet me at five thirty on may third"


def test_wer_ignores_case_and_punctuation():
    assert word_counts(SENTENCE, "meet me at five thirty, on may third").edits == 0
    assert word_counts("It costs $12.50.", "IT COSTS twelve dollars and fifty cents!").edits == 0
    assert error_counts([SENTENCE, "Yes, please."], ["Meet me at 5:30 on May 3rd", "yes please"]) == (0, 10)
    assert word_counts(SENTENCE, "Meet me at 5:40 on May 3rd.").substitutions == 1
