"""Text normalization and tokenizers (characters, SentencePiece BPE).

`normalize` is applied identically to training targets, WER references and hypotheses:

1. Unicode NFKC; accents removed (cafe for café); lowercase.
2. Numbers become words: "42" -> "forty two", "3.5" -> "three point five", "1st" -> "first",
   "1,000" -> "one thousand", "1990s" -> "one thousand nine hundred nineties", "mp3" -> "mp three"
   (digits glued to letters are read, not dropped), "%" -> "percent", "&" -> "and".
3. Apostrophes inside words are kept ("don't", "o'clock"); typographic quotes become "'";
   quotes at the edges of words are dropped.
4. Every other character that is not a-z becomes a space (so "well-known" -> "well known").
5. Runs of spaces collapse to one; leading and trailing spaces are removed.

Token ids: 0 is the CTC blank (also used as padding), 1 is sentence start/end, 2 is unknown.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from typing import Iterable

BLANK, SOS_EOS, UNK = 0, 1, 2
N_SPECIAL = 3

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
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
    if len(whole) > 15:  # a serial number, not a quantity
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


def normalize(text: str) -> str:
    """The one text normalizer for targets, references and hypotheses (see module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = text.replace("%", " percent ").replace("&", " and ")
    text = _NUMBER.sub(_number_match, text)
    text = re.sub(r"[^a-z']+", " ", text)
    # keep apostrophes only between letters: "don't" stays, "'hello'" -> "hello"
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)
    return " ".join(text.split())


# --------------------------------------------------------------------------- tokenizers


class CharTokenizer:
    """One token per character of the normalized text (space included)."""

    kind = "char"

    def __init__(self, symbols: list[str]):
        self.symbols = list(symbols)
        self._index = {s: i + N_SPECIAL for i, s in enumerate(self.symbols)}

    @classmethod
    def train(cls, texts: Iterable[str]) -> "CharTokenizer":
        chars = set()
        for t in texts:
            chars.update(normalize(t))
        return cls(sorted(chars))

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + len(self.symbols)

    def encode(self, text: str) -> list[int]:
        return [self._index.get(c, UNK) for c in normalize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        out = [self.symbols[i - N_SPECIAL] for i in ids if i >= N_SPECIAL and i - N_SPECIAL < len(self.symbols)]
        return " ".join("".join(out).split())

    def piece(self, i: int) -> str:
        """The text of one token ("" for special ids); a word starts after a space."""
        return self.symbols[i - N_SPECIAL] if N_SPECIAL <= i < self.vocab_size else ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "symbols": self.symbols}


class BPETokenizer:
    """SentencePiece BPE on normalized text; SentencePiece id k is our id k + 2 (its unk is our UNK)."""

    kind = "bpe"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> "BPETokenizer":
        import io

        import sentencepiece as spm

        sentences = [normalize(t) for t in texts]
        sentences = [s for s in sentences if s]
        if not sentences:
            raise ValueError("cannot train a BPE tokenizer on empty text")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
            model_type="bpe", character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
            # hard_vocab_limit=False: a small corpus gets a smaller vocabulary instead of an error
            hard_vocab_limit=False, minloglevel=2, num_threads=1,
            input_sentence_size=2_000_000, shuffle_input_sentence=True,
            vocabulary_output_piece_score=True,
        )
        return cls(model.getvalue())

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size() + N_SPECIAL - 1

    def encode(self, text: str) -> list[int]:
        return [i + N_SPECIAL - 1 for i in self.sp.encode(normalize(text))]

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [i - (N_SPECIAL - 1) for i in ids if i >= N_SPECIAL]
        return " ".join(self.sp.decode(pieces).split())

    def piece(self, i: int) -> str:
        """The text of one token ("" for special ids), a leading space where it starts a word."""
        return self.sp.id_to_piece(i - (N_SPECIAL - 1)).replace("\u2581", " ") if N_SPECIAL <= i < self.vocab_size else ""

    def to_dict(self) -> dict:
        # base64 text keeps the exported model loadable with torch.load(weights_only=True)
        return {"kind": self.kind, "model": base64.b64encode(self.model_proto).decode("ascii")}


Tokenizer = CharTokenizer | BPETokenizer


def tokenizer_from_dict(d: dict) -> Tokenizer:
    if d["kind"] == "char":
        return CharTokenizer(d["symbols"])
    if d["kind"] == "bpe":
        return BPETokenizer(base64.b64decode(d["model"]))
    raise ValueError(f"unknown tokenizer kind {d['kind']!r}")


def train_tokenizer(kind: str, texts: list[str], vocab_size: int = 256) -> Tokenizer:
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "bpe":
        return BPETokenizer.train(texts, vocab_size)
    raise ValueError(f"tokenizer.kind must be 'char' or 'bpe', not {kind!r}")
