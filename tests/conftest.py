"""Shared fixtures: a tiny synthesized corpus (espeak-ng, offline, seconds to build); one torch
thread for modules that run tiny models; headless Chromium for the pages' tests; what a training
run logged."""

import contextlib
import csv
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def untrained_recognizer(*overrides: str, seed: int = 0):
    """configs/tiny.yaml (plus `overrides`) with seeded, untrained weights and a character tokenizer:
    for tests about plumbing (search, streams, batching), not accuracy."""
    import torch

    from asr.config import Config, load_config
    from asr.model.recognizer import Recognizer
    from asr.text.tokenizers import CharTokenizer

    torch.manual_seed(seed)
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", list(overrides))
    return Recognizer(cfg, CharTokenizer(list(" abcdefghijklmnopqrstuvwxyz'"))).eval()


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A few dozen synthesized command utterances with train/dev/test/test-unseen-voice manifests."""
    from asr.config import load_config
    from asr.synth.corpus import SynthConfig, build_corpus

    out = tmp_path_factory.mktemp("corpus")
    build_corpus(load_config(SynthConfig, ROOT / "recipes/synth/conf/tiny.yaml"), out)
    return out


def logged(exp: Path, key: str = "train/loss") -> list[float]:
    """The values of `key` a training run logged (EXP/logs/metrics.csv), in order."""
    with open(exp / "logs" / "metrics.csv") as f:
        return [float(r[key]) for r in csv.DictReader(f) if r.get(key)]


@pytest.fixture(scope="module")
def one_thread():
    """A tiny model on a shared machine: one thread, not several competing (10x faster here)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")


@contextlib.contextmanager
def chromium(width: int, height: int, args: tuple[str, ...] = (), browser_log: bool = False):
    """Headless Chromium driven by the system chromedriver (no Selenium Manager downloads); skips
    the test, saying why, without them."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (the test extra)")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no chromium/chromedriver on PATH (apt-get install -y chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", *args):
        opts.add_argument(arg)
    if browser_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
