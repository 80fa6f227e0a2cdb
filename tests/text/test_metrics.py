"""Error counts in any language: English through `normalize`, other scripts through
`normalize_any`, and characters as words where a language writes no spaces."""

from asr.text.metrics import char_counts, error_counts, word_counts
from asr.text.normalize import normalize, normalize_any, normalizer


def test_normalize_any_keeps_every_scripts_letters_and_drops_the_rest():
    assert normalize_any("Поезд в город, отправляется!") == "поезд в город отправляется"
    assert normalize_any("Ça va? Très bien (rires) [musique]") == "ça va très bien"
    assert normalize_any("東京は晴れ。") == "東京は晴れ" and normalize_any("नमस्ते, दुनिया") == "नमस्ते दुनिया"
    assert normalize_any("  ") == ""
    assert normalizer(None) is normalize and normalizer("en") is normalize and normalizer("fr") is normalize_any


def test_english_counts_are_as_before_and_other_languages_keep_their_letters():
    assert word_counts("Hello, 42 worlds!", "hello forty two worlds").edits == 0  # English: numbers spelled
    c = word_counts("Поезд в город", "поезд в гора", "ru")
    assert (c.substitutions, c.words) == (1, 3)  # `normalize` would have left nothing to compare
    assert word_counts("Ça va", "ca va", "fr").substitutions == 1  # accents are letters here
    assert char_counts("Поезд", "поезд", "ru") == (0, 5)


def test_a_language_without_spaces_counts_characters():
    c = word_counts("東京は晴れです", "東京は 雨です", "zh")
    assert (c.substitutions, c.deletions, c.words) == (1, 1, 7)
    assert error_counts(["ありがとう"], ["ありがと"], "ja") == (1, 5)
