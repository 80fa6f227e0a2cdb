"""Waveform augmentation for training: recordings from many talkers, rooms, microphones and channels.

`Augmenter(cfg, sample_rate, seed)(wav, epoch, index)` transforms one utterance in a data worker.
Its random choices come from a generator seeded with (seed, epoch, utterance index) only, never
from the worker process's RNG state, so the same utterance in the same epoch always gets the same
audio: runs are reproducible and a resumed run matches an uninterrupted one bit for bit.

The effects run in the order a sound meets them: the talker (speed, pitch, vocal-tract length),
the room (reverberation), other sound sources (noise, babble, music), the microphone (tilt, gain,
clipping) and the channel (band limits, lossy codecs, telephone). Each has its own probability,
0 by default. Speed, reverberation, noise and telephone draw from one generator, in the order
they always have; every later effect draws from a generator of its own, seeded with its name too,
so switching one on or off never changes what another does. Only speed changes the length.
"""

from __future__ import annotations

import logging
import math
import zlib
from pathlib import Path

import torch
import torchaudio.functional as AF
from torch import Tensor

from asr.audio.files import AUDIO_EXTENSIONS
from asr.audio.read import AudioError, load_audio
from asr.config import AugmentConfig
from asr.storage import read_jsonl
from asr.train.codec import CODECS, codec_roundtrip, missing_encoders, nearest_bit_rate
from asr.train.rng import derive_seed
from asr.train.room import Room, random_room, room_rir

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


# ------------------------------------------------------------------------------ the talker

def pitch_shift(wav: Tensor, semitones: float, sample_rate: int) -> Tensor:
    """Raise the pitch by `semitones` (negative: lower) keeping tempo and length: stretch the time
    by the pitch ratio with a phase vocoder, then resample back. The ratio is rounded to n/200
    (under 0.1 semitone off), which keeps the resampling filters small."""
    orig, new = round(200 * 2 ** (semitones / 12)), 200
    n_fft, hop = _stft_size(sample_rate)
    if orig == new or wav.shape[0] <= n_fft:  # (shorter than a window: nothing to analyse)
        return wav
    window = torch.hann_window(n_fft)
    spec = torch.stft(wav, n_fft, hop, window=window, return_complex=True)
    longer = torch.istft(time_stretch(spec, new / orig, hop), n_fft, hop, window=window,
                         length=round(wav.shape[0] * orig / new))
    return _fit(AF.resample(longer, orig, new), wav.shape[0])  # resampling by orig/new raises the pitch


def time_stretch(spec: Tensor, rate: float, hop: int) -> Tensor:
    """A phase vocoder with identity phase locking (Laroche & Dolson 1999): STFT frames (F, T) ->
    (F, ceil(T / rate)), `rate` times faster. Each bin keeps its phase offset from the nearest
    spectral peak, whose phase advances at its own frequency: without the locking a harmonic's
    bins drift apart in phase and cancel (torchaudio's phase_vocoder loses 12 dB of a steady
    200 Hz tone slowed by 5 %)."""
    n_bins = spec.shape[0]
    steps = torch.arange(0, spec.shape[-1], rate)
    idx, frac = steps.long(), (steps - steps.floor()).float()
    spec = torch.nn.functional.pad(spec, (0, 2))
    mag, angle = spec.abs(), spec.angle()  # once: angle (atan2) was most of a pitch shift's time
    m0, m1, p0, p1 = mag[:, idx], mag[:, idx + 1], angle[:, idx], angle[:, idx + 1]
    # the phase a bin's centre frequency advances by in one hop
    advance = (math.pi * hop / (n_bins - 1)) * torch.arange(n_bins, dtype=torch.float32)[:, None]
    dphi = p1 - p0 - advance
    dphi = dphi - 2 * math.pi * torch.round(dphi / (2 * math.pi)) + advance  # each bin's own frequency
    acc = torch.cat([p0[:, :1], dphi[:, :-1]], -1).cumsum(-1)
    peak = _nearest_peak(m0)
    phase = acc.gather(0, peak) + p0 - p0.gather(0, peak)
    return torch.polar(torch.lerp(m0, m1, frac), phase)


