"""The Spanish command grammar: numbers and times in words, normalized output, variety and capacity."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from asr.synth import commands_es
from asr.text.normalize import normalize_any

SENTENCES = commands_es.generate(3000, seed=1)
SPANISH = re.compile(r"[a-záéíóúñü]+( [a-záéíóúñü]+)*")


def test_number_words():
    cases = {0: "cero", 1: "uno", 15: "quince", 16: "dieciséis", 20: "veinte", 21: "veintiuno", 22: "veintidós",
             30: "treinta", 31: "treinta y uno", 99: "noventa y nueve", 100: "cien", 101: "ciento uno",
             105: "ciento cinco", 200: "doscientos", 342: "trescientos cuarenta y dos", 500: "quinientos",
             700: "setecientos", 900: "novecientos", 999: "novecientos noventa y nueve"}
    assert {n: commands_es.number_words(n) for n in cases} == cases
    for n in (-1, 1000):
        with pytest.raises(ValueError):
            commands_es.number_words(n)


def test_generate_is_deterministic_per_seed_and_distinct():
    assert commands_es.generate(3000, seed=1) == SENTENCES
    assert commands_es.generate(3000, seed=2) != SENTENCES
    assert len(set(SENTENCES)) == len(SENTENCES)


def test_output_is_normalized_spanish_words():
    for s in SENTENCES:
        assert SPANISH.fullmatch(s), s  # lowercase, accents kept, no digits, no punctuation, single spaces
        assert normalize_any(s) == s, s


def test_numbers_and_times_are_spoken_and_agree():
    text = "\n".join(commands_es.generate(5000, seed=3))
    assert re.search(r"\bpon un temporizador de \w+", text)
    assert re.search(r"\ba las \w+ y media\b", text)
    assert re.search(r"\blas \w+ menos cuarto\b", text)
    assert re.search(r"\ba la una\b", text)
    assert re.search(r"\bde la (mañana|tarde|noche)\b", text)
    assert re.search(r"\b(mediodía|medianoche)\b", text)
    # "un minuto", "veintiún grados", never "uno minutos" or "la uno"
    assert not re.search(r"\buno (segundos?|minutos?|horas?|grados?|millas?)\b", text)
    assert not re.search(r"\blas? uno\b", text)


def test_polite_requests_take_the_infinitive():
    text = "\n".join(commands_es.generate(5000, seed=4))
    requests = re.findall(r"\b(?:puedes|podrías) (\w+)", text)
    assert len(requests) > 500
    assert all(re.fullmatch(r"\w+(ar|er|ir|ír)(me|le)?", verb) for verb in requests), Counter(requests)


def test_every_family_is_asked_for(monkeypatch):
    calls: Counter = Counter()

    def counted(family):
        def wrapper(rng):
            calls[family.__name__] += 1
            return family(rng)
        return wrapper

    monkeypatch.setattr(commands_es, "FAMILIES", [(counted(f), w) for f, w in commands_es.FAMILIES])
    rng = random.Random(0)
    for _ in range(2000):
        commands_es.sample(rng)
    names = {"_lights", "_timer", "_alarm", "_music", "_weather", "_message", "_navigation", "_time_date", "_home",
             "_reminder", "_misc"}
    assert set(calls) == names
    assert min(calls.values()) > 50, calls


def test_vocabulary_size_and_capacity():
    vocab = {w for s in SENTENCES for w in s.split()}
    assert 450 <= len(vocab) <= 800, len(vocab)
    assert len(commands_es.generate(20000, seed=0)) == 20000
