"""Training with PyTorch Lightning: the only module that imports it.

`train(cfg, exp_dir)` prepares the tokenizer and feature statistics (`asr.dataprep`), fits the
model (resuming from `exp_dir/checkpoints/last.ckpt` when it exists), and exports the best
checkpoint to `exp_dir/model.pt`, the plain file evaluation and transcription load. This module
owns the LightningModule (losses, validation WER, checkpoint hooks), the data module and the
trainer's callbacks; the network is `asr.model`'s, the schedule `asr.optim`'s, the RNG plumbing
`asr.rng`'s, the model file `asr.model.recognizer`'s.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import platform
import random
import re
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics import Metric

from asr.config import Config, from_dict, save_config, to_dict
from asr.data.dataset import Batch, DurationBatchSampler, ResumableLoader, SpeechDataset, collate, decoder_io
from asr.data.manifest import filter_by_duration, read_manifest
from asr.decode.options import DecodeOptions
from asr.decode.task import Search
from asr.model.catalogue import load as load_recognizer
from asr.model.features import spec_augment
from asr.model.network import Encoded
from asr.model.recognizer import CHECKPOINT_PREFIX, Recognizer, export
from asr.storage import atomic_save, read_jsonl, write_jsonl
from asr.text.metrics import error_counts
from asr.text.normalize import normalizer
from asr.text.tokenizers import Tokenizer, tokenizer_from_dict
from asr.train.augment import Augmenter
from asr.train.average import MONITORS
from asr.train.distill import anchors, kl_loss, l2sp_penalty, load_cache, load_memory, memory_loss
from asr.train.inputs import estimate_cmvn, prepare_tokenizer, with_durations
from asr.train.optim import Clock, build_optimizer
from asr.train.rng import rng_states, seed_step, set_rng_states

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file and renamed: never half-written."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        atomic_save(checkpoint, path)


class WordErrors(Metric):
    """Corpus WER as sums of word edits and reference words, summed over ranks by torchmetrics."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("edits", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("words", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, refs: list[str], hyps: list[str]) -> None:
        edits, words = error_counts(refs, hyps)
        self.edits += edits
        self.words += words

    def compute(self) -> torch.Tensor:
        return 100.0 * self.edits.double() / self.words.clamp(min=1).double()


