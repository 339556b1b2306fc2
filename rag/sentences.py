"""Sentence spans inside passages, with offsets, for extraction and exact quotes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.schema import Passage

SENTENCE_RE = re.compile(r"[^。！？!?；;\n]+(?:[。！？!?；;]+|(?=\n)|$)|[^\n.]+?(?:\.(?=\s)|$)")
SPLIT_RE = re.compile(r"(?<=[。！？!?；;])|(?<=\.)(?=\s)|\n")
MAX_CHARS = 400  # longest piece offered as one answer sentence
ABBREVIATION_RE = re.compile(r"\b(?:et al|e\.g|i\.e|etc|vs|cf|Fig|Eq|No)\.(?=\s)")
LABEL_MAX_CHARS = 40
LABEL_START_RE = re.compile(r"[A-Za-z0-9\u4e00-\u9fff]")
# "License: MIT" states its own fact; it is no label of the line below.
FIELD_LINE_RE = re.compile(r"^[A-Za-z][\w .-]{0,20}:\s+\S")
LABEL_END_RE = re.compile(r"[。！？!?；;，,.]$|^\s*([-*+•]|\d{1,3}[.)、])\s")
ITEM_RE = re.compile(r"([ \t]*)(?:[-*+•]|\d{1,3}[.)])[ \t]+")
TABLE_RULE_RE = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")
MARKDOWN_RE = re.compile(r"\*\*|__|`|^#+\s*|^\s*[-*+•]\s+|^\s*>+\s*", re.MULTILINE)
# A line break inside a sentence: hard-wrapped English (model cards wrap at ~100 columns), the line
# ending in no sentence mark and the next one going on in lower case ("... filtered to match the\n
# story-like style of Winograd schemas,").
SOFT_WRAP_RE = re.compile(
    r"(?<=[A-Za-z0-9,)\]’'\"-])[ \t]*(\n)(?=[ \t]*(?:>[ \t]*)?[a-z])"
    # or the line ends in a word no sentence ends in ("... and processed in\nRoller et al. (2021)")
    r"|\b(?:a|an|the|of|in|on|at|by|for|with|to|from|and|or|as|than|that|into|via)[ \t]*(\n)"
    r"(?=[ \t]*(?:>[ \t]*)?[A-Z0-9(])"
)


@dataclass
class Sentence:
    passage: Passage
    start: int  # offsets within the passage text
    end: int

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]

    @property
    def doc_start(self) -> int:
        return self.passage.start + self.start

    @property
    def doc_end(self) -> int:
        return self.passage.start + self.end

    @property
    def in_front_matter(self) -> bool:
        """Inside the YAML block a model card opens with ("---\nlicense: apache-2.0\ntags: ..."): metadata
        the fact store reads, not prose to quote."""
        if self.passage.start != 0 or not self.passage.text.startswith("---\n"):
            return False
        close = self.passage.text.find("\n---", 3)
        if close >= 0:
            return self.start < close + 4
        # Cut inside the header, or a rule opening prose: the header runs to the first blank line.
        blank = self.passage.text.find("\n\n", 3)
        return blank < 0 or self.start < blank

    @property
    def is_table_row(self) -> bool:
        return self.text.lstrip().startswith("|") or self.text.count("|") >= 2

    @property
    def table_header(self) -> str:
        """The header row this table row belongs to: the passage's context, or the first row of
        the table inside the passage (the one followed by a |---| rule)."""
        if self.passage.context:
            return self.passage.context
        lines = self.passage.text[: self.start].split("\n")
        for i in range(len(lines) - 1, 0, -1):
            if TABLE_RULE_RE.match(lines[i]) and lines[i - 1].count("|") >= 2:
                return lines[i - 1].strip()
        return ""

    @property
    def label(self) -> str:
        """The bare line right above this sentence's line ("ziya" above "IDEA研究院在7B/13B llama上
        连续预训练..."): in a list of name / description lines whose table lost its cells, it says what
        the sentence is about. Empty when the line above is prose, a list item or a table row."""
        span = self.label_span
        return self.passage.text[span[0] : span[1]] if span else ""

    @property
    def label_span(self) -> tuple[int, int] | None:
        text = self.passage.text
        line_start = text.rfind("\n", 0, self.start) + 1
        end = len(text[:line_start].rstrip())
        start = text.rfind("\n", 0, end) + 1
        above = text[start:end]
        start += len(above) - len(above.lstrip())
        above = above.strip()
        if (
            not above
            or len(above) > LABEL_MAX_CHARS
            or above.count("|") >= 2
            or LABEL_END_RE.search(above)
            or FIELD_LINE_RE.match(above)
            or not LABEL_START_RE.match(above)  # ", BELLE-7B-2M" continues a line; it names nothing
            or len(above.split()) > 3
        ):
            return None
        return start, end

    @property
    def parent_item(self) -> str:
        """The list item a nested item hangs under ("- OpenChat-8192: based on ..." above
        "   - 79.5% Win-rate on AlpacaEval"): it says what the nested item is about. Empty for other lines."""
        text = self.passage.text
        line_start = text.rfind("\n", 0, self.start) + 1
        match = ITEM_RE.match(text, line_start)
        if not match or not match.group(1):
            return ""
        indent = len(match.group(1).expandtabs(4))
        end = line_start - 1
        while end > 0:
            start = text.rfind("\n", 0, end) + 1
            line = text[start:end]
            above = ITEM_RE.match(line)
            if not line.strip() or not above:
                return ""  # the list ended: no parent inside the passage
            if len(above.group(1).expandtabs(4)) < indent:
                return line[above.end() :].strip()
            end = start - 1
        return ""

    @property
    def is_table_header(self) -> bool:
        rest = self.passage.text[self.end :].lstrip("\n").split("\n", 1)[0]
        return self.is_table_row and bool(TABLE_RULE_RE.match(rest)) and "-" in rest


def cells_of(row: str) -> list[str]:
    """A markdown table row's cells, stripped: "| a | b |" -> ["a", "b"]."""
    return [c.strip() for c in row.strip().strip("|").split("|")]


