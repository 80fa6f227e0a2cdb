"""A model's config + the caller's overrides -> the decode options and rules every search reads.

    options = DecodeOptions.from_config(rec.cfg, beam_size=5)   # settled once, at the edge
    rules = Rules.of(rec.tokenizer.decoding_rules())          # the model's prompt, end, suppressed

One set for every runtime: the torch search (`asr.decode.task.Search`) and the ONNX Runtime search
(`asr.onnx.search`) read the same frozen objects. Nothing here imports torch. The defaults live here
once; a model file's `decode` section (`asr.config.DecodeConfig`) is these fields plus how
transcription cuts audio into segments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from asr.text.tokenizers import BLANK, SOS_EOS

TASKS = ("transcribe", "translate")
AUTO = (None, "auto")  # language values that ask for detection
MAX_PROMPT_TOKENS = 223  # Whisper's: half its text context, less the <|startofprev|> token


@dataclass(frozen=True)
class DecodeOptions:
    """How to search: beam, scorer weights, length rules, and the guards against loops and non-speech."""

    beam_size: int = 5  # 1 with no CTC, LM, n-gram ban or hotwords = greedy
    # weight of CTC prefix scores (the decoder gets 1 - ctc_weight); 1: the CTC head alone, no decoder pass (its
    # best path with beam 1, its prefix beam search wider)
    ctc_weight: float = 0.3
    lm: str | None = None  # an n-gram LM (ARPA over the model's tokens, `asr lm`) for shallow fusion
    lm_weight: float = 0.4  # weight of the LM's log probabilities when one is given
    length_penalty: float = 1.0  # hypotheses ranked by log prob / (tokens + 1) ** length_penalty
    n_best: int = 1
    max_len_ratio: float = 1.5  # max output tokens per encoder frame (plus a few)
    ctc_length_guard: bool = True  # cap outputs near the CTC best path's length; empty where CTC hears nothing
    pre_beam: float = 1.5  # decoder candidates per hypothesis that CTC scores: pre_beam x beam_size
    use_cache: bool = True  # False recomputes every prefix (the reference the cache must match)
    # Guards for models without CTC (Whisper's; the imported config sets them, None = off):
    patience: float | None = None  # stop at round(beam_size * patience) finished hypotheses; None: exact end detection
    compression_ratio_threshold: float | None = None  # gzip ratio of a text above this = a loop: decode it again
    # Segments with no speech the detector let through (babble, reversed speech; None = off): the text is
    # emptied and `Hypothesis.rejected` says why (transcription then leaves the segment out)
    no_speech_threshold: float | None = None  # P(<|nospeech|>) above this, and avg log prob below
    logprob_threshold: float = -1.0  # ... this: no speech (Whisper's rule)
    min_ctc_logprob: float | None = None  # the CTC head's log P(text | audio) per token below this: no speech
    # ... at least this: speech, whatever Whisper's rule says (a short real utterance it would empty is kept)
    ctc_speech_logprob: float | None = None
    # the audio played backwards reads better than this much (log prob per token): no speech (speech played
    # backwards); None or inf = off (recipes/benchmarks/README.md, Non-speech, measures the default)
    reversed_margin: float | None = 0.0
    reversed_check_below: float | None = None  # ... checked only where `plausibility` is below this (None: all)
    # ... and only segments at least this long: a word or two reads about as well backwards as forwards
    reversed_check_min_seconds: float = 0.0
    no_repeat_ngram: int = 0  # >0: never repeat an n-gram of this many tokens (the loop guard's second try)
    # Whisper: predict timestamp tokens between the utterances of a window (its long-form mode; they never
    # reach the text) instead of starting from <|notimestamps|>; a model without them: an error
    timestamps: bool = False
    # Multilingual Whisper: the language of the speech ("auto" or None: detected per segment from the
    # language-token distribution, Whisper's way; "fr": forced); other models speak English only
    language: str | None = None
    task: str = "transcribe"  # "translate": any language -> English text (multilingual Whisper)
    prompt: str | None = None  # Whisper: text said before (names, spellings, style the transcript should follow)
    # names and jargon to favour, comma-separated: each token that continues one earns hotword_weight (log
    # probability), taken back if the word is left unfinished (asr.decode.hotwords; beam search, any model)
    hotwords: str | None = None
    hotword_weight: float = 2.0
    # models trained with model.dynamic_chunk: chunked attention in the encoder, this many encoder frames
    # (40 ms each) a chunk, as when streaming (16: 640 ms); 0: full context
    chunk: int = 0

    @classmethod
    def from_config(cls, cfg: Any, **overrides) -> DecodeOptions:
        """A model's `Config`: its decode section (CTC weight None = the training's `optim.ctc_weight`),
        then `overrides` (None = keep). An unknown name or a value out of range is a ValueError
        here, not at the first batch."""
        cls._known(overrides)
        d = cfg.decode
        values = {f.name: getattr(d, f.name) for f in dataclasses.fields(cls)}
        values["ctc_weight"] = cfg.optim.ctc_weight if d.ctc_weight is None else d.ctc_weight
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).checked()

    def replaced(self, **overrides) -> DecodeOptions:
        """These options with `overrides` (None = keep), checked like `from_config`'s."""
        self._known(overrides)
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None}).checked()

    @classmethod
    def _known(cls, overrides: dict) -> None:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown decode option(s): {', '.join(unknown)}")

    @property
    def greedy(self) -> bool:
        """The most likely token at every step is the search: one hypothesis, one scorer."""
        no_lm = self.lm is None or self.lm_weight == 0
        return self.beam_size == 1 and self.ctc_weight == 0 and no_lm and not self.no_repeat_ngram and not self.hotwords

    @property
    def ctc_only(self) -> bool:
        """The CTC head alone is the search (no decoder pass): all weight on CTC."""
        return self.ctc_weight == 1.0

    def checked(self) -> DecodeOptions:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.beam_size < 1 or self.n_best < 1:
            raise ValueError(f"beam_size and n_best must be at least 1 (got {self.beam_size}, {self.n_best})")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], not {self.ctc_weight}")
        if self.lm_weight < 0 or self.hotword_weight < 0 or self.max_len_ratio <= 0 or self.pre_beam < 1:
            raise ValueError("lm_weight and hotword_weight must be >= 0, max_len_ratio > 0 and pre_beam >= 1")
        if self.patience is not None and self.patience <= 0 or self.no_repeat_ngram < 0 or self.chunk < 0:
            raise ValueError(f"patience must be > 0 (got {self.patience}), no_repeat_ngram and chunk >= 0")
        if self.no_speech_threshold is not None and not 0.0 <= self.no_speech_threshold <= 1.0:
            raise ValueError(f"no_speech_threshold must be in [0, 1], not {self.no_speech_threshold}")
        if self.reversed_margin is not None and self.reversed_margin < 0:
            raise ValueError(f"reversed_margin must be >= 0, not {self.reversed_margin}")
        if self.reversed_check_min_seconds < 0:
            raise ValueError(f"reversed_check_min_seconds must be >= 0, not {self.reversed_check_min_seconds}")
        logprobs = (self.logprob_threshold, self.min_ctc_logprob, self.ctc_speech_logprob)
        if any(x is not None and x > 0 for x in logprobs):
            raise ValueError("logprob_threshold, min_ctc_logprob and ctc_speech_logprob are log probabilities: "
                             f"at most 0 (got {', '.join(map(str, logprobs))})")
        return self