class ASRTask(L.LightningModule):
    def __init__(self, config: dict, tokenizer: dict, history: list[dict] | None = None):
        super().__init__()
        # the checkpoint alone can rebuild the task; history: the runs behind the weights it starts from
        self.save_hyperparameters()
        self.cfg = from_dict(Config, config)
        self.recognizer = Recognizer(self.cfg, tokenizer_from_dict(tokenizer))  # the one copy of the network
        # validation decodes greedily, from the encoder pass the loss already made
        self.search = Search(self.recognizer, DecodeOptions.from_config(self.cfg, beam_size=1, ctc_weight=0.0))
        self.rules = self.search.rules  # the prompt and end token of the targets
        for name, p in self.recognizer.model.named_parameters():  # fine-tuning: frozen layers
            if any(name == f or name.startswith(f + ".") for f in self.cfg.freeze):
                p.requires_grad_(False)
        self.val_wer = WordErrors()
        self.normalize = normalizer(getattr(self.recognizer.tokenizer, "language", None))  # references' form
        self.validated_step = -1  # the global step of the latest validation
        self.clock = Clock()  # seconds of training steps, for a time budget (cfg.max_minutes)
        self.anchors: list[tuple[torch.Tensor, torch.Tensor]] = []  # L2-SP: (parameter, init value), `anchor_to`

    def anchor_to(self, init: dict[str, torch.Tensor]) -> None:
        """L2-SP toward `init` (the init model's state_dict, names as the network's): set at every start,
        resumed or not, so checkpoints need not carry a second copy of the weights."""
        self.anchors = anchors(self.recognizer.model, init)

    def model_step(self, batch: Batch, augment: bool) -> tuple[dict[str, torch.Tensor], Encoded]:
        """Losses, and the encoder's output (validation decodes from it)."""
        feats, lens = self.recognizer.features(batch.wav, batch.wav_lens)
        if augment:
            feats = spec_augment(feats, lens, self.cfg.specaugment)
        inputs, targets = decoder_io(batch.tokens, batch.token_lens, prompt=self.rules.prompt, eos=self.rules.eos)
        # dynamic chunk training: the step's chunk from the RNGs seeded per step (exact resume)
        chunk = random.randint(1, 25) if augment and self.cfg.model.dynamic_chunk and random.random() < 0.5 else 0
        logits, enc = self.recognizer.model(feats, lens, inputs, chunk)
        att = F.cross_entropy(logits.transpose(1, 2).float(), targets, ignore_index=-100,
                              label_smoothing=self.cfg.optim.label_smoothing)
        losses = {"att_loss": att}
        if enc.ctc_logits is None:  # an imported model without a CTC head
            losses["loss"] = att
        else:
            targets, target_lens = ctc_targets(self.recognizer, batch)
            losses["ctc_loss"] = F.ctc_loss(enc.ctc_logits.float().log_softmax(-1).transpose(0, 1), targets,
                                            enc.lengths, target_lens, blank=self.recognizer.ctc_blank,
                                            zero_infinity=True)
            w = self.cfg.optim.ctc_weight
            losses["loss"] = (1 - w) * att + w * losses["ctc_loss"]
        if batch.teacher_ids is not None:  # self-distillation: the teacher's distributions along its transcript
            losses["kl_loss"] = kl_loss(logits, batch, len(self.rules.prompt), targets)
            losses["loss"] = losses["loss"] + self.cfg.distill.kl_weight * losses["kl_loss"]
        if batch.teacher_memory is not None:  # ... and its encoder output
            losses["memory_loss"] = memory_loss(enc.memory, enc.lengths, batch)
            losses["loss"] = losses["loss"] + self.cfg.distill.memory_weight * losses["memory_loss"]
        if augment and self.anchors:  # L2-SP: pulled toward the init model's weights
            losses["l2sp"] = l2sp_penalty(self.anchors)
            losses["loss"] = losses["loss"] + self.cfg.optim.l2sp * losses["l2sp"]
        return losses, enc

    def on_fit_start(self) -> None:
        # In place: parameter names (and so checkpoints) stay as they are. Shapes become dynamic after
        # the first recompile; dynamic=True from the start fails in inductor (torch 2.14, CPU).
        if self.cfg.compile:
            self.recognizer.model.encoder.compile()
            self.recognizer.model.decoder.compile()

    def on_train_batch_start(self, batch: Batch | None, batch_idx: int) -> None:
        # Dropout and SpecAugment draw from RNGs seeded by (seed, rank, epoch, batch): a resumed run
        # repeats an uninterrupted one's draws exactly, whatever else consumed random numbers meanwhile
        # (data loader start-up, validation, a restart).
        seed_step(self.cfg.seed, self.global_rank, self.current_epoch, batch_idx)
        self.clock.start()

    def on_train_batch_end(self, outputs: Any, batch: Batch | None, batch_idx: int) -> None:
        if self.cfg.max_minutes > 0:  # the time budget: rank 0's clock decides for every rank
            spent = self.trainer.strategy.broadcast(self.clock.seconds() >= self.cfg.max_minutes * 60, src=0)
            if spent:
                self.trainer.should_stop = True

    def on_validation_start(self) -> None:
        self.clock.pause()

    def on_train_end(self) -> None:
        self.clock.pause()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = rng_states()  # for anything random outside a training step
        checkpoint["train_seconds"] = self.clock.seconds()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Checkpoints written before 2026-12 held the network twice, also under "model.": drop that copy.
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith("model.") and CHECKPOINT_PREFIX + k in state]:
            del state[key]
        if "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
        self.clock.before, self.clock.since = checkpoint.get("train_seconds", 0.0), None  # (the schedule holds it)

    def training_step(self, batch: Batch | None, batch_idx: int):
        if batch is None:  # every file of this batch was unreadable (already logged by name)
            return None
        losses, _ = self.model_step(batch, augment=True)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=len(batch.ids))
        return losses["loss"]

    def validation_step(self, batch: Batch | None, batch_idx: int):
        if batch is None:
            return
        losses, enc = self.model_step(batch, augment=False)
        self.log("val/loss", losses["loss"], prog_bar=True, batch_size=len(batch.ids), sync_dist=True)
        hyps = [h[0].text for h in self.search(enc)]
        self.val_wer.update([self.normalize(t) for t in batch.texts], hyps)
        if batch_idx == 0:
            self.log_samples(batch, enc, hyps)

    def log_samples(self, batch: Batch, enc: Encoded, hyps: list[str], n: int = 3) -> None:
        """Once per validation: the first utterance's cross-attention (last decoder layer, mean of heads,
        teacher-forced on its hypothesis) as an image, and n references with their hypotheses, to
        TensorBoard. One extra decoder pass over one utterance: cheap, and never in a training step."""
        tb = next((lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None or not self.trainer.is_global_zero:
            return
        from asr.evaluate.report import cross_attention

        tokens = self.recognizer.tokenizer.encode_transcript(hyps[0])
        w = cross_attention(self.recognizer, tokens, enc.memory[0, : int(enc.lengths[0])].float())  # (L+1, T')
        w = w / w.amax(-1, keepdim=True).clamp(min=1e-9)  # each position's peak white: the path stands out
        step = self.global_step
        tb.experiment.add_image("val/cross_attention", w[None].cpu(), step, dataformats="CHW")
        rows = [f"| {i} | {self.normalize(t)} | {h} |" for i, t, h in zip(batch.ids, batch.texts, hyps)][:n]
        tb.experiment.add_text(
            "val/samples", "| id | reference | hypothesis |\n|---|---|---|\n" + "\n".join(rows), step
        )

    def on_validation_epoch_end(self) -> None:
        # compute() sums the counts over ranks: every rank logs the same corpus WER
        self.log("val/wer", self.val_wer.compute().float(), prog_bar=True, sync_dist=False)
        self.val_wer.reset()
        self.validated_step = self.global_step

    def configure_optimizers(self):
        opt, sched = build_optimizer(self.cfg, self.parameters(), self.clock)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class SamplerEpoch(Callback):
    """Tells the training batch sampler the epoch (Lightning's own set_epoch only reaches a loader's
    `sampler` and `batch_sampler.sampler`, never the batch sampler itself)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        batch_sampler = getattr(trainer.train_dataloader, "batch_sampler", None)
        if hasattr(batch_sampler, "set_epoch"):
            batch_sampler.set_epoch(trainer.current_epoch)


def hardware() -> str:
    """What this process trains on, in words: the GPU's name, else the CPU model and thread count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), None) if Path("/proc/cpuinfo").is_file() else None
    return f"CPU ({cpu or platform.processor() or platform.machine()}), {torch.get_num_threads()} threads"


class RunLog(Callback):
    """EXP/runs.jsonl: one line per training run (a resumed run is a new line): the steps it went
    from and to, its wall-clock seconds and hardware, the audio it trained on (seconds, all ranks:
    this rank's times the world size) and the training clock (seconds of training steps, all runs so
    far), brought up to date at every checkpoint and at the end, so a killed run keeps what it
    reached. Model cards (`asr ship`) and throughput tables read it."""

    def __init__(self, exp_dir: Path):
        self.path, self.row, self.started, self.earlier = exp_dir / "runs.jsonl", None, 0.0, []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.monotonic()
        self.row = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "from_step": trainer.global_step,
                    "to_step": trainer.global_step, "seconds": 0.0, "audio_seconds": 0.0, "hardware": hardware(),
                    "torch": torch.__version__}
        self.sample_rate = pl_module.cfg.features.sample_rate
        self.earlier = read_jsonl(self.path) if self.path.is_file() else []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Batch | None, batch_idx: int) -> None:
        if self.row is not None and batch is not None:
            seconds = float(batch.wav_lens.sum()) / self.sample_rate * trainer.world_size
            self.row["audio_seconds"] = round(self.row["audio_seconds"] + seconds, 2)

    def update(self, trainer: L.Trainer) -> None:
        if self.row is None or not trainer.is_global_zero:
            return
        self.row.update(to_step=trainer.global_step, seconds=round(time.monotonic() - self.started, 3),
                        train_seconds=round(trainer.lightning_module.clock.seconds(), 3))
        write_jsonl(self.path, [*self.earlier, self.row])  # (atomic)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self.update(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.update(trainer)


