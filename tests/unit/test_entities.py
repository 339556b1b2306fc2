"""The gazetteer finds model names by shape, joins spellings, and spots names the corpus lacks."""

from __future__ import annotations

from ingest.entities import Gazetteer, entity_key, family_key
from ingest.tokenize import tokenize

TEXTS = [
    "Vicuna-13B is fine-tuned from LLaMA. We compare Vicuna with Alpaca and ChatGLM-6B.",
    "基于LLama的模型。Llama 2 是 Meta 发布的。GPT-3 有 175B 参数。The model uses Claude as a judge.",
    "The results show that Vicuna beats Alpaca. In the table, QLoRA trains Guanaco.",
    "We then train. The data is large. Then we evaluate llama.cpp on a MacBook with llama.cpp.",
]


def test_aliases_share_one_key() -> None:
    assert entity_key("LLaMA") == entity_key("Llama") == entity_key("LLama") == "llama"
    assert entity_key("LLama两") == "llama2"  # spun numerals are undone
    assert family_key("vicuna13b") == "vicuna"
    assert family_key("gpt3") == "gpt3"


def test_build_finds_names_not_words() -> None:
    g = Gazetteer.build(TEXTS)
    for name in ("vicuna13b", "vicuna", "llama", "alpaca", "chatglm6b", "gpt3", "qlora", "llamacpp"):
        assert name in g.names, name
    for word in ("the", "we", "then", "results", "in"):
        assert word not in g.names, word


def test_a_capitalised_word_in_chinese_text_counts_after_chinese_punctuation_too() -> None:
    texts = ["研究者介绍了Heron,一个对话代理。", "图7:Heron 的流水线。", "Heron:对话代理"]
    assert "heron" in Gazetteer.build(texts).names
    # Once only (the line start does not count), it is no name yet.
    assert "heron" not in Gazetteer.build(texts[:1] + texts[2:]).names


def test_unknown_names_are_reported() -> None:
    g = Gazetteer.build(TEXTS)
    assert g.unknown("How many layers does GPT-5 have?") == ["GPT-5"]
    assert g.unknown("How does QLoRA 4-bit quantization work?") == []
    assert g.unknown("QLoRA 4位量化") == []
    assert g.unknown("Claude 3 支持哪些语言？") == ["Claude 3"]
    assert g.unknown("How was Vicuna-13B trained compared to Llama 2?") == []


def test_find_in_order() -> None:
    g = Gazetteer.build(TEXTS)
    assert g.find("Compare Alpaca and Vicuna") == ["alpaca", "vicuna"]


def test_tokenizer_mixes_languages() -> None:
    tokens = tokenize("How was Vicuna-13B trained? 预训练 显存 LLama两")
    assert {"vicuna13b", "vicuna", "13b", "train", "训练", "显存", "llama2"} <= set(tokens)
    assert "how" not in tokens
