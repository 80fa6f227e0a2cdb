"""Typed configuration: dataclasses are the one schema, YAML files hold only what differs.

`load_config(Config, "configs/small.yaml", ["model.d_model=256"])` builds a config from the
dataclass defaults, then a YAML file, then dotted `key=value` overrides. Unknown keys and
values of the wrong type are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from asr.decode.options import DecodeOptions

T = TypeVar("T")
COMPUTE_TYPES = ("float32", "int8")  # how a loaded model computes (asr.model.recognizer.Recognizer.load)


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


@dataclass
class FeatureConfig:
    kind: str = "logmel"  # "logmel", "mfcc" or "whisper_logmel" (Whisper's: log10, floor max-8, (x+4)/4; no CMVN)
    sample_rate: int = 16000
    n_mels: int = 80
    n_mfcc: int = 40  # used when kind == "mfcc"
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    # "global" (train-set mean/var stored with the model), "utterance" (each utterance's own), "running" (a
    # frame's mean/var over the utterance up to it, starting from the global ones as running_prior frames:
    # causal, so a streaming encoder caches what it has computed), "none"
    normalize: str = "global"
    running_prior: int = 100  # frames (1 s) of global statistics the running ones start from
    cmvn_max_utts: int = 2000  # utterances sampled to estimate global statistics
    pad_to_seconds: float = 0.0  # >0: every waveform zero-padded (or cut) to this window, as Whisper's 30 s
    # >0: shorter waveforms zero-padded to this many seconds, longer ones left as they are (an any-length
    # Whisper given some of the silence it was trained to see after speech)
    min_seconds: float = 0.0


@dataclass
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 27
    time_masks: int = 2
    time_width: float = 0.05  # at most this fraction of the utterance per time mask
    max_time_width: int = 40  # ... and never more than this many frames
    # A talker of another size, on the features: the frequency axis of an utterance stretched by a factor
    # drawn from warp_factors, with probability warp_prob (VTLP on filterbanks, Jaitly & Hinton 2013). Formants
    # and harmonics move together, as between speakers; it costs an interpolation per batch, where the
    # waveform talker augmentation (augment.pitch_prob, vtlp_prob) costs the loader a phase vocoder or LPC
    warp_prob: float = 0.0
    warp_factors: tuple[float, float] = (0.85, 1.15)
    # Another voice or microphone colour, on the features: with probability eq_prob, an utterance gets a smooth
    # random curve added across its bins (eq_terms cosines, each of amplitude up to eq_scale in normalized
    # units: 0.4 is about +-6 dB where log-mel bins spread ~15 dB), the same in every frame
    eq_prob: float = 0.0
    eq_scale: float = 0.4
    eq_terms: int = 4


@dataclass
class AugmentConfig:
    """Waveform augmentation of training utterances (asr/augment.py), all off by default.

    Each utterance draws its own random choices from (seed, epoch, utterance index), so a run
    is reproducible and a resumed run sees exactly the audio an uninterrupted one would have.
    """

    speed_factors: list[float] = field(default_factory=list)  # e.g. [0.9, 1.0, 1.1]; one drawn per utterance
    noise_prob: float = 0.0  # chance of adding noise to an utterance
    noise_snr_db: tuple[float, float] = (5.0, 20.0)  # SNR drawn uniformly from this range
    noise_manifest: str = ""  # JSONL manifest or folder of noise recordings; empty: white/pink/brown noise
    reverb_prob: float = 0.0  # chance of convolving with a synthetic room impulse response
    rt60: tuple[float, float] = (0.2, 0.8)  # seconds, drawn uniformly
    telephone_prob: float = 0.0  # chance of a telephone channel: 300-3400 Hz band, 8 kHz, optional mu-law
    telephone_mulaw: bool = True
    # Each effect below has its own chance; ranges are drawn uniformly (asr/augment.py says in which order).
    # the talker
    pitch_prob: float = 0.0  # pitch shift at the same tempo (phase vocoder + resampling)
    pitch_semitones: tuple[float, float] = (-3.0, 3.0)
    vtlp_prob: float = 0.0  # vocal tract length perturbation: formants (not pitch) move by a factor
    vtlp_alpha: tuple[float, float] = (0.9, 1.1)
    # the room: a simulated shoebox (image sources, then a diffuse tail at the room's Eyring RT60; asr/room.py)
    room_prob: float = 0.0
    room_size: tuple[float, float] = (3.0, 10.0)  # metres, floor length and width each
    room_height: tuple[float, float] = (2.4, 4.0)  # metres
    room_absorption: tuple[float, float] = (0.15, 0.6)  # energy fraction every surface absorbs; RT60 0.08-1.1 s
    room_distance: tuple[float, float] = (0.3, 3.0)  # metres from talker to microphone, horizontally
    # other sound sources
    babble_prob: float = 0.0  # other utterances talking at once
    babble_talkers: tuple[int, int] = (3, 7)
    babble_snr_db: tuple[float, float] = (5.0, 20.0)
    babble_manifest: str = ""  # JSONL manifest of the speech babble is made of; empty: the training manifest
    music_prob: float = 0.0  # synthetic music: chords of harmonic tones on a beat, with a kick drum
    music_snr_db: tuple[float, float] = (5.0, 20.0)
    # the microphone
    tilt_prob: float = 0.0  # spectral tilt about 1 kHz (a bright or a dull microphone)
    tilt_db_per_octave: tuple[float, float] = (-3.0, 3.0)
    gain_prob: float = 0.0  # level change; what goes past full scale clips, as in a recorder's converter
    gain_db: tuple[float, float] = (-30.0, 6.0)
    clip_prob: float = 0.0  # soft clipping (tanh), driven this far past the peak
    clip_drive_db: tuple[float, float] = (3.0, 15.0)
    # the channel
    band_prob: float = 0.0  # a band limit: 4th-order high-pass and low-pass, cut-offs drawn from these
    highpass_hz: tuple[float, float] = (50.0, 300.0)
    lowpass_hz: tuple[float, float] = (3400.0, 8000.0)
    codec_prob: float = 0.0  # a lossy codec round trip through PyAV (FFmpeg), one of `codecs` at random
    # "mp3" (LAME), "opus", "amr" (AMR-NB, the GSM/3G mobile speech codec, 8 kHz; FFmpeg in the av wheel
    # has no GSM 06.10 full-rate encoder, so this stands in for "GSM")
    codecs: list[str] = field(default_factory=lambda: ["mp3", "opus", "amr"])
    codec_kbps: tuple[float, float] = (6.0, 24.0)  # each codec takes its nearest offered rate (amr: 4.75-12.2)
    # Non-speech examples: with this chance an utterance's audio is replaced, at its length and level, by
    # the utterance played backwards (a nonspeech_reversed share of them), else by babble of
    # nonspeech_talkers other utterances at once (60%), synthetic music (20%) or noise (20%), and its
    # target by the empty transcript: the model learns to write nothing where no one can be followed.
    # They begin at epoch nonspeech_from_epoch (counted from 0): a model that has not learned speech yet
    # learns it more slowly beside them (recipes/benchmarks/README.md, Non-speech), so a short run adds
    # them for its last epochs, like a fine-tuning
    nonspeech_prob: float = 0.0
    nonspeech_from_epoch: int = 0
    nonspeech_talkers: tuple[int, int] = (4, 8)
    # speech sounds in no language; off by default: the demo model learned to drop words of unseen voices
    # from it (recipes/benchmarks/README.md, Non-speech), and the reversal check catches reversed speech
    nonspeech_reversed: float = 0.0


@dataclass
class ModelConfig:
    # "conv2d" (two stride-2 convs, 4x), "stack" (stack 4 frames + linear), "conv1d" (Whisper's, 2x)
    frontend: str = "conv2d"
    conv_channels: int = 64  # conv2d front end width (the convs dominate compute if as wide as d_model)
    d_model: int = 144
    n_heads: int = 4
    enc_layers: int = 6
    dec_layers: int = 3
    ffn_mult: int = 4
    dropout: float = 0.1  # on residual branches and embeddings
    attn_dropout: float = 0.0  # on attention weights: costly on CPU (a mask per head and key)
    tie_embeddings: bool = True
    max_target_len: int = 512  # longest decoder sequence (bounds decoding; the size of a learned position table)
    # Whisper's layout (imported checkpoints); the defaults are our own network's.
    # "sinusoidal" (computed, added to the input), "table" (a stored (max_source_len, D) buffer, Whisper's) or
    # "rope" (rotary: queries and keys of self-attention turned by position, nothing added)
    enc_positions: str = "sinusoidal"
    # "sinusoidal", "learned" (a (max_target_len, D) parameter, Whisper's) or "rope"
    dec_positions: str = "sinusoidal"
    max_source_len: int = 1500  # encoder frames a position table holds (Whisper: 30 s at 20 ms)
    scale_embeddings: bool = True  # multiply encoder input and token embeddings by sqrt(d_model) before positions
    # encoder blocks: "transformer" (pre-norm attention + feed-forward) or "conformer" (half feed-forward,
    # attention, a depthwise convolution of conv_kernel frames, half feed-forward; causal with dynamic_chunk)
    block: str = "transformer"
    conv_kernel: int = 15
    ctc: bool = True  # a CTC head on the encoder; imported models have none until fine-tuned
    # what the CTC head emits: "tokens" (the decoder's vocabulary) or "letters" (asr.text.tokenizers.Letters:
    # the normalized transcript spelled out, 29 symbols; for a decoder with a large vocabulary, Whisper's)
    ctc_vocab: str = "tokens"
    ctc_layers: int = 0  # encoder blocks of the CTC head's own between the encoder and its output (0: linear)
    # (decoder layer, head) pairs whose cross-attention follows the audio: Whisper's word timing
    alignment_heads: list[tuple[int, int]] = field(default_factory=list)
    # streaming (WeNet's dynamic chunk training): half the training batches see full context, the rest
    # chunked attention with chunks of 1-25 encoder frames; one model then decodes either way
    # (decode.chunk: frames a chunk, 0 full context)
    dynamic_chunk: bool = False

    @property
    def spells(self) -> bool:
        """Does the model's CTC head spell letters (while the decoder speaks other tokens)?"""
        return self.ctc and self.ctc_vocab == "letters"

    @property
    def ctc_tokens(self) -> bool:
        """Does the model have a CTC head over the decoder's own tokens (prefix scores, its best path)?"""
        return self.ctc and not self.spells