class SpeechData(L.LightningDataModule):
    def __init__(self, cfg: Config, train: list[dict], dev: list[dict], tokenizer: Tokenizer,
                 teacher: dict[str, tuple] | None = None):
        super().__init__()
        self.cfg, self.train_entries, self.dev_entries, self.tokenizer = cfg, train, dev, tokenizer
        self.teacher = teacher  # self-distillation targets of the training entries (asr.train.distill)

    def _loader(self, entries: list[dict], train: bool) -> DataLoader:
        d, sr = self.cfg.data, self.cfg.features.sample_rate
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        window = self.cfg.features.pad_to_seconds  # every utterance fills a fixed window (Whisper): batch by that
        sampler = DurationBatchSampler(
            [max(e["duration"], window) for e in entries],
            d.max_frames_per_batch,
            d.max_batch_size,
            shuffle=train,
            seed=self.cfg.seed,
            rank=rank,
            world_size=world,
            sorta_grad=train and d.sorta_grad,
            frames_per_second=1000 / self.cfg.features.hop_ms,
        )
        augment = Augmenter(self.cfg.augment, sr, self.cfg.seed, speech=entries) if train else None
        ds = SpeechDataset(entries, self.tokenizer, sr, augment=augment if augment and augment.enabled else None,
                           non_speech=augment.non_speech if augment and self.cfg.augment.nonspeech_prob > 0 else None,
                           teacher=self.teacher if train else None)
        # the training loader is stateful: checkpoints record how far into the epoch it got
        return (ResumableLoader if train else DataLoader)(ds, batch_sampler=sampler, collate_fn=collate,
                                                          num_workers=d.num_workers,
                                                          persistent_workers=d.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_entries, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dev_entries, train=False)


