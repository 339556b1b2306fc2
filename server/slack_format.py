"""Answer -> Slack message: markdown to mrkdwn, `[n]` markers to links, Block Kit within Slack's limits.

Markers are shown numbered 1..k in order of first use (the server's n is the rank of the retrieved
passage, so only some numbers are cited); markdown tables become aligned preformatted blocks; fact
sheets and comparisons become `fields` sections, one cited value list per model.

Pure functions, no Slack client: the bot in `server.slack` only sends what these return.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from rag.facts import SourceNumbers
from rag.schema import Answer, Citation

SECTION_LIMIT = 3000  # characters of text in one section block
MAX_BLOCKS = 50  # blocks in one message
TEXT_LIMIT = 40_000  # characters of a message's top-level `text`
MAX_ANSWER_CHARS = 9000  # longer answers are trimmed: a Slack reply should stay readable
QUOTE_CHARS = 160  # of each source's quote in the source list
FIELD_LIMIT = 2000  # characters of one field of a section block
MAX_FIELDS = 10  # fields in one section block
CONTEXT_ELEMENTS = 10  # elements in one context block
CONFLICT = "⚠"
TRIMMED_NOTE = "_The answer was trimmed to fit in Slack; ask `llm-atlas` or the HTTP API for the full text._"

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\](?!\()")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_TOKEN = re.compile(r"\x00(\d+)\x00")
_ROW = re.compile(r"^\s*\|.*\|\s*$")
_DELIMITER = re.compile(r"^\s*\|(\s*:?-+:?\s*\|)+\s*$")
# A table row with the sentence's markers after its closing pipe, as the answer code writes them.
_ROW_MARKERS = re.compile(r"^(\s*\|.*\|)\s*((?:\[\d+(?:\s*,\s*\d+)*\]\s*)+)$")


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


def _marker_numbers(group: str) -> list[int]:
    return [int(n) for n in re.split(r"\s*,\s*", group)]


def numbering(markdown: str, citations: Iterable[Citation]) -> dict[int, int]:
    """Citation n -> the number shown: 1..k in order of first use in the text (code aside), then the
    cited but unused ones in the server's order."""
    known = sorted({c.n for c in citations})
    text = _INLINE_CODE.sub("", _FENCE.sub("", markdown))
    shown: dict[int, int] = {}
    for match in _MARKER.finditer(text):
        for n in _marker_numbers(match.group(1)):
            if n in known and n not in shown:
                shown[n] = len(shown) + 1
    for n in known:
        shown.setdefault(n, len(shown) + 1)
    return shown


def display_width(text: str) -> int:
    """Columns in a monospaced font: CJK and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1 for ch in text)


def plain_cell(text: str) -> str:
    """A table cell's markdown as plain text (it goes into a preformatted block, where nothing is formatted)."""
    text = re.sub(r"<br\s*/?>", " ", text, flags=re.I)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = re.sub(r"`([^`]*)`", "\\1", text)
    text = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])", "\\2", text)  # *italic*, _italic_
    return " ".join(text.replace("\\|", "|").split())


def _cells(row: str) -> list[str]:
    inner = row.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [plain_cell(cell) for cell in re.split(r"(?<!\\)\|", inner)]


def table_text(rows: list[list[str]]) -> str:
    """Rows of cells as aligned columns (header, a rule, the body) for a preformatted block."""
    columns = max(len(row) for row in rows)
    rows = [row + [""] * (columns - len(row)) for row in rows]
    widths = [max(display_width(row[i]) for row in rows) for i in range(columns)]

    def line(row: list[str]) -> str:
        return " | ".join(cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(row)).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


def _move_markers(line: str) -> str:
    """`| a | b | [4]` -> `| a | b [4] |`: the answer code puts a sentence's markers after its line,
    which for a table row is past the closing pipe."""
    match = _ROW_MARKERS.match(line)
    return f"{match.group(1)[:-1].rstrip()} {match.group(2).strip()} |" if match else line


