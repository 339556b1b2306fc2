"""Evidence for one analysed question: the fact-store values it asks for, the passages that hold
them, and every candidate sentence of the retrieved passages scored by the fitted sentence model.
Also the features the fitted answerability model judges, so that an answer is given only when
some passage or fact answers what was asked about the model named."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from ingest.chunk import TABLE_RE, detect_language
from ingest.entities import family_key
from ingest.tokenize import CJK_RE, TermSet, is_stop_word, term_set, tokenize
from rag.query import Counted, Query, concept_share, named_attributes
from rag.schema import Passage
from rag.sentences import LABEL_MAX_CHARS, Sentence, readable, split_sentences
from rag.tables import CellRow, table_lookup
from rag.weights import Weights

if TYPE_CHECKING:
    from ingest.entities import Gazetteer
    from ingest.fact_store import Fact, FactStore
    from ingest.index import Index
    from rag.retrieve import CachedEncoder, HybridSearcher, Retrieval

# A figure: digits, a Chinese count ("两周", "八个", "三千万"), or an English number word ("eight
# question categories"); 一 alone is the article "a" far more often than a count.
NUMBER_RE = re.compile(
    r"\d|[一二三四五六七八九十百千万亿]+[万亿]|[两二三四五六七八九十百千]+[个种类位名条块张台天周年层次倍]"
    r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundreds?"
    r"|thousands?|millions?|billions?|trillions?|dozens?)\b",
    re.IGNORECASE,
)
MAX_SENTENCE_CHARS = 400
JUNK_RE = re.compile(
    r"https?://|\]\(|[{}]|^\s*[-*]?\s*(Use|Run|Install|pip|conda|git|cd|python)\b|\w+\s*=\s*\S", re.IGNORECASE
)
# Example outputs printed in a README ("User: ... / Assistant: ..."), prompts and transcripts
# are not statements of the source about a model.
EXAMPLE_RE = re.compile(r"^\s*(user|assistant|human|bot|input|output|response|instruction|问|答|用户)\s*[:：]", re.I)
MAX_FACT_PASSAGES = 2  # per asked (model, attribute)
# Sentences that point elsewhere instead of saying something: "See more details in the appendix",
# "For more information, refer to ...", "详见论文". An answer quotes what a source says, not where to look.
NAVIGATION_RE = re.compile(
    r"^\W*(see (more |the )?(details|section|appendix|paper|our|the)|for (more|further) (details|information)"
    r"|(please )?(refer to|check out|click)|more (details|information) (can be found|are available|is available))\b"
    r"|^\W*(see|details in)\s+\S+\W*$"  # "See vicuna_weights_version.md", "Details in BELLE/models"
    r"|详见|参见|请参考|请参阅|更多(细节|详情|信息)请",
    re.IGNORECASE,
)


def symbol_ratio(text: str) -> float:
    symbols = sum(1 for c in text if not (c.isalnum() or c.isspace() or "\u4e00" <= c <= "\u9fff"))
    return symbols / max(1, len(text))


@dataclass(eq=False)  # compared by identity
class Scored:
    sentence: Sentence
    score: float  # the sentence model's logit
    entities: set[str]
    parts: list[float]  # how well it covers each sub-question
    coverage: float  # share of the question's concepts it holds
    dense: float
    language: str
    in_scope: bool
    subject: str = ""  # the label line naming the model this sentence is about, when the sentence does not


@dataclass
class FactHit:
    model: str  # gazetteer key named in the question
    attribute: str
    facts: list[Fact]
    has_sheet: bool = True  # False: a compared model no fact is about, given its row all the same


@dataclass
class Evidence:
    query: Query
    passages: list[Passage]  # numbered 1..n: fact-bearing chunks first, then the retrieved ones
    sentences: list[Scored]  # best first
    facts: list[FactHit] = field(default_factory=list)  # one per (model, attribute) asked, maybe empty
    cells: list[CellRow] = field(default_factory=list)  # the table cells the question asks for
    roster: list[Scored] = field(default_factory=list)  # a list question's items, led in bold in a section
    fact_passage: dict[tuple[str, int, int], int] = field(default_factory=dict)  # fact span -> passage n
    features: dict[str, float] = field(default_factory=dict)

    def passage_of(self, fact: Fact) -> int | None:
        return self.fact_passage.get((fact.doc_id, fact.start, fact.end))


def sentence_features(
    query: Query, sentence: Sentence, text: str, similarity: float, named: set[str], fact_values: Sequence[str]
) -> tuple[dict[str, float], TermSet]:
    tokens = term_set(text)
    wanted = query.families
    rarest = query.by_rarity[:3]
    in_scope = bool(wanted & set(sentence.passage.entities))
    entity = len(wanted & named) / len(wanted) if wanted else 0.0
    return {
        "dense": similarity,
        "lexical": concept_share(tokens, query.concepts),
        # The question's rarest words say most about what it asks ("Gaokao" more than "average").
        "rarest": float(bool(rarest) and tokens.any_of(set(rarest[0][0]))),
        "rare_three": sum(1 for options, _ in rarest if tokens.any_of(set(options))) / len(rarest) if rarest else 0.0,
        "entity": entity,
        "in_scope": float(in_scope),
        "other_model": float(bool(wanted) and not in_scope and not entity and bool(named)),
        # A row or sentence about another model inside the asked model's own page: "| BLOOMZ-7B | 28.72 |"
        # in Baichuan-7B's results table.
        "names_others": float(bool(wanted) and not entity and bool(named - wanted)),
        "number": float(query.numeric and bool(NUMBER_RE.search(text))),
        "question": float(text.rstrip().endswith(("?", "？"))),
        "junk": float(
            bool(JUNK_RE.search(text) or EXAMPLE_RE.search(text))
            or (symbol_ratio(text) > 0.15 and not sentence.is_table_row)
        ),
        "short": float(len(text) < 15),
        "rank": float(sentence.passage.n - 1),
        "same_language": float(detect_language(text) == query.question_lang),
        "table_row": float(sentence.is_table_row),
        "fact": float(any(v and v in sentence.text for v in fact_values)),
        "words": saying(text),
        "defines": float(not query.concepts and bool(entity) and bool(DEFINITION_RE.search(text))),
    }, tokens


def subject_of(sentence: Sentence, text: str, gazetteer: Gazetteer) -> tuple[set[str], str]:
    """The models a sentence names (with their families), with those of the bare label line above it;
    and that label, when it names a model the sentence does not."""
    named = {k for key in gazetteer.find(text) for k in (key, family_key(key))}
    label = sentence.label
    if not label and (parent := sentence.parent_item):
        label = parent.split(":", 1)[0] if ":" in parent[:LABEL_MAX_CHARS] else ""
    subjects = {k for key in gazetteer.find(label) for k in (key, family_key(key))} if label else set()
    if not subjects or subjects <= named:
        return named, ""
    return named | subjects, readable(label).rstrip(":：")


NAME_WORD_RE = re.compile(r"[A-Za-z0-9]*[A-Z0-9][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)+|[A-Za-z]+[0-9][A-Za-z0-9]*")
WORD_RE = re.compile(r"[A-Za-z]{2,}")
# A sentence that says what something is: "Koala is a dialogue model", "BELLE是一个...", "BELLE(一款...)".
DEFINITION_RE = re.compile(
    r"^\W*(?:\S+\s){0,4}?\S*\s(?:is|are|was)\s(?:an?|the|one)\b|^[^。，,]{0,30}?(?:是|为)又?(?:一个|一款|一种|一系列)"
    r"|^[^。，,(（]{1,30}[(（](?:一个|一款|一种)",
    re.IGNORECASE,
)


def saying(text: str) -> float:
    """How much a sentence says, from 0 to 1: its words besides names and figures, a Chinese
    character a half. A list of checkpoint names (", BELLE-LLaMA-7B-2M-enc") says nothing."""
    plain = NAME_WORD_RE.sub(" ", text)
    words = len(WORD_RE.findall(plain)) + 0.5 * len(CJK_RE.findall(plain))
    return min(words, 12.0) / 12.0


def candidate_sentences(passages: Sequence[Passage]) -> list[Sentence]:
    return [
        s
        for p in passages
        for s in split_sentences(p)
        if (len(s.text) <= MAX_SENTENCE_CHARS or s.is_table_row) and not s.is_table_header
    ]


def score_sentences(
    query: Query,
    passages: Sequence[Passage],
    encoder: CachedEncoder,
    searcher: HybridSearcher,
    weights: Weights,
    fact_values: Sequence[str] = (),
    keep_features: bool = False,
) -> list[Scored]:
    plain = [(s, readable(s.text)) for s in candidate_sentences(passages)]
    plain = [(s, text) for s, text in plain if not NAVIGATION_RE.search(text)]
    if not plain:
        return []
    sentences = [s for s, _ in plain]
    names = [subject_of(s, text, searcher.gazetteer) for s, text in plain]
    # A table row is judged with its header, so "GPT-4 | 1.76T" still says what 1.76T is; a line under a
    # bare name ("ziya" / "IDEA研究院在7B/13B llama上...") with that name.
    texts = [
        readable(s.table_header + "\n" + s.text) if s.is_table_row else f"{subject}\n{text}" if subject else text
        for (s, text), (_, subject) in zip(plain, names)
    ]
    vectors = encoder.encode([query.search_text] + texts)
    dense = vectors[1:] @ vectors[0]
    scored = []
    for sentence, text, sim, (named, subject) in zip(sentences, texts, dense, names):
        features, tokens = sentence_features(query, sentence, text, float(sim), named, fact_values)
        parts = [concept_share(tokens, groups) for groups in query.part_concepts]
        features["all_parts"] = min(parts, default=features["lexical"])  # speaks to every sub-question
        item = Scored(
            sentence,
            weights.sentence.logit(features),
            named,
            parts,
            features["lexical"],
            float(sim),
            detect_language(sentence.text),
            bool(features["in_scope"]),
            subject,
        )
        if keep_features:
            item.features = features  # type: ignore[attr-defined]  # for fitting only
        scored.append(item)
    return sorted(scored, key=lambda s: -s.score)


def lookup_facts(query: Query, store: FactStore | None) -> list[FactHit]:
    if store is None or not query.models or not query.attributes:
        return []
    hits = []
    for key in query.models[:4]:
        name = query.model_names.get(key, key)
        if not (store.knows(name) or store.knows(key)):
            # A name no fact is about: a compared model still gets its row ("not stated" where the
            # passages do not say); elsewhere it is mostly a word the gazetteer holds (INT4, A100).
            if query.compare:
                hits.extend(FactHit(key, attribute, [], has_sheet=False) for attribute in query.attributes)
            continue
        for attribute in query.attributes:
            facts = store.get(name, attribute) or store.get(key, attribute)
            hits.append(FactHit(key, attribute, facts[:4]))
    return hits


def fact_passages(hits: Sequence[FactHit], index: Index) -> list[tuple[Fact, dict]]:
    """The chunk that holds each cited fact span (the best-fitting one): at most a few chunks per asked
    (model, attribute), so that every cell of a comparison can cite its source."""
    out: list[tuple[Fact, dict]] = []
    for hit in hits:
        rows_for_hit: set[int] = set()
        for fact in hit.facts:
            # A quote the chunker cut ("Model Date" / "May 5, 2023" across two chunks) is cited by its value.
            rows = index.rows_covering(fact.doc_id, fact.start, fact.end)
            rows = rows or index.rows_covering(fact.doc_id, fact.value_start, fact.value_end)
            if not rows or (rows[0] not in rows_for_hit and len(rows_for_hit) >= MAX_FACT_PASSAGES):
                continue
            rows_for_hit.add(rows[0])
            out.append((fact, {"row": rows[0]}))
    return out


def gather(
    query: Query,
    retrieval: Retrieval,
    searcher: HybridSearcher,
    store: FactStore | None,
    weights: Weights,
    keep_features: bool = False,
) -> Evidence:
    hits = lookup_facts(query, store)
    located = fact_passages(hits, searcher.index)
    rows = list(dict.fromkeys(spec["row"] for _, spec in located))
    records = {r["row"]: r for r in searcher.index.chunks(rows)}
    passages: list[Passage] = []
    by_chunk: dict[str, int] = {}
    for row in rows:
        rec = records[row]
        if rec["chunk_id"] in by_chunk:
            continue
        passages.append(
            Passage(
                n=len(passages) + 1,
                chunk_id=rec["chunk_id"],
                doc_id=rec["doc_id"],
                title=rec["title"],
                url=rec["url"],
                section=rec["section"],
                language=rec["language"],
                start=rec["start"],
                end=rec["end"],
                text=rec["text"],
                context=rec["context"],
                score=0.0,
                entities=query.entities_of(rec["entities"], rec["title"], rec["text"]),
            )
        )
        by_chunk[rec["chunk_id"]] = len(passages)
    for p in retrieval.passages:
        if p.chunk_id not in by_chunk:
            passages.append(p.model_copy(update={"n": len(passages) + 1}))
            by_chunk[p.chunk_id] = len(passages)
    documents: dict[str, str] = {}
    passages = [continued(p, documents, searcher.index) for p in passages]
    unwidened = {p.n: (p.start, p.end) for p in passages}
    if query.wants_items:
        passages = widen_to_sections(passages, documents, searcher.index, query)
    fact_passage = {}
    for fact, spec in located:
        fact_passage[(fact.doc_id, fact.start, fact.end)] = by_chunk[records[spec["row"]]["chunk_id"]]
    values = [f.value for hit in hits for f in hit.facts]
    sentences = score_sentences(query, passages, searcher.encoder, searcher, weights, values, keep_features)
    evidence = Evidence(query, passages, sentences, hits, fact_passage=fact_passage)
    evidence.cells = table_lookup(query, sentences)
    evidence.roster = roster_items(sentences, [p for p in passages if unwidened[p.n] != (p.start, p.end)])
    evidence.features = answerable_features(query, evidence, retrieval)
    return evidence


CONTINUE_CHARS = 400  # how far past its chunk a cut sentence may run
LIST_CHARS = 1600  # and a cut list
SENTENCE_END_RE = re.compile(r"[。！？!?](?=\s|$)|\.(?=\s)|\n[ \t]*\n")
ITEM_LINE_RE = re.compile(r"^\s*([-*+•]|\d{1,3}[.)、])\s")


ROSTER_PASSAGES = 2  # of a list question's passages, the first this many may be widened to their section


def widen_to_sections(passages: list[Passage], documents: dict[str, str], index: Index, query: Query) -> list[Passage]:
    """The first ROSTER_PASSAGES passages, each as its `section_roster` when it has one that no earlier
    passage took in already (two hits in one document widen once)."""
    out, taken = [], []
    for p in passages:
        wide = None
        if p.n <= ROSTER_PASSAGES:
            if p.doc_id not in documents:
                document = index.document(p.doc_id)
                documents[p.doc_id] = document["text"] if document else ""
            doc = documents[p.doc_id]
            wide = section_roster(p, doc, query) if doc else None
            if wide and any(d == p.doc_id and lo < wide.end and wide.start < hi for d, lo, hi in taken):
                wide = None
            if wide:
                taken.append((p.doc_id, wide.start, wide.end))
        out.append(wide or p)
    return out


def continued(passage: Passage, documents: dict[str, str], index: Index) -> Passage:
    """A passage the chunker cut inside a sentence or a list, run on to where that sentence or list
    ends in its document ("... we define three main paradigms that" and the paradigms), so an answer
    never quotes half a sentence or half a list. Still an exact span of the document."""
    text = passage.text.rstrip()
    if not text:
        return passage
    last_line = text.rsplit("\n", 1)[-1].strip()
    last_paragraph = re.split(r"\n[ \t]*\n", text)[-1].lstrip("\n")
    last_sentence = re.split(r"[。！？!?.]\s|\n[ \t]*\n", text)[-1].strip()
    # A list item (its first line, or a line it wraps onto), or a sentence introducing a list; not a
    # short heading of the next section ("BLOOM:").
    in_list = bool(ITEM_LINE_RE.match(last_line) or ITEM_LINE_RE.match(last_paragraph)) or (
        text.endswith((":", "：")) and len(last_sentence) > 40
    )
    if text[-1] in "。！？!?.；;|:：" and not in_list:
        return passage
    if passage.doc_id not in documents:
        document = index.document(passage.doc_id)
        documents[passage.doc_id] = document["text"] if document else ""
    doc = documents[passage.doc_id]
    if doc[passage.start : passage.end] != passage.text or passage.end >= len(doc):
        return passage
    following = doc[passage.end : passage.end + (LIST_CHARS if in_list else CONTINUE_CHARS)]
    end = None if in_list else SENTENCE_END_RE.search(following)
    if end is not None and end.group().strip() == "" and ITEM_LINE_RE.match(following[end.end() :]):
        end = None  # "... three main paradigms that" and then the paradigms, as a list
    if end is None:
        extra = list_tail(following) if in_list or ITEM_LINE_RE.match(following.lstrip("\n")) else ""
    else:
        extra = following[: end.end()].rstrip()
    if not extra.strip():
        return passage
    return passage.model_copy(update={"end": passage.end + len(extra), "text": passage.text + extra})


ROSTER_CHARS = 5000  # the longest section a list question's passage is widened to
ROSTER_MIN = 3  # bold paragraph leads that make a section a list of its items
HEADING_RE = re.compile(r"^(#{1,6})[ \t]+\S", re.MULTILINE)
# A paragraph led by a bold name with its description after it: "**Anthropic HH.** The dataset ...".
# A bold line alone ("**Supported models:**") labels a list; it is no item.
BOLD_LEAD_RE = re.compile(r"^\*\*[^*\n]{2,80}\*\*[ \t]*[^\s*]", re.MULTILINE)


@dataclass(frozen=True)
class ListedSection:
    """A section of a document (from its heading to the next heading of its level or above) that lists
    ROSTER_MIN or more bold-led paragraphs."""

    start: int
    stop: int  # the end of its last bold-led paragraph
    items: int
    heading: str


@lru_cache(maxsize=64)
def listed_sections(doc: str) -> tuple[ListedSection, ...]:
    """The document's sections that list their items in bold-led paragraphs, found in one pass over its
    headings: a heading ends the open sections of its level and below."""
    bounds: list[tuple[int, int]] = []
    open_sections: list[tuple[int, int]] = []  # (start, level), levels rising
    for m in HEADING_RE.finditer(doc):
        level = len(m.group(1))
        while open_sections and open_sections[-1][1] >= level:
            bounds.append((open_sections.pop()[0], m.start()))
        open_sections.append((m.start(), level))
    bounds += [(start, len(doc)) for start, _ in open_sections]
    found = []
    for start, end in sorted(bounds):
        leads = [m.start() for m in BOLD_LEAD_RE.finditer(doc, start, end)]
        if len(leads) < ROSTER_MIN:
            continue
        paragraph_end = doc.find("\n\n", leads[-1], end)
        line_end = doc.find("\n", start, end)
        heading = doc[start : line_end if line_end >= 0 else end]
        found.append(ListedSection(start, end if paragraph_end < 0 else paragraph_end, len(leads), heading))
    return tuple(found)


def section_roster(passage: Passage, doc: str, query: Query) -> Passage | None:
    """For a list question: the passage widened to take in a section of its document that lists its
    items as bold-led paragraphs ("**ShareGPT** ...", "**HC3** ...", one or two per chunk): at least
    ROSTER_MIN of them, under a heading that holds a word of the question, from the heading to the end
    of the last such paragraph. Of several, the one with most items that fits in ROSTER_CHARS with the
    passage. Still an exact span of the document; None when no section fits."""
    if doc[passage.start : passage.end] != passage.text:
        return None
    best: tuple[int, int, int] | None = None  # items, start, end
    for section in listed_sections(doc):
        lo, hi = min(section.start, passage.start), max(section.stop, passage.end)
        if hi - lo > ROSTER_CHARS or not concept_share(term_set(section.heading), query.concepts) > 0:
            continue
        if best is None or section.items > best[0]:
            best = (section.items, lo, hi)
    if best is None or (best[1] == passage.start and best[2] == passage.end):
        return None
    _, lo, hi = best
    return passage.model_copy(update={"start": lo, "end": hi, "text": doc[lo:hi]})


def roster_items(sentences: Sequence[Scored], sections: Sequence[Passage]) -> list[Scored]:
    """The sentences that open the bold-led paragraphs of the widened passages, in document order."""
    leads = {(p.n, m.start()) for p in sections for m in BOLD_LEAD_RE.finditer(p.text)}
    if not leads:
        return []
    # A sentence may start past the bold's asterisks.
    items = [s for s in sentences if any((s.sentence.passage.n, s.sentence.start - k) in leads for k in range(3))]
    return sorted(items, key=lambda s: (s.sentence.passage.n, s.sentence.start))


def list_tail(following: str) -> str:
    """The rest of a list: its item lines and the lines that continue them (wrapped: the line before
    ends mid-sentence, or this one goes on in lower case), up to the first line that is neither (a blank
    line is allowed between items). A table where the list starts ("... the following token counts:"
    and a table) is the list: its rows, and nothing after them."""
    taken, offset, open_line = 0, 0, True  # the chunk ended inside a sentence or at its list's colon
    in_table = False
    for i, line in enumerate(following.split("\n")):
        stripped = line.strip()
        table_row = bool(TABLE_RE.match(line)) and (taken == 0 or in_table)
        if in_table and stripped and not table_row:
            break  # the table ended the list
        if stripped and (table_row or ITEM_LINE_RE.match(line) or open_line or stripped[:1].islower()):
            taken = offset + len(line)
            in_table = table_row
            open_line = not table_row and stripped[-1] not in "。！？!?.；;:："
        elif stripped:
            break
        elif i > 0:
            open_line = False  # a paragraph ends at a blank line
        offset += len(line) + 1
    tail = following[:taken]
    # A list cut at the window's edge ends at its last whole line.
    if taken >= len(following):
        tail = tail[: tail.rfind("\n")] if "\n" in tail else ""
    return tail


def is_lone_character(options: frozenset[str]) -> bool:
    return all(len(o) == 1 and CJK_RE.match(o) for o in options)


def evidence_df(query: Query, term: str) -> bool:
    return term in query.known_terms


def spoken_share(query: Query, about: Sequence[Scored]) -> float:
    """Share of the question's attributes that some sentence in `about` names (by the same cues)."""
    if not query.attributes:
        return 0.0
    spoken = {a for s in about for a in named_attributes(s.sentence.text)}
    return len(spoken & set(query.attributes)) / len(query.attributes)


