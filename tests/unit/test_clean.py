"""Cleaning removes site noise by general rules and keeps every content line."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import CORPUS_DIR
from ingest.clean import CleanReport, clean_lines, clean_markdown, despin, is_boilerplate, template_lines

SEEDS = sorted((CORPUS_DIR / "seeds").glob("*.txt"))


@pytest.fixture(scope="module")
def cleaned() -> dict[str, str]:
    texts = {p.name[:3]: p.read_text(encoding="utf-8") for p in SEEDS}
    shared = template_lines(texts.values())
    seen: set[str] = set()
    return {k: clean_lines(t, shared, seen, CleanReport()) for k, t in texts.items()}


NOISE = {
    "000": ["觉得内容不错的话,欢迎点赞收藏加关注", "有问题欢迎大家加关注私戳或者评论", "展开阅读全文", "留下您的评论"],
    "001": [
        "扫码获取",
        "CSDN大礼包",
        "请填写红包祝福语或标题",
        "当前余额3.43前往充值",
        "成就一亿技术人",
        "hope_wisdom",
        "在这里插入图片描述",
        "一键收藏",
        "余额无法直接购买下载",
    ],
    "002": ["微信扫一扫加关注", "评论列表 共有 0 条评论"],
    "003": ["相关文章推荐", "酒量小的柿子", "Dify 是 一个 易用的 LLMOps 平台"],
    "004": ["文章数量: 886992", "admin 管理员组"],
}
CONTENT = {
    "000": [
        "OPT 是由 Meta AI 研究人员发布的一系列大规模预训练语言模型",
        "46 种自然语言和 13 种编程语言",
        "Flan-UL2 checkpoint使用2048的感受野",
        "Alpaca是一个基于LLaMA预训练模型",
    ],
    "001": [
        "GPT FamilyGPT-41.76T2023-13T",
        "BERT使用两种目标进行预训练:掩蔽语言模型(MLM)和下一个句子预测",
        "Transformer 架构",
    ],
    "002": ["LLM首要基于Transformer架构"],
    "003": ["0.762", "LLaMA-7B + FT(2M) 0.710 - 31", "BELLE的简介"],
    "004": ["可以借鉴的点", "llama.cpp 可以在 Pixel 6 手机上运行"],
}


@pytest.mark.parametrize("seed", sorted(NOISE))
def test_noise_is_removed(cleaned: dict[str, str], seed: str) -> None:
    for noise in NOISE[seed]:
        assert noise not in cleaned[seed], noise


@pytest.mark.parametrize("seed", sorted(CONTENT))
def test_content_is_kept(cleaned: dict[str, str], seed: str) -> None:
    for content in CONTENT[seed]:
        assert content in cleaned[seed], content


def test_repeated_paragraph_kept_once(cleaned: dict[str, str]) -> None:
    text = cleaned["003"]
    assert text.count("LLaMA-7B + FT(2M) + FT(math_0.25M) 代表了一个使用 增量全参数微调") == 1


def test_every_content_line_of_a_seed_survives_unless_classified() -> None:
    """Lines the classifier does not flag are all still there: cleaning never drops content silently."""
    for path in SEEDS:
        raw = path.read_text(encoding="utf-8")
        report = CleanReport()
        out = clean_lines(raw, set(), set(), report)
        assert 0.5 < len(out) / len(raw) <= 1.0
        assert sum(report.removed.values()) > 0


def test_toc_is_dropped_but_headings_stay(cleaned: dict[str, str]) -> None:
    text = cleaned["004"]
    assert "目录" not in text.split("\n")[:3]
    assert text.count("Stanford Alpaca") >= 1


@pytest.mark.parametrize(
    "line,noisy",
    [
        ("❤️觉得内容不错的话,欢迎点赞收藏加关注😊😊😊", True),
        ("点赞", True),
        ("6", True),
        ("OPT-175B 和 GPT-3 的性能相当,并且部署只需要损耗 GPT-3 1/7 的能量损耗,可以免费获得。", False),
        ("ChatGPT类模型更是备受关注,这类模型以OpenAI GPT系列模型为代表,具有无监督预训练和有监督微调的能力。", False),
        ("This approach improves accuracy, as shown in the application section.", False),
    ],
)
def test_line_classifier(line: str, noisy: bool) -> None:
    assert (is_boilerplate(line) is not None) == noisy


def test_despin_restores_numerals_and_keeps_length() -> None:
    spun = "LLama两 以及 GPT-四 正在二017年 利用5两k数据 LLaMa一样 LLaMA两个版本"
    out = despin(spun)
    assert "LLama2" in out and "GPT-4" in out and "2017年" in out and "52k" in out
    assert "LLaMa一样" in out and "LLaMA两个" in out  # real Chinese words are left alone
    assert len(out) == len(spun)  # offsets into the cleaned text stay valid


def test_markdown_cleanup_keeps_structure() -> None:
    md = "# Title\n\n![img](x.png) [link text](http://x) [](http://badge)\n\n```bash\npip install x\n```\n| a | b |\n"
    out = clean_markdown(md)
    assert "# Title" in out and "link text" in out and "| a | b |" in out
    assert "http" not in out and "pip install" not in out


def test_cleaning_report_counts_removed_characters() -> None:
    report = CleanReport()
    clean_lines("正文内容在这里,这是一个足够长的句子。\n\n点赞\n收藏\n", set(), set(), report)
    assert report.removed["promo/widget"] > 0


def test_seed_files_are_shipped() -> None:
    assert len(SEEDS) == 5 and all(Path(p).stat().st_size > 1000 for p in SEEDS)
