"""Live audio sources -> float32 mono blocks at a given rate, as the audio arrives.

    for block in pipe_blocks(sys.stdin.buffer, 16000): ...           # any container PyAV reads, or raw PCM
    for block in file_blocks("talk.mp3", 16000, realtime=True): ...  # played at real speed (demos, tests)
    for block in microphone_blocks(16000, device=None): ...          # PortAudio through sounddevice

A pipe is decoded as it streams in (`ffmpeg -i URL -f wav - | asr live -`, internet radio), never
read whole first. A missing package or audio device is an `AudioInputError` with one line that says
what to install or which devices there are.
"""

from __future__ import annotations

import queue
import time
from typing import BinaryIO, Iterator

import numpy as np

from asr.audio.read import Resampler, stream_audio

BLOCK = 0.1  # seconds per block from a file or a microphone


class AudioInputError(RuntimeError):
    """A live source that cannot be opened (no package, no device, not audio)."""


def file_blocks(path: str, rate: int, realtime: bool = False, block: float = BLOCK) -> Iterator[np.ndarray]:
    """A file in `block`-second pieces; with `realtime`, each no sooner than it would be heard."""
    step, start, sent = int(block * rate), time.monotonic(), 0
    for big in stream_audio(path, rate):
        for i in range(0, len(big), step):
            piece = big[i : i + step]
            if realtime:
                time.sleep(max(0.0, start + (sent + len(piece)) / rate - time.monotonic()))
            sent += len(piece)
            yield piece


def pipe_blocks(f: BinaryIO, rate: int, raw: bool = False, raw_rate: int = 16000,
                block: float = BLOCK) -> Iterator[np.ndarray]:
    """A byte stream as it arrives: raw 16-bit little-endian mono PCM at `raw_rate` (`raw`), or any
    container and codec PyAV (FFmpeg) can decode from a stream, mixed to mono and resampled."""
    if raw:
        yield from _raw_blocks(f, rate, raw_rate, block)
        return
    import av

    try:
        container = av.open(f, mode="r")
    except av.error.FFmpegError as e:
        raise AudioInputError(f"<stdin>: not an audio stream PyAV can read ({e}); raw PCM needs --raw") from None
    with container:
        if not container.streams.audio:
            raise AudioInputError("<stdin>: no audio stream in it")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                yield out.to_ndarray().reshape(-1).astype(np.float32)
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1).astype(np.float32)


def _raw_blocks(f: BinaryIO, rate: int, raw_rate: int, block: float) -> Iterator[np.ndarray]:
    resampler = Resampler(raw_rate, rate)
    size = 2 * max(1, int(block * raw_rate))
    carry = b""
    while True:
        data = f.read1(size) if hasattr(f, "read1") else f.read(size)
        if not data:
            break
        data, carry = carry + data, b""
        if len(data) % 2:
            data, carry = data[:-1], data[-1:]
        yield resampler(np.frombuffer(data, "<i2").astype(np.float32) / 32768.0)
    yield resampler.flush()


def _sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise AudioInputError("live input from a microphone needs the sounddevice package "
                              "(pip install 'asr[live]') and PortAudio (apt-get install libportaudio2)") from None
    except OSError as e:  # the package is there, the PortAudio library is not
        raise AudioInputError(f"PortAudio is not installed ({e}): apt-get install libportaudio2") from None
    return sounddevice


def input_devices() -> list[tuple[int, str, int]]:
    """(index, name, default sample rate) of each audio input device."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as e:
        raise AudioInputError(f"cannot list audio devices: {e}") from None
    return [(i, d["name"], int(d["default_samplerate"])) for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def microphone_blocks(rate: int, device: int | str | None = None, block: float = BLOCK) -> Iterator[np.ndarray]:
    """The microphone (`device`: index or name; None: the default input), mono at `rate`. A missing
    package or device raises here, before the first block."""
    sd = _sounddevice()
    if not input_devices():
        raise AudioInputError("no audio input device found (asr live --list-devices)")
    return _microphone(sd, rate, device, block)


def _microphone(sd, rate: int, device: int | str | None, block: float) -> Iterator[np.ndarray]:
    blocks: queue.Queue = queue.Queue()

    def callback(data, frames, when, status):
        blocks.put(data[:, 0].copy())

    try:
        stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32", device=device,
                                blocksize=int(block * rate), callback=callback)
    except (sd.PortAudioError, ValueError) as e:
        raise AudioInputError(f"cannot open audio input {device if device is not None else '(default)'}: {e}") from None
    with stream:
        while True:
            yield blocks.get()
