import pytest

from asr.evaluate.scoring import by_language, format_report, format_table
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


def test_a_row_per_language_and_characters_where_no_spaces():
    rows = [{"id": "a", "ref": "поезд в город", "hyp": "поезд в гора", "words": 3, "errors": 1, "substitutions": 1,
             "deletions": 0, "insertions": 0, "language": "ru"},
            {"id": "b", "ref": "東京は晴れです", "hyp": "東京は雨です", "words": 7, "errors": 2, "substitutions": 1,
             "deletions": 1, "insertions": 0, "language": "zh"},
            {"id": "c", "ref": "город", "hyp": "город", "words": 1, "errors": 0, "substitutions": 0, "deletions": 0,
             "insertions": 0, "language": "ru"}]
    langs = by_language(rows)
    assert list(langs) == ["ru", "zh"]
    assert langs["ru"] == {"utterances": 2, "reference_words": 4, "wer": 25.0}
    assert langs["zh"]["wer"] == pytest.approx(200 / 7)
    summary = {"wer": 0.0, "cer": 0.0, "substitutions": 2, "deletions": 1, "insertions": 0, "reference_words": 11,
               "utterances": 3, "by_language": langs}
    report = format_report(summary, rows, [])
    assert "ru: WER 25.00% over 4 words, 2 utterances" in report and "over 7 characters" in report
