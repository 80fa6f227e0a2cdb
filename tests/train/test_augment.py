"""Waveform augmentation: each effect does what it claims, and the chain is a pure function of
(seed, epoch, utterance index), in the main process or in any data worker."""

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from asr.config import AugmentConfig
from asr.data.dataset import SpeechDataset, collate
from asr.train.augment import (
    Augmenter,
    add_noise,
    band_limit,
    colored_noise,
    pitch_shift,
    reverberate,
    soft_clip,
    speed_perturb,
    synthetic_rir,
    telephone,
    tilt,
    vtlp,
)
from asr.train.codec import codec_roundtrip
from asr.train.room import Room, eyring_rt60, room_rir

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


# ------------------------------------------------------------- talker, room, sources, microphone, channel

TONES = (500.0, 900.0, 1300.0, 1700.0, 2500.0)  # babble speech: utterance i is a tone at TONES[i]


@pytest.fixture(scope="module")
def tone_speech(tmp_path_factory) -> list[dict]:
    """A manifest of five 'utterances', each a tone of its own frequency, 0.7 s long."""
    folder = tmp_path_factory.mktemp("speech")
    t = np.arange(int(0.7 * SR)) / SR
    entries = []
    for i, f in enumerate(TONES):
        path = folder / f"t{i}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), SR)
        entries.append({"id": f"t{i}", "audio": str(path), "text": "x", "duration": 0.7})
    return entries


EFFECTS = {  # name: the config switching just that effect on
    "pitch": {"pitch_prob": 1.0}, "vtlp": {"vtlp_prob": 1.0}, "room": {"room_prob": 1.0},
    "babble": {"babble_prob": 1.0}, "music": {"music_prob": 1.0}, "tilt": {"tilt_prob": 1.0},
    "gain": {"gain_prob": 1.0}, "clip": {"clip_prob": 1.0}, "band": {"band_prob": 1.0},
    "codec": {"codec_prob": 1.0},
}


@pytest.mark.parametrize("name", EFFECTS)
def test_each_effect_keeps_length_and_type_and_follows_its_seed(name, tone_speech):
    def augment(seed: int, index: int = 1) -> torch.Tensor:
        return Augmenter(AugmentConfig(**EFFECTS[name]), SR, seed=seed, speech=tone_speech)(wav, 0, index)

    wav = speechlike(1.0)
    out = augment(seed=3)
    assert out.shape == wav.shape and out.dtype == torch.float32 and out.is_contiguous()
    assert torch.isfinite(out).all() and out.abs().max() <= 1.0
    assert not torch.equal(out, wav)
    assert torch.equal(out, augment(seed=3))
    others = [augment(seed=4), augment(seed=5), augment(seed=3, index=2)]
    differ = [not torch.equal(out, o) for o in others]
    # the few bit rates of a codec and pitch ratios in steps of 1/200: two draws may coincide
    assert any(differ) if name in ("codec", "pitch") else all(differ)


def test_effects_are_off_by_default_and_each_switches_the_augmenter_on():
    assert not Augmenter(AugmentConfig(), SR, 0).enabled
    for kw in EFFECTS.values():
        assert Augmenter(AugmentConfig(**kw), SR, 0, speech=[{"audio": "x", "duration": 1.0}]).enabled


def test_misconfigured_effects_are_errors():
    with pytest.raises(ValueError, match="babble"):
        Augmenter(AugmentConfig(babble_prob=0.5), SR, 0)
    with pytest.raises(ValueError, match="gsm"):
        Augmenter(AugmentConfig(codec_prob=0.5, codecs=["gsm"]), SR, 0)


def test_a_codec_this_ffmpeg_cannot_encode_is_named_before_training(monkeypatch):
    """PyAV 18.1.1's wheels lost the AMR-NB encoder: an FFmpeg without a configured codec's encoder
    is an error at construction that names the codec and its encoder, not a crash mid-epoch."""
    import asr.train.codec as codec
    monkeypatch.setitem(codec.CODECS, "amr", codec.Codec("no_such_amr_encoder", "amrnb", (8000,), (4750,)))
    with pytest.raises(ValueError, match=r"amr \(no_such_amr_encoder\)"):
        Augmenter(AugmentConfig(codec_prob=0.5), SR, 0)
    assert Augmenter(AugmentConfig(codec_prob=0.5, codecs=["mp3", "opus"]), SR, 0).enabled
    assert not Augmenter(AugmentConfig(codec_prob=0.0), SR, 0).enabled  # codecs off: nothing to encode, no error


