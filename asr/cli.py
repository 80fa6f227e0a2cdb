"""The `asr` command: thin wrappers over library functions of the same names."""
# long module: one parser for every subcommand, each a few lines over the library call it names

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from asr.config import COMPUTE_TYPES
from asr.transcribe.writers import FORMATS


def cmd_train(args: argparse.Namespace) -> int:
    from asr.config import Config, load_config
    from asr.train.trainer import train

    cfg = load_config(Config, args.config, args.overrides + ([f"init={args.init}"] if args.init else []))
    path = train(cfg, args.exp)
    print(f"model: {path}")
    return 0


def cmd_teach(args: argparse.Namespace) -> int:
    import torch

    from asr.data.manifest import read_manifest
    from asr.model.catalogue import load
    from asr.train.distill import teach

    if args.threads:
        torch.set_num_threads(args.threads)
    entries = [e for m in args.manifests for e in read_manifest(m, text=False)]
    if len({e["id"] for e in entries}) != len(entries):
        raise SystemExit("error: utterance ids repeat across the manifests; the teacher cache is keyed by id")
    manifest, cache = teach(load(args.model, args.device), entries, args.out, args.top_k, args.batch_size,
                            progress=sys.stderr.isatty(), memory=args.memory)
    print(f"manifest: {manifest}\nteacher: {cache}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search
    from asr.evaluate.scoring import evaluate, format_summary, format_table
    from asr.model.catalogue import load

    rec = load(args.model, args.device, args.compute_type)
    search = Search(rec, DecodeOptions.from_config(rec.cfg, **decode_options(args)))
    summaries, rows = {}, {}
    for manifest in args.manifests:
        name = Path(manifest).stem
        s = evaluate(search, manifest, Path(args.out) / name, args.batch_size, rows_into=rows.setdefault(name, []))
        print(f"{name}: {format_summary(s)}  -> {Path(args.out) / name / 'report.txt'}")
        summaries[name] = s
    print()
    print(format_table(summaries))
    if args.html:
        from asr.evaluate.report import write_html

        print(f"report: {write_html(summaries, rows, Path(args.out) / 'report.html', rec)}")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.transcribe.pipeline import transcribe

    if not args.paths:
        print("asr transcribe: no audio files found (give files, folders, or - for standard input)", file=sys.stderr)
        return 2
    segments = segment_options(args, progress=args.output is not None)  # checked before the model loads
    rec = load_default_model(args.model, args.device, args.compute_type)
    results, failed = transcribe(rec, args.paths, output=args.output, fmt=args.format, segments=segments,
                                 **decode_options(args))
    if failed:
        print(f"{failed} of {len(results)} files could not be transcribed", file=sys.stderr)
        return 1
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    from asr.audio.inputs import file_blocks, input_devices, microphone_blocks, pipe_blocks
    from asr.transcribe.live import LiveOptions, LiveWriter, Stream, run

    if args.list_devices:
        for index, name, rate in input_devices():
            print(f"{index:3d}  {name}  ({rate} Hz)")
        return 0
    given = {k: getattr(args, k) for k in ("vad", "update_every", "end_silence", "max_utterance", "min_speech",
                                           "partial_beam")}
    live = LiveOptions(**{k: v for k, v in given.items() if v is not None})  # checked before the model loads
    if args.source is None and args.mic is None:
        print("asr live: give a file, - (standard input) or --mic [DEVICE]", file=sys.stderr)
        return 2
    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search

    rate = 16000  # every model here hears 16 kHz; the microphone is checked before the model loads
    if args.mic is not None:
        device = None if args.mic == "default" else int(args.mic) if args.mic.isdigit() else args.mic
        blocks = microphone_blocks(rate, device)
    elif args.source == "-":
        blocks = pipe_blocks(sys.stdin.buffer, rate, raw=args.raw, raw_rate=args.raw_rate)
    else:
        blocks = file_blocks(args.source, rate, realtime=args.realtime)
    from asr.model.recognizer import resolve_device

    compute_type = args.compute_type or ("int8" if str(resolve_device(args.device)) == "cpu" else "float32")
    rec = load_default_model(args.model, args.device, compute_type)
    if rec.cfg.features.sample_rate != rate:
        raise ValueError(f"asr live takes 16 kHz models; this one hears {rec.cfg.features.sample_rate} Hz")
    stream = Stream(Search(rec, DecodeOptions.from_config(rec.cfg, **decode_options(args))), live)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        show = sys.stderr if sys.stderr.isatty() and not args.quiet else None
        run(stream, blocks, LiveWriter(out, args.format, show))
    except KeyboardInterrupt:
        pass
    finally:
        if args.output:
            out.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from asr.model.catalogue import best_installed
    from asr.transcribe.serve import ServeOptions, model_id, serve

    key = args.api_key or os.environ.get("ASR_API_KEY") or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and key is None and not args.open:
        raise ValueError(f"binding to {args.host} without an API key opens the service to the network: give "
                         "--api-key KEY (or ASR_API_KEY), or --open to say it is meant to be open")
    rec = load_default_model(args.model, args.device, args.compute_type)
    default_id = getattr(best_installed(), "name", "asr")
    options = ServeOptions(max_batch=args.max_batch, batch_wait=args.batch_wait_ms / 1000,
                           max_upload_bytes=int(args.max_upload_mb * 2**20), max_seconds=args.max_duration,
                           segments=segment_options(args), model_id=model_id(args.model, default_id),
                           api_key=key, max_sessions=args.max_sessions)
    serve(rec, args.host, args.port, options, **decode_options(args))
    return 0


def add_serve_command(sub) -> None:
    s = sub.add_parser("serve", help="HTTP service: OpenAI-compatible /v1/audio/transcriptions and a web page at /")
    s.add_argument("-m", "--model", help="model file or name (`asr models`); default: the best installed named model")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only; 0.0.0.0: all)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--max-batch", type=int, default=8, help="requests decoded together (1: no batching)")
    s.add_argument("--batch-wait-ms", type=float, default=15, help="how long a batch waits for more requests")
    s.add_argument("--batch-size", type=int, help="segments per model call (default: the model's, 16)")
    s.add_argument("--max-upload-mb", type=float, default=25, help="largest upload accepted (MiB)")
    s.add_argument("--max-duration", type=float, default=3600, help="longest audio accepted (seconds)")
    s.add_argument("--api-key", help="every /v1 request must carry Authorization: Bearer KEY (default: "
                                     "$ASR_API_KEY; none: no key asked for)")
    s.add_argument("--open", action="store_true", help="allow a non-loopback --host without an API key")
    s.add_argument("--max-sessions", type=int, default=16, help="live WebSocket sessions at once (/v1/realtime)")
    s.add_argument("--vad", choices=["silero", "energy"], help="speech detector (default: the model's)")
    s.add_argument("--max-segment", type=float, help="cut long recordings into segments at most this long (s)")
    s.add_argument("--device", default="auto", help="auto (the GPU if there is one), cpu, cuda, cuda:1")
    add_compute_type(s)
    add_decode_options(s)
    s.set_defaults(func=cmd_serve)


