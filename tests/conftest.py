"""Shared fixtures: a tiny synthesized corpus (espeak-ng, offline, seconds to build)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A few dozen synthesized command utterances with train/dev/test/test-unseen-voice manifests."""
    from asr.config import load_config
    from asr.synth.corpus import SynthConfig, build_corpus

    out = tmp_path_factory.mktemp("corpus")
    build_corpus(load_config(SynthConfig, ROOT / "recipes/synth/conf/tiny.yaml"), out)
    return out
