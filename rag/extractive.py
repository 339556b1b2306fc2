"""The offline answerer: writes the answer from the evidence, in the answer's language.

Attribute questions are answered from the fact store ("Vicuna-13B: parameters 13B [1]; base model
LLaMA [2]."), with an explicit "the corpus does not state X for Y" for every asked part it lacks;
comparisons become a table with a citation in every cell; how/why/what-is questions get whole
sentences of the best passages, in an order that reads as one answer. A sentence in the other
language than the answer's is shown as a quote.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Sequence

from ingest.chunk import LIST_RE as LIST_ITEM_RE
from ingest.chunk import detect_language
from ingest.entities import family_key
from rag.evidence import Evidence, FactHit, Scored
from rag.query import named_attributes
from rag.sentences import Sentence, cells_of, readable, split_sentences

ATTRIBUTE_NAMES = {
    "en": {
        "developer": "developer",
        "release_date": "release date",
        "parameters": "parameters",
        "base_model": "base model",
        "architecture": "architecture",
        "training_data": "training data",
        "training_tokens": "training tokens",
        "context_length": "context length",
        "licence": "licence",
        "languages": "languages",
        "training_cost": "training cost",
        "training_hardware": "training hardware",
        "memory_requirement": "memory needed",
    },
    "zh": {
        "developer": "开发者",
        "release_date": "发布时间",
        "parameters": "参数量",
        "base_model": "基座模型",
        "architecture": "架构",
        "training_data": "训练数据",
        "training_tokens": "训练 token 数",
        "context_length": "上下文长度",
        "licence": "许可证",
        "languages": "语言",
        "training_cost": "训练成本",
        "training_hardware": "训练硬件",
        "memory_requirement": "所需显存",
    },
}
PHRASES = {
    "en": {
        "not_stated": "The corpus does not state the {attribute} of {model}.",
        "model": "Model",
        "not_stated_cell": "not stated",
        "conflict": "sources disagree",
        "quoting": "The Chinese sources say:",
        "listing": "The source lists {count}:",
    },
    "zh": {
        "not_stated": "语料库没有说明 {model} 的{attribute}。",
        "model": "模型",
        "not_stated_cell": "未说明",
        "conflict": "来源不一致",
        "quoting": "英文资料原文：",
        "listing": "资料列出以下 {count} 项：",
    },
}
SENTENCE_LIMIT = 6
SENTENCE_CHARS = 1000


def phrase(lang: str, key: str, **values: str) -> str:
    return PHRASES.get(lang, PHRASES["en"])[key].format(**values)


def attribute_name(lang: str, attribute: str) -> str:
    return ATTRIBUTE_NAMES.get(lang, ATTRIBUTE_NAMES["en"]).get(attribute, attribute.replace("_", " "))


def shingles(text: str) -> set[str]:
    """Words, and character pairs of Chinese (which has no spaces): what "the same sentence" is judged on.
    English character pairs would make any two sentences about one model look alike."""
    text = text.lower()
    cjk = "".join(re.findall(r"[\u4e00-\u9fff]+", text))
    return set(re.findall(r"[a-z0-9]+", text)) | {cjk[i : i + 2] for i in range(len(cjk) - 1)}


def similar(new: str, chosen: str) -> bool:
    """Whether a sentence mostly repeats one chosen already. One way only: a table row that holds all
    of a chosen heading's words ("Cerebras-GPT-13B" and its row of figures) still adds the figures."""
    x, y = shingles(new), shingles(chosen)
    return bool(x and y) and len(x & y) / len(x) > 0.6


class Quotes:
    """The exact spans each citation number quotes."""

    def __init__(self) -> None:
        self.spans: dict[int, list[Sentence]] = {}

    def add(self, sentence: Sentence) -> int:
        self.spans.setdefault(sentence.passage.n, []).append(sentence)
        return sentence.passage.n


# --- facts ---------------------------------------------------------------------------------------
def fact_span(evidence: Evidence, fact) -> Sentence | None:
    n = evidence.passage_of(fact)
    if n is None:
        return None
    passage = evidence.passages[n - 1]
    for span_start, span_end, text in (
        (fact.start, fact.end, fact.quote),
        (fact.value_start, fact.value_end, fact.value),
    ):
        start, end = span_start - passage.start, span_end - passage.start
        if start >= 0 and end <= len(passage.text) and passage.text[start:end] == text:
            return Sentence(passage, start, end)
    return None  # the passage holds neither the quote nor the value


