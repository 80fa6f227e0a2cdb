"""Audio in: files, bytes, arrays and streams -> mono float32 waveforms at the model's rate, cut into segments.

    read      load_audio, stream_audio, from_array, audio_duration; AudioError says why a file cannot be read
    files     find_audio, scan_audio: folders searched for audio files, and what was skipped and why
    vad       speech or not, frame by frame: silero-vad, or band energy
    inputs    live sources as the audio arrives: a pipe (any container, or raw PCM), a file at real speed, a microphone
    segment   Segmenter: a stream of blocks -> segments cut at pauses; stitch: their transcripts -> one
"""
