"""Build a synthetic speech corpus: sentences -> voices -> 16 kHz WAVs -> JSONL manifests.

    cfg = load_config(SynthConfig, "recipes/synth/conf/commands.yaml", ["utts_train=500"])
    build_corpus(cfg, "data/synth/commands")

Stages, each skipped when its done-marker exists (re-running is cheap, an interrupted audio stage
resumes where it stopped):
  text       distinct sentences split into disjoint train / dev / test sets; test-unseen-voice
             speaks (a sample of) the test sentences              -> text/<split>.jsonl
             {"id", "text", "spoken", "source"}: `text` as people write it (kept in the manifests),
             `spoken` what the engines read (the same text, except everyday sentences' numbers)
  audio      a random voice, rate and pitch per utterance          -> plan/<split>.jsonl, wav/<split>/<id>.wav
  manifests  {"id", "audio", "duration", "text", "speaker"} (+ "language" outside English) -> <split>.jsonl
  gate       with `gate_model`: utterances a pretrained model hears far from their text leave the
             manifests (asr.synth.gate)                            -> gate/report.json
train/dev/test use the seen voices; test-unseen-voice uses voices never heard in training: the
`heldout_engines` (when another engine remains), a fraction of the espeak variants and the
`heldout_kokoro_voices`. Kokoro's seen voices also include `kokoro_blends` new speakers, each a blend
of 2-3 seen Kokoro voices (never of a held-out one), drawn from the seed.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

import asr.synth.commands as commands
import asr.synth.commands_es as commands_es
import asr.synth.everyday as everyday
import asr.synth.gate as gate
import asr.synth.kokoro as kokoro
import asr.synth.prose as prose
from asr.config import save_config, to_dict
from asr.storage import read_jsonl, write_jsonl
from asr.synth.engines import ENGINES, SAMPLE_RATE, EngineError, Voice, available_engines, list_voices, synthesize
from asr.text.normalize import normalize

SPLITS = ("train", "dev", "test", "test-unseen-voice")
GRAMMARS = {"en": commands, "es": commands_es}  # the command grammar of each language
SOURCES = ("commands", "prose", "everyday")  # text sources; "mixed" draws from several
STAGES = ("text", "audio", "manifests", "gate")


@dataclass
class SynthConfig:
    # "commands" (asr.synth.commands grammar), "prose" (asr.synth.prose), "everyday" (asr.synth.everyday)
    # or "mixed": several of them in the shares of `mix`, e.g. {prose: 0.6, everyday: 0.4}
    source: str = "commands"
    # the sentences' language: "en", or one with a command grammar of its own (GRAMMARS: "es"); the
    # voices are espeak-ng's for it (the other engines speak English only)
    language: str = "en"
    mix: dict[str, float] = field(default_factory=dict)
    prose_sources: list[str] = field(default_factory=lambda: list(prose.SOURCES))
    min_words: int = 3  # prose sentence length bounds
    max_words: int = 25
    utts_train: int = 4000
    utts_dev: int = 300
    utts_test: int = 300
    utts_unseen: int = 300  # test-unseen-voice: test sentences read by held-out voices
    # those installed are used; Kokoro (about 1x real time per core, 10-100x slower than the others)
    # only where a corpus config lists it
    engines: list[str] = field(default_factory=lambda: [e for e in ENGINES if e != "kokoro"])
    engine_weights: dict[str, float] = field(default_factory=dict)  # chance of each engine (default 1)
    train_engine_weights: dict[str, float] | None = None  # the train split's own (None: engine_weights)
    heldout_engines: list[str] = field(default_factory=lambda: ["flite"])  # test-unseen-voice only
    heldout_espeak_variants: float = 0.1  # fraction of espeak variants (in every accent) held out
    # Kokoro voices held out (one per accent and sex), and how many blended speakers (2-3 of the other
    # Kokoro voices each, asr.synth.kokoro) join the seen voices
    heldout_kokoro_voices: list[str] = field(default_factory=lambda: ["af_sarah", "am_puck", "bf_isabella", "bm_fable"])
    kokoro_blends: int = 24
    rate_range: tuple[float, float] = (0.85, 1.2)  # tempo factor, drawn per utterance
    pitch_range: tuple[float, float] = (0.87, 1.15)  # pitch factor, drawn per utterance
    peak_range: tuple[float, float] = (0.3, 0.95)  # peak level after normalisation
    pad_range: tuple[float, float] = (0.1, 0.2)  # seconds of silence kept at each end
    seed: int = 0
    workers: int = 2  # synthesis processes; 1 synthesizes in this process
    # Quality gate (asr.synth.gate; may be added to a built corpus): a pretrained model (`asr models`)
    # transcribes the utterances of gate_splits; those with a WER above gate_max_wer are dropped
    gate_model: str | None = None
    gate_max_wer: float = 0.5
    gate_splits: list[str] = field(default_factory=lambda: ["train", "dev"])


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- text


def source_rows(cfg: SynthConfig, source: str, n: int, rng: random.Random) -> list[dict]:
    """Up to n distinct sentences of one source as {"text", "spoken", "source"} rows."""
    if source == "commands":
        return [{"text": s, "spoken": s, "source": "commands"} for s in GRAMMARS[cfg.language].generate(n, cfg.seed)]
    if source == "everyday":
        return [
            {"text": r["text"], "spoken": r["spoken"], "source": "everyday"} for r in everyday.generate(n, cfg.seed)
        ]
    by_source = prose.load_sentences(cfg.prose_sources, cfg.min_words, cfg.max_words)
    _log("prose sentences: " + (", ".join(f"{k} {len(v)}" for k, v in by_source.items()) or "none installed"))
    # engines read prose as it is written (case and punctuation help them)
    pool = [{"text": s, "spoken": s, "source": k} for k, v in by_source.items() for s in v]
    return rng.sample(pool, min(n, len(pool)))


def mix_counts(mix: dict[str, float], n: int) -> dict[str, int]:
    """n sentences shared out in proportion to the weights of `mix` (largest remainders round up)."""
    total = sum(mix.values())
    exact = {s: n * w / total for s, w in sorted(mix.items())}
    counts = {s: int(x) for s, x in exact.items()}
    for s in sorted(exact, key=lambda s: counts[s] - exact[s])[: n - sum(counts.values())]:
        counts[s] += 1
    return counts


def mixed_rows(cfg: SynthConfig, n: int, rng: random.Random) -> list[dict]:
    """n sentences from the sources of `cfg.mix`; a sentence two sources share is kept once."""
    pool, seen = [], set()
    for source, k in mix_counts(cfg.mix, n).items():
        if k == 0:
            continue
        rows = source_rows(cfg, source, k + k // 20 + 10, rng)  # some spare for sentences already taken
        rows = [r for r in rows if normalize(r["text"]) not in seen][:k]
        if len(rows) < k:
            raise ValueError(f"source {source} gives {len(rows)} new sentences, {k} needed")
        seen.update(normalize(r["text"]) for r in rows)
        pool += rows
    return pool


def choose_sentences(cfg: SynthConfig) -> dict[str, list[dict]]:
    """Disjoint sentence sets per split (test-unseen-voice reuses test sentences)."""
    rng = random.Random(cfg.seed)
    n = cfg.utts_train + cfg.utts_dev + cfg.utts_test
    if cfg.source == "mixed":
        pool = mixed_rows(cfg, n, rng)
    elif cfg.source in SOURCES:
        pool = source_rows(cfg, cfg.source, n, rng)
        if len(pool) < n:
            raise ValueError(f"source {cfg.source} gives {len(pool)} sentences, {n} needed")
    else:
        raise ValueError(f"unknown source {cfg.source!r}: one of {', '.join(SOURCES)}, mixed")
    rng.shuffle(pool)
    a, b = cfg.utts_train, cfg.utts_train + cfg.utts_dev
    sets = {"train": pool[:a], "dev": pool[a:b], "test": pool[b:n]}
    test = sets["test"]
    if cfg.utts_unseen <= len(test):
        sets["test-unseen-voice"] = rng.sample(test, cfg.utts_unseen)
    else:
        sets["test-unseen-voice"] = [test[i % len(test)] for i in range(cfg.utts_unseen)]
    return {split: [{"id": f"{split}-{i:06d}", **row} for i, row in enumerate(rows)] for split, rows in sets.items()}


def stage_text(cfg: SynthConfig, out: Path) -> None:
    (out / "text").mkdir(parents=True, exist_ok=True)
    for split, rows in choose_sentences(cfg).items():
        write_jsonl(out / "text" / f"{split}.jsonl", rows)


# --------------------------------------------------------------------------- voices


def voice_pools(cfg: SynthConfig) -> tuple[dict[str, list[Voice]], dict[str, list[Voice]]]:
    """(seen, unseen): engine -> base voices; no voice is in both."""
    validate(cfg)
    installed = available_engines()
    voices: dict[str, list[Voice]] = {}
    for engine in cfg.engines:
        if engine not in installed:
            _log(f"engine {engine}: not installed, skipped")
            continue
        try:
            voices[engine] = list_voices(engine, cfg.language)
        except (EngineError, OSError, ImportError) as e:
            _log(f"engine {engine}: unusable ({e}), skipped")
    for engine in [e for e, v in voices.items() if not v]:
        _log(f"engine {engine}: no voice for language {cfg.language!r}, skipped")
        del voices[engine]
    if not voices:
        raise EngineError(f"no synthesis engine is usable for language {cfg.language!r}")
    held = [e for e in cfg.heldout_engines if e in voices]
    if len(held) == len(voices):  # keep at least one engine for training
        held = held[:-1]
    seen = {e: v for e, v in voices.items() if e not in held}
    unseen = {e: v for e, v in voices.items() if e in held}
    if "espeak" in seen and cfg.heldout_espeak_variants > 0:
        variants = sorted({v.name.split("+", 1)[1] for v in seen["espeak"] if "+" in v.name})
        k = max(1, round(cfg.heldout_espeak_variants * len(variants)))
        out_variants = set(random.Random(cfg.seed).sample(variants, k))
        is_held = [("+" in v.name and v.name.split("+", 1)[1] in out_variants) for v in seen["espeak"]]
        unseen["espeak"] = [v for v, h in zip(seen["espeak"], is_held) if h]
        seen["espeak"] = [v for v, h in zip(seen["espeak"], is_held) if not h]
    if "kokoro" in seen:
        seen["kokoro"], unseen["kokoro"] = _kokoro_pools(seen["kokoro"], cfg)
    return seen, {e: v for e, v in unseen.items() if v}


def _kokoro_pools(base: list[Voice], cfg: SynthConfig) -> tuple[list[Voice], list[Voice]]:
    """(seen, unseen) Kokoro voices: the held-out ones are unseen; the rest and blends of them are seen."""
    held = set(cfg.heldout_kokoro_voices)
    kept = [v.name for v in base if v.name not in held]
    blends = kokoro.random_blends(kept, cfg.kokoro_blends, random.Random(f"{cfg.seed}-kokoro"))
    return [Voice("kokoro", name) for name in kept + blends], [v for v in base if v.name in held]


def _draw_voice(pool: dict[str, list[Voice]], cfg: SynthConfig, weights: dict[str, float], rng: random.Random) -> Voice:
    engines = sorted(pool)
    engine = rng.choices(engines, weights=[weights.get(e, 1.0) for e in engines])[0]
    return dataclasses.replace(rng.choice(pool[engine]), rate=round(rng.uniform(*cfg.rate_range), 3),
                               pitch=round(rng.uniform(*cfg.pitch_range), 3))


def plan_audio(cfg: SynthConfig, out: Path) -> dict[str, list[dict]]:
    """Per utterance: voice, rate, pitch, level, padding and wav path (deterministic given the seed)."""
    seen, unseen = voice_pools(cfg)
    if not unseen:
        raise EngineError("no voice left to hold out for test-unseen-voice")
    listing = {name: {e: [v.id for v in vs] for e, vs in pool.items()}
               for name, pool in (("seen", seen), ("unseen", unseen))}
    (out / "voices.json").write_text(json.dumps(listing, indent=1))
    plans = {}
    for split in SPLITS:
        rng = random.Random(f"{cfg.seed}-{split}")
        pool = unseen if split == "test-unseen-voice" else seen
        weights = (
            cfg.train_engine_weights
            if split == "train" and cfg.train_engine_weights is not None
            else cfg.engine_weights
        )
        rows = []
        for row in read_jsonl(out / "text" / f"{split}.jsonl"):
            v = _draw_voice(pool, cfg, weights, rng)
            rows.append({**row, "speaker": v.id, "engine": v.engine, "voice": v.name, "rate": v.rate, "pitch": v.pitch,
                         "peak": round(rng.uniform(*cfg.peak_range), 3), "pad": round(rng.uniform(*cfg.pad_range), 3),
                         "audio": str((out / "wav" / split / f"{row['id']}.wav").resolve())})
        plans[split] = rows
    return plans


# --------------------------------------------------------------------------- audio


def synth_utterance(job: dict) -> tuple[str, str | None, float, float]:
    """Synthesize one planned utterance to its wav path. Never raises:
    (id, error message or None, seconds spent, seconds of audio)."""
    start = time.time()
    try:
        voice = Voice(job["engine"], job["voice"], job["rate"], job["pitch"])
        audio = synthesize(job.get("spoken", job["text"]), voice, pad=job["pad"], peak=job["peak"])
        tmp = job["audio"] + ".tmp"
        sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        os.replace(tmp, job["audio"])
        return job["id"], None, time.time() - start, len(audio) / SAMPLE_RATE
    except Exception as e:  # one bad utterance must not stop the corpus
        return job["id"], f"{type(e).__name__}: {e}", time.time() - start, 0.0


def _progress(done: int, total: int, start: float, failed: int) -> None:
    rate = done / max(time.time() - start, 1e-6)
    eta = (total - done) / rate if rate > 0 else 0
    print(f"\r  audio {done}/{total}  {rate:.1f} utt/s  eta {eta / 60:.1f} min  failed {failed}  ",
          end="", file=sys.stderr, flush=True)


def _run_jobs(jobs: list[dict], workers: int):
    """Yield synth_utterance results; a crashed worker process costs a retry of the rest, not the build."""
    if workers <= 1:
        yield from map(synth_utterance, jobs)
        return
    for attempt in range(3):
        todo = [j for j in jobs if not os.path.exists(j["audio"])]
        if not todo:
            return
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            yield from pool.map(synth_utterance, todo, chunksize=8)
            return
        except BrokenProcessPool:
            _log(f"\n  a synthesis process died (attempt {attempt + 1}); restarting the pool")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    for j in jobs:
        if not os.path.exists(j["audio"]):
            yield j["id"], "synthesis process died", 0.0, 0.0


def stage_audio(cfg: SynthConfig, out: Path) -> None:
    plans = plan_audio(cfg, out)
    (out / "plan").mkdir(exist_ok=True)
    for split, rows in plans.items():
        write_jsonl(out / "plan" / f"{split}.jsonl", rows)
        (out / "wav" / split).mkdir(parents=True, exist_ok=True)
    jobs = [r for rows in plans.values() for r in rows if not os.path.exists(r["audio"])]
    random.Random(cfg.seed).shuffle(jobs)  # mix engines so both workers stay busy
    engine_of = {r["id"]: r["engine"] for r in jobs}
    cost: dict[str, list[float]] = {}  # engine -> [utterances, seconds spent, seconds of audio]
    failures, start = [], time.time()
    for i, (utt, err, spent, seconds) in enumerate(_run_jobs(jobs, cfg.workers), 1):
        c = cost.setdefault(engine_of[utt], [0, 0.0, 0.0])
        c[0], c[1], c[2] = c[0] + 1, c[1] + spent, c[2] + seconds
        if err:
            failures.append({"id": utt, "error": err})
            _log(f"\n  {utt}: {err}")
        if i % 25 == 0 or i == len(jobs):
            _progress(i, len(jobs), start, len(failures))
    print(file=sys.stderr)
    if jobs:
        _log(f"  synthesized {len(jobs) - len(failures)} utterances in {time.time() - start:.1f} s "
             f"with {max(1, cfg.workers)} worker(s)")
        for engine, (n, spent, seconds) in sorted(cost.items()):
            _log(f"  {engine:<9} {n:>6} utts  {n / spent:6.1f} utt/s per worker  {seconds / spent:6.1f}x realtime")
    if failures:
        with open(out / "failed.jsonl", "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in failures)


# --------------------------------------------------------------------------- manifests


def stage_manifests(out: Path, language: str = "en") -> None:
    """The manifests of the utterances synthesized; outside English each entry names its language
    (`asr evaluate` picks the normalizer by it)."""
    extra = {} if language == "en" else {"language": language}
    for split in SPLITS:
        rows = []
        for r in read_jsonl(out / "plan" / f"{split}.jsonl"):
            if not os.path.exists(r["audio"]):  # failed: logged in failed.jsonl
                continue
            info = sf.info(r["audio"])
            rows.append({"id": r["id"], "audio": r["audio"], "duration": round(info.frames / info.samplerate, 4),
                         "text": r["text"], "speaker": r["speaker"], **extra})
        write_jsonl(out / f"{split}.jsonl", rows)


def summarize(out: Path) -> dict[str, dict]:
    """Utterances, hours, voices and engines per split; checks that unseen voices are unseen."""
    stats = {}
    for split in SPLITS:
        rows = read_jsonl(out / f"{split}.jsonl")
        speakers = {r["speaker"] for r in rows}
        stats[split] = {"utts": len(rows), "hours": round(sum(r["duration"] for r in rows) / 3600, 3),
                        "voices": len(speakers),
                        "engines": dict(sorted(Counter(r["speaker"].split(":")[0] for r in rows).items())),
                        "speakers": speakers}
    train = stats["train"]["speakers"]  # and the parents of train's Kokoro blends:
    heard = train | {f"kokoro:{parent}" for s in train if s.startswith("kokoro:")
                     for parent, _ in kokoro.parse_blend(s.split(":", 1)[1])}
    leaked = stats["test-unseen-voice"]["speakers"] & heard
    if leaked:
        raise AssertionError(f"unseen voices found in train: {sorted(leaked)[:5]}")
    for s in stats.values():
        del s["speakers"]
    return stats


def print_summary(stats: dict[str, dict]) -> None:
    print(f"{'split':<18} {'utts':>6} {'hours':>7} {'voices':>6}  engines")
    for split, s in stats.items():
        engines = " ".join(f"{e}:{n}" for e, n in s["engines"].items())
        print(f"{split:<18} {s['utts']:>6} {s['hours']:>7.2f} {s['voices']:>6}  {engines}")


# --------------------------------------------------------------------------- driver


def validate(cfg: SynthConfig) -> None:
    """Names that the dataclass types cannot check."""
    if cfg.source not in SOURCES + ("mixed",):
        raise ValueError(f"unknown source {cfg.source!r}: one of {', '.join(SOURCES)}, mixed")
    if cfg.language not in GRAMMARS:
        raise ValueError(f"no command grammar in language {cfg.language!r}: one of {', '.join(GRAMMARS)}")
    if cfg.language != "en" and cfg.source != "commands":
        raise ValueError(f"source {cfg.source} is English: other languages ({cfg.language}) have the commands only")
    if (cfg.source == "mixed") != bool(cfg.mix):
        raise ValueError("source: mixed needs mix (e.g. {prose: 0.6, everyday: 0.4}), and only it takes one")
    if set(cfg.mix) - set(SOURCES) or any(w < 0 for w in cfg.mix.values()) or (cfg.mix and sum(cfg.mix.values()) <= 0):
        raise ValueError(f"mix takes non-negative shares of {', '.join(SOURCES)}, not {cfg.mix}")
    unknown = sorted((set(cfg.engines) | set(cfg.heldout_engines) | set(cfg.engine_weights)
                     | set(cfg.train_engine_weights or {})) - set(ENGINES))
    unknown += sorted(set(cfg.prose_sources) - set(prose.SOURCES))
    unknown += sorted(set(cfg.heldout_kokoro_voices) - set(kokoro.VOICES))
    if unknown:
        raise ValueError(f"unknown engine(s), prose source(s) or Kokoro voice(s): {', '.join(unknown)}; "
                         f"known: {', '.join(ENGINES + prose.SOURCES + kokoro.VOICES)}")
    if set(cfg.gate_splits) - set(SPLITS) or not 0 <= cfg.gate_max_wer:
        raise ValueError(f"gate_splits must be among {', '.join(SPLITS)} and gate_max_wer >= 0 "
                         f"(got {cfg.gate_splits}, {cfg.gate_max_wer})")
    if cfg.kokoro_blends < 0:
        raise ValueError(f"kokoro_blends must be >= 0, not {cfg.kokoro_blends}")


def _check_config(cfg: SynthConfig, out: Path) -> None:
    """Refuse to mix corpora: a directory keeps the config it was started with (workers aside)."""
    path = out / "synth.yaml"
    if path.exists():
        import yaml

        old = yaml.safe_load(path.read_text()) or {}
        new, default = to_dict(cfg), to_dict(SynthConfig())
        # a field newer than the corpus counts as its default there
        free = {"workers", "gate_model", "gate_max_wer", "gate_splits"}  # the gate may be added to a built corpus
        diff = sorted(k for k in set(old) | set(new) if k not in free and old.get(k, default.get(k)) != new.get(k))
        if diff:
            raise ValueError(f"{out} was built with a different config ({', '.join(diff)}); use a new directory")
    else:
        save_config(cfg, path)


def build_corpus(cfg: SynthConfig, out_dir: str | Path, stage: str = "all") -> dict[str, dict] | None:
    """Run the stages up to `stage` ("text", "audio", "manifests" or "all"); returns the summary when complete."""
    if stage not in STAGES + ("all",):
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, all")
    validate(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(cfg, out)
    runners = {"text": lambda: stage_text(cfg, out), "audio": lambda: stage_audio(cfg, out),
               "manifests": lambda: stage_manifests(out, cfg.language),
               "gate": lambda: gate.stage_gate(out, cfg.gate_model, cfg.gate_max_wer, cfg.gate_splits)}
    last = STAGES.index(stage) if stage != "all" else len(STAGES) - 1
    for name in STAGES[: last + 1]:
        marker = out / f".done.{name}"
        if name == "gate" and cfg.gate_model is None:
            continue  # no gate asked for (none run)
        if marker.exists():
            _log(f"stage {name}: done already ({marker})")
            continue
        _log(f"stage {name}")
        t = time.time()
        runners[name]()
        marker.write_text(f"{time.time() - t:.1f} s\n")
    if last < len(STAGES) - 1:
        return None
    stats = summarize(out)
    (out / "summary.json").write_text(json.dumps(stats, indent=1))
    print_summary(stats)
    return stats