@dataclass
class TokenizerConfig:
    kind: str = "char"  # "char" or "bpe"
    vocab_size: int = 256  # BPE only
    # training targets: "normalized" (asr.text.normalize: lowercase words) or "display" (case, punctuation, digits)
    text: str = "normalized"
    # the transcripts' language: "normalized" targets use its normalizer (asr.text.normalize.normalizer:
    # accents kept outside English), and the model reports it (Result.language)
    language: str = "en"


@dataclass
class DataConfig:
    train: str = ""  # JSONL manifests: {"id", "audio", "duration", "text", "speaker"}
    dev: str = ""
    max_frames_per_batch: int = 20000  # feature frames (10 ms) per batch, padding included
    max_batch_size: int = 128
    sorta_grad: bool = True  # first epoch in order of increasing duration: attention learns to align sooner
    max_duration: float = 30.0  # seconds; longer training utterances are dropped (and counted)
    num_workers: int = 1
    dev_max_utts: int = 400  # validation WER on at most this many dev utterances (loss on all)


@dataclass
class OptimConfig:
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    warmup_steps: int = 500
    decay: str = "cosine"  # "cosine" to min_lr_ratio at max_steps, or "inverse_sqrt"
    min_lr_ratio: float = 0.05
    grad_clip: float = 5.0
    accumulate_grad_batches: int = 1  # batches per optimizer step; max_steps and the lr schedule count steps
    ctc_weight: float = 0.3
    label_smoothing: float = 0.1
    # L2-SP (Li et al. 2018): fine-tuning pulls the trained weights toward the init model's with this
    # weight on their squared distance, (l2sp / 2) * sum (w - w0)^2, so what it knew is kept (use with
    # weight_decay 0, which pulls toward zero instead)
    l2sp: float = 0.0


