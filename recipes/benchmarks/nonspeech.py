"""Non-speech benchmark: words invented per minute on audio with no speech in it, by each voice
activity detector with and without the search's no-speech rules; then what those cost on speech.

    nice -n 10 .venv/bin/python recipes/benchmarks/nonspeech.py --model exp/cmp_model.pt --minutes 1

Kinds (`--minutes` of each, one recording per kind, through `recognize`, the transcription path):
silence; white, brown and fluctuating noise (syllable-rate bursts); babble (six overlapped talkers)
and reversed speech, both made of `--pool` utterances (not the evaluated ones); chords, a plucked
melody, a sine melody, clicks. Settings: `--vad energy` and `--vad silero`, each without and with
`min_ctc_logprob` (the command model's CTC rule); with `--whisper`, Whisper tiny.en (silero)
without and with its no-speech rule. Speech kept: WER on `--manifest` clips per setting, and the
seam check of decode.py on a `--long-minutes` file of those clips (0.3-1.0 s pauses): the long
file's transcript against the clips' own, missing words split into utterance edges and middles
(Whisper: WER on `--whisper-clips` real recordings).
Prints markdown tables; results.json in `--workdir`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT, build_long, wer, word_list_check

from asr.audio.read import load_audio
from asr.data.manifest import read_manifest
from asr.decode.options import DecodeOptions
from asr.decode.task import Search
from asr.model.catalogue import load
from asr.text.normalize import normalize
from asr.transcribe.pipeline import Samples, SegmentOptions, recognize

HERE = Path(__file__).resolve().parent

SR = 16000
MELODY = [261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3, 392.0, 329.6, 261.6, 293.7]
CHORDS = [[261.6, 329.6, 392.0], [220.0, 261.6, 329.6], [174.6, 220.0, 261.6], [196.0, 246.9, 293.7]]


def harmonic(f0: float, seconds: float) -> np.ndarray:
    """A plucked note: seven harmonics, decaying (as tests/test_vad.py)."""
    t = np.arange(int(seconds * SR)) / SR
    return np.exp(-2 * t) * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8))


def tiled(piece: np.ndarray, n: int) -> np.ndarray:
    return np.tile(piece, -(-n // len(piece)))[:n]


def signals(seconds: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """tests/test_vad.py's non-speech clips, `seconds` long."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(801) / 801, "same")
    clicks = np.zeros(n)
    clicks[rng.integers(0, n - 100, int(40 * seconds / 6))] = 0.9
    sine = np.concatenate([np.sin(2 * np.pi * f * np.arange(int(0.3 * SR)) / SR) for f in MELODY * 2])
    return {
        "silence": np.zeros(n),
        "white noise": 0.05 * rng.standard_normal(n),
        "brown noise": 0.3 * brown / np.abs(brown).max(),
        "fluctuating noise": 0.2 * np.abs(np.sin(2 * np.pi * 3 * t)) * rng.standard_normal(n),
        "chords": tiled(np.concatenate([sum(harmonic(f, 1.5) for f in c) / 9 for c in CHORDS]), n),
        "melody": 0.3 * tiled(np.concatenate([harmonic(f, 0.4) for f in MELODY]), n),
        "sine melody": 0.2 * tiled(sine, n),
        "clicks": np.convolve(clicks, np.exp(-np.arange(80) / 10), "same"),
    }


def babble(pool: list[np.ndarray], seconds: float, rng: np.random.Generator, talkers: int = 6) -> np.ndarray:
    """`talkers` streams of utterances (0.05-0.3 s apart), each at its own offset, summed."""
    n = int(seconds * SR)
    out = np.zeros(n)
    for _ in range(talkers):
        parts, m = [], 0
        while m < n + SR:
            u = pool[rng.integers(len(pool))]
            parts += [u / (np.abs(u).max() + 1e-9), np.zeros(int(rng.uniform(0.05, 0.3) * SR))]
            m += len(parts[-2]) + len(parts[-1])
        off = int(rng.integers(0, SR))
        out += np.concatenate(parts)[off : off + n]
    return 0.9 * out / np.abs(out).max()


