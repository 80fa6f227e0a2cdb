"""Files, folders, bytes and arrays -> results, written out or served.

    pipeline  recognize, transcribe, Transcriber (asr.load_model): read, segment, batch, search, stitch
    batches   segments -> transcripts in length-sorted batches (what files, evaluation and live share)
    live      Stream (Transcriber.stream): blocks as they arrive -> partial and final text; asr live's writer
    writers   text, JSONL, JSON, SRT, WebVTT, TSV
    serve     the HTTP service: OpenAI-compatible transcriptions and translations, batching, the web page (web/)
    realtime  the WebSocket /v1/realtime: live transcription in OpenAI's Realtime transcription events
    upload    a request's multipart body, read as it streams in and checked (ApiError)
"""
