"""Turn raw HTML, markdown and scraped text into clean document text.

Scraped blog text carries share/like banners, ads, comment widgets, related-article
lists and repeated paragraphs. They are removed by general rules (a line classifier,
its neighbourhood, repetition within and across documents), never by a list of this
corpus's sentences.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

# Words of site chrome, promotion and comment widgets (Chinese and English). One such word
# in a long content line is normal ("备受关注"); several in a short line are not.
PROMO_WORDS = (
    "点赞",
    "收藏",
    "关注",
    "评论",
    "转发",
    "分享",
    "扫码",
    "扫描",
    "二维码",
    "领取",
    "免费",
    "私信",
    "私戳",
    "红包",
    "余额",
    "充值",
    "支付",
    "打赏",
    "阅读全文",
    "展开全文",
    "相关推荐",
    "相关文章",
    "版权声明",
    "本文链接",
    "原文链接",
    "登录",
    "注册",
    "举报",
    "粉丝",
    "博主",
    "一键",
    "VIP",
    "APP",
    "文章数量",
    "管理员",
    "抵扣",
    "付费",
    "资源包",
    "大礼包",
    "插入图片",
    "公众号",
    "加群",
    "获取方式",
    "订阅",
    "专栏",
    "浏览量",
    "阅读量",
)
PROMO_EN = (
    "VIP",
    "Copyright",
    "All rights reserved",
    "Sign in",
    "Sign up",
    "Subscribe",
    "Share this",
    "Advertisement",
    "Cookie policy",
    "Read more",
)
PROMO_RE = re.compile("|".join([re.escape(w) for w in PROMO_WORDS] + [rf"\b{re.escape(w)}\b" for w in PROMO_EN]))
EMOJI_RE = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2b55\ufe0f]")
COUNTER_RE = re.compile(r"^[\s•·\-*]*\d{1,7}\s*[kKwW万+]?\s*$")
TIME_AGO_RE = re.compile(r"\d+\s*(秒|分钟|小时|天|周|个月|月|年)前|\d+\s+(minutes?|hours?|days?|months?|years?) ago")
# Search-result snippets highlight matched words by padding them with spaces: "大 语言 模型 ".
HIGHLIGHT_RE = re.compile(r"[\u4e00-\u9fff] [\u4e00-\u9fff]{1,4} [\u4e00-\u9fff]")
ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
TOC_MARKERS = ("目录", "文章目录", "Table of Contents", "Contents")


@dataclass
class CleanReport:
    chars_before: int = 0
    chars_after: int = 0
    removed: Counter = field(default_factory=Counter)


def is_boilerplate(line: str) -> str | None:
    """Return why a single line is site noise, or None if it may be content."""
    text = line.strip()
    if not text:
        return None
    if COUNTER_RE.match(text):
        return "counter"  # tentative: kept unless it sits next to other noise (it may be a table cell)
    hits = len(PROMO_RE.findall(text))
    emoji = len(EMOJI_RE.findall(text))
    length = len(text)
    if emoji >= 2 and length < 300:
        return "emoji banner"
    if hits >= 3 or (hits >= 2 and length < 150) or (hits >= 1 and length < 25):
        return "promo/widget"
    if TIME_AGO_RE.search(text) and ("·" in text or length < 60):
        return "related list"
    if len(HIGHLIGHT_RE.findall(text)) >= 3:
        return "search snippet"
    return None


def normalise_whitespace(text: str) -> str:
    text = ZERO_WIDTH_RE.sub("", text).replace("\xa0", " ").replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[ \t]+$", "", line) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def drop_toc(lines: list[str]) -> list[str]:
    """Remove a table of contents: a marker line followed by short lines that recur later as headings."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() in TOC_MARKERS:
            # Where each line occurs last, so "does it recur later?" is one lookup.
            last_seen = {line.strip(): k for k, line in enumerate(lines)}
            j = i + 1
            while j < len(lines) and (
                not lines[j].strip() or (len(lines[j].strip()) < 60 and last_seen[lines[j].strip()] > j)
            ):
                j += 1
            if j > i + 1:
                i = j
                continue
        out.append(lines[i])
        i += 1
    return out


