"""`asr transcribe` over awkward inputs: every good file (odd rates, channels, sample formats)
is transcribed, every broken one is reported by name with its reason, the exit status says so;
silence and steady noise give empty transcripts; a long file streams through in segments."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import srt
import torch

import asr
from asr.cli import main
from asr.config import Config, load_config
from asr.model.recognizer import Recognizer
from asr.text.tokenizers import CharTokenizer

ROOT = Path(__file__).resolve().parents[2]
SR = 16000


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """An untrained model: these tests are about file handling, not accuracy. Its weights are seeded:
    drawn from whatever state earlier tests left the generator in, the n-best test once found fewer
    than three distinct alternatives."""
    torch.manual_seed(0)
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", ["decode.beam_size=2"])
    path = tmp_path_factory.mktemp("model") / "model.pt"
    Recognizer(cfg, CharTokenizer(list(" abcdefghijklmnopqrstuvwxyz'"))).eval().save(path)
    return path


def speechlike(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Syllable-rate modulated noise: speech to the energy detector (silero hears none in it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.abs(np.sin(2 * np.pi * 3 * t)) * rng.standard_normal(len(t))
    return np.stack([x * (1 - 0.1 * c) for c in range(channels)], 1) if channels > 1 else x


GOOD = {  # name: (rate, channels, soundfile subtype)
    "plain.wav": (16000, 1, "PCM_16"), "phone.wav": (8000, 1, "PCM_16"), "cd.wav": (44100, 2, "PCM_16"),
    "surround.wav": (48000, 6, "PCM_16"), "u8.wav": (16000, 1, "PCM_U8"), "s24.wav": (22050, 1, "PCM_24"),
    "mulaw.wav": (8000, 1, "ULAW"), "alaw.wav": (8000, 1, "ALAW"), "x.flac": (32000, 2, "PCM_16"),
    "x.ogg": (16000, 1, "VORBIS"),
}


def make_folder(folder: Path) -> set[str]:
    """Good files of every awkward kind, and broken ones; returns the broken names."""
    for name, (rate, ch, subtype) in GOOD.items():
        sf.write(folder / name, speechlike(1.5, rate, ch), rate, subtype=subtype)
    sf.write(folder / "whole.wav", speechlike(2.0, SR), SR)
    data = (folder / "whole.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[: len(data) // 3])
    (folder / "whole.wav").unlink()
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("this is not audio\n" * 20)
    (folder / "gone.flac").symlink_to(folder / "does-not-exist.flac")
    return {"truncated.wav", "empty.wav", "notes.wav", "gone.flac"}


def test_folder_with_broken_files_transcribes_the_good_and_names_the_bad(model_path, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    broken = make_folder(folder)
    out = tmp_path / "out.jsonl"
    assert main(["transcribe", "-m", str(model_path), str(folder), "-f", "jsonl", "-o", str(out)]) == 1
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == set(GOOD) | broken
    for name in GOOD:
        assert rows[name]["error"] is None and isinstance(rows[name]["text"], str), name
        assert rows[name]["duration"] == pytest.approx(1.5, abs=0.01), name
    reasons = {name: rows[name]["error"] for name in broken}
    assert "truncated" in reasons["truncated.wav"]
    assert "empty" in reasons["empty.wav"]
    assert "not a readable audio file" in reasons["notes.wav"]
    assert "not found" in reasons["gone.flac"]
    err = capsys.readouterr().err
    assert all(f"FAILED {folder / name}" in err for name in broken)
    assert "4 of 14 files could not be transcribed" in err


def test_silence_and_noise_give_empty_transcripts(model_path, tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "silence.wav", np.zeros(10 * SR), SR)
    sf.write(tmp_path / "noise.wav", 0.05 * rng.standard_normal(10 * SR), SR)
    results = list(asr.load_model(model_path).transcribe([tmp_path / "silence.wav", tmp_path / "noise.wav"]))
    assert [(r.text, r.error, r.segments) for r in results] == [("", None, []), ("", None, [])]


def test_long_file_is_streamed_in_segments_with_times(model_path, tmp_path):
    """Two minutes of speech-like bursts and pauses: segments never exceed the limit, cover the
    file in order, and the SRT written from them parses."""
    rng = np.random.default_rng(1)
    parts = []
    for _ in range(40):
        parts += [
            speechlike(rng.uniform(1, 3), SR, seed=int(rng.integers(1000))),
            np.zeros(int(rng.uniform(0.3, 0.8) * SR)),
        ]
    wav = np.concatenate(parts)
    sf.write(tmp_path / "long.wav", wav, SR)
    (r,) = asr.load_model(model_path).transcribe(tmp_path / "long.wav", max_segment=8.0, word_timestamps=True,
                                                 vad="energy")
    assert r.error is None and r.duration == pytest.approx(len(wav) / SR, abs=1e-3)
    assert len(r.segments) >= len(wav) / SR / 8
    assert all(s.end - s.start <= 8.0 + 1e-6 for s in r.segments)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(r.segments, r.segments[1:]))
    for s in r.segments:  # word times (where the words could be aligned) fall inside their segment
        for w in s.words or []:
            assert s.start - 1e-6 <= w.start <= w.end <= s.end + 0.05
    assert (
        main(
            [
                "transcribe",
                "-m",
                str(model_path),
                str(tmp_path / "long.wav"),
                "-f",
                "srt",
                "-o",
                str(tmp_path / "subs"),
                "--max-segment",
                "8",
                "--beam-size",
                "1",
                "--vad",
                "energy",
            ]
        )
        == 0
    )
    subs = list(srt.parse((tmp_path / "subs" / "long.srt").read_text()))
    assert all(a.start <= b.start for a, b in zip(subs, subs[1:]))


def test_nbest_alternatives_are_written_sorted(model_path, tmp_path):
    sf.write(tmp_path / "a.wav", speechlike(2.0, SR), SR)
    assert main(["transcribe", "-m", str(model_path), str(tmp_path / "a.wav"), "-f", "json", "-o", str(tmp_path / "o"),
                 "--beam-size", "4", "--n-best", "3", "--vad", "energy"]) == 0
    (seg,) = json.loads((tmp_path / "o" / "a.json").read_text())["segments"]
    scores = [seg["score"]] + [score for _, score in seg["alternatives"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert len({seg["text"], *(text for text, _ in seg["alternatives"])}) == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_reported(model_path, tmp_path):
    sf.write(tmp_path / "locked.wav", speechlike(1.0, SR), SR)
    (tmp_path / "locked.wav").chmod(0)
    (r,) = asr.load_model(model_path).transcribe(tmp_path / "locked.wav")
    assert r.error and "permission" in r.error


def test_a_files_language_is_the_one_most_of_its_speech_was_decoded_in():
    from asr.results import SegmentText
    from asr.transcribe.pipeline import _language

    segs = [SegmentText(0.0, 2.0, "a", language="fr", language_probability=0.9),
            SegmentText(2.0, 4.5, "b", language="en", language_probability=0.5),
            SegmentText(4.5, 6.0, "c", language="fr", language_probability=0.7)]
    assert _language(segs) == ("fr", pytest.approx(0.8))  # 3.5 s of French against 2.5 s of English
    assert _language([SegmentText(0.0, 1.0, "d", language="de")]) == ("de", None)  # forced: no probability
    assert _language([SegmentText(0.0, 1.0, "e")]) == (None, None)  # a model with one language