def cited_values(evidence: Evidence, hit: FactHit, quotes: Quotes) -> str:
    """Each distinct value once, with the marker of the passage stating it; ⚠ where sources disagree."""
    parts: dict[str, list[int]] = {}
    shown: dict[str, str] = {}  # "llama" -> "LLaMA": values that differ only in case or spacing are one
    conflict = False
    for fact in hit.facts:
        span = fact_span(evidence, fact)
        if span is None:
            continue
        label = readable(fact.value) + (f" ({fact.qualifier})" if fact.qualifier else "")
        label = shown.setdefault(re.sub(r"\s+", "", label.casefold()), label)
        n = quotes.add(span)
        if n not in parts.setdefault(label, []):
            parts[label].append(n)
        conflict = conflict or fact.conflict
    text = ", ".join(f"{label} {''.join(f'[{n}]' for n in ns)}" for label, ns in parts.items())
    if text and conflict and len(parts) > 1:
        text += f" ({phrase(evidence.query.lang, 'conflict')})"
    return text


def fact_lines(evidence: Evidence, quotes: Quotes) -> tuple[list[str], list[FactHit]]:
    """'Model: attribute value [n]; attribute value [m].' per model, and the hits the corpus lacks."""
    lang = evidence.query.lang
    lines, missing = [], []
    by_model: dict[str, list[str]] = {}
    for hit in evidence.facts:
        values = cited_values(evidence, hit, quotes)
        if values:
            by_model.setdefault(hit.model, []).append(f"{attribute_name(lang, hit.attribute)} {values}")
        else:
            missing.append(hit)
    for model, items in by_model.items():
        name = evidence.query.model_names.get(model, model)
        sep = "；" if lang == "zh" else "; "
        lines.append(f"{name}{'：' if lang == 'zh' else ': '}{sep.join(items)}{'。' if lang == 'zh' else '.'}")
    return lines, missing


def not_stated(evidence: Evidence, missing: Sequence[FactHit]) -> list[str]:
    lang = evidence.query.lang
    return [
        phrase(
            lang,
            "not_stated",
            attribute=attribute_name(lang, h.attribute),
            model=evidence.query.model_names.get(h.model, h.model),
        )
        for h in missing
    ]


def comparison_table(evidence: Evidence, quotes: Quotes) -> str:
    """A markdown table: one row per model, one column per asked attribute, a cited value per cell."""
    lang = evidence.query.lang
    attributes = list(dict.fromkeys(h.attribute for h in evidence.facts))
    header = [phrase(lang, "model"), *(attribute_name(lang, a) for a in attributes)]
    rows = []
    for model in dict.fromkeys(h.model for h in evidence.facts):
        cells = []
        for attribute in attributes:
            hit = next(h for h in evidence.facts if h.model == model and h.attribute == attribute)
            cells.append(cited_values(evidence, hit, quotes) or phrase(lang, "not_stated_cell"))
        rows.append([evidence.query.model_names.get(model, model), *cells])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- sentences -----------------------------------------------------------------------------------
def pick(
    scored: list[Scored],
    limit: int,
    max_chars: int,
    floor: float,
    taken: Sequence[Scored] = (),
    subjects: Sequence[str] = (),
) -> list[Scored]:
    """The best non-redundant sentences; first the best one for each part of a multi-part question,
    and the best one naming each of the models it asks about."""
    chosen: list[Scored] = []
    used = 0
    n_parts = len(scored[0].parts) if scored else 0
    firsts = []
    for i in range(n_parts):
        covering = [s for s in scored if s.parts[i] > 0 and s.score >= floor - 1.0]
        if covering:
            firsts.append(max(covering, key=lambda s: (s.parts[i], s.score)))
    for key in subjects if len(subjects) > 1 else ():
        family = {key, family_key(key)}
        naming = [s for s in scored if family & s.entities and s.score >= floor - 1.0]
        if naming and not any(family & s.entities for s in firsts):
            firsts.append(naming[0])  # scored is best first
    ordered = list(dict.fromkeys(firsts + scored).keys()) if firsts else scored
    for item in ordered:
        if len(chosen) >= limit:
            break
        if item.score < floor and item not in firsts:
            continue
        text = item.sentence.text
        if any(similar(text, c.sentence.text) for c in [*chosen, *taken]):
            continue
        if restates(item, chosen):
            continue
        if used + len(text) > max_chars and chosen:
            continue
        chosen.append(item)
        used += len(text)
    return chosen


