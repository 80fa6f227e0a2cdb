"""Corpora on disk -> JSONL manifests, one per split, and a list of what was skipped and why.

    prepare("librispeech", "/data/LibriSpeech", "data/librispeech")   # train-clean-100.jsonl, dev-clean.jsonl, ...
    prepare("commonvoice", "/data/cv-corpus-17.0/en", "data/cv")      # train.jsonl, dev.jsonl, test.jsonl
    prepare("kaldi", "data/train", "data/manifests")                  # train.jsonl (segments -> offset/duration)
    prepare("folder", "/data/clips", "data/clips")                    # clips.jsonl from a.wav + a.txt (or .lab)

Durations are measured from the audio headers (and, for Kaldi segments, from the segment times
checked against the recording's length); `verify=True` also decodes every file. Missing, empty,
unreadable or truncated audio and missing or empty transcripts never stop a run: each is written
to OUT/<split>.rejected.tsv (id, file, reason) and counted in the summary. Texts are kept as given
(stripped): normalization happens at training time with `asr.text.normalize`.
"""

from __future__ import annotations

import csv
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asr.audio.files import AUDIO_EXTENSIONS
from asr.audio.read import AudioError, audio_duration, load_audio
from asr.data.manifest import write_manifest

LAYOUTS = ("librispeech", "commonvoice", "kaldi", "folder")
CV_SPLITS = ("train", "dev", "test")
SEGMENT_SLACK = 0.02  # seconds a Kaldi segment may overrun its recording (frame rounding) before it is rejected


@dataclass
class Split:
    """One manifest to write: candidate entries and what was already rejected while reading the layout."""
    name: str
    entries: list[dict]  # {"id", "audio", "text", "speaker"} (+ "offset", "duration" for segments)
    rejected: list[tuple[str, str, str]]  # (id, file, reason)


@dataclass
class Prepared:
    name: str
    manifest: Path
    rejected_file: Path
    kept: int
    skipped: int
    hours: float


def prepare(layout: str, source: str | Path, out_dir: str | Path, splits: list[str] | None = None,
            verify: bool = False, workers: int = 4, language: str | None = None) -> list[Prepared]:
    """Write OUT/<split>.jsonl and OUT/<split>.rejected.tsv for each split of the corpus at `source`.

    splits: LibriSpeech subsets or Common Voice tsv names to keep (default: every subset found;
    train, dev and test for Common Voice). verify: decode every file, not just its header.
    language: the entries' "language" field (`asr evaluate` picks the normalizer and the unit by it);
    Common Voice's comes from its `locale` column or the folder's name ("es", "zh-CN" -> "zh") unless given.
    """
    readers = {"librispeech": read_librispeech, "commonvoice": read_commonvoice, "kaldi": read_kaldi,
               "folder": read_folder}
    if layout not in readers:
        raise ValueError(f"unknown layout {layout!r}; one of: {', '.join(LAYOUTS)}")
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such corpus folder")
    found = readers[layout](source, splits)
    if not found:
        raise ValueError(f"{source}: nothing found in the {layout} layout")
    if language:
        for split in found:
            split.entries = [{**e, "language": language} for e in split.entries]
    out_dir = Path(out_dir)
    results = [_finish(split, out_dir, verify, workers) for split in found]
    for r in results:
        print(f"{r.name}: kept {r.kept}, skipped {r.skipped}, {r.hours:.2f} h -> {r.manifest}"
              + (f" (skipped: {r.rejected_file})" if r.skipped else ""))
    print(f"prepared {len(results)} manifest(s): kept {sum(r.kept for r in results)}, "
          f"skipped {sum(r.skipped for r in results)}, {sum(r.hours for r in results):.2f} hours")
    return results


# --------------------------------------------------------------------------- measuring and writing


def _probe(path: str) -> float | str:
    """Duration in seconds, or the reason the file cannot be used."""
    try:
        return audio_duration(path)
    except AudioError as e:
        return e.reason if Path(path).exists() else "audio file not found"


def _decode(e: dict) -> str | None:
    try:
        load_audio(e["audio"], offset=e.get("offset"), duration=e["duration"] if "offset" in e else None)
    except AudioError as err:
        return err.reason
    return None


