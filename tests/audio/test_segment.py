"""Long-form audio: streamed reading, voice activity, cutting at pauses, stitching at seams,
and the subtitle/JSON writers (parsed back with independent readers)."""


import numpy as np
import pytest
import soundfile as sf

from asr.audio.read import load_audio, stream_audio
from asr.audio.segment import Segmenter, _merge_by_text, stitch
from asr.audio.vad import has_speech
from asr.results import SegmentText, Word

SR = 16000


def bursts(rng, seconds: float, pause=(0.3, 1.0), burst=(0.5, 4.0)):
    """Speech-like bursts (modulated noise) separated by quiet pauses; returns audio and the
    (start, end) sample ranges of the pauses."""
    out, gaps, n = [], [], 0
    while n < seconds * SR:
        b = int(rng.uniform(*burst) * SR)
        env = 0.5 + 0.5 * np.abs(np.sin(np.arange(b) / SR * 2 * np.pi * 4))  # syllable-rate modulation
        out.append(0.2 * env * rng.standard_normal(b))
        g = int(rng.uniform(*pause) * SR)
        gaps.append((n + b, n + b + g))
        out.append(0.0005 * rng.standard_normal(g))
        n += b + g
    return np.concatenate(out).astype(np.float32), gaps


def blocks_of(wav, size):
    return (wav[i : i + size] for i in range(0, len(wav), size))


def test_segments_are_cut_in_pauses_cover_all_speech_and_keep_only_a_pad_of_silence():
    wav, gaps = bursts(np.random.default_rng(0), 180)
    seg = Segmenter(SR, max_segment=12.0, min_segment=3.0, pad=0.15)
    segments = list(seg.segments(blocks_of(wav, 7 * SR + 123)))  # blocks unrelated to segment sizes
    assert len(segments) > 10
    assert all(len(s.samples) <= 12 * SR for s in segments)
    assert all(s.overlap == 0 for s in segments)  # there was always a pause to use
    spans = [(round(s.start * SR), round(s.start * SR) + len(s.samples)) for s in segments]
    for s, (a, b) in zip(segments, spans):  # each segment is the recording's own samples
        np.testing.assert_array_equal(s.samples, wav[a:b])
    assert all(b0 <= a1 for (_, b0), (a1, _) in zip(spans, spans[1:]))  # in order, disjoint
    kept = np.zeros(len(wav), bool)
    for a, b in spans:
        kept[a:b] = True
    in_pause = np.zeros(len(wav), bool)
    for g0, g1 in gaps:
        in_pause[g0:g1] = True
    assert kept[~in_pause].all()  # no speech sample is left out
    spans = [(a, b) for a, b in spans if not in_pause[a:b].all()]  # (a tail of silence is skipped later)
    for (_, b0), (a1, _) in zip(spans, spans[1:]):  # every cut is inside a pause ...
        g0, g1 = next((g0, g1) for g0, g1 in gaps if g0 <= b0 and a1 <= g1)
        assert (b0 - g0) + (g1 - a1) <= 2 * (0.15 + 0.04) * SR  # ... keeping a pad (+ a frame) of it each side
    for s in segments:  # ... the first sentence-long pause once the segment is min_segment long
        a, b = round((s.start + 3.1) * SR), round(s.end * SR) - SR // 10
        assert not any(a <= g0 and g1 <= b and g1 - g0 >= 0.55 * SR for g0, g1 in gaps), s.start


def test_fill_cuts_at_the_last_sentence_pause_before_max_segment():
    """For Whisper with timestamps: fewer, fuller windows, still cut in pauses and losing nothing."""
    wav, gaps = bursts(np.random.default_rng(2), 180)
    first = list(Segmenter(SR, max_segment=12.0, min_segment=3.0).segments(blocks_of(wav, 5 * SR)))
    full = list(Segmenter(SR, max_segment=12.0, min_segment=3.0, fill=True).segments(blocks_of(wav, 5 * SR)))
    assert len(full) < 0.8 * len(first) and all(len(s.samples) <= 12 * SR for s in full)
    kept = np.zeros(len(wav), bool)
    for s in full:
        a = round(s.start * SR)
        np.testing.assert_array_equal(s.samples, wav[a : a + len(s.samples)])
        kept[a : a + len(s.samples)] = True
    in_pause = np.zeros(len(wav), bool)
    for g0, g1 in gaps:
        in_pause[g0:g1] = True
    assert kept[~in_pause].all()  # no speech sample is left out
    for s, after in zip(full, full[1:]):  # no sentence-long pause left unused between the cut and max_segment
        a, b = round(s.end * SR) + SR // 10, round((s.start + 12.0) * SR) - SR
        assert after.overlap == 0 and not any(a <= g0 and g1 <= b and g1 - g0 >= 0.6 * SR for g0, g1 in gaps)


