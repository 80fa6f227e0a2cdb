import librosa
import numpy as np
import pytest
import torch

from asr.config import FeatureConfig, SpecAugmentConfig
from asr.model.features import LOG_FLOOR, Features, dft_power, spec_augment


def chirp(seconds: float = 1.3, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    return (0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def test_logmel_matches_librosa():
    wav = chirp()
    feats = Features(FeatureConfig(normalize="none"))
    ours, lens = feats.raw(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
    ref = librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80,
                                         center=True, pad_mode="reflect", power=2.0, htk=False, norm="slaney")
    ref = np.log(ref + LOG_FLOOR).T  # (T, F)
    assert ours.shape[1:] == ref.shape and int(lens[0]) == ref.shape[0]
    np.testing.assert_allclose(ours[0].numpy(), ref, atol=2e-3, rtol=1e-3)


def test_mfcc_shape_and_lengths():
    wav = torch.from_numpy(chirp(0.5))
    feats = Features(FeatureConfig(kind="mfcc", n_mfcc=40, normalize="none"))
    x, lens = feats(wav[None], torch.tensor([len(wav)]))
    assert x.shape == (1, len(wav) // 160 + 1, 40) and feats.dim == 40


def test_batched_features_equal_single_and_padding_is_zero():
    a, b = torch.from_numpy(chirp(1.0)), torch.from_numpy(chirp(0.6))
    feats = Features(FeatureConfig(normalize="none"))
    batch = torch.zeros(2, len(a))
    batch[0], batch[1, : len(b)] = a, b
    x, lens = feats(batch, torch.tensor([len(a), len(b)]))
    xb, lb = feats(b[None], torch.tensor([len(b)]))
    n = int(lb[0])
    # frames whose window does not reach the padding are identical
    torch.testing.assert_close(x[1, : n - 2], xb[0, : n - 2], atol=1e-3, rtol=1e-3)
    assert (x[1, n:] == 0).all()


def test_global_stats_normalize_to_zero_mean_unit_variance():
    feats = Features(FeatureConfig())
    wav = torch.from_numpy(chirp(2.0))[None]
    lens = torch.tensor([wav.shape[1]])
    frames = feats.set_stats([(wav, lens)])
    assert frames == int(feats.num_frames(lens)[0])
    x, _ = feats(wav, lens)
    assert x[0].mean(0).abs().max() < 1e-3
    assert (x[0].std(0, unbiased=False) - 1).abs().max() < 1e-2


def test_spec_augment_masks_only_within_length_and_keeps_shape():
    x = torch.ones(3, 200, 80)
    lens = torch.tensor([200, 120, 60])
    x[1, 120:] = 0
    x[2, 60:] = 0
    g = torch.Generator().manual_seed(0)
    y = spec_augment(x, lens, SpecAugmentConfig(freq_masks=2, freq_width=10, time_masks=2), generator=g)
    assert y.shape == x.shape
    assert (y == 0).sum() > (x == 0).sum()  # something was masked
    assert (y[1, 120:] == 0).all() and (y[2, 60:] == 0).all()
    assert (y[:, :, :][x == 0] == 0).all()


def test_unknown_feature_kind_is_an_error():
    with pytest.raises(ValueError, match="logmel"):
        Features(FeatureConfig(kind="spectrogram"))


def test_frequency_warp_moves_a_formant_by_its_factor():
    """warp_frequencies: a peak at bin 20 goes to bin 24 at 1.2 and 16 at 0.8, a factor of 1 changes
    nothing; spec_augment warps with warp_prob (and only then draws random numbers)."""
    from asr.model.features import warp_frequencies

    x = torch.zeros(3, 5, 80)
    x[:, :, 20] = 1.0
    y = warp_frequencies(x, torch.tensor([1.2, 1.0, 0.8]))
    assert y.shape == x.shape and torch.equal(y[1], x[1])
    assert int(y[0, 0].argmax()) == 24 and int(y[2, 0].argmax()) == 16
    lens = torch.tensor([5, 5, 5])
    always = SpecAugmentConfig(freq_masks=0, time_masks=0, warp_prob=1.0, warp_factors=(1.1, 1.2))
    warped = spec_augment(x, lens, always)
    assert all(22 <= int(warped[b, 0].argmax()) <= 24 for b in range(3))
    torch.manual_seed(0)
    plain = spec_augment(x, lens, SpecAugmentConfig(freq_masks=0, time_masks=0))
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(plain, x) and torch.equal(after, torch.rand(1))  # no warp drew nothing: runs stay as they were


def test_colour_adds_one_smooth_curve_per_utterance_inside_its_length():
    """colour: the same curve in every valid frame of a row, none past its length, no level change;
    spec_augment colours with eq_prob only."""
    from asr.model.features import colour

    x = torch.zeros(2, 6, 80)
    lens = torch.tensor([6, 3])
    y = colour(x, lens, torch.tensor([[0.5, 0.0], [0.0, -0.3]]))
    assert torch.allclose(y[0, 0], y[0, 5]) and torch.equal(y[1, 3:], x[1, 3:])
    assert float(y[0, 0, 0]) > 0.49 and float(y[0, 0, -1]) < -0.49  # one cosine: a tilt, high to low
    assert abs(float(y[0, 0].mean())) < 1e-5 and abs(float(y[1, 0].mean())) < 1e-5
    assert float((y[0, 0, 1:] - y[0, 0, :-1]).abs().max()) < 0.03  # smooth across bins
    on = spec_augment(x, torch.tensor([6, 6]), SpecAugmentConfig(freq_masks=0, time_masks=0, eq_prob=1.0, eq_scale=0.4))
    assert 0 < float(on.abs().max()) <= 0.4 * 4 and not torch.equal(on[0], on[1])
    off = spec_augment(x, torch.tensor([6, 6]), SpecAugmentConfig(freq_masks=0, time_masks=0, eq_prob=0.0))
    assert torch.equal(off, x)


def test_a_shortest_window_pads_short_audio_and_leaves_long_audio_alone():
    """features.min_seconds: a 1 s clip is read as 2 s (Whisper's log-mel of silence after it, its own
    frames as they were but for the window reaching into the padding); a 3 s clip as it is."""
    cfg = FeatureConfig(kind="whisper_logmel", n_mels=80, n_fft=400, normalize="none")
    plain, floor = Features(cfg), Features(FeatureConfig(**{**cfg.__dict__, "min_seconds": 2.0}))
    torch.manual_seed(0)
    short, long = 0.1 * torch.randn(1, 16000), 0.1 * torch.randn(1, 48000)
    x, lens = floor(short, torch.tensor([16000]))
    x0, lens0 = plain(short, torch.tensor([16000]))
    assert int(lens) == 200 and int(lens0) == 100
    torch.testing.assert_close(x[:, :98], x0[:, :98])
    assert float(x[0, 110:].std()) < 1e-6  # silence: one level
    y, ylens = floor(long, torch.tensor([48000]))
    y0, ylens0 = plain(long, torch.tensor([48000]))
    assert int(ylens) == int(ylens0) == 300 and torch.equal(y, y0)


def test_dft_by_convolution_is_torch_stft():
    """The spectrum the ONNX graphs compute (a strided convolution with the windowed DFT basis) is
    torch.stft's, centre framing and reflect padding included, and so are Whisper's features from it."""
    wav = torch.randn(2, 7000) * 0.1
    window = torch.hann_window(400)
    ref = torch.stft(wav, 400, 160, window=window, return_complex=True).abs() ** 2
    got = dft_power(wav, 400, 160, window)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    f = Features(FeatureConfig(kind="whisper_logmel", n_mels=80, n_fft=400, normalize="none"))
    lens = torch.tensor([7000, 5000])
    x, _ = f(wav, lens)
    f.dft_by_conv = True
    torch.testing.assert_close(f(wav, lens)[0], x, rtol=0, atol=1e-4)
