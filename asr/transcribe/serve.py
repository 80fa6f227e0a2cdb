"""The HTTP service behind `asr serve`: an OpenAI-compatible transcription endpoint, the model
list, a health check and the web page (asr/web/index.html), over one model loaded at start.

    POST /v1/audio/transcriptions   multipart: file, model, response_format (json | text | srt |
                                    vtt | verbose_json), timestamp_granularities[] (segment, word),
                                    language, prompt, temperature (accepted; see below)
    POST /v1/audio/translations     the same, speech in any language -> English text (multilingual models)
    WS   /v1/realtime               live transcription, OpenAI's Realtime transcription events (asr.transcribe.realtime)
    GET  /v1/models                 the one model, in OpenAI's list format
    GET  /health                    status and counters (requests, batches the worker ran)
    GET  /                          the web page

This module owns the routes, the checks of a request's fields, batching concurrent requests, and
the response formats; `asr.transcribe.upload` reads an upload as it streams in (size checked as
bytes arrive, kept in memory, so nothing is ever written to disk) and turns every bad upload into
a 4xx with OpenAI's error body. Recognition itself is `asr.transcribe.recognize`, the pipeline of `asr transcribe`
(segments cut at pauses, batched search, stitching), so a file gives the same text either way.

Batching: requests wait in an asyncio queue; after the first arrives the batcher waits up to
`batch_wait` seconds for more (at most `max_batch`), then one worker thread decodes the whole
group in one `recognize` call (torch is not async, and one thread owning the model keeps its
memory flat). While the worker runs, the next group gathers. `max_batch=1` turns batching off.
Live sessions' decodes are batched the same way, on the same thread (`realtime.SharedDecoder`).

Keys: with `api_key` (`asr serve --api-key`, or ASR_API_KEY) every /v1 request must carry
"Authorization: Bearer KEY" (a 401 otherwise); the page and /health stay open. Live sessions on
/v1/realtime are capped in number, in audio per session and in how far ahead of real time they send.

`language` forces a multilingual model's language (left out: detected per segment; an
English-only model refuses another with a 400), `prompt` is Whisper's text prompt (other models
ignore it), and
`temperature` is accepted and ignored: the search is deterministic. Requests that differ in
these are decoded in separate groups of the same batch. `model` must name the served model (or
be "whisper-1", which OpenAI clients often hard-code).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import io
import logging
import math
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from asr.decode.options import DecodeOptions
from asr.decode.task import Search
from asr.model.recognizer import Recognizer
from asr.results import Result
from asr.transcribe.pipeline import SegmentOptions, recognize
from asr.transcribe.realtime import SharedDecoder, realtime
from asr.transcribe.upload import ApiError, checked_duration, named_source, read_upload
from asr.transcribe.writers import render

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent / "web"
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")
ALIASES = ("whisper-1",)  # model names OpenAI clients send by default: served by the one model
MEDIA_TYPES = {"text": "text/plain", "srt": "text/plain", "vtt": "text/vtt"}


@dataclass(frozen=True)
class ServeOptions:
    max_batch: int = 8  # requests decoded together; 1 = each request alone (no batching)
    batch_wait: float = 0.015  # seconds the batcher waits for more requests after the first
    max_upload_bytes: int = 25 << 20  # OpenAI's limit; checked while the upload streams in
    max_seconds: float = 3600.0  # longest audio accepted, from its header before decoding
    segments: SegmentOptions = SegmentOptions()  # how recordings are cut and batched, as `asr transcribe`'s
    model_id: str = "asr"  # what /v1/models lists and `model` must name
    api_key: str | None = None  # when set, every /v1 request carries "Authorization: Bearer KEY" (401 otherwise)
    max_sessions: int = 16  # live WebSocket sessions at once
    max_session_seconds: float = 4 * 3600.0  # audio one live session may send
    live_burst: float = 60.0  # seconds of audio a live session may send ahead of real time

    def __post_init__(self) -> None:
        if (self.max_batch < 1 or self.max_upload_bytes < 1 or self.max_seconds <= 0 or self.max_sessions < 1
                or self.max_session_seconds <= 0 or self.live_burst <= 0):
            raise ValueError(f"serve options must be positive: {dataclasses.replace(self, api_key='***')}")

    def authorized(self, authorization: str | None, query_key: str | None = None,
                   protocols: str | None = None) -> bool:
        """Whether a request may use the API: no key set, or the key as a bearer token (or, for a
        browser's WebSocket, which cannot set headers, as `api_key=` or the subprotocol
        `openai-insecure-api-key.KEY`, OpenAI's way)."""
        if self.api_key is None:
            return True
        offered = [authorization.removeprefix("Bearer ").strip() if authorization else None, query_key]
        offered += [p.strip().removeprefix("openai-insecure-api-key.") for p in (protocols or "").split(",")]
        key = self.api_key.encode()  # bytes: compare_digest refuses non-ASCII str, which a client may send
        return any(k is not None and hmac.compare_digest(k.encode(), key) for k in offered)


# ------------------------------------------------------------------------------------- the upload


# ------------------------------------------------------------------------------------ the request

@dataclass(frozen=True)
class Params:
    """What a transcription request asks for, checked."""

    response_format: str = "json"
    granularities: tuple[str, ...] = ()
    language: str | None = None  # None: the model's (multilingual: detected per segment)
    prompt: str | None = None  # Whisper's text prompt
    task: str = "transcribe"  # "translate" on /v1/audio/translations

    @property
    def words(self) -> bool:
        """Whether decoding needs word times: word granularity, and subtitles (cues follow words,
        as `asr transcribe -f srt` makes them)."""
        return "word" in self.granularities or self.response_format in ("srt", "vtt")


def parse_params(fields: dict[str, list[str]], model_id: str) -> Params:
    """The text fields of a request -> Params; an ApiError naming the field for a wrong one."""
    one = {k: v[-1].strip() for k, v in fields.items() if v}
    fmt = one.get("response_format") or "json"
    if fmt not in FORMATS:
        raise ApiError(400, f"unknown response_format {fmt!r} (one of {', '.join(FORMATS)})", "response_format",
                       "invalid_value")
    model = one.get("model")
    if model and model != model_id and model not in ALIASES:
        raise ApiError(400, f"this server serves the model {model_id!r}, not {model!r} (GET /v1/models)", "model",
                       "model_not_found")
    given = fields.get("timestamp_granularities[]", []) + fields.get("timestamp_granularities", [])  # curl: either
    grains = tuple(dict.fromkeys(g.strip() for g in given if g.strip()))
    if any(g not in GRANULARITIES for g in grains):
        raise ApiError(400, f"unknown timestamp_granularities[] {', '.join(grains)!r} (segment, word)",
                       "timestamp_granularities[]", "invalid_value")
    if grains and fmt != "verbose_json":
        raise ApiError(400, "timestamp_granularities[] needs response_format verbose_json",
                       "timestamp_granularities[]")
    if one.get("temperature"):
        try:
            t = float(one["temperature"])
        except ValueError:
            t = -1.0
        if not 0.0 <= t <= 1.0:
            raise ApiError(400, f"temperature must be a number from 0 to 1, not {one['temperature']!r}", "temperature",
                           "invalid_value")
    if one.get("stream", "false").lower() not in ("false", "0", ""):
        raise ApiError(400, "streaming responses are not supported: leave stream out or false", "stream")
    return Params(fmt, grains, one.get("language") or None, one.get("prompt") or None)


# ----------------------------------------------------------------------------------- the responses

def verbose_json(result: Result, params: Params, language: str) -> dict:
    """OpenAI's verbose_json: text, duration, language, and segments and/or words as asked
    (segments when no granularity is given, as OpenAI does)."""
    out = {"task": params.task, "language": result.language or language, "duration": round(result.duration, 3),
           "text": result.text or ""}
    if "segment" in params.granularities or not params.granularities:
        out["segments"] = [{"id": i, "seek": 0, "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text,
                            "tokens": [], "temperature": 0.0, "avg_logprob": _finite(s.score),
                            "compression_ratio": _compression_ratio(s.text),
                            "no_speech_prob": _finite(s.no_speech_prob, 0.0)}
                           for i, s in enumerate(seg for seg in result.segments if seg.text)]
    if "word" in params.granularities:
        out["words"] = [{"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
                        for s in result.segments for w in s.words or []]
    return out


def _finite(x: float | None, default: float | None = None) -> float | None:
    return round(x, 4) if x is not None and math.isfinite(x) else default


def _compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return round(len(raw) / len(zlib.compress(raw)), 3) if raw else 0.0


def respond(result: Result, params: Params, language: str):
    """A finished result -> the response in the format asked for."""
    if result.error is not None:
        raise ApiError(400, f"{result.path}: {result.error}", "file", "invalid_audio")
    fmt = params.response_format
    if fmt == "json":
        return JSONResponse({"text": result.text or ""})
    if fmt == "verbose_json":
        return JSONResponse(verbose_json(result, params, language))
    body = render({"text": "txt"}.get(fmt, fmt), result)
    return Response(body, media_type=MEDIA_TYPES[fmt] + "; charset=utf-8")


# ------------------------------------------------------------------------------------- batching

@dataclass
class Job:
    source: io.BytesIO
    words: bool
    future: asyncio.Future
    search: Search  # the served model's search, in the language and task the request asked for


class Batcher:
    """Gathers concurrent requests into groups and decodes each group on the one worker thread."""

    def __init__(self, search: Search, options: ServeOptions):
        self.search, self.options = search, options
        self.searches: dict[tuple, Search] = {(None, "transcribe", None): search}
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-model")
        # live sessions: each judged on a thread of its own, their decodes batched on the model's thread
        self.feeds = ThreadPoolExecutor(max_workers=options.max_sessions, thread_name_prefix="asr-live")
        self.live = SharedDecoder(self.worker, options.max_batch, options.batch_wait)
        self.batches = 0  # groups the worker decoded (one recognize call each)
        self.requests = 0  # requests in them
        self.largest = 0  # most requests in one group

    def search_for(self, params: Params) -> Search:
        """The search for a request's language, task and prompt (made once each); an ApiError for
        one the model cannot do (another language on an English-only model, ...)."""
        prompt = params.prompt if self.search.plain.previous is not None else None  # a model without: ignored
        key = (params.language, params.task, prompt)
        if key not in self.searches:
            try:
                options = self.search.options.replaced(language=params.language, task=params.task, prompt=prompt)
                self.searches[key] = Search(self.search.rec, options)
            except ValueError as e:
                raise ApiError(400, str(e), "language" if params.language else None, "invalid_value") from None
        return self.searches[key]

    async def transcribe(self, source: io.BytesIO, params: Params) -> Result:
        job = Job(source, params.words, asyncio.get_running_loop().create_future(), self.search_for(params))
        await self.queue.put(job)
        return await job.future

    async def run(self) -> None:
        """The batcher's loop (a task for the life of the app)."""
        loop = asyncio.get_running_loop()
        while True:
            group = [await self.queue.get()]
            deadline = loop.time() + self.options.batch_wait
            while len(group) < self.options.max_batch and loop.time() < deadline:
                if self.queue.empty():
                    await asyncio.sleep(min(0.002, max(0.0, deadline - loop.time())))
                else:
                    group.append(self.queue.get_nowait())
            group = [job for job in group if not job.future.done()]  # a client that went away is not decoded
            if group:
                await loop.run_in_executor(self.worker, self._decode, group, loop)

    def _decode(self, group: list[Job], loop: asyncio.AbstractEventLoop) -> None:
        """On the worker thread: one recognize call for the group; each result goes back as
        soon as it is done (recognize yields in order)."""
        self.batches, self.requests = self.batches + 1, self.requests + len(group)
        self.largest = max(self.largest, len(group))
        try:
            with torch.inference_mode():
                segments = dataclasses.replace(self.options.segments, word_timestamps=any(j.words for j in group))
                for search in dict.fromkeys(job.search for job in group):  # one recognize call per language/task
                    jobs = [job for job in group if job.search is search]
                    for job, result in zip(jobs, recognize(search, [job.source for job in jobs], segments)):
                        loop.call_soon_threadsafe(_settle, job.future, result, None)
        except Exception as e:  # the group's requests get a 500 saying why; the server goes on
            log.exception("decoding a batch of %d failed", len(group))
            for job in group:
                loop.call_soon_threadsafe(_settle, job.future, None, e)

    def stats(self) -> dict:
        return {"requests": self.requests, "batches": self.batches, "largest_batch": self.largest,
                "queued": self.queue.qsize(), **self.live.stats()}


def _settle(future: asyncio.Future, result: Result | None, error: Exception | None) -> None:
    if future.done():  # cancelled: the client went away
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


# ---------------------------------------------------------------------------------------- the app

def create_app(rec: Recognizer, options: ServeOptions = ServeOptions(), **decode):
    """The FastAPI app serving `rec`; `decode` overrides its decode options (beam_size=1, ...)."""
    search = Search(rec, DecodeOptions.from_config(rec.cfg, **decode))
    state = Service(Batcher(search, options), options, getattr(rec.tokenizer, "language", None) or "en")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(state.batcher.run())
        yield
        task.cancel()
        state.batcher.worker.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="asr", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = state
    page = (WEB / "index.html").read_text()

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        if request.url.path.startswith("/v1/") and not options.authorized(request.headers.get("authorization")):
            return JSONResponse(ApiError(401, "a valid API key is needed: Authorization: Bearer KEY", None,
                                         "invalid_api_key", kind="invalid_request_error").body(), status_code=401)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(request, e: ApiError):
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return JSONResponse(ApiError(e.status_code, str(e.detail), None, None).body(), status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        return JSONResponse(ApiError(400, str(e)).body(), status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request, e: Exception):
        return JSONResponse(ApiError(500, f"internal error: {e}", kind="server_error").body(), status_code=500)

    app.post("/v1/audio/transcriptions")(state.transcriptions)
    app.post("/v1/audio/translations")(state.translations)
    app.get("/v1/models")(state.models)
    app.get("/v1/models/{model_id}")(state.model)
    app.get("/health")(state.health)

    async def live(ws: WebSocket):
        if not options.authorized(ws.headers.get("authorization"), ws.query_params.get("api_key"),
                                  ws.headers.get("sec-websocket-protocol")):
            await ws.close(code=4001, reason="a valid API key is needed")  # before accepting: the handshake fails
            return
        await realtime(ws, search, state.batcher.feeds, state.batcher.live, options, state)

    app.websocket("/v1/realtime")(live)
    app.get("/", response_class=HTMLResponse)(lambda: HTMLResponse(page))
    return app


@dataclass
class Service:
    """The routes' state: the batcher, the options and counters."""

    batcher: Batcher
    options: ServeOptions
    language: str
    started: float = field(default_factory=time.time)
    uploads: int = 0  # uploads being read right now
    live_sessions: int = 0  # WebSocket clients connected to /v1/realtime

    async def transcriptions(self, request: Request):
        return await self._recognize(request, "transcribe")

    async def translations(self, request: Request):
        return await self._recognize(request, "translate")

    async def _recognize(self, request: Request, task: str):
        self.uploads += 1
        try:
            upload = await read_upload(request, self.options.max_upload_bytes)
        except ClientDisconnect:
            log.info("client went away mid-upload: nothing kept")
            raise ApiError(400, "the client disconnected before the upload ended", "file", "incomplete_body")
        finally:
            self.uploads -= 1
        params = dataclasses.replace(parse_params(upload.fields, self.options.model_id), task=task)
        self.batcher.search_for(params)  # a language or task the model cannot do: a 400 before decoding
        source = named_source(upload)
        del upload  # the bytes live on in `source` only
        await run_in_threadpool(checked_duration, source, self.options.max_seconds)
        result = await self.batcher.transcribe(source, params)
        return respond(result, params, self.language)

    def models(self) -> dict:
        return {"object": "list", "data": [self._card()]}

    def model(self, model_id: str) -> dict:
        if model_id != self.options.model_id and model_id not in ALIASES:
            raise ApiError(404, f"no model {model_id!r}: this server serves {self.options.model_id!r}", "model",
                           "model_not_found")
        return self._card()

    def health(self) -> dict:
        return {"status": "ok", "model": self.options.model_id, "uploads": self.uploads,
                "live_sessions": self.live_sessions, **self.batcher.stats()}

    def _card(self) -> dict:
        return {"id": self.options.model_id, "object": "model", "created": int(self.started), "owned_by": "asr"}


def model_id(spec: str | Path | None, default: str) -> str:
    """What the service calls its model: a name as given, a file by its name without .pt."""
    if spec is None:
        return default
    return str(spec) if "/" not in str(spec) and not str(spec).endswith(".pt") else Path(spec).stem


def serve(model: str | Path | Recognizer, host: str = "127.0.0.1", port: int = 8000,
          options: ServeOptions = ServeOptions(), **decode) -> None:
    """Load the model once and serve it until interrupted (loopback only unless `host` says
    otherwise). `decode` overrides the model's decode options."""
    import uvicorn

    from asr.model.catalogue import load

    rec = model if isinstance(model, Recognizer) else load(model, "auto")
    app = create_app(rec.eval(), options, **decode)
    log.info("serving %s on http://%s:%d (max batch %d, wait %.0f ms)", options.model_id, host, port,
             options.max_batch, 1000 * options.batch_wait)
    uvicorn.run(app, host=host, port=port, log_level="info")