def _table_cells(row: str) -> list[str]:
    # "| a | b |", "a|b" and "||b|c|" (an empty first header cell) alike: one outer pipe each side is the border.
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") else row
    return [cell.strip() for cell in row.split("|")]


def expand_table_rows(markdown: str) -> str:
    """The extractive answer quotes a table row on one line, after its header: `| h1 | h2 | → | v1 | v2 | [n]`.
    Those become markdown tables; consecutive rows under one header share one, each row keeping its markers."""
    out: list[str] = []
    table: tuple[list[str], list[list[str]]] | None = None

    def flush() -> None:
        nonlocal table
        if table:
            header, rows = table
            lines = [f"| {' | '.join(cells)} |" for cells in [header, ["---"] * len(header), *rows]]
            out.append("\n\n" + "\n".join(lines) + "\n\n")
            table = None

    last = 0
    for match in re.finditer(r"(?:\s*\[\d+(?:\s*,\s*\d+)*\])+", markdown):
        segment = markdown[last : match.start()]
        lead = re.match(r"[\s.,;:!?。，；：！？]*", segment).group(0)  # the previous sentence's "[1]." ends here
        head, arrow, tail = segment[len(lead) :].partition(" → ")
        header, row = _table_cells(head), _table_cells(tail)
        if arrow and "|" in head and len(header) >= 2 and len(row) == len(header):
            if lead.strip() or (table and table[0] != header):
                flush()
                out.append(lead.strip())
            table = table or (header, [])
            table[1].append([*row[:-1], f"{row[-1]} {match.group(0).strip()}"])
        else:
            after_table = table is not None
            flush()
            out += [segment.lstrip(" ") if after_table else segment, match.group(0)]
        last = match.end()
    after_table = table is not None
    flush()
    out.append(markdown[last:].lstrip(" ") if after_table else markdown[last:])
    return "".join(out).strip("\n")


def _tables(markdown: str, render: Callable[[list[list[str]]], str]) -> str:
    """Replace every markdown table (a `|` header row, a delimiter row, `|` body rows) by render(rows)."""
    lines = markdown.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        header = _move_markers(lines[i]).rstrip()
        below = _ROW_MARKERS.match(lines[i + 1]) if i + 1 < len(lines) else None
        delimiter = below.group(1) if below else lines[i + 1] if i + 1 < len(lines) else ""
        if _ROW.match(header) and _DELIMITER.match(delimiter):
            if below:  # markers after the delimiter row belong to the header
                header = f"{header[:-1].rstrip()} {below.group(2).strip()} |"
            rows = [_cells(header)]
            i += 2
            while i < len(lines) and _ROW.match(_move_markers(lines[i])):
                rows.append(_cells(_move_markers(lines[i])))
                i += 1
            out.append(render(rows))
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def to_mrkdwn(markdown: str, citations: list[Citation] | None = None, numbers: dict[int, int] | None = None) -> str:
    """Convert the answer's markdown to Slack mrkdwn and turn `[n]` markers into links to source n,
    shown under its number in `numbers` (by default: numbered in order of first use).

    Code, tables, links and markers are swapped for tokens while the emphasis rules run, so a `_` or
    `*` inside a URL or code span is never mistaken for formatting.
    """
    citations = citations or []
    numbers = numbering(markdown, citations) if numbers is None else numbers
    urls = {c.n: c.url for c in citations if _linkable(c.url)}
    kept: list[str] = []

    def keep(piece: str) -> str:
        kept.append(piece)
        return f"\x00{len(kept) - 1}\x00"

    def code(match: re.Match[str]) -> str:
        return keep(escape(match.group(0)))

    def labels(match: re.Match[str]) -> list[tuple[int, str]]:
        return [(n, f"[{numbers.get(n, n)}]") for n in _marker_numbers(match.group(1))]

    def marker(match: re.Match[str]) -> str:
        return "".join(keep(slack_link(urls[n], label)) if n in urls else label for n, label in labels(match))

    def table(rows: list[list[str]]) -> str:
        # Links cannot work inside a preformatted block: markers there are plain, renumbered text.
        def plain(cell: str) -> str:
            return _MARKER.sub(lambda m: "".join(label for _, label in labels(m)), cell)

        return keep("```\n" + escape(table_text([[plain(cell) for cell in row] for row in rows])) + "\n```")

    text = markdown.replace("\x00", "")
    text = _FENCE.sub(code, text)
    text = _tables(expand_table_rows(text), table)
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