CLAUSE_RE = re.compile(r"[,，;；。、]\s*")
# What counted hardware is for: "two GPUs for inference" does not say how many it was trained on.
PURPOSE_RES = {
    "training": re.compile(r"\b(train\w*|pre-?train\w*|fine-?tun\w*|finetun\w*)\b|训练|微调", re.IGNORECASE),
    "inference": re.compile(r"\b(inferenc\w*|serv(e|es|ed|ing|ers?)|deploy\w*)\b|推理|部署", re.IGNORECASE),
}


def purposes(text: str) -> set[str]:
    return {name for name, pattern in PURPOSE_RES.items() if pattern.search(text)}


WORD_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][\w-]*")
# A word that is a count or an amount in full: "256", "~1,024", "8x", "48GB", "two".
COUNT_WORD_RE = re.compile(
    r"[~≈(]?\d[\d,.]*(?:[kKmMbBgGtT][bB]?)?[x×]?|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?"
    r"|thousands?",
    re.IGNORECASE,
)
FIELD_VALUE_RE = re.compile(r"\s*[:|=：]\s*[~≈]?\d")


@lru_cache(maxsize=8192)
def counted_heads(clause: str) -> frozenset[str]:
    """The stems of the clause's English words that a figure counts as the head of their phrase ("on 256
    A100 GPUs", "8 GPUs for training", "GPUs: 64"); read once per clause, whatever is asked of it."""
    stems: set[str] = set()
    for match in WORD_RE.finditer(clause):
        after = re.match(r"[ \t]+([A-Za-z][\w-]*)", clause[match.end() :])
        if after and not is_stop_word(after.group(1)):
            continue  # a modifier: "GPU memory"
        # The figure counts it: before it, a few words of model or size apart ("256 A100 GPUs",
        # "8 x 80GB A100 GPUs"; a digit inside a name, "Falcon-7B", is no count), or right after it as a
        # field's value ("GPUs: 64", "| GPUs | 64 |").
        before = clause[: match.start()].split()[-4:]
        if any(COUNT_WORD_RE.fullmatch(word) for word in before) or FIELD_VALUE_RE.match(clause, match.end()):
            stems.update(tokenize(match.group()))  # words are matched by their stems: "memory" is memori
    return frozenset(stems)


