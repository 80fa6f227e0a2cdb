"""OpenAI Whisper checkpoints -> our model-file parts, for the same ASRModel we train.

    import_checkpoint(src) -> (Config, tokenizer dict, state_dict in ASRModel's names)

`src` is one of
- a CTranslate2 model folder (model.bin, config.json, tokenizer.json; faster-whisper's format), a
  model.bin, or a file split in parts (several paths, or a glob such as "*/model.bin.part*"), joined;
- an openai-whisper .pt ({"dims", "model_state_dict"}), with a tokenizer.json beside it or given;
- a Hugging Face folder (model*.safetensors, config.json, tokenizer.json, generation_config.json).

Every format is first brought to openai-whisper's own layout (its ModelDimensions and state_dict
names, the reference), and only that layout is renamed to ours. The readers are our own (struct,
numpy, torch): ctranslate2, transformers and openai-whisper are not needed. Weights come out float32;
int8/int16 CTranslate2 weights are dequantized.
"""

from __future__ import annotations

import glob
import json
import re
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from asr.config import Config, DecodeConfig, FeatureConfig, ModelConfig, OptimConfig, TokenizerConfig
from asr.model.network import ASRModel
from asr.text.tokenizers import WhisperTokenizer

SAMPLE_RATE, HOP, N_FFT = 16000, 160, 400  # Whisper's features; its encoder frames are 2 hops (20 ms)


@dataclass
class WhisperCheckpoint:
    """A checkpoint in openai-whisper's layout, whatever file it came from."""

    dims: dict[str, int]  # openai-whisper's ModelDimensions: n_mels, n_vocab, n_audio_ctx, n_text_state, ...
    state_dict: dict[str, Tensor]  # openai-whisper's names, float32
    tokenizer_json: str
    suppress_tokens: list[int] | None = None  # None: Whisper's rule on the tokenizer
    suppress_at_begin: list[int] | None = None
    alignment_heads: list[tuple[int, int]] = field(default_factory=list)


# --------------------------------------------------------------------------- CTranslate2


_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


def read_ct2(paths: list[Path]) -> tuple[str, dict[str, np.ndarray]]:
    """A CTranslate2 model.bin (binary format 4-6; a split file as its parts in order) -> its spec
    name and variables, aliases resolved, quantized ones dequantized to float32."""
    data = memoryview(b"".join(Path(p).read_bytes() for p in paths))
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal pos
        n = take("H")  # length with the trailing NUL
        pos += n
        return bytes(data[pos - n:pos - 1]).decode("utf-8")

    version = take("I")
    if not 4 <= version <= 6:
        raise ValueError(f"CTranslate2 binary format {version} is not supported (4 to 6 are)")
    spec = string()
    take("I")  # the spec's revision: Whisper's layout is the same in all of them
    raw: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype, n_bytes = _CT2_DTYPES[take("B")], take("I")
        if dtype == "bfloat16":  # numpy has none: the high half of a float32
            bits = np.frombuffer(data[pos:pos + n_bytes], np.uint16).astype(np.uint32) << 16
            raw[name] = bits.view(np.float32).reshape(shape)
        else:
            raw[name] = np.frombuffer(data[pos:pos + n_bytes], dtype).reshape(shape)
        pos += n_bytes
    aliases = {string(): string() for _ in range(take("I"))}
    for alias, target in aliases.items():
        raw[alias] = raw[target]
    return spec, _dequantize(raw)


