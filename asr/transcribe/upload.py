"""An HTTP request's multipart body -> the uploaded audio and its form fields, checked as it streams in.

The size is checked as bytes arrive (Content-Length first, when given), the upload is kept in
memory (nothing is written to disk), and every bad upload becomes an `ApiError`: an HTTP status
with OpenAI's error body."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from asr.audio.read import AudioError, audio_duration

# form fields of OpenAI's request we take; any other is an error, as unknown config keys are
FIELDS = ("file", "model", "response_format", "timestamp_granularities[]", "timestamp_granularities", "language",
          "prompt", "temperature", "stream")
MAX_FIELD_BYTES = 64 << 10  # a text field longer than this is not a form filled in by a client


class ApiError(Exception):
    """A request the service refuses: HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


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