@dataclass(frozen=True)
class TimestampRules:
    """Whisper's timestamp grammar (openai-whisper's ApplyTimestampRules), as a logit filter
    (`asr.decode.scorers.apply_timestamp_rules`): the output opens with a timestamp (within
    `max_initial` steps of the start); each utterance's text stands between an opening and a
    closing timestamp (after an opening one comes text, after a closing one the next opening one
    or the end); timestamps never go back in time; and where the timestamps together are likelier
    than any single other token, a timestamp it is. In a window of many utterances they keep the
    decoder's place: without them tiny.en skips whole utterances of a 25-30 s window."""

    begin: int  # <|0.00|>; one id per 20 ms above it
    eot: int
    max_initial: int  # steps of 20 ms: openai-whisper's max_initial_timestamp, 1 s
    suppress: tuple[int, ...] = ()  # never emitted: out before the rule weighs timestamps against text


@dataclass(frozen=True)
class Rules:
    """A model's decoding conventions, from its tokenizer (`decoding_rules()`, also in an ONNX export's model.json)."""

    prompt: tuple[int, ...] = (SOS_EOS,)  # what the decoder is fed before the first output token
    eos: int = SOS_EOS
    suppress: tuple[int, ...] = (BLANK,)  # never emitted (our CTC blank; Whisper's special tokens)
    suppress_at_start: tuple[int, ...] = ()  # not as the first token (Whisper: a blank space, end)
    no_speech: int | None = None  # Whisper's <|nospeech|>: its probability after the start token says "silence"
    blank: int = BLANK  # the CTC head's blank (a Whisper model's trained head uses <|nospeech|>)
    timestamp_begin: int | None = None  # Whisper's <|0.00|>: this id and the ones above are timestamps
    timestamps: TimestampRules | None = None  # decoding with timestamp tokens (`with_timestamps`)
    # multilingual Whisper: the language codes in the order of their tokens, the first one's id, and the
    # ids of <|transcribe|> and <|translate|>; the prompt holds <|startoftranscript|>, language, task
    languages: tuple[str, ...] = ()
    language_begin: int | None = None
    tasks: tuple[int, ...] = ()
    previous: int | None = None  # Whisper's <|startofprev|>: a text prompt goes between it and the start token
    start_at: int = 0  # where the start token stands in the prompt (after a text prompt)
    speaks: str | None = None  # a model of one language other than English (ours, trained on it): which

    @classmethod
    def of(cls, rules: dict) -> Rules:
        """From a tokenizer's `decoding_rules()` (lists, as JSON gives them, become tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in rules.items()})

    def with_timestamps(self, max_initial: int) -> Rules:
        """These rules for decoding with timestamp tokens: the prompt without <|notimestamps|> (the
        token just below the first timestamp), and Whisper's timestamp grammar; the first timestamp
        at most `max_initial` steps in."""
        if self.timestamp_begin is None:
            raise ValueError("this model has no timestamp tokens: decode without timestamps")
        prompt = tuple(t for t in self.prompt if t != self.timestamp_begin - 1)
        return dataclasses.replace(self, prompt=prompt, timestamps=TimestampRules(self.timestamp_begin, self.eos,
                                                                                   max_initial, self.suppress))

    @property
    def language(self) -> str | None:
        """The language the prompt asks for (multilingual models), the one language of a model trained on
        another than English, else None (English)."""
        return self.languages[self.prompt[self.start_at + 1] - self.language_begin] if self.languages else self.speaks

    def with_language(self, code: str | None) -> Rules:
        """These rules for speech in language `code` (None, "auto": as they are; a model that knows
        one language only takes that one, or none)."""
        if code in AUTO or not self.languages and code == (self.speaks or "en"):
            return self
        if not self.languages:
            raise ValueError(f"this model transcribes {self.speaks or 'English'} only, not {code!r}: use a "
                             "multilingual model (whisper-base) for other languages")
        if code not in self.languages:
            raise ValueError(f"unknown language {code!r}: one of {', '.join(self.languages)} or auto")
        return self._with_token(self.start_at + 1, self.language_begin + self.languages.index(code))

    def with_task(self, task: str) -> Rules:
        """These rules for `task` ("transcribe", or "translate" to English: multilingual models)."""
        if task == "transcribe" and not self.tasks:
            return self
        if not self.tasks:
            raise ValueError("this model only transcribes: translation needs a multilingual model (whisper-base)")
        return self._with_token(self.start_at + 2, self.tasks[TASKS.index(task)])

    def with_prompt(self, tokens: list[int]) -> Rules:
        """These rules with a text prompt: `tokens` (the last MAX_PROMPT_TOKENS) between
        <|startofprev|> and the start token, as Whisper conditions on previous text."""
        if self.previous is None:
            raise ValueError("a text prompt is for Whisper models (ours were not trained with one)")
        if not tokens:
            return self
        head = (self.previous, *tokens[-MAX_PROMPT_TOKENS:])
        return dataclasses.replace(self, prompt=head + self.prompt[self.start_at :], start_at=len(head))

    def _with_token(self, at: int, token: int) -> Rules:
        prompt = list(self.prompt)
        prompt[at] = token
        return dataclasses.replace(self, prompt=tuple(prompt))

    def text_tokens(self, tokens: list[int]) -> list[int]:
        """`tokens` without timestamp tokens."""
        return tokens if self.timestamp_begin is None else [t for t in tokens if t < self.timestamp_begin]

    def unfinished(self, tokens: list[int]) -> int | None:
        """Where an output with timestamps opened an utterance it did not transcribe (it ends in two
        timestamps: a closing and an opening one), in timestamp steps; None if it did not."""
        if self.timestamps is None or len(tokens) < 2 or min(tokens[-2:]) < self.timestamp_begin:
            return None
        return tokens[-1] - self.timestamp_begin