def _dequantize(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in raw.items():
        if name.endswith("_scale"):
            continue
        scale = raw.get(name + "_scale")
        if scale is not None and value.dtype in (np.int8, np.int16):  # CTranslate2 stores round(x * scale)
            scale = scale.astype(np.float32).reshape(scale.shape + (1,) * (value.ndim - scale.ndim))
            value = value.astype(np.float32) / scale  # int8: a scale per output row; int16: one
        out[name] = value
    return out


# CTranslate2 names -> openai-whisper's, applied in order; "qkv" and "kv" are fused and split later
_CT2_RENAMES = [
    (r"^(en|de)coder/position_encodings/encodings$", r"\1coder.positional_embedding"),
    (r"^decoder/embeddings/weight$", "decoder.token_embedding.weight"),
    (r"^encoder/layer_norm/", "encoder.ln_post/"),
    (r"^decoder/layer_norm/", "decoder.ln/"),
    (r"^(en|de)coder/layer_(\d+)/", r"\1coder.blocks.\2."),
    (r"self_attention/layer_norm/", "attn_ln/"),
    (r"self_attention/linear_0/", "attn.qkv/"),
    (r"self_attention/linear_1/", "attn.out/"),
    (r"attention/layer_norm/", "cross_attn_ln/"),
    (r"attention/linear_0/", "cross_attn.query/"),
    (r"attention/linear_1/", "cross_attn.kv/"),
    (r"attention/linear_2/", "cross_attn.out/"),
    (r"ffn/layer_norm/", "mlp_ln/"),
    (r"ffn/linear_0/", "mlp.0/"),
    (r"ffn/linear_1/", "mlp.2/"),
    (r"/gamma$", "/weight"),
    (r"/beta$", "/bias"),
    (r"/", "."),
]


def load_ct2(paths: list[Path], folder: Path) -> WhisperCheckpoint:
    """CTranslate2's Whisper (faster-whisper's model folder) -> openai-whisper's layout."""
    spec, variables = read_ct2(paths)
    if spec != "WhisperSpec":
        raise ValueError(f"{paths[0]} holds a CTranslate2 {spec}, not a Whisper model")
    heads = {part: int(variables[f"{part}/num_heads"]) for part in ("encoder", "decoder")}
    state: dict[str, Tensor] = {}
    for name, value in variables.items():
        if value.ndim == 0 or name == "decoder/projection/weight":  # flags; the output is the tied embedding
            continue
        for pattern, new in _CT2_RENAMES:
            name = re.sub(pattern, new, name)
        state[name] = torch.from_numpy(value.astype(np.float32))
    state = _split_fused(state)
    config = _read_json(folder / "config.json")
    return WhisperCheckpoint(_dims(state, heads["encoder"], heads["decoder"]), state,
                             _read_tokenizer(folder / "tokenizer.json"), config.get("suppress_ids"),
                             config.get("suppress_ids_begin"), config.get("alignment_heads", []))


def _split_fused(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Fused projections (rows [q; k; v] or [k; v]) -> openai-whisper's query/key/value; keys have no bias
    (CTranslate2 stores zeros there)."""
    out = {}
    for name, value in state.items():
        m = re.match(r"(.*)\.(qkv|kv)\.(weight|bias)$", name)
        if not m:
            out[name] = value
            continue
        prefix, fused, kind = m.groups()
        parts = ["query", "key", "value"] if fused == "qkv" else ["key", "value"]
        for part, chunk in zip(parts, value.chunk(len(parts), dim=0)):
            if not (part == "key" and kind == "bias"):
                out[f"{prefix}.{part}.{kind}"] = chunk.contiguous()
    return out


# --------------------------------------------------------------------------- openai-whisper .pt


def load_openai(path: Path, tokenizer: Path | None) -> WhisperCheckpoint:
    """openai-whisper's own checkpoint; it carries no tokenizer, so a tokenizer.json comes beside it or given."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "dims" not in blob or "model_state_dict" not in blob:
        raise ValueError(f"{path} is not an openai-whisper checkpoint (no dims and model_state_dict)")
    tokenizer = Path(tokenizer) if tokenizer else path.parent / "tokenizer.json"
    if tokenizer.is_dir():
        tokenizer = tokenizer / "tokenizer.json"
    state = {k: v.float() for k, v in blob["model_state_dict"].items()}
    return WhisperCheckpoint(dict(blob["dims"]), state, _read_tokenizer(tokenizer))


# --------------------------------------------------------------------------- Hugging Face


_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8}


def read_safetensors(path: Path) -> dict[str, Tensor]:
    """A .safetensors file: an 8-byte little-endian header length, a JSON header, then raw tensors."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        raw = bytearray(data[8 + n + start:8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=_ST_DTYPES[info["dtype"]]).reshape(info["shape"]) if raw else \
            torch.empty(info["shape"], dtype=_ST_DTYPES[info["dtype"]])
    return out


# Hugging Face names -> openai-whisper's (the reverse of transformers' convert_openai_to_hf.py), in order
_HF_RENAMES = [
    (r"^model\.", ""),
    (r"^encoder\.embed_positions\.weight$", "encoder.positional_embedding"),
    (r"^decoder\.embed_positions\.weight$", "decoder.positional_embedding"),
    (r"^decoder\.embed_tokens\.", "decoder.token_embedding."),
    (r"^encoder\.layer_norm\.", "encoder.ln_post."),
    (r"^decoder\.layer_norm\.", "decoder.ln."),
    (r"\.layers\.", ".blocks."),
    (r"\.self_attn_layer_norm\.", ".attn_ln."),
    (r"\.encoder_attn_layer_norm\.", ".cross_attn_ln."),
    (r"\.final_layer_norm\.", ".mlp_ln."),
    (r"\.self_attn\.", ".attn."),
    (r"\.encoder_attn\.", ".cross_attn."),
    (r"\.q_proj\.", ".query."), (r"\.k_proj\.", ".key."), (r"\.v_proj\.", ".value."), (r"\.out_proj\.", ".out."),
    (r"\.fc1\.", ".mlp.0."), (r"\.fc2\.", ".mlp.2."),
]


def load_hf(folder: Path) -> WhisperCheckpoint:
    """A Hugging Face transformers Whisper folder (safetensors, possibly sharded) -> openai-whisper's layout."""
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} has no model*.safetensors (pytorch_model.bin is not read)")
    state: dict[str, Tensor] = {}
    for file in files:
        for name, value in read_safetensors(file).items():
            if name == "proj_out.weight":  # tied to the token embedding
                continue
            for pattern, new in _HF_RENAMES:
                name = re.sub(pattern, new, name)
            state[name] = value.float()
    cfg = _read_json(folder / "config.json")
    gen = _read_json(folder / "generation_config.json")
    dims = {"n_mels": cfg["num_mel_bins"], "n_vocab": cfg["vocab_size"], "n_audio_ctx": cfg["max_source_positions"],
            "n_audio_state": cfg["d_model"], "n_audio_head": cfg["encoder_attention_heads"],
            "n_audio_layer": cfg["encoder_layers"], "n_text_ctx": cfg["max_target_positions"],
            "n_text_state": cfg["d_model"], "n_text_head": cfg["decoder_attention_heads"],
            "n_text_layer": cfg["decoder_layers"]}
    setting = {**cfg, **gen}.get  # generation_config.json wins where both have a key
    return WhisperCheckpoint(dims, state, _read_tokenizer(folder / "tokenizer.json"), setting("suppress_tokens"),
                             setting("begin_suppress_tokens"), setting("alignment_heads") or [])