FIGURE_RE = re.compile(r"\d+(?:[.,]\d+)*")


def restates(item: Scored, chosen: Sequence[Scored]) -> bool:
    """A sentence in one language that only repeats the figures of a chosen sentence in the other
    ("Vicuna-13B的训练成本仅为300美元。" after "The cost of training Vicuna-13B is around $300.")."""
    figures = set(FIGURE_RE.findall(item.sentence.text))
    if not figures:
        return False
    return any(c.language != item.language and figures <= set(FIGURE_RE.findall(c.sentence.text)) for c in chosen)


def with_continuation(sentence: Sentence, max_chars: int = 350) -> list[Sentence]:
    """A sentence that introduces a list ('... 包括:') or is a bare heading brings what follows it."""
    text = sentence.text.rstrip()
    if not (introduces(sentence) or len(text) < 15):
        return [sentence]
    following = [s for s in split_sentences(sentence.passage) if s.start >= sentence.end]
    out, used = [sentence], 0
    for s in following[:4]:
        if used + len(s.text) > max_chars:
            break
        out.append(s)
        used += len(s.text)
    return out


LIST_ITEMS = 12  # at most this many items of one list in an answer
LIST_CHARS = 1200


def introduces(sentence: Sentence) -> bool:
    """'... 包括:', 'the following artifacts:' - a line that what follows completes."""
    return sentence.text.rstrip().endswith((":", "："))


def is_item(sentence: Sentence) -> bool:
    return bool(LIST_ITEM_RE.match(sentence.text)) or (sentence.is_table_row and not sentence.is_table_header)


def list_block(sentence: Sentence) -> list[Sentence]:
    """For a list question: the whole list a sentence belongs to or introduces ("... the following
    artifacts:" and its items), with the line that introduces it, from the sentence's passage."""
    items = split_sentences(sentence.passage)
    at = next((i for i, s in enumerate(items) if s.start == sentence.start), None)
    if at is None:
        return [sentence]
    if introduces(sentence) and at + 1 < len(items):  # "...包括:" - what it introduces, not the list it is in
        lo, intro = at + 1, [sentence]
        while lo < len(items) and items[lo].is_table_header:
            lo += 1  # "... the following token counts:" and a table: its rows are the items, each with its header
    elif is_item(sentence):
        lo = at
        while lo > 0 and is_item(items[lo - 1]):
            lo -= 1
        intro = [items[lo - 1]] if lo > 0 and introduces(items[lo - 1]) else []
    elif at + 1 < len(items) and is_item(items[at + 1]):
        lo, intro = at + 1, [sentence]
    elif at + 2 < len(items) and introduces(items[at + 1]) and is_item(items[at + 2]):
        lo, intro = at + 2, [sentence, items[at + 1]]  # "... shares deficiencies. Some of which include:"
    else:
        return with_continuation(sentence)
    # The run of items; after an introducing line that is itself an item, the run of lines up to the
    # next item (a nested list whose markers the source lost).
    marked = lo < len(items) and is_item(items[lo])
    run: list[Sentence] = []
    used = 0
    for s in items[lo:]:
        if len(run) >= LIST_ITEMS or used >= LIST_CHARS:
            break
        if is_item(s) == marked:
            run.append(s)
            used += len(s.text)
        elif marked and run and "\n\n" not in s.passage.text[run[-1].end : s.start]:
            continue  # the item's next sentences ("- R-Denoiser: ... tokens. These spans are short ...")
        else:
            break
    return intro + run


def table_row_text(sentence: Sentence) -> str:
    """A table row as 'column value, column value': the row alone does not say what its cells are."""
    cells = cells_of(sentence.text)
    header = cells_of(sentence.table_header) if sentence.table_header else []
    if len(header) == len(cells):
        return ", ".join(f"{readable(h)} {readable(c)}" if h else readable(c) for h, c in zip(header, cells) if c)
    return ", ".join(readable(c) for c in cells if c)


def sentence_text(sentence: Sentence, lang: str) -> str:
    text = table_row_text(sentence) if sentence.is_table_row else readable(LIST_ITEM_RE.sub("", sentence.text))
    if detect_language(text) != lang:
        return f"“{text}”"  # the source's own words, in the other language
    return text


