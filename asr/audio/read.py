"""Read audio: a file, stdin (`-`), bytes or a binary file object -> mono float32 at the target rate.

Two readers, one contract. soundfile (libsndfile: WAV, FLAC, Ogg, MP3, AIFF, ...) is tried first;
PyAV (FFmpeg) reads what it cannot open: m4a/AAC, the audio track of mp4/mov/mkv/webm, wma, amr...
Whichever reads, the same checks apply, and every failure surfaces as one `AudioError` naming the
input and the reason, so a caller processing a thousand files can report the broken one and carry on.

What the checks guard against (each once came back as an empty transcript):
- channels that cancel: when averaging them would lose most of their energy (anti-phase copies),
  the strongest channel is used instead, with a warning naming the file;
- float files at the wrong scale (int16-scale samples, peaks above 1) are brought into [-1, 1];
- damaged headers: absurd sample rates are rejected before anything is read; sample counts are
  never trusted for allocation (reads go block by block up to what the file holds);
- NaN/inf samples, empty and too-short files, directories, link loops and dangling links.
Loading keeps the recording's true level (training data must not change); `normalize_level`, or
`normalize=True`, brings quiet speech up for detection and features. `find_audio` lists the inputs
of a run; an input that holds no audio stays in the list, so reading it says why.
"""

# long module: one reader for every kind of source (paths, pipes, bytes; libsndfile and FFmpeg) and its
# checks; its private helpers are shared by both readers, so splitting would only add imports

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.audio.files import path_problem

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MIN_RATE, MAX_RATE = 4000, 384000  # a header outside this range is damaged, not a recording
MAX_CHANNELS = 1024  # libsndfile's own limit
MIN_SECONDS = 0.01  # a whole file shorter than this holds no speech: "too short"
Source = str | Path | bytes | bytearray | memoryview | BinaryIO  # what the readers accept

_CHUNK = 1 << 18  # samples (all channels) per read: memory follows the data, never a header's promise
_MAX_BUFFER = 2 << 30  # bytes of stdin / a pipe held in memory
_MAX_RESAMPLE_TAPS = 1 << 22  # 44.1 -> 16 kHz needs 441 x 160; 11.025 -> 16 kHz 441 x 640
_CANCEL_RATIO = 0.1  # mix energy below -10 dB of the channels' mean energy: the channels cancel
_SIGNAL_ENERGY = 1e-10  # mean square below -100 dB: no signal to decide a channel strategy on
_LEVEL_FLOOR = 1e-4  # -80 dBFS, ~3 LSB of 16-bit: dither or digital silence, never amplified
# libsndfile's header log for a WAV whose data chunk is cut short: "data : 32000 (should be 19956)"
_TRUNCATED = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_LENGTH = 0x7FFFFF00  # data sizes from here up are a streaming writer's "unknown", not a promise
_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError, IndexError)
_stdin: bytes | None = None  # standard input can be read once; every reader of "-" shares it