def counts_in(clause: str, forms: set[str], as_head: bool = True) -> bool:
    """Whether the clause holds one of the counted word's forms as what it counts: a Chinese form anywhere,
    an English one as the head of its phrase with the figure beside it (`counted_heads`), not as the
    modifier of a noun after it ("3G GPU memory" counts memory) nor far from the figure ("3G of memory or
    no GPU at all"). Not `as_head`: anywhere in the clause."""
    tokens = term_set(clause)
    if not tokens.any_of(forms):
        return False
    if not as_head or any(CJK_RE.match(f) and tokens.any_of({f}) for f in forms):
        return True
    return bool(forms & counted_heads(clause))


def counts_stated(evidence: Evidence, about: Sequence[Scored]) -> float:
    """Share of the counted concepts ("how many GPUs") that some sentence about the model gives a
    figure for in the same clause ("on 256 A100 GPUs"; not "across multiple GPUs"), or that a found
    fact counts ("how many parameters": the parameters fact)."""
    counted = evidence.query.counted
    if not counted:
        return 1.0
    found = {h.attribute for h in evidence.facts if h.facts}
    clauses = [(c, s.sentence.text) for s in about for c in CLAUSE_RE.split(s.sentence.text) if NUMBER_RE.search(c)]
    asked_for = purposes(evidence.query.question)

    def for_the_purpose(clause: str, sentence: str) -> bool:
        """Hardware counted for what the question asks: the clause's purpose, else its sentence's."""
        said = purposes(clause) or purposes(sentence)
        return not (asked_for and said and not said & asked_for)

    def stated(c: Counted) -> bool:
        forms = c.options | {o[:-1] for o in c.options if o.endswith("s")} | {o + "s" for o in c.options}
        hardware = "training_hardware" in c.attributes
        return bool(found & set(c.attributes)) or any(
            counts_in(clause, forms, c.head) and (not hardware or for_the_purpose(clause, sentence))
            for clause, sentence in clauses
        )

    return sum(stated(c) for c in counted) / len(counted)


