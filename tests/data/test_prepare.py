"""`asr prepare` on miniature corpora in each real layout, built from synthesized speech, each
with a corrupt file that must be reported by name and skipped."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio.read import load_audio
from asr.cli import build_parser, main
from asr.data.dataset import SpeechDataset
from asr.data.manifest import read_manifest
from asr.data.prepare import LAYOUTS, prepare
from asr.synth.engines import list_voices, synthesize

SR = 16000
TEXTS = ["turn on the kitchen lights", "what time is it", "play some music please",
         "set a timer for ten minutes", "call mom", "open the window"]
GARBAGE = b"this is not audio at all\n" * 40


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    voices = list_voices("espeak")
    return [synthesize(t, voices[i % 3]) for i, t in enumerate(TEXTS)]


def rejected(path: Path) -> dict[str, str]:
    """file name -> reason, from a <split>.rejected.tsv"""
    with open(path, newline="") as f:
        return {Path(r["file"]).name: r["reason"] for r in csv.DictReader(f, delimiter="\t")}


def by_id(manifest: Path) -> dict[str, dict]:
    return {e["id"]: e for e in read_manifest(manifest)}


# --------------------------------------------------------------------------- LibriSpeech


def make_librispeech(root: Path, speech) -> Path:
    corpus = {"train-clean-100": {("19", "198"): [0, 1, 2], ("26", "495"): [3]}, "dev-clean": {("84", "121"): [4, 5]}}
    for subset, chapters in corpus.items():
        for (spk, chap), utts in chapters.items():
            d = root / "LibriSpeech" / subset / spk / chap
            d.mkdir(parents=True)
            lines = []
            for k, i in enumerate(utts):
                uid = f"{spk}-{chap}-{k:04d}"
                sf.write(d / f"{uid}.flac", speech[i], SR, format="FLAC")
                lines.append(f"{uid} {TEXTS[i].upper()}")
            (d / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
    (root / "LibriSpeech/train-clean-100/19/198/19-198-0001.flac").write_bytes(GARBAGE)  # corrupt
    (root / "LibriSpeech/train-clean-100/26/495/26-495-0000.flac").unlink()  # listed, missing
    return root / "LibriSpeech"


def test_librispeech(tmp_path, speech):
    src = make_librispeech(tmp_path / "src", speech)
    results = prepare("librispeech", src, tmp_path / "out")
    assert sorted(r.name for r in results) == ["dev-clean", "train-clean-100"]
    train = by_id(tmp_path / "out/train-clean-100.jsonl")
    assert sorted(train) == ["19-198-0000", "19-198-0002"]
    e = train["19-198-0002"]
    assert e["text"] == "PLAY SOME MUSIC PLEASE" and e["speaker"] == "19"
    assert e["duration"] == pytest.approx(len(speech[2]) / SR, abs=1e-3)
    assert Path(e["audio"]).is_absolute() and np.allclose(load_audio(e["audio"]), speech[2], atol=1e-4)
    dev = by_id(tmp_path / "out/dev-clean.jsonl")
    assert sorted(dev) == ["84-121-0000", "84-121-0001"] and {d["speaker"] for d in dev.values()} == {"84"}
    bad = rejected(tmp_path / "out/train-clean-100.rejected.tsv")
    assert set(bad) == {"19-198-0001.flac", "26-495-0000.flac"}
    assert "not a readable audio file" in bad["19-198-0001.flac"] and "not found" in bad["26-495-0000.flac"]
    assert {r.name: (r.kept, r.skipped) for r in results} == {"train-clean-100": (2, 2), "dev-clean": (2, 0)}

    # one subset folder as SRC gives that subset's manifest only
    one = prepare("librispeech", src / "dev-clean", tmp_path / "one")
    assert [r.name for r in one] == ["dev-clean"] and by_id(tmp_path / "one/dev-clean.jsonl") == dev


# --------------------------------------------------------------------------- Common Voice

CV_HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
             "gender", "accents", "variant", "locale", "segment"]


def make_commonvoice(root: Path, speech) -> tuple[Path, str]:
    fmt = "MP3" if "MP3" in sf.available_formats() else "OGG"  # libsndfile >= 1.1 writes MP3
    ext = ".mp3" if fmt == "MP3" else ".ogg"
    (root / "clips").mkdir(parents=True)
    sentences = ['"Turn on the lights," he said.', "What's the time?", '"A quoted', "Set a timer.", "Call mom.",
                 "Open the window."]
    rows = {"train": [0, 1, 2], "dev": [3], "test": [4, 5]}
    for split, idx in rows.items():
        lines = ["\t".join(CV_HEADER)]
        for i in idx:
            name = f"common_voice_en_{100 + i}{ext}"
            sf.write(root / "clips" / name, speech[i], SR, format=fmt)
            lines.append("\t".join([f"client{i % 2}", name, f"s{i}", sentences[i], "", "2", "0", "", "", "", "",
                                    "en", ""]))
        (root / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    (root / "clips" / f"common_voice_en_101{ext}").write_bytes(GARBAGE)  # corrupt
    (root / "validated.tsv").write_text("\t".join(CV_HEADER) + "\n")
    return root, ext


def test_commonvoice(tmp_path, speech):
    src, ext = make_commonvoice(tmp_path / "cv", speech)
    results = prepare("commonvoice", src, tmp_path / "out")
    assert [r.name for r in results] == ["train", "dev", "test"]  # validated.tsv only when asked for
    train = by_id(tmp_path / "out/train.jsonl")
    assert sorted(train) == ["common_voice_en_100", "common_voice_en_102"]
    assert train["common_voice_en_100"]["text"] == '"Turn on the lights," he said.'  # quotes are text
    assert train["common_voice_en_102"]["text"] == '"A quoted'  # an unbalanced quote does not swallow lines
    assert train["common_voice_en_100"]["speaker"] == "client0"
    assert {e["language"] for e in train.values()} == {"en"}  # from the locale column
    for e in train.values():
        i = int(e["id"][-1])
        assert e["duration"] == pytest.approx(len(speech[i]) / SR, abs=0.08)  # MP3 frames pad the ends
    assert rejected(tmp_path / "out/train.rejected.tsv").keys() == {f"common_voice_en_101{ext}"}
    assert sorted(by_id(tmp_path / "out/test.jsonl")) == ["common_voice_en_104", "common_voice_en_105"]
    assert [r.name for r in prepare("commonvoice", src, tmp_path / "v", splits=["validated"])] == ["validated"]
    with pytest.raises(ValueError, match="other.tsv"):
        prepare("commonvoice", src, tmp_path / "o", splits=["other"])


def test_commonvoice_language(tmp_path, speech):
    """Without a locale column, a folder named as Common Voice names languages gives it ("zh-CN" ->
    "zh": counted in characters by asr evaluate); a folder with another name gives none, and
    --language sets it for any layout."""
    def tsv_without_locale(root: Path) -> Path:
        for split in ("train", "dev", "test"):
            rows = [line.split("\t") for line in (root / f"{split}.tsv").read_text().splitlines()]
            (root / f"{split}.tsv").write_text("\n".join("\t".join(r[:11]) for r in rows) + "\n")
        return root

    zh = tsv_without_locale(make_commonvoice(tmp_path / "zh-CN", speech)[0])
    prepare("commonvoice", zh, tmp_path / "zh")
    assert {e.get("language") for e in read_manifest(tmp_path / "zh/train.jsonl")} == {"zh"}
    other = tsv_without_locale(make_commonvoice(tmp_path / "cv", speech)[0])
    prepare("commonvoice", other, tmp_path / "none")
    assert {e.get("language") for e in read_manifest(tmp_path / "none/train.jsonl")} == {None}
    assert main(["prepare", "commonvoice", str(other), "--out", str(tmp_path / "es"), "--language", "es"]) == 0
    assert {e.get("language") for e in read_manifest(tmp_path / "es/test.jsonl")} == {"es"}


# --------------------------------------------------------------------------- Kaldi


def make_kaldi(root: Path, speech) -> tuple[Path, np.ndarray]:
    audio = root / "audio"
    audio.mkdir(parents=True)
    gap = np.zeros(SR // 2, np.float32)
    long = np.concatenate([speech[0], gap, speech[1], gap, speech[2]])
    sf.write(audio / "rec1.wav", long, SR)
    sf.write(audio / "rec2.wav", speech[3], SR)
    (audio / "rec3.wav").write_bytes(GARBAGE)  # corrupt
    d = root / "data" / "train"
    d.mkdir(parents=True)
    s1, s2 = len(speech[0]) / SR, (len(speech[0]) + len(gap)) / SR
    e2 = s2 + len(speech[1]) / SR
    length = len(long) / SR
    segments = [("utt1", "rec1", 0.0, s1), ("utt2", "rec1", s2, e2), ("utt3", "rec1", e2 + 0.5, length),
                ("utt4", "rec2", 0.0, len(speech[3]) / SR), ("utt5", "rec3", 0.0, 1.0),
                ("utt6", "rec4", 0.0, 1.0), ("utt7", "rec2", 0.5, len(speech[3]) / SR + 1.0)]
    (d / "wav.scp").write_text(f"rec1 {audio / 'rec1.wav'}\nrec2 {audio / 'rec2.wav'}\nrec3 {audio / 'rec3.wav'}\n"
                               "rec4 sox /corpus/rec4.sph -t wav - |\n")
    (d / "segments").write_text("".join(f"{u} {r} {a:.3f} {b:.3f}\n" for u, r, a, b in segments))
    (d / "text").write_text("".join(f"utt{i + 1} {TEXTS[i % 6]}\n" for i in range(7)) + "utt3 \n")
    (d / "utt2spk").write_text("".join(f"utt{i + 1} spk{i % 2}\n" for i in range(7)))
    return d, long


def test_kaldi_segments(tmp_path, speech):
    d, long = make_kaldi(tmp_path, speech)
    [r] = prepare("kaldi", d, tmp_path / "out")
    entries = read_manifest(tmp_path / "out/train.jsonl")
    assert [e["id"] for e in entries] == ["utt1", "utt2", "utt4"] and r.skipped == 4
    e2 = entries[1]
    assert e2["speaker"] == "spk1" and e2["text"] == TEXTS[1]
    start = (len(speech[0]) + SR // 2) / SR
    assert e2["offset"] == pytest.approx(start, abs=1e-3)
    assert e2["duration"] == pytest.approx(len(speech[1]) / SR, abs=1e-3)
    bad = rejected(tmp_path / "out/train.rejected.tsv")
    assert "not a readable audio file" in bad["rec3.wav"]
    rows = list(csv.DictReader(open(tmp_path / "out/train.rejected.tsv"), delimiter="\t"))
    assert [r["id"] for r in rows] == ["utt6", "utt3", "utt5", "utt7"]
    assert rows[0]["file"] == "sox /corpus/rec4.sph -t wav - |" and "pipe command" in rows[0]["reason"]
    assert rows[1]["reason"] == "empty transcript"
    assert "past the end" in bad["rec2.wav"]  # utt7 runs a second past its recording
    # the dataset reads exactly the segment's samples, not the whole recording
    full = load_audio(d.parent.parent / "audio/rec1.wav")
    ds = SpeechDataset(entries, None)
    _, wav, _, _, _ = ds[1]
    a = round(e2["offset"] * SR)
    assert wav.shape[0] == round((e2["offset"] + e2["duration"]) * SR) - a
    assert np.array_equal(wav.numpy(), full[a: a + wav.shape[0]])
    assert ds[0][1].shape[0] == pytest.approx(len(speech[0]), abs=16)


def test_kaldi_without_segments(tmp_path, speech):
    d = tmp_path / "dev"
    d.mkdir()
    for i in range(2):
        sf.write(tmp_path / f"r{i}.wav", speech[i], SR)
    (d / "wav.scp").write_text(f"r0 {tmp_path / 'r0.wav'}\nr1 {tmp_path / 'r1.wav'}\n")
    (d / "text").write_text(f"r0 {TEXTS[0]}\nr1 {TEXTS[1]}\n")
    prepare("kaldi", tmp_path, tmp_path / "out")  # a folder of data dirs
    entries = read_manifest(tmp_path / "out/dev.jsonl")
    assert [(e["id"], "offset" in e) for e in entries] == [("r0", False), ("r1", False)]
    assert entries[1]["duration"] == pytest.approx(len(speech[1]) / SR, abs=1e-3)


# --------------------------------------------------------------------------- plain folder


def make_folder(root: Path, speech) -> Path:
    for spk, names in {"anna": ["a1", "a2", "a3"], "ben": ["b1", "b2", "b3"]}.items():
        (root / spk).mkdir(parents=True)
        for name in names:
            i = int(name[1]) + (0 if spk == "anna" else 3) - 1
            sf.write(root / spk / f"{name}.wav", speech[i], SR)
    (root / "anna/a1.txt").write_text(f"  {TEXTS[0]}\n")
    (root / "anna/a2.lab").write_text(TEXTS[1])
    (root / "anna/a3.txt").write_text("   \n")  # empty transcript
    (root / "ben/b1.txt").write_text(TEXTS[3])
    (root / "ben/b2.wav").write_bytes(GARBAGE)  # corrupt
    (root / "ben/b2.txt").write_text(TEXTS[4])
    (root / "ben/b4.txt").write_text("transcript of a file that is not there")
    return root  # ben/b3.wav has no transcript


def test_folder(tmp_path, speech):
    src = make_folder(tmp_path / "clips", speech)
    [r] = prepare("folder", src, tmp_path / "out")
    got = by_id(tmp_path / "out/clips.jsonl")
    assert sorted(got) == ["anna-a1", "anna-a2", "ben-b1"]
    assert got["anna-a1"]["text"] == TEXTS[0] and got["anna-a2"]["text"] == TEXTS[1]
    assert got["ben-b1"]["speaker"] == "ben"
    assert got["ben-b1"]["duration"] == pytest.approx(len(speech[3]) / SR, abs=1e-3)
    bad = rejected(tmp_path / "out/clips.rejected.tsv")
    assert set(bad) == {"a3.wav", "b2.wav", "b3.wav", "b4.txt"}
    assert bad["a3.wav"] == "empty transcript" and "no transcript" in bad["b3.wav"]
    assert "not a readable" in bad["b2.wav"] and "without an audio file" in bad["b4.txt"]
    assert (r.kept, r.skipped) == (3, 4)
    assert r.hours == pytest.approx(sum(e["duration"] for e in got.values()) / 3600)


def test_verify_decodes_what_headers_cannot_show(tmp_path, speech):
    src = tmp_path / "clips"
    src.mkdir()
    sf.write(src / "good.wav", speech[0], SR)
    nan = speech[1].copy()
    nan[100] = np.nan
    sf.write(src / "nan.wav", nan, SR, subtype="FLOAT")  # a sound header, unusable samples
    for name in ("good", "nan"):
        (src / f"{name}.txt").write_text("hello")
    assert prepare("folder", src, tmp_path / "fast")[0].kept == 2
    [r] = prepare("folder", src, tmp_path / "slow", verify=True)
    assert r.kept == 1 and "NaN" in rejected(tmp_path / "slow/clips.rejected.tsv")["nan.wav"]


# --------------------------------------------------------------------------- CLI


def test_cli_prepare(tmp_path, speech, capsys):
    src = make_folder(tmp_path / "clips", speech)
    assert main(["prepare", "folder", str(src), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "kept 3, skipped 4" in out and "hours" in out
    assert len((tmp_path / "out/clips.jsonl").read_text().splitlines()) == 3
    assert json.loads((tmp_path / "out/clips.jsonl").read_text().splitlines()[0])["id"] == "anna-a1"
    assert main(["prepare", "kaldi", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    choices = next(a for a in build_parser()._subparsers._group_actions[0].choices["prepare"]._actions
                   if a.dest == "layout").choices
    assert tuple(choices) == LAYOUTS