def cmd_export(args: argparse.Namespace) -> int:
    if args.onnx:  # model file or name -> ONNX graphs for asr.onnx.runtime (no torch needed to run them)
        from asr.model.catalogue import load
        from asr.onnx.export import export_onnx

        export_onnx(load(args.model), args.onnx, args.int8)
        return 0
    if not (args.checkpoint and args.output) or args.model:
        raise SystemExit("usage: asr export CHECKPOINT OUTPUT | asr export -m MODEL --onnx DIR [--int8]")
    from asr.model.recognizer import export

    export(args.checkpoint, args.output)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from asr.data.prepare import prepare

    results = prepare(args.layout, args.source, args.out, args.splits, args.verify, args.workers, args.language)
    return 0 if any(r.kept for r in results) else 1


def cmd_tokenizer(args: argparse.Namespace) -> int:
    from asr.config import Config, load_config
    from asr.data.manifest import read_manifest
    from asr.train.inputs import prepare_tokenizer

    cfg = load_config(Config, args.config, args.overrides)
    if not cfg.data.train:
        raise ValueError("give the training manifest: data.train=PATH")
    if (Path(args.exp) / "tokenizer.json").exists():
        print(f"{args.exp}/tokenizer.json exists: kept (delete it to train another)")
    tok = prepare_tokenizer(cfg, read_manifest(cfg.data.train), args.exp)
    print(f"{tok.kind} tokenizer, {tok.vocab_size} tokens -> {Path(args.exp) / 'tokenizer.json'}")
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from asr.train.average import average

    average(args.exp, args.output, args.n, args.by)
    return 0


