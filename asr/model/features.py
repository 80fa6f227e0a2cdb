"""Waveforms -> normalized feature frames: log-mel or MFCC, CMVN, SpecAugment; or Whisper's log-mel.

`Features` is an nn.Module so the same code (and the same stored statistics) serves training,
evaluation and transcription, batched, on whatever device the model lives on.

Whisper's log-mel (`kind: whisper_logmel`) is computed exactly as openai-whisper does, so imported
Whisper models see what they were trained on; with `pad_to_seconds: 30` every waveform is
zero-padded to the 30 s window first, and the whole window is the encoder's input (its length).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio.transforms as T
from torch import Tensor, nn

from asr.config import FeatureConfig, SpecAugmentConfig
from asr.model.masks import lengths_to_mask

LOG_FLOOR = 1e-6
WHISPER_DYNAMIC_RANGE = 8.0  # log10 units kept below each utterance's loudest bin (80 dB)


def mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> Tensor:
    """(n_mels, n_fft/2 + 1) Slaney mel filterbank: librosa's, of which Whisper's mel_filters.npz is a copy."""
    import librosa  # only Whisper features need it; importing it costs a second

    return torch.from_numpy(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)).float()


def dft_power(wav: Tensor, n_fft: int, hop: int, window: Tensor) -> Tensor:
    """torch.stft's power spectrum (center framing, reflect padding) as one strided convolution with
    the windowed DFT basis: (B, S) -> (B, n_fft/2+1, S/hop + 1). For ONNX graphs: ONNX Runtime's STFT
    operator took 39% of a 15-second Whisper encoder pass, the convolution is a matrix product."""
    k = torch.arange(n_fft // 2 + 1, device=wav.device, dtype=torch.float64)[:, None]
    angle = 2 * torch.pi * k * torch.arange(n_fft, device=wav.device, dtype=torch.float64) / n_fft
    basis = (torch.cat([torch.cos(angle), -torch.sin(angle)]) * window.double()).to(wav.dtype)[:, None]
    x = F.pad(wav[:, None], (n_fft // 2, n_fft // 2), mode="reflect")
    re, im = F.conv1d(x, basis, stride=hop).chunk(2, dim=1)
    return re**2 + im**2


def whisper_log_mel(wav: Tensor, lens: Tensor, filters: Tensor, hop: int, by_conv: bool = False) -> Tensor:
    """(B, S) waveforms -> (B, S // hop, n_mels) Whisper log-mel, each row floored 8 below its own
    maximum over its first `lens` frames (openai-whisper's `log_mel_spectrogram`, batched). `by_conv`:
    the spectrum by `dft_power` rather than torch.stft (the same to float32 rounding)."""
    n_fft = 2 * (filters.shape[1] - 1)
    if wav.shape[1] <= n_fft // 2:  # reflect padding needs more samples than half a window
        wav = F.pad(wav, (0, n_fft // 2 + 1 - wav.shape[1]))
    window = torch.hann_window(n_fft, device=wav.device)  # periodic, as torch.stft in Whisper
    if by_conv:
        power = dft_power(wav, n_fft, hop, window)[..., :-1]
    else:
        stft = torch.stft(wav, n_fft, hop, window=window, return_complex=True)  # (B, n_fft/2+1, S/hop + 1)
        power = stft[..., :-1].abs() ** 2  # Whisper drops the last frame
    log_spec = (filters @ power).clamp(min=1e-10).log10().transpose(1, 2)  # (B, T, n_mels)
    valid = lengths_to_mask(lens, log_spec.shape[1])[:, :, None]
    peak = log_spec.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
    log_spec = torch.maximum(log_spec, peak - WHISPER_DYNAMIC_RANGE)
    return (log_spec + 4.0) / 4.0


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
        elif cfg.kind == "whisper_logmel":  # the window is n_fft long (Whisper: 400 = 25 ms); win_ms is unused
            self.mel = None
            # not persistent: computed from the config, so model files need not carry it
            self.register_buffer("mel_filters", mel_filters(cfg.sample_rate, cfg.n_fft, cfg.n_mels), persistent=False)
            self.dim = cfg.n_mels
            self.dft_by_conv = False  # the ONNX export sets it (dft_power)
        else:
            raise ValueError(f"features.kind must be 'logmel', 'mfcc' or 'whisper_logmel', not {cfg.kind!r}")
        if cfg.normalize not in ("global", "utterance", "running", "none"):
            raise ValueError(f"features.normalize must be global|utterance|running|none, not {cfg.normalize!r}")
        if cfg.normalize == "running" and cfg.running_prior < 1:
            raise ValueError(f"features.running_prior must be at least 1 frame, not {cfg.running_prior}")
        # Global CMVN statistics, estimated on the training set and saved with the model.
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("std", torch.ones(self.dim))

    def num_frames(self, num_samples: Tensor) -> Tensor:
        if self.cfg.pad_to_seconds > 0:  # every utterance fills the window
            num_samples = torch.full_like(num_samples, self.window_samples)
        elif self.cfg.min_seconds > 0:  # ... or at least the shortest window
            num_samples = num_samples.clamp(min=self.min_samples)
        if self.cfg.kind == "whisper_logmel":
            return num_samples // self.hop  # center=True framing, the last frame dropped
        return num_samples // self.hop + 1  # center=True framing

    @property
    def window_samples(self) -> int:
        return int(round(self.cfg.pad_to_seconds * self.cfg.sample_rate))

    @property
    def min_samples(self) -> int:
        return int(round(self.cfg.min_seconds * self.cfg.sample_rate))

    def fill_window(self, wav: Tensor) -> Tensor:
        """(B, S) -> (B, window) waveforms: zero-padded, or cut (as Whisper's pad_or_trim) where longer."""
        n = self.window_samples
        return F.pad(wav, (0, n - wav.shape[1])) if wav.shape[1] < n else wav[:, :n]

    def raw(self, wav: Tensor, wav_lens: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S) waveforms -> un-normalized (B, T, F) frames and their lengths."""
        if self.cfg.pad_to_seconds > 0:
            wav = self.fill_window(wav)
        elif wav.shape[1] < self.min_samples:
            wav = F.pad(wav, (0, self.min_samples - wav.shape[1]))
        with torch.autocast(device_type=wav.device.type, enabled=False):
            if self.cfg.kind == "whisper_logmel":
                lens = self.num_frames(wav_lens).clamp(max=wav.shape[1] // self.hop)
                return whisper_log_mel(wav.float(), lens, self.mel_filters, self.hop, self.dft_by_conv), lens
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
        elif self.cfg.normalize == "running":
            x = running_normalized(x, self.mean, self.std, self.cfg.running_prior)
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


def running_normalized(x: Tensor, mean: Tensor, std: Tensor, prior: int) -> Tensor:
    """(B, T, F) frames, each normalized by the mean and variance of its utterance up to it, counted
    from `prior` frames of the global `mean` and `std`: frame t never depends on a later one, so
    frames computed while streaming stay what the whole utterance gives (padding after the end too)."""
    x64 = x.double()
    n = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=torch.float64)[None, :, None] + prior
    m = (x64.cumsum(1) + prior * mean.double()) / n
    var = ((x64**2).cumsum(1) + prior * (std.double() ** 2 + mean.double() ** 2)) / n - m**2
    return ((x64 - m) / (var.clamp(min=1e-8).sqrt() + 1e-5)).to(x.dtype)


def warp_frequencies(x: Tensor, factors: Tensor) -> Tensor:
    """(B, T, F) features with each row's frequency axis stretched by factors (B,): bin f takes the
    value at f / factor (linear interpolation; past the top, the top bin). 1 leaves a row as it was."""
    F = x.shape[2]
    src = (torch.arange(F, device=x.device, dtype=x.dtype)[None, :] / factors[:, None].to(x.dtype)).clamp(0, F - 1)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=F - 1)
    w = (src - lo.to(x.dtype))[:, None, :]
    expand = (-1, x.shape[1], -1)
    return x.gather(2, lo[:, None, :].expand(expand)) * (1 - w) + x.gather(2, hi[:, None, :].expand(expand)) * w


def colour(x: Tensor, lens: Tensor, amps: Tensor) -> Tensor:
    """(B, T, F) features plus, in each row's first lens frames, a smooth curve across the bins:
    sum over k of amps[:, k-1] * cos(pi k (f + 1/2) / F), k = 1..K (a tilt, a bump, ...; no level change)."""
    B, T_, F = x.shape
    f = torch.arange(F, device=x.device, dtype=x.dtype) + 0.5
    k = torch.arange(1, amps.shape[1] + 1, device=x.device, dtype=x.dtype)
    curves = amps.to(x.dtype) @ torch.cos(torch.pi * k[:, None] * f[None, :] / F)  # (B, F)
    return x + curves[:, None, :] * lengths_to_mask(lens, T_)[:, :, None]


def spec_augment(x: Tensor, lens: Tensor, cfg: SpecAugmentConfig, generator: torch.Generator | None = None) -> Tensor:
    """Zero random frequency bands and time spans of (B, T, F) normalized features (training only);
    first, with `warp_prob`, stretch some rows' frequency axes (`warp_frequencies`), and with `eq_prob` colour
    some rows' spectra (`colour`)."""
    B, T_, F = x.shape
    x = x.clone()
    dev = x.device

    def rand(n: int) -> Tensor:
        return torch.rand(n, generator=generator).to(dev)

    if cfg.warp_prob > 0:
        lo, hi = cfg.warp_factors
        factors = torch.where(rand(B) < cfg.warp_prob, lo + (hi - lo) * rand(B), torch.ones(B, device=dev))
        x = warp_frequencies(x, factors)
    if cfg.eq_prob > 0:
        amps = (2 * torch.rand(B, cfg.eq_terms, generator=generator) - 1) * cfg.eq_scale
        amps = amps.to(dev) * (rand(B) < cfg.eq_prob)[:, None]
        x = colour(x, lens, amps)

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