def build_trainer(
    cfg: Config, exp_dir: Path, callbacks: list[Callback] | None = None
) -> tuple[L.Trainer, ModelCheckpoint]:
    ckpt_dir = exp_dir / "checkpoints"
    # only right after a validation: at the end of a partial last epoch Lightning would otherwise
    # save best-{step} under the previous validation's score
    if cfg.select_by not in MONITORS:
        raise ValueError(f"select_by must be one of {', '.join(MONITORS)}, not {cfg.select_by!r}")
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best-{step}", monitor=cfg.select_by, mode="min",
                           save_top_k=cfg.keep_best, auto_insert_metric_name=False, save_on_train_epoch_end=False)
    last = ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=0, save_last=True,
                           every_n_train_steps=cfg.checkpoint_every_steps)
    recent = ModelCheckpoint(dirpath=ckpt_dir, filename="step-{step}", monitor="step", mode="max",
                             save_top_k=cfg.keep_last, every_n_train_steps=cfg.checkpoint_every_steps,
                             auto_insert_metric_name=False)  # the latest few, to average
    loggers = [CSVLogger(exp_dir, name="logs", version="")]
    try:
        loggers.append(TensorBoardLogger(exp_dir, name="tensorboard", version="", default_hp_metric=False))
    except ModuleNotFoundError:
        pass
    kwargs: dict[str, Any] = dict(
        default_root_dir=exp_dir, max_steps=cfg.max_steps, max_epochs=cfg.max_epochs,
        gradient_clip_val=cfg.optim.grad_clip, accumulate_grad_batches=cfg.optim.accumulate_grad_batches,
        precision="bf16-mixed" if torch.cuda.is_available() else "32-true",
        callbacks=[best, last, recent, LearningRateMonitor("step"), SamplerEpoch(), RunLog(exp_dir), *(callbacks or [])]
        + ([TQDMProgressBar(refresh_rate=10)] if cfg.trainer.get("enable_progress_bar", True) else []),
        logger=loggers, plugins=[AtomicCheckpointIO()], num_sanity_val_steps=0, log_every_n_steps=10,
        use_distributed_sampler=False,  # DurationBatchSampler shards by rank itself
    )
    kwargs.update(cfg.trainer)
    return L.Trainer(**kwargs), best


