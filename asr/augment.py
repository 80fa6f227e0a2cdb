"""Waveform augmentation for training: speed perturbation, additive noise, reverberation, telephone band.

`Augmenter(cfg, sample_rate, seed)(wav, epoch, index)` transforms one utterance in a data worker.
Its random choices come from a generator seeded with (seed, epoch, utterance index) only, never
from the worker process's RNG state, so the same utterance in the same epoch always gets the same
audio: runs are reproducible and a resumed run matches an uninterrupted one bit for bit.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torchaudio.functional as AF
from torch import Tensor

from .audio import AUDIO_EXTENSIONS, AudioError, load_audio
from .config import AugmentConfig
from .rng import derive_seed
from .storage import read_jsonl

log = logging.getLogger(__name__)
TELEPHONE_BAND = (300.0, 3400.0)
TELEPHONE_RATE = 8000


def speed_perturb(wav: Tensor, factor: float, sample_rate: int) -> Tensor:
    """Play `wav` `factor` times faster (pitch moves with it): the length becomes len / factor."""
    if factor == 1.0:
        return wav
    # resampling from rate*factor to rate keeps every sample but shortens the signal by `factor`
    orig, new = int(round(sample_rate * factor)), sample_rate
    g = math.gcd(orig, new)
    return AF.resample(wav, orig // g, new // g)


def colored_noise(num_samples: int, color: str, generator: torch.Generator) -> Tensor:
    """White (flat), pink (1/f power) or brown (1/f^2 power) Gaussian noise, unit variance."""
    white = torch.randn(num_samples, generator=generator)
    if color == "white":
        return white
    exponent = {"pink": 0.5, "brown": 1.0}[color]  # amplitude ~ f^-exponent
    spec = torch.fft.rfft(white)
    freqs = torch.arange(spec.shape[0], dtype=torch.float32).clamp(min=1.0)
    noise = torch.fft.irfft(spec / freqs**exponent, n=num_samples)
    noise = noise - noise.mean()
    return noise / noise.std().clamp(min=1e-12)


def add_noise(wav: Tensor, noise: Tensor, snr_db: float) -> Tensor:
    """wav + noise scaled so that 10 log10(P_wav / P_noise) = snr_db (noise looped or cut to length)."""
    if noise.shape[0] < wav.shape[0]:
        noise = noise.repeat(math.ceil(wav.shape[0] / noise.shape[0]))
    noise = noise[: wav.shape[0]]
    p_wav, p_noise = wav.pow(2).mean(), noise.pow(2).mean()
    if p_wav == 0 or p_noise == 0:
        return wav
    scale = torch.sqrt(p_wav / (p_noise * 10 ** (snr_db / 10)))
    return wav + scale * noise


def synthetic_rir(rt60: float, sample_rate: int, generator: torch.Generator) -> Tensor:
    """A room impulse response: a direct path, then Gaussian reflections decaying by 60 dB in rt60 s."""
    n = max(2, int(rt60 * sample_rate))
    t = torch.arange(n, dtype=torch.float32) / sample_rate
    rir = torch.randn(n, generator=generator) * torch.exp(-3 * math.log(10) * t / rt60)  # 20 log10: -60 dB at rt60
    rir[0] = 1.0  # direct sound
    return rir / rir.norm()


def reverberate(wav: Tensor, rir: Tensor) -> Tensor:
    """Convolve with `rir` (FFT), keep the original length and RMS level."""
    out = AF.fftconvolve(wav, rir)[: wav.shape[0]]
    rms_in, rms_out = wav.pow(2).mean().sqrt(), out.pow(2).mean().sqrt()
    return out * (rms_in / rms_out) if rms_out > 0 else out


def telephone(wav: Tensor, sample_rate: int, mulaw: bool = True) -> Tensor:
    """A narrow-band telephone channel: down to 8 kHz, 300-3400 Hz band, optional 8-bit mu-law, back up."""
    x = AF.resample(wav, sample_rate, TELEPHONE_RATE) if sample_rate != TELEPHONE_RATE else wav
    spec = torch.fft.rfft(x)
    freqs = torch.fft.rfftfreq(x.shape[0], 1 / TELEPHONE_RATE)
    spec[(freqs < TELEPHONE_BAND[0]) | (freqs > TELEPHONE_BAND[1])] = 0  # the channel's band-pass
    x = torch.fft.irfft(spec, n=x.shape[0])
    if mulaw:
        peak = x.abs().max().clamp(min=1e-8)
        x = AF.mu_law_decoding(AF.mu_law_encoding(x / peak, 256), 256) * peak
    if sample_rate != TELEPHONE_RATE:
        x = AF.resample(x, TELEPHONE_RATE, sample_rate)
    return x


class Augmenter:
    """The configured chain (speed -> reverberation -> noise -> telephone) for one utterance at a time."""

    def __init__(self, cfg: AugmentConfig, sample_rate: int, seed: int):
        self.cfg, self.sample_rate, self.seed = cfg, sample_rate, seed
        self.noise_files = _noise_files(cfg.noise_manifest) if cfg.noise_manifest else []

    @property
    def enabled(self) -> bool:
        c = self.cfg
        return any(f != 1.0 for f in c.speed_factors) or c.noise_prob > 0 or c.reverb_prob > 0 or c.telephone_prob > 0

    def __call__(self, wav: Tensor, epoch: int, index: int) -> Tensor:
        if not self.enabled:
            return wav
        c = self.cfg
        gen = torch.Generator().manual_seed(derive_seed(self.seed, epoch, index))

        def uniform(lo: float = 0.0, hi: float = 1.0) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=gen))

        # every draw happens whether or not its effect is applied, so choices stay aligned
        speed = c.speed_factors[int(torch.randint(len(c.speed_factors), (), generator=gen))] if c.speed_factors else 1.0
        do_reverb, rt60 = uniform() < c.reverb_prob, uniform(*c.rt60)
        do_noise, snr = uniform() < c.noise_prob, uniform(*c.noise_snr_db)
        do_phone = uniform() < c.telephone_prob
        wav = speed_perturb(wav, speed, self.sample_rate)
        if do_reverb:
            wav = reverberate(wav, synthetic_rir(rt60, self.sample_rate, gen))
        if do_noise:
            wav = add_noise(wav, self._noise(wav.shape[0], gen), snr)
        if do_phone:
            wav = telephone(wav, self.sample_rate, c.telephone_mulaw)
        return wav.float().contiguous()

    def _noise(self, num_samples: int, gen: torch.Generator) -> Tensor:
        if self.noise_files:
            path = self.noise_files[int(torch.randint(len(self.noise_files), (), generator=gen))]
            try:
                noise = torch.from_numpy(load_audio(path, self.sample_rate))
                if noise.shape[0] > num_samples:  # a random excerpt of a long recording
                    start = int(torch.randint(noise.shape[0] - num_samples + 1, (), generator=gen))
                    noise = noise[start : start + num_samples]
                return noise
            except AudioError as err:
                log.warning("noise file unusable, using generated noise: %s", err)
        color = ("white", "pink", "brown")[int(torch.randint(3, (), generator=gen))]
        return colored_noise(num_samples, color, gen)


def _noise_files(source: str) -> list[str]:
    """Audio paths from a folder (searched recursively) or a JSONL manifest with an "audio" field."""
    path = Path(source)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    else:
        files = [row["audio"] for row in read_jsonl(path)]
    if not files:
        raise ValueError(f"augment.noise_manifest {source!r} holds no audio files")
    return files
