"""Hybrid cross-lingual retrieval: dense + BM25, fused into one ranking.

Most evidence is in Chinese posts while most questions are English. Dense similarity is
cross-lingual (USE-m3) and the lexical query carries dictionary translations (the analysed
`Query`'s terms), so one ranking by reciprocal rank fusion serves both languages; a bounded rule
lets a language that missed the top k in when its best passage is competitive (the share is a
fitted weight, rag/weights.py). Chunks that are about the question's models rank higher; a
comparison gets evidence for each side.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ingest.embed import Embedder
from ingest.entities import family_key
from ingest.index import Index
from ingest.store import ChunkStore, Hits
from ingest.tokenize import TermSet, term_set
from rag.query import Query, QueryAnalyzer, concept_share
from rag.schema import Passage
from rag.weights import RetrievalWeights, load_weights


@dataclass
class Retrieval:
    query: str  # the text searched
    passages: list[Passage]
    entities: list[str] = field(default_factory=list)  # gazetteer keys named in the query
    best_dense: float = 0.0
    best_lexical: float = 0.0
    per_entity: dict[str, list[int]] = field(default_factory=dict)  # entity -> passage numbers


DIGIT_RE = re.compile(r"\d+(?:\.\d+)?")
# How deep each list from the store goes. Ranks below are not seen by the fusion: RRF gives rank
# 1000 a weight of 1/1005 against 1/5 for the first, and the candidates come from the top 100.
DENSE_DEPTH = 1000
LEXICAL_DEPTH = 1000


@dataclass(frozen=True)
class RankedList:
    """One list from the store, best first, with each row's rank in it."""

    rows: np.ndarray
    rank: dict[int, int]
    best: float  # the top score (0 when empty), shifted as ranked

    @classmethod
    def of(cls, hits: Hits, shift: float = 0.0) -> RankedList:
        scores = hits.scores + np.float32(shift) if shift else hits.scores
        keep = scores > 0  # no signal: not ranked
        rows, scores = hits.rows[keep], scores[keep]
        order = np.lexsort((rows, -scores))  # ties by ascending row, whatever order the store used
        rows = rows[order]
        return cls(
            rows, {int(r): i for i, r in enumerate(rows.tolist())}, float(scores[order[0]]) if len(rows) else 0.0
        )


class Candidates:
    """The dense and lexical lists of one question, per filter, fetched from the store once."""

    def __init__(self, store: ChunkStore, vector: np.ndarray, terms: dict[str, float]):
        self.store = store
        self.vector = vector
        self.terms = terms
        self._lists: dict[tuple[str | None, tuple[str, ...] | None], tuple[RankedList, RankedList]] = {}

    def get(self, language: str | None = None, models: Sequence[str] | None = None) -> tuple[RankedList, RankedList]:
        key = (language, tuple(models) if models is not None else None)
        if key not in self._lists:
            dense = self.store.search_dense(self.vector, DENSE_DEPTH, language=language, models=models)[0]
            lexical = self.store.search_lexical(self.terms, LEXICAL_DEPTH, language=language, models=models)
            # Cosine similarity is shifted to stay positive so that "no signal" (0) stays distinct.
            self._lists[key] = (RankedList.of(dense, shift=1.0), RankedList.of(lexical))
        return self._lists[key]


class CachedEncoder:
    """Embeds texts, reusing vectors of texts seen before: top passages recur across questions."""

    def __init__(self, embedder: Embedder, capacity: int = 50_000):
        self.embedder = embedder
        self.capacity = capacity
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # text -> vector, LRU
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            fresh = self.embedder.encode(missing)
            with self._lock:
                self._vectors.update(zip(missing, fresh))
                while len(self._vectors) > self.capacity:
                    self._vectors.popitem(last=False)
        with self._lock:
            for t in texts:
                if t in self._vectors:
                    self._vectors.move_to_end(t)
            return np.vstack([self._vectors[t] if t in self._vectors else self.embedder.encode([t])[0] for t in texts])


