"""Read audio files: soundfile (libsndfile) -> mono float32 at the target rate.

Every failure, whatever its cause, surfaces as one `AudioError` naming the file and the reason,
so a caller processing a thousand files can report the broken one and carry on.
"""

from __future__ import annotations

import re
from pathlib import Path

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


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return the file's samples as float32 mono in [-1, 1] at `sample_rate` Hz, shape (S,)."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        with sf.SoundFile(str(path)) as f:
            sr, log = f.samplerate, f.extra_info
            data = f.read(dtype="float32", always_2d=True)  # (S, C)
    except PermissionError as e:
        raise AudioError(path, f"permission denied ({e.strerror})") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from None
    except OSError as e:
        raise AudioError(path, f"cannot read file ({e.strerror or e})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "no audio samples (empty or truncated file)")
    truncated = _TRUNCATED.search(log)
    if truncated and 0 < int(truncated[2]) < int(truncated[1]) < 0xFFFFFFF0:  # 0xFFFFFFFF: length unknown
        raise AudioError(path, f"truncated: header promises {truncated[1]} bytes of audio, file holds {truncated[2]}")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or infinite samples")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return resample(wav, sr, sample_rate)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    if orig_sr == target_sr:
        return np.ascontiguousarray(wav, dtype=np.float32)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), orig_sr, target_sr)
    return out.numpy()


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header (cheap); raises AudioError like load_audio."""
    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from None
    if info.frames <= 0:
        raise AudioError(path, "no audio samples (empty or truncated file)")
    return info.frames / info.samplerate


def save_audio(path: str | Path, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(wav, dtype=np.float32), sample_rate, subtype="PCM_16")


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # libsndfile prefixes its messages with the path; the path is already in AudioError
    return msg.split(": ", 1)[-1] if msg.startswith("Error opening") else msg
