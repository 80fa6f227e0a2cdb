"""Training throughput of the presets: one table of audio seconds and tokens per second, step time,
the fraction of time spent waiting on the DataLoader, and (on a GPU) model FLOPs utilisation.

    .venv/bin/python recipes/benchmarks/train_speed.py [--configs configs/tiny.yaml ...] [--manifest M]
        [--steps 30] [--warmup 5] [--num-workers N] [--peak-tflops T] [--precisions 32 bf16]

It runs the training step of asr/train/trainer.py (ASRTask.model_step: features, SpecAugment, encoder,
decoder, CTC + attention losses; backward; AdamW) in a plain loop, without Lightning's loop around
it, on batches from DurationBatchSampler and SpeechDataset in DataLoader workers. Precision: bf16
autocast on a GPU, float32 on the CPU, or each of --precisions in turn (32, bf16: torch.autocast, as
Lightning's trainer.precision=bf16-mixed does), with each row's speed-up over the first. FLOPs per
step are counted once with torch.utils.flop_counter (matmuls and convolutions, forward + backward);
MFU = counted FLOPs per second / the device's peak bf16 FLOPs.
Data: --manifest, else data/synth/commands/train.jsonl if it exists, else a small synthesized set.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from asr.config import Config, load_config, to_dict
from asr.data.dataset import DurationBatchSampler, SpeechDataset, collate
from asr.data.manifest import read_manifest, write_manifest
from asr.text.tokenizers import train_tokenizer
from asr.train.trainer import ASRTask

ROOT = Path(__file__).resolve().parents[2]

DEFAULT_MANIFEST = ROOT / "data/synth/commands/train.jsonl"
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}


def synthesize(folder: Path, n: int = 200, sample_rate: int = 16000) -> Path:
    """n utterances of 1-6 s (harmonic tones in noise) with random letter transcripts."""
    rng = np.random.default_rng(0)
    words = ["turn", "on", "the", "light", "kitchen", "set", "timer", "for", "ten", "minutes", "play", "music"]
    entries = []
    for i in range(n):
        dur = float(rng.uniform(1, 6))
        t = np.arange(int(dur * sample_rate)) / sample_rate
        wav = 0.1 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.01 * rng.standard_normal(t.shape[0])
        path = folder / f"u{i:04d}.wav"
        sf.write(path, wav.astype(np.float32), sample_rate)
        text = " ".join(rng.choice(words, size=max(1, int(dur * 2.5))))
        entries.append({"id": f"u{i:04d}", "audio": str(path), "duration": dur, "text": text})
    write_manifest(folder / "train.jsonl", entries)
    return folder / "train.jsonl"


def peak_flops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tf * 1e12 for key, tf in PEAK_BF16_TFLOPS.items() if key in name), None)


def step_fn(task: ASRTask, opt: torch.optim.Optimizer, device: torch.device, precision: str):
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    def step(batch) -> None:
        with autocast:
            loss = task.model_step(batch, augment=True)[0]["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(task.parameters(), task.cfg.optim.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def bench(config: Path, entries: list[dict], args, device: torch.device, precision: str) -> dict:
    cfg = load_config(Config, config, args.overrides)
    tok = train_tokenizer(cfg.tokenizer.kind, [e["text"] for e in entries], cfg.tokenizer.vocab_size)
    torch.manual_seed(0)  # every precision starts from the same weights and sees the same batches
    task = ASRTask(to_dict(cfg), tok.to_dict()).to(device).train()
    opt = torch.optim.AdamW(task.parameters(), lr=cfg.optim.lr)
    step = step_fn(task, opt, device, precision)
    d = cfg.data
    workers = d.num_workers if args.num_workers is None else args.num_workers
    sampler = DurationBatchSampler([e["duration"] for e in entries], d.max_frames_per_batch, d.max_batch_size,
                                   shuffle=True, seed=cfg.seed)
    sampler.set_epoch(1)  # shuffled batch order (epoch 0 is sorted, SortaGrad)
    loader = DataLoader(SpeechDataset(entries, tok, cfg.features.sample_rate), batch_sampler=sampler,
                        collate_fn=collate, num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=device.type == "cuda")

    def batches():
        epoch = 1
        while True:
            yield from loader
            epoch += 1
            sampler.set_epoch(epoch)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    it = batches()
    flops_per_sample = 0.0
    for i in range(max(1, args.warmup)):
        batch = next(it).to(device)
        if i == max(1, args.warmup) - 1:  # count one step's FLOPs (counting is slow)
            with FlopCounterMode(display=False) as counter:
                step(batch)
            flops_per_sample = counter.get_total_flops() / batch.wav.numel()  # per padded audio sample
        else:
            step(batch)
    sync()
    wait = audio = tokens = flops = 0.0
    start = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        batch = next(it)
        t1 = time.perf_counter()
        batch = batch.to(device)
        step(batch)
        sync()
        wait += t1 - t0
        audio += float(batch.wav_lens.sum()) / cfg.features.sample_rate
        tokens += float(batch.token_lens.sum())
        flops += flops_per_sample * batch.wav.numel()  # ~linear in padded length (attention is a small part)
    total = time.perf_counter() - start
    peak = peak_flops(device, args.peak_tflops)
    params = sum(p.numel() for p in task.recognizer.model.parameters()) / 1e6
    return {"config": config.name, "precision": precision, "params": params,
            "batch": audio / args.steps, "step_ms": 1000 * total / args.steps, "audio_s": audio / total,
            "tokens_s": tokens / total, "wait": wait / total,
            "tflop_step": flops / args.steps / 1e12, "mfu": f"{100 * flops / total / peak:.1f}%" if peak else "n/a"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", type=Path,
                    default=[ROOT / "configs/tiny.yaml", ROOT / "configs/small.yaml", ROOT / "configs/base.yaml"])
    ap.add_argument("--manifest", type=Path)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per config")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (the last one counts FLOPs)")
    ap.add_argument("--num-workers", type=int, help="DataLoader workers (default: the config's)")
    ap.add_argument("--peak-tflops", type=float, help="device peak for MFU (default: known GPUs' bf16 peak)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precisions", nargs="+", choices=["32", "bf16"],
                    help="each in turn for every config (default: bf16 on a GPU, 32 on the CPU); bf16 on a "
                         "CPU pays off only where it has bf16 instructions (AVX512_BF16, AMX)")
    ap.add_argument("overrides", nargs="*", help="dotted config overrides applied to every preset")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    random.seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        manifest = args.manifest or (DEFAULT_MANIFEST if DEFAULT_MANIFEST.exists() else synthesize(Path(tmp)))
        entries = read_manifest(manifest)
        print(f"data: {manifest} ({len(entries)} utterances); device: "
              f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}; "
              f"{args.steps} timed steps after {args.warmup} warm-up steps\n")
        precisions = args.precisions or (["bf16"] if device.type == "cuda" else ["32"])
        rows = [bench(c, entries, args, device, p) for c in args.configs for p in precisions]
    print("| config | precision | params (M) | audio s/batch | step (ms) | speed-up | audio s/s | tokens/s "
          "| loader wait | TFLOP/step | MFU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        first = next(f for f in rows if f["config"] == r["config"])  # the config's first precision
        print(f"| {r['config']} | {r['precision']} | {r['params']:.1f} | {r['batch']:.0f} | {r['step_ms']:.0f} "
              f"| {first['step_ms'] / r['step_ms']:.2f}x | {r['audio_s']:.0f} | {r['tokens_s']:.0f} "
              f"| {100 * r['wait']:.1f}% | {r['tflop_step']:.3f} | {r['mfu']} |")


if __name__ == "__main__":
    main()