def in_reading_order(items: list[Scored]) -> list[Scored]:
    """Sentences of one passage in the order the passage has them, passages by their best sentence."""
    first_seen: dict[int, int] = {}
    for i, item in enumerate(items):
        first_seen.setdefault(item.sentence.passage.n, i)
    return sorted(items, key=lambda s: (first_seen[s.sentence.passage.n], s.sentence.start))


def shown_label(sentence: Sentence, shown: set[tuple[int, int]]) -> bool:
    """Whether the label line above the sentence is in the answer already (as a heading brought in)."""
    span = sentence.label_span
    return span is not None and (sentence.passage.n, span[0]) in shown


def render(items: list[Scored], lang: str, quotes: Quotes, as_list: bool = False) -> str:
    """The sentences with their markers; a run of quotes in the other language is introduced as such.
    For a list question, the lists the sentences belong to come whole, one item per line."""
    parts = []
    quoting = False
    shown: set[tuple[int, int]] = set()
    listing = False
    for item in in_reading_order(items):
        block = list_block(item.sentence) if as_list else with_continuation(item.sentence)
        for s in block:
            if (s.passage.n, s.start) in shown:
                continue
            shown.add((s.passage.n, s.start))
            text = sentence_text(s, lang)
            quoted = text.startswith("“")
            if quoted and not quoting:
                parts.append(phrase(lang, "quoting"))
            quoting = quoted
            if s is item.sentence and item.subject and not shown_label(s, shown):
                # "ziya: ...": the label is the source's words too, quoted when in the other language.
                label = item.subject if detect_language(item.subject) == lang else f"“{item.subject}”"
                text = f"{label}{'：' if lang == 'zh' else ': '}{text}"
            bullet = ""
            if as_list and (s is not block[0] or is_item(s)) and not (introduces(s) and not is_item(s)):
                nested = s is not block[0] and not is_item(s) and is_item(block[0])  # items of an item
                bullet = "\n  - " if nested else "\n- "
            elif listing:  # a sentence after a list starts a new paragraph
                bullet = "\n\n"
            listing = bool(bullet.strip())
            parts.append(f"{bullet}{text} [{quotes.add(s)}]")
    return re.sub(r" \n", "\n", " ".join(parts)).strip()


def best_sentences(evidence: Evidence, floor_share: float, limit: int, max_chars: int) -> list[Scored]:
    scored = evidence.sentences
    if not scored:
        return []
    floor = scored[0].score - abs(scored[0].score) * (1 - floor_share) - 0.5
    return pick(
        in_language_first(scored, evidence.query.lang, floor),
        limit,
        max_chars,
        floor,
        subjects=evidence.query.models[:4],
    )


def in_language_first(scored: Sequence[Scored], lang: str, floor: float) -> list[Scored]:
    """The sentences best first, but a sentence in the answer's language that says what a better one in
    the other language says and is good enough to be chosen moves ahead of it: "The cost of training
    Vicuna-13B is around $300." before "Vicuna-13B的训练成本仅为300美元。". Saying the same is having the
    figures of the other (as `restates` judges), a figure of two digits or more among them (a lone "4" in
    "4-bit" says nothing of what a sentence is about)."""
    figures = {id(s): set(FIGURE_RE.findall(s.sentence.text)) for s in scored}
    mine = [s for s in scored if s.language == lang and s.score >= floor and figures[id(s)]]
    if not mine:
        return list(scored)

    def same(a: Scored, b: Scored) -> bool:
        fa, fb = figures[id(a)], figures[id(b)]
        return (fa <= fb or fb <= fa) and any(len(re.sub(r"\D", "", f)) >= 2 for f in fa & fb)

    out = list(scored)
    for other in [s for s in scored if s.language != lang and figures[id(s)]]:
        at = out.index(other)
        later = set(map(id, out[at + 1 :]))
        twin = next((s for s in mine if id(s) in later and same(s, other)), None)
        if twin is not None:
            out.remove(twin)
            out.insert(at, twin)
    return out


def qualifier_pattern(size: str) -> re.Pattern[str]:
    """A compared model's size ("70B": "70B", "70 b") or version ("v1.5": "v1.5", "-v1.5")."""
    if size[:1] == "v":
        return re.compile(rf"(?<![\w.]){re.escape(size)}(?![\d])|(?<=[-_ ]){re.escape(size)}(?![\d])", re.I)
    return re.compile(rf"(?<![\d.]){re.escape(size[:-1])}\s?{size[-1]}\b", re.IGNORECASE)