def test_switching_an_effect_on_leaves_the_others_draws_alone():
    """Every later effect has a generator of its own: adding one (a 0 dB gain, the identity here)
    leaves what the others do, and the original four's shared draws, exactly as they were."""
    wav = speechlike(1.0)
    for base in (all_on(), AugmentConfig(music_prob=1.0, room_prob=1.0, pitch_prob=1.0)):
        with_gain = dataclasses.replace(base, gain_prob=1.0, gain_db=(0.0, 0.0))
        assert torch.equal(Augmenter(base, SR, seed=5)(wav, 1, 2), Augmenter(with_gain, SR, seed=5)(wav, 1, 2))


def harmonic_tone(f0: float, seconds: float = 1.0, harmonics: int = 8) -> torch.Tensor:
    t = torch.arange(int(seconds * SR)) / SR
    return (0.1 * sum(torch.sin(2 * math.pi * k * f0 * t) / k for k in range(1, harmonics + 1))).float()


def strongest(x: torch.Tensor, lo: float, hi: float) -> float:
    """The frequency of the largest spectral peak between lo and hi Hz."""
    freqs, mag = torch.fft.rfftfreq(x.shape[0], 1 / SR), torch.fft.rfft(x.double()).abs()
    band = (freqs >= lo) & (freqs < hi)
    return float(freqs[band][mag[band].argmax()])