def split_sentences(passage: Passage, min_chars: int = 6) -> list[Sentence]:
    text = passage.text
    # Table rows stay whole; other lines are cut at sentence ends.
    rows = [m.span() for m in re.finditer(r"[^\n]+", text) if m.group(0).count("|") >= 2]
    wraps = {m.start(1) if m.group(1) else m.start(2) for m in SOFT_WRAP_RE.finditer(text)}  # their newlines
    # "et al. (2020)", "e.g. the": a full stop that ends an abbreviation ends no sentence.
    wraps |= {m.end() for m in ABBREVIATION_RE.finditer(text)}
    cuts = sorted(
        {
            0,
            len(text),
            *(
                m.start()
                for m in SPLIT_RE.finditer(text)
                if m.start() not in wraps and not any(a < m.start() < b for a, b in rows)
            ),
        }
    )
    out = []
    for a, b in zip(cuts, cuts[1:]):
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        a2, b2 = a + lead, b - trail
        if b2 - a2 >= min_chars and not re.fullmatch(r"[|\s:-]+", text[a2:b2]):
            out.extend(Sentence(passage, x, y) for x, y in windows(text, a2, b2))
    return out


def windows(text: str, start: int, end: int, limit: int = MAX_CHARS) -> list[tuple[int, int]]:
    """An over-long run without sentence ends, cut at commas or spaces into pieces of at most `limit`."""
    if end - start <= limit or text[start:end].count("|") >= 2:
        return [(start, end)]
    out = []
    while end - start > limit:
        cut = max(text.rfind(c, start + limit // 2, start + limit) for c in ",，、 ")
        cut = cut + 1 if cut > start else start + limit
        out.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        out.append((start, end))
    return out


def readable(text: str) -> str:
    """A sentence as shown in an answer: markdown marks removed, spun numerals undone."""
    from ingest.despin import despin

    return re.sub(r"\s+", " ", MARKDOWN_RE.sub("", despin(text))).strip()