def qualified(item: Scored, pattern: re.Pattern[str]) -> bool:
    """Whether the sentence, or the title of its passage, gives the size or version."""
    return bool(pattern.search(item.sentence.text) or pattern.search(item.sentence.passage.title))


def about_subject(scored: Sequence[Scored], key: str, size: str) -> list[list[Scored]]:
    """The sentences about one compared model, most specific first: with the size or version the
    question gives it ("Llama 2 70B": the 70B row, not the 65B one), then those naming the model, then
    all about it."""
    family = {key, family_key(key)}
    # Sentences that name the model before those that are only in a passage about it: a results table
    # in one model's card has a row for each compared model.
    own = [s for s in scored if family & s.entities or family & set(s.sentence.passage.entities)]
    if not size:
        return [own]
    pattern = qualifier_pattern(size)
    return [[s for s in own if qualified(s, pattern)], own]


def belongs(item: Scored, narrower: set[str], others: Sequence[re.Pattern[str]], mine: re.Pattern[str] | None) -> bool:
    """Whether a sentence can speak for a compared subject: it names no narrower compared model and
    gives no other subject's size or version (unless it gives the subject's own too)."""
    if narrower & item.entities:
        return False
    return not any(qualified(item, p) for p in others) or (mine is not None and qualified(item, mine))


def comparison_blocks(evidence: Evidence, quotes: Quotes, floor_share: float) -> list[str]:
    blocks = []
    lang = evidence.query.lang
    scored = evidence.sentences
    best = scored[0].score if scored else 0.0
    floor = best - abs(best) * (1 - floor_share) - 1.0
    subjects = (evidence.query.subjects or [(k, "") for k in evidence.query.models])[:4]
    keys = {k for k, _ in subjects}
    patterns = {(k, size): qualifier_pattern(size) for k, size in subjects if size}
    shown: list[Scored] = []
    for key, size in subjects:
        # "Vicuna-13B compared with Vicuna v1.5": a sentence naming the more specific model, or giving
        # another subject's size or version, belongs to that subject's block; no block repeats another's.
        narrower = {o for o in keys if o != key and family_key(o) == key}
        rivals = {o for o in keys if o != key and o not in narrower and family_key(o) != family_key(key)}
        others = [p for subject, p in patterns.items() if subject != (key, size)]
        mine = patterns.get((key, size))

        tiers = [
            [
                s
                for s in tier
                if s not in shown
                and belongs(s, narrower, others, mine)
                and not (rivals & s.entities and not {key, family_key(key)} & s.entities)
                # a results-table row about another model, in this model's card
                and not (s.sentence.is_table_row and s.entities and not {key, family_key(key)} & s.entities)
            ]
            for tier in about_subject(scored, key, size)
        ]
        chosen = next((c for tier in tiers if (c := pick(tier, 3, 500, floor))), [])
        shown += chosen
        if chosen:
            name = evidence.query.model_names.get(key, key) + (f" {size}" if size else "")
            blocks.append(f"**{name}**: {render(chosen, lang, quotes)}")
    return blocks


def cell_lines(evidence: Evidence, quotes: Quotes) -> list[str]:
    """'Row: column value, column value [n].' for each table row the question asks about."""
    lang = evidence.query.lang
    colon, stop = ("：", "。") if lang == "zh" else (": ", ".")
    return [
        f"{row.label}{colon}{', '.join(f'{h} {v}' for h, v in row.cells)} [{quotes.add(row.sentence)}]{stop}"
        for row in evidence.cells
    ]


BOLD_NAME_RE = re.compile(r"\*\*([^*]+?)[.:：。]?\*\*[.:：]?\s*")
ROSTER_REST = 2  # sentences beside a listed section's items


def roster_lines(evidence: Evidence, quotes: Quotes) -> list[str]:
    """'- **Name**: what its paragraph says first [n]' for each item of a section that lists them in
    bold-led paragraphs, after a line saying how many; the name is the source's, the description quoted
    when in the other language."""
    lang, colon = evidence.query.lang, "：" if evidence.query.lang == "zh" else ": "
    lines = [phrase(lang, "listing", count=str(len(evidence.roster)))]
    for item in evidence.roster:
        s = item.sentence
        name = BOLD_NAME_RE.match(s.text)
        if name:
            rest = Sentence(s.passage, s.start + name.end(), s.end)
            lines.append(f"- **{name.group(1).strip()}**{colon}{sentence_text(rest, lang)} [{quotes.add(s)}]")
        else:
            lines.append(f"- {sentence_text(s, lang)} [{quotes.add(s)}]")
    return lines


