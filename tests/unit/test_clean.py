"""Cleaning removes site noise by general rules and keeps every content line."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import CORPUS_DIR
from ingest.clean import CleanReport, clean_lines, clean_markdown, is_boilerplate, template_lines
from ingest.despin import despin

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


# A scraped list of names, each with a one-line description, then a page footer. Written for this test.
NAME_LIST = """收录的开源模型如下,每个名字下面一行是它的简介:

Otter-3B

某实验室开源的3B对话模型,基于Pythia训练

Heron

使用12万条中文指令微调的7B模型

Gull-13B

在2T token上预训练的13B基座模型,支持8K上下文

这是一段足够长的正文段落,用来检查重复出现的段落在清洗之后只会保留第一次出现的那一份内容。

这是一段足够长的正文段落,用来检查重复出现的段落在清洗之后只会保留第一次出现的那一份内容。

手机扫一扫阅读

马上
转发

官方公众账号

返回
顶部"""


def test_name_and_description_lines_stay_while_the_footer_goes() -> None:
    report = CleanReport()
    out = clean_lines(NAME_LIST, set(), set(), report)
    for line in ("Otter-3B", "某实验室开源的3B对话模型,基于Pythia训练", "Heron", "使用12万条中文指令微调的7B模型"):
        assert line in out.split("\n"), line
    assert "在2T token上预训练的13B基座模型,支持8K上下文" in out
    assert out.count("用来检查重复出现的段落") == 1
    for noise in ("扫一扫", "马上", "转发", "公众账号", "返回", "顶部"):
        assert noise not in out, noise
    assert report.removed["inside widget"] > 0 and report.removed["repeated paragraph"] > 0


def test_short_lines_between_noise_are_noise_but_not_far_from_it() -> None:
    widget = "正文说明这是一个足够长的内容行,不会被当作噪声。\n\n点赞\n\n确定\n取消\n\n收藏\n\nAlpha\n\nBeta"
    out = clean_lines(widget, set(), set(), CleanReport())
    assert "确定" not in out and "取消" not in out
    assert "Alpha" not in out and "Beta" not in out  # short lines after noise that end the page: a footer
    assert "正文说明" in out
    long_run = "正文内容在这里,这是一个足够长的句子。\n\n点赞\n\nA1\n\nB2\n\nC3\n\nD4\n\n收藏"
    kept = clean_lines(long_run, set(), set(), CleanReport())
    assert all(x in kept for x in ("A1", "B2", "C3", "D4"))  # four short lines are a list, not a widget
    headed = "正文内容在这里,这是一个足够长的句子。\n\n点赞\n\n## 参考\n\n收藏"
    assert "## 参考" in clean_lines(headed, set(), set(), CleanReport())


def test_front_matter_is_metadata_not_a_template() -> None:
    card = "---\nlicense: mit\npipeline_tag: text-generation\n---\n\n# Model {}\n\nFooter line of a site"
    cards = [card.format(n) for n in range(4)]
    shared = template_lines(cards)
    assert "Footer line of a site" in shared
    assert "license: mit" not in shared and "pipeline_tag: text-generation" not in shared
    out = clean_lines(cards[0] + "\n\nlicense: mit", {"license: mit"}, set(), CleanReport())
    assert out.startswith("---\nlicense: mit\npipeline_tag: text-generation\n---")
    assert out.count("license: mit") == 1  # the same line outside the front matter is still a template


def test_code_blocks_keep_settings_and_measurements_only() -> None:
    md = """## Training

We trained the adapter with:

```bash
# the run from the paper
python train.py \\
    --base_model 'org/base-7b' \\
    --epochs=4 \\
    --rank 32 \\
    --fp16
```

```python
import torch
from lib import Model

model = Model.load("org/base-7b")
print(model)
```

```
Score - setting
3.1415 - 7B, int8
2.7182 - 13B, int4
```

```bibtex
@article{x,
  year = 2023,
}
```

```bash
python train.py \\
    --epochs=4
```
"""
    out = clean_markdown(md)
    assert "--epochs=4" in out and "--rank 32" in out and "python train.py" in out
    assert out.count("--epochs=4") == 1  # a setting repeated in a later block is kept once
    assert "3.1415 - 7B, int8" in out and "Score - setting" in out  # a table of scores keeps its header
    assert "the run from the paper" not in out  # comments go
    assert "import torch" not in out and "Model.load" not in out  # code without settings goes
    assert "year" not in out and "@article" not in out  # citations go
    assert "```" not in out


def test_a_badge_stating_a_fact_keeps_its_label() -> None:
    md = (
        "[![Build Status](https://ci.example.org/badge.svg)](https://ci.example.org)\n"
        "[![License: Apache 2.0](https://img.shields.io/badge/license-Apache-blue.svg)](https://example.org/LICENSE)\n"
        "![diagram: the pipeline](pipeline.png)\n"
    )
    out = clean_markdown(md)
    assert "License: Apache 2.0" in out
    assert "diagram: the pipeline" not in out  # a figure's caption is no badge
    assert "Build Status" not in out and "shields.io" not in out and "LICENSE" not in out
