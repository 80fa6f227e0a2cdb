"""Room impulse responses of simulated shoebox rooms, for reverberation augmentation.

The early part comes from the image-source method (Allen & Berkley 1979): every mirror image of
the talker in the walls that arrives within EARLY_SECONDS of the direct sound, delayed by its
distance, attenuated by 1/(4 pi d) and by sqrt(1 - absorption) per wall it bounced off. Later
reflections arrive too densely to matter one by one, so the rest is Gaussian noise at the image
sources' expected energy density, c / (4 pi V) per second, decaying by 60 dB in the room's
Eyring RT60. (A full image-source RIR needs orders of 50-90 for a 1 s room, 0.1-0.7 s each in
pyroomacoustics; this takes a few milliseconds.) The response is cut to start at the direct
path, so the reverberant speech is aligned with the dry speech and its labels.
Not modelled: frequency-dependent absorption and air absorption (the tail decays equally at all
frequencies), directivity of talker and microphone, fractional delays (arrivals are rounded to
the nearest sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

SPEED_OF_SOUND = 343.0  # m/s
EARLY_SECONDS = 0.05  # reflections this soon after the direct sound are image sources, later ones the diffuse tail
MAX_RT60 = 2.0  # seconds of tail at most: a bigger, barer room is a cathedral, not a recording room
WALL_MARGIN = 0.3  # metres: talker and microphone stay this far from every surface


@dataclass(frozen=True)
class Room:
    size: tuple[float, float, float]  # metres: length, width, height
    absorption: float  # fraction of sound energy every surface absorbs per reflection, in (0, 1)
    source: tuple[float, float, float]  # the talker's mouth, metres from the corner at the origin
    mic: tuple[float, float, float]


def eyring_rt60(size: tuple[float, float, float], absorption: float) -> float:
    """Seconds for the sound energy to fall by 60 dB: 0.161 V / (-S ln(1 - absorption))."""
    lx, ly, lz = size
    volume, surface = lx * ly * lz, 2 * (lx * ly + ly * lz + lx * lz)
    return 0.161 * volume / (-surface * math.log1p(-absorption))


def random_room(gen: torch.Generator, size: tuple[float, float], height: tuple[float, float],
                absorption: tuple[float, float], distance: tuple[float, float]) -> Room:
    """A room with floor sides drawn from `size`, height from `height`; the microphone anywhere at
    least WALL_MARGIN from the surfaces, the talker's mouth 1.1-1.8 m high and `distance` metres
    away horizontally, in a random direction (mirrored where it would leave the room)."""
    u = torch.rand(10, generator=gen, dtype=torch.float64).tolist()
    dims = (_lerp(size, u[0]), _lerp(size, u[1]), _lerp(height, u[2]))
    lo, hi = [WALL_MARGIN] * 3, [d - WALL_MARGIN for d in dims]
    mic = [_lerp((lo[i], hi[i]), u[3 + i]) for i in range(3)]
    angle, r = 2 * math.pi * u[6], _lerp(distance, u[7])
    step = [r * math.cos(angle), r * math.sin(angle), _lerp((1.1, 1.8), u[8]) - mic[2]]
    source = []
    for i in range(3):
        x = mic[i] + step[i] if lo[i] <= mic[i] + step[i] <= hi[i] else mic[i] - step[i]
        source.append(min(max(x, lo[i]), hi[i]))
    return Room(dims, _lerp(absorption, u[9]), tuple(source), tuple(mic))


def room_rir(room: Room, sample_rate: int, gen: torch.Generator) -> Tensor:
    """The impulse response from talker to microphone, float32, starting with the direct path (1.0)."""
    rt60 = min(eyring_rt60(room.size, room.absorption), MAX_RT60)
    direct = math.dist(room.source, room.mic) / SPEED_OF_SOUND
    early = direct + EARLY_SECONDS
    n = math.ceil(max(rt60, early + 0.01) * sample_rate)
    rir = torch.zeros(n, dtype=torch.float64)
    delays, gains = _image_sources(room, early)
    rir.index_add_(0, (delays * sample_rate).round().long().clamp(max=n - 1), gains)
    start = int(early * sample_rate)
    if start < n:  # the diffuse tail: the images' expected energy per sample, decaying at the RT60
        volume = math.prod(room.size)
        t = torch.arange(start, n, dtype=torch.float64) / sample_rate
        level = math.sqrt(SPEED_OF_SOUND / (4 * math.pi * volume * sample_rate))
        rir[start:] += level * torch.randn(n - start, generator=gen, dtype=torch.float64) * 10 ** (-3 * t / rt60)
    rir = rir[round(direct * sample_rate) :]  # align: the direct sound lands on sample 0
    return (rir / rir[0]).float()


def _image_sources(room: Room, max_seconds: float) -> tuple[Tensor, Tensor]:
    """Delays (s) and amplitudes of the talker's images that reach the microphone within
    `max_seconds`: per axis, image coordinate (1 - 2q) s + 2 n L with |n - q| + |n| reflections."""
    reach = SPEED_OF_SOUND * max_seconds
    beta = math.sqrt(1.0 - room.absorption)  # amplitude kept per reflection
    offsets, bounces = [], []
    for s, m, length in zip(room.source, room.mic, room.size):
        n = torch.arange(-math.ceil(reach / (2 * length)) - 1, math.ceil(reach / (2 * length)) + 2,
                         dtype=torch.float64)
        q = torch.tensor([0.0, 1.0], dtype=torch.float64)
        coord = (1 - 2 * q)[:, None] * s + 2 * n[None, :] * length  # (2, N)
        offsets.append((coord - m).reshape(-1))
        bounces.append(((n[None, :] - q[:, None]).abs() + n[None, :].abs()).reshape(-1))
    dx, dy, dz = offsets
    dist = (dx[:, None, None] ** 2 + dy[None, :, None] ** 2 + dz[None, None, :] ** 2).sqrt()  # (X, Y, Z)
    refl = bounces[0][:, None, None] + bounces[1][None, :, None] + bounces[2][None, None, :]
    keep = dist < reach
    dist, refl = dist[keep].clamp(min=0.01), refl[keep]  # (a talker on the microphone: 1 cm)
    return dist / SPEED_OF_SOUND, beta**refl / (4 * math.pi * dist)


def _lerp(bounds: tuple[float, float], u: float) -> float:
    return bounds[0] + (bounds[1] - bounds[0]) * u
