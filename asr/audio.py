"""Read audio files: soundfile (libsndfile) -> mono float32 at the target rate.

Every failure, whatever its cause, surfaces as one `AudioError` naming the file and the reason,
so a caller processing a thousand files can report the broken one and carry on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16000
# libsndfile's header log for a WAV whose data chunk is cut short: "data : 32000 (should be 19956)"
_TRUNCATED = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


class AudioError(Exception):
    """An audio file could not be read. `path` and `reason` say which and why."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, offset: float | None = None,
               duration: float | None = None) -> np.ndarray:
    """Return the file's samples as float32 mono in [-1, 1] at `sample_rate` Hz, shape (S,).

    With `offset` and/or `duration` (seconds) only that slice is read (a seek, not the whole file):
    samples round(offset * sr) up to round((offset + duration) * sr) at the file's rate. A slice
    reaching past the end of the recording is an error, not silently shorter audio.
    """
    path = _check_path(path)
    try:
        with sf.SoundFile(str(path)) as f:
            sr, log = f.samplerate, f.extra_info
            start, frames = _slice(path, f.frames, sr, offset, duration)
            if start:
                f.seek(start)
            data = f.read(frames, dtype="float32", always_2d=True)  # (S, C)
    except PermissionError as e:
        raise AudioError(path, f"permission denied ({e.strerror})") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from None
    except OSError as e:
        raise AudioError(path, f"cannot read file ({e.strerror or e})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "no audio samples (empty or truncated file)")
    if frames >= 0 and data.shape[0] < frames:
        raise AudioError(path, f"segment ends past the end of the recording ({(start + frames) / sr:.3f} s > "
                               f"{(start + data.shape[0]) / sr:.3f} s)")
    truncated = _TRUNCATED.search(log)
    if truncated and 0 < int(truncated[2]) < int(truncated[1]) < 0xFFFFFFF0:  # 0xFFFFFFFF: length unknown
        raise AudioError(path, f"truncated: header promises {truncated[1]} bytes of audio, file holds {truncated[2]}")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or infinite samples")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return resample(wav, sr, sample_rate)


def stream_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, block_seconds: int = 30) -> Iterator[np.ndarray]:
    """Yield the file's audio as consecutive mono float32 blocks at `sample_rate`, reading one
    block at a time: memory stays flat however long the recording. The same checks and errors as
    `load_audio` (header problems raise before the first block). Each block is resampled with
    0.1 s of context on both sides, so block edges leave no trace in the output."""
    path = _check_path(path)
    audio_duration(path)  # header and truncation checks
    try:
        with sf.SoundFile(str(path)) as f:
            sr, total = f.samplerate, f.frames
            block, ctx = block_seconds * sr, (sr // 10 if sr != sample_rate else 0)
            for start in range(0, total, block):
                lo = max(0, start - ctx)
                f.seek(lo)
                data = f.read(min(total, start + block + ctx) - lo, dtype="float32", always_2d=True)
                if not np.isfinite(data).all():
                    raise AudioError(path, "contains NaN or infinite samples")
                wav = resample(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0], sr, sample_rate)
                head = round((start - lo) * sample_rate / sr)
                n = round(min(block, total - start) * sample_rate / sr)
                yield wav[head : head + n]
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from None
    except OSError as e:
        raise AudioError(path, f"cannot read file ({e.strerror or e})") from None


def _check_path(path: str | Path) -> Path:
    """The failures a file system can tell us about, with their plain reasons."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found" + (" (dangling link)" if path.is_symlink() else ""))
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    return path


def _slice(path: Path, total: int, sr: int, offset: float | None, duration: float | None) -> tuple[int, int]:
    """(first frame, number of frames or -1 for "to the end") of a slice given in seconds."""
    start = round((offset or 0.0) * sr)
    if start < 0 or (duration is not None and duration <= 0):
        raise AudioError(path, f"invalid segment: offset {offset}, duration {duration}")
    if start >= total > 0:
        raise AudioError(path, f"segment starts at {start / sr:.3f} s, past the end of the recording ({total / sr:.3f} s)")
    if duration is None:
        return start, -1
    return start, round(((offset or 0.0) + duration) * sr) - start


def resample(wav: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    if orig_sr == target_sr:
        return np.ascontiguousarray(wav, dtype=np.float32)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), orig_sr, target_sr)
    return out.numpy()


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header (cheap); raises AudioError like load_audio."""
    path = _check_path(path)
    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from None
    if info.frames <= 0:
        raise AudioError(path, "no audio samples (empty or truncated file)")
    truncated = _TRUNCATED.search(info.extra_info)  # the same header check as load_audio's, still cheap
    if truncated and 0 < int(truncated[2]) < int(truncated[1]) < 0xFFFFFFF0:
        raise AudioError(path, f"truncated: header promises {truncated[1]} bytes of audio, file holds {truncated[2]}")
    return info.frames / info.samplerate


def save_audio(path: str | Path, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(wav, dtype=np.float32), sample_rate, subtype="PCM_16")


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # libsndfile prefixes its messages with the path; the path is already in AudioError
    return msg.split(": ", 1)[-1] if msg.startswith("Error opening") else msg
