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
from ingest.tokenize import tokenize
from rag.retrieve import HybridSearcher, Retrieval
from rag.sentences import Sentence, readable, split_sentences

NUMERIC_Q_RE = re.compile(r"\b(how (many|much|long|large|big)|when|what year|size|cost|score|number|count)\b"
                          r"|多少|几|多长|多大|何时|什么时候|哪一年|成本|花费|得分|分数", re.IGNORECASE)
NUMBER_RE = re.compile(r"\d|[一二三四五六七八九十百千万亿]+[万亿]")
MAX_SENTENCE_CHARS = 400


@dataclass
class Scored:
    sentence: Sentence
    score: float
    entities: set[str]


def char_bigrams(text: str) -> set[str]:
    text = re.sub(r"\s+", "", text.lower())
    return {text[i : i + 2] for i in range(len(text) - 1)}


def similar(a: str, b: str) -> bool:
    x, y = char_bigrams(a), char_bigrams(b)
    return bool(x and y) and len(x & y) / min(len(x), len(y)) > 0.6


def score_sentences(searcher: HybridSearcher, question: str, retrieval: Retrieval) -> list[Scored]:
    sentences = [s for p in retrieval.passages for s in split_sentences(p)
                 if len(s.text) <= MAX_SENTENCE_CHARS or s.is_table_row]
    if not sentences:
        return []
    terms = searcher.weighted_terms(question)
    total_weight = sum(terms.values()) or 1.0
    numeric = bool(NUMERIC_Q_RE.search(question))
    wanted = set(retrieval.entities) | {family_key(k) for k in retrieval.entities}
    texts = [readable((s.passage.context + "\n" if s.is_table_row else "") + s.text) for s in sentences]
    vectors = searcher.embedder.encode([question] + texts)
    dense = vectors[1:] @ vectors[0]
    scored = []
    for sentence, text, sim in zip(sentences, texts, dense):
        tokens = set(tokenize(text))
        lexical = sum(w for t, w in terms.items() if t in tokens) / total_weight
        named = {k for key in searcher.gazetteer.find(text) for k in (key, family_key(key))}
        entity = len(wanted & named) / len(wanted) if wanted else 0.0
        in_scope = bool(wanted & set(sentence.passage.entities))
        score = 0.45 * float(sim) + 0.4 * lexical + 0.15 * entity + (0.05 if in_scope else 0.0)
        if numeric and NUMBER_RE.search(text):
            score += 0.08
        score -= 0.01 * (sentence.passage.n - 1)  # slight trust in the retrieval order
        if len(text) < 15:
            score -= 0.1  # fragments and headings rarely answer anything
        scored.append(Scored(sentence, score, named))
    return sorted(scored, key=lambda s: -s.score)


def pick(scored: list[Scored], limit: int, max_chars: int, floor: float) -> list[Scored]:
    chosen: list[Scored] = []
    used = 0
    for item in scored:
        if item.score < floor or len(chosen) >= limit:
            break
        text = item.sentence.text
        if any(similar(text, c.sentence.text) for c in chosen):
            continue
        if used + len(text) > max_chars and chosen:
            continue
        chosen.append(item)
        used += len(text)
    return chosen


def render(items: list[Scored]) -> str:
    parts = []
    for item in items:
        s = item.sentence
        text = readable(s.text)
        if s.is_table_row and s.passage.context:
            text = f"{readable(s.passage.context)} → {text}"
        parts.append(f"{text} [{s.passage.n}]")
    return " ".join(parts)


def extractive_answer(searcher: HybridSearcher, question: str, retrieval: Retrieval,
                      names: dict[str, str]) -> tuple[str, dict[int, list[Sentence]]]:
    """The answer text with [n] markers, and the sentences quoted for each n."""
    scored = score_sentences(searcher, question, retrieval)
    if not scored:
        return "", {}
    best = scored[0].score
    if retrieval.per_entity and len(retrieval.per_entity) >= 2:
        blocks, chosen_all = [], []
        for key, numbers in retrieval.per_entity.items():
            family = {key, family_key(key)}
            own = [s for s in scored if s.sentence.passage.n in numbers and
                   (family & s.entities or family & set(s.sentence.passage.entities))]
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
        quotes.setdefault(item.sentence.passage.n, []).append(item.sentence)
    return text, quotes


