"""Open-vocabulary sentences from text that Debian packages ship.

    by_source = load_sentences()         # {"fortunes": [...], "kjv": [...], "web": [...]}

Sources (each optional; `available_sources()` lists the installed ones):
- fortunes  the fortune cookie files of `fortunes` / `fortunes-min` (/usr/share/games/fortunes)
- kjv       the King James Bible of `bible-kjv`, read through its `bible` CLI
- web       the World English Bible of `sword-text-web`, read through `diatheke` (apt diatheke)

Passages are split into sentences and cleaned: verse numbers, attributions ("-- Mark Twain"),
headings and markup removed; curly quotes and dashes made plain; sentences with digits, URLs or
any character outside letters and . , ; : ! ? ' " - dropped; 3-25 words (longer ones are cut at
; and : where the pieces fit). Casing and punctuation are kept: the training text normalizer
lowercases and strips punctuation later. Sentences are deduplicated across sources.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

SOURCES = ("fortunes", "kjv", "web")
FORTUNE_DIR = Path("/usr/share/games/fortunes")
WEB_MODULE = "engWEB2015eb"  # the module name sword-text-web installs

_ALLOWED = re.compile(r"[A-Za-z .,;:!?'\"-]+")
_ABBREVIATIONS = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Capt|Col|Gen|Lt|Mt|No|vs|etc|[A-Z])\.")
_BOUNDARY = re.compile(r"([.!?]+[\"')]*)\s+(?=[\"'(]*[A-Z])")
_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": ", ", "\u2013": ", ",
                        "\u00a0": " ", "`": "'", "(": "", ")": "", "[": "", "]": ""})


def available_sources() -> list[str]:
    found = {
        "fortunes": FORTUNE_DIR.is_dir(),
        "kjv": shutil.which("bible") is not None,
        "web": shutil.which("diatheke") is not None
        and any(p.stem.lower() == WEB_MODULE.lower() for p in Path("/usr/share/sword/mods.d").glob("*.conf")),
    }
    return [s for s in SOURCES if found[s]]


# --------------------------------------------------------------------------- raw passages


def fortune_passages(directory: Path = FORTUNE_DIR) -> list[str]:
    """One passage per fortune, attribution lines dropped."""
    out = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix in (".dat", ".u8"):
            continue
        for fortune in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            lines = [ln for ln in fortune.splitlines() if not re.match(r"\s*(--|\u2014|~)", ln)]
            # an attribution on the last line: "... the facts. - Martin Gardner, ..."
            out.append(re.sub(r"([.!?][\"']?)\s+(-{1,2}|\u2014)\s*[A-Z][^.!?]*[.!?]?$", r"\1", " ".join(lines)))
    return out


def kjv_passages() -> list[str]:
    """One passage per verse of the King James Bible ("Ge1:1 In the beginning ..." -> text)."""
    text = subprocess.run(["bible", "-f", "Ge1:1-Re22:21"], capture_output=True, text=True, check=True).stdout
    return [re.sub(r"^\S*?\d+:\d+\s+", "", line) for line in text.splitlines() if line.strip()]


def web_passages() -> list[str]:
    """One passage per verse of the World English Bible, from diatheke's OSIS output."""
    raw = subprocess.run(["diatheke", "-b", WEB_MODULE, "-k", "Gen 1:1 - Rev 22:21"],
                         capture_output=True, text=True, check=True).stdout
    out = []
    for line in raw.splitlines():
        line = re.sub(r"<(title|note)\b[^>]*>.*?</\1>", " ", line)  # headings (some lead the line), footnotes
        m = re.match(r"^(?:\s*<[^>]*>)*\s*[1-3I]*\s?[A-Z][A-Za-z ]+ \d+:\d+: (.*)$", line)
        if not m:  # the glossary and the module name
            continue
        text = m.group(1)
        text = re.sub(r"</w>(?=<w\b)", "</w> ", text)  # the module glues some words ("God</w><w>created")
        text = re.sub(r"<(l|lb|lg|div|milestone)\b[^>]*/>", " ", text)  # poetry lines, paragraphs
        out.append(re.sub(r"<[^>]+>", "", text))
    return out


# --------------------------------------------------------------------------- sentences


def plain(text: str) -> str:
    """Curly quotes straightened, dashes made commas, lone quote marks and brackets dropped, spaces collapsed."""
    text = " " + text.translate(_PLAIN).replace("--", ", ") + " "
    text = re.sub(r"\s-+\s", ", ", text)
    text = re.sub(r"(?<=\s)['\"]+(?=\s)", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(text.split()))
    return re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)


def split_sentences(passage: str) -> list[str]:
    """Split at . ! ? followed by a capital; common abbreviations and initials do not split."""
    text = _ABBREVIATIONS.sub(lambda m: m.group(1) + "\0", plain(passage))
    text = _BOUNDARY.sub(lambda m: m.group(1) + "\n", text)
    return [s.replace("\0", ".").strip() for s in text.split("\n") if s.strip()]


def _n_words(s: str) -> int:
    return sum(1 for w in s.split() if re.search(r"[A-Za-z]", w))


def _fit(sentence: str, max_words: int) -> list[str]:
    """A sentence longer than max_words cut at ; and : into pieces of at most max_words."""
    if _n_words(sentence) <= max_words:
        return [sentence]
    pieces, current = [], ""
    for part in re.split(r"(?<=[;:])\s+", sentence):
        joined = f"{current} {part}".strip()
        if current and _n_words(joined) > max_words:
            pieces.append(current)
            joined = part
        current = joined
    pieces.append(current)
    return [re.sub(r"[;:,]$", ".", p) for p in pieces if _n_words(p) <= max_words]


def clean_sentence(s: str, min_words: int = 3, max_words: int = 25) -> str | None:
    """The sentence made plain, or None when it is unfit to be read aloud and transcribed."""
    s = plain(s).strip(" ,;:-'")
    if s.count('"') % 2:
        s = plain(s.replace('"', " ")).strip(" ,;:-'")
    if not s or not _ALLOWED.fullmatch(s):  # digits, URLs' slashes, symbols, other scripts
        return None
    if re.search(r"\w\.\w|www|http", s, re.IGNORECASE) or not re.match(r"[\"']?[A-Za-z]", s):
        return None
    words = [w for w in s.split() if re.search(r"[A-Za-z]", w)]
    shouting = sum(1 for w in words if len(w) > 1 and w.isupper())
    if not min_words <= len(words) <= max_words or shouting > len(words) / 2:
        return None
    return s


def sentences_from(passages: list[str], min_words: int = 3, max_words: int = 25) -> list[str]:
    out = []
    for passage in passages:
        for sentence in split_sentences(passage):
            for piece in _fit(sentence, max_words):
                cleaned = clean_sentence(piece, min_words, max_words)
                if cleaned:
                    out.append(cleaned)
    return out


def _key(s: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", s.lower()).split())


def load_sentences(sources: list[str] | None = None, min_words: int = 3, max_words: int = 25) -> dict[str, list[str]]:
    """Clean, distinct sentences per installed source (sources not installed are skipped)."""
    readers = {"fortunes": fortune_passages, "kjv": kjv_passages, "web": web_passages}
    installed = available_sources()
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for source in sources or list(SOURCES):
        if source not in readers:
            raise ValueError(f"unknown prose source {source!r}; known: {', '.join(SOURCES)}")
        if source not in installed:
            continue
        kept = []
        for s in sentences_from(readers[source](), min_words, max_words):
            key = _key(s)
            if key not in seen:
                seen.add(key)
                kept.append(s)
        out[source] = kept
    return out
