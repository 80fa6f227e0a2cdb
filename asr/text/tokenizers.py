"""Text normalization and tokenizers (characters, SentencePiece BPE, Whisper's byte-level BPE).

`normalize` is applied identically to training targets, WER references and hypotheses:

1. Unicode NFKC; accents removed (cafe for café); lowercase.
2. Numbers become words: "42" -> "forty two", "3.5" -> "three point five", "1st" -> "first",
   "1,000" -> "one thousand", "1990s" -> "one thousand nine hundred nineties", "mp3" -> "mp three"
   (digits glued to letters are read, not dropped), "%" -> "percent", "&" -> "and".
   Clock times, money and phone numbers are read as people say them: "5:30" -> "five thirty",
   "5:05" -> "five oh five", "5:00" -> "five"; "$12.50" -> "twelve dollars and fifty cents"
   (also euros and pounds); "555-0123" -> "five five five zero one two three"; digit strings with
   a leading zero are read digit by digit ("007" -> "zero zero seven").
3. Apostrophes inside words are kept ("don't", "o'clock"); typographic quotes become "'";
   quotes at the edges of words are dropped.
4. Every other character that is not a-z becomes a space (so "well-known" -> "well known").
5. Runs of spaces collapse to one; leading and trailing spaces are removed.

Our tokenizers train on, and decode to, one of two forms of the transcript (their `text`):
"normalized" (the above; the default, and what a model file without the field means) or "display"
(`display_clean`: case, punctuation and digits kept). WER is computed on `normalize` of both sides
either way. A tokenizer of another language than English (its `language`, "en" unless a model file
says otherwise) normalizes with `normalize_any` instead (accents and every script's letters kept),
and its models report that language.

Token ids: 0 is the CTC blank (also used as padding), 1 is sentence start/end, 2 is unknown.
`WhisperTokenizer` keeps Whisper's own ids instead: text below `eot`, special tokens from it on.
"""

from __future__ import annotations

import base64
from typing import Iterable

from asr.text.normalize import TEXT_FORMS, display_clean, normalizer

BLANK, SOS_EOS, UNK = 0, 1, 2
N_SPECIAL = 3
# how our own tokenizers' models decode (asr.decode.options.Rules): start and end at SOS_EOS, never the CTC blank
OWN_RULES = {"prompt": (SOS_EOS,), "eos": SOS_EOS, "suppress": (BLANK,), "suppress_at_start": ()}


def _text_former(text: str, language: str = "en"):
    """The function that makes a transcript into a tokenizer's training form (normalized: the
    normalizer of the transcripts' `language`, `asr.text.normalize.normalizer`)."""
    if text not in TEXT_FORMS:
        raise ValueError(f"tokenizer text must be 'normalized' or 'display', not {text!r}")
    return normalizer(language) if text == "normalized" else display_clean


def _own_rules(language: str) -> dict:
    """Decoding rules of our own models: a model of another language than English says which."""
    return OWN_RULES if language == "en" else OWN_RULES | {"speaks": language}


def _language_field(language: str) -> dict:
    return {} if language == "en" else {"language": language}  # English model files stay as they were


# --------------------------------------------------------------------------- tokenizers


class Letters:
    """The alphabet of a CTC head that spells while its decoder speaks other tokens (`model.ctc_vocab:
    letters`): Whisper's 51,864 byte-level tokens would make a head that costs more than the tiny
    encoder itself on short clips; 29 symbols cost nothing. A transcript is spelled as `normalize`
    writes it (lowercase a-z, apostrophes, single spaces; numbers as words), id 0 is the blank."""

    symbols = "_ '" + "abcdefghijklmnopqrstuvwxyz"  # "_": the blank
    blank = BLANK
    size = len(symbols)
    _ids = {c: i for i, c in enumerate(symbols) if i != BLANK}
    space = _ids[" "]

    def encode(self, text: str) -> list[int]:
        return [self._ids[c] for c in normalizer("en")(text) if c in self._ids]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.symbols[i] for i in ids if 0 < i < self.size)


LETTERS = Letters()


class _Own:
    """What our own tokenizers share: their decoding rules, CTC blank and training targets."""

    language: str
    ctc_blank = BLANK

    def decoding_rules(self) -> dict:
        return _own_rules(self.language)

    def encode_transcript(self, text: str) -> list[int]:
        """Training targets: the transcript's ids (its normalized or display form)."""
        return self.encode(text)


