"""Table lookups: a question that names a table's rows ("Task-tuned LLaMA 33B (LoRA)", "ChatGPT") and
one of its columns ("average score") is answered by those cells, not by the whole table.

A table is read from the evidence's table rows (each row is a sentence with its header); a row is
asked when the question writes its label (a footnote mark after a model name, "ChatGLM-6B0", aside),
a column when its header holds one of the question's concepts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.entities import looks_like_name
from ingest.tokenize import TermSet, term_set
from rag.query import concept_share
from rag.sentences import Sentence, cells_of, readable

if TYPE_CHECKING:
    from rag.evidence import Scored
    from rag.query import Query

FOOTNOTE_RE = re.compile(r"[0-9*†‡]")
MIN_LABEL_CHARS = 3
SIZE_RE = re.compile(r"\d+(?:\.\d+)?\s?[KMBT]", re.IGNORECASE)


@dataclass
class CellRow:
    """One asked row of a table: its label and the asked columns' (header, value) pairs."""

    sentence: Sentence  # the whole row, cited
    label: str
    cells: list[tuple[str, str]]
    entities: set[str] = field(default_factory=set)  # the models the row names


def norm(text: str) -> str:
    return re.sub(r"\s+", "", readable(text)).casefold()


def row_mentions(label: str, question: str, names: Sequence[str]) -> list[tuple[int, int]]:
    """Where the question writes the row's label: the label itself, or a named model whose label has
    a footnote mark after it ("ChatGLM-6B0")."""
    key = norm(label)
    if len(key) < MIN_LABEL_CHARS:
        return []
    spans = [(m.start(), m.end()) for m in re.finditer(re.escape(key), question)]
    plain = readable(label)
    for name in names:
        # The mark is glued to the name ("ChatGLM-6B0"); "Llama 2" is another model than "LLaMA".
        if plain[: len(name)].casefold() == name.casefold() and FOOTNOTE_RE.fullmatch(plain[len(name) :]):
            written = norm(name)
            spans += [(m.start(), m.end()) for m in re.finditer(re.escape(written), question)]
    return spans


def abbreviates(short: str, word: str) -> bool:
    """A header's short form of a word: "Avg" for average, "Acc" for accuracy (its first letter, then
    the rest of its letters in order)."""
    if not (3 <= len(short) <= 4 and short.isalpha() and len(word) > len(short) and short[0] == word[0]):
        return False
    rest = iter(word[1:])
    return all(c in rest for c in short[1:])


def asked_columns(header: Sequence[str], query: Query) -> list[int]:
    """The header cells (not the label column) that hold one of the question's concepts, in full or
    abbreviated."""
    columns = []
    for i, cell in enumerate(header):
        if i == 0 or not cell:
            continue
        words = term_set(readable(cell))
        short = [w.casefold() for w in re.findall(r"[A-Za-z]+", cell)]
        for options, _ in query.concepts:
            if words.any_of(set(options)) or any(abbreviates(w, o) for w in short for o in options):
                columns.append(i)
                break
    return columns


def table_lookup(query: Query, sentences: Sequence[Scored]) -> list[CellRow]:
    """The asked rows of the table that answers most of them, in the order the question names them;
    empty unless some row and some column are asked."""
    question = norm(query.question)
    names = list(query.model_names.values())
    tables: dict[tuple[str, str], list[tuple[int, CellRow]]] = {}
    columns_of: dict[str, list[int]] = {}  # a table's rows share its header
    for item in sentences:
        sentence = item.sentence
        if not sentence.is_table_row or not sentence.table_header:
            continue
        header, cells = cells_of(sentence.table_header), cells_of(sentence.text)
        if len(header) != len(cells) or not cells[0]:
            continue
        label = readable(cells[0])
        # A row label says which row only when it is a name ("LLaMA 33B", "ChatGPT"), not a word ("Average").
        if not (query.families & item.entities or any(looks_like_name(w) for w in label.split())):
            continue
        mentions = row_mentions(label, question, names)
        # "Cerebras-GPT | 13B | ...": a size beside a family's name says which row "Cerebras-GPT 13B" is.
        size_column = next((i for i, cell in enumerate(cells[1:], 1) if SIZE_RE.fullmatch(readable(cell))), None)
        if size_column is not None and (
            sized := row_mentions(f"{label} {readable(cells[size_column])}", question, names)
        ):
            label, mentions = f"{label} {readable(cells[size_column])}", sized
        if sentence.table_header not in columns_of:
            columns_of[sentence.table_header] = asked_columns(header, query)
        columns = [i for i in columns_of[sentence.table_header] if i != size_column]
        values = [(readable(header[i]), readable(cells[i])) for i in columns if cells[i] and cells[i] != "-"]
        if not mentions or not values:
            continue
        row = CellRow(sentence, label, values, item.entities)
        tables.setdefault((sentence.passage.doc_id, norm(sentence.table_header)), []).append((min(mentions)[0], row))
    # The table answering most asked rows; of those, the one whose heading says most of the question
    # ("Results on MMLU" for "the MMLU results table").
    best: tuple[int, float, list[tuple[int, CellRow]]] = (0, 0.0, [])
    for rows in tables.values():
        rows = distinct_rows(rows, question)
        if not rows:
            continue
        passage = rows[0][1].sentence.passage
        heading = TermSet(f"{passage.title}\n{passage.section_path}\n{rows[0][1].sentence.table_header}")
        candidate = (len(rows), concept_share(heading, query.concepts), rows)
        if candidate[:2] > best[:2]:
            best = candidate
    return [row for _, row in sorted(best[2], key=lambda r: r[0])]


def distinct_rows(rows: list[tuple[int, CellRow]], question: str) -> list[tuple[int, CellRow]]:
    """One row per label, none whose label names several rows, and no row whose label the question
    writes only inside a longer asked label ("LLaMA 33B" inside "Task-tuned LLaMA 33B (LoRA)")."""
    by_label: dict[str, tuple[int, CellRow]] = {}
    rows_of: dict[str, set[str]] = {}
    for at, row in rows:
        by_label.setdefault(norm(row.label), (at, row))
        rows_of.setdefault(norm(row.label), set()).add(row.sentence.text)
    # A label on several rows ("Cerebras-GPT" beside each size) does not say which row is asked.
    by_label = {label: entry for label, entry in by_label.items() if len(rows_of[label]) == 1}
    longer = [(at, at + len(label)) for label, (at, _) in by_label.items()]
    kept = []
    for label, (at, row) in by_label.items():
        spans = [(m.start(), m.end()) for m in re.finditer(re.escape(label), question)] or [(at, at + len(label))]
        inside = all(any(a <= s and e <= b and (b - a) > (e - s) for a, b in longer) for s, e in spans)
        if not inside:
            kept.append((at, row))
    return kept
