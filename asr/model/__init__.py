"""The model file: network, features and tokenizer; saved, loaded, encoded; named models and imports.

    network     ASRModel: the encoder (front end + transformer blocks), the decoder with its KV cache, a CTC head
    features    waveform -> log-mel / MFCC frames with CMVN (the same module trains and transcribes)
    masks       lengths -> attention and padding masks
    recognizer  Recognizer: config + tokenizer + features + network; load, save, encode, int8
    catalogue   named models (`asr models`): shipped ones in pretrained/, Whisper from registry packages
    importers   Whisper checkpoints (CTranslate2, openai .pt, Hugging Face) -> our model file
    ship        a trained model -> pretrained/NAME.pt (float16) and its card
"""