class AudioError(Exception):
    """An audio file could not be read. `path` and `reason` say which and why."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# ----------------------------------------------------------------------------------------- public API

def load_audio(source: Source, sample_rate: int = SAMPLE_RATE, offset: float | None = None,
               duration: float | None = None, normalize: bool = False) -> np.ndarray:
    """Return the audio as float32 mono in [-1, 1] at `sample_rate` Hz, shape (S,).

    `source` is a path, "-" (standard input), bytes, or a binary file object (its `name`, if any,
    names it in errors). With `offset` and/or `duration` (seconds) only that slice is read:
    samples round(offset * sr) up to round((offset + duration) * sr) at the file's rate. A slice
    reaching past the end of the recording is an error, not silently shorter audio. The level is
    the recording's own unless `normalize` (see `normalize_level`).
    """
    name, src = _resolve(source)
    with _reader(name, src) as r:
        start, frames = _slice(name, r.frames, r.rate, offset, duration)
        data = _read(name, r, start, frames)
        mono = _Conditioner(name, r.is_float)(data)
    wav = np.clip(resample(mono, r.rate, sample_rate), -1.0, 1.0)  # resampling rings past full scale
    return normalize_level(wav) if normalize else wav


def stream_audio(source: Source, sample_rate: int = SAMPLE_RATE, block_seconds: int = 30,
                 normalize: bool = False) -> Iterator[np.ndarray]:
    """Yield the audio as consecutive mono float32 blocks at `sample_rate`, decoding one block at
    a time: memory stays flat however long the recording. The same checks and errors as
    `load_audio`; header problems, empty and too-short files raise before the first block. Each
    block is resampled with ~0.1 s of context on both sides, so block edges leave no trace.

    Channels and scale are decided once, from the first block that carries signal, and kept for
    the rest of the file (a per-block choice could switch channels mid-sentence). With `normalize`
    each block gets the smallest gain `normalize_level` would give any block so far, so the gain
    only ever falls: a quiet start is lifted, a loud passage later is not clipped.
    """
    name, src = _resolve(source)
    with _reader(name, src) as r:
        if r.problem:
            raise AudioError(name, r.problem)
        cond = _Conditioner(name, r.is_float)
        for wav in _blocks(name, r, cond, block_seconds, sample_rate):
            yield cond.level(wav) if normalize else wav


def from_array(x, sample_rate: int, target_rate: int = SAMPLE_RATE, name: str = "<array>",
               normalize: bool = False) -> np.ndarray:
    """Samples already in memory (a numpy array or torch tensor) -> what `load_audio` gives for a
    file holding them, with the same checks and channel handling. Shape (samples,) or (channels,
    samples); (samples, channels), as soundfile returns, is recognised by its shorter axis.
    Integers are read at their type's full scale, floats as [-1, 1] (rescaled when outside it)."""
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim not in (1, 2) or x.dtype.kind not in "iuf":
        raise AudioError(name, f"expected samples of shape (samples,) or (channels, samples), not {x.dtype} "
                               f"{x.shape}")
    data = x[:, None] if x.ndim == 1 else x.T if x.shape[0] < x.shape[1] else x  # -> (S, C)
    _check_format(name, sample_rate, data.shape[1])
    if x.dtype.kind == "u":  # offset binary
        data = (data.astype(np.float32) - 2 ** (8 * x.itemsize - 1)) / 2 ** (8 * x.itemsize - 1)
    elif x.dtype.kind == "i":
        data = data.astype(np.float32) / 2 ** (8 * x.itemsize - 1)
    data = np.ascontiguousarray(data, np.float32)
    if not len(data):
        raise AudioError(name, "no audio samples (empty array)")
    _check_finite(name, data)
    _check_long_enough(name, len(data), sample_rate)
    mono = _Conditioner(name, x.dtype.kind == "f")(data)
    wav = np.clip(resample(mono, sample_rate, target_rate), -1.0, 1.0)
    return normalize_level(wav) if normalize else wav


def audio_duration(source: Source) -> float:
    """Duration in seconds from the header (cheap); raises AudioError like load_audio. A container
    whose header holds no duration (a recorder's webm, raw AAC) is decoded and counted."""
    name, src = _resolve(source)
    with _reader(name, src) as r:
        if r.problem:
            raise AudioError(name, r.problem)
        frames = r.frames if r.frames is not None else sum(len(c) for c in r.chunks())
    if frames <= 0:
        raise AudioError(name, "no audio samples (empty or truncated file)")
    return frames / r.rate


QUIET_LEVEL = 0.2  # below this 99.9th-percentile level, normalize_level lifts the audio


def normalize_level(wav: np.ndarray, target: float = 0.5, max_gain_db: float = 50.0) -> np.ndarray:
    """Bring quiet speech up to a working level: when the 99.9th percentile of |x| is below
    QUIET_LEVEL (-14 dBFS), gain so that it reaches `target`, at most `max_gain_db` and never past
    full scale. Normal levels come back unchanged (bit for bit: clean recordings decode exactly as
    they would without this), and audio below -80 dBFS is left alone: dither and digital silence
    stay silent instead of becoming loud noise."""
    gain = _level_gain(wav, target, max_gain_db)
    return wav if gain is None or gain == 1.0 else (wav * gain).astype(np.float32)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """`wav` at `target_sr`; an odd source rate is first snapped to a near one (see resample_rate)."""
    orig_sr = resample_rate(orig_sr, target_sr)
    if orig_sr == target_sr:
        return np.ascontiguousarray(wav, dtype=np.float32)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), orig_sr, target_sr)
    return out.numpy()


