"""The HTTP service behind `asr serve`: an OpenAI-compatible transcription endpoint, the model
list, a health check and the web page (asr/web/index.html), over one model loaded at start.

    POST /v1/audio/transcriptions   multipart: file, model, response_format (json | text | srt |
                                    vtt | verbose_json), timestamp_granularities[] (segment, word),
                                    language, prompt, temperature (accepted; see below)
    GET  /v1/models                 the one model, in OpenAI's list format
    GET  /health                    status and counters (requests, batches the worker ran)
    GET  /                          the web page

This module owns the HTTP edge: reading an upload as it streams in (size checked as bytes
arrive, kept in memory, so nothing is ever written to disk), the checks that turn every bad
upload into a 4xx with OpenAI's error body, batching concurrent requests, and the response
formats. Recognition itself is `asr.transcribe.recognize`, the pipeline of `asr transcribe`
(segments cut at pauses, batched search, stitching), so a file gives the same text either way.

Batching: requests wait in an asyncio queue; after the first arrives the batcher waits up to
`batch_wait` seconds for more (at most `max_batch`), then one worker thread decodes the whole
group in one `recognize` call (torch is not async, and one thread owning the model keeps its
memory flat). While the worker runs, the next group gathers. `max_batch=1` turns batching off.

`language`, `prompt` and `temperature` are accepted and ignored: the model's own language and
its deterministic beam search decide. `model` must name the served model (or be "whisper-1",
which OpenAI clients often hard-code).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import math
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from asr.audio.read import AudioError, audio_duration
from asr.decode.options import DecodeOptions
from asr.decode.task import Search
from asr.model.recognizer import Recognizer
from asr.results import Result
from asr.transcribe.pipeline import SegmentOptions, recognize
from asr.transcribe.writers import render

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent / "web"
FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")
ALIASES = ("whisper-1",)  # model names OpenAI clients send by default: served by the one model
# form fields of OpenAI's request we take; any other is an error, as unknown config keys are
FIELDS = ("file", "model", "response_format", "timestamp_granularities[]", "timestamp_granularities", "language",
          "prompt", "temperature", "stream")
MAX_FIELD_BYTES = 64 << 10  # a text field longer than this is not a form filled in by a client
MEDIA_TYPES = {"text": "text/plain", "srt": "text/plain", "vtt": "text/vtt"}


@dataclass(frozen=True)
class ServeOptions:
    max_batch: int = 8  # requests decoded together; 1 = each request alone (no batching)
    batch_wait: float = 0.015  # seconds the batcher waits for more requests after the first
    max_upload_bytes: int = 25 << 20  # OpenAI's limit; checked while the upload streams in
    max_seconds: float = 3600.0  # longest audio accepted, from its header before decoding
    segments: SegmentOptions = SegmentOptions()  # how recordings are cut and batched, as `asr transcribe`'s
    model_id: str = "asr"  # what /v1/models lists and `model` must name

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_upload_bytes < 1 or self.max_seconds <= 0:
            raise ValueError(f"serve options must be positive: {self}")


class ApiError(Exception):
    """A request the service refuses: HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


# ------------------------------------------------------------------------------------- the upload

@dataclass
class Upload:
    """A parsed form: the audio file's bytes and name, and the text fields (a name may repeat)."""

    data: bytearray | None = None
    filename: str = "upload"
    fields: dict[str, list[str]] = field(default_factory=dict)


class FormReader:
    """multipart/form-data -> Upload, fed chunk by chunk as the body arrives (python-multipart's
    streaming parser), so an upload over the limit is refused at the byte that crosses it."""

    def __init__(self, content_type: str, max_bytes: int):
        from python_multipart.multipart import MultipartParser, parse_options_header

        kind, params = parse_options_header(content_type.encode("latin-1"))
        if kind != b"multipart/form-data" or not params.get(b"boundary"):
            raise ApiError(400, "send the request as multipart/form-data with the audio in the 'file' field "
                                f"(got Content-Type {content_type or 'none'!r})", "file", "invalid_content_type")
        self.max_bytes, self.upload, self.ended = max_bytes, Upload(), False
        self._headers: dict[bytes, bytes] = {}
        self._field, self._value = b"", b""
        self._name, self._buf = "", bytearray()
        self._parse_header = parse_options_header
        self.parser = MultipartParser(params[b"boundary"], {
            "on_part_begin": self._begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._data,
            "on_part_end": self._part_end, "on_end": self._end})

    def feed(self, chunk: bytes) -> None:
        self.parser.write(chunk)

    def result(self) -> Upload:
        self.parser.finalize()
        if not self.ended:
            raise ApiError(400, "the multipart body ended before its closing boundary (upload cut short?)",
                           None, "incomplete_body")
        return self.upload

    def _begin(self) -> None:
        self._headers, self._name, self._buf = {}, "", bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, params = self._parse_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if self._name not in FIELDS:
            raise ApiError(400, f"unknown field {self._name!r} (the fields are {', '.join(FIELDS)})", self._name,
                           "unknown_field")
        if self._name == "file":
            if self.upload.data is not None:
                raise ApiError(400, "more than one 'file' field: send one audio file per request", "file")
            self.upload.filename = Path(params.get(b"filename", b"upload").decode("utf-8", "replace")).name
            self.upload.data = self._buf

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._buf += data[start:end]
        if self._name == "file" and len(self._buf) > self.max_bytes:
            raise ApiError(413, f"the file is larger than this server's limit of {_size(self.max_bytes)}",
                           "file", "file_too_large")
        if self._name != "file" and len(self._buf) > MAX_FIELD_BYTES:
            raise ApiError(400, f"field {self._name!r} is longer than {_size(MAX_FIELD_BYTES)}", self._name)

    def _part_end(self) -> None:
        if self._name != "file":
            self.upload.fields.setdefault(self._name, []).append(self._buf.decode("utf-8", "replace"))

    def _end(self) -> None:
        self.ended = True


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n / 1024:g} KiB"


