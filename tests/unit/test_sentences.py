"""Sentence spans: hard-wrapped lines are one sentence, a bare line above a line labels it."""

from __future__ import annotations

from rag.schema import Passage
from rag.sentences import split_sentences


def passage(text: str) -> Passage:
    return Passage(n=1, chunk_id="c", doc_id="d", title="t", url="u", language="en", start=0, end=len(text), text=text)


def test_a_hard_wrapped_sentence_is_one_sentence() -> None:
    text = (
        "The corpus joins three sources:\n"
        "  - WikiText, articles chosen from Wikipedia to match the\n"
        "style of encyclopaedias,\n"
        "  - Books.\n"
        "The split was sampled in proportion\n"
        "to each source's size.\n"
        "Results\n"
        "Next paragraph starts here."
    )
    sentences = [s.text for s in split_sentences(passage(text))]
    assert "- WikiText, articles chosen from Wikipedia to match the\nstyle of encyclopaedias," in sentences
    assert "The split was sampled in proportion\nto each source's size." in sentences
    # A line that ends a sentence, a list item and a capitalised line after a heading stay apart.
    assert "- Books." in sentences and "Results" in sentences and "Next paragraph starts here." in sentences
    for s in split_sentences(passage(text)):
        assert text[s.start : s.end] == s.text


def test_a_bare_line_above_labels_the_line_below() -> None:
    text = "开源模型\n\nOrcaX\n\n基于Llama2微调的对话模型，支持8K上下文。\n更多介绍见下文，这一行的上一行是句子。"
    by_text = {s.text: s for s in split_sentences(passage(text))}
    described = by_text["基于Llama2微调的对话模型，支持8K上下文。"]
    assert described.label == "OrcaX"
    start, end = described.label_span or (0, 0)
    assert text[start:end] == "OrcaX"
    assert by_text["更多介绍见下文，这一行的上一行是句子。"].label == ""
    # A "key: value" line states its own fact: it labels nothing.
    fields = {s.text: s for s in split_sentences(passage("License: MIT\n\nRuns LLaMA models on a laptop CPU."))}
    assert fields["Runs LLaMA models on a laptop CPU."].label == ""


def test_abbreviations_and_words_no_sentence_ends_in_do_not_cut() -> None:
    text = "It was processed in\nSmith et al. (2021) and later e.g. cleaned.\nThe next sentence."
    sentences = [s.text for s in split_sentences(passage(text))]
    assert sentences == ["It was processed in\nSmith et al. (2021) and later e.g. cleaned.", "The next sentence."]


def test_a_nested_list_item_hangs_under_its_parent_item() -> None:
    text = (
        "**Generic models:**\n\n"
        " - Zeta-8K: based on Omega-13B (8192 context)\n"
        "   - **61.2%** win rate\n"
        "   - trained on 6K conversations\n"
        " - Zeta-Code: based on Sigma\n"
        "   - **58.0%** win rate\n\n"
        "Plain text after the list.\n"
    )
    by_text = {s.text.strip(): s for s in split_sentences(passage(text))}
    assert by_text["- **61.2%** win rate"].parent_item.startswith("Zeta-8K: based on")
    assert by_text["- trained on 6K conversations"].parent_item.startswith("Zeta-8K:")
    assert by_text["- **58.0%** win rate"].parent_item == "Zeta-Code: based on Sigma"
    # Top-level items and prose hang under nothing.
    assert by_text["- Zeta-Code: based on Sigma"].parent_item == ""
    assert by_text["Plain text after the list."].parent_item == ""


def test_a_cards_yaml_header_is_front_matter_and_its_prose_is_not() -> None:
    text = "---\nlicense: apache-2.0\ntags:\n- Composer\n---\n\nThe model is a decoder-only transformer."
    by_text = {s.text: s for s in split_sentences(passage(text))}
    assert by_text["The model is a decoder-only transformer."].in_front_matter is False
    assert all(s.in_front_matter for t, s in by_text.items() if "Composer" in t or "license" in t)


def test_a_header_cut_before_its_closing_rule_ends_at_a_blank_line() -> None:
    text = "---\nlicense: mit\ntags:\n- chat\n\nThe model answers questions about papers."
    by_text = {s.text: s for s in split_sentences(passage(text))}
    assert not by_text["The model answers questions about papers."].in_front_matter
    assert by_text["- chat"].in_front_matter
