"""Self-distillation: a teacher's transcripts and token distributions, computed once, for a student to learn.

    teach(teacher, entries, out_dir)  ->  OUT/train.jsonl   the entries, `text` = the teacher's transcript
                                          OUT/teacher.pt    per id: its top-k token ids and log-probs at
                                                            each target position (the tokens, then the end)
                                          OUT/memory.pt     (memory=True) per id: its encoder output over
                                                            the frames the unpadded audio has
    kl_loss, memory_loss, l2sp_penalty     the student's losses (asr.train.trainer adds them)

The teacher sees each recording as it was trained to (Whisper: padded to its 30-second window) and
decodes it with its own guards (no-speech rule, reversal check), so what it rejects teaches an empty
transcript. Then one teacher-forced pass along that transcript, from the prompt the student trains
with (`Search.plain`: no timestamps), gives the distributions. The student (the same weights on
unpadded input, `any_length`) needs no transcripts: any audio can teach it. A transcribed entry
keeps its transcript as `reference`. Top-k (Distil-Whisper keeps the full distribution): the
student's target is the teacher's top-k renormalized; tiny.en's top 16 held 90% of its probability on
average over 32,425 positions of recipes/distill's corpus (median 98%), and the cache stays small.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

from asr.audio.read import AudioError, load_audio
from asr.data.dataset import Batch, decoder_io
from asr.decode.options import DecodeOptions
from asr.decode.task import Search
from asr.model.recognizer import Encoded, Recognizer
from asr.storage import atomic_save, read_jsonl, write_jsonl

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # 2: the transcripts are stored too, so a manifest whose text differs is caught
MEMORY_VERSION = 1
SAVE_EVERY = 20  # batches between saves of a teaching run


@torch.no_grad()
def teach(teacher: Recognizer, entries: list[dict], out_dir: str | Path, top_k: int = 16, batch_size: int = 8,
          progress: bool = False, memory: bool = False) -> tuple[Path, Path]:
    """The teacher's transcript and top-k distributions for every readable entry -> (manifest, cache);
    `memory`: also its encoder output over the audio's own frames (OUT/memory.pt). An unreadable file is
    logged and left out. What OUT holds is kept, not computed again: a killed run resumes, a later call
    adds (the files are rewritten atomically every `SAVE_EVERY` batches and at the end)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    search = Search(teacher, DecodeOptions.from_config(teacher.cfg, beam_size=1))
    prompt = search.plain.prompt
    sr = teacher.cfg.features.sample_rate
    manifest, cache_file, memory_file = out_dir / "train.jsonl", out_dir / "teacher.pt", out_dir / "memory.pt"
    taught: list[dict] = []
    cache: dict[str, tuple[Tensor, Tensor]] = {}
    memories: dict[str, Tensor] = {}
    if cache_file.is_file() and manifest.is_file():
        blob = torch.load(cache_file, map_location="cpu", weights_only=True)
        if blob.get("version") != CACHE_VERSION or tuple(blob["prompt"]) != tuple(prompt) or blob["top_k"] != top_k:
            raise ValueError(f"{cache_file} was written by another teacher or settings: use another folder")
        cache = dict(blob["entries"])
        taught = [r for r in read_jsonl(manifest) if r["id"] in cache]
    if memory and memory_file.is_file():
        memories = dict(torch.load(memory_file, map_location="cpu", weights_only=True)["entries"])
    entries = [e for e in entries if e["id"] not in cache or (memory and e["id"] not in memories)]

    def save() -> None:
        write_jsonl(manifest, taught)
        atomic_save({"version": CACHE_VERSION, "top_k": top_k, "prompt": list(prompt), "entries": cache,
                     "texts": {r["id"]: r["text"] for r in taught}}, cache_file)
        if memory:
            atomic_save({"version": MEMORY_VERSION, "entries": memories}, memory_file)

    done = 0
    for start in range(0, len(entries), batch_size):
        rows, wav, lens = read_batch(entries[start:start + batch_size], sr)
        if not rows:
            continue
        enc = teacher.encode(wav, lens)
        if memory:  # the frames the unpadded audio has: the first ones of the window
            frames = teacher.model.encoder.frontend.out_lengths(lens // teacher.features.hop)
            frames = frames.clamp(max=enc.memory.shape[1])
            for i, e in enumerate(rows):
                memories[e["id"]] = enc.memory[i, : int(frames[i])].half().cpu()
        fresh = [i for i, e in enumerate(rows) if e["id"] not in cache]
        if fresh:
            index = torch.tensor(fresh)
            part = Encoded(*(None if t is None else t[index.to(t.device)] for t in enc))
            learn(teacher, search, [rows[i] for i in fresh], part, wav[index], lens[index], top_k, cache, taught)
        for e in rows:  # (an entry the teacher could not teach keeps no encoder output either)
            if e["id"] not in cache:
                memories.pop(e["id"], None)
        done += len(rows)
        if (start // batch_size + 1) % SAVE_EVERY == 0:
            save()
        if progress:
            print(f"\rteach: {done}/{len(entries)}", end="", flush=True)
    if progress:
        print()
    save()
    return manifest, cache_file


def read_batch(entries: list[dict], sample_rate: int) -> tuple[list[dict], Tensor, Tensor]:
    """The readable entries, their waveforms zero-padded (B, S) and lengths; an unreadable one is logged."""
    rows, wavs = [], []
    for e in entries:
        try:
            segment = (e["offset"], e["duration"]) if "offset" in e else (None, None)
            wavs.append(torch.from_numpy(load_audio(e["audio"], sample_rate, *segment)))
            rows.append(e)
        except AudioError as err:
            log.warning("teach: skipping %s: %s", e["id"], err)
    lens = torch.tensor([len(w) for w in wavs], dtype=torch.long)
    wav = torch.zeros(len(wavs), int(lens.max()) if wavs else 0)
    for i, w in enumerate(wavs):
        wav[i, : len(w)] = w
    return rows, wav, lens


def learn(teacher: Recognizer, search: Search, rows: list[dict], enc: Encoded, wav: Tensor, lens: Tensor,
          top_k: int, cache: dict, taught: list[dict]) -> None:
    """One batch of `teach`: the teacher's transcripts (its search and guards), then one teacher-forced pass
    along them for the top-k distributions; adds to `cache` and `taught`."""
    prompt, eos = search.plain.prompt, search.plain.eos
    texts = [nbest[0].text if nbest else "" for nbest in search(enc, wav, lens)]
    token_lists = [teacher.tokenizer.encode_transcript(t) if t else [] for t in texts]
    room = teacher.cfg.model.max_target_len - len(prompt) - 1  # decoder positions: prompt, tokens, end
    keep = [True] * len(rows)
    for i in [i for i, t in enumerate(token_lists) if len(t) > room]:  # (a teacher that ran to its cap)
        log.warning("teach: leaving out %s: the teacher's transcript (%d tokens) outruns the decoder's %d "
                    "positions", rows[i]["id"], len(token_lists[i]), room)
        texts[i], token_lists[i], keep[i] = "", [], False
    tok_lens = torch.tensor([len(t) for t in token_lists])
    tokens = torch.zeros(len(rows), max(int(tok_lens.max()), 1), dtype=torch.long)
    for i, t in enumerate(token_lists):
        tokens[i, : len(t)] = torch.tensor(t, dtype=torch.long)
    inputs, _ = decoder_io(tokens, tok_lens, prompt=prompt, eos=eos)
    logits = teacher.model.decoder(inputs.to(teacher.device), enc.memory, enc.lengths)
    logp, ids = logits[:, len(prompt) - 1:].float().log_softmax(-1).topk(top_k, dim=-1)
    for i, e in enumerate(rows):
        if not keep[i]:
            continue
        n = len(token_lists[i]) + 1  # the tokens, then the end token
        cache[e["id"]] = (ids[i, :n].to(torch.int32).cpu(), logp[i, :n].half().cpu())
        entry = {**e, "text": texts[i]}
        if "text" in e:
            entry["reference"] = e["text"]
        taught.append(entry)


def load_memory(path: str | Path) -> dict[str, Tensor]:
    """memory.pt -> {id: the teacher's encoder output over the audio's own frames (T', D), float16}."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("version") != MEMORY_VERSION:
        raise ValueError(f"{path} is not a teacher's encoder outputs (write them with `asr teach --memory`)")
    return blob["entries"]


def memory_loss(memory: Tensor, lengths: Tensor, batch: Batch) -> Tensor:
    """Mean squared distance of the student's encoder output from the teacher's, over the frames both have,
    in the rows that have the teacher's."""
    T = min(memory.shape[1], batch.teacher_memory.shape[1])
    n = torch.minimum(lengths, batch.teacher_memory_lens)
    valid = (torch.arange(T, device=memory.device)[None, :] < n[:, None]) & batch.teacher[:, None]
    err = ((memory[:, :T].float() - batch.teacher_memory[:, :T].float()) ** 2).mean(-1)  # (B, T)
    return (err * valid).sum() / valid.sum().clamp(min=1)


def load_cache(path: str | Path, prompt: tuple[int, ...],
               entries: list[dict] | None = None) -> dict[str, tuple[Tensor, Tensor]]:
    """teacher.pt -> {id: (top-k ids (n+1, k), log-probs (n+1, k))}, refused unless it was computed
    from the `prompt` the student trains with. With `entries`: only the ids whose `text` is the
    transcript the distributions were computed along (a manifest with other texts gets no teacher)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("version") != CACHE_VERSION:
        raise ValueError(f"{path} is not a teacher cache of version {CACHE_VERSION} (write it with `asr teach`)")
    if tuple(blob["prompt"]) != tuple(prompt):
        raise ValueError(f"{path} was computed after the prompt {blob['prompt']}, the student's is {list(prompt)}: "
                         "teacher and student must share a tokenizer and prompt")
    cache = {k: (ids.long(), logp) for k, (ids, logp) in blob["entries"].items()}
    if entries is None:
        return cache
    texts = blob["texts"]
    other = {e["id"] for e in entries if e["id"] in cache and texts.get(e["id"]) != e["text"]}
    if other:
        log.warning("%d training utterances have another text than the teacher read (e.g. %s): no teacher for them",
                    len(other), min(other))
    return {k: v for k, v in cache.items() if k not in other}


def kl_loss(logits: Tensor, batch: Batch, prompt_len: int, targets: Tensor) -> Tensor:
    """Mean over the taught rows' target positions of KL(teacher top-k, renormalized || student).

    `logits` (B, P + L, V) from teacher forcing with a prompt of `prompt_len` tokens; `targets` as
    decoder_io gives them (-100 where a position predicts nothing)."""
    logq = logits[:, prompt_len - 1:].float().log_softmax(-1)  # (B, L + 1, V): predicting y1..yn, end
    L = logq.shape[1]
    p_log = batch.teacher_logp[:, :L].float().log_softmax(-1)  # the top-k renormalized
    q = logq.gather(-1, batch.teacher_ids[:, :L])
    kl = (p_log.exp() * (p_log - q)).sum(-1)  # (B, L + 1)
    valid = (targets[:, prompt_len - 1:] != -100) & batch.teacher[:, None]
    return (kl * valid).sum() / valid.sum().clamp(min=1)


def l2sp_penalty(params: list[tuple[Tensor, Tensor]]) -> Tensor:
    """Half the squared distance of the trained weights from their starting values (L2-SP)."""
    return 0.5 * sum(((p - p0.to(p.device)) ** 2).sum() for p, p0 in params)


def anchors(model: torch.nn.Module, start: dict[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
    """(trainable parameter, its starting value) pairs: `start` holds the init model's weights."""
    return [(p, start[name].detach().clone().to(p.device)) for name, p in model.named_parameters()
            if p.requires_grad and name in start]

