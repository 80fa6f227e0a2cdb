"""asr: speech-to-text with a transformer encoder-decoder.

    import asr
    model = asr.load_model("exp/synth/commands/model.pt")
    for r in model.transcribe(["clip.wav", "folder/"]):
        print(r.path, r.text if r.error is None else f"FAILED: {r.error}")
"""

from pathlib import Path

__version__ = "0.1.0"


def load_model(path: str | Path, device: str = "cpu"):
    """Load an exported model file (written by `asr train` / `asr export`)."""
    from .recognizer import Recognizer

    return Recognizer.load(path, device)
