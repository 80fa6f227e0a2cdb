"""Live transcription over a WebSocket: `/v1/realtime`, in the shape of OpenAI's Realtime
transcription events, so clients written for it need only the URL changed.

Client -> server (JSON text frames):
    {"type": "transcription_session.update", "session": {"input_audio_format": "pcm16",
        "sample_rate": 16000, "input_audio_transcription": {"language": "fr", "prompt": "..."},
        "turn_detection": {"silence_duration_ms": 600}}}       (every field optional)
    {"type": "input_audio_buffer.append", "audio": "<base64 of 16-bit little-endian mono PCM>"}
    {"type": "input_audio_buffer.commit"}                       the utterance so far is final now
    {"type": "input_audio_buffer.clear"}                        drop what was not yet final
Server -> client:
    transcription_session.created / .updated                    {"session": {...}}
    input_audio_buffer.speech_started                           {"item_id", "audio_start_ms"}
    conversation.item.input_audio_transcription.delta           {"item_id", "delta"}: newly committed words
    asr.partial                                                 {"item_id", "text", "stable"}: the whole
                                                                tentative text (ours: for captions)
    input_audio_buffer.speech_stopped, input_audio_buffer.committed   {"item_id", "audio_end_ms"}
    conversation.item.input_audio_transcription.completed       {"item_id", "transcript", "language", ...}
    error                                                       {"error": {"type", "code", "message", "param"}}

Audio is 24 kHz as OpenAI's pcm16 is, unless the session says `sample_rate`. A bad event gets an
`error` event with a message and the session goes on. Each session's audio is judged (speech or
not) on a thread of its own; its decodes go to the `SharedDecoder`, which gathers what the sessions ask
for at about the same time into one batch on the service's one model thread, between the batches of
file requests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import queue
import threading
import time
from concurrent.futures import Executor, Future

import numpy as np
import torch
from starlette.websockets import WebSocket, WebSocketDisconnect

from asr.audio.read import Resampler
from asr.audio.segment import Segment
from asr.decode.task import Search
from asr.results import SegmentText
from asr.transcribe.batches import decode_segments
from asr.transcribe.live import Event, LiveOptions, Stream, decode_one

log = logging.getLogger(__name__)
MAX_APPEND = 15 << 20  # bytes of base64 audio in one event (OpenAI's limit)


class EventError(ValueError):
    def __init__(self, message: str, code: str = "invalid_value", param: str | None = None):
        super().__init__(message)
        self.code, self.param = code, param


@dataclasses.dataclass
class Session:
    sample_rate: int = 24000
    language: str | None = None
    prompt: str | None = None
    live: LiveOptions = LiveOptions()

    def to_dict(self) -> dict:
        return {"object": "realtime.transcription_session", "input_audio_format": "pcm16",
                "sample_rate": self.sample_rate,
                "input_audio_transcription": {"language": self.language, "prompt": self.prompt},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": round(1000 * self.live.end_silence),
                                   "prefix_padding_ms": round(1000 * self.live.pre_roll)}}

    def updated(self, d: dict) -> Session:
        """This session with the fields of an update event's `session`; an EventError for a bad one."""
        if not isinstance(d, dict):
            raise EventError("session must be an object", param="session")
        fmt = d.get("input_audio_format", "pcm16")
        if fmt != "pcm16":
            raise EventError(f"input_audio_format {fmt!r}: only pcm16 (16-bit little-endian mono)",
                             param="session.input_audio_format")
        rate = d.get("sample_rate", self.sample_rate)
        if not isinstance(rate, int) or not 8000 <= rate <= 96000:
            raise EventError(f"sample_rate must be an integer from 8000 to 96000, not {rate!r}",
                             param="session.sample_rate")
        tr = d.get("input_audio_transcription") or {}
        turn = d.get("turn_detection") or {}
        live = self.live
        try:
            if "silence_duration_ms" in turn:
                live = dataclasses.replace(live, end_silence=float(turn["silence_duration_ms"]) / 1000)
            if "prefix_padding_ms" in turn:
                live = dataclasses.replace(live, pre_roll=float(turn["prefix_padding_ms"]) / 1000)
        except (TypeError, ValueError) as e:
            raise EventError(str(e), param="session.turn_detection") from None
        return Session(rate, tr.get("language", self.language) or None, tr.get("prompt", self.prompt) or None, live)


