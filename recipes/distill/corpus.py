"""The audio a Whisper student distills from (no transcripts needed): a JSONL manifest with unique ids.

    python recipes/distill/corpus.py [--commands 1000] [--people 1200] [--out data/distill/audio.jsonl]

Sources, each used when present:
- real people (the brief allows them for unlabeled self-distillation, never for evaluation here): KDE's
  ktuberling-data (72 spoken English words, /usr/share/ktuberling/sounds/en), klettres-data (the English
  alphabet and syllables, /usr/share/klettres/en) and hedgewars-data (the game's English voice packs:
  exclamations, taunts and grunts by ten voices) and tuxpaint-stamps-default (stamp names and descriptions
  read aloud: the English ones); no transcripts are read from them
  (recipes/distill/apt-packages.txt installs the packages);
- the synthetic corpora of recipes/synth (data/synth/commands, data/synth/people): the first N training
  utterances of each, their transcripts kept as `reference` by `asr teach`.
The real dev set (recipes/real: alsa, JFK, warzone2100) is left out: it is where the student is measured.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import soundfile as sf

from asr.data.manifest import read_manifest
from asr.storage import write_jsonl

ROOT = Path(__file__).resolve().parents[2]
HEDGEWARS = Path("/usr/share/games/hedgewars/Data/Sounds/voices")
# the English-speaking voice packs (Default_es, _pl, _ru, _uk and Russian_pl speak other languages)
HEDGEWARS_EN = ("British", "Classic", "Default", "HillBilly", "Mobster", "Pirate", "Robot", "Russian", "Singer",
                "Surfer")
REAL = {"ktuberling": [Path("/usr/share/ktuberling/sounds/en")],
        "klettres": [Path("/usr/share/klettres/en/alpha"), Path("/usr/share/klettres/en/syllab")],
        "hedgewars": [HEDGEWARS / pack for pack in HEDGEWARS_EN]}
TUXPAINT = Path("/usr/share/tuxpaint/stamps")  # stamp names and descriptions read aloud, in many languages


def tuxpaint_english() -> list[Path]:
    """The English recordings among Tux Paint's stamp sounds: descriptions (NAME_desc.ogg, English unless
    suffixed) and names (NAME_en*.ogg); the other .ogg files are sound effects or other languages."""
    if not TUXPAINT.is_dir():
        return []
    return sorted(p for p in TUXPAINT.rglob("*.ogg") if p.name.endswith("_desc.ogg") or "_en" in p.stem)


def real_entries() -> list[dict]:
    out = []
    for path in tuxpaint_english():
        rel = path.relative_to(TUXPAINT).with_suffix("")
        out.append({"id": "tuxpaint-" + "-".join(rel.parts), "audio": str(path),
                    "duration": round(sf.info(str(path)).duration, 3), "source": "tuxpaint"})
    for source, folders in REAL.items():
        for folder in folders:
            for path in sorted(folder.glob("*.ogg")):
                try:
                    duration = sf.info(str(path)).duration
                except RuntimeError as err:
                    print(f"skipping {path}: {err}")
                    continue
                out.append({"id": f"{source}-{folder.name}-{path.stem}", "audio": str(path),
                            "duration": round(duration, 3), "source": source})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=1000)
    ap.add_argument("--people", type=int, default=1200)
    ap.add_argument("--out", default=str(ROOT / "data/distill/audio.jsonl"))
    args = ap.parse_args()
    entries = real_entries()
    for corpus, n in (("commands", args.commands), ("people", args.people)):
        manifest = ROOT / f"data/synth/{corpus}/train.jsonl"
        if n and manifest.is_file():
            entries += [{**e, "id": f"{corpus}-{e['id']}", "source": corpus} for e in read_manifest(manifest)[:n]]
        elif n:
            print(f"{manifest} is missing (recipes/synth/run.sh builds it): left out")
    write_jsonl(args.out, entries)
    hours = sum(e["duration"] for e in entries) / 3600
    print(f"{args.out}: {len(entries)} utterances, {hours:.2f} h")


if __name__ == "__main__":
    main()
