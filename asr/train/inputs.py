"""What training computes from its data before the first step: durations, the tokenizer and
global feature statistics (CMVN).

Each is computed once per experiment and kept: the tokenizer in EXP/tokenizer.json (`asr
tokenizer` makes it ahead of training, so it can be looked at first), the statistics as
buffers of the feature module, saved with every checkpoint and model file. The tokenizer learns
the transcripts' normalized form, or their display form with `tokenizer.text=display`.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from torch.utils.data import DataLoader

from asr.audio.read import AudioError, audio_duration
from asr.config import Config
from asr.data.dataset import SpeechDataset, collate
from asr.model.features import Features
from asr.storage import write_text
from asr.text.tokenizers import Tokenizer, tokenizer_from_dict, train_tokenizer

log = logging.getLogger(__name__)


def with_durations(entries: list[dict]) -> list[dict]:
    """Fill in missing durations from the file headers; drop (and name) unreadable files."""
    out = []
    for e in entries:
        if not e.get("duration"):
            try:
                e = {**e, "duration": audio_duration(e["audio"])}
            except AudioError as err:
                log.warning("skipping utterance %s: %s", e["id"], err)
                continue
        out.append(e)
    return out


def estimate_cmvn(features: Features, entries: list[dict], cfg: Config) -> int:
    """Set the feature module's global mean and variance from a sample of utterances; returns
    how many frames they were estimated from."""
    rng = random.Random(cfg.seed)
    sample = rng.sample(entries, min(len(entries), cfg.features.cmvn_max_utts))
    ds = SpeechDataset(sample, None, cfg.features.sample_rate)
    loader = DataLoader(ds, batch_size=16, collate_fn=collate, num_workers=0)
    return features.set_stats((b.wav, b.wav_lens) for b in loader if b is not None)


def prepare_tokenizer(cfg: Config, entries: list[dict], exp_dir: str | Path) -> Tokenizer:
    """Train the tokenizer on the training transcripts once (EXP/tokenizer.json); reuse it after.
    Every DDP rank trains the same one; the atomic write keeps them from reading half a file."""
    path = Path(exp_dir) / "tokenizer.json"
    if path.exists():
        tok = tokenizer_from_dict(json.loads(path.read_text()))
        # a model would learn one form of text (or language) and be told it is the other
        theirs, ours = (tok.text, getattr(tok, "language", "en")), (cfg.tokenizer.text, cfg.tokenizer.language)
        if theirs != ours:
            raise ValueError(f"{path} trains on {theirs[0]} text in {theirs[1]!r}, the config asks for tokenizer.text="
                             f"{ours[0]}, tokenizer.language={ours[1]}; delete it or change the config")
        return tok
    tok = train_tokenizer(cfg.tokenizer.kind, [e["text"] for e in entries], cfg.tokenizer.vocab_size,
                          cfg.tokenizer.text, cfg.tokenizer.language)
    write_text(path, json.dumps(tok.to_dict()))
    return tok
