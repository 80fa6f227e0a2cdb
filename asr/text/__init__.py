"""Text: the normalizer WER compares, the tokenizers, an n-gram LM over tokens, and error counts.

    normalize   normalize (lowercase words, numbers spelled out), display_clean
    tokenizers  characters, SentencePiece BPE, Whisper's byte-level BPE; tokenizer_from_dict
    lm          NGramLM: Kneser-Ney n-grams over a model's tokens, ARPA files
    metrics     word and character error counts (jiwer), both sides normalized
"""