def _finish(split: Split, out_dir: Path, verify: bool, workers: int) -> Prepared:
    rejected = list(split.rejected)
    with ThreadPoolExecutor(max(1, workers)) as pool:  # libsndfile releases the GIL: I/O overlaps
        paths = sorted({e["audio"] for e in split.entries})
        lengths = dict(zip(paths, pool.map(_probe, paths)))
        kept = []
        for e in split.entries:
            e = {**e, "text": e["text"].strip()}
            length = lengths[e["audio"]]
            if isinstance(length, str):
                rejected.append((e["id"], e["audio"], length))
            elif not e["text"]:
                rejected.append((e["id"], e["audio"], "empty transcript"))
            elif "offset" not in e:
                kept.append({**e, "duration": round(length, 4)})
            elif e["offset"] + e["duration"] > length + SEGMENT_SLACK:
                rejected.append((e["id"], e["audio"], f"segment {e['offset']:.2f}-{e['offset'] + e['duration']:.2f} s "
                                                      f"ends past the end of the recording ({length:.2f} s)"))
            else:
                kept.append({**e, "duration": round(min(e["duration"], length - e["offset"]), 4)})
        if verify:
            reasons = list(pool.map(_decode, kept))
            rejected += [(e["id"], e["audio"], r) for e, r in zip(kept, reasons) if r]
            kept = [e for e, r in zip(kept, reasons) if not r]
    order = ("id", "audio", "offset", "duration", "text", "speaker", "language")
    kept = [{k: e[k] for k in order if k in e} for e in kept]
    manifest, rejected_file = out_dir / f"{split.name}.jsonl", out_dir / f"{split.name}.rejected.tsv"
    write_manifest(manifest, kept)
    with open(rejected_file, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "file", "reason"])
        w.writerows(rejected)
    return Prepared(split.name, manifest, rejected_file, len(kept), len(rejected),
                    sum(e["duration"] for e in kept) / 3600)


def _abs(path: Path) -> str:
    return os.path.abspath(path)  # absolute, symlinks kept (resolve() would follow them)


def _read_text(path: Path) -> str | None:
    try:
        return " ".join(path.read_text(encoding="utf-8").splitlines())
    except (UnicodeDecodeError, OSError):
        return None


# --------------------------------------------------------------------------- layouts


def read_librispeech(source: Path, splits: list[str] | None = None) -> list[Split]:
    """SRC/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt + <id>.flac; SRC may be one subset."""
    by_subset: dict[str, Split] = {}
    for trans in sorted(source.rglob("*.trans.txt")):
        chapter = trans.parent
        subset = chapter.parent.parent.name
        if splits and subset not in splits:
            continue
        split = by_subset.setdefault(subset, Split(subset, [], []))
        listed = set()
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            uid, _, text = line.strip().partition(" ")
            listed.add(uid)
            split.entries.append({"id": uid, "audio": _abs(chapter / f"{uid}.flac"), "text": text,
                                  "speaker": chapter.parent.name})
        for flac in sorted(chapter.glob("*.flac")):
            if flac.stem not in listed:
                split.rejected.append((flac.stem, _abs(flac), f"no transcript line in {trans.name}"))
    missing = sorted(set(splits or []) - set(by_subset))
    if missing:
        raise ValueError(f"{source}: no LibriSpeech subset(s) {', '.join(missing)}")
    return list(by_subset.values())


def read_commonvoice(source: Path, splits: list[str] | None = None) -> list[Split]:
    """SRC/<split>.tsv (header with client_id, path, sentence; locale where a release has it) + SRC/clips/<path>.
    Each entry's language: its locale, else the folder's name when it is a locale code, as Whisper
    writes languages ("es-ES" -> "es")."""
    folder_language = _language_code(source.name, known_only=True)
    names = list(splits or [s for s in CV_SPLITS if (source / f"{s}.tsv").exists()])
    missing = [s for s in names if not (source / f"{s}.tsv").exists()]
    if missing:
        raise ValueError(f"{source}: no {', '.join(s + '.tsv' for s in missing)}")
    out = []
    for name in names:
        tsv = source / f"{name}.tsv"
        split = Split(name, [], [])
        with open(tsv, encoding="utf-8", newline="") as f:
            # QUOTE_NONE: sentences contain quote characters that are text, not csv quoting
            rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(rows, [])
            need = [c for c in ("client_id", "path", "sentence") if c not in header]
            if need:
                raise ValueError(f"{tsv}: no column(s) {', '.join(need)} in the header")
            col = {c: header.index(c) for c in ("client_id", "path", "sentence", "locale") if c in header}
            for n, row in enumerate(rows, 2):
                if len(row) != len(header):
                    split.rejected.append((f"{tsv.name}:{n}", _abs(tsv), f"line has {len(row)} fields, "
                                                                         f"header has {len(header)}"))
                    continue
                clip = source / "clips" / row[col["path"]]
                if not clip.suffix and not clip.exists():  # early releases left the extension out
                    clip = clip.with_name(clip.name + ".mp3")
                language = _language_code(row[col["locale"]]) if "locale" in col else folder_language
                split.entries.append({"id": Path(row[col["path"]]).stem, "audio": _abs(clip),
                                      "text": row[col["sentence"]], "speaker": row[col["client_id"]],
                                      **({"language": language} if language else {})})
        out.append(split)
    return out


