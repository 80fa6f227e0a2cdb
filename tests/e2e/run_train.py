"""Train in a separate process, for the tests that kill a run or launch DDP ranks with torchrun.

    python tests/e2e/run_train.py EXP [overrides...] [--kill-at-step N] [--record DIR [--skew-val-counts]]

The config is configs/tiny.yaml plus the overrides. --kill-at-step SIGKILLs the process in the
middle of optimizer step N (gradients computed, weights not yet updated). --record writes, per
rank, the ids of the utterances each training batch held, the rank's own validation counts and
the logged WER, and the final weights. --skew-val-counts adds (rank + 1) edits in 10 words to each
rank's validation counts, so that the ranks' WERs differ and their aggregate is checkable.
"""

import argparse
import json
import os
import signal
from pathlib import Path

import lightning as L
import torch

from asr.config import Config, load_config
from asr.train.trainer import train

ROOT = Path(__file__).resolve().parents[2]


class KillAtStep(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class Record(L.Callback):
    def __init__(self, out: Path, skew_val_counts: bool = False):
        self.out, self.skew = out, skew_val_counts
        self.batches: list[dict] = []
        self.val_counts: list[list[int]] = []
        self.val_wer: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append({"epoch": trainer.current_epoch, "step": trainer.global_step, "ids": list(batch.ids)})

    def on_validation_epoch_end(self, trainer, pl_module):  # runs before the metric is summed over ranks
        counts = pl_module.val_wer  # torchmetrics sums: word edits, reference words (this rank's)
        if self.skew:  # rank + 1 more edits over 10 more words, through the metric's own update
            ref = "a b c d e f g h i j"
            counts.update([ref], [" ".join("x" if i <= trainer.global_rank else w for i, w in enumerate(ref.split()))])
        self.val_counts.append([int(counts.edits), int(counts.words)])

    def on_validation_end(self, trainer, pl_module):
        self.val_wer.append(float(trainer.callback_metrics["val/wer"]))

    def on_train_end(self, trainer, pl_module):
        rank = trainer.global_rank
        self.out.mkdir(parents=True, exist_ok=True)
        torch.save(pl_module.state_dict(), self.out / f"weights-rank{rank}.pt")
        record = {"batches": self.batches, "val_counts": self.val_counts, "val_wer": self.val_wer,
                  "world_size": trainer.world_size, "global_step": trainer.global_step}
        (self.out / f"record-rank{rank}.json").write_text(json.dumps(record))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("exp")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--kill-at-step", type=int)
    ap.add_argument("--record", type=Path)
    ap.add_argument("--skew-val-counts", action="store_true")
    args = ap.parse_args()
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", args.overrides)
    callbacks = ([KillAtStep(args.kill_at_step)] if args.kill_at_step is not None else []) + (
        [Record(args.record, args.skew_val_counts)] if args.record else [])
    train(cfg, args.exp, callbacks)


if __name__ == "__main__":
    main()