def plain_text(markdown: str) -> str:
    """Retrieved markdown (a quote, a heading) as plain text on one line: no emphasis, code ticks,
    link syntax, heading marks or table pipes."""
    text = _MD_LINK.sub(lambda m: m.group(1), markdown)
    text = re.sub(r"!?\[([^\]\n]*)\]\([^)\s]*\)", "\\1", text)
    text = re.sub(r"`+([^`]*)`+", "\\1", text)
    text = re.sub(r"(\*\*|__|~~)(.+?)\1", "\\2", text, flags=re.S)
    text = re.sub(r"(?m)^\s{0,3}(#{1,6}\s+|[-*+]\s+|>\s?)", "", text)
    text = re.sub(r"(?m)^\s*\|?(\s*:?-+:?\s*\|)+\s*$", "", text)  # table delimiter rows
    text = re.sub(r"\s*\|\s*", " | ", text).strip(" |")
    return " ".join(text.split())


def plain_section(section: str, title: str = "") -> str:
    """The breadcrumb without markdown, and without a first heading that only repeats the title."""
    parts = [plain_text(part) for part in section.split(" > ")]
    parts = [part for part in parts if part]
    if parts and title and _loose(parts[0]) == _loose(title):
        parts = parts[1:]
    return " › ".join(parts)


