"""Turn raw HTML, markdown and scraped text into clean document text.

Scraped blog text carries share/like banners, ads, comment widgets, related-article
lists and repeated paragraphs. They are removed by general rules (a line classifier,
its neighbourhood, repetition within and across documents), never by a list of this
corpus's sentences.
"""

from __future__ import annotations

import bisect
import html
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import MissingDependency

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
    "扫一扫",
    "小程序",
    "公众账号",
    "本文标签",
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
# Both only answer "is there a match?", so they are written to never backtrack quadratically: one optional
# unit instead of `\s*[unit]?\s*` (two runs that can split a long space run in n ways), and a digit run is
# only tried from its first digit (a match from inside the run is also one from its start).
COUNTER_RE = re.compile(r"^[\s•·\-*]*\d{1,7}\s*(?:[kKwW万+]\s*)?$")
TIME_AGO_RE = re.compile(
    r"(?<!\d)\d+\s*(秒|分钟|小时|天|周|个月|月|年)前|(?<!\d)\d+\s+(minutes?|hours?|days?|months?|years?) ago"
)
# Search-result snippets highlight matched words by padding them with spaces: "大 语言 模型 ".
HIGHLIGHT_RE = re.compile(r"[\u4e00-\u9fff] [\u4e00-\u9fff]{1,4} [\u4e00-\u9fff]")
ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
TOC_MARKERS = ("目录", "文章目录", "Table of Contents", "Contents")
SHORT_LINE = 30  # a line this short says nothing on its own: its neighbours decide whether it is noise
MAX_WIDGET_RUN = 3  # at most this many short lines between noise are taken as one widget's labels


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
    # rstrip, not re.sub("[ \t]+$"): the regex retries every position of a long space run.
    lines = [line.rstrip(" \t") for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def drop_toc(lines: list[str]) -> list[str]:
    """Remove a table of contents: a marker line followed by short lines that recur later as headings."""
    out: list[str] = []
    # Where each line occurs last, so "does it recur later?" is one lookup; built once, not per marker
    # (a page of "Contents" lines made that quadratic).
    last_seen: dict[str, int] | None = None
    i = 0
    while i < len(lines):
        if lines[i].strip() in TOC_MARKERS:
            if last_seen is None:
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
    metadata = front_matter_length(lines)
    verdicts: list[str | None] = []
    for n, line in enumerate(lines):
        key = line.strip()
        reason = is_boilerplate(line)
        if reason is None and key and key in shared_lines and n >= metadata:
            reason = "template line"
        verdicts.append(reason)
    content = [i for i, line in enumerate(lines) if line.strip()]

    def is_noise(i: int) -> bool:
        return bool(verdicts[i]) and verdicts[i] != "counter"

    for pos, i in enumerate(content):
        if verdicts[i] == "counter":
            near = content[max(0, pos - 2) : pos] + content[pos + 1 : pos + 3]
            verdicts[i] = "counter" if any(is_noise(j) for j in near) else None
    # A few short lines between two noise lines (e.g. "实付" in a payment widget, "立即 / 投稿" under a
    # share banner), or after noise at the very end of the page ("返回 / 顶部"), are noise too.
    pos = 0
    while pos < len(content):
        run_end = pos
        while run_end < len(content) and not verdicts[content[run_end]]:
            label = lines[content[run_end]].strip()
            if len(label) >= SHORT_LINE or label.startswith("#"):  # a heading is structure, never a label
                break
            run_end += 1
        if run_end == pos:
            pos += 1
            continue
        prev_noise = pos > 0 and verdicts[content[pos - 1]]
        next_noise = run_end == len(content) or verdicts[content[run_end]]
        if prev_noise and next_noise and run_end - pos <= MAX_WIDGET_RUN:
            for k in range(pos, run_end):
                verdicts[content[k]] = "inside widget"
        pos = run_end
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


def front_matter_length(lines: list[str]) -> int:
    """How many leading lines are a YAML front matter block (`---` ... `---`), 0 if there is none."""
    first = next((n for n, line in enumerate(lines) if line.strip()), len(lines))
    if first == len(lines) or lines[first].strip() != "---":
        return 0
    for n in range(first + 1, len(lines)):
        if lines[n].strip() in ("---", "..."):
            return n + 1
    return 0


def template_lines(texts: Iterable[str], min_docs: int = 3) -> set[str]:
    """Short lines that recur in several documents: site templates, not content. Headings and
    table rows are structure ("## License" in every model card), never templates, and so is a
    document's front matter: "license: apache-2.0" recurs because it is each card's own metadata."""
    counts: Counter = Counter()
    for text in texts:
        lines = text.split("\n")
        counts.update(
            {
                line.strip()
                for line in lines[front_matter_length(lines) :]
                if 0 < len(line.strip()) < 200 and not line.lstrip().startswith("#") and line.count("|") < 2
            }
        )
    return {line for line, n in counts.items() if n >= min_docs and len(line) > 8}


# Markdown and HTML clean-up. Each pass gives exactly what the regex in its docstring gives
# (tests/unit/test_clean_linear.py compares them on random text) but reads the text once: the regexes
# retried every start of an unclosed `[x](`, `![x](`, `<a`, `<!--` or code fence up to the end of the
# text, so a page of such fragments took minutes.
HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>")
FENCES = ("```", "~~~")


class _NextIndex:
    """Where a character next occurs at or after i; asked for growing i, each stretch is searched once."""

    def __init__(self, text: str, char: str) -> None:
        self.text, self.char = text, char
        self.asked, self.found = len(text) + 1, -1

    def at(self, i: int) -> int:
        # The last answer still holds if nothing lies between where it was asked and i.
        if not (self.asked <= i and (self.found < 0 or self.found >= i)):
            self.asked, self.found = i, self.text.find(self.char, i)
        return self.found


def drop_html_comments(text: str) -> str:
    """Remove HTML comments, as `re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)`."""
    out, pos = [], 0
    # An unclosed comment ends the search: no later one can close either.
    while (start := text.find("<!--", pos)) >= 0 and (end := text.find("-->", start + 4)) >= 0:
        out.append(text[pos:start])
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


def drop_code_fences(text: str, repl: Callable[[str], str] | None = None) -> str:
    """Remove fenced code blocks, as `re.sub(r"^\\s*(```|~~~)[^\\n]*\\n.*?^\\s*\\1\\s*$", "", text,
    flags=re.DOTALL | re.MULTILINE)`: a block starts at the first of the blank lines before its opening
    fence and ends at the last line break of the blank lines after its closing fence (the whole rest when
    only blank lines follow); an opening fence that is never closed stays. With `repl`, each block is
    replaced by `repl(block)` instead, as the same `re.sub` with `lambda m: repl(m.group())`."""
    if FENCES[0] not in text and FENCES[1] not in text:
        return text
    lines = text.split("\n")
    starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    blank = [not line.strip() for line in lines]  # str.strip and the regex's \s agree on whitespace
    fences: list[tuple[int, str, int]] = []  # (line, fence, first line of the blank run before it)
    closers: dict[str, list[int]] = {fence: [] for fence in FENCES}
    run_start = 0
    for i, line in enumerate(lines):
        if blank[i]:
            run_start = i if i == 0 or not blank[i - 1] else run_start
            continue
        body = line.lstrip()
        if body[:3] in FENCES:
            fences.append((i, body[:3], run_start if i > 0 and blank[i - 1] else i))
            if not body[3:].strip():
                closers[body[:3]].append(i)
    close_end: dict[int, int] = {}
    for line_list in closers.values():
        for k in line_list:
            j = k + 1
            while j < len(lines) and blank[j]:
                j += 1
            close_end[k] = starts[j] - 1 if j < len(lines) else len(text)
    out, pos = [], 0
    for i, fence, first in fences:
        if i + 1 == len(lines):
            continue  # an opening fence needs a line break after it
        # The search resumes where the last block ended: the first line start from there on.
        r = bisect.bisect_left(starts, pos, first, i + 1)
        c = bisect.bisect_right(closers[fence], i)
        if r > i or c == len(closers[fence]):
            continue
        out.append(text[pos : starts[r]])
        pos = close_end[closers[fence][c]]
        if repl is not None:
            out.append(repl(text[starts[r] : pos]))
    out.append(text[pos:])
    return "".join(out)


# A code line that states a fact: an option or setting with a numeric value ("--num_epochs=10",
# "--lora_r 16", "max_seq_len: 4096"), or a row of measurements ("5.5985 - 13B, q4_0").
CODE_OPTION_RE = re.compile(r"(?:^|\s)--?[A-Za-z][\w.-]*(?:=|\s+)['\"]?\d")
CODE_SETTING_RE = re.compile(r"^[A-Za-z_][\w.-]+\s*[:=]\s*['\"]?\d")  # "a = 0" is a variable
CODE_MEASURE_RE = re.compile(r"^\d+\.\d+\s*(?:[-|:,]|$)")
CODE_COMMENT = ("#", "//", ">>>")
BIBTEX_RE = re.compile(r"@[A-Za-z]+\s*\{")


def code_fact_line(line: str) -> bool:
    text = line.strip()
    return bool(CODE_OPTION_RE.search(text) or CODE_SETTING_RE.match(text) or CODE_MEASURE_RE.match(text))


def code_facts(block: str, seen: set[str]) -> str:
    """What a fenced code block keeps: the lines that state a setting or a measurement (a training
    command's hyper-parameters, a table of scores), each once per document; the rest of the code
    (imports, calls, prompts, BibTeX) answers no question about a model and crowds retrieval with
    near-identical chunks. A block that is mostly such lines (a config, an output table) keeps its
    other lines too, a header row or the command the options belong to, but never comments."""
    lines = block.strip().split("\n")
    fence_tag = lines[0].strip()[3:].strip().lower()
    body = [line.strip().removesuffix("\\").rstrip() for line in lines[1:-1]]
    body = [line for line in body if line]
    if fence_tag == "bibtex" or (body and BIBTEX_RE.match(body[0])):
        return ""  # a citation: its "year = 2023," is no setting
    facts = [code_fact_line(line) for line in body]
    whole = sum(facts) * 2 >= len(body)
    kept = []
    for line, fact in zip(body, facts):
        comment = not fact and line.startswith(CODE_COMMENT)
        if (fact or whole) and not comment and line not in seen:
            seen.add(line)
            kept.append(line)
    return "\n" + "\n".join(kept) + "\n" if sum(facts) and kept else ""


# A badge (an image from shields.io or a .../badge URL) whose label states a fact ("![License: MIT](...)"):
# the label is kept as text, the image dropped. Bounded lengths keep the scan linear; other images go.
BADGE_FACT_RE = re.compile(
    r"!\[([A-Za-z][\w .+-]{0,30}:[ \t]*[^\]\n:]{1,40})\]\((?=[^)\s]{0,500}(?:shields\.io|badge))[^)\s]{0,500}\)"
)


def drop_md_images(text: str) -> str:
    """Remove markdown images, as `re.sub(r"!\\[[^\\]]*\\]\\([^)]*\\)", "", text)`."""
    out, pos = [], 0
    bracket, paren = _NextIndex(text, "]"), _NextIndex(text, ")")
    start = text.find("![")
    while start >= 0:
        close = bracket.at(start + 2)
        if close < 0:
            break  # no "]" left: no later image can match either
        if text.startswith("(", close + 1):
            end = paren.at(close + 2)
            if end < 0:
                break
            out.append(text[pos:start])
            pos = end + 1
            start = text.find("![", pos)
        else:
            start = text.find("![", start + 1)
    out.append(text[pos:])
    return "".join(out)


def unlink_md(text: str) -> str:
    """Markdown links to their text, as `re.sub(r"\\[([^\\]]*)\\]\\((?:[^()]|\\([^)]*\\))*\\)", r"\\1", text)`
    (a target may hold parentheses one level deep, as wiki URLs do)."""
    if "](" not in text:
        return text
    opens = [m.start() for m in re.finditer(r"\(", text)]
    closes = [m.start() for m in re.finditer(r"\)", text)]
    # Where a target scan that reaches the parenthesis at k ends (-1: no match); each k is scanned once.
    ends: dict[int, int] = {}

    def target_end(i: int) -> int:
        """End of `(?:[^()]|\\([^)]*\\))*\\)` matched from i, or -1."""
        visited, end = [], -1
        while True:
            a, b = bisect.bisect_left(opens, i), bisect.bisect_left(closes, i)
            next_open = opens[a] if a < len(opens) else len(text)
            next_close = closes[b] if b < len(closes) else len(text)
            k = min(next_open, next_close)
            if k == len(text):
                break
            if k in ends:
                end = ends[k]
                break
            visited.append(k)
            if next_close < next_open:
                end = next_close + 1
                break
            if next_close == len(text):
                break  # "(" with no ")" after it
            i = next_close + 1  # a "(...)" group ends at the first ")" after its "("
        for k in visited:
            ends[k] = end
        return end

    out, pos = [], 0
    bracket = _NextIndex(text, "]")
    start = text.find("[")
    while start >= 0:
        close = bracket.at(start + 1)
        if close < 0:
            break
        end = target_end(close + 2) if text.startswith("(", close + 1) else -1
        if end >= 0:
            out += (text[pos:start], text[start + 1 : close])
            pos = end
            start = text.find("[", end)
        else:
            start = text.find("[", start + 1)
    out.append(text[pos:])
    return "".join(out)


def strip_tags(text: str, repl: str | Callable[[re.Match[str]], str] = "") -> str:
    """`HTML_TAG_RE.sub(repl, text)`. A tag ends at a ">", so the search stops at the last one instead of
    retrying every "<a" after it up to the end of the text."""
    end = text.rfind(">") + 1
    return HTML_TAG_RE.sub(repl, text[:end]) + text[end:]


def clean_markdown(text: str) -> str:
    """Keep headings, lists and tables and the facts badges state ("License: MIT"); drop images, other
    badges, raw HTML and link targets."""
    text = drop_html_comments(text)
    # Code blocks (shell commands, configs, BibTeX) mostly answer no question about a model and crowd
    # retrieval with near-identical chunks; only their settings and measurements stay (code_facts).
    seen: set[str] = set()
    text = drop_code_fences(text, lambda block: code_facts(block, seen))
    text = drop_md_images(BADGE_FACT_RE.sub(r"\1", text) if "![" in text else text)
    text = unlink_md(text)
    text = strip_tags(text)
    return html.unescape(text)


def _html_parsers() -> tuple[Any, Any]:
    """trafilatura and lxml.html, or a MissingDependency naming the package to install."""
    try:
        import trafilatura
    except ImportError as exc:
        message = str(exc)
        if "lxml_html_clean" in message or "lxml.html.clean" in message:
            package = "lxml_html_clean"  # lxml ships its HTML cleaner separately since 5.2
        elif (exc.name or "").split(".")[0] == "lxml":
            package = "lxml"
        else:
            package = "trafilatura"
        raise MissingDependency(package, "reading HTML", exc) from exc
    try:
        import lxml.html
    except ImportError as exc:
        raise MissingDependency("lxml", "reading HTML", exc) from exc
    return trafilatura, lxml.html


def tree_is_cut(page: str) -> bool:
    """Whether libxml2 stops building the page's tree at one of its limits (elements nested deeper than
    256): trafilatura and lxml then see only the part above the cut, often no text at all."""
    import lxml.etree
    import lxml.html

    parser = lxml.html.HTMLParser(encoding="utf-8")
    try:
        # Bytes, since lxml refuses a str that declares its encoding.
        lxml.html.fromstring(page.encode("utf-8", "replace"), parser=parser)
    except (ValueError, lxml.etree.ParserError):
        return False
    # libxml2 before 2.11 reported the depth limit as an internal error; the message names it either way.
    return any(
        error.type_name == "ERR_RESOURCE_LIMIT" or "Excessive depth" in error.message for error in parser.error_log
    )


_RAW_TEXT_RE = re.compile(r"<(script|style)\b", re.IGNORECASE)
_RAW_TEXT_END = {name: re.compile(f"</{name}", re.IGNORECASE) for name in ("script", "style")}
_TAG_NAME_RE = re.compile(r"</?([a-zA-Z][a-zA-Z0-9]*)")
_BLOCK_TAG_RE = re.compile(
    r"address|article|aside|blockquote|br|dd|div|dl|dt|figcaption|figure|footer|form|h[1-6]|header|hr|li|main|nav"
    r"|ol|p|pre|section|table|tbody|td|tfoot|th|thead|tr|ul"
)


def flat_html_text(page: str) -> str:
    """All the text of a page, by one pass over its tags and no tree: for pages no parser can build.
    Block tags become paragraph breaks, inline tags nothing (as a browser shows them)."""
    page = drop_html_comments(page)
    out, pos = [], 0
    while (match := _RAW_TEXT_RE.search(page, pos)) is not None:
        out.append(page[pos : match.start()])
        end = _RAW_TEXT_END[match.group(1).lower()].search(page, match.end())
        gt = page.find(">", end.end()) if end else -1
        pos = gt + 1 if gt >= 0 else len(page)  # an unclosed script runs to the end, as in a browser
    out.append(page[pos:])

    def tag(match: re.Match[str]) -> str:
        name = _TAG_NAME_RE.match(match.group()).group(1).lower()  # type: ignore[union-attr]
        return "\n\n" if _BLOCK_TAG_RE.fullmatch(name) else ""

    text = html.unescape(strip_tags("".join(out), tag))
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_markdown(page: str) -> tuple[str, str | None]:
    """Main content of an HTML page as markdown (headings and tables kept), plus its title."""
    trafilatura, lxml_html = _html_parsers()
    meta = trafilatura.extract_metadata(page)
    title = meta.title if meta is not None else None
    if tree_is_cut(page):
        return flat_html_text(page), title
    body = trafilatura.extract(
        page,
        output_format="markdown",
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
    )
    if not body:
        # Broken or unusual markup: fall back to all the page's text rather than losing it.
        try:
            tree = lxml_html.fromstring(page)
            for bad in tree.xpath("//script|//style"):
                bad.drop_tree()
            body = tree.text_content()
        except (ValueError, lxml_html.etree.ParserError):
            body = strip_tags(page, " ")
    return body or "", title


def to_text(content: str, fmt: str) -> tuple[str, str | None]:
    """Raw content in a given format -> (text to clean, title found in it)."""
    if fmt == "html":
        body, title = html_to_markdown(content)
        return clean_markdown(body), title
    if fmt == "markdown":
        return clean_markdown(content), None
    return content, None


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)