def reversed_speech(pool: list[np.ndarray], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Utterances played backwards, 0.3-1.0 s apart."""
    parts, m = [], 0
    while m < seconds * SR:
        parts += [pool[rng.integers(len(pool))][::-1], np.zeros(int(rng.uniform(0.3, 1.0) * SR))]
        m += len(parts[-2]) + len(parts[-1])
    return np.concatenate(parts)[: int(seconds * SR)]


def kinds(pool: list[np.ndarray], minutes: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = signals(60 * minutes, rng)
    out["babble (6 talkers)"] = babble(pool, 60 * minutes, rng)
    out["reversed speech"] = reversed_speech(pool, 60 * minutes, rng)
    return {k: v.astype(np.float32) for k, v in out.items()}


def run(search: Search, wavs: list[np.ndarray], vad: str) -> tuple[list, float]:
    t = time.perf_counter()
    results = list(recognize(search, [Samples(w, SR, f"#{i}") for i, w in enumerate(wavs)], SegmentOptions(vad=vad)))
    return results, time.perf_counter() - t


def settings(args) -> list[tuple[str, str, Search]]:
    """(name, vad, search) of every setting measured: the model with each detector without and with
    its CTC rule, then silero with the CTC rule and the reversal check; with --whisper, Whisper
    tiny.en (silero) without its no-speech rules, with openai-whisper's thresholds, with the imported
    config's P(no speech) rule alone, and with the imported config (that rule and the reversal check)."""
    out = []
    if args.model:
        rec = load(args.model)
        base = dataclasses.replace(DecodeOptions.from_config(rec.cfg), min_ctc_logprob=None, reversed_margin=None)
        on = base.replaced(min_ctc_logprob=args.min_ctc_logprob)
        out += [(f"{vad}{f', CTC < {args.min_ctc_logprob:g}' if o is on else ''}", vad, Search(rec, o))
                for vad in ("energy", "silero") for o in (base, on)]
        rev = on.replaced(reversed_margin=args.reversed_margin)
        out.append(
            (f"silero, CTC < {args.min_ctc_logprob:g}, reversed > {args.reversed_margin:g}", "silero", Search(rec, rev))
        )
    if args.whisper:
        w = load(args.whisper_model)
        wo = DecodeOptions.from_config(w.cfg)
        rule_only = dataclasses.replace(wo, reversed_margin=None)
        off = dataclasses.replace(rule_only, no_speech_threshold=None)
        openai = dataclasses.replace(rule_only, no_speech_threshold=0.6, logprob_threshold=-1.0)
        for o in (off, openai, rule_only, wo):
            on = o.no_speech_threshold is not None
            rule = f", P(no speech) > {o.no_speech_threshold:g} & log prob < {o.logprob_threshold:g}" if on else ""
            if o.reversed_margin is not None:
                rule += f", reversed > {o.reversed_margin:g} (below {o.reversed_check_below:g})"
                if o.reversed_check_min_seconds:
                    rule += f" on segments of {o.reversed_check_min_seconds:g} s or more"
            out.append(("whisper, silero" + rule, "silero", Search(w, o)))
    return out


def speech_kept(name: str, vad: str, search: Search, entries: list[dict], long: tuple[Path, list[dict]] | None) -> dict:
    """WER on the clips; with `long` (a file built from them, and where they are in it), its seam
    check against the clips' own transcripts."""
    clips, secs = run(search, [load_audio(e["audio"]) for e in entries], vad)
    hyps = [normalize(r.text) for r in clips]
    for e, r in zip(entries, clips):
        for seg in r.rejected:  # speech left out: what it was, and why
            print(f"    rejected: {e['id']} ({e['text']!r}): {seg.rejected}", flush=True)
    row = {"setting": name, "clips": len(entries), "wer": wer([normalize(e["text"]) for e in entries], hyps),
           "clips_rejected": sum(len(r.rejected) for r in clips), "seconds": secs}
    if long is not None:
        path, placed = long
        (res,), long_secs = run(search, [load_audio(path)], vad)
        by_audio = {e["audio"]: h for e, h in zip(entries, hyps)}
        text = normalize(res.text)
        row |= {"long_wer": wer([" ".join(u["text"] for u in placed)], [text]), "long_rejected": len(res.rejected),
                "seconds": secs + long_secs, **word_list_check([by_audio[u["audio"]] for u in placed], text)}
    print(f"  speech: WER {row['wer']:.2f} on {len(entries)} clips ({row['clips_rejected']} segments rejected)"
          + (f", long file WER {row['long_wer']:.2f} ({row['long_rejected']} rejected), missing edge words "
             f"{row['del_edge']}/{row['edge_words']}, middle {row['del'] - row['del_edge']}/"
             f"{row['words'] - row['edge_words']}" if long else ""), flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="exp/cmp_model.pt", help="a model with a CTC head (the command model); '' = none")
    p.add_argument("--manifest", default="data/synth/commands/test.jsonl", help="speech: WER and the long file")
    p.add_argument("--pool", default="data/synth/commands/dev.jsonl", help="utterances for babble and reversed speech")
    p.add_argument("--minutes", type=float, default=2.0, help="of each non-speech kind")
    p.add_argument("--min-ctc-logprob", type=float, default=-5.5)
    p.add_argument("--reversed-margin", type=float, default=0.0, help="the model's reversal check")
    p.add_argument("--whisper", action="store_true", help="also Whisper tiny.en (silero) without and with its rule")
    p.add_argument("--whisper-model", default="whisper-tiny.en",
                   help="the Whisper-shaped model of --whisper (whisper-tiny.en-any: the unpadded one)")
    p.add_argument("--whisper-manifest", default="data/real/dev.jsonl", help="Whisper's speech: real recordings")
    p.add_argument("--whisper-clips", type=int, default=100)
    p.add_argument("--clips", type=int, default=300, help="speech clips of --manifest (a fixed random sample)")
    p.add_argument("--long-minutes", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", default=str(ROOT / "exp/bench/nonspeech"))  # (wherever it is run from)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)

    pool = [load_audio(e["audio"]) for e in read_manifest(args.pool)]
    audio = kinds(pool, args.minutes)
    entries = read_manifest(args.manifest)
    entries = random.Random(0).sample(entries, min(args.clips, len(entries)))
    long = (work / "long.wav", build_long(entries, args.long_minutes, work / "long.wav"))
    w_entries = read_manifest(args.whisper_manifest)[: args.whisper_clips] if args.whisper else []
    rows, kept = {}, []
    for name, vad, search in settings(args):
        print(f"[{name}]", flush=True)
        results, secs = run(search, list(audio.values()), vad)
        rows[name] = {k: {"words_per_min": len(r.text.split()) / args.minutes, "rejected": len(r.rejected),
                          "decoded": len(r.segments) + len(r.rejected)} for k, r in zip(audio, results)}
        print(
            f"  non-speech ({secs:.0f} s): "
            + ", ".join(f"{k} {v['words_per_min']:.1f}" for k, v in rows[name].items()),
            flush=True,
        )
        whisper = name.startswith("whisper")
        kept.append(speech_kept(name, vad, search, w_entries if whisper else entries, None if whisper else long))
    (work / "results.json").write_text(json.dumps({"args": vars(args), "nonspeech": rows, "speech": kept}, indent=1))
    print_tables(rows, kept, args)


def print_tables(rows: dict, kept: list[dict], args) -> None:
    names = list(rows)
    print(f"\nInvented words per minute ({args.minutes:g} min of each kind; in brackets: segments rejected / "
          "decoded):\n")
    print("| kind | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for kind in next(iter(rows.values())):
        cells = [rows[n][kind] for n in names]
        print(f"| {kind} | " + " | ".join(f"{c['words_per_min']:.1f} ({c['rejected']}/{c['decoded']})" for c in cells)
              + " |")
    print("\nSpeech kept (WER on the clips; the long file's WER and seam check against the clips' own transcripts):\n")
    print(
        "| setting | clips | WER % | segments rejected | WER % long file | missing: edge words "
        "| missing: middle words |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k in kept:
        long = (f"{k['long_wer']:.2f} | {k['del_edge']} of {k['edge_words']} | {k['del'] - k['del_edge']} of "
                f"{k['words'] - k['edge_words']}") if "long_wer" in k else "- | - | -"
        print(f"| {k['setting']} | {k['clips']} | {k['wer']:.2f} | {k['clips_rejected']} | {long} |")


if __name__ == "__main__":
    main()
