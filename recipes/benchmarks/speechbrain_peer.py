"""SpeechBrain's transformer ASR as a peer, trained on our manifests for the same CPU wall-clock budget as ours.

The model, features, losses, schedule and search are SpeechBrain's, as its LibriSpeech recipe
(``recipes/LibriSpeech/ASR/transformer``: ``hparams/transformer.yaml`` and ``train.py``, read at v1.1.0,
unchanged since) puts them together, sized like our CPU demo model (``configs/small.yaml``):

* features: ``speechbrain.lobes.features.Fbank`` (80 mel bins, n_fft 400, 10 ms hop), then
  ``InputNormalization`` (global mean/variance, updated until epoch 4);
* front end: ``ConvolutionFrontEnd``, 2 blocks of one 3x3 stride-2 convolution, 32 channels each (4x
  subsampling, like ours; the recipe's transformer.yaml has 3 blocks of 64 channels with kernels 5, 5, 1);
* ``TransformerASR``: d_model 144, 4 heads, 4 encoder (``--enc-layers``) and 2 decoder layers, d_ffn 576, GELU,
  pre-norm, regular multi-head attention, sinusoidal positions; CTC and decoder heads are
  ``speechbrain.nnet.linear.Linear``;
* tokens: SentencePiece BPE, 300 pieces, trained with ``speechbrain.tokenizers.SentencePiece`` on the
  training texts after our normalizer (unk = CTC blank = pad = 0, bos 1, eos 2, as the recipe);
* loss: 0.3 x ``ctc_loss`` + 0.7 x ``kldiv_loss`` with label smoothing, both summed per utterance and
  averaged over the batch (the recipe's "batchmean");
* batches: ``DynamicBatchSampler`` (length buckets, random batch order), 80 s of audio per batch (padding
  included, like our 8,000 feature frames), ``PaddedBatch``, audio read with ``sb.dataio.dataio.read_audio``;
* optimizer: Adam (betas 0.9, 0.98, eps 1e-9, no weight decay), gradient norm clipped at 5;
* training loop: ``sb.Brain`` (fit, fit_batch, evaluate_batch and its hooks, as the recipe's ``ASR`` class);
* search: ``S2STransformerBeamSearcher`` with a ``CTCScorer`` weighted 0.4 (the recipe's valid_search: no
  LM, length normalization, no EOS threshold), or ``S2STransformerGreedySearcher`` for ``--beam 1``.

Deviations from the recipe, each to put the two systems on the same footing:

* The budget is wall-clock minutes of training (the clock runs from the start of each training epoch to
  its end, so validation is excluded, as in our trainer's Clock). ``Brain`` stops through its own
  step-limit check (``_optimizer_step_limit_exceeded``), which here also reads the clock.
* Schedule: by default ours, linear warmup over ``--warmup`` steps to ``--lr`` (4e-3, 250), then cosine
  decay to 5% of it over the budget's spent fraction (time-based progress). ``--schedule noam`` gives the
  recipe's ``NoamScheduler`` (peak ``--lr`` at step ``--warmup``, then 1/sqrt(step): not budget-aware);
  it is applied before each step rather than after it, so the first step is not taken at the peak.
* Dropout (transformer and front end; the recipe's 0.1) and SpecAugment (the recipe's ``fea_augment``:
  time drop, frequency drop, time warp) are off by default, as in our CPU demo config, where both
  slowed learning at this budget: ``--dropout 0.1 --specaugment`` turns them on. Speed perturbation is left out.
* Label smoothing 0.1 (``--label-smoothing``), as ours; the recipe's transformer.yaml has 0.0 since 2022
  (0.1 before).
* Length buckets 0.25 s wide (``bucket_boundaries``) instead of the recipe's ``num_buckets: 200``, whose
  lognormal boundaries are scaled to the batch length (600 s there): with 80 s batches of 1-4 s commands they
  make ~100 buckets in use and many part-filled batches (365 batches an epoch of 67.5 s of audio on average
  on the commands train set, against 339 of 72.7 s with 0.25 s buckets, and 330 of 74.7 s with ours).
* No checkpoint averaging (the recipe averages its 10 best-accuracy epoch checkpoints; at this budget
  there are only a few epochs): the weights at the end of the budget are decoded.
* No language model in the search (our default decode has none either); beam 5 by default, as ours; CTC
  weight 0.4, the recipe's (ours decodes with 0.3: ``--ctc-weight-decode 0.3``).
* Targets are our normalized text (``asr.text.normalize``); WER is scored with ``asr.text.metrics``
  (both sides normalized, corpus WER), exactly as ``asr evaluate`` scores ours.

Versions that worked: speechbrain 1.1.2 (with HyperPyYAML 1.2.3, ruamel.yaml 0.18.17), sentencepiece 0.2.3,
torch 2.14.1, torchaudio 2.11.0 (SpeechBrain 1.1.2 reads audio with soundfile, so torchaudio's loading is not
needed). Install: ``pip install -e ".[bench]"`` or ``pip install speechbrain``.

Run (training prints steps, loss, learning rate and audio seconds per second; validation on ``--dev`` after
each epoch, teacher-forced loss and accuracy; then every test set is decoded in batches)::

    python recipes/benchmarks/speechbrain_peer.py --minutes 8 --threads 2 \\
        --train data/synth/commands/train.jsonl --dev data/synth/commands/dev.jsonl \\
        --test test=data/synth/commands/test.jsonl \\
        --test test-unseen-voice=data/synth/commands/test-unseen-voice.jsonl \\
        --test real-dev=data/real/dev.jsonl --out exp/speechbrain_peer

Output in ``--out``: ``results.json`` ({"system", "params", "minutes", "steps", "train_seconds",
"audio_seconds_per_second", "sets": {name: {"wer", "utts", "words"}}, "decode_seconds", ...}),
``hyps/NAME.jsonl`` (id, normalized reference and hypothesis) and ``tokenizer/`` (the SentencePiece
model). The trained weights are not kept.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
import warnings
from pathlib import Path

import soundfile as sf
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataio import read_audio
from speechbrain.dataio.dataloader import make_dataloader
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.sampler import DynamicBatchSampler
from speechbrain.decoders.scorer import CTCScorer, ScorerBuilder
from speechbrain.decoders.seq2seq import S2STransformerBeamSearcher, S2STransformerGreedySearcher
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.convolution import ConvolutionFrontEnd
from speechbrain.lobes.models.transformer.TransformerASR import TransformerASR
from speechbrain.nnet.linear import Linear
from speechbrain.nnet.losses import ctc_loss, kldiv_loss
from speechbrain.nnet.schedulers import NoamScheduler
from speechbrain.processing.features import InputNormalization
from speechbrain.tokenizers.SentencePiece import SentencePiece
from speechbrain.utils.Accuracy import AccuracyStats
from speechbrain.utils.epoch_loop import EpochCounter

from asr.data.manifest import read_manifest
from asr.text.metrics import error_counts
from asr.text.normalize import normalizer
from asr.train.optim import Clock  # seconds of training steps, paused for validation: our trainer's own

SAMPLE_RATE = 16000
BLANK = PAD = 0  # SentencePiece's unk, as in the recipe
BOS, EOS = 1, 2
BUCKET_S = 0.25  # width of the length buckets of the batch sampler
NORM = normalizer("en")


class ASR(sb.Brain):
    """The recipe's ``ASR`` Brain (features, CNN, transformer, CTC + seq2seq losses), stopped by a clock."""

    def __init__(self, *args, budget_s: float, lr: float, warmup: int, schedule: str, log_every: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock, self.budget_s = Clock(), budget_s
        self.lr, self.warmup, self.log_every = lr, warmup, log_every
        self.noam = NoamScheduler(lr_initial=lr, n_warmup_steps=warmup) if schedule == "noam" else None
        self.audio_seconds = 0.0
        self.losses: list[float] = []  # training loss of every step
        self.acc_metric = None

    @property
    def _optimizer_step_limit_exceeded(self) -> bool:
        """Brain checks this before every batch and after every epoch: here the budget ends training too."""
        return self.clock.seconds() >= self.budget_s or super()._optimizer_step_limit_exceeded

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        tokens_bos, _ = batch.tokens_bos
        feats = self.hparams.compute_features(wavs)
        feats = self.modules.normalize(feats, wav_lens, epoch=self.hparams.epoch_counter.current)
        if stage == sb.Stage.TRAIN and self.hparams.fea_augment is not None:
            feats, _ = self.hparams.fea_augment(feats, wav_lens)  # one view per utterance: labels unchanged
        src = self.modules.CNN(feats)
        enc_out, pred = self.modules.Transformer(src, tokens_bos, wav_lens, pad_idx=PAD)
        p_ctc = torch.log_softmax(self.modules.ctc_lin(enc_out), dim=-1)
        p_seq = torch.log_softmax(self.modules.seq_lin(pred), dim=-1)
        return p_ctc, p_seq, wav_lens

    def compute_objectives(self, predictions, batch, stage):
        p_ctc, p_seq, wav_lens = predictions
        tokens_eos, tokens_eos_lens = batch.tokens_eos
        tokens, tokens_lens = batch.tokens
        h = self.hparams
        loss_seq = kldiv_loss(p_seq, tokens_eos, length=tokens_eos_lens, label_smoothing=h.label_smoothing,
                              reduction="batchmean")
        loss_ctc = ctc_loss(p_ctc, tokens, wav_lens, tokens_lens, blank_index=BLANK, reduction="batchmean")
        if stage != sb.Stage.TRAIN:
            self.acc_metric.append(p_seq, tokens_eos, tokens_eos_lens)
        return h.ctc_weight * loss_ctc + (1 - h.ctc_weight) * loss_seq

    def on_fit_batch_start(self, batch, should_step):
        if self.noam is not None:
            self.noam(self.optimizer)
            return
        step = self.optimizer_step
        if step < self.warmup:
            factor = (step + 1) / self.warmup
        else:  # cosine over the spent fraction of the budget, to 5% of the peak (ours)
            progress = min(1.0, self.clock.seconds() / self.budget_s)
            factor = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * factor

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        wavs, wav_lens = batch.sig
        self.audio_seconds += float(wav_lens.sum()) * wavs.shape[1] / SAMPLE_RATE
        self.losses.append(loss.detach().item())
        step = self.optimizer_step
        if step % self.log_every == 0:
            recent = self.losses[-self.log_every:]
            seconds = self.clock.seconds()
            print(f"step {step:5d}  loss {sum(recent) / len(recent):7.3f}  "
                  f"lr {self.optimizer.param_groups[0]['lr']:.2e}  {seconds:6.0f} s  "
                  f"{self.audio_seconds / seconds:5.1f} audio s/s", flush=True)

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.clock.start()
        else:
            self.acc_metric = AccuracyStats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.clock.pause()
            self.train_loss = stage_loss
        elif stage == sb.Stage.VALID:
            print(f"epoch {epoch}: {self.optimizer_step} steps, {self.clock.seconds():.0f} s, "
                  f"train loss {self.train_loss:.3f}, dev loss {stage_loss:.3f}, "
                  f"dev accuracy {self.acc_metric.summarize():.3f}", flush=True)


# --------------------------------------------------------------------------- data


def read_sets(specs: list[str]) -> dict[str, list[dict]]:
    """NAME=PATH or PATH (named by its file stem) -> {name: manifest entries}."""
    sets = {}
    for spec in specs:
        name, _, path = spec.partition("=") if "=" in spec else (Path(spec).stem, "", spec)
        if name in sets:
            raise SystemExit(f"two test sets are named {name!r}: name them NAME=PATH")
        sets[name] = read_manifest(path)
    return sets


def make_dataset(entries: list[dict], tokenizer) -> DynamicItemDataset:
    """Manifest entries -> a DynamicItemDataset with the recipe's pipelines (sig, tokens_bos/eos, tokens)."""
    data = {}
    for e in entries:
        duration = e["duration"] or sf.info(e["audio"]).duration
        data[e["id"]] = {"wav": e["audio"], "duration": float(duration), "wrd": NORM(e["text"])}
    dataset = DynamicItemDataset(data)

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return read_audio(wav)

    @sb.utils.data_pipeline.takes("wrd")
    @sb.utils.data_pipeline.provides("tokens_bos", "tokens_eos", "tokens")
    def text_pipeline(wrd):
        ids = tokenizer.sp.encode_as_ids(wrd)
        yield torch.LongTensor([BOS] + ids)
        yield torch.LongTensor(ids + [EOS])
        yield torch.LongTensor(ids)

    dataset.add_dynamic_item(audio_pipeline)
    dataset.add_dynamic_item(text_pipeline)
    dataset.set_output_keys(["id", "sig", "tokens_bos", "tokens_eos", "tokens"])
    return dataset


def batch_sampler(dataset: DynamicItemDataset, seconds: float, shuffle: bool, seed: int) -> DynamicBatchSampler:
    """Length-bucketed batches of at most `seconds` of audio, padding included (the recipe's dynamic batching),
    with buckets 0.25 s wide."""
    longest = max(item["duration"] for item in dataset.data.values())
    boundaries = [BUCKET_S * (i + 1) for i in range(math.ceil(longest / BUCKET_S))]
    return DynamicBatchSampler(dataset, max_batch_length=seconds, bucket_boundaries=boundaries, shuffle=shuffle,
                               batch_ordering="random" if shuffle else "ascending", max_batch_ex=128, seed=seed)


def train_tokenizer(entries: list[dict], folder: Path, vocab_size: int) -> SentencePiece:
    """BPE on the normalized training texts, through SpeechBrain's SentencePiece wrapper (a fresh model each run)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    annotation = folder / "train.json"
    annotation.write_text(json.dumps({e["id"]: {"wrd": NORM(e["text"])} for e in entries}), encoding="utf-8")
    return SentencePiece(model_dir=str(folder), vocab_size=vocab_size, annotation_train=str(annotation),
                         annotation_read="wrd", annotation_format="json", model_type="bpe",
                         character_coverage=1.0, bos_id=BOS, eos_id=EOS)


# --------------------------------------------------------------------------- model and search


def build_modules(args, vocab: int) -> dict[str, torch.nn.Module]:
    cnn = ConvolutionFrontEnd(input_shape=(8, 10, args.n_mels), num_blocks=2, num_layers_per_block=1,
                              out_channels=(32, 32), kernel_sizes=(3, 3), strides=(2, 2), residuals=(False, False),
                              dropout=args.dropout)
    transformer = TransformerASR(input_size=32 * math.ceil(math.ceil(args.n_mels / 2) / 2), tgt_vocab=vocab,
                                 d_model=144, nhead=4, num_encoder_layers=args.enc_layers,
                                 num_decoder_layers=args.dec_layers, d_ffn=576,
                                 dropout=args.dropout, activation=torch.nn.GELU, encoder_module="transformer",
                                 attention_type="regularMHA", normalize_before=True, causal=False)
    return {"CNN": cnn, "Transformer": transformer,
            "ctc_lin": Linear(input_size=144, n_neurons=vocab), "seq_lin": Linear(input_size=144, n_neurons=vocab),
            "normalize": InputNormalization(norm_type="global", update_until_epoch=4)}


def specaugment():
    """The recipe's fea_augment: 4 time drops of 15-25 frames, 4 frequency drops of 10-20 bins, time warping."""
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.freq_domain import SpectrogramDrop, Warping

    return Augmenter(min_augmentations=3, max_augmentations=3, augment_prob=1.0, augmentations=[
        SpectrogramDrop(drop_length_low=15, drop_length_high=25, drop_count_low=4, drop_count_high=4, replace="mean"),
        SpectrogramDrop(drop_length_low=10, drop_length_high=20, drop_count_low=4, drop_count_high=4, replace="mean",
                        dim=2),
        Warping()])


def make_searcher(modules, beam: int, ctc_weight: float):
    """The recipe's valid_search (beam with CTC, no LM), or greedy attention decoding for beam 1."""
    common = dict(modules=[modules["Transformer"], modules["seq_lin"]], bos_index=BOS, eos_index=EOS,
                  min_decode_ratio=0.0, max_decode_ratio=1.0)
    if beam == 1:
        return S2STransformerGreedySearcher(**common)
    scorer = None
    if ctc_weight > 0:
        scorer = ScorerBuilder(full_scorers=[CTCScorer(ctc_fc=modules["ctc_lin"], blank_index=BLANK, eos_index=EOS)],
                               weights={"ctc": ctc_weight})
    return S2STransformerBeamSearcher(**common, beam_size=beam, using_eos_threshold=False, length_normalization=True,
                                      scorer=scorer)


@torch.no_grad()
def transcribe(brain: ASR, dataset: DynamicItemDataset, searcher, tokenizer, seconds: float) -> dict[str, str]:
    """{id: hypothesis} for a dataset, decoded in length-sorted batches of about `seconds` of audio."""
    m = brain.modules
    hyps = {}
    loader = make_dataloader(dataset, batch_sampler=batch_sampler(dataset, seconds, False, 0), collate_fn=PaddedBatch)
    for batch in loader:
        wavs, wav_lens = batch.sig
        feats = m.normalize(brain.hparams.compute_features(wavs), wav_lens)
        enc_out = m.Transformer.encode(m.CNN(feats), wav_lens, pad_idx=PAD)
        tokens, *_ = searcher(enc_out, wav_lens)
        for utt, ids in zip(batch.id, tokens):
            hyps[utt] = tokenizer.sp.decode_ids([int(i) for i in ids])
    return hyps


# --------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, help="training manifest (JSONL)")
    p.add_argument("--dev", help="validation manifest: teacher-forced loss and accuracy after each epoch")
    p.add_argument("--test", action="append", default=[], metavar="NAME=PATH",
                   help="a set to decode and score after training (repeatable; a bare path is named by its stem)")
    p.add_argument("--minutes", type=float, required=True, help="training wall-clock budget (validation excluded)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=1, help="DataLoader worker processes (ours: 1)")
    p.add_argument("--beam", type=int, default=5, help="beam size; 1: greedy attention decoding (no CTC)")
    p.add_argument("--ctc-weight-decode", type=float, default=0.4, help="CTC weight in the beam search (recipe 0.4)")
    p.add_argument("--seed", type=int, default=74443, help="the recipe's seed by default")
    p.add_argument("--lr", type=float, default=4e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=250, help="warmup steps")
    p.add_argument("--schedule", choices=("cosine", "noam"), default="cosine",
                   help="cosine: ours, decayed over the time budget; noam: the recipe's NoamScheduler")
    p.add_argument("--batch-seconds", type=float, default=80.0, help="audio per training batch, padding included")
    p.add_argument("--decode-batch-seconds", type=float, default=100.0, help="audio per decoding batch (recipe 100)")
    p.add_argument("--ctc-weight", type=float, default=0.3, help="CTC weight of the training loss (recipe 0.3)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--dropout", type=float, default=0.0, help="transformer and front-end dropout (recipe 0.1)")
    p.add_argument("--specaugment", action="store_true", help="the recipe's time/frequency drop and time warp")
    p.add_argument("--vocab", type=int, default=300, help="BPE vocabulary size")
    p.add_argument("--enc-layers", type=int, default=4, help="encoder layers (configs/small.yaml: 4; people_small: 6)")
    p.add_argument("--dec-layers", type=int, default=2, help="decoder layers")
    p.add_argument("--n-mels", type=int, default=80)
    p.add_argument("--log-every", type=int, default=50, help="print the training loss every N steps")
    p.add_argument("--limit-train", type=int, help="use only the first N training utterances (smoke tests)")
    p.add_argument("--limit-eval", type=int, help="use only the first N utterances of --dev and each --test")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.disable(logging.INFO)  # SpeechBrain logs every epoch and sampler at INFO
    # TransformerASR passes a bool padding mask with a float causal mask, which torch 2.14 deprecates
    warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask and attn_mask")
    torch.set_num_threads(args.threads)
    sb.utils.seed.seed_everything(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    train_entries = read_manifest(args.train)[: args.limit_train]
    dev_entries = read_manifest(args.dev)[: args.limit_eval] if args.dev else None
    tests = {name: entries[: args.limit_eval] for name, entries in read_sets(args.test).items()}

    tokenizer = train_tokenizer(train_entries, out / "tokenizer", args.vocab)
    train_set = make_dataset(train_entries, tokenizer)
    dev_set = make_dataset(dev_entries, tokenizer) if dev_entries else None

    modules = build_modules(args, args.vocab)
    hparams = {"compute_features": Fbank(sample_rate=SAMPLE_RATE, n_fft=400, n_mels=args.n_mels),
               "fea_augment": specaugment() if args.specaugment else None,
               "epoch_counter": EpochCounter(limit=sys.maxsize),
               "ctc_weight": args.ctc_weight, "label_smoothing": args.label_smoothing}
    brain = ASR(modules=modules, hparams=hparams,
                opt_class=lambda params: torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.98), eps=1e-9),
                run_opts={"device": "cpu", "noprogressbar": True, "max_grad_norm": 5.0, "precision": "fp32"},
                budget_s=args.minutes * 60, lr=args.lr, warmup=args.warmup, schedule=args.schedule,
                log_every=args.log_every)
    params = sum(p.numel() for p in brain.modules.parameters())
    train_audio = sum(float(e["duration"]) for e in train_entries)
    print(f"speechbrain {sb.__version__} TransformerASR: {params:,} parameters, vocabulary {args.vocab}; "
          f"{len(train_entries)} training utterances ({train_audio / 3600:.2f} h); "
          f"budget {args.minutes:g} min on {args.threads} thread(s)", flush=True)

    sampler = batch_sampler(train_set, args.batch_seconds, True, args.seed)
    brain.train_sampler = sampler  # Brain calls set_epoch on it: new batches every epoch
    loader_opts = {"batch_sampler": sampler, "num_workers": args.workers, "collate_fn": PaddedBatch}
    dev_opts = None
    if dev_set is not None:
        dev_opts = {"batch_sampler": batch_sampler(dev_set, args.decode_batch_seconds, False, 0),
                    "collate_fn": PaddedBatch}
    brain.fit(brain.hparams.epoch_counter, train_set, dev_set, train_loader_kwargs=loader_opts,
              valid_loader_kwargs=dev_opts or {})

    steps, train_s = brain.optimizer_step, brain.clock.seconds()
    audio_per_s = brain.audio_seconds / train_s if train_s else float("nan")
    first = brain.losses[: args.log_every]
    last = brain.losses[-args.log_every:]
    print(f"trained {steps} steps in {train_s:.1f} s ({steps / train_s:.2f} steps/s, {audio_per_s:.1f} audio s/s, "
          f"{brain.audio_seconds / max(train_audio, 1e-9):.2f} epochs); loss {sum(first) / len(first):.3f} "
          f"(first {len(first)} steps) -> {sum(last) / len(last):.3f} (last {len(last)})", flush=True)

    brain.modules.eval()
    searcher = make_searcher(brain.modules, args.beam, args.ctc_weight_decode)
    results, decode_s = {}, 0.0
    (out / "hyps").mkdir(exist_ok=True)
    for name, entries in tests.items():
        start = time.monotonic()
        hyps = transcribe(brain, make_dataset(entries, tokenizer), searcher, tokenizer, args.decode_batch_seconds)
        decode_s += time.monotonic() - start
        refs = [NORM(e["text"]) for e in entries]
        hyps = [NORM(hyps[e["id"]]) for e in entries]
        errors, words = error_counts(refs, hyps, "en")
        results[name] = {"wer": round(100 * errors / words, 2) if words else None, "utts": len(entries),
                         "words": words}
        with open(out / "hyps" / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for e, ref, hyp in zip(entries, refs, hyps):
                f.write(json.dumps({"id": e["id"], "ref": ref, "hyp": hyp}) + "\n")

    report = {"system": f"speechbrain {sb.__version__} TransformerASR", "params": params, "minutes": args.minutes,
              "steps": steps, "train_seconds": round(train_s, 1), "audio_seconds_per_second": round(audio_per_s, 2),
              "sets": results, "decode_seconds": round(decode_s, 1),
              "epochs": round(brain.audio_seconds / max(train_audio, 1e-9), 2),
              "loss_first": round(sum(first) / len(first), 3), "loss_last": round(sum(last) / len(last), 3),
              "config": {k: v for k, v in vars(args).items() if k not in ("train", "dev", "test", "out")}
              | {"train": args.train, "dev": args.dev, "test": args.test}}
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print(f"\n{report['system']}, {params:,} parameters, {args.minutes:g} min ({steps} steps), "
          f"beam {args.beam}{f' + CTC {args.ctc_weight_decode:g}' if args.beam > 1 else ''}")
    print(f"{'set':<24} {'utts':>6} {'words':>7} {'WER %':>7}")
    for name, r in results.items():
        print(f"{name:<24} {r['utts']:>6} {r['words']:>7} {r['wer'] if r['wer'] is not None else 'n/a':>7}")
    print(f"decoding: {decode_s:.1f} s; results in {out / 'results.json'}")


if __name__ == "__main__":
    main()
