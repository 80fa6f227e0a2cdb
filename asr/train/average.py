"""Average the weights of several checkpoints of one run into a plain model file.

    average("exp/ls", n=5, by="best")   # the 5 best by dev WER (checkpoints/best-{step}.ckpt)
    average("exp/ls", n=5, by="last")   # the 5 latest periodic ones (checkpoints/step-{step}.ckpt)

Averaging the last or best few checkpoints of a run smooths out the noise of the last updates
(ESPnet, icefall and fairseq all do it). How many are kept is set at training time by
`keep_best` and `keep_last` (every `checkpoint_every_steps` steps). Lightning is not imported:
checkpoints are read as plain dicts and the average is written by
`Recognizer.from_checkpoint`. Floating-point tensors are averaged in float64 and cast back to
their type; integer tensors are copied from the latest one.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from asr.model.recognizer import Recognizer

MONITORS = ("val/wer", "val/loss")  # what best-{step}.ckpt checkpoints may be chosen by (Config.select_by)


def _load(path: Path) -> dict:
    # mmap: only the tensors touched are read, not the optimizer state
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)


def _score(ckpt: dict, path: Path) -> tuple[float, str]:
    """The monitored value this checkpoint was saved with (kept in its ModelCheckpoint state), and its name."""
    for key, state in ckpt.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("monitor") in MONITORS:
            if state.get("current_score") is not None:
                return float(state["current_score"]), state["monitor"]
    raise ValueError(f"{path}: no {' or '.join(MONITORS)} score recorded in the checkpoint")


def select_checkpoints(exp_dir: str | Path, n: int, by: str = "best") -> list[tuple[Path, str]]:
    """Up to `n` checkpoint files of `exp_dir/checkpoints` with a note each ("step 1200, val/wer 12.3")."""
    ckpt_dir = Path(exp_dir) / "checkpoints"
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if by == "best":
        scored = []
        for p in ckpt_dir.glob("best-*.ckpt"):
            ckpt = _load(p)
            score, monitor = _score(ckpt, p)
            scored.append((score, -ckpt["global_step"], p, monitor))
        chosen = [(p, f"step {-step}, {monitor} {score:.2f}") for score, step, p, monitor in sorted(scored)[:n]]
    elif by == "last":
        names = ((re.fullmatch(r"step-(\d+)\.ckpt", p.name), p) for p in ckpt_dir.glob("step-*.ckpt"))
        steps = [(int(m[1]), p) for m, p in names if m]
        chosen = [(p, f"step {step}") for step, p in sorted(steps, reverse=True)[:n]]
    else:
        raise ValueError(f"by must be 'best' or 'last', not {by!r}")
    if not chosen:
        pattern = "best-*.ckpt" if by == "best" else "step-*.ckpt"
        raise FileNotFoundError(f"no {pattern} checkpoints in {ckpt_dir}")
    return chosen


def average_checkpoints(paths: list[str | Path]) -> tuple[dict, dict]:
    """(hyper_parameters, averaged state_dict) of Lightning checkpoints of the same model."""
    ckpts = sorted(((_load(Path(p)), Path(p)) for p in paths), key=lambda c: c[0].get("global_step", 0))
    latest, latest_path = ckpts[-1]
    sums: dict[str, torch.Tensor] = {}
    for ckpt, path in ckpts:
        sd = ckpt["state_dict"]
        if sd.keys() != latest["state_dict"].keys() or ckpt["hyper_parameters"] != latest["hyper_parameters"]:
            raise ValueError(f"{path} and {latest_path} are not checkpoints of the same model and config")
        for k, v in sd.items():
            if v.shape != latest["state_dict"][k].shape:
                raise ValueError(f"{path}: {k} has another shape than in {latest_path}")
            if v.is_floating_point():
                sums[k] = sums[k] + v.double() if k in sums else v.double()
    averaged = {k: (sums[k] / len(ckpts)).to(v.dtype) if k in sums else v.clone()
                for k, v in latest["state_dict"].items()}
    return latest["hyper_parameters"], averaged


def average(exp_dir: str | Path, out: str | Path | None = None, n: int = 5, by: str = "best") -> Path:
    """Average the best (by dev WER) or last `n` checkpoints of a run -> a plain model file (returned)."""
    chosen = select_checkpoints(exp_dir, n, by)
    out = Path(out) if out else Path(exp_dir) / f"model_avg_{by}{n}.pt"
    hparams, state = average_checkpoints([p for p, _ in chosen])
    Recognizer.from_checkpoint(hparams, state, exp_dir).save(out)
    short = f" (only {len(chosen)} found)" if len(chosen) < n else ""
    print(f"averaged {len(chosen)} {by} checkpoints{short}:")
    for p, note in chosen:
        print(f"  {p.name}  {note}")
    print(f"-> {out}")
    return out
