"""A transcript's tokens + the audio's encoding -> words with times: CTC forced alignment, or
cross-attention (Whisper's) for models without a CTC head.

    words_from_alignment(rec, tokens, ctc_logits, start) -> [Word, ...] or None
    words_from_letters(rec, tokens, ctc_logits, start) -> [Word, ...] or None
    words_from_attention(rec, tokens, memory, audio_seconds, start) -> [Word, ...]

openai-whisper's `timing.find_alignment`: one teacher-forced decoder pass over prompt + tokens +
end returns the cross-attention logits of the model's alignment heads (`ModelConfig.
alignment_heads`, decoder layer and head pairs that follow the audio); softmax over the frames
that hold audio, each head normalized per frame (mean 0, std 1), a width-7 median filter over
time, averaged over heads; dynamic time warping over -attention pairs each token with a run of
frames, and a word starts at the first frame of its first token and ends where the next word
starts. Models with a CTC head get word times from CTC forced alignment instead (of their
tokens, or of each word's letters where the head spells).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from asr.decode.ctc import align_tokens
from asr.model.recognizer import Recognizer
from asr.results import Word
from asr.text.tokenizers import LETTERS

MEDIAN_WIDTH = 7
PUNCTUATION_AFTER = set("\"'.。,，!！?？:：”)]}、")  # attached to the word before (Whisper's append_punctuations)


def median_filter(x: Tensor, width: int) -> Tensor:
    """Median over the last axis in a window of `width` (odd), edges reflected (as Whisper)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    shape = x.shape
    y = F.pad(x.reshape(-1, 1, shape[-1]), (pad, pad), mode="reflect")
    return y.unfold(-1, width, 1).median(-1).values.reshape(shape)


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic path through (N, M) `cost` from (0, 0) to (N-1, M-1), least total cost: the row and
    column of each step. Each row's recursion c[j] = x[j] + min(a[j], c[j-1]) is solved as a
    running minimum (c = S + cummin(a - S_before)), so only the N rows loop in Python."""
    N, M = cost.shape
    acc = np.full((N + 1, M + 1), np.inf)
    acc[0, 0] = 0.0
    trace = np.zeros((N + 1, M + 1), np.int8)  # 0 diagonal, 1 from above, 2 from the left
    for i in range(1, N + 1):
        diag, up = acc[i - 1, :-1], acc[i - 1, 1:]
        a = np.minimum(diag, up)  # best entry into column j from the row above
        x = cost[i - 1].astype(np.float64)
        s = np.cumsum(x)
        row = s + np.minimum.accumulate(a - np.concatenate([[0.0], s[:-1]]))
        acc[i, 1:] = row
        left = np.concatenate([[np.inf], row[:-1]])
        trace[i, 1:] = np.where(left < a, 2, np.where(diag <= up, 0, 1))
    i, j, path = N, M, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        t = trace[i, j]
        i, j = (i - 1, j - 1) if t == 0 else (i - 1, j) if t == 1 else (i, j - 1)
    rows, cols = np.array(path[::-1]).T
    return rows, cols


@torch.no_grad()
def attention_matrix(rec: Recognizer, tokens: list[int], memory: Tensor, frames: int) -> tuple[Tensor, Tensor]:
    """(len(tokens) + 1, frames) alignment-head attention of each position that predicts a text
    token or the end, over the first `frames` encoder frames (one utterance's memory (T', D));
    and the log probability of each token, from the same teacher-forced pass."""
    rules = rec.tokenizer.decoding_rules()
    prompt = list(rules["prompt"])
    seq = torch.tensor([prompt + tokens + [rules["eos"]]], device=memory.device)
    qk: list[Tensor] = []
    logits = rec.model.decoder(seq, memory[None], torch.tensor([memory.shape[0]], device=memory.device), cross_qk=qk)
    logprobs = logits[0, len(prompt) - 1 : -1].float().log_softmax(-1).gather(1, seq[0, len(prompt):, None])[:, 0]
    heads = rec.cfg.model.alignment_heads
    w = torch.stack([qk[layer][0, head] for layer, head in heads])[:, :, :frames].float()  # (H, L, frames)
    w = w.softmax(-1)
    std, mean = torch.std_mean(w, dim=-2, keepdim=True, unbiased=False)
    w = median_filter((w - mean) / std.clamp(min=1e-10), MEDIAN_WIDTH)
    return w.mean(0)[len(prompt) - 1 : -1], logprobs  # positions that predict tokens[0] ... the end token


def split_words(rec: Recognizer, tokens: list[int]) -> list[tuple[str, list[int]]]:
    """Tokens -> (word, its token indices): a word starts at a token with a leading space (or
    after a lone space token); punctuation tokens join the word before."""
    words: list[tuple[str, list[int]]] = []
    spaced = False
    for k, t in enumerate(tokens):
        piece = rec.tokenizer.piece(t)
        if spaced:
            piece, spaced = " " + piece.lstrip(), False
        if not piece.strip():
            spaced = piece != ""
            continue
        if words and (not piece.startswith(" ") or piece.strip() in PUNCTUATION_AFTER):
            words[-1] = (words[-1][0] + piece.strip() if piece.startswith(" ") else words[-1][0] + piece,
                         words[-1][1] + [k])
        else:
            words.append((piece.strip(), [k]))
    return words


def words_from_attention(rec: Recognizer, tokens: list[int], memory: Tensor, audio_seconds: float,
                         start: float) -> list[Word] | None:
    """Word times (seconds into the recording) of a segment's transcript; None without alignment heads."""
    heads = rec.cfg.model.alignment_heads
    if not heads or not tokens:
        return None if not heads else []
    fs = rec.frame_seconds
    frames = max(1, min(memory.shape[0], round(audio_seconds / fs)))
    matrix, logprobs = attention_matrix(rec, tokens, memory, frames)
    rows, cols = dtw(-matrix.cpu().numpy())
    first = np.pad(np.diff(rows), (1, 0), constant_values=1).astype(bool)  # each row's first frame
    times = cols[first] * fs  # (len(tokens) + 1,): when each token (and the end) begins
    out = []
    for text, idx in split_words(rec, tokens):
        begin, end = times[idx[0]], times[idx[-1] + 1]
        score = float(logprobs[idx].mean())  # mean log probability of its tokens
        out.append(Word(text, start + float(begin), start + float(max(end, begin)), score))
    return out


