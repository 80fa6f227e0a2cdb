"""The model file: features + network + tokenizer in one plain file, and the encoder pass.

    Recognizer.load(path) -> rec;  rec.encode(wav, wav_lens) -> Encoded(memory, lengths, CTC logits)

The file is a dict {"format", "config", "tokenizer", "state_dict", "history"} of tensors and plain
Python values, loadable with `torch.load(path, weights_only=True)`, written atomically. `history`
lists the training runs behind the weights, those of the model a run started from first (files
from before 2026-12-03 have none). Training checkpoints (Lightning) become model files through
`export`, here rather than in the training module, so averaging and exporting never import
Lightning. Searching over the decoder is `asr.decode`'s job; files and folders are `asr.transcribe`'s.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from asr.config import COMPUTE_TYPES, Config, from_dict, to_dict
from asr.model.features import Features
from asr.model.network import ASRModel, Encoded
from asr.storage import atomic_save, read_jsonl
from asr.text.tokenizers import LETTERS, Tokenizer, tokenizer_from_dict

FORMAT = "asr-model-v1"
CHECKPOINT_PREFIX = "recognizer."  # the Recognizer's keys in a training checkpoint's state_dict
ENCODER_FRAMES = 3000  # feature frames per encoder call on a CPU (one Whisper window)


def vnni() -> bool:
    """Whether this CPU multiplies 8-bit integers with VNNI instructions (AVX-512 VNNI): then int8
    activations can use all 8 bits without the 16-bit saturation of older x86 integer kernels."""
    try:
        flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    except OSError:  # not Linux: keep the safe range
        return False
    return "avx512_vnni" in flags


class FullRangeInt8Linear(torch.ao.nn.quantized.dynamic.Linear):
    """torch's dynamic int8 Linear with activations quantized to all 256 levels. torch's own uses
    128 (`reduce_range`), so that products cannot saturate the 16-bit sums of x86 kernels without
    VNNI; with VNNI they cannot saturate, and the finer steps cost Whisper less accuracy
    (recipes/benchmarks/README.md, "int8 details")."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False).to(x.dtype)


