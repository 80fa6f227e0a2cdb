"""Encoder options at equal training time: the plain transformer, rotary positions, Conformer blocks
(and any other override set), each trained for the same minutes of training steps on the same corpus
and cores, then scored on the same test sets, side by side with a peer toolkit's run.

    python recipes/synth/encoder_options.py --corpus commands --minutes 8
    python recipes/synth/encoder_options.py --corpus commands --minutes 8 --options transformer conformer \
        --option "conformer+talker=model.block=conformer augment.pitch_prob=0.15 augment.vtlp_prob=0.3" \
        --peer exp/options/commands_speechbrain/results.json

Each option trains `configs/small.yaml` (commands) or `configs/people_small.yaml` (people) plus its
overrides into exp/options/<corpus>_<option>, with `max_minutes` (asr.config.Config: training stops
when the minutes of training steps are spent, validation not counted, and the learning rate decays
over them) and no step limit, so a slower network takes fewer steps in the same time. A finished run
is not trained again (delete its folder to redo it); a killed one resumes, its clock included. Every
model is evaluated with its own decode settings on test, test-unseen-voice and `--real` (the real dev
clips, recipes/real). Prints a markdown table: WER per set, steps, throughput (seconds of audio trained
on per second of training) and parameters; `--peer FILE` adds rows from a peer's results.json
(recipes/benchmarks/speechbrain_peer.py writes one).

Run it on otherwise idle cores: the budget is wall-clock time, so anything else running takes steps away.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# each option says every switch, whatever the config's own choice (configs/small.yaml now has rotary positions)
PLAIN = ["model.enc_positions=sinusoidal", "model.dec_positions=sinusoidal"]
ROPE = ["model.enc_positions=rope", "model.dec_positions=rope"]
OPTIONS = {
    "transformer": ["model.block=transformer", *PLAIN],
    "rope": ["model.block=transformer", *ROPE],
    "conformer": ["model.block=conformer", *PLAIN],
    "conformer+rope": ["model.block=conformer", *ROPE],
}
CONFIGS = {"commands": "configs/small.yaml", "people": "configs/people_small.yaml"}
SETS = ["test", "test-unseen-voice"]


def run(cmd: list[str], log: Path) -> None:
    print("$", shlex.join(cmd), f"> {log}", flush=True)
    with open(log, "a") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)


def train(name: str, overrides: list[str], corpus: Path, exp: Path, conf: str, minutes: float) -> None:
    if (exp / ".train.done").exists():
        print(f"{name}: trained already ({exp})")
        return
    exp.mkdir(parents=True, exist_ok=True)
    data = [f"data.train={corpus / 'train.jsonl'}", f"data.dev={corpus / 'dev.jsonl'}"]
    budget = [f"max_minutes={minutes}", "max_steps=1000000", "max_epochs=1000000"]
    started = time.monotonic()  # (the tokenizer is trained first, as part of the run)
    run([sys.executable, "-m", "asr", "train", "-c", conf, "--exp", str(exp), *data, *budget, *overrides,
         "trainer.enable_progress_bar=false"], exp / "train.log")
    (exp / ".train.done").write_text(f"{time.monotonic() - started:.0f} s wall-clock, validation included\n")


def evaluate(exp: Path, manifests: dict[str, Path]) -> dict[str, dict]:
    out = exp / "eval_options"
    todo = {k: m for k, m in manifests.items() if not (out / m.stem / "summary.json").exists()}
    if todo:
        run([sys.executable, "-m", "asr", "evaluate", "-m", str(exp / "model.pt"), *map(str, todo.values()),
             "--out", str(out)], exp / "evaluate.log")
    return {k: json.loads((out / m.stem / "summary.json").read_text()) for k, m in manifests.items()}


def budget_seconds(exp: Path) -> float:
    import yaml

    return 60 * yaml.safe_load((exp / "config.yaml").read_text())["max_minutes"]


def params(exp: Path) -> int:
    import torch

    return sum(t.numel() for t in torch.load(exp / "model.pt", weights_only=True)["state_dict"].values())


def row(name: str, exp: Path, manifests: dict[str, Path]) -> dict:
    runs = [json.loads(line) for line in (exp / "runs.jsonl").read_text().splitlines()]
    # the training clock (validation not counted); runs logged before it was: the budget, which the
    # clock passes by less than a step
    train_seconds = runs[-1].get("train_seconds") or budget_seconds(exp)
    scores = evaluate(exp, manifests)
    return {"system": name, "params": params(exp), "steps": runs[-1]["to_step"],
            "train_seconds": round(train_seconds, 1),
            "audio_seconds_per_second": round(sum(r.get("audio_seconds", 0) for r in runs) / train_seconds, 1),
            "hardware": runs[-1]["hardware"],
            "sets": {k: {"wer": s["wer"], "utts": s["utterances"], "words": s["reference_words"]}
                     for k, s in scores.items()}}


def table(rows: list[dict], sets: list[str]) -> str:
    head = ["system", *[f"{s} WER %" for s in sets], "steps", "training min", "audio s / s", "parameters"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        wers = [f"{r['sets'][s]['wer']:.2f}" if s in r["sets"] else "-" for s in sets]
        lines.append("| " + " | ".join([r["system"], *wers, str(r["steps"]), f"{r['train_seconds'] / 60:.1f}",
                                        f"{r['audio_seconds_per_second']:.1f}", f"{r['params'] / 1e6:.2f}M"]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="commands", choices=sorted(CONFIGS))
    p.add_argument("--data", type=Path, help="corpus folder (default data/synth/<corpus>)")
    p.add_argument("--minutes", type=float, required=True, help="training minutes each option gets")
    p.add_argument("--options", nargs="*", default=list(OPTIONS), help=f"of {', '.join(OPTIONS)}")
    p.add_argument("--option", action="append", default=[], metavar="NAME=OVERRIDES",
                   help="another option: a name and space-separated config overrides")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every option")
    p.add_argument("--real", type=Path, default=ROOT / "data/real/dev.jsonl", help="real clips (recipes/real)")
    p.add_argument("--peer", type=Path, action="append", default=[], help="a peer's results.json")
    p.add_argument("--out", type=Path, help="results.json of the table (default exp/options/<corpus>.json)")
    args = p.parse_args(argv)

    options = {name: OPTIONS[name] for name in args.options}
    for spec in args.option:
        name, _, overrides = spec.partition("=")
        options[name] = overrides.split()
    corpus = args.data or ROOT / "data/synth" / args.corpus
    manifests = {s: corpus / f"{s}.jsonl" for s in SETS}
    if args.real.is_file():
        manifests["real"] = args.real
    rows = []
    for name, overrides in options.items():
        exp = ROOT / "exp/options" / f"{args.corpus}_{name}"
        train(name, [*args.set, *overrides], corpus, exp, CONFIGS[args.corpus], args.minutes)
        rows.append(row(name, exp, manifests))
    rows += [json.loads(peer.read_text()) for peer in args.peer]
    out = args.out or ROOT / "exp/options" / f"{args.corpus}.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"\n{args.corpus}, {args.minutes:g} training minutes each, {rows[0]['hardware'] if rows else ''}\n")
    print(table(rows, list(manifests)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