def ctc_targets(rec: Recognizer, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The CTC head's targets (B, L') and lengths: the batch's tokens, or their letters for a head
    that spells (`model.ctc_vocab: letters`)."""
    if not rec.cfg.model.spells:
        return batch.tokens, batch.token_lens
    spelled = [rec.ctc_targets(t[:n].tolist()) for t, n in zip(batch.tokens, batch.token_lens.tolist())]
    lens = torch.tensor([len(s) for s in spelled], device=batch.tokens.device)
    out = torch.zeros(len(spelled), max(1, int(lens.max())), dtype=torch.long, device=batch.tokens.device)
    for row, s in zip(out, spelled):
        row[: len(s)] = torch.tensor(s, dtype=torch.long)
    return out, lens


def fine_tuning_config(cfg: Config, init: Config) -> Config:
    """The config of a run that starts from a model: its features, network and decoding conventions,
    with this run's dropout and CTC head (a CTC head the model lacks is trained from scratch)."""
    m = cfg.model
    model = dataclasses.replace(init.model, ctc=m.ctc, dropout=m.dropout, attn_dropout=m.attn_dropout)
    if m.ctc and not init.model.ctc:  # a new head: what it emits and its blocks are this run's to say
        model = dataclasses.replace(model, ctc_vocab=m.ctc_vocab, ctc_layers=m.ctc_layers)
    if cfg.init_grow:
        if m.enc_layers < init.model.enc_layers or m.dec_layers < init.model.dec_layers:
            raise ValueError(f"init_grow: model.enc_layers/dec_layers {m.enc_layers}/{m.dec_layers} are fewer "
                             f"than the init model's {init.model.enc_layers}/{init.model.dec_layers}")
        model = dataclasses.replace(model, enc_layers=m.enc_layers, dec_layers=m.dec_layers)
    decode = dataclasses.replace(cfg.decode, max_segment=min(cfg.decode.max_segment, init.decode.max_segment))
    window = init.features.pad_to_seconds
    if window > 0 and cfg.any_length:
        # unpadded input: the model's own decode rules (Whisper's guards) without timestamp tokens, which
        # kept its place in a full window; segments cut at pauses, no longer than training utterances
        # (cfg.decode.max_segment, capped by `train`) nor the window
        decode = dataclasses.replace(init.decode, beam_size=cfg.decode.beam_size, timestamps=False,
                                     max_segment=min(window, cfg.decode.max_segment))
        features = dataclasses.replace(init.features, pad_to_seconds=0.0, min_seconds=cfg.features.min_seconds)
        return dataclasses.replace(cfg, features=features, model=model, decode=decode)
    if init.any_length:  # a model already taught to take any length: its rules stay, and so does the switch
        decode = dataclasses.replace(init.decode, beam_size=cfg.decode.beam_size,
                                     max_segment=min(init.decode.max_segment, cfg.decode.max_segment))
        return dataclasses.replace(cfg, any_length=True, features=init.features, model=model, decode=decode)
    if window > 0:  # a fixed window (Whisper): segments fill it, as it was trained
        decode = dataclasses.replace(decode, max_segment=window)
    return dataclasses.replace(cfg, features=init.features, model=model, decode=decode)


def start_from(rec: Recognizer, init: Recognizer) -> None:
    """Copy `init`'s weights into `rec`; only a new CTC head, or blocks on top of a stack that `rec`
    has more of (init_grow), may be missing from them. Added blocks are made identities."""
    missing, unexpected = rec.load_state_dict(init.state_dict(), strict=False)
    added = {m.group(1) for k in missing if (m := re.match(r"(.*\.blocks\.\d+)\.", k)) and "ctc_head" not in k}
    if unexpected or any(not k.startswith("model.ctc_head.") and ".blocks." not in k for k in missing):
        raise ValueError(f"--init model does not fit this network: missing {missing[:5]}, unexpected {unexpected[:5]}")
    modules = dict(rec.named_modules())
    for name in sorted(added):  # zero what each residual branch adds: the block passes its input through
        block = modules[name]
        if not hasattr(block, "mlp"):
            raise ValueError(f"init_grow: {name} is a conformer block, whose closing LayerNorm keeps it from "
                             "starting as an identity; grow transformer blocks, or train the deeper model anew")
        outs = [block.attn.out, block.mlp[-1]] + ([block.cross_attn.out] if hasattr(block, "cross_attn") else [])
        for out in outs:
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
    if added:
        log.info("deepened the init model by %d identity blocks: %s", len(added), ", ".join(sorted(added)))
    if any(k.startswith("model.ctc_head.") for k in missing):
        log.info("training a new CTC head on the %s encoder", type(init.tokenizer).__name__)


def teacher_targets(cfg: Config, prompt: tuple[int, ...], entries: list[dict]) -> dict | None:
    """Self-distillation: id -> the teacher's (top-k ids, log-probs, encoder output or None), or None
    without `distill.teacher` (asr.train.distill)."""
    if not cfg.distill.teacher:
        return None
    teacher = load_cache(cfg.distill.teacher, prompt, entries)
    memories = load_memory(cfg.distill.memory) if cfg.distill.memory else {}
    teacher = {k: (*v, memories.get(k)) for k, v in teacher.items()}
    log.info("self-distillation: teacher targets for %d of %d training utterances (%d with encoder outputs)",
             sum(e["id"] in teacher for e in entries), len(entries), sum(e["id"] in memories for e in entries))
    return teacher


