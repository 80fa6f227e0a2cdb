"""Files, folders, bytes and arrays -> results, written out or served.

    pipeline  recognize, transcribe, Transcriber (asr.load_model): read, segment, batch, search, stitch
    writers   text, JSONL, JSON, SRT, WebVTT, TSV
    serve     the HTTP service: OpenAI-compatible transcriptions and translations, batching, the web page (web/)
    upload    a request's multipart body, read as it streams in and checked (ApiError)
"""
