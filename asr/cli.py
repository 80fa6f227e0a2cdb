"""The `asr` command: thin wrappers over library functions of the same names."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .writers import FORMATS


def cmd_train(args: argparse.Namespace) -> int:
    from .config import Config, load_config
    from .train import train

    cfg = load_config(Config, args.config, args.overrides)
    path = train(cfg, args.exp)
    print(f"model: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .decoding import DecodeOptions, Search
    from .evaluate import evaluate, format_summary, format_table
    from .recognizer import Recognizer

    rec = Recognizer.load(args.model, args.device)
    search = Search(rec, DecodeOptions.from_config(rec.cfg, **decode_options(args)))
    summaries = {}
    for manifest in args.manifests:
        name = Path(manifest).stem
        s = evaluate(search, manifest, Path(args.out) / name, args.batch_size)
        print(f"{name}: {format_summary(s)}  -> {Path(args.out) / name / 'report.txt'}")
        summaries[name] = s
    print()
    print(format_table(summaries))
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from .recognizer import Recognizer
    from .transcribe import transcribe

    rec = Recognizer.load(args.model, args.device)
    results, failed = transcribe(rec, args.paths, args.output, args.format, args.batch_size, args.device,
                                 args.word_timestamps, args.max_segment, **decode_options(args))
    if not results:
        print("no audio files found", file=sys.stderr)
        return 2
    if failed:
        print(f"{failed} of {len(results)} files could not be transcribed", file=sys.stderr)
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .recognizer import export

    export(args.checkpoint, args.output)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from .prepare import prepare

    results = prepare(args.layout, args.source, args.out, args.splits, args.verify, args.workers)
    return 0 if any(r.kept for r in results) else 1


def cmd_tokenizer(args: argparse.Namespace) -> int:
    from .config import Config, load_config
    from .data import read_manifest
    from .dataprep import prepare_tokenizer

    cfg = load_config(Config, args.config, args.overrides)
    if not cfg.data.train:
        raise ValueError("give the training manifest: data.train=PATH")
    if (Path(args.exp) / "tokenizer.json").exists():
        print(f"{args.exp}/tokenizer.json exists: kept (delete it to train another)")
    tok = prepare_tokenizer(cfg, read_manifest(cfg.data.train), args.exp)
    print(f"{tok.kind} tokenizer, {tok.vocab_size} tokens -> {Path(args.exp) / 'tokenizer.json'}")
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from .average import average

    average(args.exp, args.output, args.n, args.by)
    return 0


def cmd_lm(args: argparse.Namespace) -> int:
    from .lm import read_texts, train_lm
    from .recognizer import Recognizer

    tokenizer = Recognizer.load(args.model).tokenizer
    texts = read_texts(args.texts)
    lm = train_lm(tokenizer, texts, args.order)
    lm.save_arpa(args.output, tokenizer)
    print(f"{args.order}-gram LM over the model's {tokenizer.kind} tokens from {len(texts)} sentences "
          f"({len(lm.logp)} n-grams) -> {args.output}")
    return 0


def add_decode_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding (defaults: the model's decode config)")
    g.add_argument("--beam-size", type=int, help="1 = greedy")
    g.add_argument("--ctc-weight", type=float, help="weight of CTC prefix scores in beam search (0 = attention only)")
    g.add_argument("--length-penalty", type=float, help="rank by log prob / length ** this")
    g.add_argument("--n-best", type=int, help="keep this many hypotheses per segment (json/jsonl: alternatives)")
    g.add_argument("--lm", help="n-gram LM (ARPA over the model's tokens, from `asr lm`) fused into beam search")
    g.add_argument("--lm-weight", type=float, help="weight of the LM's log probabilities (default: decode.lm_weight)")


def decode_options(args: argparse.Namespace) -> dict:
    """The decode options given on the command line (the rest come from the model's config)."""
    opts = {k: getattr(args, k, None) for k in ("beam_size", "ctc_weight", "length_penalty", "n_best", "lm", "lm_weight")}
    return {k: v for k, v in opts.items() if v is not None}


def add_inference_commands(sub) -> None:
    """evaluate, transcribe"""
    e = sub.add_parser("evaluate", help="WER/CER of a model on one or more manifests")
    e.add_argument("-m", "--model", required=True, help="exported model file (model.pt)")
    e.add_argument("manifests", nargs="+", help="JSONL manifests")
    e.add_argument("--out", required=True, help="folder for report.txt and summary.json per manifest")
    e.add_argument("--batch-size", type=int, default=None)
    e.add_argument("--device", default="cpu")
    add_decode_options(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("transcribe", help="transcribe audio files and folders")
    r.add_argument("-m", "--model", required=True, help="exported model file (model.pt)")
    r.add_argument("paths", nargs="+", help="audio files or folders (searched recursively)")
    r.add_argument("-f", "--format", choices=FORMATS, default="text",
                   help="text and jsonl: one line per file; json, srt, vtt: one file per input in the -o folder")
    r.add_argument("-o", "--output", help="file (text, jsonl; default standard output) or folder (json, srt, vtt)")
    r.add_argument("--word-timestamps", action="store_true", help="word times from CTC forced alignment")
    r.add_argument("--max-segment", type=float, help="cut long recordings into segments at most this long (s)")
    r.add_argument("--batch-size", type=int, default=16)
    r.add_argument("--device", default="cpu")
    add_decode_options(r)
    r.set_defaults(func=cmd_transcribe)


def add_training_commands(sub) -> None:
    """train and what surrounds it: data, tokenizer, LM, checkpoints"""
    t = sub.add_parser("train", help="train a model; resumes from EXP/checkpoints/last.ckpt if present")
    t.add_argument("-c", "--config", help="YAML config (only what differs from the defaults)")
    t.add_argument("--exp", required=True, help="experiment folder: checkpoints, logs, model.pt")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.train=train.jsonl model.d_model=256")
    t.set_defaults(func=cmd_train)

    lm = sub.add_parser("lm", help="train an n-gram LM over a model's tokens (for --lm in evaluate/transcribe)")
    lm.add_argument("-m", "--model", required=True, help="exported model file: its tokenizer is used")
    lm.add_argument("texts", nargs="+", help="JSONL manifests (their \"text\") or text files (a sentence a line)")
    lm.add_argument("-o", "--output", required=True, help="ARPA file to write")
    lm.add_argument("--order", type=int, default=4)
    lm.set_defaults(func=cmd_lm)

    tk = sub.add_parser("tokenizer", help="train the tokenizer of an experiment ahead of training (EXP/tokenizer.json)")
    tk.add_argument("-c", "--config", help="YAML config (tokenizer.kind, tokenizer.vocab_size)")
    tk.add_argument("--exp", required=True, help="experiment folder (the one asr train --exp will use)")
    tk.add_argument("overrides", nargs="*", help="dotted overrides; data.train=MANIFEST is required")
    tk.set_defaults(func=cmd_tokenizer)

    x = sub.add_parser("export", help="Lightning checkpoint -> plain model file")
    x.add_argument("checkpoint")
    x.add_argument("output")
    x.set_defaults(func=cmd_export)

    pr = sub.add_parser("prepare", help="corpus on disk -> JSONL manifests (+ OUT/<split>.rejected.tsv: skipped, why)")
    pr.add_argument("layout", choices=["librispeech", "commonvoice", "kaldi", "folder"])
    pr.add_argument("source", help="corpus folder (LibriSpeech root or subset, Common Voice language folder, "
                                   "Kaldi data dir, folder of audio + .txt/.lab)")
    pr.add_argument("--out", required=True, help="folder for <split>.jsonl manifests")
    pr.add_argument("--splits", nargs="+", help="subsets / tsv names / data dirs to prepare (default: all found; "
                                                "Common Voice: train dev test)")
    pr.add_argument("--verify", action="store_true", help="decode every file, not only its header (slower)")
    pr.add_argument("--workers", type=int, default=4, help="threads reading audio headers")
    pr.set_defaults(func=cmd_prepare)

    a = sub.add_parser("average", help="average the best or last N checkpoints of a run -> plain model file")
    a.add_argument("exp", help="experiment folder (the one given to asr train --exp)")
    a.add_argument("-n", type=int, default=5, help="how many checkpoints (default 5)")
    a.add_argument("--by", choices=["best", "last"], default="best",
                   help="best: lowest dev WER (best-*.ckpt); last: latest periodic (step-*.ckpt)")
    a.add_argument("-o", "--output", help="model file to write (default EXP/model_avg_{by}{n}.pt)")
    a.set_defaults(func=cmd_average)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asr", description="Speech recognition: train, evaluate, transcribe.")
    sub = p.add_subparsers(dest="command", required=True)
    add_training_commands(sub)
    add_inference_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .audio import AudioError
    from .config import ConfigError

    try:
        return args.func(args)
    except (ConfigError, AudioError, FileNotFoundError, ValueError) as e:
        print(f"asr {args.command}: error: {e}", file=sys.stderr)
        return 2
