"""Live transcription: how soon text appears, how much it changes, and how accurate it is, on a
stream of real speech; and what it writes on a minute of silence, noise and music.

    python recipes/benchmarks/streaming.py [-m whisper-tiny.en whisper-base people-small] [--minutes 3]
                                           [--update-every 0.5 1.0] [--manifest data/real/dev.jsonl]
    python recipes/benchmarks/streaming.py -m MODEL.pt MODEL.pt:chunk=16 MODEL.pt:chunk=8 \
                                           --manifest data/synth/commands/test.jsonl

A model is a name or a model file, optionally followed by decode options: `:chunk=16` decodes a
streaming model (trained with `model.dynamic_chunk`) in chunks of 16 encoder frames (640 ms), its
partials and finals alike; the file column decodes the same way. Options that are `LiveOptions`
fields set the stream instead (`whisper-base:speculate=none,update_every=2`, `M:partial_beam=4`).

The stream: the real dev clips (data/real/dev.jsonl: warzone2100's recorded prompts and the ALSA
channel names; `recipes/real`), or another manifest's (`--manifest`), one after another with 1-2 s
pauses, built by `common.build_long` into data/bench/live.wav (another manifest: live-FOLDER-NAME.wav).
It goes through the Python API (`Transcriber.stream`) in 0.1 s blocks on a simulated clock, as a
microphone would feed it: block k arrives at (k + 1) x 0.1 s and is processed once it has arrived and
the work before it is done. Latency thus counts waiting for audio and decoding it on this machine,
without sleeping through the audio. Each model runs in a
fresh process (its own peak RSS), with torch's default threads (2 here). Columns:
- first text: from an utterance's speech start to the first event with text that overlaps it (p50, p90)
- final: from an utterance's speech end to its final text (p50, p90)
- WER of the finals, joined, against the references; the same file through `transcribe` (the
  file pipeline) beside it; both normalized as `asr evaluate` does
- flicker: words of a shown partial that a later partial or the final changed or dropped, per
  final word; stable: the share of final words its last partial had committed (LocalAgreement);
  both on normalized words (case and punctuation changes do not count)
- RTF: compute seconds per audio second; behind: the most the processing ever lagged the audio
- non-speech: final words written on 60 s each of silence, white noise and a chord melody
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from common import ROOT, SR, build_long, rtf, run_fresh, wer

from asr.text.normalize import normalize

MANIFEST = "data/real/dev.jsonl"


def simulate(stream, audio: np.ndarray, block: float = 0.1) -> tuple[list[tuple[object, float]], float, float]:
    """Feed `audio` as if live -> ([(event, when it was emitted)], compute seconds, largest lag)."""
    step, free, compute, behind, out = int(block * SR), 0.0, 0.0, 0.0, []
    for k, i in enumerate(range(0, len(audio), step)):
        arrive = min(len(audio), i + step) / SR
        begin = max(arrive, free)
        t = time.perf_counter()
        events = stream.feed(audio[i : i + step])
        dt = time.perf_counter() - t
        compute, free = compute + dt, begin + dt
        behind = max(behind, free - arrive)
        out += [(e, free) for e in events]
    t = time.perf_counter()
    events = stream.close()
    dt = time.perf_counter() - t
    out += [(e, max(free, len(audio) / SR) + dt) for e in events]
    return out, compute + dt, behind


def latencies(placed: list[dict], emitted: list[tuple[object, float]]) -> tuple[list[float], list[float]]:
    """(first-text latencies, final latencies) in seconds, one per utterance heard."""
    first, final = [], []
    for u in placed:
        a, b = u["speech"]
        texts = [w for e, w in emitted if e.kind in ("partial", "final") and e.text and e.start < b and e.end > a]
        if texts:
            first.append(min(texts) - a)
        finals = [(min(e.end, b) - max(e.start, a), w) for e, w in emitted if e.kind == "final" and e.start < b
                  and e.end > a]
        if finals:
            final.append(max(finals)[1] - b)
    return first, final


def stability(emitted: list[tuple[object, float]]) -> float:
    """Share of the finals' words already committed, in order, by their utterance's last partial."""
    last: dict[float, str] = {}
    kept = total = 0
    for e, _ in emitted:
        if e.kind == "partial":
            last[e.start] = e.stable
        elif e.kind == "final" and e.text:
            words, stable = normalize(e.text).split(), normalize(last.get(e.start, "")).split()
            total += len(words)
            kept += sum(1 for x, y in zip(words, stable) if x == y) if words[: len(stable)] == stable else 0
    return 100 * kept / total if total else float("nan")


def flicker(emitted: list[tuple[object, float]]) -> float:
    """Words shown that were later changed or dropped, per final word: each partial (and the final)
    against the partial shown before it in the same utterance."""
    shown: dict[float, list[str]] = {}
    changed = final_words = 0
    for e, _ in emitted:
        if e.kind not in ("partial", "final"):
            continue
        words, before = normalize(e.text).split(), shown.get(e.start, [])
        changed += sum(1 for i, w in enumerate(before) if i >= len(words) or words[i] != w)
        shown[e.start] = words
        final_words += len(words) if e.kind == "final" else 0
    return changed / final_words if final_words else float("nan")


def non_speech(model, seconds: float = 60.0) -> int:
    """Final words written on `seconds` each of silence, white noise and a melody of chords."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    notes = 220 * 2 ** (rng.integers(0, 12, int(seconds * 2)) / 12)  # a chord every 0.5 s
    f = np.repeat(notes, int(0.5 * SR))[: len(t)]
    music = sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 1.26, 1.5)) * 0.1
    words = 0
    for audio in (np.zeros(len(t)), 0.05 * rng.standard_normal(len(t)), music):
        emitted, *_ = simulate(model.stream(), audio.astype(np.float32))
        words += sum(len(e.text.split()) for e, _ in emitted if e.kind == "final")
    return words