@dataclass
class DistillConfig:
    """Self-distillation (asr/train/distill.py): the student learns the teacher's token distributions
    along the teacher's own transcript, cached once by `asr teach` (the manifest it writes holds that
    transcript as `text`, so the usual cross-entropy trains on it too)."""

    teacher: str = ""  # the cache `asr teach` wrote (teacher.pt); empty: no distillation
    kl_weight: float = 1.0  # loss = cross-entropy + kl_weight * KL(teacher || student), per target token
    # the teacher's encoder output (`asr teach --memory`: memory.pt), which the student's encoder learns to
    # give on unpadded input: + memory_weight * mean squared distance per frame
    memory: str = ""
    memory_weight: float = 1.0


@dataclass(frozen=True)
class DecodeConfig(DecodeOptions):
    """A model's decode section: its search options (`DecodeOptions`, where their defaults live) and
    how transcription cuts recordings into segments (`asr.transcribe.pipeline.SegmentOptions`)."""

    ctc_weight: float | None = None  # None: the CTC weight the model was trained with (optim.ctc_weight)
    max_segment: float = 20.0  # long recordings are cut at pauses into segments at most this long (seconds)
    vad: str = "silero"  # speech detector for cutting and skipping: silero (energy if not installed) or energy
    batch_size: int = 16  # segments per model call


