"""Split a cleaned document into chunks along its structure, keeping exact character offsets.

Units are headings, paragraphs, list items and table rows. Consecutive units of one section
are packed up to a target size; an over-long unit is split at Chinese or English sentence
ends. A table chunk carries the table's header row as context so every row still says
which column is which.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ingest.schema import Chunk, Document

MD_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LIST_RE = re.compile(r"^\s*([-*+•]|\d{1,3}[.)、]|[（(]\d{1,3}[)）])\s+")
# Rows with edge pipes ("| a | b |") or without them ("a|b|c", under a |---| rule).
TABLE_RE = re.compile(r"^\s*\|.*\|\s*$|^[^|\n]+(\|[^|\n]*){2,}$")
TABLE_RULE_RE = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")
SENTENCE_END_RE = re.compile(r"(?<=[。！？!?；;])|(?<=[.])(?=\s+[A-Z\u4e00-\u9fff(\[])")
CJK_RE = re.compile(r"[\u4e00-\u9fff]")
LATIN_RE = re.compile(r"[A-Za-z]")
TERMINAL_PUNCT = tuple("。！？!?；;，,、.")
NUMBERED_RE = re.compile(r"^\s*(\d+[、.)]|[一二三四五六七八九十]+、)")


def detect_language(text: str) -> str:
    """'zh' when Chinese characters make up a real share of the letters, else 'en'."""
    cjk = len(CJK_RE.findall(text))
    latin = len(LATIN_RE.findall(text))
    return "zh" if cjk and cjk * 3 >= latin else "en"


@dataclass
class Unit:
    start: int
    end: int
    kind: str  # heading | paragraph | item | row | header | title (a guessed heading's own line)
    level: int = 0
    title: str = ""
    guessed: bool = False  # a plain-text heading, told only by standing alone: its line is text too


def is_plain_heading(line: str, prev_blank: bool, next_blank: bool) -> bool:
    """Scraped text has no heading markup: a short, unpunctuated line standing alone is one."""
    text = line.strip()
    if not text or len(text) > 50 or "http" in text or text.endswith(TERMINAL_PUNCT):
        return False
    if LIST_RE.match(line) or TABLE_RE.match(line):
        return False
    return prev_blank and next_blank


def iter_lines(text: str) -> Iterator[tuple[int, int, str]]:
    pos = 0
    for line in text.split("\n"):
        yield pos, pos + len(line), line
        pos += len(line) + 1


def parse_units(text: str, markdown: bool) -> list[Unit]:
    lines = list(iter_lines(text))
    units: list[Unit] = []
    paragraph: list[tuple[int, int]] = []

    def flush() -> None:
        if paragraph:
            units.append(Unit(paragraph[0][0], paragraph[-1][1], "paragraph"))
            paragraph.clear()

    in_table = False
    for idx, (start, _end, line) in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            flush()
            in_table = False
            continue
        lead = len(line) - len(line.lstrip())
        start_t, end_t = start + lead, start + len(line.rstrip())
        heading = MD_HEADING_RE.match(line)
        if heading:
            flush()
            units.append(Unit(start_t, end_t, "heading", len(heading.group(1)), heading.group(2).strip()))
            continue
        if TABLE_RE.match(line):
            flush()
            if TABLE_RULE_RE.match(line):
                in_table = True
                continue
            nxt = lines[idx + 1][2] if idx + 1 < len(lines) else ""
            is_header = not in_table and bool(TABLE_RULE_RE.match(nxt)) and "|" in nxt
            units.append(Unit(start_t, end_t, "header" if is_header else "row"))
            in_table = True
            continue
        if LIST_RE.match(line):
            flush()
            units.append(Unit(start_t, end_t, "item"))
            continue
        if not markdown:
            prev_blank = idx == 0 or not lines[idx - 1][2].strip()
            next_blank = idx + 1 >= len(lines) or not lines[idx + 1][2].strip()
            if is_plain_heading(line, prev_blank, next_blank):
                flush()
                level = 3 if NUMBERED_RE.match(line) else 2
                units.append(Unit(start_t, end_t, "heading", level, stripped, guessed=True))
                continue
            # In scraped text every line is its own paragraph.
            flush()
            units.append(Unit(start_t, end_t, "paragraph"))
            continue
        paragraph.append((start_t, end_t))
    flush()
    return pair_guessed_headings(units)


def pair_guessed_headings(units: list[Unit]) -> list[Unit]:
    """In scraped text a name line and its one-line description both stand alone ("ziya" / "IDEA 在
    13B llama 上继续预训练"), so a run of guessed headings is mostly (heading, body) pairs: the last one
    of a run followed by a body heads that body, the rest pair up from the end, and a line left over
    at the front heads them all. Numbered lines ("1、概述") are headings by their number."""
    out = list(units)
    i = 0
    while i < len(out):
        if not (out[i].kind == "heading" and out[i].guessed and not NUMBERED_RE.match(out[i].title)):
            i += 1
            continue
        j = i
        while j < len(out) and out[j].kind == "heading" and out[j].guessed and not NUMBERED_RE.match(out[j].title):
            j += 1
        has_body = j < len(out) and out[j].kind != "heading"
        last = j - 1 if has_body else j  # the lines before `last` pair up
        for k in range(last - 1, i, -2):
            out[k] = Unit(out[k].start, out[k].end, "paragraph")
        i = j
    return out


def split_long(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Split the span at sentence ends into pieces of at most about `limit` characters."""
    if end - start <= limit:
        return [(start, end)]
    cuts = [start] + [start + m.start() for m in SENTENCE_END_RE.finditer(text[start:end]) if m.start()] + [end]
    pieces: list[tuple[int, int]] = []
    piece_start = start
    for a, b in zip(cuts, cuts[1:]):
        if b - piece_start > limit and a > piece_start:
            pieces.append((piece_start, a))
            piece_start = a
        while b - piece_start > limit * 2:  # one endless sentence: cut hard
            pieces.append((piece_start, piece_start + limit))
            piece_start += limit
    pieces.append((piece_start, end))
    return [(a + (len(text[a:b]) - len(text[a:b].lstrip())), b) for a, b in pieces if text[a:b].strip()]


def chunk_document(doc: Document, chunk_chars: int = 600, markdown: bool = True) -> list[Chunk]:
    text = doc.text
    units = parse_units(text, markdown)
    chunks: list[Chunk] = []
    headings: list[tuple[int, str]] = []
    table_header = ""
    header_at = -1
    group: list[Unit] = []

    def emit(spans: list[tuple[int, int]], context: str = "", context_at: int = -1) -> None:
        for a, b in spans:
            span = text[a:b]
            span_context = "" if a <= context_at < b else context
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}#{len(chunks)}",
                    doc_id=doc.doc_id,
                    title=doc.title,
                    url=doc.url,
                    section=[h for _, h in headings],
                    language=detect_language(span) if len(span) > 20 else doc.language,
                    start=a,
                    end=b,
                    text=span,
                    context=span_context,
                )
            )

    def flush() -> None:
        if not group:
            return
        kind = group[0].kind
        start, end = group[0].start, group[-1].end
        context = table_header if kind == "row" and table_header else ""
        emit(split_long(text, start, end, chunk_chars), context, header_at)
        group.clear()

    for unit in units:
        if unit.kind == "heading":
            # A guessed heading may be content (a model's name in a list of names and descriptions), so
            # its line opens its section's text; guessed headings with no body between share a chunk.
            if not (unit.guessed and group and all(u.kind == "title" for u in group)):
                flush()
            headings = [(lvl, h) for lvl, h in headings if lvl < unit.level] + [(unit.level, unit.title)]
            header_at = -1
            table_header = ""
            if not unit.guessed:
                continue
            unit = Unit(unit.start, unit.end, "title")
        if unit.kind == "header":
            flush()
            table_header = text[unit.start : unit.end]
            header_at = unit.start
            group.append(Unit(unit.start, unit.end, "row"))
            continue
        size = (group[-1].end - group[0].start) if group else 0
        same_kind = not group or (group[0].kind == "row") == (unit.kind == "row")
        if group and (not same_kind or size + (unit.end - unit.start) > chunk_chars):
            flush()
        if unit.kind != "row":
            table_header = table_header if group and group[0].kind == "row" else ""
        group.append(unit)
    flush()
    return chunks
