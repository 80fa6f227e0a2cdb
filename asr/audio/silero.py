"""silero-vad as a streaming speech detector (torch), and `make_vad`: a detector by name.

Kept apart from `asr.audio.vad` (numpy only) so that what needs no model, the energy detector and the
segmenter, never imports torch (the ONNX Runtime path relies on it: tests/test_structure.py)."""

from __future__ import annotations

import logging
import threading
import warnings

import numpy as np
import torch

from asr.audio.vad import FRAME, HOP, Detector, EnergyVAD, checked_vad, n_frames

log = logging.getLogger(__name__)


class SileroVAD:
    """Scores: silero-vad's speech probability of the 32 ms chunk holding each frame's centre.
    Each chunk of a recording is scored once, as the recording is fed, so overlapping windows
    cost nothing more. Speech: from `threshold` up, and on down to `threshold - 0.15` once begun
    (silero's own hysteresis). Runs on the CPU on one thread (its steps are too small to share):
    what has been fed is scored as up to 16 parallel rows of at least a second, each hearing the
    half second before it first, so that its fresh state has settled (6x faster than one row)."""

    name = "silero"
    WARM = 16  # chunks (0.5 s) a row hears before its own
    _local = threading.local()  # one loaded model per thread (its state belongs to one call), fetched per call

    def __init__(self, sample_rate: int, threshold: float = 0.5):
        if sample_rate not in (8000, 16000):
            raise ValueError(f"silero-vad runs at 8 or 16 kHz, not {sample_rate} Hz")
        self.sample_rate, self.threshold = sample_rate, threshold
        self.chunk = sample_rate // 1000 * 32
        self._load()  # here, so that a missing silero-vad is known at once (the caller falls back to energy)
        self.start()

    @classmethod
    def _load(cls):
        if getattr(cls._local, "model", None) is None:
            threads = torch.get_num_threads()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch.jit's deprecation notice
                    from silero_vad import load_silero_vad
                    cls._local.model = load_silero_vad()  # the TorchScript model in the wheel: no onnxruntime
            finally:
                torch.set_num_threads(threads)  # importing silero_vad sets one thread for the whole process
        return cls._local.model

    def start(self) -> None:
        self.probs = np.zeros(0, np.float32)  # per chunk of the recording so far
        self.pending = np.zeros(0, np.float32)  # samples fed but not yet scored
        self.history = np.zeros(0, np.float32)  # the last WARM chunks scored
        self.fed = 0  # samples of the recording fed

    def feed(self, block: np.ndarray, last: bool = False) -> None:
        self.pending = np.concatenate([self.pending, block])
        self.fed += len(block)
        if last:
            self.pending = np.pad(self.pending, (0, -len(self.pending) % self.chunk))

    def scores(self, wav: np.ndarray, offset: int) -> np.ndarray:
        assert offset + len(wav) <= self.fed, "score only what has been fed"
        self._run()
        hop, win = int(HOP * self.sample_rate), int(FRAME * self.sample_rate)
        centres = offset + np.arange(n_frames(len(wav), self.sample_rate)) * hop + win // 2
        if not len(self.probs):  # shorter than one chunk so far: nothing heard yet
            return np.zeros(len(centres), np.float32)
        return self.probs[np.minimum(centres // self.chunk, len(self.probs) - 1)]

    def _run(self) -> None:
        n, c, warm = len(self.pending) // self.chunk, self.chunk, self.WARM
        if not n:
            return
        rows = max(1, min(16, n // 32))
        per = -(-n // rows)
        audio = np.concatenate([self.history, self.pending[: n * c]])
        h = len(self.history) // c
        x = np.zeros((rows, warm + per, c), np.float32)  # (row, step, sample); zeros before the start, after the end
        for r in range(rows):
            first = h + r * per - warm  # the row's first chunk (warm-up included) in `audio`
            piece = audio[max(0, first) * c : (h + min(n, (r + 1) * per)) * c].reshape(-1, c)
            x[r, max(0, -first) : max(0, -first) + len(piece)] = piece
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            model = self._load()  # this thread's: a detector made on one thread may score on another (a server's)
            model.reset_states()
            with torch.inference_mode():
                p = torch.cat([model(torch.from_numpy(x[:, k]), self.sample_rate) for k in range(warm + per)], 1)
        finally:
            torch.set_num_threads(threads)
        self.probs = np.concatenate([self.probs, p[:, warm:].reshape(-1)[:n].numpy()])
        self.history = audio[-warm * c :]
        self.pending = self.pending[n * c :]

    def speech(self, scores: np.ndarray) -> np.ndarray:
        out, on = np.zeros(len(scores), bool), False
        for i, p in enumerate(scores):
            on = p >= self.threshold or (on and p >= self.threshold - 0.15)
            out[i] = on
        return out

    def probability(self, scores: np.ndarray) -> float | None:
        return float(np.mean(scores)) if len(scores) else None


def make_vad(name: str, sample_rate: int, margin_db: float = 6.0) -> Detector:
    """The detector called `name` (one of VADS); silero falls back to energy, with a warning,
    where silero-vad is not installed or cannot run at `sample_rate`."""
    checked_vad(name)
    if name == "silero":
        try:
            return SileroVAD(sample_rate)
        except (ImportError, ValueError) as e:
            log.warning("silero VAD unavailable (%s): using the energy detector", e)
    return EnergyVAD(sample_rate, margin_db)