def vtlp(wav: Tensor, alpha: float, sample_rate: int, f_hi: float = 4800.0) -> Tensor:
    """Vocal tract length perturbation: formants move by `alpha` (below 1: a longer tract, lower
    formants) while pitch, timing and level stay. Each STFT frame's spectral envelope (LPC) is
    warped along frequency as in Jaitly & Hinton 2013 (f -> alpha f up to a knee, then linearly
    to Nyquist) and the frame is scaled by warped / original envelope: the harmonics and their
    phases stay where they were, only their amplitudes follow the moved formants."""
    n_fft, hop = _stft_size(sample_rate)
    if alpha == 1.0 or wav.shape[0] <= n_fft:  # (shorter than a window: nothing to analyse)
        return wav
    window = torch.hann_window(n_fft)
    spec = torch.stft(wav, n_fft, hop, window=window, return_complex=True)  # (F, T)
    env = _lpc_log_envelope(spec.abs() ** 2, order=2 + sample_rate // 1000)  # 18 at 16 kHz: 4-8 formants
    nyq, n_bins = sample_rate / 2, spec.shape[0]
    knee = f_hi * min(alpha, 1.0) / alpha
    freqs = torch.linspace(0, nyq, n_bins)
    source = torch.where(freqs <= alpha * knee, freqs / alpha,  # the frequency each bin's envelope comes from
                         knee + (freqs - alpha * knee) * (nyq - knee) / (nyq - alpha * knee))
    pos = source / nyq * (n_bins - 1)
    lo = pos.floor().long().clamp(max=n_bins - 2)
    warped = torch.lerp(env[lo], env[lo + 1], (pos - lo)[:, None])
    gain = (warped - env).clamp(-3.0, 3.0).exp()  # at most +-26 dB: noise between formants stays noise
    out = torch.istft(spec * gain, n_fft, hop, window=window, length=wav.shape[0])
    return _same_level(out, wav)


def _lpc_log_envelope(power: Tensor, order: int) -> Tensor:
    """Log magnitude of each frame's all-pole (LPC) envelope, up to a constant: power spectra
    (F, T) -> (F, T). Levinson-Durbin on the autocorrelation, all frames at once. (A cepstral
    envelope smooths a formant too much to move its peak: 30 coefficients resolve ~500 Hz.)"""
    r = torch.fft.irfft(power, dim=0)[: order + 1]  # (order + 1, T) autocorrelation
    r[0] = r[0] * (1 + 1e-6) + 1e-12  # a white-noise floor: well conditioned, silence stays finite
    a = torch.zeros_like(r)
    a[0] = 1.0
    err = r[0].clone()
    for i in range(1, order + 1):
        k = -(a[:i] * r[1 : i + 1].flip(0)).sum(0) / err  # reflection coefficients, (T,)
        a[: i + 1] = a[: i + 1] + k * a[: i + 1].flip(0)
        err = err * (1 - k**2)
    return -torch.fft.rfft(a, n=2 * (power.shape[0] - 1), dim=0).abs().clamp(min=1e-8).log()


def _stft_size(sample_rate: int) -> tuple[int, int]:
    """32 ms windows (512 at 16 kHz, enough to resolve the harmonics of a 100 Hz voice), hop 1/4."""
    n_fft = 2 ** round(math.log2(0.032 * sample_rate))
    return n_fft, n_fft // 4


def _nearest_peak(mag: Tensor) -> Tensor:
    """For every bin of `mag` (F, T), the index of the nearest local maximum along frequency."""
    n_bins = mag.shape[0]
    k = torch.arange(n_bins)[:, None].expand_as(mag)
    below = torch.nn.functional.pad(mag[:-1], (0, 0, 1, 0), value=-1.0)
    above = torch.nn.functional.pad(mag[1:], (0, 0, 0, 1), value=-1.0)
    is_peak = (mag > below) & (mag >= above)
    prev = torch.where(is_peak, k, torch.full_like(k, -n_bins)).cummax(0).values
    next_ = torch.where(is_peak, k, torch.full_like(k, 2 * n_bins)).flip(0).cummin(0).values.flip(0)
    return torch.where(k - prev <= next_ - k, prev, next_).clamp(0, n_bins - 1)


# ----------------------------------------------------------------------- other sound sources

def music(num_samples: int, sample_rate: int, generator: torch.Generator) -> Tensor:
    """Music-like background at unit RMS: a chord struck on every beat at 70-160 beats per
    minute (3-4 notes of I, IV, V or vi in a random key, each with 3-8 harmonics falling as 1/k,
    a 10 ms attack and an exponential decay) over a kick drum on the beat."""
    def uniform(lo: float, hi: float) -> float:
        return _uniform(generator, lo, hi)

    beat = int(sample_rate * 60 / uniform(70, 160))
    t = torch.arange(beat) / sample_rate
    envelope = (1 - torch.exp(-t / 0.01)) * torch.exp(-t / uniform(0.1, 0.5))
    kick = torch.sin(2 * math.pi * (50 * t + 3 * (1 - torch.exp(-t / 0.03)))) * torch.exp(-t / 0.08)
    harmonics = torch.arange(1, int(torch.randint(3, 9, (), generator=generator)) + 1, dtype=torch.float32)
    key, kick_level = int(torch.randint(45, 69, (), generator=generator)), uniform(0.0, 1.0)
    beats = []
    for _ in range(max(1, math.ceil(num_samples / beat))):
        degree = (0, 5, 7, 9)[int(torch.randint(4, (), generator=generator))]
        third = 3 if degree == 9 else 4  # vi is minor
        notes = torch.tensor([0, third, 7, 12][: int(torch.randint(3, 5, (), generator=generator))]) + key + degree
        partials = 440 * 2 ** ((notes[:, None] - 69) / 12) * harmonics  # (notes, harmonics) Hz
        amps = (partials < sample_rate / 2) / harmonics
        phases = 2 * math.pi * torch.rand(partials.shape, generator=generator)
        chord = (amps[..., None] * torch.sin(2 * math.pi * partials[..., None] * t + phases[..., None])).sum((0, 1))
        beats.append(chord * envelope + 2 * kick_level * kick)
    x = torch.cat(beats)[:num_samples]
    x = x - x.mean()
    return x / x.pow(2).mean().sqrt().clamp(min=1e-12)


# ------------------------------------------------------------------ the microphone and channel

def tilt(wav: Tensor, db_per_octave: float, sample_rate: int, pivot: float = 1000.0) -> Tensor:
    """A microphone's spectral tilt: gain rising (or falling) by `db_per_octave` about `pivot` Hz,
    flat below 100 Hz, zero phase, same RMS."""
    spec = torch.fft.rfft(wav)
    freqs = torch.fft.rfftfreq(wav.shape[0], 1 / sample_rate).clamp(min=100.0)
    gain = 10 ** (db_per_octave * torch.log2(freqs / pivot) / 20)
    return _same_level(torch.fft.irfft(spec * gain, n=wav.shape[0]), wav)


def soft_clip(wav: Tensor, drive_db: float) -> Tensor:
    """Saturation (tanh) driven `drive_db` past the peak, scaled back so the peak stays where it was."""
    peak = wav.abs().max()
    if peak == 0:
        return wav
    drive = 10 ** (drive_db / 20)
    return torch.tanh(wav * (drive / peak)) * (peak / math.tanh(drive))


def band_limit(wav: Tensor, sample_rate: int, highpass: float, lowpass: float, order: int = 4) -> Tensor:
    """Zero-phase Butterworth-shaped high-pass at `highpass` Hz and low-pass at `lowpass` Hz
    (24 dB/octave at order 4), applied to the spectrum: a cheap microphone or channel."""
    spec = torch.fft.rfft(wav)
    freqs = torch.fft.rfftfreq(wav.shape[0], 1 / sample_rate).clamp(min=1e-3)
    gain = 1 / torch.sqrt((1 + (highpass / freqs) ** (2 * order)) * (1 + (freqs / lowpass) ** (2 * order)))
    return torch.fft.irfft(spec * gain, n=wav.shape[0])


def _fit(x: Tensor, n: int) -> Tensor:
    """`x` cut or zero-padded to `n` samples."""
    return torch.nn.functional.pad(x, (0, max(0, n - x.shape[0])))[:n]


def _same_level(x: Tensor, like: Tensor) -> Tensor:
    rms_x, rms = x.pow(2).mean().sqrt(), like.pow(2).mean().sqrt()
    return x * (rms / rms_x) if rms_x > 0 else x


def _uniform(gen: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


class Augmenter:
    """The configured chain of effects for one utterance at a time (see the module docstring).

    `speech` are the manifest entries babble is made of (the training manifest's; the utterance
    being augmented is never among its own babble); `cfg.babble_manifest` replaces them.
    """

    def __init__(self, cfg: AugmentConfig, sample_rate: int, seed: int, speech: list[dict] | None = None):
        self.cfg, self.sample_rate, self.seed = cfg, sample_rate, seed
        self.noise_files = _noise_files(cfg.noise_manifest) if cfg.noise_manifest else []
        self.speech = read_jsonl(cfg.babble_manifest) if cfg.babble_manifest else (speech or [])
        if (cfg.babble_prob > 0 or cfg.nonspeech_prob > 0) and not self.speech:
            raise ValueError("augment.babble_prob and nonspeech_prob need speech: the training manifest or "
                             "augment.babble_manifest")
        unknown = sorted(set(cfg.codecs) - set(CODECS))
        if cfg.codec_prob > 0 and (unknown or not cfg.codecs):
            raise ValueError(f"augment.codecs: {unknown or 'none'}; known: {', '.join(CODECS)}")
        missing = missing_encoders(cfg.codecs) if cfg.codec_prob > 0 else []
        if missing:
            import av
            raise ValueError(f"augment.codecs: the FFmpeg in PyAV {av.__version__} has no encoder for "
                             f"{', '.join(f'{n} ({CODECS[n].encoder})' for n in missing)}; leave "
                             f"{'it' if len(missing) == 1 else 'them'} out of augment.codecs, or install "
                             "the PyAV this project pins (pip install -e .)")

    @property
    def enabled(self) -> bool:
        c = self.cfg
        probs = (c.noise_prob, c.reverb_prob, c.telephone_prob, c.pitch_prob, c.vtlp_prob, c.room_prob,
                 c.babble_prob, c.music_prob, c.tilt_prob, c.gain_prob, c.clip_prob, c.band_prob, c.codec_prob)
        return any(f != 1.0 for f in c.speed_factors) or any(p > 0 for p in probs)

    def __call__(self, wav: Tensor, epoch: int, index: int) -> Tensor:
        if not self.enabled or not wav.shape[0]:
            return wav
        c, sr = self.cfg, self.sample_rate
        gen = torch.Generator().manual_seed(derive_seed(self.seed, epoch, index))
        speed, rt60, snr, phone = self._first_draws(gen)
        steps = [  # (name, probability, effect(wav, its generator)) in the order the sound meets them
            ("speed", 1.0, lambda w, g: speed_perturb(w, speed, sr)),
            ("pitch", c.pitch_prob, lambda w, g: pitch_shift(w, _uniform(g, *c.pitch_semitones), sr)),
            ("vtlp", c.vtlp_prob, lambda w, g: vtlp(w, _uniform(g, *c.vtlp_alpha), sr)),
            ("reverb", float(rt60 is not None), lambda w, g: reverberate(w, synthetic_rir(rt60, sr, gen))),
            ("room", c.room_prob, lambda w, g: reverberate(w, room_rir(self._room(g), sr, g))),
            ("noise", float(snr is not None), lambda w, g: add_noise(w, self._noise(w.shape[0], gen), snr)),
            ("babble", c.babble_prob, lambda w, g: self._babble(w, g, index)),
            ("music", c.music_prob, lambda w, g: add_noise(w, music(w.shape[0], sr, g), _uniform(g, *c.music_snr_db))),
            ("tilt", c.tilt_prob, lambda w, g: tilt(w, _uniform(g, *c.tilt_db_per_octave), sr)),
            ("gain", c.gain_prob, lambda w, g: (w * 10 ** (_uniform(g, *c.gain_db) / 20)).clamp(-1.0, 1.0)),
            ("clip", c.clip_prob, lambda w, g: soft_clip(w, _uniform(g, *c.clip_drive_db))),
            ("band", c.band_prob,
             lambda w, g: band_limit(w, sr, _uniform(g, *c.highpass_hz), _uniform(g, *c.lowpass_hz))),
            ("codec", c.codec_prob, self._codec),
            ("telephone", float(phone), lambda w, g: telephone(w, sr, c.telephone_mulaw)),
        ]
        for name, prob, effect in steps:
            if prob > 0:
                key = zlib.crc32(name.encode())  # a generator of its own: effects never shift each other's draws
                step_gen = torch.Generator().manual_seed(derive_seed(self.seed, epoch, index, key))
                if _uniform(step_gen) < prob:
                    wav = effect(wav, step_gen)
        return wav.float().contiguous()

    def non_speech(self, wav: Tensor, epoch: int, index: int) -> Tensor | None:
        """With chance `nonspeech_prob`, audio of `wav`'s length and level with no words in it to
        learn: the utterance played backwards (a `nonspeech_reversed` share), else babble
        (`nonspeech_talkers` other utterances at once), synthetic music or noise; from epoch
        `nonspeech_from_epoch` on. The caller gives it the empty transcript. None: the utterance
        stays itself."""
        c = self.cfg
        if c.nonspeech_prob <= 0 or epoch < c.nonspeech_from_epoch or not wav.shape[0]:
            return None
        gen = torch.Generator().manual_seed(derive_seed(self.seed, epoch, index, zlib.crc32(b"nonspeech")))
        if _uniform(gen) >= c.nonspeech_prob:
            return None
        n, kind = wav.shape[0], _uniform(gen)
        if kind < c.nonspeech_reversed:  # the utterance played backwards: speech sounds, in no language
            out = wav.flip(0)
        else:
            kind = (kind - c.nonspeech_reversed) / (1.0 - c.nonspeech_reversed)  # uniform again, in [0, 1)
            if kind < 0.6 and self.speech:
                out = self._talkers(n, c.nonspeech_talkers, gen, index)
            elif kind < 0.8:
                out = music(n, self.sample_rate, gen)
            else:
                out = self._noise(n, gen)
        return _same_level(out, wav).clamp(-1.0, 1.0).float().contiguous()

    def _first_draws(self, gen: torch.Generator) -> tuple[float, float | None, float | None, bool]:
        """Speed factor, RT60 (None: no reverberation), SNR (None: no noise), telephone or not:
        every draw made whether or not its effect applies, in the order they have always been."""
        c = self.cfg
        speed = c.speed_factors[int(torch.randint(len(c.speed_factors), (), generator=gen))] if c.speed_factors else 1.0
        do_reverb, rt60 = _uniform(gen) < c.reverb_prob, _uniform(gen, *c.rt60)
        do_noise, snr = _uniform(gen) < c.noise_prob, _uniform(gen, *c.noise_snr_db)
        do_phone = _uniform(gen) < c.telephone_prob
        return speed, rt60 if do_reverb else None, snr if do_noise else None, do_phone

    def _room(self, gen: torch.Generator) -> Room:
        c = self.cfg
        return random_room(gen, c.room_size, c.room_height, c.room_absorption, c.room_distance)

    def _babble(self, wav: Tensor, gen: torch.Generator, index: int) -> Tensor:
        """`wav` plus 3-7 (babble_talkers) other utterances at a babble SNR."""
        mix = self._talkers(wav.shape[0], self.cfg.babble_talkers, gen, index)
        return add_noise(wav, mix, _uniform(gen, *self.cfg.babble_snr_db))

    def _talkers(self, num_samples: int, talkers: tuple[int, int], gen: torch.Generator, index: int) -> Tensor:
        """lo-hi (`talkers`) utterances other than `index` at once, each at 0 to -6 dB."""
        lo, hi = talkers
        mix = torch.zeros(num_samples)
        for _ in range(int(torch.randint(lo, hi + 1, (), generator=gen))):
            voice = self._other_utterance(num_samples, gen, index)
            if voice is not None:
                mix += voice * 10 ** (-_uniform(gen, 0.0, 6.0) / 20)
        return mix

    def _other_utterance(self, num_samples: int, gen: torch.Generator, index: int) -> Tensor | None:
        """A random stretch of `num_samples` (looped if shorter) of an utterance other than
        `index`, at unit RMS; only that stretch is read. None (logged) if it can't be read."""
        n = len(self.speech)
        pick = int(torch.randint(n - 1, (), generator=gen)) if n > 1 else 0
        pick += n > 1 and pick >= index  # never the utterance itself
        e, seconds, u = self.speech[pick], num_samples / self.sample_rate, _uniform(gen)
        duration, span = float(e.get("duration") or 0.0), (None, None)  # no duration: the whole file
        if duration > 0.05:  # read just a stretch, ending 20 ms short of the end: manifests round durations
            length = max(0.03, min(seconds, duration - 0.02))
            span = (e.get("offset", 0.0) + u * (duration - 0.02 - length), length)
        try:
            voice = torch.from_numpy(load_audio(e["audio"], self.sample_rate, *span))
        except AudioError as err:
            log.warning("babble: skipping an utterance: %s", err)
            return None
        voice = voice.repeat(math.ceil(num_samples / voice.shape[0]))
        voice = voice.roll(int(torch.randint(voice.shape[0], (), generator=gen)))[:num_samples]
        rms = voice.pow(2).mean().sqrt()
        return voice / rms if rms > 0 else None

    def _codec(self, wav: Tensor, gen: torch.Generator) -> Tensor:
        name = self.cfg.codecs[int(torch.randint(len(self.cfg.codecs), (), generator=gen))]
        bit_rate = nearest_bit_rate(name, 1000 * _uniform(gen, *self.cfg.codec_kbps))
        return codec_roundtrip(wav, self.sample_rate, name, bit_rate)

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