def words_from_letters(rec: Recognizer, tokens: list[int], ctc_logits: torch.Tensor, start: float) -> list[Word] | None:
    """Word times from a CTC head that spells (`model.ctc_vocab: letters`): each word of the
    transcript (`split_words`) spelled as the normalizer writes it, the letters of all of them
    aligned at once with a space between words; a word spans its letters' frames. A word with no
    letters ("&", a dash) is placed where the word before it ended. None if it cannot be aligned."""
    words = split_words(rec, tokens)
    seq: list[int] = []
    owner: list[int] = []
    for i, (text, _) in enumerate(words):
        letters = LETTERS.encode(text)
        if letters and seq:
            seq.append(LETTERS.space)
            owner.append(-1)
        seq += letters
        owner += [i] * len(letters)
    spans = align_tokens(ctc_logits, seq, LETTERS.blank)
    if spans is None or len(spans) != len(seq):
        return None
    frames: dict[int, list] = {}
    for span, i in zip(spans, owner):
        if i >= 0:
            frames.setdefault(i, []).append(span)
    fs, out, at = rec.frame_seconds, [], 0
    for i, (text, _) in enumerate(words):
        mine = frames.get(i, [])
        begin, at = (mine[0].start, mine[-1].end) if mine else (at, at)
        score = float(np.mean([s.score for s in mine])) if mine else 0.0
        out.append(Word(text, start + begin * fs, start + at * fs, score))
    return out


def words_from_alignment(
    rec: Recognizer, tokens: list[int], ctc_logits: torch.Tensor, start: float
) -> list[Word] | None:
    """Word times from the CTC forced alignment of a transcript (None if it cannot be aligned)."""
    spans = align_tokens(ctc_logits, tokens, rec.tokenizer.ctc_blank)
    if spans is None:
        return None
    fs = rec.frame_seconds
    words: list[Word] = []
    scores: list[float] = []
    for span in spans:
        piece = rec.tokenizer.piece(span.token)
        if piece.startswith(" ") or not words:
            if words:
                words[-1].score = float(np.mean(scores))
            text = piece.strip()
            if not text:  # a lone space (character tokenizer): the next token starts the word
                continue
            words.append(Word(text, start + span.start * fs, start + span.end * fs, 0.0))
            scores = [span.score]
        else:
            words[-1].text += piece
            words[-1].end = start + span.end * fs
            scores.append(span.score)
    if words:
        words[-1].score = float(np.mean(scores))
    return words