# --------------------------------------------------------------------------- shared


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _read_tokenizer(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"no Whisper tokenizer at {path} (a Hugging Face tokenizer.json is needed; "
                                "openai-whisper's .pt carries none: give the matching model's tokenizer.json)")
    return path.read_text(encoding="utf-8")


def _dims(state: dict[str, Tensor], enc_heads: int, dec_heads: int) -> dict[str, int]:
    """openai-whisper's ModelDimensions, read off the weights' shapes."""
    def layers(part: str) -> int:
        return len({k.split(".")[2] for k in state if k.startswith(f"{part}.blocks.")})

    n_vocab, n_state = state["decoder.token_embedding.weight"].shape
    return {"n_mels": state["encoder.conv1.weight"].shape[1], "n_vocab": n_vocab,
            "n_audio_ctx": len(state["encoder.positional_embedding"]), "n_audio_state": n_state,
            "n_audio_head": enc_heads, "n_audio_layer": layers("encoder"),
            "n_text_ctx": len(state["decoder.positional_embedding"]), "n_text_state": n_state,
            "n_text_head": dec_heads, "n_text_layer": layers("decoder")}


def to_asr(ckpt: WhisperCheckpoint, language: str = "en", task: str = "transcribe") -> tuple[Config, dict, dict]:
    """openai-whisper's layout -> our Config, tokenizer dict and ASRModel state_dict."""
    d = ckpt.dims
    if d["n_audio_state"] != d["n_text_state"] or d["n_audio_head"] != d["n_text_head"]:
        raise ValueError(f"encoder and decoder of different widths are not supported: {d}")
    n_mlp = ckpt.state_dict["encoder.blocks.0.mlp.0.weight"].shape[0]
    model = ModelConfig(
        frontend="conv1d", d_model=d["n_audio_state"], n_heads=d["n_audio_head"], enc_layers=d["n_audio_layer"],
        dec_layers=d["n_text_layer"], ffn_mult=n_mlp // d["n_audio_state"], dropout=0.0, attn_dropout=0.0,
        tie_embeddings=True, max_target_len=d["n_text_ctx"], enc_positions="table", dec_positions="learned",
        max_source_len=d["n_audio_ctx"], scale_embeddings=False, ctc=False,
        alignment_heads=[tuple(h) for h in ckpt.alignment_heads])
    # the encoder's positions cover exactly the padded window Whisper was trained on (30 s)
    window = d["n_audio_ctx"] * 2 * HOP / SAMPLE_RATE
    features = FeatureConfig(kind="whisper_logmel", sample_rate=SAMPLE_RATE, n_mels=d["n_mels"], n_fft=N_FFT,
                             win_ms=1000 * N_FFT / SAMPLE_RATE, hop_ms=1000 * HOP / SAMPLE_RATE, normalize="none",
                             pad_to_seconds=window)
    cfg = Config(features=features, model=model,
                 tokenizer=replace(TokenizerConfig(), kind="whisper", vocab_size=d["n_vocab"]),
                 optim=replace(OptimConfig(), ctc_weight=0.0),  # no CTC head until fine-tuned with one
                 decode=replace(DecodeConfig(), ctc_weight=0.0, ctc_length_guard=False, max_segment=window,
                                # Whisper's own stopping rule and guards (openai-whisper's defaults) ...
                                patience=1.0, compression_ratio_threshold=2.4,
                                # ... but a stricter no-speech rule than openai-whisper's 0.6 and -1.0, which let
                                # babble through; short real words ("two", P 0.51, -1.03) must still pass
                                # (recipes/benchmarks/README.md, Non-speech)
                                no_speech_threshold=0.35, logprob_threshold=-1.1,
                                # speech played backwards passes that rule: a segment whose transcript is not
                                # confident (mean log prob below -0.4) is decoded backwards too, and left out
                                # if that reads better by 0.1 (3 of 262 real clips lost, 239 of 262 reversed caught)
                                reversed_margin=0.1, reversed_check_below=-0.4,
                                # timestamp tokens between the utterances of a window keep the decoder's place:
                                # without them tiny.en skips utterances of a full window (recipes/benchmarks, Whisper)
                                timestamps=True,
                                # every window is 30 s, so the length cap is one number: openai-whisper's
                                # n_text_ctx // 2 tokens (max_output_lengths adds 8)
                                max_len_ratio=(max(d["n_text_ctx"] // 2 - 8, 1) + 0.5) / d["n_audio_ctx"]))
    # openai-whisper's own rule: multilingual vocabularies are the larger ones
    tokenizer = WhisperTokenizer(ckpt.tokenizer_json, d["n_vocab"], d["n_vocab"] >= 51865, language, task,
                                 ckpt.suppress_tokens, ckpt.suppress_at_begin)
    if tokenizer.timestamp_begin > d["n_vocab"]:
        raise ValueError(f"tokenizer.json does not fit the model: its special tokens pass n_vocab {d['n_vocab']}")
    state = {_our_name(k): v for k, v in ckpt.state_dict.items()}
    _check_fits(state, model, d["n_mels"], d["n_vocab"])
    return cfg, tokenizer.to_dict(), state


def _our_name(name: str) -> str:
    """openai-whisper's name -> ASRModel's: the convolutions live in the front end; our MLP has a
    dropout between its linears, so its second linear is index 3."""
    name = re.sub(r"^encoder\.conv([12])\.", r"encoder.frontend.conv\1.", name)
    return re.sub(r"\.mlp\.2\.", ".mlp.3.", name)


def _check_fits(state: dict[str, Tensor], cfg: ModelConfig, n_mels: int, n_vocab: int) -> None:
    """Every weight of the network, no other, each of its shape (checked on a model without memory)."""
    with torch.device("meta"):
        expected = {k: v.shape for k, v in ASRModel(cfg, n_mels, n_vocab).state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k]]
    if missing or unexpected or wrong:
        raise ValueError(f"checkpoint does not fit the network: missing {missing[:5]}, unexpected {unexpected[:5]}, "
                         f"wrong shapes {[(k, tuple(state[k].shape), tuple(expected[k])) for k in wrong[:5]]}")


def load_whisper(src: str | Path | list[str | Path], tokenizer: str | Path | None = None) -> WhisperCheckpoint:
    """Any supported source (see the module docstring) -> openai-whisper's layout."""
    if isinstance(src, (list, tuple)):
        paths = [Path(p) for p in src]
    elif glob.has_magic(str(src)):
        paths = sorted((Path(p) for p in glob.glob(str(src))), key=_part_number)
        if not paths:
            raise FileNotFoundError(f"no file matches {src}")
    else:
        paths = [Path(src)]
    first = paths[0]
    if len(paths) > 1 or first.name.startswith("model.bin"):  # parts, or a model.bin given directly
        return load_ct2(paths, first.parent)
    if first.suffix == ".pt":
        return load_openai(first, Path(tokenizer) if tokenizer else None)
    if first.is_dir() and (first / "model.bin").is_file():
        return load_ct2([first / "model.bin"], first)
    if first.is_dir() and (first / "model.bin.part1").is_file():
        return load_ct2(sorted(first.glob("model.bin.part*"), key=_part_number), first)
    if first.is_dir() and any(first.glob("model*.safetensors")):
        return load_hf(first)
    raise ValueError(f"{src}: not a CTranslate2 model (model.bin), an openai-whisper .pt or a Hugging Face "
                     "folder (model.safetensors)")


def _part_number(path: Path) -> tuple:
    """'model.bin.part10' after 'model.bin.part9'."""
    m = re.search(r"(\d+)$", path.name)
    return (path.name[:m.start()] if m else path.name, int(m.group(1)) if m else -1)


def import_checkpoint(src: str | Path | list[str | Path], tokenizer: str | Path | None = None,
                      language: str = "en", task: str = "transcribe") -> tuple[Config, dict, dict]:
    """A Whisper checkpoint -> (Config, tokenizer dict, ASRModel state_dict): the parts of our model file.
    `language` and `task` shape a multilingual model's prompt; English-only models ignore them."""
    return to_asr(load_whisper(src, tokenizer), language, task)