class Resampler:
    """Audio arriving in blocks of any size at `orig_sr` -> the same audio at `target_sr`, as one
    `resample` of the whole gives it (within float rounding), block edges leaving no trace: each
    stretch is resampled with `context` seconds of its neighbours, so the output trails the input by
    that much until `flush`. For live input (raw PCM, a WebSocket client's 24 kHz chunks); files go
    through `_blocks`, which does the same over whole blocks."""

    def __init__(self, orig_sr: int, target_sr: int = SAMPLE_RATE, context: float = 0.02):
        self.orig, self.target = resample_rate(orig_sr, target_sr), target_sr
        self.step = self.orig // math.gcd(self.orig, target_sr)  # source samples per whole number of outputs
        self.ctx = -(-int(context * self.orig) // self.step) * self.step if self.orig != target_sr else 0
        # buf holds the source from sample `base` on; the next output starts at source sample `pos`
        self.buf, self.base, self.pos = np.zeros(0, np.float32), 0, 0

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if self.orig == self.target:
            return np.ascontiguousarray(block, dtype=np.float32)
        self.buf = np.concatenate([self.buf, np.asarray(block, dtype=np.float32)])
        n = (self.base + len(self.buf) - self.ctx - self.pos) // self.step * self.step  # those with right context
        return self._emit(n) if n > 0 else np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        """The rest, at the end of the stream (no right context left to wait for)."""
        n = self.base + len(self.buf) - self.pos
        return self._emit(n) if n > 0 and self.orig != self.target else np.zeros(0, np.float32)

    def _emit(self, n: int) -> np.ndarray:
        end, lo = self.base + len(self.buf), max(0, self.pos - self.ctx)
        wav = resample(self.buf[lo - self.base : min(end, self.pos + n + self.ctx) - self.base], self.orig, self.target)
        head = (self.pos - lo) * self.target // self.orig  # exact: pos and lo are whole steps
        out = wav[head : head + -(-n * self.target // self.orig)]
        self.pos += n
        cut = max(0, self.pos - self.ctx) - self.base
        self.buf, self.base = self.buf[cut:], self.base + cut
        return out


def resample_rate(orig_sr: int, target_sr: int) -> int:
    """The rate `resample` treats audio at `orig_sr` as having: itself, or the nearest rate within
    0.5 % whose ratio to `target_sr` is cheap. torchaudio's filter bank has (orig/gcd) x (target/gcd)
    taps: 16001 -> 16000 Hz would build 256 M of them (seconds and a gigabyte per call); reading
    such a file 0.006 % fast is inaudible."""
    for d in range(orig_sr // 200 + 1):
        for rate in (orig_sr - d, orig_sr + d):
            g = math.gcd(rate, target_sr)
            if (rate // g) * (target_sr // g) <= _MAX_RESAMPLE_TAPS:
                return rate
    return orig_sr


def save_audio(path: str | Path, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(wav, dtype=np.float32), sample_rate, subtype="PCM_16")


# ------------------------------------------------------------------------------------ inputs and paths

def _resolve(source: Source) -> tuple[str, str | io.BytesIO]:
    """(the name errors use, what a reader opens: a checked path, or the bytes in memory)."""
    global _stdin
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>", _in_memory("<bytes>", bytes(source))
    if hasattr(source, "read"):
        name = str(getattr(source, "name", "<file object>"))
        return name, _in_memory(name, _read_all(name, source))
    if str(source) == "-":
        if _stdin is None:
            _stdin = _read_all("<stdin>", sys.stdin.buffer)
        return "<stdin>", _in_memory("<stdin>", _stdin)
    path = Path(source)
    problem = path_problem(path)
    if problem:
        raise AudioError(path, problem)
    if not path.is_file():  # a pipe: the readers seek, so hold it in memory
        with open(path, "rb") as f:
            return str(path), _in_memory(str(path), _read_all(str(path), f))
    return str(path), str(path)


def _read_all(name: str, f: BinaryIO) -> bytes:
    try:
        data = f.read(_MAX_BUFFER + 1)
    except OSError as e:
        raise AudioError(name, f"cannot read ({e.strerror or e})") from None
    if not isinstance(data, (bytes, bytearray)):
        raise AudioError(name, "not a binary stream (open the file with 'rb')")
    if len(data) > _MAX_BUFFER:
        raise AudioError(name, f"more than {_MAX_BUFFER >> 30} GiB from a stream; save it to a file first")
    return bytes(data)


def _in_memory(name: str, data: bytes) -> io.BytesIO:
    if not data:
        raise AudioError(name, "no data (0 bytes)")
    return io.BytesIO(data)


# ---------------------------------------------------------------------------------------------- readers

class _SoundFile:
    """libsndfile: exact seeks; the header's frame count bounds a read, never sizes an allocation."""

    def __init__(self, name: str, src: str | io.BytesIO):
        if isinstance(src, io.BytesIO):
            src.seek(0)
        self.f = sf.SoundFile(src)
        self.rate, self.channels = self.f.samplerate, self.f.channels
        try:
            _check_format(name, self.rate, self.channels)  # before anything is read
        except AudioError:
            self.f.close()
            raise
        self.frames: int | None = self.f.frames
        self.is_float = self.f.subtype in ("FLOAT", "DOUBLE")
        self.problem = _truncation(self.f.extra_info)

    def chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        """(n, C) float32 blocks from frame `start` to the end."""
        if start:
            self.f.seek(start)
        while len(block := self.f.read(max(1, _CHUNK // self.channels), dtype="float32", always_2d=True)):
            yield block

    def close(self) -> None:
        self.f.close()


def _decode_errors() -> tuple[type[BaseException], ...]:
    """What a failed decode raises: libsndfile's errors, and FFmpeg's once PyAV is in use (imported
    only for what libsndfile cannot open: a training machine reading WAV, FLAC or Opus needs no FFmpeg)."""
    av = sys.modules.get("av")
    return _DECODE_ERRORS + ((av.FFmpegError,) if av is not None else ())


class _PyAV:
    """FFmpeg through PyAV, for what libsndfile cannot open. The first audio track is decoded
    from the start (an offset costs decoding time, not accuracy); damaged packets are skipped."""

    def __init__(self, name: str, src: str | io.BytesIO):
        import av

        self.av = av
        if isinstance(src, io.BytesIO):
            src.seek(0)
        self.name = name
        self.container = av.open(src, metadata_errors="ignore")
        try:
            self._open_track()
        except BaseException:
            self.container.close()
            raise

    def _open_track(self) -> None:
        streams = self.container.streams
        if not streams.audio:
            raise AudioError(self.name, "no audio track" + (" (video only)" if streams.video else ""))
        self.stream = streams.audio[0]
        ctx = self.stream.codec_context
        if ctx is None:  # FFmpeg has no decoder for it
            raise AudioError(self.name, "not a readable audio file (unsupported audio codec)")
        _check_format(self.name, ctx.sample_rate or MIN_RATE, ctx.channels or 1)  # before decoding anything
        self._frames = self._decode()
        self._first = next(self._frames, None)  # the decoder's rate and channels, not the container's
        if self._first is None:
            raise _NoSamples
        self.rate, self.channels = self._first[1], self._first[0].shape[1]
        _check_format(self.name, self.rate, self.channels)
        self.frames = _container_frames(self.container, self.stream, self.rate)
        self.is_float = ctx.name.startswith("pcm_f")
        self.problem = None

    def _decode(self) -> Iterator[tuple[np.ndarray, int]]:
        """(samples (n, C), their rate) per decoded frame."""
        skipped = 0
        for packet in self.container.demux(self.stream):
            try:
                frames = packet.decode()
            except (self.av.FFmpegError, ValueError):
                skipped += 1  # a damaged packet: lose its few ms, as players do
                continue
            for frame in frames:
                yield _frame_array(frame), frame.sample_rate
        if skipped:
            log.warning("%s: skipped %d damaged packet(s)", self.name, skipped)

    def chunks(self, start: int = 0) -> Iterator[np.ndarray]:
        """(n, C) float32 blocks from frame `start` to the end (one pass: a reader serves one read)."""
        frames = itertools.chain([self._first] if self._first else [], self._frames)
        self._first = None
        for x, rate in frames:
            if rate != self.rate:  # a stream that changes rate mid-way: follow its first rate
                x = np.stack([resample(c, rate, self.rate) for c in x.T], 1)
            if x.shape[1] != self.channels:  # ... or its channel count
                x = np.repeat(x.mean(axis=1, keepdims=True), self.channels, axis=1)
            if start >= len(x):
                start -= len(x)
                continue
            yield x[start:]
            start = 0

    def close(self) -> None:
        self.container.close()


class _NoSamples(Exception):
    """PyAV opened the input but decoded nothing: the soundfile error explains it better."""


def _frame_array(frame: av.AudioFrame) -> np.ndarray:
    """An AudioFrame of any sample format -> (n, C) float32 in [-1, 1]."""
    x = frame.to_ndarray()
    channels = len(frame.layout.channels) or 1
    x = x.T if frame.format.is_planar else x.reshape(-1, channels)  # (C, n) or packed (1, n*C) -> (n, C)
    if x.dtype.kind == "u":  # u8: offset binary
        return (x.astype(np.float32) - 128) / 128
    if x.dtype.kind == "i":
        return x.astype(np.float32) / float(2 ** (8 * x.dtype.itemsize - 1))
    return x.astype(np.float32, copy=False)


def _container_frames(container, stream, rate: int) -> int | None:
    """The track's length in frames from the container, or None when it does not say."""
    if stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * rate)
    if container.duration:
        return int(container.duration * rate / sys.modules["av"].time_base)
    return None


def _check_format(name: str, rate: int, channels: int) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(name, f"implausible sample rate {rate} Hz (damaged header? "
                               f"readable rates are {MIN_RATE}-{MAX_RATE} Hz)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(name, f"implausible number of channels {channels} (damaged header?)")


def _truncation(header_log: str) -> str | None:
    m = _TRUNCATED.search(header_log)
    if m and 0 < int(m[2]) < int(m[1]) < _UNKNOWN_LENGTH:
        return f"truncated: header promises {m[1]} bytes of audio, file holds {m[2]}"
    return None


@contextlib.contextmanager
def _reader(name: str, src: str | io.BytesIO) -> Iterator[_SoundFile | _PyAV]:
    """Open with soundfile, else PyAV; every decoder failure becomes an AudioError."""
    try:
        r = _open(name, src)
        try:
            yield r
        finally:
            r.close()
    except AudioError:
        raise
    except PermissionError as e:
        raise AudioError(name, f"permission denied ({e.strerror})") from None
    except MemoryError:
        raise AudioError(name, "too large to decode into memory (try stream_audio)") from None
    except _decode_errors() as e:
        raise AudioError(name, f"not a readable audio file ({_short(e)})") from None
    except OSError as e:
        raise AudioError(name, f"cannot read file ({e.strerror or e})") from None


def _open(name: str, src: str | io.BytesIO) -> _SoundFile | _PyAV:
    try:
        return _SoundFile(name, src)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        first = e  # libsndfile cannot open it: maybe FFmpeg can
    try:
        return _PyAV(name, src)
    except AudioError:
        raise
    except (_NoSamples, *_decode_errors(), OSError) as e:
        detail = "no audio samples" if isinstance(e, _NoSamples) else _short(e)
        if "does not exist" in str(first):  # libsndfile's guess for a stream it gave up on: the path is fine
            raise AudioError(name, f"not a readable audio file ({detail})") from None
        raise AudioError(name, f"not a readable audio file ({_short(first)}; FFmpeg: {detail})") from None


def _short(e: BaseException) -> str:
    av = sys.modules.get("av")
    if av is not None and isinstance(e, av.FFmpegError) and e.strerror:
        return str(e.strerror)
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # libsndfile prefixes its messages with the path; the path is already in AudioError
    return msg.split(": ", 1)[-1] if msg.startswith("Error opening") else msg


# -------------------------------------------------------------------------------------------- reading

def _slice(name: str, total: int | None, sr: int, offset: float | None, duration: float | None) -> tuple[int, int]:
    """(first frame, number of frames or -1 for "to the end") of a slice given in seconds."""
    start = round((offset or 0.0) * sr)
    if start < 0 or (duration is not None and duration <= 0):
        raise AudioError(name, f"invalid segment: offset {offset}, duration {duration}")
    if total and start >= total > 0:
        raise AudioError(
            name, f"segment starts at {start / sr:.3f} s, past the end of the recording ({total / sr:.3f} s)"
        )
    if duration is None:
        return start, -1
    return start, round(((offset or 0.0) + duration) * sr) - start


def _read(name: str, r: _SoundFile | _PyAV, start: int, frames: int) -> np.ndarray:
    """Frames [start, start + frames) (frames -1: to the end) as (S, C), with every check a whole
    read makes: empty, short of the slice, truncated, NaN/inf, too short."""
    parts, got = [], 0
    for chunk in r.chunks(start):
        if frames >= 0 and got + len(chunk) >= frames:
            parts.append(chunk[: frames - got])
            got = frames
            break
        parts.append(chunk)
        got += len(chunk)
    if not got:
        if start:
            raise AudioError(name, f"segment starts at {start / r.rate:.3f} s, past the end of the recording")
        raise AudioError(name, "no audio samples (empty or truncated file)")
    if 0 <= got < frames:
        raise AudioError(name, f"segment ends past the end of the recording ({(start + frames) / r.rate:.3f} s > "
                               f"{(start + got) / r.rate:.3f} s)")
    if r.problem:
        raise AudioError(name, r.problem)
    data = parts[0] if len(parts) == 1 else np.concatenate(parts)
    _check_finite(name, data)
    if frames < 0 and start == 0:
        _check_long_enough(name, got, r.rate)
    return data


def _blocks(name: str, r: _SoundFile | _PyAV, cond: _Conditioner, block_seconds: int,
            sample_rate: int) -> Iterator[np.ndarray]:
    """Resampled mono blocks of `block_seconds`; each is resampled with about 0.1 s of context
    either side, so the blocks join into exactly what resampling the whole file gives."""
    rate = resample_rate(r.rate, sample_rate)  # what resample() takes the rate to be
    step = rate // math.gcd(rate, sample_rate)  # block and context are multiples: whole output samples
    block, ctx = block_seconds * rate, (-(-rate // 10 // step) * step if rate != sample_rate else 0)
    buf, base, pos = np.zeros(0, np.float32), 0, 0  # buf holds source frames from `base`; next block starts at `pos`

    def emit(end: int) -> np.ndarray:  # end: the last source frame known so far, + 1
        lo, n = max(0, pos - ctx), min(block, end - pos)
        wav = resample(buf[lo - base : min(end, pos + block + ctx) - base], rate, sample_rate)
        head = round((pos - lo) * sample_rate / rate)
        return np.clip(wav[head : head + -(-n * sample_rate // rate)], -1.0, 1.0)  # ceil, as the whole file

    for chunk in r.chunks():
        _check_finite(name, chunk)
        buf = np.concatenate([buf, cond(chunk)])
        while base + len(buf) >= pos + block + ctx:
            yield emit(base + len(buf))
            pos += block
            cut = max(0, pos - ctx) - base
            buf, base = buf[cut:], base + cut
    end = base + len(buf)
    if end == 0:
        raise AudioError(name, "no audio samples (empty or truncated file)")
    if pos == 0:
        _check_long_enough(name, end, r.rate)
    while pos < end:
        yield emit(end)
        pos += block


def _check_finite(name: str, data: np.ndarray) -> None:
    if not np.isfinite(data).all():
        raise AudioError(name, "contains NaN or infinite samples")


def _check_long_enough(name: str, frames: int, rate: int) -> None:
    if frames < MIN_SECONDS * rate:
        raise AudioError(name, f"too short: {frames} sample{'s' * (frames != 1)} ({1000 * frames / rate:.2f} ms; "
                               f"at least {1000 * MIN_SECONDS:.0f} ms needed)")


# ------------------------------------------------------------------------------ channels and levels

class _Conditioner:
    """One file's channel strategy, float scale and level gain: decided from its first signal,
    then applied the same way to the rest, so block-wise and whole reads agree."""

    def __init__(self, name: str, is_float: bool):
        self.name, self.is_float = name, is_float
        self.channel: int | None = None  # None: average the channels; else the one channel used
        self.decided = False
        self.divisor = 1.0
        self.gain: float | None = None

    def __call__(self, data: np.ndarray) -> np.ndarray:
        """(n, C) -> (n,) mono in [-1, 1]."""
        return self._mono(self._scale(data))

    def _scale(self, data: np.ndarray) -> np.ndarray:
        peak = float(np.abs(data).max()) if data.size else 0.0
        if peak <= 1.0 and self.divisor == 1.0:
            return data
        if self.divisor == 1.0:
            if not self.is_float:  # a lossy decoder's overshoot: clip, there is nothing to rescale
                return np.clip(data, -1.0, 1.0)
            # float samples written as if int16, the usual mistake: whole numbers, or too loud for anything else
            int16_scale = peak <= 32768.0 and (peak > 256.0 or bool(np.all(data == np.round(data))))
            self.divisor = 32768.0 if int16_scale else peak
            log.warning("%s: float samples reach %.4g, outside [-1, 1]; divided by %s", self.name, peak,
                        "32768 (int16 scale)" if int16_scale else "the peak")
        return np.clip(data / self.divisor, -1.0, 1.0)  # clip: a later block may outdo the first peak

    def _mono(self, data: np.ndarray) -> np.ndarray:
        if data.shape[1] == 1:
            return data[:, 0]
        if not self.decided:
            energy = np.mean(np.square(data), axis=0, dtype=np.float64)  # per channel
            if energy.max() < _SIGNAL_ENERGY:
                return data.mean(axis=1)  # no signal yet: nothing to decide on
            self.decided = True
            mix = np.mean(np.square(data.mean(axis=1)), dtype=np.float64)
            if mix < _CANCEL_RATIO * energy.mean():
                self.channel = int(np.argmax(energy >= 0.99 * energy.max()))  # the first of the loudest
                log.warning("%s: averaging the %d channels cancels them (%.0f dB below the channels; "
                            "anti-phase?): using channel %d alone", self.name, data.shape[1],
                            10 * np.log10(energy.mean() / max(mix, 1e-30)), self.channel + 1)
        return data[:, self.channel] if self.channel is not None else data.mean(axis=1)

    def level(self, wav: np.ndarray) -> np.ndarray:
        """normalize_level with a gain that only falls from block to block (see stream_audio)."""
        gain = _level_gain(wav)
        if gain is not None:
            self.gain = gain if self.gain is None else min(self.gain, gain)
        return wav if not self.gain or self.gain == 1.0 else (wav * self.gain).astype(np.float32)


def _level_gain(wav: np.ndarray, target: float = 0.5, max_gain_db: float = 50.0) -> float | None:
    """The gain normalize_level applies; None for audio too quiet to have a level (silence, dither)."""
    if not len(wav):
        return None
    a = np.abs(wav)
    level, peak = float(np.percentile(a, 99.9)), float(a.max())
    if level < _LEVEL_FLOOR:
        return None
    if level >= QUIET_LEVEL:  # a normal level: left exactly as it is (the models were trained on such)
        return 1.0
    return max(1.0, min(target / level, 10 ** (max_gain_db / 20), 0.99 / peak))