def _loose(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def supporting_sentence(markdown: str, n: int, quote_text: str) -> str:
    """The part of the quote that the answer's text before a `[n]` repeats (extractive answers quote
    their source), so that a long quote is shown by the sentence the marker stands behind; the whole
    quote when no such part is found. Whitespace and emphasis marks are ignored when matching."""
    flat, kept = "", []
    for i, ch in enumerate(quote_text):
        if not (ch.isspace() or ch in "*_`"):
            kept.append(i)
            flat += ch
    previous_end, sentence = 0, ""
    for match in _MARKER.finditer(markdown):
        start = max(previous_end, markdown.rfind("\n", 0, match.start()) + 1)
        if markdown[start : match.start()].strip():  # "text [1][2]": both markers stand behind "text"
            sentence = markdown[start : match.start()]
        previous_end = match.end()
        if n not in _marker_numbers(match.group(1)):
            continue
        # What follows the previous marker may start with that sentence's closing punctuation.
        wanted = re.sub(r"[\s*_`]", "", plain_text(sentence)).lstrip(".,;:!?)。，；：、！？）")
        at = flat.find(wanted) if 8 <= len(wanted) < len(flat) else -1
        if at >= 0:
            return quote_text[kept[at] : kept[at + len(wanted) - 1] + 1]
    return quote_text


def source_line(c: Citation, number: int | None = None, quote_text: str | None = None) -> str:
    """`*[k]* title › section` and the quote on the next line: the supporting sentence, trimmed."""
    title = slack_link(c.url, c.title) if _linkable(c.url) else escape(c.title)
    section = plain_section(c.section, c.title)
    where = f" › {escape(section)}" if section else ""
    shown, _ = trim(plain_text(c.quote if quote_text is None else quote_text), QUOTE_CHARS)
    number = c.n if number is None else number
    return f"*[{number}]* {title}{where}" + (f"\n“{escape(shown)}”" if shown else "")


def answer_message(answer: Answer, header: str | None = None) -> dict:
    """`text` + `blocks` for chat.postMessage / chat.update / respond().

    Layout: optional header (mrkdwn, already escaped), the notice, the answer in sections with
    linked markers, then a divider and one context block per cited source, in the order the
    answer first uses them and numbered so.
    """
    markdown, trimmed = trim(answer.answer.strip() or "(no answer)", MAX_ANSWER_CHARS)
    numbers = numbering(markdown, answer.citations)
    body = to_mrkdwn(markdown, answer.citations, numbers)
    head: list[dict] = [_context(header)] if header else []
    if answer.notice:
        head.append(_context(f":information_source: {escape(answer.notice)}"))
    head += [_section(piece) for piece in split_text(body)]
    if trimmed:
        head.append(_context(TRIMMED_NOTE))

    sources = sorted({c.n: c for c in answer.citations}.values(), key=lambda c: numbers[c.n])
    tail: list[dict] = []
    if sources:
        room = MAX_BLOCKS - len(head) - 1  # the divider
        shown = sources if len(sources) <= room else sources[: room - 1]
        lines = [source_line(c, numbers[c.n], supporting_sentence(markdown, c.n, c.quote)) for c in shown]
        tail = [{"type": "divider"}] + [_context(line) for line in lines]
        if len(shown) < len(sources):
            tail.append(_context(f"…and {len(sources) - len(shown)} more sources."))
    text, _ = trim(plain_markers(body), TEXT_LIMIT)
    return {"text": text, "blocks": (head + tail)[:MAX_BLOCKS]}


# ---------------------------------------------------------------- fact sheets and comparisons


class FactSources(SourceNumbers):
    """The passages that facts cite, numbered by first use, as Slack links and context blocks."""

    def link(self, citation: dict[str, Any]) -> str:
        number = self.number(citation)
        label = f"[{number}]"
        return slack_link(citation["url"], label) if _linkable(citation["url"]) else label

    def blocks(self, room: int) -> list[dict]:
        """A divider and the numbered sources, several to a context block, in at most `room` blocks."""
        if not self.citations or room < 2:
            return []
        lines = [_fact_source_line(n, c) for n, c in enumerate(self.citations, 1)]
        per_block = CONTEXT_ELEMENTS
        chunks = [lines[i : i + per_block] for i in range(0, len(lines), per_block)]
        if len(chunks) > room - 1:
            chunks = chunks[: room - 2]
            left = len(lines) - sum(len(chunk) for chunk in chunks)
            chunks.append([f"…and {left} more sources."])
        elements = [[{"type": "mrkdwn", "text": line[:SECTION_LIMIT]} for line in chunk] for chunk in chunks]
        return [{"type": "divider"}] + [{"type": "context", "elements": chunk} for chunk in elements]


def _fact_source_line(number: int, citation: dict[str, Any]) -> str:
    title = slack_link(citation["url"], citation["title"]) if _linkable(citation["url"]) else escape(citation["title"])
    section = plain_section(citation.get("section") or "", citation["title"])
    where = f" › {escape(section)}" if section else ""
    shown, _ = trim(plain_text(citation["quote"]), QUOTE_CHARS)
    return f"*[{number}]* {title}{where}" + (f"\n“{escape(shown)}”" if shown else "")


def fact_values(facts: list[dict[str, Any]], sources: FactSources) -> str:
    """One model's values for one attribute (mrkdwn): each distinct value once, ⚠ where the sources
    disagree, with the linked markers of every passage that states it; "not stated" when none does."""
    values: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for fact in facts:
        key = (fact["value"], fact.get("qualifier") or "", fact.get("stated_for") or "")
        values.setdefault(key, []).append(fact)
    if not values:
        return "_not stated_"
    lines = []
    for (value, qualifier, stated_for), stated in values.items():
        markers: dict[int, str] = {}
        for fact in stated:
            markers.setdefault(sources.number(fact["citation"]), sources.link(fact["citation"]))
        flag = f"{CONFLICT} " if any(fact["conflict"] for fact in stated) else ""
        extra = "".join(f" ({escape(part)})" for part in (qualifier, stated_for) if part)
        lines.append(f"{flag}{escape(value)}{extra} " + "".join(markers[n] for n in sorted(markers)))
    return "\n".join(lines)


def _field(title: str, body: str) -> dict:
    text = f"*{escape(title)}*\n{body}"
    if len(text) > FIELD_LIMIT:  # cut at a line end, so no link is cut in half
        cut = text.rfind("\n", 0, FIELD_LIMIT - 2)
        text = (text[:cut] if cut > 0 else trim(text, FIELD_LIMIT - 2)[0]) + "\n…"
    return {"type": "mrkdwn", "text": text}


def _fields_sections(title: str | None, fields: list[dict]) -> list[dict]:
    sections = []
    for i in range(0, len(fields), MAX_FIELDS):
        section: dict[str, Any] = {"type": "section", "fields": fields[i : i + MAX_FIELDS]}
        if title and i == 0:
            section["text"] = {"type": "mrkdwn", "text": title}
        sections.append(section)
    return sections


def comparison_message(comparison: dict[str, Any], header: str | None = None) -> dict:
    """`text` + `blocks` for a `/v1/compare` result (Atlas.compare): one section per attribute that
    some model has a value for, with one field per model; the attributes no model has in one line;
    then the numbered sources. Unknown models are named with the closest known ones."""
    blocks: list[dict] = [_context(header)] if header else []
    blocks += [_context(f":warning: {escape(unknown['error'])}") for unknown in comparison.get("unknown", [])]
    models = comparison.get("models", [])
    sources = FactSources()
    silent = []
    for row in comparison.get("rows", []):
        cells = [row["cells"].get(model, []) for model in models]
        if not any(cells):
            silent.append(row["attribute"])
            continue
        title = f"*{escape(row['attribute'].replace('_', ' '))}*" + (f" {CONFLICT}" if row["conflict"] else "")
        fields = [_field(model, fact_values(facts, sources)) for model, facts in zip(models, cells, strict=True)]
        blocks += _fields_sections(title, fields)
    if silent and models:
        names = ", ".join(attribute.replace("_", " ") for attribute in silent)
        blocks.append(_context(f"_Not stated for any of them:_ {escape(names)}"))
    blocks = blocks[: MAX_BLOCKS - 2]  # leaves room for the divider and a source block at least
    blocks += sources.blocks(MAX_BLOCKS - len(blocks))
    text = f"Comparison of {', '.join(models)}" if models else "No such models."
    return {"text": escape(text)[:TEXT_LIMIT], "blocks": blocks[:MAX_BLOCKS]}


def facts_message(sheet: dict[str, Any], header: str | None = None) -> dict:
    """`text` + `blocks` for a fact sheet (`/v1/facts/{model}`, Atlas.facts): one field per attribute
    with its cited values, then the numbered sources."""
    blocks: list[dict] = [_context(header)] if header else []
    if "error" in sheet:
        blocks.append(_context(f":warning: {escape(sheet['error'])}"))
        return {"text": escape(sheet["error"])[:TEXT_LIMIT], "blocks": blocks}
    by_attribute: dict[str, list[dict[str, Any]]] = {}
    for fact in sheet["facts"]:
        by_attribute.setdefault(fact["attribute"], []).append(fact)
    aliases = f" (also: {', '.join(sheet['aliases'])})" if sheet.get("aliases") else ""
    title = f"*{escape(sheet['model'])}*{escape(aliases)}"
    sources = FactSources()
    fields = [
        _field(attribute.replace("_", " "), fact_values(facts, sources)) for attribute, facts in by_attribute.items()
    ]
    if fields:
        blocks += _fields_sections(title, fields)
    else:
        blocks.append(_section(f"{title}: the sources state no facts about this model."))
    blocks = blocks[: MAX_BLOCKS - 2]
    blocks += sources.blocks(MAX_BLOCKS - len(blocks))
    return {"text": escape(f"Fact sheet of {sheet['model']}")[:TEXT_LIMIT], "blocks": blocks[:MAX_BLOCKS]}