def numbers_supported(query: Query, about: Sequence[Scored]) -> float:
    """Whether some sentence about the model gives a figure beside most of the question's words ("What
    learning rate was Koala tuned with?" has none). A question of several quantities ("How many
    questions ..., and how many categories ...?") is judged part by part, the share of its parts given
    one: a single sentence rarely holds most of every part's words."""
    if not query.numeric:
        return 1.0
    with_figures = [s for s in about if NUMBER_RE.search(s.sentence.text)]
    asked = [i for i, numeric in enumerate(query.numeric_parts) if numeric]
    if not asked:
        return float(any(s.coverage >= 0.5 for s in with_figures))
    return sum(any(s.parts[i] >= 0.5 for s in with_figures) for i in asked) / len(asked)


def answerable_features(query: Query, evidence: Evidence, retrieval: Retrieval) -> dict[str, float]:
    text = TermSet("\n".join(f"{p.title} {p.section_path} {p.text}" for p in evidence.passages))
    languages = {p.language for p in evidence.passages}
    known = query.known_terms
    coverage = concept_share(text, query.concepts, languages, known) if query.concepts else float(bool(query.models))
    about = [s for s in evidence.sentences if s.in_scope or not query.models]
    pairs = [h for h in evidence.facts if h.has_sheet]
    unknown = [(options, w) for options, w in query.concepts if not any(evidence_df(query, o) for o in options)]
    # A lone Chinese character the corpus lacks says less (花了 "spent") than a word it lacks ("天气").
    absent = sum(w for options, w in unknown if not is_lone_character(options))
    absent_chars = sum(w for options, w in unknown if is_lone_character(options))
    # The same, over the passages about the named model only: does the corpus say this about *it*?
    scoped = [p for p in evidence.passages if query.families & set(p.entities)] if query.models else evidence.passages
    scoped_languages = {p.language for p in scoped}
    scoped_text = TermSet("\n".join(f"{p.title} {p.section_path} {p.text}" for p in scoped))
    top_two = query.by_rarity[:2]
    total = sum(w for _, w in query.concepts)
    return {
        "best_sentence_dense": max((s.dense for s in about), default=0.0),
        "unknown_words": absent / total if total else 0.0,
        "unknown_characters": absent_chars / total if total else 0.0,
        "coverage": coverage,
        "scoped_coverage": concept_share(scoped_text, query.concepts, scoped_languages, known) if scoped else 0.0,
        "scoped_top": concept_share(scoped_text, top_two, scoped_languages, known) if scoped else 0.0,
        "best_sentence_coverage": max((s.coverage for s in about), default=0.0),
        "best_dense": retrieval.best_dense,
        "best_sentence": max((s.score for s in evidence.sentences), default=-10.0) / 10.0,
        "named_model": float(bool(query.models)),
        "attribute_found": (sum(1 for h in pairs if h.facts) / len(pairs)) if pairs else 0.0,
        # Asked, and the fact store has nothing for it: "How much did training StarCoder cost?"
        "attribute_missing": (sum(1 for h in pairs if not h.facts) / len(pairs)) if pairs else 0.0,
        # Asked attributes that some sentence about the model speaks of, found in it or not.
        "attribute_spoken": spoken_share(query, about),
        "numeric_supported": numbers_supported(query, about),
        "count_stated": counts_stated(evidence, about),
        # Rows of a table asked by name, with an asked column: "the average scores of A and B in X's table".
        "table_cells": min(len(evidence.cells), 2) / 2,
    }