class SharedDecoder:
    """The decodes of many live streams, batched: a stream's thread calls it with (search, segment)
    and waits; the requests that arrive within `wait` seconds of the first (up to `max_batch`) are
    decoded together on `worker` (the model's one thread), one batch per distinct search. Searches
    that decode alike (same model, options and rules: the partial searches of unprompted streams, or
    their finals) share a batch; a Whisper stream prompted with its own text before decodes alone.
    `max_batch` 1 decodes each request on its own, in the order they came."""

    def __init__(self, worker: Executor, max_batch: int = 8, wait: float = 0.015):
        self.worker, self.max_batch, self.wait = worker, max_batch, wait
        self.requests: queue.Queue[tuple[Search, Segment, Future]] = queue.Queue()
        self.batches = self.decoded = self.largest = 0
        self.gatherer: threading.Thread | None = None  # started by the first request
        self.lock = threading.Lock()

    def __call__(self, search: Search, seg: Segment) -> SegmentText:
        if self.max_batch == 1:
            return self.worker.submit(self._decode_one, search, seg).result()
        with self.lock:
            if self.gatherer is None:
                self.gatherer = threading.Thread(target=self._gather, name="asr-live-batcher", daemon=True)
                self.gatherer.start()
        done: Future = Future()
        self.requests.put((search, seg, done))
        return done.result()

    def _gather(self) -> None:
        while True:
            group = [self.requests.get()]
            deadline = time.monotonic() + self.wait
            while len(group) < self.max_batch:
                try:
                    group.append(self.requests.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            self.worker.submit(self._decode, group).result()

    def _decode(self, group: list[tuple[Search, Segment, Future]]) -> None:
        self.batches, self.decoded = self.batches + 1, self.decoded + len(group)
        self.largest = max(self.largest, len(group))
        kinds: dict[object, list[int]] = {}
        for k, (search, _, _) in enumerate(group):
            kinds.setdefault(_alike(search), []).append(k)
        for ks in kinds.values():
            search = group[ks[0]][0]
            try:
                with torch.inference_mode():
                    for k, _, text in decode_segments(search, [(k, group[k][1]) for k in ks], len(ks)):
                        group[k][2].set_result(text)
            except Exception as e:  # those streams' sessions see it; the others go on
                log.exception("decoding %d live segments failed", len(ks))
                for k in ks:
                    if not group[k][2].done():
                        group[k][2].set_exception(e)

    def _decode_one(self, search: Search, seg: Segment) -> SegmentText:
        self.batches, self.decoded, self.largest = self.batches + 1, self.decoded + 1, 1
        with torch.inference_mode():
            return decode_one(search, seg)

    def stats(self) -> dict:
        return {"live_decodes": self.decoded, "live_batches": self.batches, "largest_live_batch": self.largest}


def _alike(search: Search) -> object:
    """Searches with equal keys decode a segment alike (one may decode for another)."""
    key = (id(search.rec), search.options, search.rules, search.plain, search.detect)
    try:
        hash(key)
    except TypeError:  # an option that cannot be hashed: this search batches with itself only
        return id(search)
    return key


class Connection:
    """One client: its session, its stream, and the events it is sent. `max_seconds` of audio in
    all, and at most `burst` seconds ahead of real time, so one client cannot starve the others."""

    def __init__(self, ws: WebSocket, search: Search, feeds: Executor, decoder: SharedDecoder,
                 max_seconds: float = 4 * 3600.0, burst: float = 60.0):
        self.ws, self.base, self.feeds, self.decoder = ws, search, feeds, decoder
        self.session, self.items, self.sent_stable = Session(), 0, ""
        self._use(Session())
        self.max_seconds, self.burst = max_seconds, burst
        self.received, self.began = 0.0, time.monotonic()

    def _use(self, s: Session) -> None:
        """A fresh stream for session `s` (and a resampler from its rate); a language the model
        cannot do is a ValueError here, and the session before stays."""
        search = self.base
        if s.language or s.prompt:
            search = Search(self.base.rec, self.base.options.replaced(language=s.language, prompt=s.prompt))
        stream = Stream(search, s.live, self.decoder)
        self.session, self.stream, self.resampler = s, stream, Resampler(s.sample_rate, stream.rate)

    async def send(self, kind: str, **fields) -> None:
        await self.ws.send_text(json.dumps({"type": kind, **fields}, ensure_ascii=False))

    async def error(self, e: EventError) -> None:
        await self.send("error", error={"type": "invalid_request_error", "code": e.code, "message": str(e),
                                        "param": e.param})

    async def handle(self, text: str) -> None:
        try:
            event = json.loads(text)
        except json.JSONDecodeError as e:
            raise EventError(f"not JSON: {e}", "invalid_json") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise EventError("an event is a JSON object with a string field 'type'", "invalid_event", "type")
        kind = event["type"]
        if kind == "transcription_session.update":
            session = self.session.updated(event.get("session"))
            try:
                self._use(session)  # what was not yet final is dropped
            except ValueError as e:  # a language the model cannot do
                raise EventError(str(e), param="session.input_audio_transcription.language") from None
            await self.send("transcription_session.updated", session=self.session.to_dict())
        elif kind == "input_audio_buffer.append":
            audio = self._samples(event.get("audio"))
            seconds = len(audio) / self.stream.rate
            if self.received + seconds > self.max_seconds:
                raise EventError(f"this session has sent its {self.max_seconds:g} s of audio: open a new one",
                                 "session_audio_limit", "audio")
            if self.received + seconds > time.monotonic() - self.began + self.burst:
                raise EventError(f"audio is arriving more than {self.burst:g} s ahead of real time: this chunk "
                                 "was dropped; send at the speed of speech", "rate_limit_exceeded", "audio")
            self.received += seconds
            await self.emit(await self._run(self.stream.feed, audio))
        elif kind == "input_audio_buffer.commit":
            await self.emit(await self._run(self.stream.feed, self.resampler.flush()))
            await self.emit(await self._run(self.stream.flush))
        elif kind == "input_audio_buffer.clear":
            self._use(self.session)
            await self.send("input_audio_buffer.cleared")
        else:
            raise EventError(f"unknown event type {kind!r}", "unknown_event", "type")

    def _samples(self, audio) -> np.ndarray:
        if not isinstance(audio, str) or len(audio) > MAX_APPEND:
            raise EventError(f"audio must be a base64 string of at most {MAX_APPEND} characters", param="audio")
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise EventError("audio is not valid base64", param="audio") from None
        if len(data) % 2:
            raise EventError("audio must be whole 16-bit samples (an even number of bytes)", param="audio")
        return self.resampler(np.frombuffer(data, "<i2").astype(np.float32) / 32768.0)

    async def _run(self, fn, *args) -> list[Event]:
        return await asyncio.get_running_loop().run_in_executor(self.feeds, fn, *args)

    async def emit(self, events: list[Event]) -> None:
        for e in events:
            item = f"item_{self.items}"
            if e.kind == "speech_started":
                self.items += 1
                self.sent_stable = ""
                await self.send("input_audio_buffer.speech_started", item_id=f"item_{self.items}",
                                audio_start_ms=round(1000 * e.start))
            elif e.kind == "partial":
                if len(e.stable) > len(self.sent_stable) and e.stable.startswith(self.sent_stable):
                    await self.send("conversation.item.input_audio_transcription.delta", item_id=item, content_index=0,
                                    delta=e.stable[len(self.sent_stable):].lstrip() if not self.sent_stable
                                    else e.stable[len(self.sent_stable):])
                    self.sent_stable = e.stable
                await self.send("asr.partial", item_id=item, text=e.text, stable=e.stable)
            elif e.kind == "final":
                await self.send("input_audio_buffer.speech_stopped", item_id=item, audio_end_ms=round(1000 * e.end))
                await self.send("input_audio_buffer.committed", item_id=item)
                await self.send("conversation.item.input_audio_transcription.completed", item_id=item, content_index=0,
                                transcript=e.text, language=e.language, start=e.start, end=e.end,
                                **({"rejected": e.rejected} if e.rejected else {}))


async def realtime(ws: WebSocket, search: Search, feeds: Executor, decoder: SharedDecoder, options,
                   service) -> None:
    """Serve one WebSocket client until it goes away: its audio judged on `feeds` (a thread per
    session), decoded through `decoder` (`options`: the service's `ServeOptions`; `service.live_sessions`
    counts the clients connected)."""
    offered = [p.strip() for p in (ws.headers.get("sec-websocket-protocol") or "").split(",") if p.strip()]
    chosen = [p for p in offered if not p.startswith("openai-insecure-api-key.")]
    await ws.accept(subprotocol=("realtime" if "realtime" in chosen else chosen[0]) if chosen else None)
    if service.live_sessions >= options.max_sessions:
        await ws.send_text(json.dumps({"type": "error", "error": {
            "type": "server_error", "code": "too_many_sessions", "param": None,
            "message": f"this server takes {options.max_sessions} live sessions at once: try again later"}}))
        await ws.close(code=1013)
        return
    service.live_sessions += 1
    try:
        await _serve(ws, Connection(ws, search, feeds, decoder, options.max_session_seconds, options.live_burst))
    finally:
        service.live_sessions -= 1


async def _serve(ws: WebSocket, conn: Connection) -> None:
    await conn.send("transcription_session.created", session=conn.session.to_dict())
    while True:
        try:
            message = await ws.receive()
        except WebSocketDisconnect:
            break
        if message["type"] == "websocket.disconnect":
            break
        try:
            if message.get("text") is None:
                raise EventError("events are JSON text frames (audio goes base64 in input_audio_buffer.append)",
                                 "invalid_event")
            await conn.handle(message["text"])
        except EventError as e:
            await conn.error(e)
        except WebSocketDisconnect:
            break
    log.info("realtime client left after %d utterances", conn.items)
