"""Citations are checked in code, whatever wrote the answer: every [n] must name a passage
that was shown, an invalid marker is removed, and a sentence without a marker gets the
passage that supports it (or is reported as unsupported). Each citation quotes an exact span."""

from __future__ import annotations

import re

from ingest.tokenize import tokenize
from rag.schema import Citation, Passage
from rag.sentences import Sentence, split_sentences

MARKER_RE = re.compile(r"\[(\d{1,3})\]")
ANSWER_SENTENCE_RE = re.compile(r"[^。！？!?\n]+?(?:[。！？!?]+|\.(?=\s|$)|$)")


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

    answer = re.sub(r"\s*\[(\d{1,3})\]", lambda m: m.group(0) if int(m.group(1)) in valid else keep(m), answer)
    unsupported = 0
    pieces = []
    last = 0
    for match in ANSWER_SENTENCE_RE.finditer(answer):
        sentence = match.group(0)
        pieces.append(answer[last : match.start()])
        last = match.end()
        # A marker right after the sentence (". [2]") belongs to it.
        tail = re.match(r"\s*(\[\d+\]\s*)+", answer[match.end() :])
        if MARKER_RE.search(sentence) or tail or len(tokenize(sentence)) < 3:
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
    pieces.append(answer[last:])
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
            claims = [s for s in ANSWER_SENTENCE_RE.findall(answer) if f"[{n}]" in s]
            found = best_sentence(passage, " ".join(claims))
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
