"""asr: speech-to-text with a transformer encoder-decoder.

    import asr
    model = asr.load_model("exp/synth/commands/model.pt")
    for r in model.transcribe(["clip.wav", "folder/"], beam_size=5):
        print(r.path, r.text if r.error is None else f"FAILED: {r.error}")

The packages are the pipeline's stages: audio -> text -> model (the model file) -> decode (the
search) -> transcribe (files, writers, the service) -> `results`; data and train (the only user of
Lightning) make models; evaluate scores them; onnx runs them without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from asr.transcribe.pipeline import Transcriber


def load_model(path: str | Path, device: str = "auto", compute_type: str = "float32", **options) -> "Transcriber":
    """Load an exported model file (written by `asr train` / `asr export`), ready to transcribe
    paths, folders, bytes, file objects, arrays or tensors (see `Transcriber.transcribe`).
    `device`: "auto" (the GPU when there is one), "cpu", "cuda", ... `compute_type`: "float32", or
    "int8" (CPU: linear layers in int8, about 1.6x faster for Whisper, same WER within noise).
    `options` are decode options for every call (`asr.decode.options.DecodeOptions`: beam_size,
    ctc_weight, lm, language, task, prompt, hotwords, ...). `path` may also be a model name
    (`asr models`: "whisper-tiny.en", "whisper-base"), imported from its package on first use."""
    from asr.model.catalogue import load
    from asr.transcribe.pipeline import Transcriber

    return Transcriber(load(path, device, compute_type), **options)
