"""Files, folders, bytes and arrays -> results, written out or served.

    pipeline  recognize, transcribe, Transcriber (asr.load_model): read, segment, batch, search, stitch
    writers   text, JSONL, JSON, SRT, WebVTT, TSV
    serve     the HTTP service: OpenAI-compatible /v1/audio/transcriptions, batching, the web page (web/)
"""
