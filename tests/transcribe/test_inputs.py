"""What users hand `asr transcribe` and `model.transcribe`: the awkward folder of the audio layer's
tests through the command line (each file transcribed, empty, or named with its reason; exit
status; no traceback), and the Python API's inputs (arrays, tensors, bytes, file objects, lists
mixing them), output formats and help."""

import inspect
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import asr
from asr.audio.read import resample
from asr.cli import main
from tests.audio.test_read_robust import CASES, EITHER, build_zoo, encode, wav_bytes
from tests.transcribe.test_pipeline import model_path  # noqa: F401 - the untrained model fixture

ROOT = Path(__file__).resolve().parents[2]
SR = 16000
SILENT = {"silence.wav"}  # readable, and nothing in it to transcribe


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from asr.synth.engines import list_voices, synthesize

    return synthesize("turn on the kitchen lights please", list_voices("espeak")[0])


def run_cli(args: list[str], stdin: bytes, cwd: Path) -> subprocess.CompletedProcess:
    """`asr` in a process of its own: its real exit status and standard error."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}  # see one_thread
    return subprocess.run([sys.executable, "-m", "asr", *args], input=stdin, capture_output=True, cwd=cwd, env=env,
                          timeout=300, check=False)


def expected_outcomes(zoo: dict[str, Path]) -> dict[str, str | None]:
    """Name -> None (transcribed) | reason the error must name | EITHER, for what the run is given."""
    out = {name: why for name, _, why in CASES}
    # root reads any file whatever its mode (the audio layer's tests check the reason as nobody)
    locked = "permission denied" if os.geteuid() else None
    out.update({"target.wav": None, "locked.wav": locked, "missing.wav": "file not found", "-": None})
    out["folder.wav"] = "is a directory named like an audio file with no audio files in it"
    return out


def test_awkward_folder_through_the_command_line(model_path, speech, tmp_path):  # noqa: F811
    shared_dir = tmp_path
    zoo_dir = shared_dir / "zoo"
    zoo_dir.mkdir()
    zoo = build_zoo(zoo_dir, speech)
    (zoo_dir / "locked.wav").write_bytes(wav_bytes(speech))
    (zoo_dir / "locked.wav").chmod(0)
    shutil.copy(model_path, shared_dir / "model.pt")
    direct = [zoo["speech_no_extension"], zoo["folder.wav"], zoo["no_audio_folder"], shared_dir / "missing.wav", "-"]
    proc = run_cli(["transcribe", "-m", "model.pt", "-f", "jsonl", "-o", "out.jsonl", "--beam-size", "1",
                    str(zoo_dir), *map(str, direct)], wav_bytes(speech), shared_dir)
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    assert proc.returncode == 1, err
    lines = [json.loads(line) for line in (shared_dir / "out.jsonl").read_text().splitlines()]
    skipped = {Path(r["path"]).name: r["skipped"] for r in lines if "skipped" in r}  # what the walk passed over
    rows = [r for r in lines if "skipped" not in r]
    assert "notes.txt" in skipped and "folder.wav" in skipped and "named like an audio file" in skipped["folder.wav"]
    assert f"skipped {sum('skipped' in r for r in lines)} entries in folders" in err  # one line on stderr too
    assert zoo["speech_no_extension"].name in [Path(r["path"]).name for r in rows[: -len(direct)]]  # found by content
    names = [r["path"] if r["path"] == "-" else Path(r["path"]).name for r in rows]
    assert names[-len(direct):] == [Path(p).name if p != "-" else "-" for p in direct]  # in input order
    expected = expected_outcomes(zoo)
    assert len(rows) >= 40 and set(names) <= set(expected)
    reference = rows[names.index("speech.wav")]["segments"]
    assert reference and all(s["speech_prob"] > 0.5 for s in reference)  # silero heard it
    for name, row in zip(names, rows):
        why = expected[name]
        if row["error"] is not None:
            assert why is not None, f"{name}: {row['error']}"
            assert why == EITHER or why in row["error"], f"{name}: {row['error']!r}"
            assert f"FAILED {row['path']}: {row['error']}" in err
        elif why != EITHER:
            assert why is None, f"{name}: transcribed, but should fail with {why!r}"
            assert isinstance(row["text"], str) and row["duration"] > 0, name
            assert bool(row["segments"]) == (name not in SILENT), f"{name}: {row['segments']}"  # heard, or silent
    quiet = rows[names.index("quiet.wav")]["segments"]  # -50 dBFS: heard as at full level
    assert [t for s in quiet for t in (s["start"], s["end"])] == pytest.approx(
        [t for s in reference for t in (s["start"], s["end"])], abs=0.05)
    failed = sum(r["error"] is not None for r in rows)
    assert f"{failed} of {len(rows)} files could not be transcribed" in err


def test_nothing_given_and_help(model_path, capsys):  # noqa: F811
    assert main(["transcribe", "-m", str(model_path)]) == 2
    assert "no audio files found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["transcribe", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "-f all -o out/" in out and "exit status" in out and "--vad" in out


@pytest.fixture(scope="module")
def model(model_path):  # noqa: F811
    return asr.load_model(model_path, beam_size=1)


class Upload(io.BytesIO):
    """A binary file object that counts its reads."""

    name = "upload.m4a"
    reads = 0

    def read(self, *args):
        self.reads += 1
        return super().read(*args)


def test_api_takes_arrays_tensors_bytes_file_objects_and_lists(model, speech, tmp_path):
    path = tmp_path / "speech.wav"
    sf.write(path, speech, SR)
    m4a = encode(speech, SR, "ipod", "aac")
    upload = Upload(m4a)
    int16 = np.round(speech * 32767).astype(np.int16)
    inputs = [speech, torch.from_numpy(speech)[None], m4a, upload, str(path), int16, b"not audio at all" * 10, tmp_path]
    results = model.transcribe(inputs, word_timestamps=True)
    assert inspect.isgenerator(results) and upload.reads == 0  # nothing is read before results are asked for
    results = list(results)
    assert [r.path for r in results] == [
        "<array>",
        "<tensor>",
        "<bytes>",
        "upload.m4a",
        str(path),
        "<array>",
        "<bytes>",
        str(path),
    ]  # in input order; the folder gave its one audio file
    assert "not a readable audio file" in results[6].error
    for r in results[:6] + results[7:]:
        assert r.error is None and r.segments, r.path
        assert all(s.words is not None and s.speech_prob > 0.5 for s in r.segments), r.path
    same = [(s.start, s.end, s.text) for s in results[4].segments]
    for r in results[:2] + results[5:6]:  # an array, a tensor, int16 samples: read like the file holding them
        assert [(s.start, s.end, s.text) for s in r.segments] == same
    stereo = torch.from_numpy(resample(speech, SR, 44100)).repeat(2, 1)  # (channels, samples) at 44.1 kHz
    (r,) = model.transcribe(stereo, sample_rate=44100)
    assert r.error is None and [t for s in r.segments for t in (s.start, s.end)] == pytest.approx(
        [t for s in same for t in s[:2]], abs=0.05)
    (r,) = model.transcribe(stereo.T.numpy(), sample_rate=44100)  # (samples, channels), as soundfile gives
    assert r.error is None and len(r.segments) == len(same)


def test_api_rejects_what_is_not_audio_before_reading(model):
    with pytest.raises(TypeError, match="cannot transcribe a int"):
        model.transcribe([b"x", 3])
    with pytest.raises(ValueError, match="voice activity detector"):
        model.transcribe(b"x", vad="webrtc")
    (r,) = model.transcribe(np.zeros((2, 3, 4)))
    assert "expected samples of shape" in r.error


def test_every_format_at_once(model_path, speech, tmp_path):  # noqa: F811
    sf.write(tmp_path / "a.wav", speech, SR)
    sf.write(tmp_path / "b.flac", np.zeros(SR), SR)
    out = tmp_path / "out"
    assert main(["transcribe", "-m", str(model_path), str(tmp_path / "a.wav"), str(tmp_path / "b.flac"), "-f", "all",
                 "-o", str(out), "--beam-size", "1", "--device", "auto"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}.{x}" for n in "ab" for x in ("txt", "json", "srt", "vtt", "tsv")
    )
    tsv = (out / "a.tsv").read_text().splitlines()
    assert tsv[0] == "start\tend\ttext"
    segs = json.loads((out / "a.json").read_text())["segments"]
    assert [tuple(map(int, row.split("\t")[:2])) for row in tsv[1:]] == [
        (round(1000 * s["start"]), round(1000 * s["end"])) for s in segs if s["text"]]
    assert (out / "b.tsv").read_text() == "start\tend\ttext\n" and (out / "b.txt").read_text() == "\n"
