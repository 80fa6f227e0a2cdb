"""Awkward and broken inputs at the audio layer: each gives usable samples or an AudioError naming why.

One folder of generated files (speech from espeak-ng, containers encoded with PyAV), read whole,
block by block and for its duration; nothing but AudioError may escape. Then the cases that
used to come back as empty transcripts get their properties checked one by one.
"""

import io
import logging
import os
import shutil
import struct
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import soundfile as sf

import asr.audio.read
from asr.audio.files import find_audio, path_problem
from asr.audio.read import AudioError, audio_duration, load_audio, normalize_level, stream_audio

SR = 16000
EITHER = "samples or an error"  # damaged lossy files: reading what survives is as good as refusing


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from asr.synth.engines import list_voices, synthesize

    return synthesize("turn on the kitchen lights please", list_voices("espeak")[0])  # peak 0.9, ~2 s


def wav_bytes(x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytes:
    b = io.BytesIO()
    sf.write(b, x, sr, format="WAV", subtype=subtype)
    return b.getvalue()


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt):]


def encode(x: np.ndarray, sr: int, fmt: str, codec: str, channels: int = 1, bit_rate: int | None = None) -> bytes:
    """Encode with FFmpeg through PyAV (the reader under test decodes it the same way, but
    the container and codec paths are what matter here)."""
    layout = "mono" if channels == 1 else "stereo"
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as c:
        stream = c.add_stream(codec, rate=sr, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.tile(x[None], (channels, 1)), np.float32),
                                           format="fltp", layout=layout)
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            c.mux(packet)
    return out.getvalue()