async def read_upload(request, max_bytes: int) -> Upload:
    """The request's form, read as it streams in; refused early when Content-Length says it is
    too big. A client that goes away mid-upload leaves only this coroutine's memory, freed."""
    limit = max_bytes + (1 << 20)  # room for the other fields and the multipart framing
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"the request ({_size(int(length))}) is larger than this server's limit of "
                            f"{_size(max_bytes)} for the file", "file", "file_too_large")
    reader, seen = FormReader(request.headers.get("content-type", ""), max_bytes), 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise ApiError(413, f"the request is larger than this server's limit of {_size(max_bytes)} for the "
                                "file", "file", "file_too_large")
        reader.feed(chunk)
    return reader.result()


# ------------------------------------------------------------------------------------ the request

@dataclass(frozen=True)
class Params:
    """What a transcription request asks for, checked."""

    response_format: str = "json"
    granularities: tuple[str, ...] = ()
    language: str | None = None  # accepted, ignored: the model's language decides

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
    return Params(fmt, grains, one.get("language") or None)


def named_source(upload: Upload) -> io.BytesIO:
    """The uploaded bytes as a file object named after the upload, so audio errors name it."""
    if not upload.data:
        raise ApiError(400, "the uploaded file is empty (0 bytes)" if upload.data is not None else
                       "missing the 'file' field: the audio, as a multipart file upload", "file",
                       "empty_file" if upload.data is not None else "missing_file")
    src = io.BytesIO(bytes(upload.data))
    src.name = upload.filename
    return src


def checked_duration(src: io.BytesIO, max_seconds: float) -> float:
    """The audio's duration from its header (a container without one is decoded and counted),
    refused before any recognition when it is too long or not audio at all."""
    try:
        seconds = audio_duration(src)
    except AudioError as e:
        raise ApiError(400, f"{e.path}: {e.reason}", "file", "invalid_audio") from None
    finally:
        src.seek(0)
    if seconds > max_seconds:
        raise ApiError(400, f"{src.name}: {seconds:.1f} s of audio, longer than this server's limit of "
                            f"{max_seconds:g} s", "file", "audio_too_long")
    return seconds


# ----------------------------------------------------------------------------------- the responses

def verbose_json(result: Result, params: Params, language: str) -> dict:
    """OpenAI's verbose_json: text, duration, language, and segments and/or words as asked
    (segments when no granularity is given, as OpenAI does)."""
    out = {"task": "transcribe", "language": language, "duration": round(result.duration, 3),
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


class Batcher:
    """Gathers concurrent requests into groups and decodes each group on the one worker thread."""

    def __init__(self, search: Search, options: ServeOptions):
        self.search, self.options = search, options
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-model")
        self.batches = 0  # groups the worker decoded (one recognize call each)
        self.requests = 0  # requests in them
        self.largest = 0  # most requests in one group

    async def transcribe(self, source: io.BytesIO, words: bool) -> Result:
        job = Job(source, words, asyncio.get_running_loop().create_future())
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
                results = recognize(self.search, [job.source for job in group], segments)
                for job, result in zip(group, results):
                    loop.call_soon_threadsafe(_settle, job.future, result, None)
        except Exception as e:  # the group's requests get a 500 saying why; the server goes on
            log.exception("decoding a batch of %d failed", len(group))
            for job in group:
                loop.call_soon_threadsafe(_settle, job.future, None, e)

    def stats(self) -> dict:
        return {"requests": self.requests, "batches": self.batches, "largest_batch": self.largest,
                "queued": self.queue.qsize()}


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
    app.get("/v1/models")(state.models)
    app.get("/v1/models/{model_id}")(state.model)
    app.get("/health")(state.health)
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

    async def transcriptions(self, request: Request):
        self.uploads += 1
        try:
            upload = await read_upload(request, self.options.max_upload_bytes)
        except ClientDisconnect:
            log.info("client went away mid-upload: nothing kept")
            raise ApiError(400, "the client disconnected before the upload ended", "file", "incomplete_body")
        finally:
            self.uploads -= 1
        params = parse_params(upload.fields, self.options.model_id)
        source = named_source(upload)
        del upload  # the bytes live on in `source` only
        await run_in_threadpool(checked_duration, source, self.options.max_seconds)
        result = await self.batcher.transcribe(source, params.words)
        return respond(result, params, self.language)

    def models(self) -> dict:
        return {"object": "list", "data": [self._card()]}

    def model(self, model_id: str) -> dict:
        if model_id != self.options.model_id and model_id not in ALIASES:
            raise ApiError(404, f"no model {model_id!r}: this server serves {self.options.model_id!r}", "model",
                           "model_not_found")
        return self._card()

    def health(self) -> dict:
        return {"status": "ok", "model": self.options.model_id, "uploads": self.uploads, **self.batcher.stats()}

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
