"""What every benchmark here shares: clips from manifests, WER as `asr evaluate` counts it, the
real-time factor, a fresh-process runner with peak RSS, and long recordings built from clips.

The scripts import it as `from common import ...` (a script's own folder is on its import path);
the toolkit itself comes from the editable install. Importing it does not import torch (the ONNX
Runtime benchmark's workers measure a process without it): audio is read with soundfile. WER always goes through
`asr.text.normalize.normalize` on both sides, so every table counts errors the same way.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from pathlib import Path

import jiwer
import numpy as np
import soundfile as sf

from asr.data.manifest import read_manifest
from asr.text.metrics import error_counts
from asr.text.normalize import normalize

SR = 16000
ROOT = Path(__file__).resolve().parents[2]


def read_clips(manifest: str | Path, n: int | None = None, sample_rate: int = SR) -> tuple[list[np.ndarray], list[str]]:
    """The first `n` utterances of a manifest (all: None): waveforms at `sample_rate`, and their texts."""
    import soxr

    wavs, entries = [], read_manifest(manifest)[:n]
    for e in entries:
        data, rate = sf.read(e["audio"], dtype="float32", always_2d=True)
        wav = data.mean(1)
        wavs.append(wav if rate == sample_rate else soxr.resample(wav, rate, sample_rate).astype(np.float32))
    return wavs, [e["text"] for e in entries]


def wer(refs: list[str], hyps: list[str | None]) -> float:
    """Word error rate in percent, both sides normalized (`asr evaluate`'s count); nan without references."""
    errors, words = error_counts(refs, [h or "" for h in hyps])
    return 100 * errors / words if words else float("nan")


def rtf(seconds: float, audio_seconds: float) -> float:
    """Real-time factor: seconds of compute per second of audio (below 1: faster than real time)."""
    return seconds / audio_seconds if audio_seconds else float("nan")


def batches(lengths: list[int], size: int) -> list[list[int]]:
    """Indices in batches of `size`, sorted by length (as transcription batches segments)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[b : b + size] for b in range(0, len(order), size)]


def run_fresh(args: list[str], cwd: str | Path | None = None) -> tuple[str, float]:
    """Run a command in a fresh process -> (its standard output, its own peak RSS in MB). A
    failure raises CalledProcessError with its standard error."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, args, out.read(), err.read())
        return out.read(), usage.ru_maxrss / 1024  # kB on Linux


def build_long(entries: list[dict], minutes: float, path: Path, seed: int = 0, gaps=(0.3, 1.0)) -> list[dict]:
    """Concatenate utterances (repeating the list as needed) with pauses into one file; returns
    the utterances with their start/end times in it (and their audio paths), and where their
    speech starts and ends (a clip's own leading and trailing silence excluded)."""
    from asr.audio.read import load_audio
    from asr.audio.vad import FRAME, HOP, frame_energy_db, speech_frames

    rng = random.Random(seed)
    placed, t = [], 0.0
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        while t < minutes * 60:
            for e in entries:
                wav = load_audio(e["audio"])
                gap = np.zeros(int(rng.uniform(*gaps) * SR), np.float32)
                f.write(wav)
                f.write(gap)
                idx = np.nonzero(speech_frames(frame_energy_db(wav, SR)))[0]
                a, b = (idx[0] * HOP, idx[-1] * HOP + FRAME) if len(idx) else (0.0, len(wav) / SR)
                placed.append({"text": normalize(e["text"]), "audio": e["audio"], "start": t,
                               "end": t + len(wav) / SR, "speech": (t + a, t + b)})
                t += (len(wav) + len(gap)) / SR
                if t >= minutes * 60:
                    break
    return placed


def word_list_check(clip_texts: list[str], long_text: str) -> dict:
    """The long file's transcript against its clips' own transcripts in order: the model's own
    errors cancel, so what differs comes from segmenting. Missing and extra words are split by
    where they fall: at an utterance's first or last word (where seams are) or inside one."""
    words, edge, first = [], [], set()  # first: word indices that start an utterance
    for text in clip_texts:
        w = text.split()
        first.add(len(words))
        words += w
        edge += [i == 0 or i == len(w) - 1 for i in range(len(w))]
    o = jiwer.process_words(" ".join(words), long_text)
    del_edge = ins_between = 0
    for ch in o.alignments[0]:
        if ch.type == "delete":
            del_edge += sum(edge[ch.ref_start_idx : ch.ref_end_idx])
        elif ch.type == "insert" and (ch.ref_start_idx in first or ch.ref_start_idx == len(words)):
            ins_between += ch.hyp_end_idx - ch.hyp_start_idx
    return {"words": len(words), "edge_words": sum(edge), "sub": o.substitutions, "del": o.deletions,
            "ins": o.insertions, "del_edge": del_edge, "ins_between": ins_between}
