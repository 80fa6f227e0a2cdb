"""Seeded mutations of valid WAV, FLAC, MP3 and Ogg files through the readers.

Each mutant must give samples or an AudioError (nothing else escapes), finish in seconds (a
watchdog kills the run if a decoder hangs, even inside C), and allocate in proportion to its size,
not to what a damaged header claims (numpy's allocations are traced; the process's peak resident
memory covers what the C libraries allocate).
"""

import faulthandler
import io
import resource
import struct
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from asr.audio.read import AudioError, audio_duration, load_audio, stream_audio

SR = 16000
MUTANTS = 2000
HANG_SECONDS = 20  # the watchdog: far beyond any honest read of these tiny files
MAX_SECONDS = 5.0
BUDGET = 64 << 20  # bytes allowed beyond 200x the file's size

# (format, subtype, rate, channels, seconds): small files keep 2,000 reads inside a minute
BASES = [("WAV", "PCM_16", 16000, 1, 0.3), ("WAV", "FLOAT", 22050, 2, 0.2), ("FLAC", "PCM_16", 16000, 1, 0.4),
         ("MP3", "MPEG_LAYER_III", 16000, 1, 0.5), ("OGG", "VORBIS", 16000, 1, 0.5)]
# header fields worth lying in: (offset, struct format)
WAV_FIELDS = [(4, "<I"), (16, "<I"), (20, "<H"), (22, "<H"), (24, "<I"), (28, "<I"), (32, "<H"), (34, "<H"),
              (40, "<I")]
FLAC_FIELDS = [(8, ">H"), (10, ">H"), (18, ">H"), (20, ">B"), (21, ">B"), (22, ">I"), (4, ">I")]
EXTREMES = [0, 1, 2, 3, 7, 255, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


def base_files() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    out = []
    for fmt, subtype, rate, channels, seconds in BASES:
        n = int(rate * seconds)
        t = np.arange(n) / rate
        x = 0.4 * np.sin(2 * np.pi * 300 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(n)
        b = io.BytesIO()
        sf.write(b, np.stack([x * (c + 1) / channels for c in range(channels)], 1), rate, format=fmt, subtype=subtype)
        out.append((fmt, b.getvalue()))
    return out


def mutate(data: bytes, fmt: str, rng: np.random.Generator) -> bytes:
    """One to three random damages: flipped bytes (anywhere or in the header), a cut, a lying
    header field, a deleted or repeated stretch."""
    b = bytearray(data)
    for _ in range(rng.integers(1, 4)):
        kind = rng.integers(6)
        if kind == 0 and b:  # bytes anywhere
            for i in rng.integers(0, len(b), rng.integers(1, 17)):
                b[i] = rng.integers(256)
        elif kind == 1 and b:  # bytes in the header
            for i in rng.integers(0, min(len(b), 128), rng.integers(1, 5)):
                b[i] = rng.integers(256)
        elif kind == 2:  # cut short
            b = b[: rng.integers(0, len(b) + 1)]
        elif kind == 3:  # a header field that lies
            fields = (
                WAV_FIELDS if fmt == "WAV" else FLAC_FIELDS if fmt == "FLAC" else [(int(rng.integers(0, 60)), "<I")]
            )
            off, f = fields[rng.integers(len(fields))]
            size = struct.calcsize(f)
            value = int(rng.choice(EXTREMES)) if rng.random() < 0.7 else int(rng.integers(0, 2 ** (8 * size)))
            if off + size <= len(b):
                b[off : off + size] = struct.pack(f, value & (2 ** (8 * size) - 1))
        elif kind == 4 and len(b) > 2:  # a stretch deleted
            i = int(rng.integers(len(b) - 1))
            del b[i : i + int(rng.integers(1, min(4096, len(b) - i) + 1))]
        elif len(b) > 2:  # a stretch repeated
            i = int(rng.integers(len(b) - 1))
            j = i + int(rng.integers(1, min(4096, len(b) - i) + 1))
            b[j:j] = b[i:j]
    return bytes(b)


def read(path, how: str) -> None:
    """Read `path` as one of the callers would; only AudioError may come out."""
    if how == "stream":
        wavs = list(stream_audio(path, block_seconds=1))
        assert all(w.dtype == np.float32 and np.isfinite(w).all() for w in wavs)
    elif how == "duration":
        assert audio_duration(path) > 0
    else:
        source = path.read_bytes() if how == "bytes" else path
        wav = load_audio(source)
        assert wav.dtype == np.float32 and wav.ndim == 1 and np.isfinite(wav).all() and np.abs(wav).max() <= 1


def test_mutated_files_give_samples_or_audio_error(tmp_path):
    rng = np.random.default_rng(1234)
    bases = base_files()
    for i, (fmt, data) in enumerate(bases):  # warm up: libraries load and codecs initialise once
        (tmp_path / f"base{i}").write_bytes(data)
        load_audio(tmp_path / f"base{i}")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    largest, outcomes, slowest = 0, {"samples": 0, "AudioError": 0}, (0.0, "")
    tracemalloc.start()
    try:
        for n in range(MUTANTS):
            fmt, data = bases[n % len(bases)]
            mutant = mutate(data, fmt, rng)
            path = tmp_path / f"m{n % 8}"
            path.write_bytes(mutant)
            how = ("path", "path", "bytes", "stream", "duration")[n % 5]
            largest = max(largest, len(mutant))
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
            t = time.perf_counter()
            try:
                read(path, how)
                outcomes["samples"] += 1
            except AudioError as e:
                assert e.reason and e.path
                outcomes["AudioError"] += 1
            finally:
                faulthandler.cancel_dump_traceback_later()
            took = time.perf_counter() - t
            slowest = max(slowest, (took, f"mutant {n} ({fmt}, {how})"))
            grown = tracemalloc.get_traced_memory()[1] - base
            assert grown <= BUDGET + 200 * len(mutant), f"mutant {n} ({fmt}, {how}) allocated {grown} bytes"
    finally:
        tracemalloc.stop()
    assert slowest[0] < MAX_SECONDS, slowest
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
    assert rss_growth <= BUDGET + 200 * largest, f"peak resident memory grew by {rss_growth} bytes"
    assert outcomes["samples"] > 100 and outcomes["AudioError"] > 100, outcomes  # both paths exercised


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_header_claiming_huge_length_allocates_nothing_for_it(tmp_path, fmt):
    _, data = next(b for b in base_files() if b[0] == fmt)
    if fmt == "WAV":
        lying = data[:40] + struct.pack("<I", 2**31) + data[44:]  # data chunk: 2 GiB
    else:  # STREAMINFO total samples (low 36 bits at bytes 21..25): 2^35
        head = int.from_bytes(data[21:26], "big") & ~((1 << 36) - 1) | (1 << 35)
        lying = data[:21] + head.to_bytes(5, "big") + data[26:]
    path = tmp_path / f"lying.{fmt.lower()}"
    path.write_bytes(lying)
    tracemalloc.start()
    try:
        try:
            wav = load_audio(path)
            assert len(wav) == int(SR * 0.3) if fmt == "WAV" else len(wav) > 0
        except AudioError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < BUDGET
