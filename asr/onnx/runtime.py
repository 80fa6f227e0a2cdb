"""Transcription on ONNX Runtime alone: graphs written by `asr export -m MODEL --onnx DIR`, no torch.

    model = OrtModel.load("DIR")                      # int8=True: the quantized graphs (--int8)
    for r in model.transcribe(["a.wav", "long.flac"]):  # files of any length
        print(r.path, r.text if r.error is None else f"FAILED: {r.error}")
    python -m asr.onnx DIR clip.wav ...                # the same from a shell

Owns the sessions and the audio reading of this path: soundfile, mono by averaging channels,
resampling with soxr (asr.audio uses torchaudio, so the two differ slightly on files that are not
at the model's rate). The search is asr.onnx.search's numpy port of asr.decode. A file longer than
the model's `decode.max_segment` is cut at pauses by asr.audio.segment's `Segmenter` with the energy
detector (silero needs torch), as `asr transcribe --vad energy` cuts it; a shorter one is one segment.
Nothing imported here imports torch (tests/onnx/test_runtime.py checks).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

from asr.audio.segment import Segment, Segmenter, shortest_segment, stitch
from asr.config import Config, from_dict
from asr.decode.nonspeech import emptied, non_speech
from asr.decode.options import DecodeOptions, Rules
from asr.decode.repetition import compression_ratio, trim_repetitions
from asr.onnx.search import Encoded, ctc_log_likelihood, guards_set, log_softmax, search, supported
from asr.results import Hypothesis, Result, SegmentText
from asr.text.tokenizers import LETTERS, tokenizer_from_dict

FORMAT = "asr-onnx-v1"  # asr.onnx.export.FORMAT (that module imports torch)


class OrtModel:
    """Encoder and decoder-step sessions, the tokenizer and the search options of one exported model."""

    def __init__(self, folder: str | Path, int8: bool = False, threads: int = 0, **options):
        folder = Path(folder)
        meta = json.loads((folder / "model.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{folder} holds no ONNX export of an asr model (expected format {FORMAT})")
        self.cfg = from_dict(Config, meta["config"])
        self.tokenizer = tokenizer_from_dict(meta["tokenizer"])
        self.rules = Rules.of(meta["rules"])
        self.io, self.dims = meta["io"], meta["dims"]
        self.options = supported(DecodeOptions.from_config(self.cfg, **options))
        if guards_set(self.options):
            warnings.warn(f"the reversal check ({', '.join(guards_set(self.options))}) is not run on ONNX Runtime",
                          stacklevel=2)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads  # 0: onnxruntime's default (the physical cores)
        so.log_severity_level = 3
        # no memory arena: it keeps the largest batch's buffers for good, and saved no time here
        # (recipes/distill/README.md, the torch-free rows)
        so.enable_cpu_mem_arena = False
        suffix = ".int8.onnx" if int8 else ".onnx"
        self.encoder = ort.InferenceSession(str(folder / f"encoder{suffix}"), so, providers=["CPUExecutionProvider"])
        self.decoder = ort.InferenceSession(str(folder / f"decoder{suffix}"), so, providers=["CPUExecutionProvider"])

    @classmethod
    def load(cls, folder: str | Path, int8: bool = False, threads: int = 0, **options) -> OrtModel:
        return cls(folder, int8, threads, **options)

    @property
    def sample_rate(self) -> int:
        return self.cfg.features.sample_rate

    # ------------------------------------------------------------------ graphs

    def encode(self, wav: np.ndarray, wav_lens: np.ndarray) -> Encoded:
        """(B, S) padded float32 waveforms -> encoder lengths, CTC logits and cross-attention k/v."""
        short = self.dims["min_samples"] - wav.shape[1]
        if short > 0:  # the conv front end's 7 frames, or the model's shortest window (zeros, as Features.raw)
            wav = np.pad(wav, ((0, 0), (0, short)))
        out = dict(zip(self.io["encoder_outputs"],
                       self.encoder.run(None, {"wav": wav.astype(np.float32), "wav_lens": wav_lens.astype(np.int64)})))
        cross = [out[n] for n in self.io["encoder_outputs"] if n.startswith("cross_")]
        return Encoded(out["lengths"], out.get("ctc_logits"), cross)

    def step(
        self, tokens: np.ndarray, memory_lens: np.ndarray, self_kv: list, cross_kv: list
    ) -> tuple[np.ndarray, list]:
        """One decoder call: logits (N, V) of the last of `tokens`, and the grown self-attention cache."""
        feed = dict(zip(self.io["decoder_inputs"], [tokens, memory_lens, *self_kv, *cross_kv]))
        logits, *new = self.decoder.run(None, feed)
        return logits, new

    def empty_cache(self, rows: int) -> list:
        shape = (rows, self.dims["heads"], 0, self.dims["head_dim"])
        return [np.zeros(shape, dtype=np.float32) for _ in range(2 * self.dims["layers"])]

    # ------------------------------------------------------------------ search

    def decode(self, wav: np.ndarray, wav_lens: np.ndarray, **options) -> list[list[Hypothesis]]:
        """(B, S) padded waveforms -> for each, its n best hypotheses (options override the model's),
        checked by the guards."""
        o = supported(self.options.replaced(**options))
        if self.cfg.model.spells:  # a CTC head over letters scores no tokens (the joint rescoring is not ported)
            o = dataclasses.replace(o, ctc_weight=0.0, ctc_length_guard=False)
        enc = self.encode(wav, wav_lens)
        hyps = search(self, enc, o, self.rules, self.cfg.model.max_target_len, self.tokenizer)
        self._guard(hyps, enc, o)
        return hyps

    def _guard(self, hyps: list[list[Hypothesis]], enc: Encoded, o: DecodeOptions) -> None:
        """asr.decode.task.Search's guards after the search, as far as they need no second decode: a
        loop loses its repeated tail (the torch search first decodes it again without repeating a
        3-gram), the CTC head's support is noted, and a segment with no speech by the rules of
        asr.decode.nonspeech keeps one empty hypothesis that says why. The reversal check is not run."""
        spells = self.cfg.model.spells
        blank = LETTERS.blank if spells else self.rules.blank
        for b, nbest in enumerate(hyps):
            best = nbest[0]
            limit = o.compression_ratio_threshold
            if limit is not None and compression_ratio(best.text) > limit:
                kept = trim_repetitions(best.tokens, [], min_repeats=2)
                best.log_prob *= (len(kept) + 1) / (len(best.tokens) + 1)  # its mean per token, as decoded
                best.tokens, best.text = kept, self.tokenizer.decode(kept)
            if enc.ctc_logits is not None and best.tokens:
                targets = LETTERS.encode(best.text) if spells else best.tokens
                frames = log_softmax(enc.ctc_logits[b, : int(enc.lengths[b])].astype(np.float64))
                ll = ctc_log_likelihood(frames, targets, blank)
                best.ctc_logprob = ll / (len(targets) + 1) if np.isfinite(ll) else None
            reason = non_speech(best, o, len(self.rules.text_tokens(best.tokens)))
            if reason is not None:
                nbest[:] = [emptied(best, reason)]

    def read(self, path: str | Path) -> np.ndarray:
        """A file -> (S,) float32 mono waveform at the model's rate."""
        import soundfile as sf

        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        wav = data.mean(1)
        if rate != self.sample_rate:
            import soxr

            wav = soxr.resample(wav, rate, self.sample_rate).astype(np.float32)
        return wav

    def transcribe(self, paths: list[str | Path], batch_size: int | None = None, max_segment: float | None = None,
                   **options) -> list[Result]:
        """Audio files -> one Result each, in input order; an unreadable file gets its error. A file up to
        `max_segment` seconds (default: the model's `decode.max_segment`) is one segment; a longer one is
        cut at pauses, its segments without speech skipped, and its pieces joined (`stitch`). All segments
        are decoded in length-sorted batches."""
        longest = max_segment or self.cfg.decode.max_segment
        shortest = shortest_segment(longest, self.cfg.features.pad_to_seconds)  # a padded window: fill it
        segmenter = Segmenter(self.sample_rate, longest, min_segment=shortest)
        results = [Result(str(p)) for p in paths]
        segments: list[tuple[int, Segment]] = []
        for i, p in enumerate(paths):
            try:
                wav = self.read(p)
            except (OSError, RuntimeError, ValueError) as e:  # a broken file stops nothing (soundfile: RuntimeError)
                results[i].error = f"{type(e).__name__}: {e}"
                continue
            results[i].duration = len(wav) / self.sample_rate
            if results[i].duration <= longest:
                segments.append((i, Segment(0.0, wav, self.sample_rate)))
            else:
                segments += [(i, seg) for seg in segmenter.segments([wav]) if seg.has_speech()]
        segments.sort(key=lambda item: len(item[1].samples))
        pieces: list[list[SegmentText]] = [[] for _ in paths]
        size = batch_size or self.cfg.decode.batch_size
        for b in range(0, len(segments), size):
            batch = segments[b : b + size]
            for (i, seg), nbest in zip(batch, self.decode(*pad([seg.samples for _, seg in batch]), **options)):
                best = nbest[0]
                pieces[i].append(SegmentText(seg.start, seg.end, best.text, best.score, overlap=seg.overlap,
                                             rejected=best.rejected))
        for i, result in enumerate(results):
            if result.error is None:
                kept = stitch(sorted((t for t in pieces[i] if t.rejected is None), key=lambda t: t.start))
                result.segments = [t for t in kept if t.text]
                result.rejected = [t for t in pieces[i] if t.rejected is not None]
                result.text = " ".join(t.text for t in result.segments)
        return results


def pad(wavs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Waveforms -> (B, S) zero-padded batch and (B,) lengths."""
    lens = np.array([len(w) for w in wavs], dtype=np.int64)
    out = np.zeros((len(wavs), int(lens.max())), dtype=np.float32)
    for j, w in enumerate(wavs):
        out[j, : len(w)] = w
    return out, lens


def main(argv: list[str] | None = None) -> int:
    """python -m asr.onnx DIR [--int8] FILE...: one line per file, "path<TAB>text"."""
    args = list(sys.argv[1:] if argv is None else argv)
    int8 = "--int8" in args
    args = [a for a in args if a != "--int8"]
    if len(args) < 2:
        print("usage: python -m asr.onnx DIR [--int8] FILE...", file=sys.stderr)
        return 2
    failed = 0
    for r in OrtModel.load(args[0], int8=int8).transcribe(args[1:]):
        print(f"{r.path}\t{r.text if r.error is None else 'FAILED: ' + r.error}")
        failed += r.error is not None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
