"""Citations are checked in code, whatever wrote the answer: every [n] must name a passage
that was shown, an invalid marker is removed, and a sentence without a marker gets the
passage that supports it (or is reported as unsupported). Each citation quotes an exact span."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from ingest.tokenize import tokenize
from rag.schema import Citation, Passage
from rag.sentences import Sentence, split_sentences

MARKER_RE = re.compile(r"\[(\d+)\]")
# A sentence ends at Chinese or English end punctuation or at a line end (bullet lists).
ANSWER_SENTENCE_RE = re.compile(r"[^。！？!?\n]+?(?:[。！？!?]+|\.(?=\s|$)|(?=\n)|$)")
TRAILING_MARKERS_RE = re.compile(r"[ \t]*(\[\d+\][ \t]*)+")
INVALID_MARKER_RE = re.compile(r"\s*\[(\d+)\]")
SPACE_BEFORE_NEWLINE_RE = re.compile(r"[ \t]+\n")
# Streaming: text at the end that is not final yet (space, or a marker still being written) ...
OPEN_END_RE = re.compile(r"\s*(?:\[\d*)?\Z")
# ... and what may follow a sentence and still be part of it (markers after its end punctuation).
MAY_CONTINUE_RE = re.compile(r"[ \t]*(?:\[\d+\][ \t]*)*")
NEW_SENTENCE_RE = re.compile(r"[^。！？!?\n]")
FINISHED_RE = re.compile(r"[。！？!?.；]$")


def claims(answer: str) -> list[tuple[str, set[int]]]:
    """The answer's sentences with the markers that belong to each: inside it, or right after
    its end punctuation (". [2]" cites the sentence before, not the next one)."""
    return [(text, numbers) for text, numbers, _, _ in claim_spans(answer)]


Claim = tuple[str, set[int], int, int]  # text, markers, where it starts and ends in the answer


def claim_spans(answer: str) -> list[Claim]:
    """`claims` with their offsets. The text is answer[start:end], except that end punctuation left
    after the last sentence (behind a blank line) is added to it."""
    out, pos = scan_claims(answer)
    if pos < len(answer) and out:
        text, numbers, start, _ = out[-1]
        out[-1] = (text + answer[pos:], numbers, start, len(answer))
    return out


def scan_claims(answer: str) -> tuple[list[Claim], int]:
    """The sentences, and where the text after them starts (end punctuation only, if any)."""
    out: list[Claim] = []
    pos = 0
    while (match := ANSWER_SENTENCE_RE.search(answer, pos)) and match.end() > match.start():
        start, text, pos = pos, answer[pos : match.end()], match.end()  # keeps the line breaks before it
        tail = TRAILING_MARKERS_RE.match(answer, pos)
        if tail and tail.group(0).strip():
            text, pos = text + tail.group(0), tail.end()
        if text.strip():  # blank lines between sentences are dropped
            out.append((text, {int(n) for n in MARKER_RE.findall(text)}, start, pos))
    return out, pos


def overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a) if a else 0.0


def best_sentence(passage: Passage, claim: str) -> Sentence | None:
    """The sentence of a passage that shares most words with a claim."""
    words = set(tokenize(claim))
    scored = [(overlap(words, set(tokenize(s.text))), s) for s in split_sentences(passage)]
    scored = [x for x in scored if x[0] > 0]
    return max(scored, key=lambda x: x[0])[1] if scored else None


def drop_invalid_markers(answer: str, valid: set[int]) -> tuple[str, int]:
    """The text without markers naming no passage (and the space before them), and how many went."""
    removed = 0

    def keep(match: re.Match) -> str:
        nonlocal removed
        if int(match.group(1)) in valid:
            return match.group(0)
        removed += 1
        return ""

    return INVALID_MARKER_RE.sub(keep, answer), removed


NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*")


def alnum(text: str) -> str:
    return re.sub(r"[^a-z0-9\u4e00-\u9fff]", "", text.lower())


def grounded(sentence: str, numbers: set[int], passages: list[Passage], names: Collection[str] = ()) -> bool:
    """Every number and model name of a cited sentence occurs in a passage it cites: an LLM sentence that
    puts a figure or a name on a passage that does not hold it is not supported by that citation.
    Names are words shaped like one (GPT-3, ChatGLM) and capitalised words whose key is in `names`
    (the corpus's model names: Vicuna, Koala)."""
    from ingest.despin import despin
    from ingest.entities import entity_key, looks_like_name

    cited = [p.text for p in passages if p.n in numbers]
    if not cited:
        return True
    body = despin(MARKER_RE.sub("", sentence))
    source = despin("\n".join(cited))
    digits = source.replace(",", "")
    if any(n.replace(",", "") not in digits for n in NUMBER_RE.findall(body)):
        return False
    flat = alnum(source)
    # Upper-case acronyms (GPU, API) are words a passage may put in its own language, not names.
    named = [
        t
        for t in NAME_RE.findall(body)
        if not (t.isalpha() and t.isupper()) and (looks_like_name(t) or (t[:1].isupper() and entity_key(t) in names))
    ]
    return all(alnum(t) in flat for t in named)


def check_claim(
    sentence: str, numbers: set[int], passages: list[Passage], min_support: float, names: Collection[str] = ()
) -> tuple[str, bool]:
    """A sentence with a marker added when it has none and a passage supports it; False when none does.
    A cited sentence with a number or model name its passages lack is dropped (returned empty, False).
    Only the sentence's end changes, so text before its end punctuation is final once written."""
    if numbers:
        if grounded(sentence, numbers, passages, names):
            return sentence, True
        # Clauses ended by "；" may have been streamed already; what follows the last one goes.
        return sentence[: sentence.rfind("；") + 1], False
    if len(tokenize(sentence)) < 3:
        return sentence, True
    words = set(tokenize(sentence))
    support = max(((overlap(words, set(tokenize(p.text))), p.n) for p in passages), default=(0.0, 0))
    if support[0] < min_support:
        return sentence, False
    body = sentence.rstrip()
    end = re.search(r"[。！？!?.]+$", body)
    cut = end.start() if end else len(body)
    return f"{body[:cut]} [{support[1]}]{body[cut:]}" + sentence[len(body) :], True


def fix_markers(
    answer: str, passages: list[Passage], min_support: float = 0.3, names: Collection[str] = ()
) -> tuple[str, int, int]:
    """Remove markers naming no passage; add one to unmarked sentences a passage supports; drop cited
    sentences whose numbers or model names the cited passages lack.

    Returns the fixed text, the number of markers removed and of sentences left unsupported or dropped."""
    answer, removed = drop_invalid_markers(answer, {p.n for p in passages})
    unsupported = 0
    pieces = []
    for sentence, numbers in claims(answer):
        checked, supported = check_claim(sentence, numbers, passages, min_support, names)
        unsupported += not supported
        pieces.append(checked)
    return SPACE_BEFORE_NEWLINE_RE.sub("\n", "".join(pieces)).strip(), removed, unsupported


class MarkerStream:
    """`fix_markers` for text that arrives in pieces: `feed` each piece and send what it returns,
    then send what `finish` returns. What is returned is final: the pieces add up to what `fix_markers`
    makes of the whole text.

    A sentence is checked and returned once the text after it shows it is over: a later "[2]" after its
    full stop still belongs to it, and a line end or space might still be followed by a marker that is
    removed together with it. A Chinese clause ending in "；" is returned as soon as it is complete, since
    the check only ever changes a sentence's end."""

    def __init__(self, passages: list[Passage], min_support: float = 0.3, names: Collection[str] = ()):
        self.passages, self.min_support, self.names = passages, min_support, names
        self.valid = {p.n for p in passages}
        self.pending = ""  # text not checked yet, invalid markers already removed
        self.sent = 0  # leading characters of `pending` already returned (clauses ended by "；")
        self.space = ""  # whitespace held back: an answer neither starts nor ends with it
        self.text = ""  # everything returned so far
        self.removed = 0
        self.unsupported = 0

    def feed(self, piece: str) -> str:
        self.pending += piece
        self._drop_invalid()
        safe = OPEN_END_RE.search(self.pending).start()  # a marker may still complete (or vanish) here
        done = []
        for span in claim_spans(self.pending):
            end = span[3]
            # Over once other text follows: a new sentence starts (not just end punctuation, which
            # would be added to this one) and it is no marker after the full stop.
            starts_next = NEW_SENTENCE_RE.search(self.pending, end, safe)
            if not starts_next or MAY_CONTINUE_RE.fullmatch(self.pending, end, safe):
                break
            done.append(span)
        out = self._check(done)
        first = claim_spans(self.pending)
        if first:  # the sentence being written: its finished clauses can go
            _, _, start, end = first[0]
            clause = self.pending.rfind("；", start, min(end, OPEN_END_RE.search(self.pending).start())) + 1
            if clause > max(start, self.sent):
                self.pending, clause = self.pending[start:], clause - start  # blank lines before it go
                out += self.pending[self.sent : clause]
                self.sent = clause
        return self._emit(out)

    def finish(self) -> str:
        """The rest, once the text is complete."""
        self._drop_invalid()
        spans, rest = scan_claims(self.pending)
        if not spans and self.text:  # only end punctuation left: it belongs to the sentence before
            return self._emit(self.pending[rest:], final=True)
        return self._emit(self._check(claim_spans(self.pending)), final=True)

    def abort(self) -> str:
        """The rest when the text stops early: a sentence left unfinished is dropped."""
        spans = claim_spans(self.pending)
        if spans and not FINISHED_RE.search(MARKER_RE.sub("", spans[-1][0]).rstrip()):
            spans.pop()
        return self._emit(self._check(spans), final=True)

    def _drop_invalid(self) -> None:
        removed = 1
        while removed:  # again: taking "[9]" out of "[[9]7]" makes a "[7]", and no invalid marker may go out
            self.pending, removed = drop_invalid_markers(self.pending, self.valid)
            self.removed += removed

    def _check(self, spans: list[Claim]) -> str:
        out = []
        for text, numbers, _, _ in spans:
            checked, supported = check_claim(text, numbers, self.passages, self.min_support, self.names)
            self.unsupported += not supported
            out.append(checked[self.sent :])  # a clause of the first sentence may be out already
            self.sent = 0
        if spans:
            self.pending = self.pending[spans[-1][3] :]
        return "".join(out)

    def _emit(self, text: str, final: bool = False) -> str:
        text = SPACE_BEFORE_NEWLINE_RE.sub("\n", self.space + text)
        if not self.text:
            text = text.lstrip()
        body = text.rstrip()
        self.space = "" if final else text[len(body) :]
        self.text += body
        return body


def in_citation_order(
    answer: str, passages: Sequence[Passage], quotes: dict[int, list[Sentence]] | None = None
) -> tuple[str, list[Passage], dict[int, list[Sentence]]]:
    """The passages renumbered in the order the answer first cites them, the uncited ones after in
    their own order, with the answer's markers and the quotes renumbered to match: [1] is the first
    source the reader meets, and the contexts list what the answer stands on first."""
    cited = [n for n in dict.fromkeys(int(m) for m in MARKER_RE.findall(answer)) if any(p.n == n for p in passages)]
    order = cited + [p.n for p in passages if p.n not in cited]
    new_n = {old: i for i, old in enumerate(order, 1)}
    text = MARKER_RE.sub(lambda m: f"[{new_n.get(int(m.group(1)), m.group(1))}]", answer)
    renumbered = sorted((p.model_copy(update={"n": new_n[p.n]}) for p in passages), key=lambda p: p.n)
    return text, renumbered, {new_n[n]: spans for n, spans in (quotes or {}).items() if n in new_n}


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
