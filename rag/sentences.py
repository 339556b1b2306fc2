"""Sentence spans inside passages, with offsets, for extraction and exact quotes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.schema import Passage

SENTENCE_RE = re.compile(r"[^。！？!?；;\n]+(?:[。！？!?；;]+|(?=\n)|$)|[^\n.]+?(?:\.(?=\s)|$)")
SPLIT_RE = re.compile(r"(?<=[。！？!?；;])|(?<=\.)(?=\s)|\n")
MARKDOWN_RE = re.compile(r"\*\*|__|`|^#+\s*|^\s*[-*+•]\s+|^\s*>+\s*", re.MULTILINE)


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
    def is_table_row(self) -> bool:
        return self.text.lstrip().startswith("|")


def split_sentences(passage: Passage, min_chars: int = 6) -> list[Sentence]:
    text = passage.text
    cuts = sorted({0, len(text), *(m.start() for m in SPLIT_RE.finditer(text))})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        a2, b2 = a + lead, b - trail
        if b2 - a2 >= min_chars and not re.fullmatch(r"[|\s:-]+", text[a2:b2]):
            out.append(Sentence(passage, a2, b2))
    return out


def readable(text: str) -> str:
    """A sentence as shown in an answer: markdown marks removed, spun numerals undone."""
    from ingest.clean import despin

    return re.sub(r"\s+", " ", MARKDOWN_RE.sub("", despin(text))).strip()
