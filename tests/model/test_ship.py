"""Shipping a model: float16 model files, the card written from an experiment folder, and loading
it by name. (The end-to-end test in test_e2e.py ships a model it trained.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.cli import main
from asr.config import Config, load_config, save_config
from asr.model import catalogue as models
from asr.model.recognizer import Recognizer, run_history
from asr.model.ship import MAX_MB, VOICE_LICENCES, ship
from asr.storage import write_jsonl
from asr.text.metrics import error_counts
from asr.text.normalize import normalize
from asr.text.tokenizers import CharTokenizer
from tests.conftest import logged

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def exp(tmp_path) -> Path:
    """An experiment folder as training and evaluation leave it, with an untrained model."""
    exp = tmp_path / "exp"
    exp.mkdir()
    manifest = tmp_path / "train.jsonl"
    write_jsonl(manifest, [{"id": f"u{i}", "audio": "x.wav", "duration": 1800.0, "text": "a b",
                            "speaker": ["espeak:en-us+m3", "espeak:en-gb", "kokoro:af_bella*0.6+am_adam*0.4"][i % 3]}
                           for i in range(6)])
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", [f"data.train={manifest}"])
    save_config(cfg, exp / "config.yaml")
    torch.manual_seed(0)
    Recognizer(cfg, CharTokenizer(list(" abcdefghijklmnopqrstuvwxyz'"))).eval().save(exp / "model.pt")
    write_jsonl(
        exp / "runs.jsonl",
        [
            {
                "started": "2026-12-01 10:00:00 UTC",
                "from_step": 0,
                "to_step": 200,
                "seconds": 3600.0,
                "hardware": "CPU (x), 2 threads",
            },
            {
                "started": "2026-12-01 12:00:00 UTC",
                "from_step": 200,
                "to_step": 300,
                "seconds": 1800.0,
                "hardware": "1 x GPU",
            },
        ],
    )
    (exp / "eval_model" / "test").mkdir(parents=True)
    (exp / "eval_model" / "test" / "summary.json").write_text(json.dumps(
        {"manifest": "test.jsonl", "wer": 12.5, "cer": 4.25, "utterances": 10, "reference_words": 80, "failed": 0,
         "decode": {"beam_size": 5, "ctc_weight": 0.3}}))
    return exp


def test_float16_file_is_half_the_size_and_loads_as_float32(exp, tmp_path):
    rec = Recognizer.load(exp / "model.pt")
    rec.save(tmp_path / "half.pt", float16=True)
    full, half = (exp / "model.pt").stat().st_size, (tmp_path / "half.pt").stat().st_size
    assert 0.4 < half / full < 0.6
    blob = torch.load(tmp_path / "half.pt", weights_only=True)
    assert {v.dtype for v in blob["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    again = Recognizer.load(tmp_path / "half.pt")
    for (k, a), b in zip(rec.state_dict().items(), again.state_dict().values()):
        assert b.dtype == a.dtype, k
        assert torch.equal(b, a.half().to(a.dtype)), k  # exactly the float16 rounding, nothing else
    wav = torch.randn(1, 16000) * 0.1
    e1, e2 = rec.encode(wav, torch.tensor([16000])), again.encode(wav, torch.tensor([16000]))
    assert torch.allclose(e1.memory, e2.memory, atol=0.05) and not torch.equal(e1.memory, e2.memory)


def test_ship_writes_the_card_from_the_experiment_and_the_name_loads(exp, tmp_path, monkeypatch, capsys):
    out = tmp_path / "pretrained"
    monkeypatch.setattr(models, "PRETRAINED", out)
    assert main(["ship", str(exp), "tiny-test", "--out", str(out), "--description", "A test model."]) == 0
    assert (out / "tiny-test.pt").is_file() and "float16" in capsys.readouterr().out
    text = (out / "tiny-test.md").read_text()
    meta = models.read_card(out / "tiny-test.md")
    assert meta["name"] == "tiny-test" and meta["wer"] == "test 12.50%"
    n = sum(p.numel() for p in Recognizer.load(exp / "model.pt").model.parameters())
    assert meta["parameters"] == f"{n / 1e6:.1f}M"
    assert len(Recognizer.load(out / "tiny-test.pt").history) == 2  # runs.jsonl, kept in the shipped file
    assert "300 steps behind the weights in 2 run(s), 1.50 h" in text and "1 x GPU" in text
    assert f"| 2 | `{exp}` | 2026-12-01 12:00:00 UTC | 200-300 | 300 |" in text  # no weights_step: the run's end
    assert "6 utterances, 3.00 h" in text  # 6 x 1,800 s
    assert "| espeak | 4 | 2.00 | 2 |" in text and "| kokoro | 2 | 1.00 | 1 |" in text  # en-us+m3 is voice en-us
    assert VOICE_LICENCES["espeak"] in text and VOICE_LICENCES["kokoro"] in text and "flite" not in text
    assert "| test | 10 | 80 | 12.50 | 4.25 | beam 5, CTC weight 0.3 |" in text

    rows = {r["name"]: r for r in models.list_models()}
    assert rows["tiny-test"]["installed"] and rows["tiny-test"]["wer"] == "test 12.50%"
    assert main(["models"]) == 0 and "tiny-test" in capsys.readouterr().out
    rec = models.load("tiny-test")
    assert next(rec.model.parameters()).dtype == torch.float32
    assert models.resolve("tiny-test") == out / "tiny-test.pt"

    (out / "tiny-test.pt").unlink()  # the card without its file: one line saying so
    with pytest.raises(models.ModelNotInstalled, match="tiny-test"):
        models.load("tiny-test")
    with pytest.raises(ValueError, match="tiny-test"):  # and an unknown name lists the shipped ones
        models.named("no-such-model")


def test_run_history_puts_the_init_runs_first_and_tags_the_experiment_and_exported_step(tmp_path, monkeypatch):
    earlier = [{"from_step": 0, "to_step": 50, "exp": "exp/a", "weights_step": 40}]
    write_jsonl(tmp_path / "b" / "runs.jsonl", [{"from_step": 0, "to_step": 20}, {"from_step": 20, "to_step": 30}])
    rows = run_history(earlier, tmp_path / "b", weights_step=25)
    assert rows[0] == earlier[0] and [r["exp"] for r in rows[1:]] == [str(tmp_path / "b")] * 2
    assert [r["weights_step"] for r in rows[1:]] == [25, 25]
    monkeypatch.chdir(tmp_path)  # an experiment under the working directory is written relative to it
    assert [r["exp"] for r in run_history([], tmp_path / "b")] == ["b", "b"]
    assert "weights_step" not in run_history([], tmp_path / "b")[0] and run_history(earlier, None) == earlier


@pytest.mark.slow
def test_training_on_from_a_model_carries_its_runs_into_the_file_and_the_card(tiny_corpus, tmp_path):
    """A model trained on from another (init) holds the runs behind both in its file; the card lists them."""
    from asr.train.trainer import train

    first, second = tmp_path / "first", tmp_path / "second"
    overrides = [
        f"data.train={tiny_corpus / 'train.jsonl'}",
        f"data.dev={tiny_corpus / 'dev.jsonl'}",
        "max_steps=6",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=1",
    ]
    train(load_config(Config, ROOT / "configs/tiny.yaml", overrides), first)
    (history,) = Recognizer.load(first / "model.pt").history
    assert history["exp"] == str(first) and (history["from_step"], history["to_step"]) == (0, 6)
    assert history["seconds"] > 0 and history["hardware"]

    train(
        load_config(Config, ROOT / "configs/tiny.yaml", [*overrides, "max_steps=4", f"init={first / 'model.pt'}"]),
        second,
    )
    rec = Recognizer.load(second / "model.pt")
    assert [(r["exp"], r["to_step"]) for r in rec.history] == [(str(first), 6), (str(second), 4)]
    ship(second, "tiny-on", tmp_path / "pretrained")
    again = Recognizer.load(tmp_path / "pretrained" / "tiny-on.pt")  # the float16 file keeps it
    assert again.history == rec.history
    text = (tmp_path / "pretrained" / "tiny-on.md").read_text()
    # each run's weights are its exported checkpoint's (the best dev step), and the card counts those steps
    assert all(0 < r["weights_step"] <= r["to_step"] for r in rec.history)
    kept = sum(r["weights_step"] for r in rec.history)
    assert f"{kept} steps behind the weights in 2 run(s)" in text
    assert f"| 1 | `{first}` |" in text and f"| 2 | `{second}` |" in text
    # and the second run did start from the first's learned weights: its loss begins below the first's
    (a, b) = (logged(first), logged(second))
    assert a[-1] < a[0] - 0.5 and b[0] < a[0] - 0.1, (a, b)


def test_ship_refuses_a_model_over_the_size_limit_and_leaves_nothing(exp, tmp_path):
    out = tmp_path / "pretrained"
    with pytest.raises(ValueError, match="over the 0.01 MB"):
        ship(exp, "big", out, max_mb=0.01)
    assert not list(out.glob("big.*"))
    with pytest.raises(ValueError, match="plain word"):
        ship(exp, "a/b.pt", out)


def test_a_card_without_front_matter_is_an_error(tmp_path):
    (tmp_path / "x.md").write_text("# x\nno front matter\n")
    with pytest.raises(ValueError, match="front matter"):
        models.shipped(tmp_path)


# --------------------------------------------------------------------------- the models we ship

# Sentences of the kind the people corpus has (not drawn from it), read by espeak-ng's en-us voice
# (an engine the shipped people model trained on; these sentences it never heard).
SENTENCES = ["please call me back when you get home",
             "the train leaves at half past seven tomorrow morning",
             "i think we should buy some bread and milk",
             "where did you put the keys to the car",
             "she said the weather will be cold and windy all week",
             "thank you very much for your help yesterday"]


@pytest.mark.parametrize("m", models.shipped(), ids=lambda m: m.name)
def test_a_shipped_model_is_float16_within_the_limit_and_hears_new_sentences(m):
    path = Path(m.file)
    assert path.is_file() and path.stat().st_size <= MAX_MB * 2**20, f"{path}: missing or over {MAX_MB} MB"
    blob = torch.load(path, weights_only=True)
    assert {v.dtype for v in blob["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    rec = models.load(m.name)  # by name, as `asr transcribe -m NAME` does
    assert m.parameters == f"{sum(p.numel() for p in rec.model.parameters()) / 1e6:.1f}M"  # the card is this file's

    # in a child process: the test leaves no espeak or RNG state behind for the tests after it (the
    # quality-gate test in test_synth.py failed in the full suite when this ran in-process)
    code = ("import json, sys, asr; from asr.synth.engines import Voice, synthesize; "
            "m = asr.load_model(sys.argv[1], beam_size=5); "
            "audio = [synthesize(s, Voice('espeak', 'en-us')) for s in json.loads(sys.argv[2])]; "
            "print(json.dumps([r.text or '' for r in m.transcribe(audio)]))")
    out = subprocess.run([sys.executable, "-c", code, m.name, json.dumps(SENTENCES)], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    hyps = json.loads(out.splitlines()[-1])
    errors, words = error_counts([normalize(s) for s in SENTENCES], [normalize(h) for h in hyps])
    wer = 100 * errors / words
    # people-small is at 22% on its own test set (its card); a broken load (features, float16,
    # tokenizer) is near 100%
    assert wer < 50, f"{m.name}: WER {wer:.1f}% on {SENTENCES} -> {hyps}"
    if getattr(rec.tokenizer, "text", None) == "display":  # it writes sentences: a capital, a stop
        assert sum(h[:1].isupper() and h.rstrip()[-1:] in ".?!" for h in hyps) >= len(hyps) // 2, hyps
