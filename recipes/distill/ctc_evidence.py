"""What a CTC head that spells says about speech and non-speech: the evidence behind the thresholds
`decode.ctc_speech_logprob` (the head overrules Whisper's no-speech rule) and `decode.min_ctc_logprob`
(the head rejects a text it does not hear), and the head's own greedy transcript.

    python recipes/distill/ctc_evidence.py exp/distill/ctc [--manifest data/real/select.jsonl] [--minutes 1]

Every real clip of the manifest, and a recording of each non-speech kind of
recipes/benchmarks/nonspeech.py (silence, noises, music, clicks, babble, reversed speech; cut by
silero), decoded greedily with every guard off. Per segment: the decoder's text, Whisper's
P(no speech) and mean log prob (and whether its rule would empty it), the head's log prob per
letter. Prints the distributions on both sides and the thresholds that separate them; choose on
the select clips, report on the held-out ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes/benchmarks"))
from common import wer  # noqa: E402
from nonspeech import kinds  # noqa: E402

from asr.audio.read import load_audio  # noqa: E402
from asr.data.manifest import read_manifest  # noqa: E402
from asr.decode.ctc import ctc_greedy  # noqa: E402
from asr.decode.options import DecodeOptions  # noqa: E402
from asr.decode.task import Search  # noqa: E402
from asr.model.catalogue import load  # noqa: E402
from asr.text.tokenizers import LETTERS  # noqa: E402
from asr.transcribe.pipeline import Samples, SegmentOptions, recognize  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="an experiment folder, model file or name whose CTC head spells")
    ap.add_argument("--manifest", default=str(ROOT / "data/real/select.jsonl"))
    ap.add_argument("--pool", default=str(ROOT / "data/synth/commands/dev.jsonl"), help="babble and reversed speech")
    ap.add_argument("--minutes", type=float, default=1.0, help="of each non-speech kind")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = Path(args.model) / "model.pt" if Path(args.model).is_dir() else Path(args.model)
    rec = load(path if path.exists() else args.model, "cpu", "int8")
    if rec.cfg.model.ctc_vocab != "letters":
        raise SystemExit(f"{args.model}: its CTC head does not spell (model.ctc_vocab is {rec.cfg.model.ctc_vocab!r})")
    rule = DecodeOptions.from_config(rec.cfg, beam_size=1)
    off = dataclasses.replace(rule, no_speech_threshold=None, min_ctc_logprob=None, ctc_speech_logprob=None,
                              reversed_margin=None)
    search = Search(rec, off)

    def whisper_says_none(s) -> bool:
        return (rule.no_speech_threshold is not None and s.no_speech_prob is not None
                and s.no_speech_prob > rule.no_speech_threshold and s.score < rule.logprob_threshold)

    entries = read_manifest(args.manifest)
    speech = list(recognize(search, [e["audio"] for e in entries], SegmentOptions(vad="silero")))
    segs = [(e, s) for e, r in zip(entries, speech) for s in r.segments]
    heard = [s.ctc_logprob for _, s in segs if s.ctc_logprob is not None]
    doubted = [(e, s) for e, s in segs if whisper_says_none(s)]
    # the head's own transcript: greedy letters over each whole clip
    greedy = []
    with torch.no_grad():
        for e in entries:
            wav = torch.from_numpy(load_audio(e["audio"]))[None]
            enc = rec.encode(wav, torch.tensor([wav.shape[1]]))
            greedy.append(LETTERS.decode(ctc_greedy(enc.ctc_logits, enc.lengths, LETTERS.blank)[0]))
    print(f"{len(entries)} real clips ({args.manifest}), {len(segs)} segments with text")
    print(f"  the decoder greedy, guards off: WER {wer([e['text'] for e in entries], [r.text for r in speech]):.2f}")
    print(f"  the CTC head alone, greedy letters: WER {wer([e['text'] for e in entries], greedy):.2f}")
    q = np.percentile(heard, [0, 5, 50]) if heard else [float("nan")] * 3
    print(f"  head log prob per letter on speech: min {q[0]:.2f}, 5% {q[1]:.2f}, median {q[2]:.2f}")
    print(f"  Whisper's rule (P(no speech) > {rule.no_speech_threshold}, mean log prob < {rule.logprob_threshold}) "
          f"would empty {len(doubted)} of them:")
    for e, s in doubted:
        print(f"    {e['id']}: {s.text!r} (reference {e['text']!r}): P(no speech) {s.no_speech_prob:.2f}, "
              f"log prob {s.score:.2f}, head {s.ctc_logprob if s.ctc_logprob is None else round(s.ctc_logprob, 2)}")

    pool = [load_audio(e["audio"]) for e in read_manifest(args.pool)]
    audio = kinds(pool, args.minutes)
    rows = list(recognize(search, [Samples(w, 16000, k) for k, w in audio.items()], SegmentOptions(vad="silero")))
    invented = [(k, s) for k, r in zip(audio, rows) for s in r.segments]
    print(f"\nnon-speech, {args.minutes:g} min of each kind: {len(invented)} segments given text with the guards off")
    for k, s in sorted(invented, key=lambda x: -(x[1].ctc_logprob or -99)):
        print(f"    {k}: {s.text[:50]!r}: head {s.ctc_logprob if s.ctc_logprob is None else round(s.ctc_logprob, 2)}, "
              f"Whisper's rule {'empties it' if whisper_says_none(s) else 'keeps it'}")
    top = max((s.ctc_logprob for _, s in invented if s.ctc_logprob is not None), default=float("-inf"))
    low = min((s.ctc_logprob for _, s in doubted if s.ctc_logprob is not None), default=float("nan"))
    print(f"\nctc_speech_logprob must lie above {top:.2f} (the best-supported invented text) and at most {low:.2f} "
          f"(the least-supported real segment Whisper's rule would empty)")


if __name__ == "__main__":
    main()
