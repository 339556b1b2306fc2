"""Answer -> Slack message: markdown to mrkdwn, `[n]` markers to links, Block Kit within Slack's limits.

Pure functions, no Slack client: the bot in `server.slack` only sends what these return.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from rag.schema import Answer, Citation

SECTION_LIMIT = 3000  # characters of text in one section block
MAX_BLOCKS = 50  # blocks in one message
TEXT_LIMIT = 40_000  # characters of a message's top-level `text`
MAX_ANSWER_CHARS = 9000  # longer answers are trimmed: a Slack reply should stay readable
QUOTE_CHARS = 160  # of each source's quote in the source list
TRIMMED_NOTE = "_The answer was trimmed to fit in Slack; ask `llm-atlas` or the HTTP API for the full text._"

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\](?!\()")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_TOKEN = re.compile(r"\x00(\d+)\x00")


def escape(text: str) -> str:
    """Slack's three control characters; everything retrieved or typed goes through this."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_link(url: str, label: str) -> str:
    """`<url|label>`; `|`, `<`, `>` and spaces would end the link early, so they are percent-encoded."""
    safe_url = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._").replace("&", "&amp;")
    return f"<{safe_url}|{escape(label)}>"


def _linkable(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def to_mrkdwn(markdown: str, citations: list[Citation] | None = None) -> str:
    """Convert the answer's markdown to Slack mrkdwn and turn `[n]` markers into links to source n.

    Code, links and markers are swapped for tokens while the emphasis rules run, so a `_` or `*`
    inside a URL or code span is never mistaken for formatting.
    """
    urls = {c.n: c.url for c in citations or [] if _linkable(c.url)}
    kept: list[str] = []

    def keep(piece: str) -> str:
        kept.append(piece)
        return f"\x00{len(kept) - 1}\x00"

    def code(match: re.Match[str]) -> str:
        return keep(escape(match.group(0)))

    def marker(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        return "".join(keep(slack_link(urls[n], f"[{n}]")) if n in urls else f"[{n}]" for n in numbers)

    text = markdown.replace("\x00", "")
    text = _FENCE.sub(code, text)
    text = _INLINE_CODE.sub(code, text)
    text = _MD_LINK.sub(lambda m: keep(slack_link(m.group(2), m.group(1))), text)
    text = escape(text)
    text = _MARKER.sub(marker, text)
    # Headings become bold lines (mrkdwn has no headings); bold inside them would nest, so it goes.
    text = re.sub(
        r"^#{1,6}\s+(.+?)\s*#*$", lambda m: "\x01" + re.sub(r"\*\*|__", "", m.group(1)) + "\x01", text, flags=re.M
    )
    text = re.sub(r"^(\s*)[-*+]\s+", "\\1• ", text, flags=re.M)
    text = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: f"\x01{m.group(1) or m.group(2)}\x01", text)
    text = re.sub(r"(?<![*\w])\*(?=\S)(.+?)(?<=\S)\*(?![*\w])", "_\\1_", text)  # *italic* -> _italic_
    text = re.sub(r"~~(.+?)~~", "~\\1~", text)
    text = text.replace("\x01", "*")
    return _TOKEN.sub(lambda m: kept[int(m.group(1))], text)


def plain_markers(text: str) -> str:
    """mrkdwn with the citation links turned back into bare `[n]` (for notifications and history)."""
    return re.sub(r"<[^<>|]+\|(\[\d+\])>", "\\1", text)


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split at paragraph, line or word ends, never inside a `<...>` link, into pieces of <= limit."""
    pieces = []
    while len(text) > limit:
        cut = -1
        for sep in ("\n\n", "\n", " "):
            pos = text.rfind(sep, 0, limit)
            while pos > 0 and text.rfind("<", 0, pos) > text.rfind(">", 0, pos):
                pos = text.rfind(sep, 0, pos)
            if pos > 0:
                cut = pos
                break
        if cut <= 0:
            cut = limit
            while text.rfind("<", 0, cut) > text.rfind(">", 0, cut) and cut > 1:
                cut -= 1
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text.strip():
        pieces.append(text)
    return pieces


def trim(text: str, limit: int) -> tuple[str, bool]:
    """Cut at the last word end before `limit` and add "…"; returns (text, was_trimmed)."""
    if len(text) <= limit:
        return text, False
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip() + "…", True


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_LIMIT]}]}


def source_line(c: Citation) -> str:
    title = slack_link(c.url, c.title) if _linkable(c.url) else escape(c.title)
    where = f" › {escape(c.section)}" if c.section else ""
    quote_text, _ = trim(" ".join(c.quote.split()), QUOTE_CHARS)
    return f"*[{c.n}]* {title}{where}" + (f"\n“{escape(quote_text)}”" if quote_text else "")


def answer_message(answer: Answer, header: str | None = None) -> dict:
    """`text` + `blocks` for chat.postMessage / chat.update / respond().

    Layout: optional header (mrkdwn, already escaped), the notice, the answer in sections with
    linked markers, then a divider and one context block per cited source.
    """
    markdown, trimmed = trim(answer.answer.strip() or "(no answer)", MAX_ANSWER_CHARS)
    body = to_mrkdwn(markdown, answer.citations)
    head: list[dict] = [_context(header)] if header else []
    if answer.notice:
        head.append(_context(f":information_source: {escape(answer.notice)}"))
    head += [_section(piece) for piece in split_text(body)]
    if trimmed:
        head.append(_context(TRIMMED_NOTE))

    sources = sorted({c.n: c for c in answer.citations}.values(), key=lambda c: c.n)
    tail: list[dict] = []
    if sources:
        room = MAX_BLOCKS - len(head) - 1  # the divider
        shown = sources if len(sources) <= room else sources[: room - 1]
        tail = [{"type": "divider"}] + [_context(source_line(c)) for c in shown]
        if len(shown) < len(sources):
            tail.append(_context(f"…and {len(sources) - len(shown)} more sources."))
    text, _ = trim(plain_markers(body), TEXT_LIMIT)
    return {"text": text, "blocks": (head + tail)[:MAX_BLOCKS]}
