"""A small dev set of real human speech from what is installed: a JSONL manifest {id, audio, text,
duration, source} and 16 kHz mono WAV copies under data/real/ (every engine then reads the same samples).

    python recipes/real/make_devset.py [--out data/real]

Sources (each used when present; all freely redistributable):
- alsa-utils' /usr/share/sounds/alsa/*.wav: 8 spoken channel names ("Front Center", ...; Noise.wav skipped);
- tests/fixtures/jfk.flac: J. F. Kennedy's inaugural address, 11 s (public domain; from whisper.cpp's samples);
- Debian's warzone2100-data (apt-get install warzone2100-data): the game's spoken prompts (11 kHz Ogg),
  texts from the comments of audio/audio.cfg ("Construction Started", ...); beeps skipped, and the sound
  effects under audio/sfx/ (a cannon's shot, a blimp's engine: their comments name the weapon or vehicle,
  nobody speaks; before 2026-12-08 twelve of them were in the set). The comments are labels, not verbatim
  transcripts, so some WER here is the labels' (equal for every engine).
Writes OUT/dev.jsonl (all), OUT/<source>.jsonl, and OUT/select.jsonl (every 4th clip) + OUT/heldout.jsonl (the
rest): a model whose checkpoints or settings were chosen on `select` is reported on `heldout`.
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

import soundfile as sf

from asr.audio.read import load_audio
from asr.storage import write_jsonl

ROOT = Path(__file__).resolve().parents[2]

SR = 16000
ALSA = Path("/usr/share/sounds/alsa")
WARZONE = Path("/usr/share/games/warzone2100/base.wz")
JFK_TEXT = ("And so, my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
NOT_SPEECH = re.compile(r"^(beep\d*|gmeshtdn)\.ogg$")
SFX = "audio/sfx/"  # weapons and vehicles: no speech


def alsa() -> list[tuple[str, object, str]]:
    return [(f"alsa-{p.stem}", p, p.stem.replace("_", " ")) for p in sorted(ALSA.glob("*.wav")) if p.stem != "Noise"]


def jfk() -> list[tuple[str, object, str]]:
    p = ROOT / "tests/fixtures/jfk.flac"
    return [("jfk", p, JFK_TEXT)] if p.is_file() else []


def warzone(tmp: Path) -> list[tuple[str, object, str]]:
    """(id, extracted .ogg, label) for each spoken prompt with a comment in audio/audio.cfg."""
    if not WARZONE.is_file():
        return []
    out = []
    with zipfile.ZipFile(WARZONE) as z:
        cfg = z.read("audio/audio.cfg").decode("latin-1")
        files = {Path(n).name: n for n in z.namelist() if n.startswith("audio/") and n.endswith(".ogg")}
        for name, label in re.findall(r'audio\s+"([^"]+)"[^\n/]*/\*([^*]*)\*/', cfg):
            if NOT_SPEECH.match(name) or name not in files or not re.search(r"[A-Za-z0-9]", label):
                continue
            dst = tmp / name
            dst.write_bytes(z.read(files[name]))
            # a sound effect keeps its place (None) so that select/heldout stay the clips they were
            out.append((f"wz-{Path(name).stem}", None if files[name].startswith(SFX) else dst, label.strip()))
    return out


def split(every: list[dict | None], out: Path) -> None:
    """OUT/select.jsonl (every 4th clip: for choosing checkpoints and settings) and OUT/heldout.jsonl (the
    rest: for reporting a model chosen on the other part); None (a place kept for a clip left out)
    counts for the split and is not written."""
    write_jsonl(out / "select.jsonl", [e for e in every[3::4] if e])
    write_jsonl(out / "heldout.jsonl", [e for i, e in enumerate(every) if i % 4 != 3 and e])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "data/real"))
    args = ap.parse_args()
    out = Path(args.out)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    (out / "tmp").mkdir(exist_ok=True)
    every = []
    for source, items in (("alsa", alsa()), ("jfk", jfk()), ("warzone", warzone(out / "tmp"))):
        rows = []
        for uid, path, text in items:
            if path is None:  # not speech: left out, its place in the split kept
                every.append(None)
                continue
            wav = load_audio(str(path), SR)
            dst = out / "wav" / f"{uid}.wav"
            sf.write(dst, wav, SR, subtype="PCM_16")
            rows.append({"id": uid, "audio": str(dst), "text": text, "duration": round(len(wav) / SR, 3),
                         "source": source})
            every.append(rows[-1])
        if rows:
            write_jsonl(out / f"{source}.jsonl", rows)
        print(f"{source}: {len(rows)} clips, {sum(r['duration'] for r in rows):.0f} s")
    clips = [e for e in every if e]
    write_jsonl(out / "dev.jsonl", clips)
    split(every, out)
    for f in (out / "tmp").iterdir():
        f.unlink()
    (out / "tmp").rmdir()
    print(f"{len(clips)} clips -> {out / 'dev.jsonl'} ({len(every) - len(clips)} sound effects left out)")


if __name__ == "__main__":
    main()
