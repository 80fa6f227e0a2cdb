"""Search: encoder output -> n best hypotheses with text, for one model with its options fixed.

    options     DecodeOptions and Rules (torch-free: the ONNX runtime shares them)
    interfaces  FullScorer and PartialScorer, the two scorer Protocols
    scorers     the attention decoder (KV cache), n-gram LM, CTC prefix scores, n-gram ban; timestamp rules
    search      batched greedy and beam search over weighted scorers
    guards      loops and non-speech: the CTC head's support, Whisper's no-speech rule, reversed audio
    task        Search: the roles assembled (rules, LM, search, guards) -> hypotheses with text
    ctc         CTC greedy path, prefix scorer and forced alignment
    repetition  loop trimming, compression ratio, end detection (torch-free)
    timing      word times from cross-attention (Whisper's alignment heads)
"""