class CharTokenizer(_Own):
    """One token per character of the normalized (or display) text, space included."""

    kind = "char"

    def __init__(self, symbols: list[str], text: str = "normalized", language: str = "en"):
        self.symbols = list(symbols)
        self._index = {s: i + N_SPECIAL for i, s in enumerate(self.symbols)}
        self.text, self.language, self.form = text, language, _text_former(text, language)

    @classmethod
    def train(cls, texts: Iterable[str], text: str = "normalized", language: str = "en") -> "CharTokenizer":
        form, chars = _text_former(text, language), set()
        for t in texts:
            chars.update(form(t))
        return cls(sorted(chars), text, language)

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + len(self.symbols)

    def encode(self, text: str) -> list[int]:
        return [self._index.get(c, UNK) for c in self.form(text)]

    def decode(self, ids: Iterable[int]) -> str:
        out = [self.symbols[i - N_SPECIAL] for i in ids if i >= N_SPECIAL and i - N_SPECIAL < len(self.symbols)]
        return " ".join("".join(out).split())

    def piece(self, i: int) -> str:
        """The text of one token ("" for special ids); a word starts after a space."""
        return self.symbols[i - N_SPECIAL] if N_SPECIAL <= i < self.vocab_size else ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "symbols": self.symbols, "text": self.text, **_language_field(self.language)}


class BPETokenizer(_Own):
    """SentencePiece BPE on normalized (or display) text; SentencePiece id k is our id k + 2 (its unk is our UNK)."""

    kind = "bpe"

    def __init__(self, model_proto: bytes, text: str = "normalized", language: str = "en"):
        import sentencepiece as spm

        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.text, self.language, self.form = text, language, _text_former(text, language)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, text: str = "normalized",
              language: str = "en") -> "BPETokenizer":
        import io

        import sentencepiece as spm

        form = _text_former(text, language)
        sentences = [form(t) for t in texts]
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
            # display text is NFKC already (display_clean); SentencePiece's own rule would rewrite some of it
            normalization_rule_name="nmt_nfkc" if text == "normalized" else "identity",
        )
        return cls(model.getvalue(), text, language)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size() + N_SPECIAL - 1

    def encode(self, text: str) -> list[int]:
        return [i + N_SPECIAL - 1 for i in self.sp.encode(self.form(text))]

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [i - (N_SPECIAL - 1) for i in ids if i >= N_SPECIAL]
        return " ".join(self.sp.decode(pieces).split())

    def piece(self, i: int) -> str:
        """The text of one token ("" for special ids), a leading space where it starts a word."""
        return (
            self.sp.id_to_piece(i - (N_SPECIAL - 1)).replace("\u2581", " ") if N_SPECIAL <= i < self.vocab_size else ""
        )

    def to_dict(self) -> dict:
        # base64 text keeps the exported model loadable with torch.load(weights_only=True)
        return {"kind": self.kind, "model": base64.b64encode(self.model_proto).decode("ascii"), "text": self.text,
                **_language_field(self.language)}