def cmd_lm(args: argparse.Namespace) -> int:
    from asr.model.catalogue import load
    from asr.text.lm import read_texts, train_lm

    tokenizer = load(args.model).tokenizer
    texts = read_texts(args.texts)
    lm = train_lm(tokenizer, texts, args.order)
    lm.save_arpa(args.output, tokenizer)
    print(f"{args.order}-gram LM over the model's {tokenizer.kind} tokens from {len(texts)} sentences "
          f"({len(lm.logp)} n-grams) -> {args.output}")
    return 0


def load_default_model(model: str | None, device: str, compute_type: str = "float32"):
    """The model given (a file or a name), else the best installed named model, said on stderr."""
    from asr.model.catalogue import best_installed, load

    if model is None:
        best = best_installed()
        if best is None:
            raise ValueError("no model given and none installed: give -m model.pt, or pip install 'asr[whisper]' "
                             "for the named Whisper models (`asr models`)")
        model = best.name
        print(f"model: {model} (the best installed; -m chooses another)", file=sys.stderr)
    return load(model, device, compute_type)


def cmd_import(args: argparse.Namespace) -> int:
    from asr.model.catalogue import import_model

    out = import_model(args.source if len(args.source) > 1 else args.source[0], args.output, args.tokenizer,
                       args.language, args.task)
    print(f"imported {' '.join(args.source)} -> {out}")
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    from asr.model.ship import ship

    out = ship(args.exp, args.name, args.out, args.model, args.eval, args.description, base=args.base or "",
               summary=args.summary)
    print(f"shipped {args.model or Path(args.exp) / 'model.pt'} -> {out} ({out.stat().st_size / 2**20:.1f} MB, "
          f"float16) and its card {Path(args.out) / (args.name + '.md')}: `asr transcribe -m {args.name}`")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from asr.model.catalogue import cache_dir, list_models

    models = list_models()
    w = max(17, *(len(m["name"]) + 2 for m in models))
    print(f"{'name':<{w}}{'installed':<11}{'params':<8}{'language':<14}{'packages / licence / WER'}")
    for m in models:
        print(f"{m['name']:<{w}}{'yes' if m['installed'] else 'no':<11}{m['parameters']:<8}{m['language']:<14}"
              f"{m['packages']}\n{'':<{w + 33}}{m['licence']}\n{'':<{w + 33}}WER: {m['wer']}"
              + (f"\n{'':<{w + 33}}{m['summary']}" if m["summary"] else ""))
    print(f"\nconverted models are cached in {cache_dir()}; missing ones: pip install 'asr[whisper]'")
    return 0


