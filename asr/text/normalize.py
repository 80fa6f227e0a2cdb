"""Text -> the form WER compares (`normalize`), and the display form our tokenizers may learn."""

from __future__ import annotations

import re
import unicodedata

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen").split()


_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]


_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                      "nine": "ninth", "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for scale, name in _SCALES:
        if n >= scale:
            rest = n % scale
            return number_to_words(n // scale) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def ordinal_words(n: int) -> str:
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join(words[:-1] + [last])


def _digits_to_words(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits)


def _number_match(m: re.Match) -> str:
    whole, frac, suffix = m.group(1).replace(",", ""), m.group(2), (m.group(3) or "").lower()
    if len(whole) > 15 or (len(whole) > 1 and whole[0] == "0"):  # a serial number or code, not a quantity
        text = _digits_to_words(whole)
    elif suffix in ("st", "nd", "rd", "th") and not frac:
        text = ordinal_words(int(whole))
    else:
        text = number_to_words(int(whole))
    if frac:
        text += " point " + _digits_to_words(frac)
    elif suffix == "s":  # "1990s", "the 80s", "7s": the plural of the last word
        head, _, last = text.rpartition(" ")
        last = last[:-1] + "ies" if last.endswith("y") else last + "es" if last.endswith("x") else last + "s"
        text = f"{head} {last}".strip()
    return f" {text} "


# digits; a decimal part; an ordinal or plural suffix only where a word ends there ("21st", "1990s",
# but "3d" is "three d"); digits glued to letters are still read ("mp3", "4x")
_NUMBER = re.compile(r"(\d[\d,]*\d|\d)(?:\.(\d+))?(?:(st|nd|rd|th|s)(?![a-z]))?(?!\d)", re.IGNORECASE)


# "5:30", "17:05", not "1:02:03" (a duration) or "2:1" (a ratio)
_TIME = re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])")


# "(617) 555-0123", "617-555-0123", "555-0123": read digit by digit
_PHONE = re.compile(r"(?<![\d-])(?:\(\d{3}\)\s?|\d{3}-)?\d{3}-\d{4}(?![\d-])")


# "$12.50", "€3", "£1,200", "$2.5 million"
_MONEY = re.compile(r"([$€£])\s?(\d[\d,]*\d|\d)(?:\.(\d+))?(?:\s?(thousand|million|billion|trillion)\b)?(?![\d.,]\d)")


_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
             "£": ("pound", "pounds", "penny", "pence")}


def _time_match(m: re.Match) -> str:
    hour, minute = int(m.group(1)), int(m.group(2))
    if minute == 0:  # "5:00 p.m." is "five p m"
        return f" {number_to_words(hour)} "
    return f" {number_to_words(hour)} {'oh ' if minute < 10 else ''}{number_to_words(minute)} "


def _money_match(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    whole, frac, scale = int(m.group(2).replace(",", "")), m.group(3), m.group(4)
    if scale or (frac and len(frac) != 2):  # "$2.5 million": an amount, not dollars and cents
        amount = number_to_words(whole) + (" point " + _digits_to_words(frac) if frac else "")
        return f" {amount}{' ' + scale if scale else ''} {many} "
    cents = int(frac or 0)
    parts = [f"{number_to_words(whole)} {one if whole == 1 else many}"] if whole or not cents else []
    if cents:
        parts.append(f"{number_to_words(cents)} {sub_one if cents == 1 else sub_many}")
    return " " + " and ".join(parts) + " "


def normalize(text: str) -> str:
    """The one text normalizer for targets, references and hypotheses (see module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = text.replace("%", " percent ").replace("&", " and ")
    text = _MONEY.sub(_money_match, text)
    text = _PHONE.sub(lambda m: f" {_digits_to_words(re.sub(r'[^0-9]', '', m.group(0)))} ", text)
    text = _TIME.sub(_time_match, text)
    text = _NUMBER.sub(_number_match, text)
    text = re.sub(r"[^a-z']+", " ", text)
    # keep apostrophes only between letters: "don't" stays, "'hello'" -> "hello"
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)
    return " ".join(text.split())


# languages written without spaces between words: error rates count characters there
NO_SPACES = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "yue"})


def normalize_any(text: str) -> str:
    """A normalizer for any script (Whisper's BasicTextNormalizer, keeping combining marks, which
    Devanagari and Thai vowels are): NFKC, case folded, bracketed asides dropped, punctuation and
    symbols become spaces, letters and digits of every script kept, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[<\[][^>\]]*[>\]]|\([^)]*\)", " ", text)
    text = "".join(" " if unicodedata.category(c)[0] in "PSZC" else c for c in text)
    return " ".join(text.split())


def normalizer(language: str | None):
    """The normalizer for text in `language`: `normalize` for English (and unknown), else `normalize_any`."""
    return normalize if language in (None, "en") else normalize_any


_STRAIGHT = str.maketrans({"\u2018": "'", "\u2019": "'", "`": "'", "\u201c": '"', "\u201d": '"'})


TEXT_FORMS = ("normalized", "display")


def display_clean(text: str) -> str:
    """Display text made regular for training targets: NFKC, straight quotes, single spaces.
    Case, punctuation, digits and accents are kept."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(_STRAIGHT).split())