class WhisperTokenizer:
    """An imported Whisper model's byte-level BPE (a Hugging Face tokenizer.json) and its special tokens.

    Ids are Whisper's own: text tokens below `eot`, then <|startoftranscript|>, language tokens,
    task tokens, <|notimestamps|> and timestamp tokens (those are beyond tokenizer.json: `n_vocab`
    counts them). Decoding starts from `prompt` and ends at `eot`; `suppress_tokens` are never
    emitted and `suppress_at_begin` not as the first token (openai-whisper's SuppressTokens and
    SuppressBlank). Text is encoded as given (display text), not normalized.
    """

    kind = "whisper"
    text = "display"  # what it trains on and decodes to

    def __init__(self, tokenizer_json: str, n_vocab: int, multilingual: bool, language: str = "en",
                 task: str = "transcribe", suppress_tokens: Iterable[int] | None = None,
                 suppress_at_begin: Iterable[int] | None = None):
        from tokenizers import Tokenizer as HFTokenizer

        self.json, self.n_vocab, self.multilingual = tokenizer_json, n_vocab, multilingual
        self.tk = HFTokenizer.from_str(tokenizer_json)
        self.eot, self.sot = self._id("<|endoftext|>"), self._id("<|startoftranscript|>")
        self.translate, self.transcribe = self._id("<|translate|>"), self._id("<|transcribe|>")
        self.sot_lm, self.sot_prev = self._id("<|startoflm|>"), self._id("<|startofprev|>")
        self.no_timestamps = self._id("<|notimestamps|>")
        self.no_speech = self.tk.token_to_id("<|nospeech|>") or self._id("<|nocaptions|>")  # renamed in large-v3
        self.timestamp_begin = self.no_timestamps + 1  # <|0.00|>, then 20 ms steps
        self.language, self.task = language, task
        self.sot_sequence = [self.sot]
        if multilingual:
            self.sot_sequence += [self.language_token(language), self._id(f"<|{task}|>")]
        # config.json's lists (Hugging Face's suppress_tokens) or, without one, Whisper's rule for "-1"
        base = self.non_speech_tokens() if suppress_tokens is None else list(suppress_tokens)
        specials = [self.transcribe, self.translate, self.sot, self.sot_prev, self.sot_lm, self.no_speech]
        self.suppress_tokens = sorted(set(base) | set(specials))
        self.suppress_at_begin = sorted(set(suppress_at_begin if suppress_at_begin is not None
                                            else self.encode(" ") + [self.eot]))

    def _id(self, token: str) -> int:
        i = self.tk.token_to_id(token)
        if i is None:
            raise ValueError(f"tokenizer.json has no {token} token: not a Whisper tokenizer")
        return i

    @property
    def vocab_size(self) -> int:
        return self.n_vocab

    @property
    def prompt(self) -> list[int]:
        """What decoding starts from: the start-of-transcript sequence, then <|notimestamps|>."""
        return self.sot_sequence + [self.no_timestamps]

    def language_token(self, code: str) -> int:
        i = self.tk.token_to_id(f"<|{code}|>")
        if i is None or not self.sot < i < self.translate:
            raise ValueError(f"{code!r} is not one of this Whisper tokenizer's languages")
        return i

    def non_speech_tokens(self) -> list[int]:
        """Tokens of symbols that are not speech (openai-whisper's `Tokenizer.non_speech_tokens`):
        speaker tags, brackets, music notes; a symbol's first token when it takes several."""
        symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
        miscellaneous = set("♩♪♫♬♭♮♯")
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in symbols + sorted(miscellaneous):
            for tokens in (self.encode(symbol), self.encode(" " + symbol)):
                if len(tokens) == 1 or symbol in miscellaneous:
                    result.add(tokens[0])
        return sorted(result)

    def encode(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Display text of the text tokens among `ids` (special and timestamp tokens are skipped)."""
        return self.tk.decode([i for i in ids if i < self.eot]).strip()

    def piece(self, i: int) -> str:
        """The text of one token ("" for special ids), a leading space where it starts a word."""
        return self.tk.decode([i]) if 0 <= i < self.eot else ""

    @property
    def ctc_blank(self) -> int:
        """A CTC head trained on a Whisper model uses <|nospeech|> as its blank: never a transcript token."""
        return self.no_speech

    def encode_transcript(self, text: str) -> list[int]:
        """Training targets as Whisper saw them: display text after a leading space."""
        return self.encode(" " + text.strip())

    def decoding_rules(self) -> dict:
        """For asr.decode.options.Rules: Whisper's prompt, end token, suppressed tokens, no-speech token,
        its first timestamp token (decoding with timestamps drops <|notimestamps|> from the prompt),
        <|startofprev|> (text prompts), and a multilingual model's language and task tokens."""
        rules = {"prompt": tuple(self.prompt), "eos": self.eot, "suppress": tuple(self.suppress_tokens),
                 "suppress_at_start": tuple(self.suppress_at_begin), "no_speech": self.no_speech,
                 "blank": self.ctc_blank, "timestamp_begin": self.timestamp_begin, "previous": self.sot_prev}
        if self.multilingual:
            rules |= {"languages": self.languages, "language_begin": self.sot + 1,
                      "tasks": (self.transcribe, self.translate)}
        return rules

    @property
    def languages(self) -> tuple[str, ...]:
        """The language codes a multilingual model knows, in the order of their tokens (none: English only)."""
        if not self.multilingual:
            return ()
        return tuple(self.tk.id_to_token(i)[2:-2] for i in range(self.sot + 1, self.translate))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "json": self.json, "n_vocab": self.n_vocab, "multilingual": self.multilingual,
                "language": self.language, "task": self.task, "suppress_tokens": self.suppress_tokens,
                "suppress_at_begin": self.suppress_at_begin}


Tokenizer = CharTokenizer | BPETokenizer | WhisperTokenizer


def tokenizer_from_dict(d: dict) -> Tokenizer:
    # model files from before display targets have no "text": they were trained on normalized text
    if d["kind"] == "char":
        return CharTokenizer(d["symbols"], d.get("text", "normalized"), d.get("language", "en"))
    if d["kind"] == "bpe":
        return BPETokenizer(base64.b64decode(d["model"]), d.get("text", "normalized"), d.get("language", "en"))
    if d["kind"] == "whisper":
        return WhisperTokenizer(d["json"], d["n_vocab"], d["multilingual"], d["language"], d["task"],
                                d["suppress_tokens"], d["suppress_at_begin"])
    raise ValueError(f"unknown tokenizer kind {d['kind']!r}")


def train_tokenizer(kind: str, texts: list[str], vocab_size: int = 256, text: str = "normalized",
                    language: str = "en") -> Tokenizer:
    if kind == "char":
        return CharTokenizer.train(texts, text, language)
    if kind == "bpe":
        return BPETokenizer.train(texts, vocab_size, text, language)
    raise ValueError(f"tokenizer.kind must be 'char' or 'bpe', not {kind!r}")
