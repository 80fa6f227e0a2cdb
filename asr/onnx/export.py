"""A model file -> ONNX graphs that transcribe without torch (asr.onnx.runtime runs them).

    export_onnx(rec, "out/", int8=False) -> out/ with encoder.onnx, decoder.onnx, model.json

encoder.onnx   wav (B, S) float32, wav_lens (B,) int64 ->
               memory (B, T', D), lengths (B,), [ctc_logits (B, T', V) when the model has a CTC head],
               cross_k_i, cross_v_i (B, H, T', Dh) for each decoder layer i: the decoder's cross-attention
               keys/values, computed once per utterance (beams share them). The feature extractor
               (STFT, mel, log, CMVN) is inside: the dynamo exporter writes torch.stft as ONNX STFT.
decoder.onnx   one decoder step with its KV cache: tokens (N, L) int64 (the prompt at the start, then one
               token), memory_lens (B,), self_k_i, self_v_i (N, H, P, Dh) the cache of the P tokens
               already seen (P = 0 at the start; it is also the position offset), cross_k_i, cross_v_i ->
               logits (N, V) of the last position, new_self_k_i, new_self_v_i (N, H, P + L, Dh).
               Rows [k N/B, (k+1) N/B) are hypotheses of utterance k, as in asr.decode.
model.json     config, tokenizer and decoding rules: all asr.onnx.runtime needs besides the graphs.
encoder.int8.onnx, decoder.int8.onnx  with --int8: weights quantized to int8 (onnxruntime's dynamic quantization).

Every axis but the model's sizes is dynamic. The encoder needs at least `min_samples` samples (the
conv front end's 7 frames, or the model's shortest window: features.min_seconds; model.json has the
number); asr.onnx.runtime pads shorter waveforms with zeros.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from asr.config import to_dict
from asr.model.network import MIN_FRAMES, KVCache
from asr.model.recognizer import Recognizer

OPSET = 18
FORMAT = "asr-onnx-v1"


class EncoderGraph(nn.Module):
    """Waveforms -> features -> encoder -> CTC logits and every decoder layer's cross-attention k/v."""

    def __init__(self, rec: Recognizer):
        super().__init__()
        self.rec = rec

    def forward(self, wav: Tensor, wav_lens: Tensor) -> tuple[Tensor, ...]:
        enc = self.rec.model.encode(*self.rec.features(wav, wav_lens))
        cross = [kv for block in self.rec.model.decoder.blocks for kv in block.cross_attn.project_kv(enc.memory)]
        ctc = () if enc.ctc_logits is None else (enc.ctc_logits,)
        return (enc.memory, enc.lengths, *ctc, *cross)


class DecoderStep(nn.Module):
    """One incremental decoder call: Decoder.forward with the cache passed in and out as tensors."""

    def __init__(self, rec: Recognizer):
        super().__init__()
        self.decoder = rec.model.decoder
        self.n = len(self.decoder.blocks)

    def forward(self, tokens: Tensor, memory_lens: Tensor, *kv: Tensor) -> tuple[Tensor, ...]:
        n = self.n
        cache = KVCache([(kv[2 * i], kv[2 * i + 1]) for i in range(n)],
                        [(kv[2 * n + 2 * i], kv[2 * n + 2 * i + 1]) for i in range(n)])
        # with cross k/v cached, Decoder.forward reads only memory.shape[1] (T'): hand it a (B, T', Dh) view
        logits = self.decoder(tokens, kv[2 * n][:, 0], memory_lens, cache)[:, -1]  # (N, V)
        return (logits, *[t for k_v in cache.self_kv for t in k_v])


def io_names(rec: Recognizer) -> dict[str, list[str]]:
    """Input and output names of both graphs (asr.onnx.runtime reads them from model.json)."""
    n = len(rec.model.decoder.blocks)
    cross = [f"cross_{x}_{i}" for i in range(n) for x in "kv"]
    self_kv = [f"self_{x}_{i}" for i in range(n) for x in "kv"]
    ctc = ["ctc_logits"] if rec.model.ctc_head is not None else []
    return {"encoder_inputs": ["wav", "wav_lens"], "encoder_outputs": ["memory", "lengths", *ctc, *cross],
            "decoder_inputs": ["tokens", "memory_lens", *self_kv, *cross],
            "decoder_outputs": ["logits", *[f"new_{s}" for s in self_kv]]}


