"""Folder walks: audio files found by extension and, without one, by content; everything passed
over is named with the reason, in one summary line and in the JSON formats."""

import json

import numpy as np
import soundfile as sf

from asr.audio.files import find_audio, looks_like_audio, scan_audio
from asr.transcribe.writers import ResultWriter


def awkward_folder(root):
    """a.wav, a FLAC file without an extension, a text file with none, notes.txt, and an empty x.wav/."""
    (root / "sub").mkdir(parents=True)
    tone = np.sin(np.arange(8000) / 10).astype(np.float32)
    sf.write(root / "a.wav", tone, 16000)
    sf.write(root / "sub" / "recording", tone, 16000, format="FLAC")
    (root / "README").write_text("not audio\n")
    (root / "notes.txt").write_text("not audio either\n")
    (root / "x.wav").mkdir()
    return root


def test_a_walk_finds_audio_by_content_and_says_what_it_skipped(tmp_path):
    root = awkward_folder(tmp_path / "in")
    found = scan_audio([root])
    assert found.files == [str(root / "a.wav"), str(root / "sub" / "recording")]
    reasons = dict(found.skipped)
    assert set(reasons) == {str(root / "README"), str(root / "notes.txt"), str(root / "x.wav") + "/"}
    assert "no extension" in reasons[str(root / "README")]
    assert ".txt" in reasons[str(root / "notes.txt")]
    assert "named like an audio file" in reasons[str(root / "x.wav") + "/"]
    line = found.summary()
    assert "\n" not in line and line.startswith("skipped 3 entries") and "notes.txt" in line
    assert find_audio([root]) == found.files


def test_named_inputs_stay_in_the_list_and_are_never_skipped(tmp_path):
    root = awkward_folder(tmp_path / "in")
    found = scan_audio([root / "README", root / "x.wav", tmp_path / "missing.wav"])
    assert found.files == [str(root / "README"), str(root / "x.wav"), str(tmp_path / "missing.wav")]
    assert found.skipped == []  # reading each says why (AudioError), as before


def test_content_sniffing_knows_the_containers(tmp_path):
    tone = np.zeros(1600, np.float32)
    for fmt, name in (("WAV", "w"), ("FLAC", "f"), ("OGG", "o")):
        sf.write(tmp_path / name, tone, 16000, format=fmt)
        assert looks_like_audio(tmp_path / name)
    (tmp_path / "t").write_bytes(b"hello world, not audio")
    assert not looks_like_audio(tmp_path / "t") and not looks_like_audio(tmp_path / "missing")


def test_the_json_formats_list_what_was_skipped(tmp_path):
    skipped = [("in/notes.txt", "not an audio file (.txt files are not read)")]
    with ResultWriter("jsonl", tmp_path / "out.jsonl", skipped=skipped):
        pass
    assert json.loads((tmp_path / "out.jsonl").read_text()) == {"path": "in/notes.txt", "skipped": skipped[0][1]}
    with ResultWriter("json", tmp_path / "out", skipped=skipped):
        pass
    assert json.loads((tmp_path / "out" / "skipped.json").read_text())[0]["path"] == "in/notes.txt"
