"""Waveform augmentation: each effect does what it claims, and the chain is a pure function of
(seed, epoch, utterance index), in the main process or in any data worker."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from asr.augment import (Augmenter, add_noise, colored_noise, reverberate, speed_perturb, synthetic_rir,
                         telephone)
from asr.config import AugmentConfig
from asr.data import SpeechDataset, collate

SR = 16000


def speechlike(seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Harmonics of a wobbling 150 Hz pitch under a syllable-rate envelope: broadband, like speech."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    f0 = 150 + 20 * torch.sin(2 * math.pi * 3 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SR
    x = sum(torch.sin(k * phase) / k for k in range(1, 40))
    x = x * (0.6 + 0.4 * torch.sin(2 * math.pi * 4 * t)) + 0.01 * torch.randn(t.shape[0], generator=g)
    return (0.3 * x / x.abs().max()).float()


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    return float(10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean()))


def band_energy_fraction(x: torch.Tensor, lo: float, hi: float, sr: int = SR) -> float:
    power = torch.fft.rfft(x.double()).abs() ** 2
    freqs = torch.fft.rfftfreq(x.shape[0], 1 / sr)
    return float(power[(freqs >= lo) & (freqs < hi)].sum() / power.sum())


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_length_by_the_factor(factor):
    wav = speechlike(2.0)
    out = speed_perturb(wav, factor, SR)
    assert abs(out.shape[0] - wav.shape[0] / factor) <= 1
    assert speed_perturb(wav, 1.0, SR) is wav


def test_speed_perturbation_moves_the_pitch():
    t = torch.arange(SR) / SR
    tone = torch.sin(2 * math.pi * 1000 * t)
    out = speed_perturb(tone, 1.1, SR)
    freqs = torch.fft.rfftfreq(out.shape[0], 1 / SR)
    peak = float(freqs[torch.fft.rfft(out).abs().argmax()])
    assert peak == pytest.approx(1100, abs=5)


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
@pytest.mark.parametrize("target", [0.0, 7.5, 20.0])
def test_noise_is_added_at_the_requested_snr(color, target):
    wav = speechlike(1.5)
    noise = colored_noise(SR // 2, color, torch.Generator().manual_seed(1))  # shorter: looped
    assert snr_db(wav, add_noise(wav, noise, target)) == pytest.approx(target, abs=0.5)


@pytest.mark.parametrize("color,slope", [("white", 0.0), ("pink", -10.0), ("brown", -20.0)])
def test_noise_colors_have_their_spectral_slopes(color, slope):
    """Power per decade of frequency: flat, -10 dB (1/f) and -20 dB (1/f^2)."""
    noise = colored_noise(SR * 4, color, torch.Generator().manual_seed(2))
    power = (torch.fft.rfft(noise.double()).abs() ** 2).numpy()
    freqs = np.fft.rfftfreq(noise.shape[0], 1 / SR)
    edges = np.logspace(np.log10(50), np.log10(5000), 9)
    centers = np.sqrt(edges[:-1] * edges[1:])
    levels = [10 * np.log10(power[(freqs >= a) & (freqs < b)].mean()) for a, b in zip(edges[:-1], edges[1:])]
    measured = np.polyfit(np.log10(centers), levels, 1)[0]
    assert measured == pytest.approx(slope, abs=2.0)


def test_reverberation_decays_by_60_db_in_rt60():
    rt60 = 0.5
    rir = synthetic_rir(rt60, SR, torch.Generator().manual_seed(3))
    assert rir.shape[0] == int(rt60 * SR)
    win = SR // 100  # 10 ms windows
    energy = rir[: rir.shape[0] // win * win].view(-1, win).pow(2).mean(1)
    t = (torch.arange(energy.shape[0]) + 0.5) * win / SR
    slope = np.polyfit(t[1:].numpy(), 10 * np.log10(energy[1:].numpy()), 1)[0]  # window 0 holds the direct path
    assert slope == pytest.approx(-60 / rt60, rel=0.1)


def test_reverberation_keeps_length_and_level_and_smears_in_time():
    wav = torch.zeros(SR)
    wav[1000] = 1.0  # a click
    out = reverberate(wav, synthetic_rir(0.3, SR, torch.Generator().manual_seed(4)))
    assert out.shape == wav.shape
    assert out.pow(2).mean() == pytest.approx(float(wav.pow(2).mean()), rel=1e-4)
    assert out[:1000].abs().max() < 1e-6  # causal: nothing before the click
    assert out[1000 + SR // 20 :].pow(2).sum() > 0.01 * out.pow(2).sum()  # a tail: energy 50 ms on


@pytest.mark.parametrize("mulaw", [False, True])
def test_telephone_band_has_no_energy_above_3400_hz(mulaw):
    wav = colored_noise(SR, "white", torch.Generator().manual_seed(5)) * 0.1  # energy at every frequency
    out = telephone(wav, SR, mulaw=mulaw)
    assert out.shape == wav.shape
    assert band_energy_fraction(wav, 3500, 8000) > 0.5
    assert band_energy_fraction(out, 3500, 8000) < 1e-3
    assert band_energy_fraction(out, 0, 250) < 1e-3
    assert band_energy_fraction(out, 300, 3400) > 0.99


def all_on(**kw) -> AugmentConfig:
    return AugmentConfig(**{"speed_factors": [0.9, 1.0, 1.1], "noise_prob": 1.0, "reverb_prob": 1.0,
                            "telephone_prob": 0.5, **kw})


def test_augmentation_is_a_function_of_seed_epoch_and_index():
    aug, wav = Augmenter(all_on(), SR, seed=7), speechlike(1.0)
    same = aug(wav, epoch=2, index=5)
    assert torch.equal(same, Augmenter(all_on(), SR, seed=7)(wav, epoch=2, index=5))
    others = [aug(wav, epoch=3, index=5), aug(wav, epoch=2, index=6), Augmenter(all_on(), SR, seed=8)(wav, 2, 5)]
    for other in others:
        assert other.shape != same.shape or not torch.equal(other, same)


def test_disabled_augmentation_is_the_identity():
    aug, wav = Augmenter(AugmentConfig(), SR, seed=7), speechlike(1.0)
    assert not aug.enabled
    assert torch.equal(aug(wav, 0, 0), wav)
    assert not Augmenter(AugmentConfig(speed_factors=[1.0]), SR, 7).enabled


def test_configured_snr_holds_through_the_augmenter():
    aug, wav = Augmenter(AugmentConfig(noise_prob=1.0, noise_snr_db=(12.0, 12.0)), SR, seed=1), speechlike(1.0)
    for index in range(5):
        assert snr_db(wav, aug(wav, 0, index)) == pytest.approx(12.0, abs=0.5)


def test_noise_comes_from_the_noise_folder(tmp_path):
    t = np.arange(SR * 3) / SR
    sf.write(tmp_path / "hum.wav", (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), SR)
    aug = Augmenter(AugmentConfig(noise_prob=1.0, noise_manifest=str(tmp_path)), SR, seed=1)
    wav = speechlike(1.0)
    added = aug(wav, 0, 0) - wav
    freqs = torch.fft.rfftfreq(added.shape[0], 1 / SR)
    assert float(freqs[torch.fft.rfft(added).abs().argmax()]) == pytest.approx(1000, abs=2)


def test_data_workers_produce_the_same_audio_as_the_main_process(tmp_path):
    """The random choices depend on (seed, epoch, index), not on which process or worker loads the file."""
    entries = []
    for i in range(6):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, speechlike(0.5 + 0.1 * i, seed=i).numpy(), SR)
        entries.append({"id": f"u{i}", "audio": str(path), "text": "x", "duration": 0.5 + 0.1 * i})
    ds = SpeechDataset(entries, None, SR, augment=Augmenter(all_on(), SR, seed=3))
    batches = [[(i, 4), (i + 1, 4)] for i in range(0, 6, 2)]

    def load(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(ds, batch_sampler=batches, collate_fn=collate, num_workers=workers)
        return [b.wav for b in loader]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker: FFTs and resampling round differently with more threads
    try:
        torch.manual_seed(0)
        main = load(0)
    finally:
        torch.set_num_threads(threads)
    torch.manual_seed(1)  # the workers' own seeds change with this; the audio must not
    assert all(torch.equal(a, b) for a, b in zip(main, load(2)))
    assert not torch.equal(main[0][0], ds[(0, 5)][1][: main[0].shape[1]])  # another epoch, other audio
