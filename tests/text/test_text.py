import pytest

from asr.text.normalize import display_clean, normalize, number_to_words, ordinal_words
from asr.text.tokenizers import N_SPECIAL, BPETokenizer, CharTokenizer, tokenizer_from_dict, train_tokenizer


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Hello, World!", "hello world"),
        ("Don't stop 'believing'", "don't stop believing"),
        ("It’s 7:30 on the 21st", "it's seven thirty on the twenty first"),
        ("Set volume to 42%", "set volume to forty two percent"),
        ("Pi is 3.14", "pi is three point one four"),
        ("1,000 people & 2 dogs", "one thousand people and two dogs"),
        ("well-known  café", "well known cafe"),
        ("the 1990s and the 80s", "the one thousand nine hundred nineties and the eighties"),  # plurals of numbers
        ("two 7s, three 6s", "two sevens three sixes"),
        (
            "a 3d printer, mp3 files, 4x faster",
            "a three d printer mp three files four x faster",
        ),  # digits glued to letters are read
        ("the 2nd and 33rd", "the second and thirty third"),
        ("   ", ""),
        # clock times, money and phone numbers as people say them
        ("Meet me at 5:30 on May 3rd.", "meet me at five thirty on may third"),
        ("at 9:05 a.m., not 12:00", "at nine oh five a m not twelve"),
        ("It costs $12.50.", "it costs twelve dollars and fifty cents"),
        ("$1 or $0.99 or $1.01", "one dollar or ninety nine cents or one dollar and one cent"),
        ("€40, £7.50 and $1,200", "forty euros seven pounds and fifty pence and one thousand two hundred dollars"),
        ("$2.5 million", "two point five million dollars"),
        (
            "Call (617) 555-0123 or 555-0199",
            "call six one seven five five five zero one two three or five five five " + "zero one nine nine",
        ),
        ("agent 007", "agent zero zero seven"),
        ("1990-2000 and 2:1", "one thousand nine hundred ninety two thousand and two one"),  # not times or phones
    ],
)
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


def test_normalize_is_idempotent():
    for raw in ["Meet me at 5:30 on May 3rd.", "It's $12.50!", "Call 555-0123", "the 1990s", "don't 'quote'"]:
        assert normalize(normalize(raw)) == normalize(raw)


def test_display_clean_keeps_case_punctuation_digits():
    assert display_clean("  \u201cIt\u2019s  $12.50,\u201d she said.\n") == '"It\'s $12.50," she said.'
    assert display_clean("\uff11\uff12 caf\u00e9") == "12 caf\u00e9"  # NFKC: full-width digits; accents kept


DISPLAY = ["Meet me at 5:30 on May 3rd.", "It costs $12.50.", "I live at 42 Elm Street.", "Yes, please.",
           "Call Priya at (617) 555-0123!", "Is it 25% off?", "No, not yet.", "I don't know."]


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_display_tokenizer_round_trips_display_text(kind):
    texts = DISPLAY * 10 + [f"Room {i}, floor {i % 7}: call me." for i in range(100)]
    tok = train_tokenizer(kind, texts, vocab_size=120, text="display")
    assert tok.text == "display"
    for t in DISPLAY:
        assert tok.decode(tok.encode_transcript(t)) == t
    again = tokenizer_from_dict(tok.to_dict())
    assert again.text == "display" and again.decode(again.encode(DISPLAY[0])) == DISPLAY[0]
    assert tok.decode(tok.encode("Meet  me\u2019s")) == "Meet me's"  # display_clean before encoding


def test_tokenizer_text_defaults_to_normalized():
    tok = CharTokenizer.train(TEXTS)
    assert tok.text == "normalized" and tok.to_dict()["text"] == "normalized"
    old = {k: v for k, v in tok.to_dict().items() if k != "text"}  # a model file from before the field
    assert tokenizer_from_dict(old).text == "normalized"
    assert tokenizer_from_dict(old).decode(tok.encode("Turn ON the lights!")) == "turn on the lights"
    with pytest.raises(ValueError, match="display"):
        CharTokenizer.train(TEXTS, text="cased")
