"""The exported model: features + network + tokenizer in one plain file, and decoding with it.

The file is a dict {"format", "config", "tokenizer", "state_dict"} of tensors and plain Python
values, loadable with `torch.load(path, weights_only=True)`. It is written atomically.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from .config import Config, DecodeConfig, from_dict, to_dict
from .ctc import ctc_greedy, ctc_length_limits
from .decoding import Hypothesis, beam_search, greedy_search, trim_repetitions
from .features import Features
from .lm import NGramLM
from .model import ASRModel
from .text import Tokenizer, tokenizer_from_dict

FORMAT = "asr-model-v1"


def atomic_save(obj, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`:
    a kill at any moment leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Decoded:
    text: str  # normalized transcript
    tokens: list[int]
    score: float  # the search's ranking score (nan for greedy)
    log_prob: float


class Recognizer(nn.Module):
    """Everything needed to turn waveforms into text, as trained."""

    def __init__(self, cfg: Config, tokenizer: Tokenizer, features: Features | None = None, model: ASRModel | None = None):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.features = features or Features(cfg.features)
        self.model = model or ASRModel(cfg.model, self.features.dim, tokenizer.vocab_size)
        self.lm: NGramLM | None = None  # shallow fusion in beam search (`use_lm`)
        self.lm_path: str | None = None

    @property
    def frame_seconds(self) -> float:
        """Duration of one encoder frame (both front ends subsample 4x)."""
        return 4 * self.cfg.features.hop_ms / 1000

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def save(self, path: str | Path) -> None:
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        atomic_save({"format": FORMAT, "config": to_dict(self.cfg), "tokenizer": self.tokenizer.to_dict(),
                     "state_dict": state}, path)

    def use_lm(self, path: str | Path | None) -> "Recognizer":
        """Fuse an n-gram LM (an ARPA file over this model's tokens, `asr lm`) into beam search
        with weight `decode.lm_weight`; None removes it."""
        self.lm = NGramLM.load_arpa(path, self.tokenizer) if path else None
        self.lm_path = str(path) if path else None
        return self

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "Recognizer":
        if not Path(path).is_file():
            raise FileNotFoundError(f"no model file at {path}")
        blob = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path} is not an exported asr model (expected format {FORMAT})")
        rec = cls(from_dict(Config, blob["config"]), tokenizer_from_dict(blob["tokenizer"]))
        rec.load_state_dict(blob["state_dict"])
        return rec.to(device).eval()

    @torch.no_grad()
    def decode(self, wav: Tensor, wav_lens: Tensor, **options) -> list[str]:
        """(B, S) padded waveforms at the model's sample rate -> B transcripts (normalized text).
        `options` override the config's decode section for this call (e.g. beam_size=1)."""
        return [hyps[0].text for hyps in self.decode_nbest(wav, wav_lens, **options)]

    @torch.no_grad()
    def encode(self, wav: Tensor, wav_lens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Waveforms -> encoder output (B, T', D), its lengths and CTC logits (B, T', V)."""
        wav, wav_lens = wav.to(self.device), wav_lens.to(self.device)
        feats, lens = self.features(wav, wav_lens)
        memory, mem_lens = self.model.encoder(feats, lens)
        return memory, mem_lens, self.model.ctc_head(memory)

    @torch.no_grad()
    def decode_nbest(self, wav: Tensor, wav_lens: Tensor, **options) -> list[list["Decoded"]]:
        return self.search(*self.encode(wav, wav_lens), **options)

    def decode_settings(self, **options) -> DecodeConfig:
        """The decode config with `options` applied; the CTC weight resolved (None = as trained)."""
        d = replace(self.cfg.decode, **options)
        return replace(d, ctc_weight=self.cfg.optim.ctc_weight if d.ctc_weight is None else d.ctc_weight)

    @torch.no_grad()
    def search(self, memory: Tensor, mem_lens: Tensor, ctc_logits: Tensor, use_cache: bool = True,
               **options) -> list[list["Decoded"]]:
        """Encoder output (B, T', D), lengths and CTC logits -> for each utterance its n best
        transcripts, best first. Greedy when beam_size is 1 and neither CTC nor an LM is weighted in."""
        d = self.decode_settings(**options)
        ctc_weight = d.ctc_weight
        limits = ctc_length_limits(ctc_logits, mem_lens) if d.ctc_length_guard else None
        lm_weight = d.lm_weight if self.lm is not None else 0.0
        if d.beam_size == 1 and ctc_weight == 0 and lm_weight == 0:
            ids = greedy_search(self.model, memory, mem_lens, d.max_len_ratio, use_cache, limits)
            if d.ctc_length_guard:  # cut loops the CTC path does not support
                ids = [trim_repetitions(seq, ref) for seq, ref in zip(ids, ctc_greedy(ctc_logits, mem_lens))]
            hyps = [[Hypothesis(seq, float("nan"), float("nan"))] for seq in ids]
        else:
            hyps = beam_search(self.model, memory, mem_lens, ctc_logits, d.beam_size, ctc_weight, d.length_penalty,
                               d.max_len_ratio, limits, d.n_best, use_cache, lm=self.lm, lm_weight=lm_weight)
        return [[Decoded(self.tokenizer.decode(h.tokens), h.tokens, h.score, h.log_prob) for h in nbest]
                for nbest in hyps]

    def transcribe(self, paths: str | Path | list[str | Path], batch_size: int | None = None,
                   word_timestamps: bool = False, **options) -> list:
        """Transcribe audio files and folders: a list of `asr.transcribe.Result` (text, segments
        with times, or the error). `options` override the decode config (beam_size=1, ...)."""
        from .transcribe import find_audio, recognize_files

        paths = [paths] if isinstance(paths, (str, Path)) else paths
        return list(recognize_files(self, find_audio(paths), batch_size or self.cfg.decode.batch_size,
                                    word_timestamps, **options))