def worker(name: str, everies: list[float], vad: str, path: str, placed_json: str, end_silence: float,
           speculate: float | None, prompt_chars: int | None) -> None:
    """One model in this (fresh) process: a JSON line per update interval."""
    import asr
    from asr.audio.read import load_audio
    from asr.transcribe.live import LiveOptions

    placed = json.loads(open(placed_json).read())
    audio = load_audio(path)
    refs = " ".join(u["text"] for u in placed)
    spec, (name, _, given) = name, name.partition(":")
    words = {"none": None, "true": True, "false": False}
    options = {k: words[v] if v in words else float(v) if "." in v else int(v) if v.lstrip("-").isdigit() else v
               for k, v in (kv.split("=") for kv in given.split(",") if kv)}
    fields = {f.name for f in dataclasses.fields(LiveOptions)}
    live = {k: options.pop(k) for k in list(options) if k in fields}  # the stream's, not the search's
    model = asr.load_model(name, device="cpu", **options)
    t = time.perf_counter()
    (offline,) = list(model.transcribe(path))
    file_rtf = rtf(time.perf_counter() - t, len(audio) / SR)
    quiet = non_speech(model)
    for every in everies:
        stream = model.stream(**{"update_every": every, "vad": vad, "end_silence": end_silence,
                                 "speculate": speculate, "prompt_chars": prompt_chars, **live})
        emitted, compute, behind = simulate(stream, audio)
        first, final = latencies(placed, emitted)
        live_text = " ".join(e.text for e, _ in emitted if e.kind == "final")
        print(json.dumps({"model": spec, "every": live.get("update_every", every), "first": first, "final": final,
                          "wer_live": wer([refs], [live_text]), "wer_file": wer([refs], [offline.text]),
                          "stable": stability(emitted), "flicker": flicker(emitted),
                          "rtf": rtf(compute, len(audio) / SR), "behind": behind, "file_rtf": file_rtf,
                          "non_speech_words": quiet}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--models", nargs="+", default=["whisper-tiny.en", "whisper-base", "people-small"])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--update-every", nargs="+", type=float, default=[1.0])
    ap.add_argument("--manifest", default=MANIFEST, help="the clips the stream is made of")
    ap.add_argument("--vad", default="silero")
    ap.add_argument("--end-silence", type=float, default=0.6)
    ap.add_argument("--speculate", type=float, default=0.1,
                    help="seconds of silence before the final is decoded ahead (negative: not ahead)")
    ap.add_argument("--prompt-chars", type=int, default=-1,
                    help="Whisper: the finals before as the prompt (0: none; default: the stream's own choice)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # one model, in a fresh process
    args = ap.parse_args()
    # the default stream is data/bench/live.wav (serve_load.py --live sends it); another manifest's its own
    name = "live" if args.manifest == MANIFEST else "live-" + "-".join(Path(args.manifest).with_suffix("").parts[-2:])
    path, placed_json = ROOT / f"data/bench/{name}.wav", ROOT / f"data/bench/{name}.json"
    if args.worker:
        worker(args.worker, args.update_every, args.vad, str(path), str(placed_json), args.end_silence,
               None if args.speculate < 0 else args.speculate, None if args.prompt_chars < 0 else args.prompt_chars)
        return
    from asr.data.manifest import read_manifest

    path.parent.mkdir(parents=True, exist_ok=True)
    placed = build_long(read_manifest(ROOT / args.manifest), args.minutes, path, gaps=(1.0, 2.0))
    placed_json.write_text(json.dumps(placed))
    seconds = placed[-1]["end"]
    print(f"stream: {len(placed)} utterances of {args.manifest}, {seconds:.0f} s of audio ({path})\n")
    print(f"end of utterance after {args.end_silence:g} s of silence; the final decoded ahead after "
          f"{args.speculate:g} s\n" if args.speculate >= 0 else
          f"end of utterance after {args.end_silence:g} s of silence; the final decoded then\n")
    print("| model | update every s | first text p50 / p90 s | final p50 / p90 s | WER % live | WER % file "
          "| flicker | stable % | RTF live | RTF file | behind s | peak RSS MB | non-speech words |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    p = lambda xs, q: float(np.percentile(xs, q)) if xs else float("nan")  # noqa: E731
    for name in args.models:
        cmd = [sys.executable, __file__, "--worker", name, "--vad", args.vad, "--end-silence", str(args.end_silence),
               "--speculate", str(args.speculate), "--prompt-chars", str(args.prompt_chars),
               "--manifest", args.manifest, "--update-every", *map(str, args.update_every)]
        out, rss = run_fresh(cmd, cwd=ROOT)
        for line in out.splitlines():
            r = json.loads(line)
            print(f"| {name} | {r['every']:g} | {p(r['first'], 50):.2f} / {p(r['first'], 90):.2f} "
                  f"| {p(r['final'], 50):.2f} / {p(r['final'], 90):.2f} | {r['wer_live']:.2f} | {r['wer_file']:.2f} "
                  f"| {r['flicker']:.2f} | {r['stable']:.0f} | {r['rtf']:.2f} | {r['file_rtf']:.2f} "
                  f"| {r['behind']:.1f} | {rss:.0f} | {r['non_speech_words']} |", flush=True)


if __name__ == "__main__":
    main()
