"""A noisy copy of a manifest: each utterance mixed with a recorded sound effect from Debian's
warzone2100-data (69 of the 76 clips under audio/sfx, the ones of 0.3 s or more: weapons, vehicles,
explosions, buildings, the interface), looped over the utterance at a seeded SNR. The sounds are
recordings our augmentation never makes (asr/augment.py's noise is generated), so a model's WER here
says how it copes with sound it was not built to expect.

    python recipes/real/add_sounds.py data/synth/commands_kokoro/test-unseen-voice.jsonl \
        data/real/unseen_sfx --snr 10

Writes OUT/<stem>.jsonl (text and speaker as in the input) and OUT/wav/*.wav (16 kHz).
"""

from __future__ import annotations

import argparse
import random
import sys
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from asr.audio.read import load_audio
from asr.storage import read_jsonl, write_jsonl
from asr.train.augment import add_noise

ROOT = Path(__file__).resolve().parents[2]

SR = 16000
WARZONE = Path("/usr/share/games/warzone2100/base.wz")


def sound_effects(min_seconds: float = 0.3) -> list[tuple[str, np.ndarray]]:
    """(name, 16 kHz audio) of each warzone2100 sound effect at least `min_seconds` long and not silent."""
    if not WARZONE.is_file():
        sys.exit(f"{WARZONE} is missing: apt-get install warzone2100-data")
    out = []
    with zipfile.ZipFile(WARZONE) as z:
        for name in sorted(n for n in z.namelist() if n.startswith("audio/sfx/") and n.endswith(".ogg")):
            wav = load_audio(z.read(name), SR)
            if len(wav) >= min_seconds * SR and np.sqrt(np.mean(wav**2)) > 1e-3:
                out.append((Path(name).stem, wav))
    return out


def mix(speech: np.ndarray, sound: np.ndarray, snr_db: float, rng: random.Random) -> np.ndarray:
    """`speech` plus `sound` (looped from a random start, to the speech's length) at `snr_db`."""
    start = rng.randrange(len(sound))
    noisy = add_noise(torch.from_numpy(speech), torch.from_numpy(np.roll(sound, -start)), snr_db).numpy()
    peak = np.max(np.abs(noisy))
    return (noisy / peak * 0.95 if peak > 0.95 else noisy).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("manifest", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--snr", type=float, default=10.0, help="speech-to-sound ratio in dB")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sounds = sound_effects()
    rng = random.Random(args.seed)
    (args.out / "wav").mkdir(parents=True, exist_ok=True)
    rows, used = [], set()
    for e in read_jsonl(args.manifest):
        name, sound = rng.choice(sounds)
        used.add(name)
        wav = mix(load_audio(e["audio"], SR), sound, args.snr, rng)
        dst = (args.out / "wav" / f"{e['id']}.wav").resolve()
        sf.write(dst, wav, SR, subtype="PCM_16")
        rows.append({**e, "audio": str(dst), "duration": round(len(wav) / SR, 3), "sound": name})
    write_jsonl(args.out / f"{args.manifest.stem}.jsonl", rows)
    print(f"{len(rows)} utterances with {len(used)} of {len(sounds)} sound effects at {args.snr:g} dB -> "
          f"{args.out / (args.manifest.stem + '.jsonl')}")


if __name__ == "__main__":
    main()
