"""Writers: SRT and WebVTT that independent parsers read back with the words in order, cues that never cross a
segment, one file per input with unique names, and what a folder walk skipped in the JSON formats."""

import json

import pytest
import srt
import webvtt

from asr.results import Result, SegmentText, Word
from asr.transcribe.writers import ResultWriter, cues, timestamp, to_srt, to_vtt


def result_with_words() -> Result:
    words = [
        Word(t, 0.5 + i * 0.6, 0.5 + i * 0.6 + 0.5, -0.2)
        for i, t in enumerate("turn on the kitchen light now please thank you".split())
    ]
    segs = [SegmentText(0.0, 3.5, " ".join(w.text for w in words[:5]), -0.3, words[:5]),
            SegmentText(3.5, 3700.25, " ".join(w.text for w in words[5:]), -0.4, words[5:])]
    return Result("a/b.wav", " ".join(s.text for s in segs), 3700.25, None, segs)


def test_srt_and_vtt_parse_back_with_the_words_in_order(tmp_path):
    r = result_with_words()
    subs = list(srt.parse(to_srt(r.segments)))
    assert " ".join(s.content for s in subs) == r.text
    assert all(s.start < s.end for s in subs)
    assert all(a.end <= b.start for a, b in zip(subs, subs[1:]))
    path = tmp_path / "x.vtt"
    path.write_text(to_vtt(r.segments))
    captions = webvtt.read(str(path))
    assert " ".join(c.text for c in captions) == r.text
    assert [c.start for c in captions] == [timestamp(s.start.total_seconds(), ".") for s in subs]
    assert timestamp(3723.5, ",") == "01:02:03,500"


def test_cues_split_long_segments_and_never_cross_a_segment():
    words = [Word(f"word{i}", i * 0.4, i * 0.4 + 0.3, 0.0) for i in range(40)]
    segs = [SegmentText(0, 8, " ".join(w.text for w in words[:20]), words=words[:20]),
            SegmentText(8, 16, " ".join(w.text for w in words[20:]), words=words[20:])]
    out = cues(segs, max_seconds=7.0, max_chars=42)
    assert all(len(text) <= 42 and end - start <= 7.0 for start, end, text in out)
    assert " ".join(t for _, _, t in out).split() == [w.text for w in words]
    assert any(start == words[20].start for start, _, _ in out)  # a cue starts at the segment boundary
    no_words = cues([SegmentText(1.0, 2.0, "hello there")])
    assert no_words == [(1.0, 2.0, "hello there")]


def test_writers_write_one_file_per_input_with_unique_names(tmp_path):
    r = result_with_words()
    other = Result("c/b.wav", "", 1.0, None, [])
    broken = Result("d/e.wav", None, 0.0, "file is empty (0 bytes)")
    with ResultWriter("json", tmp_path / "out") as w:
        for x in (r, other, broken):
            w.write(x)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b-2.json", "b.json"]
    blob = json.loads((tmp_path / "out" / "b.json").read_text())
    assert blob["text"] == r.text and len(blob["segments"]) == 2
    assert blob["segments"][0]["words"][0] == {"text": "turn", "start": 0.5, "end": 1.0, "score": -0.2}
    with pytest.raises(ValueError, match="output folder"):
        ResultWriter("srt", None)
    with ResultWriter("jsonl", tmp_path / "x.jsonl") as w:
        for x in (r, broken):
            w.write(x)
    rows = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert [row["error"] for row in rows] == [None, "file is empty (0 bytes)"]
