"""Corpora -> manifests -> batches for training.

    manifest  read_manifest, write_manifest: JSONL utterance entries, the one reader
    dataset   SpeechDataset, collate, the duration-bucketing sampler and its resumable loader
    prepare   LibriSpeech, Common Voice, Kaldi and plain folders -> manifests, broken files reported by name
"""
