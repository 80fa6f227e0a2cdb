"""Pack a corpus for the GPU machine: its audio as Opus (libsndfile through soundfile, so the machine
needs no FFmpeg), manifests whose paths point into the pack, and the wheels of the packages the
machine's image lacks, all under one folder small enough to travel with the working tree (64 MiB,
the repository's own ~10 MB included).

    python recipes/gpu/pack.py data/synth/commands exp/gpu_pack --max-hours 5   # 5 of the demo's 6.8 h: 27.6 MB
    python recipes/gpu/pack.py data/synth/commands exp/gpu_pack --splits train dev --max-hours 3

Opus at libsndfile's lowest bit rate (compression level 1.0: about 9.5 kbit/s of audio, about 4 KB for a
2-second command with the Ogg pages around it) keeps wideband speech intelligible; train and dev are
packed alike, so the model trains on what it is scored on. Each file is written once (a pack that was
cut short is finished by running it again).
The wheels (--wheels, the default): soundfile, jiwer and rapidfuzz for CPython 3.12 on x86-64, the
machine's Python (recipes/gpu/run.sh installs them there when its python3 lacks them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from asr.audio.read import load_audio
from asr.data.manifest import read_manifest, write_manifest

WHEELS = ["soundfile", "jiwer", "rapidfuzz"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def pack_split(entries: list[dict], out: Path, split: str, level: float, max_hours: float) -> list[dict]:
    audio = out / "audio" / split
    audio.mkdir(parents=True, exist_ok=True)
    packed, seconds = [], 0.0
    for e in entries:
        if max_hours and seconds + e["duration"] > max_hours * 3600:
            break
        dst = audio / f"{e['id']}.opus"
        if not dst.exists():
            wav = load_audio(e["audio"], 16000)
            tmp = dst.with_suffix(".tmp")
            sf.write(tmp, wav, 16000, format="OGG", subtype="OPUS", compression_level=level)
            os.replace(tmp, dst)
        packed.append({**e, "audio": str(dst)})
        seconds += e["duration"]
    return packed


def download_wheels(out: Path) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(out / "wheels"),
                    *WHEELS], check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", type=Path, help="a folder of manifests (train.jsonl, dev.jsonl, ...)")
    p.add_argument("out", type=Path, help="the pack (inside the repository, git-ignored: exp/gpu_pack)")
    p.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    p.add_argument("--level", type=float, default=1.0, help="libsndfile's Opus compression level (1.0: smallest)")
    p.add_argument("--max-hours", type=float, default=0.0, help="at most this much of each split (0: all)")
    p.add_argument("--no-wheels", dest="wheels", action="store_false")
    args = p.parse_args(argv)

    summary = {}
    for split in args.splits:
        src = args.corpus / f"{split}.jsonl"
        entries = pack_split(read_manifest(src), args.out, split, args.level, args.max_hours)
        write_manifest(args.out / f"{split}.jsonl", entries)
        summary[split] = {"utterances": len(entries), "hours": round(sum(e["duration"] for e in entries) / 3600, 2)}
    if args.wheels:
        download_wheels(args.out)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    summary["megabytes"] = round(size / 2**20, 1)
    (args.out / "pack.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