def video_only() -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as c:
        stream = c.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        frames = [av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")] * 3
        for packet in [p for f in frames for p in stream.encode(f)] + list(stream.encode(None)):
            c.mux(packet)
    return out.getvalue()


def resampled(x: np.ndarray, sr: int) -> np.ndarray:
    return asr.audio.read.resample(x, SR, sr)


def _file(make_bytes):
    def make(d, s, name):
        (d / name).write_bytes(make_bytes(s))
        return d / name
    return make


def _cut(make, keep: float):
    def cut(d, s, name):
        data = make(d, s, name).read_bytes()
        (d / name).write_bytes(data[: int(len(data) * keep)])
        return d / name
    return cut


def _sf(fmt: str, subtype: str, sr: int = SR):
    def make(d, s, name):
        sf.write(d / name, resampled(s, sr), sr, format=fmt, subtype=subtype)
        return d / name
    return make


def _link(target: str):
    def make(d, s, name):
        if target == "speech.wav":
            (d / "target.wav").write_bytes(wav_bytes(s))
            os.symlink(d / "target.wav", d / name)
        elif target == "loop":
            os.symlink(d / name, d / name)
        else:
            os.symlink(d / "missing-target.wav", d / name)
        return d / name
    return make


def _folder(with_file: str | None):
    def make(d, s, name):
        (d / name).mkdir()
        if with_file:
            (d / name / with_file).write_text("not audio")
        return d / name
    return make


def quiet(s):
    return s * (10 ** (-50 / 20) / np.abs(s).max())  # peak -50 dBFS


CASES = [  # (file name, how to make it from the speech, None: readable | reason the error must name | EITHER)
    ("speech.wav", _file(wav_bytes), None),
    ("SPEECH.WAV", _file(wav_bytes), None),
    ("speech_no_extension", _file(wav_bytes), None),
    ("ünïcödé spéech ✓ (1).wav", _file(wav_bytes), None),
    ("speech.flac", _sf("FLAC", "PCM_16"), None),
    ("SPEECH.OGG", _sf("OGG", "VORBIS"), None),
    ("speech.mp3", _sf("MP3", "MPEG_LAYER_III"), None),
    ("speech.opus", _sf("OGG", "OPUS", 48000), None),
    ("speech.aiff", _sf("AIFF", "PCM_24", 22050), None),
    ("speech_8k_ulaw.wav", _sf("WAV", "ULAW", 8000), None),
    ("speech_48k_stereo.wav", lambda d, s, n: sf.write(d / n, np.stack([resampled(s, 48000)] * 2, 1), 48000) or d / n,
     None),
    ("speech.m4a", _file(lambda s: encode(s, SR, "ipod", "aac")), None),
    ("speech.webm", _file(lambda s: encode(resampled(s, 48000), 48000, "webm", "libopus")), None),
    ("speech.mp4", _file(lambda s: encode(resampled(s, 44100), 44100, "mp4", "aac", 2)), None),
    ("speech.mkv", _file(lambda s: encode(resampled(s, 48000), 48000, "matroska", "libopus", 2)), None),
    ("speech.amr", _file(lambda s: encode(resampled(s, 8000), 8000, "amr", "libopencore_amrnb")), None),
    ("speech.aac", _file(lambda s: encode(s, SR, "adts", "aac")), None),
    ("speech.wma", _file(lambda s: encode(s, SR, "asf", "wmav2", bit_rate=64000)), None),
    ("speech.MOV", _file(lambda s: encode(s, SR, "mov", "aac")), None),
    ("video_only.mp4", _file(lambda s: video_only()), "no audio track"),
    ("quiet.wav", _file(lambda s: wav_bytes(quiet(s))), None),
    ("antiphase.wav", _file(lambda s: wav_bytes(np.stack([s, -s], 1))), None),
    ("nearly_antiphase.flac", lambda d, s, n: sf.write(d / n, np.stack([s, -0.9 * s], 1), SR) or d / n, None),
    ("int16_scale_float.wav", _file(lambda s: wav_bytes(np.round(s * 32767), subtype="FLOAT")), None),
    ("hot_float.wav", _file(lambda s: wav_bytes(s * 3.3, subtype="FLOAT")), None),
    ("silence.wav", _file(lambda s: wav_bytes(np.zeros(SR))), None),
    ("rate_1hz.wav", _file(lambda s: patched(patched(wav_bytes(s), 24, "<I", 1), 28, "<I", 2)), "sample rate 1 Hz"),
    ("rate_1mhz.wav", _file(lambda s: patched(wav_bytes(s), 24, "<I", 1_000_000)), "implausible sample rate"),
    ("empty.wav", _file(lambda s: b""), "empty"),
    ("header_only.wav", _file(lambda s: wav_bytes(s)[:44]), "no audio samples"),
    ("one_sample.wav", _file(lambda s: wav_bytes(s[2000:2001])), "too short"),
    ("nan.wav", _file(lambda s: wav_bytes(np.where(np.arange(len(s)) == 999, np.nan, s), subtype="FLOAT")), "NaN"),
    ("inf.wav", _file(lambda s: wav_bytes(np.where(np.arange(len(s)) == 5, -np.inf, s), subtype="DOUBLE")),
     "infinite"),
    ("truncated.wav", _file(lambda s: wav_bytes(s)[: len(s)]), "truncated"),
    ("truncated_in_header.wav", _file(lambda s: wav_bytes(s)[:30]), "not a readable audio file"),
    ("truncated.flac", _cut(_sf("FLAC", "PCM_16"), 0.5), EITHER),
    ("truncated.mp3", _cut(_sf("MP3", "MPEG_LAYER_III"), 0.5), EITHER),
    ("truncated.m4a", _file(lambda s: encode(s, SR, "ipod", "aac")[:3000]), "not a readable audio file"),
    ("truncated.webm", _file(lambda s: encode(resampled(s, 48000), 48000, "webm", "libopus")[:4000]), EITHER),
    ("claims_2e31_frames.wav", _file(lambda s: patched(wav_bytes(s), 40, "<I", 2**31)), None),
    ("claims_unknown_length.wav", _file(lambda s: patched(wav_bytes(s), 40, "<I", 0xFFFFFFFF)), None),
    ("claims_1000_channels.wav", _file(lambda s: patched(wav_bytes(s), 22, "<H", 1000)), EITHER),
    ("claims_0_channels.wav", _file(lambda s: patched(wav_bytes(s), 22, "<H", 0)), "not a readable audio file"),
    ("text.wav", _file(lambda s: b"hello, this is not audio\n" * 40), "not a readable audio file"),
    ("random.mp3", _file(lambda s: np.random.default_rng(0).bytes(5000)), EITHER),
    ("random.m4a", _file(lambda s: np.random.default_rng(1).bytes(5000)), "not a readable audio file"),
    ("folder.wav", _folder(None), "is a directory named like an audio file with no audio files in it"),
    ("no_audio_folder", _folder("notes.txt"), "is a directory with no audio files in it"),
    ("dangling.wav", _link("missing"), "dangling symbolic link"),
    ("loop.wav", _link("loop"), "symbolic link loop"),
    ("link_to_speech.wav", _link("speech.wav"), None),
]


def build_zoo(d: Path, speech: np.ndarray) -> dict[str, Path]:
    """Every case of CASES made in folder `d` from `speech` (also used by the CLI's test)."""
    return {name: make(d, speech, name) for name, make, _ in CASES}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, speech) -> dict[str, Path]:
    return build_zoo(tmp_path_factory.mktemp("zoo"), speech)