def add_decode_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding (defaults: the model's decode config)")
    g.add_argument("--beam-size", type=int, help="1 = greedy")
    g.add_argument("--ctc-weight", type=float, help="weight of CTC prefix scores in beam search (0 = attention only, "
                                                      "1 = the CTC head alone: its prefix beam search, no decoder)")
    g.add_argument("--length-penalty", type=float, help="rank by log prob / length ** this")
    g.add_argument("--n-best", type=int, help="keep this many hypotheses per segment (json/jsonl: alternatives)")
    g.add_argument("--lm", help="n-gram LM (ARPA over the model's tokens, from `asr lm`) fused into beam search")
    g.add_argument("--lm-weight", type=float, help="weight of the LM's log probabilities (default: decode.lm_weight)")
    g.add_argument("--min-ctc-logprob", type=float,
                   help="models with CTC: leave out a segment whose text's CTC log prob per token is below this "
                        "(babble, reversed speech), e.g. -5.5")
    g.add_argument("--language", help="multilingual models: auto (the default: detected in each segment) or a "
                                      "code (en, fr, de, es, zh, ...) to force; English-only models: en")
    g.add_argument("--task", choices=["transcribe", "translate"],
                   help="translate: speech in any language -> English text (multilingual models)")
    g.add_argument("--prompt", help="Whisper models: text said before, e.g. names and spellings to follow")
    g.add_argument("--hotwords", help='names and jargon to favour, comma-separated: "Kubernetes, Dvořák" '
                                      "(beam search; a bonus per token, taken back if the word is not finished)")
    g.add_argument("--hotword-weight", type=float, help="the bonus per token of a hotword (log probability; 2)")
    g.add_argument("--chunk", type=int, help="models trained with model.dynamic_chunk: chunked attention, this many "
                                         "encoder frames (40 ms) a chunk, as streaming (16 = 640 ms); 0 full context")
    g.add_argument("--reversed-margin", type=float,
                   help="also decode each segment played backwards and leave it out when that reads better by more "
                        "than this (log prob per token; speech played backwards), e.g. 0; inf: off")


def decode_options(args: argparse.Namespace) -> dict:
    """The decode options given on the command line (the rest come from the model's config)."""
    names = ("beam_size", "ctc_weight", "length_penalty", "n_best", "lm", "lm_weight", "min_ctc_logprob",
             "reversed_margin", "language", "task", "prompt", "hotwords", "hotword_weight", "chunk")
    opts = {k: getattr(args, k, None) for k in names}
    return {k: v for k, v in opts.items() if v is not None}


def segment_options(args: argparse.Namespace, progress: bool = False):
    """The segmentation options given on the command line (the rest come from the model's config)."""
    from asr.transcribe.pipeline import SegmentOptions

    return SegmentOptions(max_segment=args.max_segment, vad=args.vad, batch_size=args.batch_size,
                          word_timestamps=getattr(args, "word_timestamps", False), progress=progress)


def add_compute_type(p, default: str | None = "float32", why: str = "") -> None:
    p.add_argument("--compute-type", choices=COMPUTE_TYPES, default=default,
                   help="int8: linear layers in int8 on the CPU (faster; float32 elsewhere)" + why)


def add_inference_commands(sub) -> None:
    """evaluate, transcribe"""
    e = sub.add_parser("evaluate", help="WER/CER of a model on one or more manifests")
    e.add_argument("-m", "--model", required=True, help="model file (model.pt) or name (`asr models`)")
    e.add_argument("manifests", nargs="+", help="JSONL manifests")
    e.add_argument("--out", required=True, help="folder for report.txt and summary.json per manifest")
    e.add_argument("--batch-size", type=int, default=None)
    e.add_argument("--device", default="cpu")
    add_compute_type(e)
    e.add_argument("--html", action="store_true", help="also OUT/report.html: one page with tables, plots, "
                                                       "the worst utterances' alignments and attention maps")
    add_decode_options(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("transcribe", help="transcribe audio files and folders", epilog=TRANSCRIBE_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("-m", "--model", help="model file (model.pt) or name (`asr models`); default: the best "
                                          "installed named model")
    r.add_argument("paths", nargs="*", help="audio files or folders (searched recursively); - reads standard input")
    r.add_argument("-f", "--format", choices=FORMATS, default="text",
                   help="text and jsonl: one line per file; json, srt, vtt, tsv: one file per input in the -o "
                        "folder; all: each of those and a .txt per input")
    r.add_argument("-o", "--output", help="file (text, jsonl; default standard output) or folder (the others)")
    r.add_argument("--word-timestamps", action="store_true",
                   help="word times (CTC forced alignment; Whisper models: cross-attention DTW)")
    r.add_argument("--max-segment", type=float, help="cut long recordings into segments at most this long (s)")
    r.add_argument("--vad", choices=["silero", "energy"],
                   help="speech detector: silero (default; energy if silero-vad is not installed) or energy")
    r.add_argument("--batch-size", type=int, help="segments per model call (default: the model's, 16)")
    r.add_argument("--device", default="auto", help="auto (default: the GPU if there is one), cpu, cuda, cuda:1")
    add_compute_type(r)
    add_decode_options(r)
    r.set_defaults(func=cmd_transcribe)


def add_live_command(sub) -> None:
    lv = sub.add_parser("live", help="live transcription: partial text while a person speaks, final lines per "
                                     "utterance (microphone, standard input, or a file)", epilog=LIVE_EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    lv.add_argument("source", nargs="?", help="audio file, or - for standard input (any container PyAV reads, "
                                              "or raw PCM with --raw)")
    lv.add_argument("-m", "--model", help="model file or name; default: the best installed named model")
    lv.add_argument("--mic", nargs="?", const="default", help="the microphone (a device index or name from "
                                                              "--list-devices; default input if none)")
    lv.add_argument("--list-devices", action="store_true", help="list the audio input devices and stop")
    lv.add_argument("--realtime", action="store_true", help="a file is played at real speed (demos, tests)")
    lv.add_argument("--raw", action="store_true", help="standard input is 16-bit little-endian mono PCM")
    lv.add_argument("--raw-rate", type=int, default=16000, help="its sample rate (default 16000)")
    lv.add_argument("-f", "--format", choices=["text", "srt", "vtt", "jsonl"], default="text",
                    help="finals as timed lines, SRT or WebVTT cues; jsonl: every event (partials too)")
    lv.add_argument("-o", "--output", help="file for the output (default standard output)")
    lv.add_argument("-q", "--quiet", action="store_true", help="no partial line on the terminal")
    lv.add_argument("--vad", choices=["silero", "energy"], help="speech detector (default silero)")
    lv.add_argument("--update-every", type=float, help="seconds of audio between partial updates (1.0)")
    lv.add_argument("--min-speech", type=float, help="seconds of speech that start an utterance (0.25)")
    lv.add_argument("--end-silence", type=float, help="seconds of silence that end an utterance (0.6)")
    lv.add_argument("--max-utterance", type=float, help="longest utterance in seconds (20)")
    lv.add_argument("--partial-beam", type=int, help="beam of the partial decodes (1: greedy; models with a CTC head "
                                                      "over their tokens: its prefix beam search)")
    lv.add_argument("--device", default="auto", help="auto, cpu, cuda")
    add_compute_type(lv, None, "; default: int8 on the CPU, where live decoding must keep up (whisper-base "
                               "falls behind in float32 on 2 cores), float32 on a GPU")
    add_decode_options(lv)
    lv.set_defaults(func=cmd_live)


LIVE_EXAMPLES = """\
examples:
  asr live --mic                                        the default microphone (asr live --list-devices)
  asr live talk.mp3 --realtime                          a file played at real speed
  ffmpeg -loglevel quiet -i https://radio.example/stream -f wav - | asr live - -f srt -o radio.srt
  arecord -f S16_LE -r 16000 -c 1 | asr live - --raw    raw PCM from another program
"""


TRANSCRIBE_EXAMPLES = """\
examples:
  asr transcribe -m model.pt talk.mp3                   text to standard output: path<TAB>transcript
  asr transcribe -m model.pt recordings/ -f jsonl -o out.jsonl
                                                        a folder, searched recursively; one JSON line per file
  asr transcribe -m model.pt film.mp4 -f srt -o subs/   subtitles (subs/film.srt), word-timed cues
  asr transcribe -m model.pt a.wav b.m4a -f all -o out/ out/a.{txt,json,srt,vtt,tsv}, out/b.{...}
  ffmpeg -i in.mkv -f wav - | asr transcribe -m model.pt -
                                                        standard input
  asr transcribe -m model.pt noisy/ --vad energy --beam-size 1 --device cpu

exit status: 0 all transcribed (an input with no speech gives an empty transcript); 1 some
inputs could not be read (each is named on standard error with the reason); 2 a usage error,
or no inputs at all.
"""


def add_training_commands(sub) -> None:  # long: a parser per training subcommand, flat to read
    """train and what surrounds it: data, tokenizer, LM, checkpoints"""
    t = sub.add_parser("train", help="train a model; resumes from EXP/checkpoints/last.ckpt if present")
    t.add_argument("-c", "--config", help="YAML config (only what differs from the defaults)")
    t.add_argument("--exp", required=True, help="experiment folder: checkpoints, logs, model.pt")
    t.add_argument("--init", help="fine-tune: start from this model file or named model (e.g. whisper-tiny.en); "
                                  "freeze layers with freeze=[encoder]")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.train=train.jsonl model.d_model=256")
    t.set_defaults(func=cmd_train)

    te = sub.add_parser("teach", help="self-distillation targets: a teacher's transcripts and top-k token "
                        "distributions for any audio (then train with distill.teacher=OUT/teacher.pt)")
    te.add_argument("manifests", nargs="+", help="JSONL manifests of the audio (text optional, kept as reference)")
    te.add_argument("-m", "--model", default="whisper-tiny.en", help="the teacher: a model file or name")
    te.add_argument("-o", "--out", required=True, help="folder: train.jsonl (text = the teacher's) + teacher.pt")
    te.add_argument("--top-k", type=int, default=16)
    te.add_argument("--memory", action="store_true", help="also its encoder output over each recording's own "
                    "frames (OUT/memory.pt; distill.memory=OUT/memory.pt)")
    te.add_argument("--batch-size", type=int, default=8)
    te.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    te.add_argument("--device", default="cpu")
    te.set_defaults(func=cmd_teach)

    lm = sub.add_parser("lm", help="train an n-gram LM over a model's tokens (for --lm in evaluate/transcribe)")
    lm.add_argument("-m", "--model", required=True, help="model file or name (`asr models`): its tokenizer is used")
    lm.add_argument("texts", nargs="+", help="JSONL manifests (their \"text\") or text files (a sentence a line)")
    lm.add_argument("-o", "--output", required=True, help="ARPA file to write")
    lm.add_argument("--order", type=int, default=4)
    lm.set_defaults(func=cmd_lm)

    tk = sub.add_parser("tokenizer", help="train the tokenizer of an experiment ahead of training (EXP/tokenizer.json)")
    tk.add_argument("-c", "--config", help="YAML config (tokenizer.kind, tokenizer.vocab_size, tokenizer.text: "
                    "normalized or display targets)")
    tk.add_argument("--exp", required=True, help="experiment folder (the one asr train --exp will use)")
    tk.add_argument("overrides", nargs="*", help="dotted overrides; data.train=MANIFEST is required")
    tk.set_defaults(func=cmd_tokenizer)

    x = sub.add_parser("export", help="Lightning checkpoint -> plain model file; or a model -> ONNX graphs (--onnx)")
    x.add_argument("checkpoint", nargs="?")
    x.add_argument("output", nargs="?")
    x.add_argument("-m", "--model", help="with --onnx: a model file or a named model")
    x.add_argument("--onnx", metavar="DIR", help="write encoder.onnx, decoder.onnx and model.json (python -m asr.onnx)")
    x.add_argument("--int8", action="store_true", help="with --onnx: also int8-quantized graphs")
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
    pr.add_argument("--language", help="the entries' language field, e.g. es (asr evaluate normalizes and counts "
                                       "by it); Common Voice: from its locale column or folder name unless given")
    pr.set_defaults(func=cmd_prepare)

    a = sub.add_parser("average", help="average the best or last N checkpoints of a run -> plain model file")
    a.add_argument("exp", help="experiment folder (the one given to asr train --exp)")
    a.add_argument("-n", type=int, default=5, help="how many checkpoints (default 5)")
    a.add_argument("--by", choices=["best", "last"], default="best",
                   help="best: lowest dev WER (best-*.ckpt); last: latest periodic (step-*.ckpt)")
    a.add_argument("-o", "--output", help="model file to write (default EXP/model_avg_{by}{n}.pt)")
    a.set_defaults(func=cmd_average)


def add_model_commands(sub) -> None:
    """import, models: Whisper checkpoints and named models"""
    im = sub.add_parser("import", help="a Whisper checkpoint (CTranslate2, openai .pt, Hugging Face) or a model "
                                       "name -> plain model file")
    im.add_argument("source", nargs="+", help="model folder or file (parts of a split model.bin in order), or a name")
    im.add_argument("output", help="model file to write")
    im.add_argument("--tokenizer", help="tokenizer.json (an openai .pt carries none)")
    im.add_argument("--language", default="en", help="multilingual models: the language of the prompt")
    im.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    im.set_defaults(func=cmd_import)

    sh = sub.add_parser("ship", help="a trained model -> asr/model/pretrained/NAME.pt (float16) + a model card "
                                     "NAME.md, so that -m NAME loads it")
    sh.add_argument("exp", help="experiment folder (asr train --exp): model.pt, config.yaml, runs.jsonl, eval_*/")
    sh.add_argument("name", help="the model's name, e.g. people-small")
    sh.add_argument("--model", help="the model file to ship (default EXP/model.pt)")
    sh.add_argument("--eval", nargs="*", default=[], help="more evaluation folders (asr evaluate --out) for the card")
    sh.add_argument("--out", default=str(Path(__file__).parent / "model" / "pretrained"),
                    help="folder (default asr/model/pretrained)")
    sh.add_argument("--description", default="", help="a paragraph at the top of the card")
    sh.add_argument("--summary", default="", help="one line for `asr models`: what it is for, its measured speed")
    sh.add_argument("--base", help="the named model it was trained from (e.g. whisper-tiny.en): ship only the "
                                   "tensors training changed, rebuilt on that package's weights on first use")
    sh.set_defaults(func=cmd_ship)

    ms = sub.add_parser("models", help="named models: installed or not, size, source, licence, measured WER")
    ms.set_defaults(func=cmd_models)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asr", description="Speech recognition: train, evaluate, transcribe.")
    sub = p.add_subparsers(dest="command", required=True)
    add_training_commands(sub)
    add_inference_commands(sub)
    add_live_command(sub)
    add_model_commands(sub)
    add_serve_command(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from asr.audio.inputs import AudioInputError
    from asr.audio.read import AudioError
    from asr.config import ConfigError

    try:
        return args.func(args)
    except (ConfigError, AudioError, AudioInputError, FileNotFoundError, ValueError) as e:
        print(f"asr {args.command}: error: {e}", file=sys.stderr)
        return 2
