"""Training (the only user of Lightning): the LightningModule and train(), and what it needs.

    trainer   ASRTask and train(): joint CTC/attention loss, validation WER, exact resume, export
    inputs    what training computes before its first step: durations, tokenizer, CMVN statistics
    optim     AdamW with warmup and cosine or inverse-sqrt decay
    augment   waveform augmentation (speed, noise, rooms, codecs, talkers, non-speech), seeded per utterance
    room      shoebox room impulse responses;  codec  lossy codec round trips;  rng  per-step seeds
    average   the best or last N checkpoints -> one model file
"""