@dataclass
class Config:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    seed: int = 1234
    max_steps: int = 4000
    max_epochs: int = 1000  # training stops at whichever of max_steps/max_epochs/max_minutes comes first
    # >0: a time budget. Training stops after this many minutes of training steps (validation not counted,
    # carried across resumes), and the learning rate decays over that time instead of over max_steps:
    # equal-compute comparisons, and fixed-length runs on hardware of unknown speed (recipes/gpu)
    max_minutes: float = 0.0
    checkpoint_every_steps: int = 200  # last.ckpt is rewritten (atomically) this often, mid-epoch too
    keep_best: int = 5  # best-{step}.ckpt: the best this many by select_by are kept (`asr average --by best`)
    # what checkpoints are chosen by: "val/wer" (the decoder's dev WER), or "val/loss" where the decoder is
    # frozen and only a CTC head learns (its WER does not move)
    select_by: str = "val/wer"
    keep_last: int = 5  # step-{step}.ckpt every checkpoint_every_steps: the latest this many (`--by last`)
    compile: bool = False  # torch.compile encoder and decoder for training (minutes of compiling first)
    # Fine-tuning: start from a model file or a named model (`asr models`): its network, features and
    # tokenizer replace this config's (dropout and `model.ctc` still come from here: a CTC head the
    # model lacks is trained from scratch); `freeze` lists parameter-name prefixes kept fixed, e.g.
    # ["encoder"] or ["encoder.frontend", "encoder.blocks.0", "encoder.blocks.1"].
    init: str = ""
    # With init: deepen the model to this config's model.enc_layers / dec_layers. Its blocks fill the
    # bottom of each stack; the added blocks start as identities (output projections zero), so training
    # starts from the model's exact outputs (progressive stacking, Gong et al. 2019, stacks copies of
    # blocks instead, which changes the outputs at the start).
    init_grow: bool = False
    freeze: list[str] = field(default_factory=list)
    # With an init model of a fixed window (Whisper: every input padded to 30 s): train and decode it on
    # unpadded input instead, the encoder taking as many frames as the audio has (the first rows of
    # its position table); recordings are then cut at pauses into segments no longer than the longest
    # training utterance (nor the window). The window stays the default; this is the switch.
    any_length: bool = False
    # Passed straight to lightning.Trainer(**trainer): devices, strategy, precision, num_nodes, ...
    trainer: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- loading


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check (and gently convert) `value` to the annotated type `tp`."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, prefix=key + ".")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is list:
        (arg,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected float, got {value!r}") from None
    if tp is Any:
        return value
    if isinstance(tp, type) and not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
    return value


def _build(cls: type[T], values: dict, prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(prefix + k for k in unknown)}")
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in values.items()}
    return cls(**kwargs)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):  # trainer: too, so overrides add up
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> dict:
    """'model.d_model=256' -> {'model': {'d_model': 256}} (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw != "" else ""
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of `cls`, then the YAML file at `path`, then dotted overrides."""
    values: dict = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        values = _merge(values, loaded)
    for ov in overrides or []:
        values = _merge(values, parse_override(ov))
    return from_dict(cls, values)


def from_dict(cls: type[T], values: dict) -> T:
    """Build a (nested) config dataclass from a plain dict, rejecting unknown keys."""
    return _build(cls, values)


def to_dict(cfg: Any) -> dict:
    """A plain dict (tuples become lists) that YAML and `torch.load(weights_only=True)` accept."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def save_config(cfg: Any, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