def _check_samples(name: str, wav: np.ndarray) -> None:
    assert wav.dtype == np.float32 and wav.ndim == 1 and len(wav) > 0, name
    assert np.isfinite(wav).all() and np.abs(wav).max() <= 1.0, name


@pytest.mark.parametrize("name,expected", [(n, e) for n, _, e in CASES], ids=[c[0] for c in CASES])
def test_every_input_gives_samples_or_names_the_reason(zoo, name, expected):
    path = zoo[name]
    readers = {"load": load_audio, "stream": lambda p: np.concatenate(list(stream_audio(p, block_seconds=1)))}
    for how, read in readers.items():
        try:
            wav = read(path)
        except AudioError as e:
            assert expected is not None, f"{how} {name}: {e}"
            assert e.path == str(path)
            assert expected == EITHER or expected in e.reason, f"{how} {name}: {e.reason!r}"
        else:
            assert expected in (None, EITHER), f"{how} {name}: read, but should fail with {expected!r}"
            _check_samples(name, wav)
    try:
        assert audio_duration(path) > 0
    except AudioError as e:
        assert expected is not None and e.reason


def test_the_zoo_is_big_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", ["speech.m4a", "speech.webm", "speech.mp4", "speech.mkv", "speech.amr", "speech.wma",
                                  "speech.MOV", "speech.opus", "speech.mp3", "speech_48k_stereo.wav", "SPEECH.WAV"])
def test_every_container_gives_the_speech_back(zoo, speech, name):
    wav = load_audio(zoo[name])
    assert abs(len(wav) - len(speech)) < 0.1 * SR  # codecs pad a few frames
    assert np.sqrt(np.mean(wav**2)) == pytest.approx(np.sqrt(np.mean(speech**2)), rel=0.25)
    assert audio_duration(zoo[name]) == pytest.approx(len(speech) / SR, abs=0.1)
    streamed = np.concatenate(list(stream_audio(zoo[name], block_seconds=1)))
    np.testing.assert_allclose(streamed, wav, atol=1e-4)


def test_quiet_speech_keeps_its_level_until_normalized(zoo):
    true_level = load_audio(zoo["quiet.wav"])
    assert np.abs(true_level).max() < 0.005  # training data is never changed behind its back
    for wav in (normalize_level(true_level), load_audio(zoo["quiet.wav"], normalize=True),
                np.concatenate(list(stream_audio(zoo["quiet.wav"], block_seconds=1, normalize=True)))):
        assert 0.3 < np.abs(wav).max() <= 1.0


def test_normalizing_leaves_silence_and_dither_alone():
    assert not normalize_level(np.zeros(SR, np.float32)).any()
    dither = (np.random.default_rng(0).integers(-1, 2, SR) / 32768).astype(np.float32)  # +-1 LSB
    assert np.abs(normalize_level(dither)).max() == np.abs(dither).max()
    loud = (0.9 * np.sin(np.arange(SR) / 7)).astype(np.float32)
    assert normalize_level(loud) is loud  # a normal level is left exactly as it is
    faint_noise = (3e-4 * np.random.default_rng(1).standard_normal(SR)).astype(np.float32)
    assert np.abs(normalize_level(faint_noise)).max() <= 10 ** (50 / 20) * np.abs(faint_noise).max() * 1.0001


@pytest.mark.parametrize("name", ["antiphase.wav", "nearly_antiphase.flac"])
def test_channels_that_cancel_are_not_averaged(zoo, speech, name, caplog):
    with caplog.at_level(logging.WARNING, logger="asr.audio"):
        wav = load_audio(zoo[name])
    assert np.sqrt(np.mean(wav**2)) > 0.8 * np.sqrt(np.mean(speech**2))
    assert name in caplog.text and "cancels" in caplog.text
    streamed = np.concatenate(list(stream_audio(zoo[name], block_seconds=1)))
    np.testing.assert_allclose(streamed, wav, atol=1e-5)  # the same channel, chosen once