def extractive_answer(evidence: Evidence, floor_share: float = 0.7) -> tuple[str, dict[int, list[Sentence]]]:
    """The answer text with [n] markers, and the spans quoted for each n. Table cells the question
    asks for come first; for a list question, the items of a section that lists them."""
    quotes = Quotes()
    # A card's YAML header is the fact store's to read, never a sentence to quote.
    evidence = dataclasses.replace(
        evidence, sentences=[s for s in evidence.sentences if not s.sentence.in_front_matter]
    )
    if evidence.roster and evidence.query.wants_items and not evidence.cells:
        items = "\n".join(roster_lines(evidence, quotes))
        rest = copy.copy(evidence)
        listed = {id(s) for s in evidence.roster}
        rest.sentences = [s for s in evidence.sentences if id(s) not in listed]
        rest.query = dataclasses.replace(rest.query, kind="fact")  # the items are listed; a few sentences besides
        text, spans = composed(rest, floor_share, quotes, sentence_limit=ROSTER_REST)
        return f"{items}\n\n{text}".strip(), spans
    if not evidence.cells:
        return composed(evidence, floor_share, quotes)
    cells = "\n".join(cell_lines(evidence, quotes))
    # The rest of the answer as without the cells, less the other rows of their tables, but for rows
    # about an asked model no cell speaks of (a row the question names otherwise than its label).
    tables = {(row.sentence.passage.doc_id, row.sentence.table_header) for row in evidence.cells}
    covered = {e for row in evidence.cells for e in row.entities}
    asked = evidence.query.families - covered
    rest = copy.copy(evidence)
    if rest.query.kind == "list":  # the cells are the items asked for; no list of the table's rows again
        rest.query = dataclasses.replace(rest.query, kind="fact")
    rest.sentences = [
        s
        for s in evidence.sentences
        if not (
            s.sentence.is_table_row
            and (s.sentence.passage.doc_id, s.sentence.table_header) in tables
            and not asked & s.entities
        )
    ]
    text, spans = composed(rest, floor_share, quotes)
    return f"{cells}\n\n{text}".strip(), spans


def composed(
    evidence: Evidence, floor_share: float, quotes: Quotes, sentence_limit: int = SENTENCE_LIMIT
) -> tuple[str, dict[int, list[Sentence]]]:
    query = evidence.query
    found = [h for h in evidence.facts if h.facts]
    if query.compare and found:
        text = comparison_table(evidence, quotes)
        # What the passages say about each model: cells the fact store cannot fill, and whatever else
        # the question asks that is no fact-sheet attribute ("... and training time?").
        blocks = comparison_blocks(evidence, quotes, floor_share)
        if blocks:
            text += "\n\n" + "\n\n".join(blocks)
        return text.strip(), quotes.spans
    if query.compare:
        blocks = comparison_blocks(evidence, quotes, floor_share)
        return "\n\n".join(blocks), quotes.spans
    pieces: list[str] = []
    if found:
        lines, missing = fact_lines(evidence, quotes)
        pieces += lines
        # Beside the facts, a few sentences; a list question wants its items whatever the facts say.
        extra = (
            best_sentences(evidence, floor_share, SENTENCE_LIMIT, SENTENCE_CHARS)
            if query.kind == "list"
            else best_sentences(evidence, floor_share, 3, 600)
        )
        if extra:
            pieces.append(render(extra, query.lang, quotes, as_list=query.kind == "list"))
        # A part a chosen sentence about the model speaks to is not "not stated".
        spoken = {a for s in extra if s.in_scope for a in named_attributes(s.sentence.text)}
        pieces += not_stated(evidence, [h for h in missing if h.attribute not in spoken])
    else:
        chosen = best_sentences(evidence, floor_share, sentence_limit, SENTENCE_CHARS)
        if chosen:
            pieces.append(render(chosen, query.lang, quotes, as_list=query.kind == "list"))
    return " ".join(p for p in pieces if p), quotes.spans
