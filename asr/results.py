"""What recognition returns, from one search hypothesis up to one file's transcript.

    Hypothesis   one transcript the search found for one segment: tokens, text, scores
    Word         a word with its times (CTC alignment or the attention alignment)
    SegmentText  one decoded segment of a recording: times, text, words, alternatives
    Result       one input file (or slice): its segments and text, or why it failed

Plain dataclasses with no behaviour beyond a little bookkeeping: the writers turn them into
text, JSON and subtitles, and the Python API hands them to users.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Hypothesis:
    tokens: list[int]  # without the prompt and the end token
    score: float  # what hypotheses are ranked by: log_prob / (tokens + 1) ** length_penalty
    log_prob: float  # the weighted sum of the scorers' log probabilities, end token included
    text: str = ""  # the tokens as display text (filled in by the search)
    no_speech_prob: float | None = None  # Whisper's P(<|nospeech|>) for the segment (models that have one)
    ctc_logprob: float | None = None  # the CTC head's log P(tokens | audio) per token, end included (models with one)
    rejected: str | None = None  # why the search found no speech in the segment (babble, ...); the text is then empty
    language: str | None = None  # the language it was decoded in (multilingual models: detected or forced)
    language_probability: float | None = None  # the detector's probability of that language (detected only)


@dataclass
class Word:
    text: str
    start: float  # seconds into the recording
    end: float
    score: float  # mean log probability of its frames (CTC alignment) or of its tokens (attention alignment)


@dataclass
class SegmentText:
    start: float
    end: float
    text: str
    score: float = float("nan")  # the search's score of the transcript
    words: list[Word] | None = None  # with times, where aligned
    overlap: float = 0.0
    alternatives: list[tuple[str, float]] | None = None  # (text, score) of the next best, with n_best > 1
    no_speech_prob: float | None = None  # Whisper's probability that the segment holds no speech
    speech_prob: float | None = None  # the voice activity detector's mean speech probability (silero)
    ctc_logprob: float | None = None  # the CTC head's log probability of the text per token (models with one)
    rejected: str | None = None  # why the search found no speech here: such a segment is left out of Result.segments
    language: str | None = None  # multilingual models: the language it was decoded in
    language_probability: float | None = None  # ... and the detector's probability of it (when detected)


@dataclass
class Result:
    path: str
    text: str | None = None
    duration: float = 0.0
    error: str | None = None  # why the file could not be transcribed
    segments: list[SegmentText] = field(default_factory=list)
    # multilingual models: the language of most of the speech (by duration), and its mean probability there
    language: str | None = None
    language_probability: float | None = None
    # segments the detector passed but the search found no speech in (babble, reversed speech): not in text
    rejected: list[SegmentText] = field(default_factory=list)
