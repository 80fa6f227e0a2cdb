"""Manifests -> batches of waveforms and token ids.

A manifest is JSONL, one utterance a line: {"id", "audio", "duration", "text", "speaker"}.
Batches are filled up to a number of feature frames (padding included), not a fixed count,
from utterances of similar duration, so little compute is spent on padding.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from asr.audio.read import AudioError, load_audio
from asr.text.tokenizers import SOS_EOS, Tokenizer

log = logging.getLogger(__name__)
FRAMES_PER_SECOND = 100  # the default feature rate (10 ms hop); samplers take the model's own


@dataclass
class Batch:
    wav: Tensor  # (B, S) float32, zero-padded
    wav_lens: Tensor  # (B,)
    tokens: Tensor  # (B, L) token ids (no start/end), padded with 0
    token_lens: Tensor  # (B,)
    ids: list[str]
    texts: list[str]
    # self-distillation (asr/train/distill.py): the teacher's top-k token ids and log-probabilities at each
    # target position (B, L + 1, k), for the rows whose `teacher` is True (the others have none: a row
    # whose audio was replaced by non-speech, or an utterance the cache lacks)
    teacher_ids: Tensor | None = None
    teacher_logp: Tensor | None = None
    teacher: Tensor | None = None  # (B,) bool
    # and its encoder output over each row's own frames (B, T', D), valid for teacher_memory_lens (B,) frames
    teacher_memory: Tensor | None = None
    teacher_memory_lens: Tensor | None = None

    def to(self, device: torch.device) -> "Batch":
        move = (lambda t: None if t is None else t.to(device))
        return Batch(self.wav.to(device), self.wav_lens.to(device), self.tokens.to(device),
                     self.token_lens.to(device), self.ids, self.texts, move(self.teacher_ids),
                     move(self.teacher_logp), move(self.teacher), move(self.teacher_memory),
                     move(self.teacher_memory_lens))


class SpeechDataset(Dataset):
    """Loads one utterance's audio and token ids. A file that cannot be read is logged by
    name and yields None, which `collate` drops: one broken file never stops a run.

    An item is asked for by index, or by (index, epoch) as DurationBatchSampler yields them:
    `augment(wav, epoch, index)` (training only) draws its randomness from those numbers.
    """

    def __init__(self, entries: list[dict], tokenizer: Tokenizer | None, sample_rate: int = 16000,
                 augment: Callable[[Tensor, int, int], Tensor] | None = None,
                 non_speech: Callable[[Tensor, int, int], Tensor | None] | None = None,
                 teacher: dict[str, tuple[Tensor, ...]] | None = None):
        self.entries = entries
        self.tokenizer = tokenizer
        self.sample_rate = sample_rate
        self.augment = augment
        self.non_speech = non_speech  # (training only) audio with no words in it, or None: see Augmenter
        # id -> the teacher's (top-k ids, log-probs) along the entry's text, and its encoder output or None
        # (asr.train.distill)
        self.teacher = teacher

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, item: int | tuple[int, int]):
        i, epoch = item if isinstance(item, tuple) else (item, 0)
        e = self.entries[i]
        try:
            segment = (e["offset"], e["duration"]) if "offset" in e else (None, None)  # a slice of a recording
            wav = torch.from_numpy(load_audio(e["audio"], self.sample_rate, *segment))
        except AudioError as err:
            log.warning("skipping utterance %s: %s", e["id"], err)
            return None
        text = e["text"]
        quiet = self.non_speech(wav, epoch, i) if self.non_speech is not None else None
        if quiet is not None:  # babble, music or noise in its place: nothing to write
            wav, text = quiet, ""
        if self.augment is not None:
            wav = self.augment(wav, epoch, i)
        tokens = self.tokenizer.encode_transcript(text) if self.tokenizer is not None and text else []
        taught = self.teacher.get(e["id"]) if self.teacher is not None and quiet is None else None
        if taught is not None and len(taught[0]) != len(tokens) + 1:  # not this text's: no teacher for it
            taught = None
        return e["id"], wav, torch.tensor(tokens, dtype=torch.long), text, taught


def collate(items: list) -> Batch | None:
    items = [it for it in items if it is not None]
    if not items:
        return None
    ids, wavs, toks, texts, taught = zip(*(it if len(it) == 5 else (*it, None) for it in items))
    wav_lens = torch.tensor([w.shape[0] for w in wavs])
    tok_lens = torch.tensor([t.shape[0] for t in toks])
    wav = torch.zeros(len(wavs), int(wav_lens.max()))
    tokens = torch.zeros(len(toks), max(int(tok_lens.max()), 1), dtype=torch.long)
    for i, (w, t) in enumerate(zip(wavs, toks)):
        wav[i, : w.shape[0]] = w
        tokens[i, : t.shape[0]] = t
    batch = Batch(wav, wav_lens, tokens, tok_lens, list(ids), list(texts))
    if any(t is not None for t in taught):  # the teacher's top-k at each target position, [y1..yn, eos]
        k = next(t[0].shape[1] for t in taught if t is not None)
        batch.teacher_ids = torch.zeros(len(items), tokens.shape[1] + 1, k, dtype=torch.long)
        batch.teacher_logp = torch.zeros(len(items), tokens.shape[1] + 1, k)
        batch.teacher = torch.tensor([t is not None for t in taught])
        for i, t in enumerate(taught):
            if t is not None:
                batch.teacher_ids[i, : len(t[0])], batch.teacher_logp[i, : len(t[1])] = t[0], t[1].float()
        memories = [t[2] if t is not None and len(t) > 2 else None for t in taught]
        if any(m is not None for m in memories):
            dim = next(m.shape[1] for m in memories if m is not None)
            batch.teacher_memory_lens = torch.tensor([0 if m is None else len(m) for m in memories])
            batch.teacher_memory = torch.zeros(len(items), int(batch.teacher_memory_lens.max()), dim)
            for i, m in enumerate(memories):
                if m is not None:
                    batch.teacher_memory[i, : len(m)] = m.float()
    return batch


def decoder_io(tokens: Tensor, token_lens: Tensor, ignore_index: int = -100, prompt: tuple[int, ...] = (SOS_EOS,),
               eos: int = SOS_EOS) -> tuple[Tensor, Tensor]:
    """Teacher forcing: inputs [prompt, y1..yn], targets [y1..yn, eos] after the prompt's first
    len(prompt) - 1 positions, which predict nothing (padding -> ignore_index). Our models'
    prompt is [sos]; a Whisper model's is [sot, (language, task,) notimestamps]."""
    B, L = tokens.shape
    P = len(prompt)
    head = torch.tensor(prompt, dtype=tokens.dtype, device=tokens.device).expand(B, P)
    inputs = torch.cat([head, tokens], 1)  # (B, P + L)
    targets = torch.cat([torch.full((B, P - 1), ignore_index, dtype=tokens.dtype, device=tokens.device),
                         tokens, torch.zeros_like(head[:, :1])], 1)
    pos = torch.arange(L + 1, device=tokens.device)[None, :]  # positions after the prompt's last token
    tail = targets[:, P - 1 :]
    tail = tail.masked_fill(pos == token_lens[:, None], eos).masked_fill(pos > token_lens[:, None], ignore_index)
    targets = torch.cat([targets[:, : P - 1], tail], 1)
    inputs = torch.cat([inputs[:, : P - 1], inputs[:, P - 1 :].masked_fill(pos > token_lens[:, None], eos)], 1)
    return inputs, targets


