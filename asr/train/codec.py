"""Lossy codecs as a transmission channel for augmentation: encode and decode in memory with the
FFmpeg that PyAV's wheel bundles, no container and no files.

CODECS names what that FFmpeg offers for low-rate speech: MP3 (LAME), Opus (libopus) and AMR-NB
(libopencore), the speech codec of GSM and 3G mobile calls at 8 kHz. The wheel has no GSM 06.10
full-rate encoder; AMR-NB replaced it in the same networks and degrades speech the same way
(narrow band, coarse LPC-based coding). Codecs delay their output (encoder look-ahead, priming
samples); the delay of each codec and bit rate is measured once on a noise burst and undone, so
the decoded audio lines up with the input and keeps its length.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
import torchaudio.functional as AF
from torch import Tensor


@dataclass(frozen=True)
class Codec:
    encoder: str
    decoder: str
    rates: tuple[int, ...]  # sample rates it codes at (the audio is resampled to one of them)
    bit_rates: tuple[int, ...] | None  # the bit rates (bit/s) it offers; None: any
    options: tuple[tuple[str, str], ...] = ()  # encoder options


CODECS = {
    # MPEG-2 layer III rates up to 64 kbit/s (at 32 kHz and above LAME takes 32 kbit/s at least)
    "mp3": Codec("libmp3lame", "mp3float", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
                 (8000, 16000, 24000, 32000, 40000, 48000, 56000, 64000)),
    # 6-510 kbit/s; complexity 5 of 10 (the default, 10, takes 1.5 times as long to encode)
    "opus": Codec("libopus", "libopus", (8000, 12000, 16000, 24000, 48000), None, (("compression_level", "5"),)),
    "amr": Codec("libopencore_amrnb", "amrnb", (8000,), (4750, 5150, 5900, 6700, 7400, 7950, 10200, 12200)),
}
_MAX_DELAY = 0.1  # seconds of codec delay searched for


def missing_encoders(names: list[str]) -> list[str]:
    """The codecs among `names` whose encoder the installed PyAV's FFmpeg lacks (PyAV 18.1.1's wheels
    have no AMR-NB encoder)."""
    import av
    return [n for n in names if n in CODECS and CODECS[n].encoder not in av.codecs_available]


def nearest_bit_rate(name: str, bit_rate: float) -> int:
    """The bit rate codec `name` offers that is closest to `bit_rate` (bit/s)."""
    offered = CODECS[name].bit_rates
    return round(bit_rate) if offered is None else min(offered, key=lambda b: abs(b - bit_rate))


def codec_roundtrip(wav: Tensor, sample_rate: int, name: str, bit_rate: int) -> Tensor:
    """`wav` (float32, (S,)) through codec `name` at `bit_rate` and back: same rate, length and timing."""
    codec = CODECS[name]
    rate = sample_rate if sample_rate in codec.rates else max((r for r in codec.rates if r <= sample_rate),
                                                              default=min(codec.rates))
    x = AF.resample(wav, sample_rate, rate) if rate != sample_rate else wav
    y = _encode_decode(x.numpy(), codec, rate, bit_rate)
    delay = _delay(name, rate, bit_rate)
    y = torch.from_numpy(y[delay : delay + x.shape[0]])
    y = AF.resample(y, rate, sample_rate) if rate != sample_rate else y
    return torch.nn.functional.pad(y, (0, wav.shape[0] - y.shape[0])).float()  # cut or zero-padded to length


@functools.cache
def _delay(name: str, rate: int, bit_rate: int) -> int:
    """Samples by which the codec delays its output, from a broadband burst's cross-correlation."""
    burst = np.random.default_rng(0).standard_normal(rate // 2).astype(np.float32) * 0.1
    burst = np.concatenate([burst, np.zeros(rate // 2, np.float32)])
    out = _encode_decode(burst, CODECS[name], rate, bit_rate)
    size = len(out) + len(burst)
    xcorr = np.fft.irfft(np.fft.rfft(out, size) * np.conj(np.fft.rfft(burst, size)), size)
    return int(np.argmax(xcorr[: int(_MAX_DELAY * rate)]))


def _encode_decode(x: np.ndarray, codec: Codec, rate: int, bit_rate: int) -> np.ndarray:
    """Encode float samples frame by frame, decode the packets, return the decoded samples at `rate`."""
    import av  # FFmpeg's codecs: imported only when a codec augmentation is on
    enc = av.CodecContext.create(codec.encoder, "w")
    enc.sample_rate, enc.layout, enc.bit_rate, enc.time_base = rate, "mono", bit_rate, Fraction(1, rate)
    fmt = next((f for f in enc.codec.audio_formats if f.name in ("flt", "fltp")), enc.codec.audio_formats[0])
    enc.format, enc.options = fmt, dict(codec.options)
    enc.open()
    dec = av.CodecContext.create(codec.decoder, "r")
    dec.sample_rate, dec.layout = rate, "mono"
    if enc.extradata:
        dec.extradata = enc.extradata
    size = enc.frame_size or 1024
    padded = np.zeros(-(-len(x) // size) * size + size, np.float32)  # whole frames, one more to flush
    padded[: len(x)] = x
    if fmt.name.startswith("s16"):
        padded = (np.clip(padded, -1, 1) * 32767).astype(np.int16)
    out, out_rate = [], rate
    for start in range(0, len(padded) + 1, size):  # the last pass (None) flushes the encoder
        frame = None
        if start < len(padded):
            frame = av.AudioFrame.from_ndarray(padded[None, start : start + size], format=fmt.name, layout="mono")
            frame.sample_rate, frame.pts = rate, start
        for packet in enc.encode(frame):
            for decoded in dec.decode(packet):
                out.append(decoded.to_ndarray().reshape(-1))
                out_rate = decoded.sample_rate
    y = np.concatenate(out) if out else np.zeros(0, np.float32)
    y = y.astype(np.float32) / 32768.0 if y.dtype == np.int16 else y.astype(np.float32)
    if out_rate != rate:  # the Opus decoders answer at 48 kHz
        y = AF.resample(torch.from_numpy(y), out_rate, rate).numpy()
    return y