def export_encoder(rec: Recognizer, path: Path) -> None:
    names = io_names(rec)
    sr = rec.cfg.features.sample_rate
    n = max(2 * sr, min_samples(rec) + sr)  # past a shortest window, so the graph keeps no pad of its own
    wav = torch.randn(2, n) * 0.1
    lens = torch.tensor([n, n - sr + 123])
    B, S = torch.export.Dim("batch"), torch.export.Dim("samples", min=min_samples(rec))
    # torch's exporter warns that torchvision's operators are missing, which no model here uses
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(EncoderGraph(rec), (wav, lens), input_names=names["encoder_inputs"],
                                    output_names=names["encoder_outputs"], dynamic_shapes=({0: B, 1: S}, {0: B}),
                                    opset_version=OPSET, dynamo=True, verbose=False)
    program.save(str(path))


def export_decoder(rec: Recognizer, path: Path) -> None:
    """The legacy (tracing) exporter: its traced shapes keep the cache length dynamic, zero included."""
    names = io_names(rec)
    cfg = rec.cfg.model
    n, H, Dh = len(rec.model.decoder.blocks), cfg.n_heads, cfg.d_model // cfg.n_heads
    B, K, P, L, T = 2, 3, 4, 2, 9  # distinct sizes, so that no axis is mistaken for another
    tokens = torch.randint(3, rec.tokenizer.vocab_size, (B * K, L))
    self_kv = [torch.randn(B * K, H, P, Dh) for _ in range(2 * n)]
    cross = [torch.randn(B, H, T, Dh) for _ in range(2 * n)]
    axes = {"tokens": {0: "rows", 1: "new"}, "memory_lens": {0: "batch"}, "logits": {0: "rows"}}
    axes |= {s: {0: "rows", 2: "past"} for s in names["decoder_inputs"] if s.startswith("self_")}
    axes |= {s: {0: "rows", 2: "total"} for s in names["decoder_outputs"] if s.startswith("new_")}
    axes |= {s: {0: "batch", 2: "frames"} for s in names["decoder_inputs"] if s.startswith("cross_")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(DecoderStep(rec), (tokens, torch.tensor([T, T - 3]), *self_kv, *cross), str(path),
                          input_names=names["decoder_inputs"], output_names=names["decoder_outputs"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def sidecar(rec: Recognizer) -> dict:
    """model.json: what the runtime needs besides the graphs (plain JSON, no pickles)."""
    cfg = rec.cfg.model
    return {"format": FORMAT, "config": to_dict(rec.cfg), "tokenizer": rec.tokenizer.to_dict(),
            "rules": rec.tokenizer.decoding_rules(), "io": io_names(rec),
            "dims": {"layers": len(rec.model.decoder.blocks), "heads": cfg.n_heads,
                     "head_dim": cfg.d_model // cfg.n_heads, "vocab": rec.tokenizer.vocab_size,
                     "min_samples": min_samples(rec)}}


def min_samples(rec: Recognizer) -> int:
    """Fewest waveform samples the encoder graph takes: the conv front end's 7 feature frames (center
    framing), or the model's shortest window (features.min_seconds), which the runtime pads to with
    zeros as Features.raw does (the graph itself holds no length-dependent pad)."""
    return max((MIN_FRAMES - 1) * rec.features.hop, rec.features.min_samples)


def quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the weights of MatMul/Gemm (activations stay float) and of
    embedding tables read by Gather (Whisper's 51,864 x 384 token table: 80 MB in float32, which
    took the whole decoder graph from 49 MB to 109 MB), except the feature extractor's: power
    spectra span many decades, and an int8 mel filterbank ruins them."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    features = [n.name for n in graph.node if any(i.startswith("rec.features.") for i in n.input)]
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs a line per tensor it leaves alone
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm", "Gather"], nodes_to_exclude=features)
    finally:
        logging.getLogger().setLevel(level)


def export_onnx(rec: Recognizer, out: str | Path, int8: bool = False) -> Path:
    """Write encoder.onnx, decoder.onnx and model.json (and int8 copies of the graphs) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rec = rec.cpu().eval()
    by_conv = getattr(rec.features, "dft_by_conv", None)
    with torch.no_grad():
        if by_conv is not None:  # Whisper's spectrum as a convolution: ONNX Runtime's STFT is slow
            rec.features.dft_by_conv = True
        try:
            export_encoder(rec, out / "encoder.onnx")
        finally:
            if by_conv is not None:
                rec.features.dft_by_conv = by_conv
        export_decoder(rec, out / "decoder.onnx")
    if int8:
        for name in ("encoder", "decoder"):
            quantize(out / f"{name}.onnx", out / f"{name}.int8.onnx")
    (out / "model.json").write_text(json.dumps(sidecar(rec)))
    print(f"exported ONNX graphs -> {out}")
    return out
