"""The optimizer and its learning-rate schedule: AdamW with decoupled weight decay on matrices
only, linear warmup, then cosine decay to a floor or inverse square root. The cosine runs over
max_steps, or over the time budget (max_minutes) as the training clock reads it."""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable

import torch

from asr.config import Config


class Clock:
    """Seconds spent in training steps: paused during validation, restored from checkpoints (`before`)."""

    def __init__(self, before: float = 0.0):
        self.before, self.since = before, None

    def start(self) -> None:
        if self.since is None:
            self.since = time.monotonic()

    def pause(self) -> None:
        if self.since is not None:
            self.before, self.since = self.seconds(), None

    def seconds(self) -> float:
        return self.before + (time.monotonic() - self.since if self.since is not None else 0.0)


def lr_lambda(cfg: Config, clock: Clock | None = None) -> Callable[[int], float]:
    """LambdaLR factor; `step` counts optimizer steps (Lightning steps the scheduler with the optimizer,
    so with gradient accumulation it advances once per accumulated batch group). With a time budget
    (cfg.max_minutes) and a `clock`, the decay's progress is the budget's spent fraction."""
    o = cfg.optim
    budget = cfg.max_minutes * 60 if clock is not None else 0.0

    def factor(step: int) -> float:
        if step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.decay == "inverse_sqrt":
            return math.sqrt(o.warmup_steps / (step + 1))
        progress = min(1.0, clock.seconds() / budget if budget > 0 else
                       (step - o.warmup_steps) / max(1, cfg.max_steps - o.warmup_steps))
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def build_optimizer(cfg: Config, params: Iterable[torch.nn.Parameter], clock: Clock | None = None):
    """(optimizer, per-step scheduler). Biases and norms (1-D parameters) get no weight decay."""
    o = cfg.optim
    params = [p for p in params if p.requires_grad]  # frozen layers (fine-tuning) are left out
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=o.lr, betas=o.betas)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, clock))
