"""Translation by whisper-base through our engine: a few non-English clips, what they say, and the
English it writes (`--task translate`), beside the transcript in the detected language and the
translation faster-whisper makes with the same weights (where it is installed).

    python recipes/benchmarks/translations.py        # prints a Markdown table (README, Languages)

Clips: real people saying KTuberling's words (Debian ktuberling-data; single words and short
phrases) and espeak-ng reading `languages.SENTENCES` (synthetic; the sentences real people could
not be found saying outside the reserved sources).
"""

from __future__ import annotations

from common import ROOT
from languages import KTUBERLING, SENTENCES, espeak_clips

# (file under KTUBERLING, language, what it says in English)
WORDS = [("fr/patate_lunettes-de-soleil.wav", "fr", "sunglasses"), ("fr/patate_boucle-d-oreille.wav", "fr", "earring"),
         ("fr/patate_noeud-papillon.wav", "fr", "bow tie"), ("es/gafasdesol.wav", "es", "sunglasses"),
         ("it/occhialidasole.wav", "it", "sunglasses"), ("de/umbrella.ogg", "de", "umbrella"),
         ("ru/sunglasses.ogg", "ru", "sunglasses"), ("it/cappello.wav", "it", "hat")]
MEANING = {0: "The train to the city leaves at nine in the morning.",
           1: "Please close the window, it is getting cold in here."}


def main() -> None:
    import asr

    transcribe = asr.load_model("whisper-base", device="cpu")
    translate = asr.load_model("whisper-base", device="cpu", task="translate")
    rows = [(str(KTUBERLING / f), lang, "real", meaning) for f, lang, meaning in WORDS if (KTUBERLING / f).exists()]
    clips = espeak_clips(ROOT / "data/bench/languages/espeak")
    for lang in ("de", "fr", "es", "ru"):
        for k in (0, 1):
            c = next(c for c in clips if c["language"] == lang and c["word"] == SENTENCES[lang][k])
            rows.append((c["audio"], lang, "espeak", MEANING[k]))
    heard = list(transcribe.transcribe([r[0] for r in rows]))
    english = list(translate.transcribe([r[0] for r in rows]))
    theirs = faster_whisper_translations([r[0] for r in rows])
    print("| clip | voice | what it says | transcript (detected language) | translation | faster-whisper's |")
    print("|---|---|---|---|---|---|")
    for (path, lang, voice, meaning), h, t, f in zip(rows, heard, english, theirs):
        name = path.split("/sounds/")[-1] if "/sounds/" in path else f"{lang}: {path.rsplit('/', 1)[-1]}"
        print(f"| {name} | {voice} | {meaning} | {h.text} ({h.language} {h.language_probability or 0:.2f}) "
              f"| {t.text} | {f} |")


def faster_whisper_translations(paths: list[str]) -> list[str]:
    """The same weights through faster-whisper (beam 5, its defaults), where it is installed: whether a
    poor translation is the model's or our engine's."""
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        return ["(faster-whisper not installed)"] * len(paths)
    from languages import base_ct2

    model = WhisperModel(str(base_ct2(ROOT / "data/bench/whisper-base-ct2")), device="cpu", compute_type="float32",
                         cpu_threads=2)
    return [" ".join(s.text.strip() for s in model.transcribe(p, task="translate", beam_size=5)[0]) for p in paths]


if __name__ == "__main__":
    main()
