"""ONNX export and the torch-free runtime (`python -m asr.onnx DIR clip.wav`).

    export   a model -> encoder.onnx, decoder.onnx (KV-cache steps), model.json; int8 graphs (needs torch)
    runtime  OrtModel: ONNX Runtime sessions, audio reading, transcription without torch
    search   asr.decode's search in numpy, on asr.decode.options' options and rules
"""
