"""Word and character error counts with jiwer.

Corpus WER is total word edits / total reference words (not a mean of per-utterance rates).
Both sides go through `asr.text.normalize` here (it leaves normalized text as it is), so case,
punctuation and digits are never errors, whatever form a model writes (normalized or display);
text in another language goes through `normalize_any` (every script's letters kept), and for
languages written without spaces a "word" is a character (`NO_SPACES`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer

from asr.text.normalize import NO_SPACES, normalizer


@dataclass
class Counts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    words: int = 0  # reference words

    @property
    def edits(self) -> int:
        return self.substitutions + self.deletions + self.insertions


def word_counts(ref: str, hyp: str, language: str | None = None) -> Counts:
    """Edit counts of one (ref, hyp) pair, both normalized for `language` (None: English); an empty
    reference makes every word an insertion. Without spaces between words, characters count."""
    norm = normalizer(language)
    ref, hyp = norm(ref), norm(hyp)
    if language in NO_SPACES:
        ref, hyp = " ".join(ref.replace(" ", "")), " ".join(hyp.replace(" ", ""))
    if not ref.split():
        return Counts(insertions=len(hyp.split()))
    if not hyp.split():
        return Counts(deletions=len(ref.split()), words=len(ref.split()))
    o = jiwer.process_words(ref, hyp)
    return Counts(o.substitutions, o.deletions, o.insertions, o.substitutions + o.deletions + o.hits)


def char_counts(ref: str, hyp: str, language: str | None = None) -> tuple[int, int]:
    """(character edits, reference characters) of the pair normalized for `language`."""
    norm = normalizer(language)
    ref, hyp = norm(ref), norm(hyp)
    if not ref:
        return len(hyp), 0
    if not hyp:
        return len(ref), len(ref)
    o = jiwer.process_characters(ref, hyp)
    return o.substitutions + o.deletions + o.insertions, o.substitutions + o.deletions + o.hits


def error_counts(refs: list[str], hyps: list[str], language: str | None = None) -> tuple[int, int]:
    """(total word edits, total reference words) over a list of (ref, hyp) pairs in `language`."""
    counts = [word_counts(r, h, language) for r, h in zip(refs, hyps)]
    return sum(c.edits for c in counts), sum(c.words for c in counts)