@pytest.mark.parametrize("name,scale", [("int16_scale_float.wav", 32767 / 32768), ("hot_float.wav", None)])
def test_float_files_outside_full_scale_are_rescaled(zoo, speech, name, scale, caplog):
    with caplog.at_level(logging.WARNING, logger="asr.audio"):
        wav = load_audio(zoo[name])
    assert np.abs(wav).max() <= 1.0 and name in caplog.text
    expected = speech * scale if scale else speech / np.abs(speech).max()
    np.testing.assert_allclose(wav, expected, atol=1e-3)
    np.testing.assert_allclose(np.concatenate(list(stream_audio(zoo[name], block_seconds=1))), wav, atol=1e-5)


def test_a_lying_length_reads_what_is_there(zoo, speech):
    for name in ("claims_2e31_frames.wav", "claims_unknown_length.wav"):
        np.testing.assert_allclose(load_audio(zoo[name]), speech, atol=1e-4)


def test_a_link_reads_its_target(zoo):
    np.testing.assert_array_equal(load_audio(zoo["link_to_speech.wav"]), load_audio(zoo["speech.wav"]))


def test_bytes_file_objects_stdin_and_pipes(zoo, monkeypatch, tmp_path):
    data = zoo["speech.m4a"].read_bytes()
    whole = load_audio(zoo["speech.m4a"])
    named = io.BytesIO(data)
    named.name = "upload.m4a"
    for source in (data, bytearray(data), io.BytesIO(data), named):
        np.testing.assert_array_equal(load_audio(source), whole)
    with pytest.raises(AudioError, match="upload.txt: not a readable audio file"):
        load_audio(SimpleNamespace(read=lambda n=-1: b"plain text " * 50, name="upload.txt"))
    with pytest.raises(AudioError, match="not a binary stream"):
        load_audio(io.StringIO("text"))
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(data)))
    monkeypatch.setattr(asr.audio.read, "_stdin", None)
    assert audio_duration("-") > 1  # stdin is read once and kept: the second reader still finds it
    np.testing.assert_array_equal(load_audio("-"), whole)
    fifo = tmp_path / "pipe.m4a"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(data))
    writer.start()
    np.testing.assert_array_equal(load_audio(fifo), whole)
    writer.join()


def test_find_audio_lists_files_and_keeps_what_holds_none(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / "folder.wav").mkdir()
    (root / "empty").mkdir()
    for f in ("a.wav", "B.FLAC", "sub/c.m4a", "sub/notes.txt", "folder.wav/d.Mp3", "sub/e.WebM"):
        (root / f).write_bytes(b"x")
    os.symlink(root, root / "sub" / "up")  # a folder loop: each folder is searched once
    os.symlink(root / "nowhere.wav", root / "dangling.wav")
    os.symlink(tmp_path / "loop.wav", tmp_path / "loop.wav")
    inputs = [root, root / "empty", tmp_path / "missing.wav", tmp_path / "loop.wav", "-"]
    found = find_audio(inputs)
    assert found[:6] == sorted(str(root / f) for f in ("B.FLAC", "a.wav", "dangling.wav", "folder.wav/d.Mp3",
                                                         "sub/c.m4a", "sub/e.WebM"))
    assert found[6:] == [str(root / "empty"), str(tmp_path / "missing.wav"), str(tmp_path / "loop.wav"), "-"]
    reasons = [path_problem(p) for p in found[6:9]]
    assert reasons == ["is a directory with no audio files in it", "file not found", "symbolic link loop"]
    assert path_problem(root / "dangling.wav").startswith("dangling symbolic link")
    assert path_problem(root / "folder.wav") == "is a directory named like an audio file, not an audio file"


def _as_nobody(fn) -> str:
    """Run fn() in a child that has given up root (root reads any file, whatever its mode)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.setgid(65534)
            os.setuid(65534)
            out = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out = repr(e)
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


def test_unreadable_file_says_permission_denied(speech):
    d = Path(tempfile.mkdtemp(prefix="asr-perm-"))
    try:
        d.chmod(0o755)
        p = d / "locked.wav"
        p.write_bytes(wav_bytes(speech))
        p.chmod(0)

        def reason() -> str:
            try:
                load_audio(p)
            except AudioError as e:
                return e.reason
            return "read"

        assert "permission denied" in (_as_nobody(reason) if os.geteuid() == 0 else reason())
    finally:
        shutil.rmtree(d)