def clean_lines(text: str, shared_lines: set[str], seen_paragraphs: set[str], report: CleanReport) -> str:
    """Classify lines, extend noise to short lines inside noise runs, drop repeated paragraphs."""
    lines = drop_toc(normalise_whitespace(text).split("\n"))
    verdicts: list[str | None] = []
    for line in lines:
        key = line.strip()
        reason = is_boilerplate(line)
        if reason is None and key and key in shared_lines:
            reason = "template line"
        verdicts.append(reason)
    content = [i for i, line in enumerate(lines) if line.strip()]

    def is_noise(i: int) -> bool:
        return bool(verdicts[i]) and verdicts[i] != "counter"

    for pos, i in enumerate(content):
        if verdicts[i] == "counter":
            near = content[max(0, pos - 2) : pos] + content[pos + 1 : pos + 3]
            verdicts[i] = "counter" if any(is_noise(j) for j in near) else None
    # A short line between two noise lines (e.g. "实付" in a payment widget) is noise too.
    for pos, i in enumerate(content):
        if verdicts[i] or len(lines[i].strip()) >= 30:
            continue
        prev_noise = pos > 0 and verdicts[content[pos - 1]]
        next_noise = pos + 1 < len(content) and verdicts[content[pos + 1]]
        if prev_noise and next_noise:
            verdicts[i] = "inside widget"
    kept: list[str] = []
    for line, reason in zip(lines, verdicts):
        key = re.sub(r"\s+", "", line)
        if reason is None and len(key) >= 40:
            if key in seen_paragraphs:
                reason = "repeated paragraph"
            else:
                seen_paragraphs.add(key)
        if reason:
            report.removed[reason] += len(line)
        else:
            kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def template_lines(texts: Iterable[str], min_docs: int = 3) -> set[str]:
    """Short lines that recur in several documents: site templates, not content. Headings and
    table rows are structure ("## License" in every model card), never templates."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(
            {
                line.strip()
                for line in text.split("\n")
                if 0 < len(line.strip()) < 200 and not line.lstrip().startswith("#") and line.count("|") < 2
            }
        )
    return {line for line, n in counts.items() if n >= min_docs and len(line) > 8}


MD_IMAGE_RE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
MD_LINK_RE = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^)]*\))*\)")
# Code blocks (shell commands, configs, BibTeX) answer no question about a model and crowd
# retrieval with near-identical chunks; the source URL still has them.
CODE_FENCE_RE = re.compile(r"^\s*(```|~~~)[^\n]*\n.*?^\s*\1\s*$", re.DOTALL | re.MULTILINE)
HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>")


def clean_markdown(text: str) -> str:
    """Keep headings, lists and tables; drop images, badges, raw HTML and link targets."""
    text = HTML_COMMENT_RE.sub("", text)
    text = CODE_FENCE_RE.sub("", text)
    text = MD_IMAGE_RE.sub("", text)
    text = MD_LINK_RE.sub(r"\1", text)
    text = HTML_TAG_RE.sub("", text)
    return html.unescape(text)


def html_to_markdown(html: str) -> tuple[str, str | None]:
    """Main content of an HTML page as markdown (headings and tables kept), plus its title."""
    import trafilatura

    body = trafilatura.extract(
        html,
        output_format="markdown",
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
    )
    meta = trafilatura.extract_metadata(html)
    title = meta.title if meta is not None else None
    if not body:
        # Broken or unusual markup: fall back to all the page's text rather than losing it.
        import lxml.html

        try:
            tree = lxml.html.fromstring(html)
            for bad in tree.xpath("//script|//style"):
                bad.drop_tree()
            body = tree.text_content()
        except (ValueError, lxml.etree.ParserError):
            body = HTML_TAG_RE.sub(" ", html)
    return body or "", title


def to_text(content: str, fmt: str) -> tuple[str, str | None]:
    """Raw content in a given format -> (text to clean, title found in it)."""
    if fmt == "html":
        body, title = html_to_markdown(content)
        return clean_markdown(body), title
    if fmt == "markdown":
        return clean_markdown(content), None
    return content, None


# Spun text writes digits inside names and numbers as Chinese numerals: "LLama两", "GPT-四", "二017年".
_NUMERALS = {
    "〇": "0",
    "零": "0",
    "一": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
_SPUN_AFTER_LATIN = re.compile(
    r"(?<=[A-Za-z0-9][-.])([〇一二两三四五六七八九])|(?<=[A-Za-z0-9])([二两])"
    r"(?![个种位款者项类部名条倍大])"
)
_SPUN_BEFORE_DIGIT = re.compile(r"([〇二两三四五六七八九])(?=[0-9])")


def despin(text: str) -> str:
    """Undo numeral spinning so 'LLama两' reads 'LLama2' for search and display."""
    text = _SPUN_AFTER_LATIN.sub(lambda m: _NUMERALS[m.group(1) or m.group(2)], text)
    return _SPUN_BEFORE_DIGIT.sub(lambda m: _NUMERALS[m.group(1)], text)


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)
