from asr.evaluate.scoring import format_table
from asr.text.metrics import char_counts, error_counts, word_counts


def test_word_counts_by_hand():
    c = word_counts("turn on the lights", "turn the light please")
    assert (c.edits, c.words) == (3, 4)  # minimum edit distance; several alignments reach it
    c = word_counts("turn on the kitchen lights", "turn the kitchen lights off")
    assert (c.substitutions, c.deletions, c.insertions, c.words) == (0, 1, 1, 5)
    assert word_counts("", "hello there").insertions == 2
    assert word_counts("a b c", "").deletions == 3


def test_corpus_wer_is_total_edits_over_total_words():
    edits, words = error_counts(["a b c d e f g h i j", "x"], ["a b c d e f g h i j", "y"])
    assert (edits, words) == (1, 11)  # 1/11, not the mean of 0% and 100%


def test_char_counts():
    assert char_counts("abc", "abd") == (1, 3)


def test_format_table_has_a_row_per_set():
    s = {"wer": 12.5, "cer": 3.0, "substitutions": 1, "deletions": 0, "insertions": 0, "utterances": 2,
         "reference_words": 8}
    table = format_table({"test": s, "test-unseen-voice": s})
    assert "test-unseen-voice" in table and "12.50" in table and len(table.splitlines()) == 4
