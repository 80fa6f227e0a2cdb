"""Whisper on any input length, taught by itself: the any-length encoder equals the padded one on a full
window, `teach` caches the teacher's transcripts and top-k distributions, the KL to them falls while a
student trains (asr.train.distill), and L2-SP pulls toward the start."""

import dataclasses
from pathlib import Path

import pytest
import torch

from tests.conftest import logged

pytest.importorskip("tokenizers", reason="WhisperTokenizer needs the tokenizers package")
from asr.config import Config, load_config
from asr.data.dataset import SpeechDataset, collate
from asr.data.manifest import read_manifest
from asr.model.recognizer import Recognizer
from asr.train.distill import anchors, l2sp_penalty, load_cache, load_memory, teach
from asr.train.trainer import fine_tuning_config, train
from tests.train.test_finetune import whisper_file  # noqa: F401  (a tiny random Whisper-shaped model file)

ROOT = Path(__file__).resolve().parents[2]


def test_any_length_encoder_equals_the_padded_one_on_a_full_window(whisper_file):  # noqa: F811
    rec = Recognizer.load(whisper_file).eval()
    window = rec.cfg.features.pad_to_seconds
    assert window == 2.0  # the tiny model's window (100 encoder frames)
    n = int(window * 16000)
    wav = torch.randn(1, n) * 0.1
    padded = rec.encode(wav, torch.tensor([n]))
    rec.cfg.features.pad_to_seconds = 0.0  # the any-length path: only the frames the audio has
    free = rec.encode(wav, torch.tensor([n]))
    assert free.memory.shape == padded.memory.shape and int(free.lengths[0]) == 100
    torch.testing.assert_close(free.memory, padded.memory, atol=1e-5, rtol=1e-5)
    short = rec.encode(wav[:, : n // 4], torch.tensor([n // 4]))  # a quarter of the window: a quarter of the frames
    assert short.memory.shape[1] == 25


def test_any_length_config_unpads_and_decodes_without_timestamps(whisper_file):  # noqa: F811
    init = Recognizer.load(whisper_file).cfg
    cfg = load_config(Config, ROOT / "configs/distill_whisper.yaml", [f"init={whisper_file}", "decode.max_segment=1.5"])
    tuned = fine_tuning_config(cfg, init)
    assert tuned.features.pad_to_seconds == 0.0 and init.features.pad_to_seconds == 2.0
    assert tuned.decode.timestamps is False and tuned.decode.max_segment == 1.5  # cut like the training clips
    assert tuned.decode.no_speech_threshold == init.decode.no_speech_threshold  # the model's own guards kept
    plain = fine_tuning_config(load_config(Config, ROOT / "configs/finetune_whisper.yaml"), init)
    assert plain.features.pad_to_seconds == 2.0 and plain.decode.max_segment == 2.0  # the window stays the default


@pytest.fixture(scope="module")
def taught(whisper_file, tiny_corpus, tmp_path_factory):  # noqa: F811
    teacher = Recognizer.load(whisper_file)
    entries = [{k: v for k, v in e.items() if k != "text"} if i % 2 else e  # half of them untranscribed
               for i, e in enumerate(read_manifest(tiny_corpus / "train.jsonl"))]
    entries.append({"id": "broken", "audio": str(tmp_path_factory.mktemp("bad") / "missing.wav"), "duration": 1.0})
    out = tmp_path_factory.mktemp("teacher")
    return teach(teacher, entries, out, top_k=4, batch_size=4, memory=True), teacher, entries


def test_teach_caches_transcripts_and_top_k_along_them(taught):
    (manifest, cache_file), teacher, entries = taught
    rows = read_manifest(manifest)
    given = {e["id"]: e for e in entries}
    assert rows and "broken" not in {r["id"] for r in rows}  # the broken file is left out, the others go on
    assert all(("reference" in r) == ("text" in given[r["id"]]) for r in rows)
    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search

    prompt = Search(teacher, DecodeOptions.from_config(teacher.cfg)).plain.prompt
    cache = load_cache(cache_file, prompt)
    for r in rows:
        ids, logp = cache[r["id"]]
        n = len(teacher.tokenizer.encode_transcript(r["text"])) if r["text"] else 0
        assert ids.shape == logp.shape == (n + 1, 4)  # the transcript's tokens, then the end
        assert (logp[:, :-1] >= logp[:, 1:]).all() and (logp <= 0).all()  # the top-k, best first
    with pytest.raises(ValueError, match="prompt"):
        load_cache(cache_file, (1, 2, 3))
    memories = load_memory(cache_file.parent / "memory.pt")
    assert set(memories) == {r["id"] for r in rows}
    for r in rows[:3]:  # the teacher's encoder over the audio's own frames (20 ms each), not the whole window
        frames = teacher.model.encoder.frontend.out_lengths(torch.tensor(int(r["duration"] * 16000) // 160))
        frames = frames.clamp(max=100)  # (a clip longer than the window: the window's frames)
        assert abs(memories[r["id"]].shape[0] - int(frames)) <= 1 and memories[r["id"]].shape[1] == 16


def test_a_manifest_with_other_texts_gets_no_teacher(taught):
    (manifest, cache_file), teacher, _ = taught
    rows = read_manifest(manifest)
    prompt = tuple(torch.load(cache_file, weights_only=True)["prompt"])
    changed = [{**r, "text": "something else"} if i == 0 else r for i, r in enumerate(rows)]
    cache = load_cache(cache_file, prompt, changed)
    assert rows[0]["id"] not in cache and all(r["id"] in cache for r in rows[1:])
    assert set(load_cache(cache_file, prompt, rows)) == {r["id"] for r in rows}


def test_dataset_gives_teacher_targets_only_where_they_fit(taught):
    (manifest, cache_file), teacher, _ = taught
    rows = read_manifest(manifest)[:4]
    cache = {k: v for k, v in torch.load(cache_file, weights_only=True)["entries"].items()}
    cache = {k: (i.long(), lp) for k, (i, lp) in cache.items()}
    rows[1] = {**rows[1], "text": rows[1]["text"] + " and more words"}  # a text the teacher did not read
    ds = SpeechDataset(rows, teacher.tokenizer, teacher=cache)
    batch = collate([ds[i] for i in range(4)])
    assert batch.teacher.tolist() == [True, False, True, True]
    assert batch.teacher_ids.shape[:2] == (4, batch.tokens.shape[1] + 1)


@pytest.mark.slow
def test_distillation_loss_falls_on_a_tiny_student(whisper_file, taught, tmp_path):  # noqa: F811
    (manifest, cache_file), _, _ = taught
    cfg = load_config(Config, ROOT / "configs/distill_whisper.yaml", [
        f"init={whisper_file}", f"data.train={manifest}", f"data.dev={manifest}", f"distill.teacher={cache_file}",
        f"distill.memory={cache_file.parent / 'memory.pt'}",
        "max_steps=30", "optim.lr=3e-3", "optim.warmup_steps=5", "data.max_frames_per_batch=4000",
        "augment.nonspeech_prob=0.0", "augment.gain_prob=0.0", "augment.band_prob=0.0", "augment.room_prob=0.0",
        "augment.noise_prob=0.0", "optim.l2sp=0.01", "freeze=[encoder.frontend]",
        "checkpoint_every_steps=1000", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=1", "trainer.check_val_every_n_epoch=1000"])
    model = train(cfg, tmp_path / "exp")
    kl = logged(tmp_path / "exp", "train/kl_loss")
    sp = logged(tmp_path / "exp", "train/l2sp")
    mem = logged(tmp_path / "exp", "train/memory_loss")
    assert len(kl) >= 20 and sum(kl[-5:]) / 5 < 0.8 * sum(kl[:5]) / 5  # the student learns the teacher
    assert sum(mem[-5:]) / 5 < 0.8 * sum(mem[:5]) / 5  # ... and its encoder output without the padding
    assert sp[0] < 1e-6 < sp[-1]  # it starts at the init weights and moves away from them
    student = Recognizer.load(model)
    assert student.cfg.features.pad_to_seconds == 0.0 and student.cfg.decode.timestamps is False


def test_l2sp_is_half_the_squared_distance_and_pulls_back():
    net = torch.nn.Linear(3, 2)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    pairs = anchors(net, start)
    assert float(l2sp_penalty(pairs).detach()) == 0.0
    with torch.no_grad():
        net.weight += 0.5
    penalty = l2sp_penalty(pairs)
    assert float(penalty.detach()) == pytest.approx(0.5 * 6 * 0.25)
    penalty.backward()
    assert torch.allclose(net.weight.grad, torch.full_like(net.weight, 0.5))  # the gradient points back to the start


def test_teach_resumes_and_adds_without_teaching_twice(whisper_file, tiny_corpus, tmp_path, monkeypatch):  # noqa: F811
    import asr.train.distill as D

    teacher = Recognizer.load(whisper_file)
    entries = read_manifest(tiny_corpus / "train.jsonl")[:6]
    teach(teacher, entries[:4], tmp_path, top_k=4, batch_size=2)
    prompt = D.Search(teacher, D.DecodeOptions.from_config(teacher.cfg)).plain.prompt
    first = load_cache(tmp_path / "teacher.pt", prompt)
    taught_now = []
    real = D.learn
    monkeypatch.setattr(D, "learn", lambda teacher, search, rows, *a: taught_now.extend(r["id"] for r in rows)
                        or real(teacher, search, rows, *a))
    manifest, cache_file = teach(teacher, entries, tmp_path, top_k=4, batch_size=2)
    # only what the first run did not hold: the two new entries (and any the random teacher could not teach)
    assert taught_now == [e["id"] for e in entries if e["id"] not in first] and entries[4]["id"] in taught_now
    second = load_cache(cache_file, prompt)
    assert set(first) < set(second) and all(torch.equal(first[k][0], second[k][0]) for k in first)
    assert len(read_manifest(manifest)) == len(second)
    with pytest.raises(ValueError, match="another teacher"):
        teach(teacher, entries, tmp_path, top_k=8)


@pytest.mark.slow
def test_a_spelling_ctc_head_learns_on_a_frozen_whisper_and_joins_the_search(whisper_file, tiny_corpus, tmp_path):  # noqa: F811
    """configs/distill_whisper_ctc.yaml: a CTC head over letters (one block of its own) learns on a
    frozen Whisper-shaped model; the rest stays bit-exact; the search notes the head's support per
    letter, and joint scoring re-ranks the beam toward the text the head spells."""
    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search
    from asr.results import Hypothesis
    from asr.text.tokenizers import LETTERS

    cfg = load_config(Config, ROOT / "configs/distill_whisper_ctc.yaml", [
        f"init={whisper_file}", f"data.train={tiny_corpus / 'train.jsonl'}", f"data.dev={tiny_corpus / 'dev.jsonl'}",
        "max_minutes=0", "max_steps=40", "optim.lr=3e-3", "optim.warmup_steps=5", "data.max_frames_per_batch=4000",
        "augment.nonspeech_prob=0.0", "augment.gain_prob=0.0", "augment.band_prob=0.0", "augment.room_prob=0.0",
        "augment.noise_prob=0.0", "specaugment.freq_masks=0", "specaugment.time_masks=0",
        "checkpoint_every_steps=1000", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=1", "trainer.check_val_every_n_epoch=1000"])
    rec = Recognizer.load(train(cfg, tmp_path / "exp")).eval()
    ctc = logged(tmp_path / "exp", "train/ctc_loss")
    assert len(ctc) >= 30 and sum(ctc[-5:]) / 5 < 0.7 * sum(ctc[:5]) / 5  # it learns to spell
    assert rec.cfg.model.ctc_vocab == "letters" and rec.model.ctc_head.out.out_features == LETTERS.size
    init = Recognizer.load(whisper_file).model.state_dict()
    assert all(torch.equal(init[k], v) for k, v in rec.model.state_dict().items() if not k.startswith("ctc_head."))

    wav = torch.randn(1, 16000) * 0.1
    enc = rec.encode(wav, torch.tensor([16000]))
    assert enc.ctc_logits.shape[-1] == LETTERS.size
    search = Search(rec, DecodeOptions.from_config(rec.cfg, beam_size=3, ctc_weight=0.5, n_best=3))
    assert rec.cfg.model.spells and len(search(enc)[0]) >= 1  # the joint path runs end to end
    # joint scores: the decoder prefers "go" by 2 nats, the head's frames spell "stop" alone
    frames = torch.full((1, 40, LETTERS.size), -10.0)
    frames[0, :, LETTERS.blank] = 0.0
    tok = rec.tokenizer.encode_transcript
    quiet = [Hypothesis(tok("go"), -1.0, -1.0), Hypothesis([], -2.0, -2.0)]  # frames of blanks: nothing said
    assert search._rescore([quiet], frames, torch.tensor([40]), search.options)[0][0].tokens == []
    for i, c in enumerate(LETTERS.encode("stop")):
        frames[0, 5 + 6 * i : 8 + 6 * i, c], frames[0, 5 + 6 * i : 8 + 6 * i, LETTERS.blank] = 10.0, -10.0
    nbest = [Hypothesis(tok("go"), -1.0, -1.0), Hypothesis(tok("stop"), -3.0, -3.0)]
    (best, *_), = search._rescore([nbest], frames, torch.tensor([40]), search.options)
    assert best.tokens == tok("stop")
    alone = Search(rec, DecodeOptions.from_config(rec.cfg, beam_size=3, ctc_weight=0.0))._rescore(
        [nbest], frames, torch.tensor([40]), dataclasses.replace(search.options, ctc_weight=0.0))
    assert alone[0][0].tokens == tok("go")  # without the head's weight the decoder's choice stands
    # word times from the letters: "go, stop" where the frames spell "go stop"; the comma joins "go"
    from asr.decode.timing import words_from_letters

    frames = torch.full((40, LETTERS.size), -10.0)
    frames[:, LETTERS.blank] = 0.0
    for f, c in zip([2, 4, 12, 20, 22, 24, 26], LETTERS.encode("go stop")):
        frames[f, c], frames[f, LETTERS.blank] = 10.0, -10.0
    words = words_from_letters(rec, tok("go, stop"), frames, start=1.0)
    fs = rec.frame_seconds
    assert [w.text for w in words] == ["go,", "stop"]
    assert words[0].start == pytest.approx(1.0 + 2 * fs) and words[0].end == pytest.approx(1.0 + 5 * fs)
    assert words[1].start == pytest.approx(1.0 + 20 * fs) and words[1].end == pytest.approx(1.0 + 27 * fs)
