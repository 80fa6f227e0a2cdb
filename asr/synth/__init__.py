"""Offline synthetic speech corpora: command grammar or Debian prose, read by several TTS engines.

    python -m asr.synth --config recipes/synth/conf/commands.yaml --out data/synth/commands
"""

from asr.synth.corpus import SPLITS, SynthConfig, build_corpus
from asr.synth.engines import SAMPLE_RATE, EngineError, Voice, available_engines, list_voices, synthesize

__all__ = ["SAMPLE_RATE", "SPLITS", "EngineError", "SynthConfig", "Voice", "available_engines", "build_corpus",
           "list_voices", "synthesize"]
