"""Chunking follows the document's structure and keeps exact offsets."""

from __future__ import annotations

from ingest.chunk import chunk_document, detect_language, split_long
from ingest.schema import Document

MARKDOWN = (
    """# Model overview

Intro paragraph about models.

## Sizes

| Model | Params | Year | Tokens |
|---|---|---|---|
| GPT-3 | 175B | 2020 | 300B |
| GPT-4 | 1.76T | 2023 | 13T |

## Training

- Step one: collect demonstrations.
- Step two: train a reward model.

### Details

"""
    + "Vicuna is trained on ShareGPT conversations. " * 30
    + """

BELLE 的结果。全参数微调效果最好。LoRA 效果稍差。"""
)


def doc(text: str, title: str = "Doc title") -> Document:
    return Document(doc_id="d1", title=title, url="http://x", source="x.md", language="en", sha256="0", text=text)


def test_offsets_are_exact_and_sections_are_breadcrumbs() -> None:
    chunks = chunk_document(doc(MARKDOWN), chunk_chars=300)
    for c in chunks:
        assert MARKDOWN[c.start : c.end] == c.text
    assert any(c.section == ["Model overview", "Training", "Details"] for c in chunks)
    steps = next(c for c in chunks if c.text.startswith("- Step one"))
    assert steps.section == ["Model overview", "Training"]


def test_table_rows_keep_their_header() -> None:
    chunks = chunk_document(doc(MARKDOWN), chunk_chars=60)
    gpt4 = next(c for c in chunks if "GPT-4" in c.text)
    assert "| GPT-4 | 1.76T | 2023 | 13T |" in gpt4.text
    header = "| Model | Params | Year | Tokens |"
    assert header in gpt4.text or gpt4.context == header
    assert header in gpt4.embed_text()


def test_long_paragraphs_split_at_sentence_ends() -> None:
    chunks = chunk_document(doc(MARKDOWN), chunk_chars=300)
    details = [c for c in chunks if c.section[-1:] == ["Details"] and "Vicuna" in c.text]
    assert len(details) >= 3
    assert all(c.text.rstrip().endswith(".") for c in details[:-1])
    assert all(len(c.text) <= 600 for c in details)


def test_chinese_sentence_boundaries() -> None:
    text = "第一句话在这里。" * 40 + "最后一句！"
    spans = split_long(text, 0, len(text), 100)
    assert all(text[a:b].endswith(("。", "！")) for a, b in spans)
    assert "".join(text[a:b] for a, b in spans) == text


def test_embed_text_leads_with_title_and_section() -> None:
    chunks = chunk_document(doc(MARKDOWN, title="BELLE"), chunk_chars=300)
    last = chunks[-1]
    assert last.embed_text().startswith("BELLE > Model overview > Training > Details")
    assert last.language == "zh" or "BELLE" in last.text


def test_plain_text_headings_are_detected() -> None:
    text = (
        "OPT\n\nOPT 是由 Meta AI 研究人员发布的一系列大规模预训练语言模型。\n\n"
        "LLaMA\n\nLLaMA 是 Meta AI 发布的基础语言模型集合。"
    )
    chunks = chunk_document(doc(text), chunk_chars=300, markdown=False)
    assert [c.section for c in chunks] == [["OPT"], ["LLaMA"]]
    assert all(c.language == "zh" for c in chunks)


def test_language_detection() -> None:
    assert detect_language("Vicuna is trained on ShareGPT") == "en"
    assert detect_language("Vicuna 使用 ShareGPT 的对话进行训练") == "zh"


def test_plain_text_name_and_description_lines_all_reach_a_chunk() -> None:
    """In scraped text a model's name and its one-line description both stand alone: the name heads
    the description, and neither line is lost to the section breadcrumb alone."""
    text = (
        "国内开源模型\n\n"
        "Otter-3B\n\n某实验室开源的3B对话模型\n\n"
        "Heron\n\n使用12万条中文指令微调的7B模型\n\n"
        "Gull-13B\n\n在2T token上预训练的13B基座模型"
    )
    chunks = chunk_document(doc(text), chunk_chars=300, markdown=False)
    for c in chunks:
        assert text[c.start : c.end] == c.text
    joined = "\n".join(c.text for c in chunks)
    for line in text.split("\n\n"):
        assert line in joined, line
    heron = next(c for c in chunks if "使用12万条中文指令微调的7B模型" in c.text)
    assert heron.section == ["Heron"] and heron.text.startswith("Heron")
    gull = next(c for c in chunks if "在2T token上预训练的13B基座模型" in c.text)
    assert gull.section == ["Gull-13B"]
    otter = next(c for c in chunks if "某实验室开源的3B对话模型" in c.text)
    assert otter.section == ["Otter-3B"] and "国内开源模型" in otter.text  # the odd line heads the run


def test_markdown_headings_stay_out_of_chunk_text() -> None:
    chunks = chunk_document(doc(MARKDOWN), chunk_chars=300)
    assert not any(c.text.lstrip().startswith("#") for c in chunks)
