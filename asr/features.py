"""Waveforms -> normalized feature frames: log-mel or MFCC, CMVN, SpecAugment.

`Features` is an nn.Module so the same code (and the same stored statistics) serves training,
evaluation and transcription, batched, on whatever device the model lives on.
"""

from __future__ import annotations

import torch
import torchaudio.transforms as T
from torch import Tensor, nn

from .config import FeatureConfig, SpecAugmentConfig
from .masks import lengths_to_mask

LOG_FLOOR = 1e-6


class Features(nn.Module):
    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg
        self.hop = int(round(cfg.sample_rate * cfg.hop_ms / 1000))
        win = int(round(cfg.sample_rate * cfg.win_ms / 1000))
        mel_kwargs = dict(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, win_length=win, hop_length=self.hop,
            n_mels=cfg.n_mels, center=True, pad_mode="reflect", power=2.0,
            norm="slaney", mel_scale="slaney",  # librosa's defaults, so the two agree
        )
        if cfg.kind == "logmel":
            self.mel = T.MelSpectrogram(**mel_kwargs)
            self.dim = cfg.n_mels
        elif cfg.kind == "mfcc":
            mel_kwargs.pop("sample_rate")
            self.mel = T.MFCC(sample_rate=cfg.sample_rate, n_mfcc=cfg.n_mfcc, log_mels=True, melkwargs=mel_kwargs)
            self.dim = cfg.n_mfcc
        else:
            raise ValueError(f"features.kind must be 'logmel' or 'mfcc', not {cfg.kind!r}")
        if cfg.normalize not in ("global", "utterance", "none"):
            raise ValueError(f"features.normalize must be global|utterance|none, not {cfg.normalize!r}")
        # Global CMVN statistics, estimated on the training set and saved with the model.
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("std", torch.ones(self.dim))

    def num_frames(self, num_samples: Tensor) -> Tensor:
        return num_samples // self.hop + 1  # center=True framing

    def raw(self, wav: Tensor, wav_lens: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S) waveforms -> un-normalized (B, T, F) frames and their lengths."""
        with torch.autocast(device_type=wav.device.type, enabled=False):
            x = self.mel(wav.float())  # (B, F, T)
        if self.cfg.kind == "logmel":
            x = torch.log(x + LOG_FLOOR)
        x = x.transpose(1, 2)  # (B, T, F)
        lens = self.num_frames(wav_lens).clamp(max=x.shape[1])
        return x, lens

    def forward(self, wav: Tensor, wav_lens: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S) waveforms -> normalized (B, T, F) frames (zero beyond each length), lengths."""
        x, lens = self.raw(wav, wav_lens)
        valid = lengths_to_mask(lens, x.shape[1]).unsqueeze(-1)  # (B, T, 1)
        if self.cfg.normalize == "global":
            x = (x - self.mean) / self.std
        elif self.cfg.normalize == "utterance":
            n = lens.clamp(min=1).view(-1, 1, 1).to(x.dtype)
            mean = (x * valid).sum(1, keepdim=True) / n
            var = ((x - mean) ** 2 * valid).sum(1, keepdim=True) / n
            x = (x - mean) / (var.sqrt() + 1e-5)
        return x * valid, lens

    @torch.no_grad()
    def set_stats(self, batches) -> int:
        """Estimate global mean/std from an iterable of (wav, wav_lens); returns frames seen."""
        total = torch.zeros(self.dim, dtype=torch.float64)
        sq = torch.zeros(self.dim, dtype=torch.float64)
        count = 0
        for wav, wav_lens in batches:
            x, lens = self.raw(wav, wav_lens)
            valid = lengths_to_mask(lens, x.shape[1])
            frames = x[valid].double()  # (N, F)
            total += frames.sum(0)
            sq += (frames**2).sum(0)
            count += frames.shape[0]
        if count == 0:
            raise ValueError("cannot estimate feature statistics from zero frames")
        mean = total / count
        std = (sq / count - mean**2).clamp(min=1e-8).sqrt()
        self.mean.copy_(mean.float())
        self.std.copy_(std.float())
        return count


def spec_augment(x: Tensor, lens: Tensor, cfg: SpecAugmentConfig, generator: torch.Generator | None = None) -> Tensor:
    """Zero random frequency bands and time spans of (B, T, F) normalized features (training only)."""
    B, T_, F = x.shape
    x = x.clone()
    dev = x.device

    def rand(n: int) -> Tensor:
        return torch.rand(n, generator=generator).to(dev)

    freqs = torch.arange(F, device=dev)
    for _ in range(cfg.freq_masks):
        width = (rand(B) * (min(cfg.freq_width, F) + 1)).long()  # (B,)
        start = (rand(B) * (F - width + 1).float()).long()
        band = (freqs >= start[:, None]) & (freqs < (start + width)[:, None])  # (B, F)
        x = x.masked_fill(band[:, None, :], 0.0)
    times = torch.arange(T_, device=dev)
    for _ in range(cfg.time_masks):
        max_w = (lens.float() * cfg.time_width).clamp(max=cfg.max_time_width)
        width = (rand(B) * (max_w + 1)).long()
        start = (rand(B) * (lens - width + 1).clamp(min=1).float()).long()
        span = (times >= start[:, None]) & (times < (start + width)[:, None])  # (B, T)
        x = x.masked_fill(span[:, :, None], 0.0)
    return x
