"""Decoding benchmark: speed (RTF) and WER of our search settings and of offline peers, on the
same clips in one run; the KV cache on long outputs; and a long recording end to end.

    python recipes/benchmarks/decode.py --model exp/synth/prose_small_cpu/model.pt \
        --manifest data/synth/prose/test.jsonl --clips 200 --long-minutes 60

Every row decodes the same in-memory waveforms (file reading is not timed); RTF = decode
seconds / audio seconds, on `--threads` CPU threads for every system. The peers (faster-whisper
tiny.en int8, pocketsphinx) run when the `bench` extra is installed (pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import build_long, run_fresh, wer, word_list_check

from asr.audio.read import load_audio
from asr.data.manifest import read_manifest
from asr.decode.options import DecodeOptions
from asr.decode.task import Search
from asr.model.recognizer import Recognizer
from asr.storage import read_jsonl
from asr.text.normalize import normalize

HERE = Path(__file__).resolve().parent
SR = 16000



def batches(n: int, wavs: list[np.ndarray], size: int):
    order = sorted(range(n), key=lambda i: len(wavs[i]))
    return [order[b : b + size] for b in range(0, n, size)]


def run_ours(rec: Recognizer, wavs: list[np.ndarray], batch_size: int, **options) -> tuple[list[str], float]:
    """Features + encoder + search on padded batches, length-sorted; returns texts and seconds."""
    search = Search(rec, DecodeOptions.from_config(rec.cfg, **options))
    hyps: list[str] = [""] * len(wavs)
    start = time.perf_counter()
    for idx in batches(len(wavs), wavs, batch_size):
        lens = torch.tensor([len(wavs[i]) for i in idx])
        x = torch.zeros(len(idx), int(lens.max()))
        for j, i in enumerate(idx):
            x[j, : len(wavs[i])] = torch.from_numpy(wavs[i])
        for i, nbest in zip(idx, search.decode(x, lens)):
            hyps[i] = nbest[0].text
    return hyps, time.perf_counter() - start


def search_table(rec: Recognizer, wavs, refs, peers: bool, threads: int, peer_beams=(1,)) -> list[dict]:
    audio = sum(len(w) for w in wavs) / SR
    rows = []

    def add(system, setting, hyps, seconds):
        rows.append({"system": system, "setting": setting, "wer": wer(refs, [normalize(h) for h in hyps]),
                     "rtf": seconds / audio, "seconds": seconds})
        print(f"  {system:<24}{setting:<36}WER {rows[-1]['wer']:6.2f}  RTF {rows[-1]['rtf']:.4f}", flush=True)

    greedy = dict(beam_size=1, ctc_weight=0.0)
    run_ours(rec, wavs[:16], 16, **greedy)  # warm-up: first calls allocate
    add("asr (ours)", "greedy, batch 16, KV cache", *run_ours(rec, wavs, 16, **greedy))
    add("asr (ours)", "greedy, batch 16, no KV cache", *run_ours(rec, wavs, 16, use_cache=False, **greedy))
    add("asr (ours)", "greedy, one at a time", *run_ours(rec, wavs, 1, **greedy))
    add("asr (ours)", "beam 5, batch 16", *run_ours(rec, wavs, 16, beam_size=5, ctc_weight=0.0))
    add("asr (ours)", f"beam 5 + CTC {rec.cfg.optim.ctc_weight}, batch 16", *run_ours(rec, wavs, 16, beam_size=5))
    add("asr (ours)", f"beam 5 + CTC {rec.cfg.optim.ctc_weight}, one at a time", *run_ours(rec, wavs, 1, beam_size=5))
    if peers:
        import peers as P

        why = P.available()
        if why.get("faster-whisper") is None:
            for beam in peer_beams:
                fw = P.FasterWhisper(beam_size=beam, threads=threads)
                fw.transcribe(wavs[:2])  # warm-up
                t = time.perf_counter()
                hyps = fw.transcribe(wavs)
                add("faster-whisper tiny.en", f"int8, {threads} threads, {'greedy' if beam == 1 else 'beam 5'}",
                    hyps, time.perf_counter() - t)
        else:
            print(f"  faster-whisper: skipped ({why['faster-whisper']})")
        if why.get("pocketsphinx") is None:
            ps = P.PocketSphinx()
            t = time.perf_counter()
            hyps = ps.transcribe(wavs)
            add("pocketsphinx en-us", "default model", hyps, time.perf_counter() - t)
        else:
            print(f"  pocketsphinx: skipped ({why['pocketsphinx']})")
    return rows


def cache_table(rec: Recognizer, wavs, refs, min_chars: int = 100) -> dict:
    """Greedy with and without the KV cache on clips whose transcripts are long."""
    keep = [i for i, r in enumerate(refs) if len(r) >= min_chars]
    w = [wavs[i] for i in keep]
    greedy = dict(beam_size=1, ctc_weight=0.0)
    run_ours(rec, w[:4], 16, **greedy)
    cached, t_cached = run_ours(rec, w, 16, **greedy)
    uncached, t_uncached = run_ours(rec, w, 16, use_cache=False, **greedy)
    tokens = [len(rec.tokenizer.encode(h)) for h in cached]
    return {"clips": len(w), "mean_output_tokens": float(np.mean(tokens)) if tokens else 0.0,
            "cached_s": t_cached, "uncached_s": t_uncached, "speedup": t_uncached / max(t_cached, 1e-9),
            "identical": sum(a == b for a, b in zip(cached, uncached))}


# --------------------------------------------------------------------------- long recordings



def transcribe_measured(model: str, inputs: list[str], out: Path, extra: list[str]) -> dict:
    """`asr transcribe` in a fresh process: its wall time (model loading excluded) and peak RSS."""
    code = (
        "import json, sys, time\n"
        "from asr.cli import main\n"
        "import asr.model.recognizer, asr.transcribe.pipeline\n"  # imports outside the timing
        "t = time.perf_counter(); rc = main(sys.argv[1:]); dt = time.perf_counter() - t\n"
        "print(json.dumps({'rc': rc, 'seconds': dt}))\n"
    )
    args = [sys.executable, "-c", code, "transcribe", "-m", model, *inputs, "-f", "jsonl", "-o", str(out), *extra]
    stdout, peak_mb = run_fresh(args)
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_rss_mb": peak_mb}


def long_form(model: str, entries: list[dict], minutes: list[float], workdir: Path, extra: list[str]) -> list[dict]:
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    # the short clips themselves, through the same command
    clips = [e["audio"] for e in entries]
    m = transcribe_measured(model, clips, workdir / "clips.jsonl", extra)
    audio = sum(e["duration"] for e in entries)
    hyps = {r["path"]: r["text"] for r in read_jsonl(workdir / "clips.jsonl")}
    refs = [normalize(e["text"]) for e in entries]
    clip_wer = wer(refs, [hyps[e["audio"]] for e in entries])
    rows.append({"input": f"{len(clips)} clips", "audio_min": audio / 60, "rtf": m["seconds"] / audio,
                 "peak_rss_mb": m["peak_rss_mb"], "wer": clip_wer, "seams": "-", "seams_in_speech": "-"})
    print(f"  clips: RTF {rows[-1]['rtf']:.4f}  RSS {m['peak_rss_mb']:.0f} MB  WER {clip_wer:.2f}", flush=True)
    for mins in minutes:
        path = workdir / f"long_{mins:g}min.wav"
        placed = build_long(entries, mins, path)
        m = transcribe_measured(model, [str(path)], workdir / f"long_{mins:g}min.jsonl", extra)
        res = json.loads((workdir / f"long_{mins:g}min.jsonl").read_text())
        segs = res["segments"]
        # a seam: the middle of the gap between two segments (of the shared stretch, for an overlap cut)
        seams = [
            b["start"] + b["overlap"] / 2 if b["overlap"] else (a["end"] + b["start"]) / 2
            for a, b in zip(segs, segs[1:])
        ]
        inside = sum(any(u["speech"][0] < x < u["speech"][1] for u in placed) for x in seams)
        total = placed[-1]["end"]
        check = word_list_check([hyps[u["audio"]] for u in placed], res["text"])
        rows.append({"input": f"{mins:g}-minute file", "audio_min": total / 60, "rtf": m["seconds"] / total,
                     "peak_rss_mb": m["peak_rss_mb"], "wer": wer([" ".join(u["text"] for u in placed)], [res["text"]]),
                     "seams": len(seams), "seams_in_speech": inside, "vs_clips": check})
        r, c = rows[-1], check
        print(f"  {r['input']}: RTF {r['rtf']:.4f}  RSS {r['peak_rss_mb']:.0f} MB  WER {r['wer']:.2f}  "
              f"seams {r['seams']} (inside an utterance's speech: {inside})\n"
              f"  word-list check against the clips' own transcripts ({c['words']} words, {c['edge_words']} of them "
              f"first or last of an utterance): {c['sub']} substituted, {c['del']} missing, {c['ins']} extra; "
              f"missing at utterance edges {c['del_edge']}/{c['edge_words']}, in the middle "
              f"{c['del'] - c['del_edge']}/{c['words'] - c['edge_words']}; extra between utterances {c['ins_between']}",
              flush=True)
    return rows



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--clips", type=int, default=200, help="clips for the search table (a fixed random sample)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--peer-beams", type=int, nargs="+", default=[1], help="faster-whisper beam sizes to run")
    p.add_argument("--long-minutes", type=float, nargs="*", default=[10, 60])
    p.add_argument("--long-args", default="--beam-size 1 --ctc-weight 0", help="decode options for the long-form runs")
    p.add_argument("--workdir", default="exp/bench/decode")
    p.add_argument("--only-long", action="store_true", help="skip the search and KV-cache tables")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    rec = Recognizer.load(args.model)
    entries = read_manifest(args.manifest)
    sample = random.Random(0).sample(entries, min(args.clips, len(entries)))
    wavs = [load_audio(e["audio"]) for e in sample]
    refs = [normalize(e["text"]) for e in sample]
    audio = sum(len(w) for w in wavs) / SR
    print(f"model {args.model}; {len(wavs)} clips, {audio / 60:.1f} min of audio, {args.threads} threads")

    rows, c = [], {}
    if not args.only_long:
        print("\n[search] same clips, every system")
        rows = search_table(rec, wavs, refs, not args.no_peers, args.threads, args.peer_beams)
        base = next(r for r in rows if r["setting"].startswith("greedy, batch 16"))
        print(f"\n{'system':<24}{'setting':<38}{'WER %':>7}{'RTF':>9}{'x ours greedy':>15}")
        for r in rows:
            print(
                f"{r['system']:<24}{r['setting']:<38}{r['wer']:>7.2f}{r['rtf']:>9.4f}"
                f"{r['seconds'] / base['seconds']:>15.2f}"
            )

        print("\n[KV cache] greedy, outputs of 100+ characters")
        c = cache_table(rec, [load_audio(e["audio"]) for e in entries], [normalize(e["text"]) for e in entries])
        if not c["clips"]:
            print("no test clip has 100+ characters: skipped")
        else:
            print(
                f"{c['clips']} clips, mean output {c['mean_output_tokens']:.0f} tokens: cached {c['cached_s']:.1f} s, "
                f"recomputed {c['uncached_s']:.1f} s, speedup {c['speedup']:.2f}x, "
                f"identical outputs {c['identical']}/{c['clips']}"
            )

    long_rows = []
    if args.long_minutes:
        print("\n[long form] `asr transcribe` in a fresh process: the clips, then files built from them")
        long_rows = long_form(args.model, sample, args.long_minutes, Path(args.workdir), args.long_args.split())
        print(f"\n{'input':<22}{'audio min':>10}{'RTF':>9}{'peak RSS MB':>13}{'WER %':>8}{'seams':>7}{'in speech':>10}")
        for r in long_rows:
            print(f"{r['input']:<22}{r['audio_min']:>10.1f}{r['rtf']:>9.4f}{r['peak_rss_mb']:>13.0f}{r['wer']:>8.2f}"
                  f"{r['seams']!s:>7}{r['seams_in_speech']!s:>10}")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    (Path(args.workdir) / "results.json").write_text(
        json.dumps({"search": rows, "cache": c, "long": long_rows}, indent=1)
    )


if __name__ == "__main__":
    main()
