"""`asr evaluate --html`: one self-contained page per run, with the summary, per-speaker and
per-length tables, coloured alignments of the worst utterances and inline PNGs that decode; it
renders in headless Chromium without errors. And validation's TensorBoard images and samples."""

import base64
import io
import os
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from asr.cli import main
from asr.config import Config, load_config
from asr.evaluate.report import alignment_html, group_wer
from asr.model.recognizer import Recognizer
from asr.text.tokenizers import CharTokenizer
from tests.conftest import chromium

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("matplotlib", reason="the HTML report draws with matplotlib: pip install matplotlib")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """An untrained model (with a CTC head): its transcripts are non-empty garbage, all errors."""
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", ["decode.beam_size=1"])
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.manual_seed(0)  # the same weights whatever ran before (some random ones end at once: empty text)
    Recognizer(cfg, CharTokenizer(list(" abcdefghijklmnopqrstuvwxyz'"))).eval().save(path)
    return path


@pytest.fixture(scope="module")
def report(model_path, tiny_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval")
    manifests = [str(tiny_corpus / "test.jsonl"), str(tiny_corpus / "test-unseen-voice.jsonl")]
    assert main(["evaluate", "-m", str(model_path), *manifests, "--out", str(out), "--html"]) == 0
    return out / "report.html"


class Page(HTMLParser):
    """Tables (by id or first class) as lists of rows of cell text, span classes, image sources."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.span_classes: list[str] = []
        self.images: list[str] = []
        self.table = self.cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            name = a.get("id") or a.get("class", "").split()[-1]
            self.table = self.tables.setdefault(name + ("*" if name in self.tables else ""), [])
        elif tag == "tr" and self.table is not None:
            self.table.append([])
        elif tag in ("td", "th") and self.table is not None:
            self.table[-1].append("")
            self.cell = True
        elif tag == "span" and self.table is not None:
            self.span_classes.append(a.get("class", ""))
        elif tag == "img":
            self.images.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = self.cell = None
        elif tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        if self.cell:
            self.table[-1][-1] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    return page


def test_the_page_holds_the_tables_and_coloured_alignments(report, tiny_corpus):
    page = parse(report)
    summary = page.tables["summary"]
    assert summary[0][:4] == ["test set", "utterances", "words", "WER %"] and "RTF" in summary[0]
    assert [r[0] for r in summary[1:]] == ["test", "test-unseen-voice"]
    assert all(int(r[1]) > 0 and float(r[3]) > 0 for r in summary[1:])  # garbage transcripts: errors
    speakers = page.tables["group-speaker"]
    assert speakers[0][0] == "speaker" and all(r[0].startswith("espeak:") for r in speakers[1:])
    assert page.tables["group-engine"][1][0] == "espeak"
    lengths = page.tables["group-length"]
    assert len(lengths) > 1 and all("-" in r[0] or r[0].endswith("+") for r in lengths[1:])
    utts = sum(int(r[1]) for r in summary[1:])
    assert sum(int(r[1]) for t, rows in page.tables.items() if t.startswith("group-length") for r in rows[1:]) == utts
    worst = page.tables["worst"]
    assert 1 < len(worst) <= 21 and worst[0][-1] == "alignment"
    assert {"sub", "ins", "del"} & set(page.span_classes) and "al" in page.span_classes
    assert not any(s.startswith(("http:", "https:", "//")) for s in page.images)  # self-contained


def test_embedded_images_decode(report):
    images = parse(report).images
    assert images and all(s.startswith("data:image/png;base64,") for s in images)
    # bar plots per set and grouping (2 x 3), then attention + CTC for 3 utterances
    assert len(images) == 2 * 3 + 3 * 2
    for src in images:
        im = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert im.format == "PNG" and im.width > 100 and im.height > 100
        assert np.asarray(im).std() > 0  # something is drawn


def test_alignment_spans_by_hand():
    html = alignment_html("turn on the big lights", "turn the red lights now")
    assert html == ("<span class=al><span class=eq>turn</span> <span class=del>on</span> <span class=eq>the</span> "
                    "<span class=sub><del>big</del>&rarr;<ins>red</ins></span> <span class=eq>lights</span> "
                    "<span class=ins>now</span></span>")
    assert alignment_html("", "hello") == "<span class=al><span class=ins>hello</span></span>"
    assert "<span class=del>a b</span>" in alignment_html("a b", "")
    assert "&lt;b&gt;" in alignment_html("<b>", "<b>")  # text is escaped


def test_group_wer_is_total_edits_over_total_words():
    rows = [{"words": 10, "errors": 0, "speaker": "a:x"}, {"words": 1, "errors": 1, "speaker": "a:y"}]
    (g,) = group_wer(rows, lambda r: r["speaker"].split(":")[0])
    assert g[:4] == ("a", 2, 11, 1) and abs(g[4] - 100 / 11) < 1e-9


def test_the_page_renders_in_chromium(report, tmp_path):
    """ASR_REPORT (an existing report.html) and ASR_REPORT_SCREENSHOT make recipes/synth/report.png."""
    from selenium.webdriver.common.by import By

    path = Path(os.environ.get("ASR_REPORT") or report)
    with chromium(1200, 900, browser_log=True) as page:
        page.get(path.resolve().as_uri())
        assert page.find_element(By.ID, "summary").is_displayed()
        assert len(page.find_elements(By.CSS_SELECTOR, "table.group")) >= 3
        assert page.find_elements(By.CSS_SELECTOR, "#worst .al span")
        widths = page.execute_script("return Array.from(document.images, i => i.complete ? i.naturalWidth : 0)")
        assert widths and all(w > 0 for w in widths)
        errors = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        height = page.execute_script("return document.body.scrollHeight")
        page.set_window_size(1200, min(height + 40, 8000))
        page.save_screenshot(str(os.environ.get("ASR_REPORT_SCREENSHOT") or tmp_path / "report.png"))


def test_validation_logs_attention_and_samples_to_tensorboard(model_path, tmp_path):
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from asr.config import to_dict
    from asr.data.dataset import Batch
    from asr.train.trainer import ASRTask

    rec = Recognizer.load(model_path)
    task = ASRTask(to_dict(rec.cfg), rec.tokenizer.to_dict()).eval()
    tb = TensorBoardLogger(tmp_path, name="tb", version="")
    task._trainer = SimpleNamespace(loggers=[tb], is_global_zero=True, global_step=7)  # no fit needed
    wav = torch.randn(2, 16000) * 0.1
    enc = task.recognizer.encode(wav, torch.tensor([16000, 12000]))
    batch = Batch(
        wav, torch.tensor([16000, 12000]), torch.zeros(2, 1), torch.ones(2), ["u1", "u2"], ["One two", "three"]
    )
    task.log_samples(batch, enc, ["abc", "de"])
    tb.experiment.flush()
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    (image,) = acc.Images("val/cross_attention")
    assert image.step == 7 and image.width == int(enc.lengths[0]) and image.height == len("abc") + 1
    text = acc.Tensors("val/samples/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| u1 | one two | abc |" in text and "| u2 | three | de |" in text
