"""The corpus lexicon: dictionary senses kept only where the corpus can match them."""

from __future__ import annotations

from ingest.lexicon import build_lexicon


def test_a_lone_character_puts_a_chinese_question_into_english_by_its_first_sense() -> None:
    vocabulary = {"layer": 5, "floor": 3, "day": 4, "sky": 2, "天": 5, "模型": 9, "model": 9}
    lexicon = build_lexicon(vocabulary)
    assert lexicon["zh2en"]["层"] == ["layer"]  # not "floor (of a building)"
    assert lexicon["zh2en"]["天"] == ["day"]  # not "sky"
    # The English side never expands to a lone character: "day" would match every 天 in 今天, 天气.
    assert "天" not in lexicon["en2zh"].get("day", [])
    assert "模型" in lexicon["en2zh"]["model"]