@pytest.mark.parametrize("semitones", [-3.0, 2.0, 3.0])
def test_pitch_shift_moves_f0_by_the_ratio_and_keeps_the_timing(semitones):
    tone = harmonic_tone(200.0)
    tone[: SR // 4] = 0  # a burst from 0.25 s to 0.75 s: where it starts and ends must not move
    tone[3 * SR // 4 :] = 0
    out = pitch_shift(tone, semitones, SR)
    assert out.shape == tone.shape
    assert strongest(out, 100, 400) == pytest.approx(200 * 2 ** (semitones / 12), rel=0.012)
    envelope = out.abs().unfold(0, 160, 160).max(1).values  # 10 ms frames
    active = (envelope > 0.1 * envelope.max()).nonzero().squeeze(1)
    assert abs(int(active[0]) - 25) <= 2 and abs(int(active[-1]) - 74) <= 2
    assert out.pow(2).mean() == pytest.approx(float(tone.pow(2).mean()), rel=0.1)


def vowel(f0: float = 120.0, formants=((700, 110), (1200, 120), (2600, 160)), seconds: float = 1.0) -> torch.Tensor:
    """Harmonics of f0 shaped by resonances (centre Hz, bandwidth Hz): an 'a'-like vowel."""
    t = torch.arange(int(seconds * SR)) / SR
    x = torch.zeros_like(t)
    for k in range(1, int(7000 / f0)):
        f = k * f0
        gain = math.prod(fc**2 / math.hypot(fc**2 - f**2, f * bw) for fc, bw in formants)
        x += gain * torch.sin(2 * math.pi * f * t + k)
    return (0.3 * x / x.abs().max()).float()


def centroid(x: torch.Tensor, lo: float = 200.0, hi: float = 4000.0) -> float:
    power, freqs = torch.fft.rfft(x.double()).abs() ** 2, torch.fft.rfftfreq(x.shape[0], 1 / SR)
    band = (freqs >= lo) & (freqs < hi)
    return float((power[band] * freqs[band]).sum() / power[band].sum())


def on_harmonics(x: torch.Tensor, f0: float, tol: float = 8.0) -> float:
    """The fraction of the energy within `tol` Hz of a multiple of f0."""
    power, freqs = torch.fft.rfft(x.double()).abs() ** 2, torch.fft.rfftfreq(x.shape[0], 1 / SR)
    near = ((freqs / f0) - (freqs / f0).round()).abs() * f0 < tol
    return float(power[near].sum() / power.sum())


def first_formant(x: torch.Tensor, f0: float = 120.0) -> float:
    """F1 of a vowel on f0: the vertex of a parabola through the log amplitudes of the strongest
    harmonic between 400 and 1100 Hz and its two neighbours."""
    mag, freqs = torch.fft.rfft(x.double()).abs(), torch.fft.rfftfreq(x.shape[0], 1 / SR)
    ks = np.arange(math.ceil(400 / f0), int(1100 / f0) + 1)
    amps = np.array([float(mag[(freqs - k * f0).abs() < 3].max()) for k in ks])
    i = int(np.argmax(amps))
    a, b, c = np.log(amps[i - 1 : i + 2])
    return f0 * (ks[i] + 0.5 * (a - c) / (a - 2 * b + c))


def test_vtlp_moves_the_formants_and_keeps_the_pitch():
    v = vowel()  # F1 at 700 Hz
    lower, higher = vtlp(v, 0.9, SR), vtlp(v, 1.1, SR)
    assert centroid(lower) < centroid(v) - 40 < centroid(v) + 40 < centroid(higher)
    assert first_formant(lower) == pytest.approx(630, abs=25)
    assert first_formant(higher) == pytest.approx(770, abs=25)
    for out in (lower, higher):
        assert out.shape == v.shape and on_harmonics(out, 120.0) > 0.98  # harmonics of 120 Hz stay
        assert out.pow(2).mean() == pytest.approx(float(v.pow(2).mean()), rel=1e-3)


def schroeder_rt60(rir: torch.Tensor) -> float:
    """RT60 from the -5 to -25 dB stretch of the backward-integrated energy decay (T20 x 3)."""
    energy = rir.double().pow(2).flip(0).cumsum(0).flip(0)
    db = (10 * torch.log10(energy / energy[0])).numpy()
    i5, i25 = int((db > -5).sum()), int((db > -25).sum())
    return -60 / np.polyfit(np.arange(i5, i25) / SR, db[i5:i25], 1)[0]


@pytest.mark.parametrize("absorption", [0.2, 0.5])
def test_room_decays_at_its_eyring_rt60_and_starts_at_the_direct_path(absorption):
    room = Room((6.0, 4.5, 3.0), absorption, source=(2.0, 1.5, 1.6), mic=(3.5, 2.5, 1.2))
    rir = room_rir(room, SR, torch.Generator().manual_seed(0))
    assert rir[0] == 1.0 and rir[1:].abs().max() < 1.0  # the direct sound first, the loudest
    assert schroeder_rt60(rir) == pytest.approx(eyring_rt60(room.size, absorption), rel=0.2)


def test_room_reverberation_spreads_a_click_without_moving_it():
    wav = torch.zeros(SR)
    wav[4000] = 0.5
    aug = Augmenter(AugmentConfig(room_prob=1.0), SR, seed=0)
    for index in range(4):
        out = aug(wav, 0, index)
        assert int(out.abs().argmax()) == 4000 and out[:4000].abs().max() < 1e-6  # aligned, causal
        assert out[4000 + SR // 20 :].pow(2).sum() > 0.02 * out.pow(2).sum()  # energy 50 ms on: a tail


def test_babble_is_other_utterances_never_the_utterance_itself(tone_speech):
    cfg = AugmentConfig(babble_prob=1.0, babble_talkers=(3, 3), babble_snr_db=(10.0, 10.0))
    aug = Augmenter(cfg, SR, seed=2, speech=tone_speech)
    wav = speechlike(1.0)
    for index in range(len(TONES)):
        added = aug(wav, 0, index) - wav
        assert snr_db(wav, wav + added) == pytest.approx(10.0, abs=0.1)
        power, freqs = torch.fft.rfft(added.double()).abs() ** 2, torch.fft.rfftfreq(SR, 1 / SR)
        at = [float(power[(freqs - f).abs() < 15].sum() / power.sum()) for f in TONES]
        assert sum(at) > 0.95  # all of it is the other utterances
        assert at[index] < 1e-3 and sum(a > 0.05 for a in at) >= 2  # not itself; several talkers


def test_babble_manifest_replaces_the_training_speech(tone_speech, tmp_path):
    path = tmp_path / "babble.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in tone_speech[:1]))
    aug = Augmenter(AugmentConfig(babble_prob=1.0, babble_manifest=str(path)), SR, seed=0, speech=tone_speech)
    added = aug(speechlike(1.0), 0, 3) - speechlike(1.0)
    assert strongest(added, 100, 4000) == pytest.approx(TONES[0], abs=2)


def test_music_is_tonal_and_added_at_the_requested_snr():
    wav = speechlike(1.0)
    aug = Augmenter(AugmentConfig(music_prob=1.0, music_snr_db=(8.0, 8.0)), SR, seed=0)
    for index in range(3):
        added = aug(wav, 0, index) - wav
        assert snr_db(wav, wav + added) == pytest.approx(8.0, abs=0.1)
        power = torch.fft.rfft(added.double()).abs().pow(2).sort(descending=True).values
        assert power[: power.shape[0] // 50].sum() > 0.8 * power.sum()  # 2 % of the bins: notes, not noise


def spectral_slope(x: torch.Tensor) -> float:
    """Fitted level change in dB per octave between 100 Hz and 6 kHz."""
    power, freqs = (torch.fft.rfft(x.double()).abs() ** 2).numpy(), np.fft.rfftfreq(x.shape[0], 1 / SR)
    edges = np.geomspace(100, 6000, 13)
    levels = [10 * np.log10(power[(freqs >= a) & (freqs < b)].mean()) for a, b in itertools.pairwise(edges)]
    return float(np.polyfit(np.log2(np.sqrt(edges[:-1] * edges[1:])), levels, 1)[0])


@pytest.mark.parametrize("db_per_octave", [-3.0, 2.0])
def test_tilt_sets_the_spectral_slope(db_per_octave):
    noise = colored_noise(SR, "white", torch.Generator().manual_seed(0)) * 0.1
    out = tilt(noise, db_per_octave, SR)
    assert spectral_slope(out) == pytest.approx(spectral_slope(noise) + db_per_octave, abs=0.3)
    assert out.pow(2).mean() == pytest.approx(float(noise.pow(2).mean()), rel=1e-4)


def test_gain_scales_and_clips_at_full_scale():
    wav = speechlike(1.0)
    quiet = Augmenter(AugmentConfig(gain_prob=1.0, gain_db=(-30.0, -30.0)), SR, 0)(wav, 0, 0)
    assert torch.allclose(quiet, wav * 10 ** (-30 / 20))
    loud = Augmenter(AugmentConfig(gain_prob=1.0, gain_db=(20.0, 20.0)), SR, 0)(wav, 0, 0)
    assert loud.abs().max() == 1.0 and (loud.abs() == 1.0).float().mean() > 0.01


def test_soft_clipping_keeps_the_peak_and_flattens_the_waveform():
    wav = speechlike(1.0)
    out = soft_clip(wav, 12.0)
    assert out.abs().max() == pytest.approx(float(wav.abs().max()), rel=1e-5)

    def crest(x):
        return float(x.abs().max() / x.pow(2).mean().sqrt())

    assert crest(out) < 0.7 * crest(wav)
    assert torch.equal(torch.sign(out), torch.sign(wav))


def test_band_limit_halves_the_power_at_the_cutoffs_and_removes_what_is_outside():
    noise = colored_noise(SR, "white", torch.Generator().manual_seed(0)) * 0.1
    out = band_limit(noise, SR, highpass=300.0, lowpass=3400.0)

    def gain(lo: float, hi: float) -> float:  # power out / power in, within the band
        spec_in, spec_out = torch.fft.rfft(noise.double()).abs() ** 2, torch.fft.rfft(out.double()).abs() ** 2
        freqs = torch.fft.rfftfreq(noise.shape[0], 1 / SR)
        band = (freqs >= lo) & (freqs < hi)
        return float(spec_out[band].sum() / spec_in[band].sum())

    assert gain(290, 310) == pytest.approx(0.5, abs=0.05) and gain(3380, 3420) == pytest.approx(0.5, abs=0.05)
    assert gain(700, 2000) == pytest.approx(1.0, abs=0.02)
    assert gain(6800, 8000) < 3e-3 and gain(0, 150) < 3e-3  # an octave away: 24 dB down and more


@pytest.mark.parametrize("codec,bit_rate", [("mp3", 8000), ("opus", 6000), ("amr", 4750), ("amr", 12200)])
def test_low_rate_codecs_remove_the_high_band_and_keep_the_timing(codec, bit_rate):
    wav = speechlike(1.0) + 0.02 * colored_noise(SR, "white", torch.Generator().manual_seed(1))
    out = codec_roundtrip(wav, SR, codec, bit_rate)
    assert out.shape == wav.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert band_energy_fraction(wav, 4500, 8000) > 0.01
    assert band_energy_fraction(out, 4500, 8000) < 1e-3
    assert torch.equal(out, codec_roundtrip(wav, SR, codec, bit_rate))
    if codec != "amr":  # (AMR's CELP model keeps the spectrum, not this synthetic waveform)
        assert float((out * wav).sum() / (out.norm() * wav.norm())) > 0.8  # aligned with the input


def everything_on() -> AugmentConfig:
    probs = {f"{name}_prob": 0.5 for name in ("pitch", "vtlp", "room", "babble", "music", "tilt", "gain", "clip",
                                              "band", "codec")}
    return AugmentConfig(**{**vars(all_on()), **probs})


def test_new_effects_in_data_workers_produce_the_same_audio_as_the_main_process(tmp_path):
    entries = []
    for i in range(4):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, speechlike(0.5 + 0.1 * i, seed=i).numpy(), SR)
        entries.append({"id": f"u{i}", "audio": str(path), "text": "x", "duration": 0.5 + 0.1 * i})
    ds = SpeechDataset(entries, None, SR, augment=Augmenter(everything_on(), SR, seed=3, speech=entries))
    batches = [[(i, 1), (i + 1, 1)] for i in range(0, 4, 2)]

    def load(workers: int) -> list[torch.Tensor]:
        return [b.wav for b in DataLoader(ds, batch_sampler=batches, collate_fn=collate, num_workers=workers)]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main = load(0)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(main, load(2)))


def test_non_speech_examples_replace_the_audio_at_its_level_and_empty_the_target(tone_speech):
    """With nonspeech_prob, some utterances become babble (other utterances at once), music or noise
    at the same length and level, and their transcript becomes empty; the rest stay as they were;
    the choice and the audio are functions of (seed, epoch, index)."""
    cfg = AugmentConfig(nonspeech_prob=0.5, nonspeech_talkers=(3, 4))
    aug = Augmenter(cfg, SR, seed=1, speech=tone_speech)
    wav = speechlike(1.0)
    draws = [aug.non_speech(wav, epoch, index) for epoch in range(4) for index in range(len(TONES))]
    replaced = [w for w in draws if w is not None]
    assert 4 <= len(replaced) <= 16  # about half of 20
    for w in replaced:
        assert w.shape == wav.shape and torch.isfinite(w).all() and not torch.equal(w, wav)
        assert w.pow(2).mean().sqrt() == pytest.approx(float(wav.pow(2).mean().sqrt()), rel=0.05)
    again = [aug.non_speech(wav, epoch, index) for epoch in range(4) for index in range(len(TONES))]
    assert all((a is None) == (b is None) and (a is None or torch.equal(a, b)) for a, b in zip(draws, again))
    assert Augmenter(AugmentConfig(), SR, 1, speech=tone_speech).non_speech(wav, 0, 0) is None
    # from a later epoch on: none before it, the same draws as without the gate from it
    late = Augmenter(dataclasses.replace(cfg, nonspeech_from_epoch=2), SR, seed=1, speech=tone_speech)
    gated = [late.non_speech(wav, epoch, index) for epoch in range(4) for index in range(len(TONES))]
    cut = 2 * len(TONES)
    assert all(w is None for w in gated[:cut]) and any(w is not None for w in draws[:cut])
    assert all(
        (a is None) == (b is None) and (a is None or torch.equal(a, b)) for a, b in zip(draws[cut:], gated[cut:])
    )
    with pytest.raises(ValueError, match="nonspeech_prob"):
        Augmenter(AugmentConfig(nonspeech_prob=0.1), SR, 0)

    class Chars:
        def encode_transcript(self, text):
            return [ord(c) for c in text]

    always = Augmenter(dataclasses.replace(cfg, nonspeech_prob=1.0), SR, seed=1, speech=tone_speech)
    reversing = Augmenter(dataclasses.replace(cfg, nonspeech_prob=1.0, nonspeech_reversed=0.2), SR, seed=1,
                          speech=tone_speech)
    for aug, lo, hi in ((always, 0, 0), (reversing, 2, 16)):  # the utterance played backwards: a share of them
        kinds = [aug.non_speech(wav, epoch, 0) for epoch in range(40)]
        backwards = sum(torch.allclose(w, wav.flip(0)) for w in kinds)  # at its level: equal up to rounding
        assert lo <= backwards <= hi and all(w is not None for w in kinds)
    ds = SpeechDataset(tone_speech, Chars(), SR, non_speech=always.non_speech)
    _, audio, tokens, text, taught = ds[(0, 0)]
    assert (text, tokens.tolist()) == ("", []) and audio.shape[0] == int(0.7 * SR) and taught is None
    assert SpeechDataset(tone_speech, Chars(), SR)[(0, 0)][3] == "x"  # without it, the utterance itself