def test_no_pause_falls_back_to_overlapping_windows():
    rng = np.random.default_rng(1)
    t = np.arange(50 * SR) / SR
    # loud and soft by turns (syllables) but never a pause as long as min_pause
    wav = ((0.05 + np.abs(np.sin(2 * np.pi * 3 * t))) * 0.2 * rng.standard_normal(len(t))).astype(np.float32)
    segments = list(Segmenter(SR, max_segment=20.0, overlap=2.0).segments(blocks_of(wav, 30 * SR)))
    assert [s.start for s in segments] == [0.0, 18.0, 36.0]
    assert [s.overlap for s in segments] == [0.0, 2.0, 2.0]
    assert [s.overlap_after for s in segments] == [2.0, 2.0, 0.0]
    for s in segments:
        a = round(s.start * SR)
        np.testing.assert_array_equal(s.samples, wav[a : a + len(s.samples)])
    assert segments[-1].end == pytest.approx(50.0)


def test_stitching_overlapping_segments_keeps_every_word_once():
    words = [Word(f"w{i}", i * 0.5, i * 0.5 + 0.4, -0.1) for i in range(80)]  # 40 s of words

    def heard(a, b):  # what a segment over [a, b) transcribes: the words it holds whole
        ws = [Word(w.text, w.start, w.end, w.score) for w in words if w.start >= a and w.end <= b]
        return ws

    pieces = [
        SegmentText(0.0, 20.0, "", words=heard(0, 20)),
        SegmentText(18.1, 38.1, "", words=heard(18.1, 38.1), overlap=1.9),
        SegmentText(36.2, 40.0, "", words=heard(36.2, 40.0), overlap=1.9),
    ]
    for p in pieces:
        p.text = " ".join(w.text for w in p.words)
    out = stitch(pieces)
    assert " ".join(s.text for s in out).split() == [w.text for w in words]
    assert [w.text for s in out for w in s.words] == [w.text for w in words]
    assert out[0].end == out[1].start == pytest.approx(18.1 + 0.95)


def test_stitching_without_word_times_drops_the_repeated_words():
    assert _merge_by_text("a b c d e", "d e f g") == ("a b c d e", "f g")
    assert _merge_by_text("a b c", "x y") == ("a b c", "x y")  # nothing shared: both kept
    pieces = [SegmentText(0, 20, "turn on the light in the"), SegmentText(18, 30, "in the kitchen please", overlap=2)]
    assert " ".join(s.text for s in stitch(pieces)) == "turn on the light in the kitchen please"


def test_silence_and_steady_noise_have_no_speech_but_speech_does(tiny_corpus):
    rng = np.random.default_rng(2)
    brown = np.cumsum(rng.standard_normal(10 * SR))
    brown = 0.3 * (brown - np.convolve(brown, np.ones(801) / 801, "same")) / 50
    assert not has_speech(np.zeros(10 * SR, np.float32), SR)
    assert not has_speech((0.1 * rng.standard_normal(10 * SR)).astype(np.float32), SR)  # white
    assert not has_speech(brown.astype(np.float32), SR)
    speech = load_audio(next((tiny_corpus / "wav").rglob("*.wav")))
    assert has_speech(speech, SR)
    quiet_noise = (0.002 * rng.standard_normal(len(speech))).astype(np.float32)
    assert has_speech(speech + quiet_noise, SR)


@pytest.mark.parametrize("rate,channels", [(16000, 1), (22050, 2), (8000, 1)])
def test_streamed_audio_equals_loading_it_whole(tmp_path, rate, channels):
    rng = np.random.default_rng(3)
    path = tmp_path / "x.flac"
    sf.write(path, 0.3 * rng.standard_normal((int(rate * 7.3), channels)), rate)
    whole = load_audio(path)
    streamed = np.concatenate(list(stream_audio(path, block_seconds=2)))
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_a_clip_shorter_than_max_segment_is_cut_only_at_sentence_pauses():
    rng = np.random.default_rng(4)
    def burst(seconds):  # syllable-like: loud and soft by turns
        t = np.arange(int(seconds * SR)) / SR
        return (0.2 * np.abs(np.sin(2 * np.pi * 3 * t)) * rng.standard_normal(len(t))).astype(np.float32)

    quiet = lambda s: np.zeros(int(s * SR), np.float32)  # noqa: E731
    clip = np.concatenate([burst(1.5), quiet(0.25), burst(1.5), quiet(0.25), burst(1.5)])
    assert len(list(Segmenter(SR, max_segment=20.0).segments([clip]))) == 1  # commas stay inside
    two = np.concatenate([clip, quiet(0.8), clip])
    segs = list(Segmenter(SR, max_segment=20.0).segments([two]))
    assert len(segs) == 2 and 5.0 < segs[1].start < 5.8  # cut in the sentence pause
    short = np.concatenate([quiet(0.5), burst(0.8), quiet(0.7), burst(0.8), quiet(0.5)])  # two one-word commands
    segs = list(Segmenter(SR, max_segment=20.0, pad=0.15).segments([short]))
    assert len(segs) == 2  # each its own segment, as in training ...
    # ... each with 0.15 s of silence on the side of the cut; the recording's own edges stay as they are
    assert [round(s.start, 2) for s in segs] == pytest.approx([0.0, 2.0 - 0.15], abs=0.03)
    assert [round(s.end, 2) for s in segs] == pytest.approx([1.3 + 0.15, 3.3], abs=0.04)