class HybridSearcher:
    def __init__(self, index: Index, embedder: Embedder, weights: RetrievalWeights | None = None):
        self.index = index
        self.embedder = embedder
        self.encoder = CachedEncoder(embedder)
        self.gazetteer = index.gazetteer
        self.weights = weights or load_weights().retrieval
        self._subjects: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}
        self._terms: dict[int, TermSet] = {}

    @cached_property
    def analyzer(self) -> QueryAnalyzer:
        """Question analysis over this index version (its names, the fact store's aliases, term counts)."""
        return QueryAnalyzer(self.index, self.index.facts)

    def subject_entities(self, title: str, section: tuple[str, ...]) -> frozenset[str]:
        """Models named in a title and section path (with their families); many chunks share one
        heading, so the answer is kept rather than recomputed for every candidate of every query."""
        key = (title, section)
        found = self._subjects.get(key)
        if found is None:
            names = self.gazetteer.find(f"{title} {' '.join(section)}")
            found = frozenset(names) | {family_key(k) for k in names}
            if len(self._subjects) > 100_000:
                self._subjects.clear()
            self._subjects[key] = found
        return found

    # --- ranking --------------------------------------------------------------------------------
    def fused_ranking(
        self, lists: tuple[RankedList, RankedList], entity_keys: Sequence[str], limit: int, depth: int | None = None
    ) -> list[tuple[int, float]]:
        """The first `limit` rows by RRF of dense and lexical ranks, with a bonus for naming the
        entities; candidates come from the first 20 x `depth` (default `limit`) rows of each list."""
        dense, lexical = lists
        depth = (depth or limit) * 20
        candidates = set(dense.rows[:depth].tolist()) | set(lexical.rows[:depth].tolist())
        bonus_rows: dict[int, int] = {}
        if entity_keys:
            wanted = set(entity_keys) | {family_key(k) for k in entity_keys}
            for rec in self.index.chunks(sorted(candidates)):
                hits = len(wanted & set(rec["entities"]))
                # A model in the title or section is the passage's subject, not a passing mention.
                if wanted & self.subject_entities(rec["title"], tuple(rec["section"])):
                    hits += 1
                if hits:
                    bonus_rows[rec["row"]] = hits
        rrf_k, bonus = self.weights.rrf_k, self.weights.entity_bonus
        fused = []
        for row in candidates:
            score = 0.0
            if row in dense.rank:
                score += 1.0 / (rrf_k + dense.rank[row])
            if row in lexical.rank:
                score += 1.0 / (rrf_k + lexical.rank[row])
            score += bonus * min(bonus_rows.get(row, 0), 3)
            fused.append((row, score))
        fused.sort(key=lambda x: -x[1])
        return fused[:limit]

    def terms_of(self, row: int, text: str) -> TermSet:
        """A chunk's terms for the reranker; kept, since the same chunks come up question after question."""
        found = self._terms.get(row)
        if found is None:
            if len(self._terms) > 20_000:
                self._terms.clear()
            found = self._terms[row] = TermSet(text)
        return found

    def passage_features(
        self, query: Query, rec: dict, position: int, score: float, top: float, lists: tuple[RankedList, RankedList]
    ) -> dict[str, float]:
        """What the reranker knows of one fused candidate (the names are rag.weights.PASSAGE_FEATURES)."""
        terms = self.terms_of(rec["row"], rec["text"])
        heading = term_set(f"{rec['title']} {' '.join(rec['section'])}")
        wanted = query.families
        named = set(rec["entities"]) | {family_key(e) for e in rec["entities"]}
        subjects = self.subject_entities(rec["title"], tuple(rec["section"]))
        rarest = query.by_rarity[:3]
        dense_rank, lexical_rank = (ranked.rank.get(rec["row"]) for ranked in lists)
        lines = rec["text"].splitlines() or [rec["text"]]
        return {
            "fused": score / top if top else 0.0,
            "position": 1 / math.log2(position + 2),
            "dense": 1 / math.log2(dense_rank + 2) if dense_rank is not None else 0.0,
            "lexical": 1 / math.log2(lexical_rank + 2) if lexical_rank is not None else 0.0,
            "coverage": concept_share(terms, query.concepts),
            "heading_coverage": concept_share(heading, query.concepts) if query.concepts else 0.0,
            "rarest": float(bool(rarest) and terms.any_of(set(rarest[0][0]))),
            "rare_three": sum(terms.any_of(set(o)) for o, _ in rarest) / len(rarest) if rarest else 0.0,
            "entity": len(wanted & named) / len(wanted) if wanted else 0.0,
            "subject": float(bool(wanted & subjects)),
            "other_subject": float(bool(wanted) and bool(subjects) and not wanted & subjects),
            "same_language": float(rec["language"] == query.question_lang),
            "numbers": float(query.numeric) * min(1.0, len(DIGIT_RE.findall(rec["text"])) / 20),
            "table": sum(line.count("|") >= 2 for line in lines) / len(lines),
        }

    def reranked(
        self,
        query: Query,
        pool: list[tuple[int, float]],
        lists: tuple[RankedList, RankedList],
        record: list[list[tuple[dict[str, float], str]]] | None = None,
    ) -> list[tuple[int, float]]:
        """The fused pool ordered by the fitted reranker (fused order without one); `record` gets each
        candidate's features and text, for fitting."""
        model = self.weights.rerank
        if not pool or (model is None and record is None):
            return pool
        records = self.index.chunks([row for row, _ in pool])
        top = pool[0][1]
        features = [
            self.passage_features(query, rec, i, score, top, lists)
            for i, (rec, (_, score)) in enumerate(zip(records, pool))
        ]
        if record is not None:
            record.append([(f, rec["text"]) for f, rec in zip(features, records)])
        if model is None:
            return pool
        logits = [model.logit(f) for f in features]
        order = sorted(range(len(pool)), key=lambda i: -logits[i])
        return [pool[i] for i in order]

    def ranked(
        self,
        query: Query,
        candidates: Candidates,
        models: Sequence[str] | None,
        k: int,
        record: list | None = None,
    ) -> list[tuple[int, float]]:
        """One ranking (of the chunks naming `models` when given): fused, its first passages reranked;
        a language the top k lacks gets its best passage in (in place of the k-th) when that passage's
        fused score is at least `admit_ratio` of the k-th's."""
        entity_keys = models[:1] if models else query.models
        lists = candidates.get(None, models)
        pool = self.fused_ranking(lists, entity_keys, max(k, self.weights.rerank_pool), depth=k)
        ranking = self.reranked(query, pool, lists, record)[:k]
        if len(ranking) < k:
            return ranking
        present = set(self.index.language_of([row for row, _ in ranking]))
        for lang in ("zh", "en"):
            if lang in present:
                continue
            best = self.fused_ranking(candidates.get(lang, models), entity_keys, 1)
            if best and best[0][1] >= self.weights.admit_ratio * ranking[-1][1]:
                ranking[-1] = best[0]
                present.add(lang)
        return ranking

    def search(self, query: Query | str, k: int = 5, record: list | None = None) -> Retrieval:
        """The k passages for the question; `record` (for fitting the reranker) gets each ranking's
        candidates, their features and texts."""
        if isinstance(query, str):
            query = self.analyzer.analyse(query)
        entities = query.models
        vector = self.encoder.encode([query.search_text]).astype(np.float32)
        candidates = Candidates(self.index.store, vector, query.terms)
        dense, lexical = candidates.get()
        per_entity: dict[str, list[int]] = {}
        if query.compare:
            # Each side of a comparison gets its own evidence, then the sides alternate.
            lists = []
            for key in entities[:4]:
                lists.append((key, self.ranked(query, candidates, [key, family_key(key)], k, record)))
            ranked: list[tuple[int, float]] = []
            seen: set[int] = set()
            for i in range(k):
                for _key, ranking in lists:
                    if i < len(ranking) and ranking[i][0] not in seen:
                        seen.add(ranking[i][0])
                        ranked.append(ranking[i])
            ranked = ranked[:k]
            if len(ranked) < k:  # the compared models have few passages of their own: fill from all
                ranked += [item for item in self.ranked(query, candidates, None, k, record) if item[0] not in seen]
                ranked = ranked[:k]
            for key, ranking in lists:
                rows_for = {row for row, _ in ranking}
                per_entity[key] = [n for n, (row, _) in enumerate(ranked, 1) if row in rows_for]
        else:
            ranked = self.ranked(query, candidates, None, k, record)
        records = self.index.chunks([row for row, _ in ranked])
        passages = [
            Passage(
                n=n,
                chunk_id=r["chunk_id"],
                doc_id=r["doc_id"],
                title=r["title"],
                url=r["url"],
                section=r["section"],
                language=r["language"],
                start=r["start"],
                end=r["end"],
                text=r["text"],
                context=r["context"],
                score=float(score),
                entities=query.entities_of(r["entities"], r["title"], r["text"]),
            )
            for n, (r, (_, score)) in enumerate(zip(records, ranked), 1)
        ]
        return Retrieval(
            query=query.search_text,
            passages=passages,
            entities=entities,
            best_dense=float(np.float32(max(dense.best, 0.0)) - 1.0) if len(self.index) else 0.0,
            best_lexical=lexical.best,
            per_entity=per_entity,
        )


def __getattr__(name: str):
    # The LangChain adapter lives apart so that `ask` never imports LangChain's retriever stack.
    if name == "AtlasRetriever":
        from rag.retriever import AtlasRetriever

        return AtlasRetriever
    raise AttributeError(name)