def train(cfg: Config, exp_dir: str | Path, callbacks: list[Callback] | None = None) -> Path:
    """Fit a model on cfg.data.train (validating on cfg.data.dev); returns the exported model path.

    `callbacks` are extra Lightning callbacks (tests use them to watch or interrupt a run)."""
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True)
    if not cfg.data.train or not cfg.data.dev:
        raise ValueError("data.train and data.dev manifests are required")
    train_entries = filter_by_duration(with_durations(read_manifest(cfg.data.train)), cfg.data.max_duration)
    dev_entries = with_durations(read_manifest(cfg.data.dev))
    dev_entries = random.Random(cfg.seed).sample(dev_entries, min(len(dev_entries), cfg.data.dev_max_utts))
    if not train_entries or not dev_entries:
        raise ValueError("no usable utterances in the training or dev manifest")
    longest = math.ceil(max(e["duration"] for e in train_entries))
    if cfg.decode.max_segment > longest:  # transcription cuts long audio into pieces like those it learned on
        cfg = dataclasses.replace(cfg, decode=dataclasses.replace(cfg.decode, max_segment=float(longest)))

    init = load_recognizer(cfg.init) if cfg.init else None
    if init is not None:
        cfg = fine_tuning_config(cfg, init.cfg)
        if cfg.any_length:  # unpadded input longer than the window would pass the position table's end
            window = init.cfg.features.pad_to_seconds or math.inf
            train_entries = filter_by_duration(train_entries, window)
            dev_entries = filter_by_duration(dev_entries, window)
    save_config(cfg, exp_dir / "config.yaml")
    tokenizer = init.tokenizer if init is not None else prepare_tokenizer(cfg, train_entries, exp_dir)
    task = ASRTask(to_dict(cfg), tokenizer.to_dict(), init.history if init is not None else [])
    last_ckpt = exp_dir / "checkpoints" / "last.ckpt"
    if init is not None and not last_ckpt.exists():  # (a resumed run restores its own weights)
        start_from(task.recognizer, init)
    elif cfg.features.normalize in ("global", "running") and not last_ckpt.exists():
        frames = estimate_cmvn(task.recognizer.features, train_entries, cfg)
        log.info("global CMVN estimated from %d frames", frames)
    if init is not None and cfg.optim.l2sp > 0:
        task.anchor_to(init.model.state_dict())
    teacher = teacher_targets(cfg, task.rules.prompt, train_entries)
    n_params = sum(p.numel() for p in task.recognizer.model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters, vocabulary {tokenizer.vocab_size}, "
          f"{len(train_entries)} train / {len(dev_entries)} dev utterances")

    trainer, best = build_trainer(cfg, exp_dir, callbacks)
    data = SpeechData(cfg, train_entries, dev_entries, tokenizer, teacher)
    trainer.fit(task, datamodule=data, ckpt_path=str(last_ckpt) if last_ckpt.exists() else None)
    chosen = best.best_model_path or str(last_ckpt)
    if task.validated_step != trainer.global_step and not trainer.interrupted:
        # max_steps fell mid-epoch: validate the final weights too, so the steps since the last
        # validation are not thrown away when they did better
        score = trainer.validate(task, datamodule=data, verbose=False)[0].get(cfg.select_by)
        if score is not None and (best.best_model_score is None or score < float(best.best_model_score)):
            chosen = str(exp_dir / "checkpoints" / "final.ckpt")
            trainer.save_checkpoint(chosen)
        log.info("final weights (step %d): %s %s; best so far %s", trainer.global_step, cfg.select_by, score,
                 None if best.best_model_score is None else float(best.best_model_score))
    path = export(chosen, exp_dir / "model.pt") if trainer.is_global_zero else exp_dir / "model.pt"  # one rank exports
    _leave_process_group()
    return path


def _leave_process_group() -> None:
    """The ranks of a distributed run wait for the export, then close their process group: a rank
    that exits with it open can abort in teardown ("terminate called without an active exception",
    seen once in CI's two-process test)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
