"""Citations are checked in code, whatever wrote the answer: every [n] must name a passage
that was shown, an invalid marker is removed, and a sentence without a marker gets the
passage that supports it (or is reported as unsupported). Each citation quotes an exact span."""

from __future__ import annotations

import re

from ingest.tokenize import tokenize
from rag.schema import Citation, Passage
from rag.sentences import Sentence, split_sentences

MARKER_RE = re.compile(r"\[(\d+)\]")
# A sentence ends at Chinese or English end punctuation or at a line end (bullet lists).
ANSWER_SENTENCE_RE = re.compile(r"[^。！？!?\n]+?(?:[。！？!?]+|\.(?=\s|$)|(?=\n)|$)")
TRAILING_MARKERS_RE = re.compile(r"[ \t]*(\[\d+\][ \t]*)+")


def claims(answer: str) -> list[tuple[str, set[int]]]:
    """The answer's sentences with the markers that belong to each: inside it, or right after
    its end punctuation (". [2]" cites the sentence before, not the next one)."""
    out: list[tuple[str, set[int]]] = []
    pos = 0
    while (match := ANSWER_SENTENCE_RE.search(answer, pos)) and match.end() > match.start():
        text, pos = answer[pos : match.end()], match.end()  # keeps the line breaks before it
        tail = TRAILING_MARKERS_RE.match(answer, pos)
        if tail and tail.group(0).strip():
            text, pos = text + tail.group(0), tail.end()
        if text.strip():
            out.append((text, {int(n) for n in MARKER_RE.findall(text)}))
    if pos < len(answer) and out:
        out[-1] = (out[-1][0] + answer[pos:], out[-1][1])
    return out


def overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a) if a else 0.0


def best_sentence(passage: Passage, claim: str) -> Sentence | None:
    """The sentence of a passage that shares most words with a claim."""
    words = set(tokenize(claim))
    scored = [(overlap(words, set(tokenize(s.text))), s) for s in split_sentences(passage)]
    scored = [x for x in scored if x[0] > 0]
    return max(scored, key=lambda x: x[0])[1] if scored else None


def fix_markers(answer: str, passages: list[Passage], min_support: float = 0.3) -> tuple[str, int, int]:
    """Remove markers naming no passage; add one to unmarked sentences a passage supports.

    Returns the fixed text, the number of markers removed and of sentences left unsupported."""
    valid = {p.n for p in passages}
    removed = 0

    def keep(match: re.Match) -> str:
        nonlocal removed
        if int(match.group(1)) in valid:
            return match.group(0)
        removed += 1
        return ""

    answer = re.sub(r"\s*\[(\d+)\]", keep, answer)
    unsupported = 0
    pieces = []
    for sentence, numbers in claims(answer):
        if numbers or len(tokenize(sentence)) < 3:
            pieces.append(sentence)
            continue
        words = set(tokenize(sentence))
        support = max(((overlap(words, set(tokenize(p.text))), p.n) for p in passages), default=(0.0, 0))
        if support[0] >= min_support:
            body = sentence.rstrip()
            end = re.search(r"[。！？!?.]+$", body)
            cut = end.start() if end else len(body)
            pieces.append(f"{body[:cut]} [{support[1]}]{body[cut:]}" + sentence[len(body) :])
        else:
            unsupported += 1
            pieces.append(sentence)
    return re.sub(r"[ \t]+\n", "\n", "".join(pieces)).strip(), removed, unsupported


def build_citations(
    answer: str, passages: list[Passage], quotes: dict[int, list[Sentence]] | None = None
) -> list[Citation]:
    """One citation per passage the answer marks, quoting the exact supporting span."""
    by_n = {p.n: p for p in passages}
    cited = []
    for n in dict.fromkeys(int(m) for m in MARKER_RE.findall(answer)):
        passage = by_n.get(n)
        if passage is None:
            continue
        spans = (quotes or {}).get(n)
        if not spans:
            supported = [text for text, numbers in claims(answer) if n in numbers]
            found = best_sentence(passage, MARKER_RE.sub("", " ".join(supported)))
            spans = [found] if found else []
        if spans:
            start, end = min(s.doc_start for s in spans), max(s.doc_end for s in spans)
            quote = passage.text[start - passage.start : end - passage.start]
        else:
            start, end, quote = passage.start, passage.end, passage.text
        cited.append(
            Citation(
                n=n,
                title=passage.title,
                url=passage.url,
                section=passage.section_path,
                quote=quote,
                doc_id=passage.doc_id,
                start=start,
                end=end,
            )
        )
    return sorted(cited, key=lambda c: c.n)