class DurationBatchSampler(Sampler[list[int]]):
    """Buckets utterances by duration and fills each batch up to `max_frames` padded frames.

    Each epoch jitters durations a little (so batch composition varies), sorts, cuts batches,
    and shuffles their order, all from (seed, epoch): every rank of a distributed run computes
    the same batches and takes every `world_size`-th one. Iterating yields each batch as
    (index, epoch) pairs, starting after the first `skip` batches (a resumed epoch).
    """

    def __init__(self, durations: list[float], max_frames: int, max_batch_size: int = 128, shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, sorta_grad: bool = False,
                 frames_per_second: float = FRAMES_PER_SECOND):
        self.durations = durations
        self.frames_per_second = frames_per_second
        self.max_frames = max_frames
        self.max_batch_size = max_batch_size
        self.shuffle = shuffle
        self.sorta_grad = sorta_grad
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.skip = 0
        self._count: int | None = None  # batches per epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _fill(self, order: list[int]) -> list[list[int]]:
        batches, cur, longest = [], [], 0.0
        for i in order:
            frames = self.durations[i] * self.frames_per_second
            if cur and (max(longest, frames) * (len(cur) + 1) > self.max_frames or len(cur) >= self.max_batch_size):
                batches.append(cur)
                cur, longest = [], 0.0
            cur.append(i)
            longest = max(longest, frames)
        if cur:
            batches.append(cur)
        return batches

    def _epoch_batches(self, epoch: int) -> tuple[list[list[int]], random.Random]:
        rng = random.Random(self.seed * 1000003 + epoch)
        keys = [d * (1 + 0.1 * (rng.random() - 0.5)) if self.shuffle else d for d in self.durations]
        return self._fill(sorted(range(len(keys)), key=keys.__getitem__)), rng

    def batches(self) -> list[list[int]]:
        batches, rng = self._epoch_batches(self.epoch)
        # The same number of batches every epoch: the trainer counts an epoch's batches once, and an
        # epoch that came out one short would end before its validation (which then never runs).
        # The count is the most that a few epochs' jittered batching gives; a shorter epoch splits
        # its fullest batches, a longer one (rare) leaves a random batch for the next epoch.
        if self._count is None:
            self._count = max(len(self._epoch_batches(e)[0]) for e in range(4)) if self.shuffle else len(batches)
        while len(batches) < self._count and max(map(len, batches)) > 1:
            big = max(range(len(batches)), key=lambda j: len(batches[j]))
            b = batches.pop(big)
            batches[big:big] = [b[: len(b) // 2], b[len(b) // 2 :]]
        if self.shuffle and not (self.sorta_grad and self.epoch == 0):
            rng.shuffle(batches)  # (SortaGrad: the first epoch goes from short to long utterances)
        batches = batches[: self._count]
        if self.world_size > 1:  # equal count per rank, so no rank waits for another at the end
            batches = batches[: len(batches) // self.world_size * self.world_size][self.rank :: self.world_size]
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.epoch  # fixed now, whenever the batches are drawn
        return iter([[(i, epoch) for i in batch] for batch in self.batches()[self.skip :]])

    def __len__(self) -> int:
        return len(self.batches())


class ResumableLoader(DataLoader):
    """A DataLoader over a DurationBatchSampler that can resume in the middle of an epoch.

    `state_dict()` holds the epoch and the number of batches handed out so far (counted as they
    leave the loader, not as workers prefetch them); Lightning stores it in its checkpoints and
    calls `load_state_dict()` on resume, and the next iteration skips the batches already trained on.
    """

    def __init__(self, dataset: Dataset, batch_sampler: DurationBatchSampler, **kwargs):
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self.consumed = 0
        self._resume: dict | None = None

    def __iter__(self) -> Iterator:
        # A generator: nothing is decided until the first batch is asked for, by which time the
        # trainer has set the epoch (Lightning creates the iterator of a new or resumed epoch early).
        sampler = self.batch_sampler
        sampler.skip = 0
        if self._resume is not None and self._resume["epoch"] == sampler.epoch:
            sampler.skip = self._resume["consumed"]
        self._resume = None
        self.consumed = sampler.skip
        for batch in super().__iter__():
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch": self.batch_sampler.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        # The epoch is set here as well: a resumed epoch gets no set_epoch call. A checkpoint taken
        # after an epoch's last batch resumes at the start of the next epoch.
        epoch, consumed = state["epoch"], state["consumed"]
        self.batch_sampler.set_epoch(epoch)
        if consumed >= len(self.batch_sampler):
            epoch, consumed = epoch + 1, 0
            self.batch_sampler.set_epoch(epoch)
        self._resume = {"epoch": epoch, "consumed": consumed}