def _language_code(locale: str, known_only: bool = False) -> str | None:
    """A Common Voice locale ("es", "zh-CN", "sv-SE", "cnh") -> its language code ("es", "zh", "sv",
    "cnh"); None for what is not one. known_only (a folder's name): only Whisper's language codes
    count, so a folder named "cv" or "dev" is not taken for a language."""
    m = re.fullmatch(r"([a-z]{2,3})(?:-[A-Za-z0-9]+)*", locale.strip())
    code = m.group(1) if m else None
    return code if code and (not known_only or code in WHISPER_LANGUAGES) else None


WHISPER_LANGUAGES = frozenset(
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt la mi "
    "ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af oc ka be tg sd "
    "gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su yue".split())


def _table(path: Path) -> dict[str, str]:
    """A Kaldi table file: first field -> the rest of the line."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            out[key] = value.strip()
    return out


def read_kaldi(source: Path, splits: list[str] | None = None) -> list[Split]:
    """A Kaldi data dir (wav.scp, text, optional segments and utt2spk), or a folder of them (splits: their names)."""
    if not (source / "wav.scp").exists():
        dirs = sorted(d for d in source.iterdir() if (d / "wav.scp").exists() and (not splits or d.name in splits))
        return [s for d in dirs for s in read_kaldi(d)]
    split = Split(source.name, [], [])
    scp = _table(source / "wav.scp")
    pipes = {rec for rec, where in scp.items() if where.endswith("|")}
    recordings = {rec: _kaldi_path(source, where) for rec, where in scp.items() if rec not in pipes}
    texts = _table(source / "text") if (source / "text").exists() else {}
    speakers = _table(source / "utt2spk") if (source / "utt2spk").exists() else {}
    utts: dict[str, tuple] = {rec: (rec, None, None) for rec in scp}
    if (source / "segments").exists():
        utts = {}
        for utt, rest in _table(source / "segments").items():
            try:
                rec, start, end = rest.split()[0], float(rest.split()[1]), float(rest.split()[2])
            except (IndexError, ValueError):
                split.rejected.append((utt, str(source / "segments"), f"malformed segments line: {rest!r}"))
                continue
            utts[utt] = (rec, start, end)
    for utt, (rec, start, end) in utts.items():
        if rec in pipes:
            split.rejected.append((utt, scp[rec], "wav.scp entry is a pipe command (unsupported: write the audio "
                                                  "to files first)"))
        elif rec not in recordings:
            split.rejected.append((utt, rec, "recording not in wav.scp"))
        elif utt not in texts:
            split.rejected.append((utt, recordings[rec], "no transcript in text"))
        elif start is not None and (start < 0 or end <= start):  # (Kaldi's end -1, "to the end", included)
            split.rejected.append((utt, recordings[rec], f"invalid segment times {start} {end}"))
        else:
            e = {"id": utt, "audio": recordings[rec], "text": texts[utt], "speaker": speakers.get(utt, "")}
            if start is not None:
                e |= {"offset": start, "duration": round(end - start, 4)}
            split.entries.append(e)
    return [split]


def _kaldi_path(source: Path, where: str) -> str:
    """Relative paths are relative to the current folder (Kaldi's convention), else to the data dir."""
    path = Path(where)
    return _abs(path if path.is_absolute() or path.exists() else source / path)


def read_folder(source: Path, splits: list[str] | None = None) -> list[Split]:
    """Audio files with a same-stem .txt or .lab transcript beside them (recursive); speaker = folder name."""
    if splits:
        raise ValueError("the folder layout has no splits: prepare each folder separately")
    split = Split(source.name, [], [])
    audio = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    stems = {p.with_suffix("") for p in audio}
    for p in audio:
        uid = p.relative_to(source).with_suffix("").as_posix().replace("/", "-")
        transcripts = [t for t in (p.with_suffix(".txt"), p.with_suffix(".lab")) if t.exists()]
        if not transcripts:
            split.rejected.append((uid, _abs(p), "no transcript (.txt or .lab beside it)"))
            continue
        text = _read_text(transcripts[0])
        if text is None:
            split.rejected.append((uid, _abs(transcripts[0]), "transcript is not readable UTF-8 text"))
            continue
        split.entries.append({"id": uid, "audio": _abs(p), "text": text, "speaker": p.parent.name})
    for t in sorted([*source.rglob("*.txt"), *source.rglob("*.lab")]):
        if t.with_suffix("") not in stems:
            uid = t.relative_to(source).with_suffix("").as_posix().replace("/", "-")
            split.rejected.append((uid, _abs(t), "transcript without an audio file"))
    return [split]
