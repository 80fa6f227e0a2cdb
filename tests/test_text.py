import pytest

from asr.text import (BPETokenizer, CharTokenizer, N_SPECIAL, normalize, number_to_words, ordinal_words,
                      tokenizer_from_dict)


@pytest.mark.parametrize("raw,expected", [
    ("Hello, World!", "hello world"),
    ("Don't stop 'believing'", "don't stop believing"),
    ("It’s 7:30 on the 21st", "it's seven thirty on the twenty first"),
    ("Set volume to 42%", "set volume to forty two percent"),
    ("Pi is 3.14", "pi is three point one four"),
    ("1,000 people & 2 dogs", "one thousand people and two dogs"),
    ("well-known  café", "well known cafe"),
    ("the 1990s and the 80s", "the one thousand nine hundred nineties and the eighties"),  # plurals of numbers
    ("two 7s, three 6s", "two sevens three sixes"),
    ("a 3d printer, mp3 files, 4x faster", "a three d printer mp three files four x faster"),  # digits glued to letters are read
    ("the 2nd and 33rd", "the second and thirty third"),
    ("   ", ""),
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_number_words():
    assert number_to_words(0) == "zero"
    assert number_to_words(115) == "one hundred fifteen"
    assert number_to_words(2_000_019) == "two million nineteen"
    assert ordinal_words(3) == "third" and ordinal_words(40) == "fortieth" and ordinal_words(12) == "twelfth"


TEXTS = ["turn on the kitchen lights", "set a timer for twenty minutes", "what's the weather in paris"]


def test_char_tokenizer_round_trip_and_save():
    tok = CharTokenizer.train(TEXTS)
    for t in TEXTS:
        ids = tok.encode(t)
        assert min(ids) >= N_SPECIAL
        assert tok.decode(ids) == normalize(t)
    again = tokenizer_from_dict(tok.to_dict())
    assert again.encode("lights on") == tok.encode("lights on")
    assert 2 in tok.encode("zzz!")  # unseen character -> unknown id


def test_bpe_tokenizer_round_trip_and_save():
    texts = TEXTS * 20 + [f"call number {i}" for i in range(200)]
    tok = BPETokenizer.train(texts, vocab_size=60)
    assert tok.vocab_size <= 60 + N_SPECIAL
    for t in TEXTS:
        ids = tok.encode(t)
        assert min(ids) >= N_SPECIAL - 1 and len(ids) < len(normalize(t))  # merges happened
        assert tok.decode(ids) == normalize(t)
    again = tokenizer_from_dict(tok.to_dict())
    assert again.encode(TEXTS[0]) == tok.encode(TEXTS[0])
