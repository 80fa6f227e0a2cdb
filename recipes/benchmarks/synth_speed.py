"""Synthesis speed per engine: real-time factor per core (seconds of CPU-bound wall time per second
of audio, in one process on one thread, as the corpus builder runs each worker).

    OMP_NUM_THREADS=1 nice python recipes/benchmarks/synth_speed.py [--engines kokoro espeak ...] [--sentences 20]

The same everyday and prose-like sentences for every engine, each through `synthesize` (the
corpus path: the engine, resampling to 16 kHz, trimming); Kokoro with base voices and blends. The
first sentence of each engine warms it up (model load) and is not timed. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SENTENCES = [
    "Meet me at the station at half past five on Thursday.",
    "The committee decided to postpone the vote until next spring.",
    "Could you send me the report before the meeting tomorrow morning?",
    "She walked along the river and watched the boats go by.",
    "Our flight to Denver leaves at seven forty in the evening.",
    "Please turn the music down, the baby is finally asleep.",
    "He paid twelve dollars and fifty cents for a cup of coffee.",
    "The old library closes early on Sundays during the summer.",
]


def voices_for(engine: str, n: int, rng: random.Random) -> list:
    """n voices of the engine drawn at random; Kokoro's alternate base voices and blends of them."""
    import asr.synth.kokoro as kokoro
    from asr.synth.engines import Voice, list_voices

    if engine != "kokoro":
        return [rng.choice(list_voices(engine)) for _ in range(n)]
    return [Voice("kokoro", rng.choice(kokoro.VOICES) if i % 2 else kokoro.random_blend(list(kokoro.VOICES), rng))
            for i in range(n)]


def measure(engine: str, n: int, seed: int = 0) -> dict:
    from asr.synth.engines import SAMPLE_RATE, synthesize

    rng = random.Random(seed)
    voices = voices_for(engine, n + 1, rng)
    synthesize(SENTENCES[0], voices[0])  # warm-up: model load
    audio_s = wall = 0.0
    for i in range(n):
        t = time.perf_counter()
        audio = synthesize(SENTENCES[i % len(SENTENCES)], voices[i + 1])
        wall += time.perf_counter() - t
        audio_s += len(audio) / SAMPLE_RATE
    return {"engine": engine, "utts": n, "audio_s": audio_s, "wall_s": wall}


def main() -> None:
    from asr.synth.engines import available_engines

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", nargs="+", default=None, help="default: every installed engine")
    ap.add_argument("--sentences", type=int, default=20)
    args = ap.parse_args()
    engines = args.engines or available_engines()
    print("| engine | utterances | audio s | synthesis s | real-time factor per core | x real time |")
    print("|---|---:|---:|---:|---:|---:|")
    for engine in engines:
        r = measure(engine, args.sentences)
        rtf = r["wall_s"] / r["audio_s"]
        print(
            f"| {engine} | {r['utts']} | {r['audio_s']:.1f} | {r['wall_s']:.1f} | {rtf:.3f} | {1 / rtf:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
