"""The offline answerer: pick the sentences of the top passages that answer the question.

Each sentence is scored by meaning (embedding similarity to the question), by the
question's words and their translations, by the models it names and, for questions
that ask for a quantity, by carrying numbers. The best non-redundant ones are cited
with their passage's [n]; a comparison gets a block per model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.entities import family_key
from ingest.tokenize import TermSet
from rag.retrieve import HybridSearcher, Retrieval
from rag.sentences import Sentence, readable, split_sentences

NUMERIC_Q_RE = re.compile(
    r"\b(how (many|much|long|large|big)|when|what year|size|cost|score|number|count)\b"
    r"|多少|几|多长|多大|何时|什么时候|哪一年|成本|花费|得分|分数",
    re.IGNORECASE,
)
NUMBER_RE = re.compile(r"\d|[一二三四五六七八九十百千万亿]+[万亿]")
MAX_SENTENCE_CHARS = 400
JUNK_RE = re.compile(
    r"https?://|\]\(|[{}]|^\s*[-*]?\s*(Use|Run|Install|pip|conda|git|cd|python)\b|\w+\s*=\s*\S", re.IGNORECASE
)


def symbol_ratio(text: str) -> float:
    symbols = sum(1 for c in text if not (c.isalnum() or c.isspace() or "\u4e00" <= c <= "\u9fff"))
    return symbols / max(1, len(text))


SUBQUESTION_RE = re.compile(
    r"[?？;；]|,?\s+and\s+(?=(how|what|which|when|who|where|why|on|in|with)\b)|，(?=.*[?？])", re.IGNORECASE
)


@dataclass(eq=False)  # compared by identity
class Scored:
    sentence: Sentence
    score: float
    entities: set[str]
    parts: list[float]  # how well it covers each sub-question


def sub_questions(question: str) -> list[str]:
    """'How many tokens ..., and on how many chips?' -> two parts, each to be answered."""
    parts = [p.strip() for p in SUBQUESTION_RE.split(question) if p and len(p.strip()) > 3]
    return [
        p for p in parts if p.lower() not in ("how", "what", "which", "when", "who", "where", "why", "on", "in", "with")
    ] or [question]


def char_bigrams(text: str) -> set[str]:
    text = re.sub(r"\s+", "", text.lower())
    return {text[i : i + 2] for i in range(len(text) - 1)}


def similar(a: str, b: str) -> bool:
    x, y = char_bigrams(a), char_bigrams(b)
    return bool(x and y) and len(x & y) / min(len(x), len(y)) > 0.6


def score_sentences(searcher: HybridSearcher, question: str, retrieval: Retrieval) -> list[Scored]:
    sentences = [
        s
        for p in retrieval.passages
        for s in split_sentences(p)
        if (len(s.text) <= MAX_SENTENCE_CHARS or s.is_table_row) and not s.is_table_header
    ]
    if not sentences:
        return []
    concepts = searcher.concepts(question)
    total_weight = sum(w for _, w in concepts) or 1.0
    parts = sub_questions(question)
    part_concepts = [searcher.concepts(p) for p in parts] if len(parts) > 1 else []
    numeric = bool(NUMERIC_Q_RE.search(question))
    wanted = set(retrieval.entities) | {family_key(k) for k in retrieval.entities}
    # A table row is judged with its header, so "GPT-4 | 1.76T" still says what 1.76T is.
    texts = [readable((s.table_header + "\n" if s.is_table_row else "") + s.text) for s in sentences]
    vectors = searcher.encode_cached([question] + texts)
    dense = vectors[1:] @ vectors[0]
    scored = []
    for sentence, text, sim in zip(sentences, texts, dense):
        tokens = TermSet(text)
        lexical = sum(w for options, w in concepts if tokens.any_of(options)) / total_weight
        named = {k for key in searcher.gazetteer.find(text) for k in (key, family_key(key))}
        in_scope = bool(wanted & set(sentence.passage.entities))
        entity = len(wanted & named) / len(wanted) if wanted else 0.0
        if in_scope:  # a sentence under a heading or in a passage about the model is about it too
            entity = max(entity, 0.5)
        score = 0.35 * float(sim) + 0.45 * lexical + 0.15 * entity
        if numeric and NUMBER_RE.search(text):
            score += 0.08
        if wanted and not in_scope and not entity:
            score -= 0.2  # about some other model
        if text.rstrip().endswith(("?", "？")):
            score -= 0.15  # a question (an FAQ heading) is not an answer
        if JUNK_RE.search(text) or (symbol_ratio(text) > 0.15 and not sentence.is_table_row):
            score -= 0.15  # code, markup, link lists: rarely an answer
        part_scores = []
        for groups in part_concepts:
            weight = sum(w for _, w in groups) or 1.0
            part_scores.append(sum(w for options, w in groups if tokens.any_of(options)) / weight)
        score -= 0.01 * (sentence.passage.n - 1)  # slight trust in the retrieval order
        if len(text) < 15:
            score -= 0.1  # fragments and headings rarely answer anything
        scored.append(Scored(sentence, score, named, part_scores))
    return sorted(scored, key=lambda s: -s.score)


def pick(scored: list[Scored], limit: int, max_chars: int, floor: float) -> list[Scored]:
    chosen: list[Scored] = []
    used = 0
    # First the best sentence for each part of a multi-part question, then the best overall.
    n_parts = len(scored[0].parts) if scored else 0
    firsts = []
    for i in range(n_parts):
        covering = [s for s in scored if s.parts[i] > 0 and s.score >= floor * 0.7]
        if covering:
            firsts.append(max(covering, key=lambda s: (s.parts[i], s.score)))
    ordered = list(dict.fromkeys(firsts + scored).keys()) if firsts else scored
    for item in ordered:
        if len(chosen) >= limit:
            break
        if item.score < floor and item not in firsts:
            continue
        text = item.sentence.text
        if any(similar(text, c.sentence.text) for c in chosen):
            continue
        if used + len(text) > max_chars and chosen:
            continue
        chosen.append(item)
        used += len(text)
    return chosen


def with_continuation(sentence: Sentence, max_chars: int = 350) -> list[Sentence]:
    """A sentence that introduces a list ('... 包括:') or is a bare heading brings what follows it."""
    text = sentence.text.rstrip()
    if not (text.endswith((":", "：")) or len(text) < 15):
        return [sentence]
    following = [s for s in split_sentences(sentence.passage) if s.start >= sentence.end]
    out, used = [sentence], 0
    for s in following[:4]:
        if used + len(s.text) > max_chars:
            break
        out.append(s)
        used += len(s.text)
    return out


def render(items: list[Scored]) -> str:
    parts = []
    for item in items:
        for s in with_continuation(item.sentence):
            text = readable(s.text)
            if s.is_table_row and s.table_header:
                text = f"{readable(s.table_header)} → {text}"
            parts.append(f"{text} [{s.passage.n}]")
    return " ".join(parts)


def extractive_answer(
    searcher: HybridSearcher, question: str, retrieval: Retrieval, names: dict[str, str]
) -> tuple[str, dict[int, list[Sentence]]]:
    """The answer text with [n] markers, and the sentences quoted for each n."""
    scored = score_sentences(searcher, question, retrieval)
    if not scored:
        return "", {}
    best = scored[0].score
    if retrieval.per_entity and len(retrieval.per_entity) >= 2:
        blocks, chosen_all = [], []
        for key, numbers in retrieval.per_entity.items():
            family = {key, family_key(key)}
            own = [
                s
                for s in scored
                if s.sentence.passage.n in numbers
                and (family & s.entities or family & set(s.sentence.passage.entities))
            ]
            chosen = pick(own, 3, 500, floor=best * 0.5)
            chosen_all += chosen
            if chosen:
                blocks.append(f"**{names.get(key, key)}**: {render(chosen)}")
        text = "\n\n".join(blocks)
    else:
        chosen_all = pick(scored, 4, 700, floor=best * 0.7)
        text = render(chosen_all)
    quotes: dict[int, list[Sentence]] = {}
    for item in chosen_all:
        for sentence in with_continuation(item.sentence):
            quotes.setdefault(sentence.passage.n, []).append(sentence)
    return text, quotes