class Recognizer(nn.Module):
    """Everything needed to turn waveforms into encoder output and token ids into text, as trained."""

    def __init__(
        self, cfg: Config, tokenizer: Tokenizer, features: Features | None = None, model: ASRModel | None = None
    ):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.features = features or Features(cfg.features)
        self.model = model or ASRModel(cfg.model, self.features.dim, tokenizer.vocab_size)
        self.history: list[dict] = []  # the training runs behind the weights (`run_history`); model cards list them
        self.compute_type = "float32"  # "int8" after `quantized`

    @property
    def frame_seconds(self) -> float:
        """Duration of one encoder frame: the feature hop times the front end's subsampling."""
        return self.model.encoder.subsampling * self.cfg.features.hop_ms / 1000

    @property
    def ctc_blank(self) -> int:
        return LETTERS.blank if self.cfg.model.spells else self.tokenizer.ctc_blank

    def ctc_targets(self, tokens: list[int]) -> list[int]:
        """What the CTC head emits for a transcript of the decoder's `tokens`: the same tokens, or
        for a head that spells (`model.ctc_vocab: letters`), the letters of their normalized text."""
        return LETTERS.encode(self.tokenizer.decode(tokens)) if self.cfg.model.spells else tokens

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, wav: Tensor, wav_lens: Tensor, chunk: int = 0) -> Encoded:
        """(B, S) padded waveforms at the model's sample rate -> encoder output, lengths, CTC logits.

        The encoder takes the rows a few at a time, at most ENCODER_FRAMES feature frames a call:
        on a CPU its activations then stay in cache, and a Whisper window (3,000 frames) costs a
        quarter to a third less than in a batch of 16 (recipes/benchmarks/encoder_batch.py). The
        search still gets the whole batch. `chunk` > 0: chunked attention (a model trained with
        `model.dynamic_chunk` decodes as it would streaming, with that many encoder frames a chunk)."""
        wav, wav_lens = wav.to(self.device), wav_lens.to(self.device)
        feats, lens = self.features(wav, wav_lens)
        rows = max(1, ENCODER_FRAMES // feats.shape[1]) if self.device.type == "cpu" else feats.shape[0]
        if feats.shape[0] <= rows:
            return self.model.encode(feats, lens, chunk)
        parts = [self.model.encode(feats[i : i + rows], lens[i : i + rows], chunk)
                 for i in range(0, feats.shape[0], rows)]
        return Encoded(*(None if p[0] is None else torch.cat(p) for p in zip(*parts)))

    # ------------------------------------------------------------------ the file

    def save(self, path: str | Path, float16: bool = False) -> None:
        """Write the model file; `float16`: its floating-point weights stored in half precision (half
        the size, for shipping; `load` computes in float32 again)."""
        if self.compute_type != "float32":
            raise ValueError(f"a {self.compute_type} model is for inference only: save the float32 one")
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        if float16:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        atomic_save({"format": FORMAT, "config": to_dict(self.cfg), "tokenizer": self.tokenizer.to_dict(),
                     "state_dict": state, "history": self.history}, path)

    def quantized(self) -> "Recognizer":
        """A copy whose linear layers compute in int8 (weights per output row, as CTranslate2's int8;
        activations per call: torch's dynamic quantization, CPU only; all 8 bits of them where the
        CPU has VNNI, `FullRangeInt8Linear`), the output projection included:
        a tied one (Whisper, or ours without `out`) gets a Linear of its own sharing the embedding's
        weight, so the step that scores the whole vocabulary for every hypothesis runs in int8 too.
        Convolutions, attention and layer norms stay float32. Inference only: a quantized model is not saved."""
        if self.device.type != "cpu":
            raise ValueError(f"int8 runs on the CPU (torch dynamic quantization), not on {self.device}: "
                             "use --compute-type float32 there")
        model = copy.deepcopy(self.model)
        if model.decoder.out is None:
            emb = model.decoder.token_embedding
            model.decoder.out = nn.Linear(emb.embedding_dim, emb.num_embeddings, bias=False, device="meta")
            model.decoder.out.weight = emb.weight
        with warnings.catch_warnings():  # its deprecation notice points to torchao, not installed here
            warnings.simplefilter("ignore")
            # one scale per output row, not per tensor: Whisper's weights differ too much across rows
            # (recipes/benchmarks/README.md, "int8 details")
            torch.ao.quantization.quantize_dynamic(
                model,
                {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
                dtype=torch.qint8,
                inplace=True,
                mapping={nn.Linear: FullRangeInt8Linear} if vnni() else None,
            )
        rec = Recognizer(self.cfg, self.tokenizer, self.features, model)
        rec.compute_type = "int8"
        return rec.eval()

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", compute_type: str = "float32") -> "Recognizer":
        """The model in `path` on `device` ("auto": the GPU when there is one, else the CPU),
        computing in `compute_type` (one of COMPUTE_TYPES; int8: CPU only, see `quantized`)."""
        if compute_type not in COMPUTE_TYPES:
            raise ValueError(f"unknown compute type {compute_type!r} (one of {', '.join(COMPUTE_TYPES)})")
        device = resolve_device(device)
        if compute_type == "int8" and str(device) != "cpu":
            raise ValueError(f"int8 runs on the CPU (torch dynamic quantization), not on {device}: "
                             "give --device cpu, or --compute-type float32")
        if not Path(path).is_file():
            raise FileNotFoundError(f"no model file at {path}")
        # mmap: the weights are read from the file as they are used, not copied into memory first
        blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path} is not an exported asr model (expected format {FORMAT})")
        cfg, tokenizer = from_dict(Config, blob["config"]), tokenizer_from_dict(blob["tokenizer"])
        rec = cls(cfg, tokenizer)  # (not on the meta device: its weight init imports sympy, 150 MB)
        # assign: the file's tensors replace the random ones (freed), not copied into them; strict:
        # a missing weight is an error
        # a file stored in float16 (a shipped model) computes in float32
        state = {k: v.float() if v.is_floating_point() and v.dtype != torch.float32 else v
                 for k, v in blob["state_dict"].items()}
        rec.load_state_dict(state, assign=True)
        rec.history = list(blob.get("history", []))
        rec = rec.to(device).eval()
        return rec.quantized() if compute_type == "int8" else rec

    @classmethod
    def from_checkpoint(cls, hyper_parameters: dict, state_dict: dict[str, Tensor],
                        exp_dir: str | Path | None = None, weights_step: int | None = None) -> "Recognizer":
        """A training checkpoint's hyper_parameters ({config, tokenizer, history}) and state_dict -> the
        model, its history made by `run_history` with the runs of `exp_dir` and the checkpoint's step.
        Keys outside the Recognizer (checkpoints written before 2026-12 also held the network a second
        time under "model.") are ignored."""
        rec = cls(from_dict(Config, hyper_parameters["config"]), tokenizer_from_dict(hyper_parameters["tokenizer"]))
        n = len(CHECKPOINT_PREFIX)
        rec.load_state_dict({k[n:]: v for k, v in state_dict.items() if k.startswith(CHECKPOINT_PREFIX)})
        rec.history = run_history(hyper_parameters.get("history") or [], exp_dir, weights_step)
        return rec.eval()


def run_history(earlier: list[dict], exp_dir: str | Path | None, weights_step: int | None = None) -> list[dict]:
    """The training runs behind a model: `earlier` (those of the model its training started from,
    `init`), then the runs of its experiment folder (EXP/runs.jsonl, a line per run, `asr.train.RunLog`),
    each tagged with the folder (relative to the working directory when under it) and, when the
    weights are a checkpoint's from before the end (the best dev step), with that `weights_step`."""
    if exp_dir is None:
        return list(earlier)
    exp = Path(exp_dir)
    runs_file = exp / "runs.jsonl"
    if exp.is_absolute() and exp.is_relative_to(Path.cwd()):
        exp = exp.relative_to(Path.cwd())
    step = {} if weights_step is None else {"weights_step": int(weights_step)}
    runs = read_jsonl(runs_file) if runs_file.is_file() else []
    return [*earlier, *({**r, "exp": str(exp), **step} for r in runs)]


def resolve_device(device: str | torch.device) -> str | torch.device:
    """"auto" -> "cuda" when a GPU is available, else "cpu"; anything else as it is."""
    if str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def export(checkpoint: str | Path, out: str | Path) -> Path:
    """Lightning checkpoint -> the plain model file {config, tokenizer, state_dict, history}."""
    # weights_only=False: Lightning checkpoints hold callback and loop state as arbitrary objects
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
    folder = Path(checkpoint).parent  # EXP/checkpoints/NAME.ckpt: the runs are in EXP/runs.jsonl
    exp_dir = folder.parent if folder.name == "checkpoints" else None
    Recognizer.from_checkpoint(ckpt["hyper_parameters"], ckpt["state_dict"], exp_dir, ckpt.get("global_step")).save(out)
    print(f"exported {checkpoint} -> {out}")
    return Path(out)
