"""Waveform -> speech or not, frame by frame: the band-energy detector, and what every detector does.

Detectors (`Detector`: this `EnergyVAD`, or `asr.audio.silero.SileroVAD`) stream (`start`, `feed` blocks,
then `scores` of a window) and say which frames hold speech (`speech`) and how likely a segment is speech
(`probability`). Nothing here needs torch: silero lives in `asr.audio.silero`, with `make_vad`, which
builds a detector by name, so that the segmenter and the ONNX Runtime path stay torch-free."""

from __future__ import annotations

from typing import Protocol

import numpy as np

FRAME = 0.025  # seconds


HOP = 0.01


VADS = ("silero", "energy")


def frame_energy_db(wav: np.ndarray, sample_rate: int, band: tuple[float, float] = (250.0, 4000.0)) -> np.ndarray:
    """Energy in the speech band of each 25 ms frame every 10 ms, in dB relative to full scale.
    Band-limited, so rumble and hiss (most of the energy of brown or blue noise) do not count."""
    win, hop = int(FRAME * sample_rate), int(HOP * sample_rate)
    if len(wav) < win:
        wav = np.pad(wav, (0, win - len(wav)))
    n_fft = 1 << (win - 1).bit_length()
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    keep = (freqs >= band[0]) & (freqs <= band[1])
    window = np.hanning(win).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(wav, win)[::hop]
    out = np.empty(len(frames))
    for i in range(0, len(frames), 4096):  # in chunks: bounded memory for hour-long audio
        spec = np.abs(np.fft.rfft(frames[i : i + 4096] * window, n_fft, axis=1)[:, keep]) ** 2
        out[i : i + 4096] = spec.sum(1) * 2 / (win * (window**2).mean() * win)
    return 10 * np.log10(out + 1e-12)


def speech_frames(energy_db: np.ndarray, margin_db: float = 6.0, floor_db: float = -55.0) -> np.ndarray:
    """Which frames are speech: well above the stretch's quiet floor, and not near digital silence."""
    quiet = np.percentile(energy_db, 10)
    return (energy_db > quiet + margin_db) & (energy_db > floor_db)


def has_speech(wav: np.ndarray, sample_rate: int, min_speech: float = 0.2, margin_db: float = 6.0) -> bool:
    """At least `min_speech` seconds of speech frames."""
    return int(speech_frames(frame_energy_db(wav, sample_rate), margin_db).sum()) * HOP >= min_speech


def pauses(speech: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """(first, last + 1) frame of each run of non-speech at least `min_frames` long."""
    edges = np.diff(np.concatenate([[1], speech.astype(np.int8), [1]]))
    starts, ends = np.nonzero(edges == -1)[0], np.nonzero(edges == 1)[0]
    return [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= min_frames]


def n_frames(samples: int, sample_rate: int) -> int:
    """How many 25 ms frames every 10 ms `frame_energy_db` gives for `samples` (at least one)."""
    win, hop = int(FRAME * sample_rate), int(HOP * sample_rate)
    return (max(samples, win) - win) // hop + 1


class Detector(Protocol):
    name: str

    def start(self) -> None: ...
    def feed(self, block: np.ndarray, last: bool = False) -> None: ...
    def scores(self, wav: np.ndarray, offset: int) -> np.ndarray: ...
    def speech(self, scores: np.ndarray) -> np.ndarray: ...
    def probability(self, scores: np.ndarray) -> float | None: ...


class EnergyVAD:
    """Scores: each frame's speech-band energy (dB). Speech: `margin_db` above the quiet floor of
    the stretch judged and above -55 dBFS. No probability."""

    name = "energy"

    def __init__(self, sample_rate: int, margin_db: float = 6.0):
        self.sample_rate, self.margin_db = sample_rate, margin_db

    def start(self) -> None:
        """A new recording begins."""

    def feed(self, block: np.ndarray, last: bool = False) -> None:
        """The recording's next samples, as they arrive (`last`: the recording ends here)."""

    def scores(self, wav: np.ndarray, offset: int) -> np.ndarray:
        """Per-frame scores of `wav`, which starts `offset` samples into the recording (fed already)."""
        return frame_energy_db(wav, self.sample_rate)

    def speech(self, scores: np.ndarray) -> np.ndarray:
        return speech_frames(scores, self.margin_db)

    def probability(self, scores: np.ndarray) -> float | None:
        return None


def checked_vad(name: str) -> str:
    """`name`, or a ValueError if it names no detector we have."""
    if name not in VADS:
        raise ValueError(f"unknown voice activity detector {name!r} (one of {', '.join(VADS)})")
    return name
