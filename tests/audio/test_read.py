import os

import numpy as np
import pytest
import soundfile as sf

from asr.audio.read import AudioError, audio_duration, load_audio


def tone(seconds=0.5, sr=16000, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([x] * channels, 1) if channels > 1 else x


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_U8"), ("WAV", "ULAW"),
                                         ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_reads_formats_as_float32_mono_16k(tmp_path, fmt, subtype):
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, tone(0.5, 16000, 2), 16000, format=fmt, subtype=subtype)
    wav = load_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - 8000) <= (1200 if fmt == "MP3" else 1)  # MP3 frames pad the ends
    assert 0.2 < np.abs(wav).max() <= 1.0


def test_resamples_and_downmixes(tmp_path):
    left = tone(1.0, 44100)
    stereo = np.stack([left, -left * 0], 1)  # right channel silent: mean halves the amplitude
    sf.write(tmp_path / "s.wav", stereo, 44100)
    wav = load_audio(tmp_path / "s.wav")
    assert abs(len(wav) - 16000) <= 2
    assert 0.12 < np.abs(wav).max() < 0.18
    assert audio_duration(tmp_path / "s.wav") == pytest.approx(1.0)


def _truncated(keep_bytes):
    def make(tmp_path):
        p = tmp_path / "trunc.wav"
        sf.write(p, tone(1.0), 16000)
        p.write_bytes(p.read_bytes()[:keep_bytes])  # the header promises samples that are not there
        return p

    return make


def _write(name, data: bytes):
    def make(d):
        (d / name).write_bytes(data)
        return d / name

    return make


@pytest.mark.parametrize("make,reason", [
    (lambda d: d / "missing.wav", "not found"),
    (_write("empty.wav", b""), "empty"),
    (_write("text.wav", b"hello, not audio\n" * 20), "not a readable audio"),
    (_write("fake.flac", b"fLaC" + bytes(range(256)) * 4), "not a readable audio"),
    (_truncated(40), "not a readable audio"),
    (_truncated(20000), "truncated"),
    (lambda d: d, "directory"),
])
def test_bad_files_raise_audio_error_naming_file_and_reason(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert reason in info.value.reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    p = tmp_path / "locked.wav"
    sf.write(p, tone(), 16000)
    p.chmod(0)
    with pytest.raises(AudioError, match="locked.wav"):
        load_audio(p)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_reads_a_slice_exactly(tmp_path, fmt):
    rng = np.random.default_rng(0)
    path = tmp_path / f"r.{fmt.lower()}"
    sf.write(path, rng.uniform(-0.5, 0.5, 32000).astype(np.float32), 16000, format=fmt, subtype="PCM_16")
    full = load_audio(path)
    assert np.array_equal(load_audio(path, offset=0.25, duration=1.1), full[4000:4000 + 17600])
    assert np.array_equal(load_audio(path, offset=1.5), full[24000:])
    assert np.array_equal(load_audio(path, duration=0.5), full[:8000])
    with pytest.raises(AudioError, match="past the end"):
        load_audio(path, offset=1.5, duration=0.6)
    with pytest.raises(AudioError, match="past the end"):
        load_audio(path, offset=2.5, duration=0.1)


def test_duration_from_header_notices_truncation(tmp_path):
    with pytest.raises(AudioError, match="truncated"):
        audio_duration(_truncated(20000)(tmp_path))


@pytest.mark.parametrize("orig", [24000, 44100, 8000])
def test_resampler_on_blocks_of_any_size_gives_the_whole_files_resampling(orig):
    """Live input at another rate, in uneven blocks: the joined output is what resampling the
    whole gives (no clicks or lost samples at the block edges), once flushed."""
    from asr.audio.read import Resampler, resample

    rng = np.random.default_rng(0)
    t = np.arange(3 * orig) / orig
    wav = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    r, out, i = Resampler(orig, 16000), [], 0
    for size in rng.integers(1, orig // 5, 200):
        out.append(r(wav[i : i + size]))
        i += size
        if i >= len(wav):
            break
    out.append(r(wav[i:]))
    out.append(r.flush())
    whole = resample(wav, orig, 16000)
    joined = np.concatenate(out)
    assert len(joined) == len(whole)
    np.testing.assert_allclose(joined, whole, atol=2e-4)
