"""Hotwords: recall of rare names and jargon with and without biasing, and the WER of the other words.

    python recipes/benchmarks/hotwords.py [-m whisper-tiny.en] [--weights 1 2 3]

Clips: sentences of our own with invented surnames and product names, read by several synthetic
voices (espeak-ng accents, and piper's joe where installed), written under data/bench/hotwords.
Each model decodes them with its own beam search: without hotwords, with the 12 hotwords the
sentences use, and with a list of 100 where only those 12 occur (88 more invented names). Recall:
the share of hotword occurrences whose exact spelling (case aside) is in the transcript. Other
words: WER over everything but the hotwords, both sides normalized (`common.wer`).
"""

from __future__ import annotations

import argparse
import random
import time
import zlib
from pathlib import Path

from common import ROOT, SR, wer

NAMES = ["Vandermolen", "Okonkwo", "Szczepanski", "Thibodeaux", "Quarshie", "Haverkamp"]
PRODUCTS = ["Zentrafix", "Quorblin", "Helixor", "Draxelbrook", "Vemoria", "Plundex"]
TEMPLATES = [
    "Please send the {p} report to {n} before noon.",
    "{n} says the new {p} release is ready for testing.",
    "Ask {n} whether the {p} licence was renewed.",
    "The {p} dashboard shows three alerts since {n} left.",
    "Tomorrow {n} will demo {p} to the whole team.",
    "We moved the {p} servers last week, so {n} can finally relax.",
    "If the budget allows it, {n} wants two more {p} seats for the new hires.",
    "After lunch {n} found a bug in the {p} installer and fixed it on the spot.",
    "Could you remind {n} that the {p} contract ends at the end of the month?",
    "Our customers like {p} because it is simple, but {n} thinks it could be faster.",
]


def sentences() -> list[tuple[str, list[str]]]:
    """(sentence, the hotwords in it): every template with a few name and product pairs."""
    out, k = [], 0
    for template in TEMPLATES:
        for _ in range(4):
            n, p = NAMES[k % len(NAMES)], PRODUCTS[(k * 5 + 1) % len(PRODUCTS)]
            out.append((template.format(n=n, p=p), [n, p]))
            k += 1
    return out


def distractors(n: int, seed: int = 0) -> list[str]:
    """Invented names that occur nowhere in the clips."""
    rng, syllables = random.Random(seed), ["ka", "vor", "lin", "dex", "mar", "tu", "zel", "bro", "qui", "sha", "nor"]
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))).capitalize())
    return sorted(out - set(NAMES) - set(PRODUCTS))[:n]


def clips(folder: Path) -> list[dict]:
    import soundfile as sf

    from asr.synth.engines import Voice, available_engines, synthesize

    voices = [Voice("espeak", "en-us"), Voice("espeak", "en"), Voice("espeak", "en-us", rate=0.9, pitch=1.2)]
    if "piper" in available_engines():
        voices.append(Voice("piper", "joe"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (text, words) in enumerate(sentences()):
        voice = voices[i % len(voices)]
        key = zlib.crc32(f"{text}|{voice}".encode())  # a changed sentence or voice is a new file
        path = folder / f"{i:02d}-{voice.engine}-{voice.name}-{key:08x}.wav"
        if not path.exists():
            sf.write(path, synthesize(text, voice), SR)
        rows.append({"audio": str(path), "text": text, "hotwords": words})
    return rows


def other_words_wer(refs: list[str], hyps: list[str], hotwords: list[str]) -> float:
    """WER over the reference words that are not hotwords: their substitutions and deletions, and
    insertions that do not touch a hotword (a misspelt name, "Van der Moolen", is the name's
    error, not three errors of the other words). Both sides normalized."""
    import jiwer

    from asr.text.normalize import normalize

    hot = {normalize(w) for w in hotwords}
    errors = words = 0
    for ref, hyp in zip(refs, hyps):
        ref_words = normalize(ref).split()
        is_hot = [w in hot for w in ref_words]
        words += len(ref_words) - sum(is_hot)
        out = jiwer.process_words(" ".join(ref_words), normalize(hyp) or "")
        for chunk in out.alignments[0]:
            span = range(chunk.ref_start_idx, chunk.ref_end_idx)
            if chunk.type in ("substitute", "delete"):
                errors += sum(not is_hot[i] for i in span)
            elif chunk.type == "insert":
                near = [i for i in (chunk.ref_start_idx - 1, chunk.ref_start_idx) if 0 <= i < len(ref_words)]
                errors += 0 if any(is_hot[i] for i in near) else chunk.hyp_end_idx - chunk.hyp_start_idx
    return 100 * errors / words


def measure(model: str, rows: list[dict], hotwords: list[str], weight: float) -> dict:
    import asr

    options = {"hotwords": ", ".join(hotwords), "hotword_weight": weight} if hotwords else {}
    m = asr.load_model(model, device="cpu", **options)
    start = time.perf_counter()
    texts = [r.text or "" for r in m.transcribe([r["audio"] for r in rows])]
    seconds = time.perf_counter() - start
    found = [w.lower() in t.lower() for r, t in zip(rows, texts) for w in r["hotwords"]]
    return {"recall": 100 * sum(found) / len(found), "wer": wer([r["text"] for r in rows], texts),
            "other_wer": other_words_wer([r["text"] for r in rows], texts, NAMES + PRODUCTS), "seconds": seconds,
            "texts": texts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default="whisper-tiny.en")
    ap.add_argument("--weights", nargs="+", type=float, default=[2.0])
    args = ap.parse_args()
    rows = clips(ROOT / "data/bench/hotwords")
    used = NAMES + PRODUCTS
    lists = {"none": [], "12 used": used, "100 (12 used)": used + distractors(100 - len(used))}
    print(f"{args.model}: {len(rows)} clips, {sum(len(r['hotwords']) for r in rows)} hotword occurrences\n")
    print("| hotwords | weight | recall % | WER % all words | WER % other words | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    base = None
    for name, words in lists.items():
        for weight in args.weights if words else [0.0]:
            r = measure(args.model, rows, words, weight)
            base = base or r
            print(f"| {name} | {weight:g} | {r['recall']:.1f} | {r['wer']:.2f} | {r['other_wer']:.2f} "
                  f"| {r['seconds']:.1f} |", flush=True)
    missed = [(w, t) for row, t in zip(rows, base["texts"]) for w in row["hotwords"] if w.lower() not in t.lower()]
    print("\nwithout hotwords, for example:", "; ".join(f"{w} -> {t!r}" for w, t in missed[:3]))


if __name__ == "__main__":
    main()
