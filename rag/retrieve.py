"""Hybrid cross-lingual retrieval: dense + BM25, fused per language, interleaved.

Most evidence is in Chinese posts while most questions are English, and English chunks
outnumber Chinese ones, so one mixed ranking crowds Chinese evidence out. Each language
is ranked on its own (reciprocal rank fusion of the dense and lexical rankings) and the
two rankings are interleaved. The lexical query is widened with dictionary translations
(ingest/lexicon.py); chunks that name the question's models rank first.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ingest.entities import family_key
from ingest.index import Index
from ingest.tokenize import CJK_RE, tokenize
from rag.schema import Passage

RRF_K = 10
EXPANSION_WEIGHT = 0.5
ENTITY_BONUS = 1.0 / RRF_K  # as much as a first place in one ranking
COMPARE_STEMS = frozenset({"compar", "differ", "versus", "vs", "区别", "比较", "对比", "相比", "差异", "不同"})
COMPARE_RE = re.compile(
    r"\b(compare|comparison|versus|vs\.?|differ|difference)\b|对比|比较|区别|相比|和.*哪", re.IGNORECASE
)


@dataclass
class Retrieval:
    query: str
    passages: list[Passage]
    entities: list[str] = field(default_factory=list)  # gazetteer keys named in the query
    unknown: list[str] = field(default_factory=list)  # name-like words the corpus never mentions
    best_dense: float = 0.0
    best_lexical: float = 0.0
    per_entity: dict[str, list[int]] = field(default_factory=dict)  # entity -> passage numbers


def rank_of(scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a signal, best first, and every row's rank among them (-1: no signal).
    Arrays, not a dict: at 1M chunks a per-row dict was most of a query's time."""
    sub = scores[rows]
    keep = sub > 0
    ranked = rows[keep][np.argsort(-sub[keep], kind="stable")]
    rank = np.full(len(scores), -1, dtype=np.int64)
    rank[ranked] = np.arange(len(ranked))
    return ranked, rank


class HybridSearcher:
    def __init__(self, index: Index, embedder):
        self.index = index
        self.embedder = embedder
        self.lexicon = index.lexicon
        self.gazetteer = index.gazetteer
        self.languages = index.languages
        self._idf: dict[str, float] = {}
        self._subjects: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # sentence text -> vector, LRU
        self._vectors_lock = threading.Lock()

    # --- query analysis -------------------------------------------------------------------------
    def query_entities(self, text: str) -> list[str]:
        """Gazetteer keys named in the text, most specific first (vicuna13b before vicuna)."""
        return self.gazetteer.find(text)

    def translations(self, tokens: list[str]) -> dict[str, list[str]]:
        """Each token's translations into the other language (as index tokens)."""
        names = self.gazetteer.names
        out: dict[str, list[str]] = {t: [] for t in tokens}
        en = [t for t in tokens if not CJK_RE.match(t) and t not in names]
        en2zh, zh2en = self.lexicon.get("en2zh", {}), self.lexicon.get("zh2en", {})
        for i, t in enumerate(en):
            keys = [t] + ([f"{t} {en[i + 1]}"] if i + 1 < len(en) else [])
            for key in keys:
                for zh in en2zh.get(key, []):
                    out[t].extend(self.as_tokens(zh))
                    if " " in key:
                        out.setdefault(en[i + 1], []).extend(self.as_tokens(zh))
        for t in tokens:
            if CJK_RE.match(t):
                for key in zh2en.get(t, []):
                    out[t].extend(key.split())
        return {t: list(dict.fromkeys(alts)) for t, alts in out.items()}

    def as_tokens(self, word: str) -> list[str]:
        """A lexicon word as index tokens; words from the lexicon are index terms already,
        which spares English questions from loading the Chinese segmenter."""
        return [word] if word in self.index.bm25.vocab_dict else tokenize(word)

    def entity_tokens(self, query: str) -> set[str]:
        return {
            t for key in self.query_entities(query) for form in self.gazetteer.names[key][:1] for t in tokenize(form)
        } | set(self.query_entities(query))

    def weighted_terms(self, query: str) -> dict[str, float]:
        """Query tokens (weight 1) plus their translations into the other language (weight < 1)."""
        tokens = tokenize(query)
        weights: dict[str, float] = dict.fromkeys(tokens, 1.0)
        for alts in self.translations(tokens).values():
            for alt in alts:
                weights.setdefault(alt, EXPANSION_WEIGHT / max(1, len(alts)) * 2)
        return weights

    def concepts(self, query: str) -> list[tuple[set[str], float]]:
        """The question's content words other than model names, each with its translations and an
        IDF weight: a sentence covers a concept when it has any of the alternatives."""
        tokens = list(dict.fromkeys(tokenize(query)))
        # Model names are judged by the entity checks, and "compare" asks for nothing by itself.
        skip = self.entity_tokens(query) | {t for t in tokens if COMPARE_RE.fullmatch(t) or t in COMPARE_STEMS}
        groups = []
        for t, alts in self.translations(tokens).items():
            if t in skip:
                continue
            options = {t, *alts}
            groups.append((options, max(self.idf(o) for o in options)))
        return groups

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

    def encode_cached(self, texts: list[str], capacity: int = 50_000) -> np.ndarray:
        """Embed texts, reusing vectors of texts seen before: top passages recur across questions."""
        with self._vectors_lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            fresh = self.embedder.encode(missing)
            with self._vectors_lock:
                self._vectors.update(zip(missing, fresh))
                while len(self._vectors) > capacity:
                    self._vectors.popitem(last=False)
        with self._vectors_lock:
            for t in texts:
                if t in self._vectors:
                    self._vectors.move_to_end(t)
            return np.vstack([self._vectors[t] if t in self._vectors else self.embedder.encode([t])[0] for t in texts])

    def idf(self, term: str) -> float:
        if len(self._idf) > 200_000:  # a long-running server meets endless new words
            self._idf.clear()
        if term not in self._idf:
            vocab = self.index.bm25.vocab_dict
            df = int((self.index.bm25.get_scores([term]) > 0).sum()) if term in vocab else 0
            self._idf[term] = float(np.log(1 + len(self.index) / (df + 1)))
        return self._idf[term]

    def lexical_scores(self, query: str) -> np.ndarray:
        scores = np.zeros(len(self.index), dtype=np.float32)
        vocab = self.index.bm25.vocab_dict
        for term, weight in self.weighted_terms(query).items():
            if term in vocab:
                scores += weight * self.index.bm25.get_scores([term])
        return scores

    def dense_scores(self, query: str) -> np.ndarray:
        vector = self.embedder.encode([query]).astype(np.float32)
        n = len(self.index)
        found_scores, found_rows = self.index.faiss.search(vector, min(n, 1000))
        scores = np.zeros(n, dtype=np.float32)
        valid = found_rows[0] >= 0
        # Cosine similarity is shifted to stay positive so that "no signal" (0) stays distinct.
        scores[found_rows[0][valid]] = found_scores[0][valid] + 1.0
        return scores

    # --- ranking --------------------------------------------------------------------------------
    def fused_ranking(
        self, dense: np.ndarray, lexical: np.ndarray, rows: np.ndarray, entity_keys: Sequence[str], limit: int
    ) -> list[tuple[int, float]]:
        """Rows ranked by RRF of dense and lexical ranks, with a bonus for naming the entities."""
        dense_rows, dense_rank = rank_of(dense, rows)
        lex_rows, lex_rank = rank_of(lexical, rows)
        candidates = set(dense_rows[: limit * 20].tolist()) | set(lex_rows[: limit * 20].tolist())
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
        fused = []
        for row in candidates:
            score = 0.0
            if dense_rank[row] >= 0:
                score += 1.0 / (RRF_K + int(dense_rank[row]))
            if lex_rank[row] >= 0:
                score += 1.0 / (RRF_K + int(lex_rank[row]))
            score += ENTITY_BONUS * min(bonus_rows.get(row, 0), 3)
            fused.append((row, score))
        fused.sort(key=lambda x: -x[1])
        return fused[:limit]

    def interleaved(
        self, dense: np.ndarray, lexical: np.ndarray, rows: np.ndarray, entity_keys: Sequence[str], k: int
    ) -> list[tuple[int, float]]:
        """Rank Chinese and English chunks separately, then alternate, best list first."""
        per_language = []
        for lang in ("zh", "en"):
            lang_rows = rows[self.languages[rows] == lang]
            if len(lang_rows):
                per_language.append(self.fused_ranking(dense, lexical, lang_rows, entity_keys, k))
        per_language = [r for r in per_language if r]
        per_language.sort(key=lambda ranking: -ranking[0][1])
        merged: list[tuple[int, float]] = []
        for i in range(k):
            for ranking in per_language:
                if i < len(ranking):
                    merged.append(ranking[i])
        return merged[:k]

    def search(self, query: str, k: int = 5, entity_query: str | None = None) -> Retrieval:
        entities = self.query_entities(entity_query or query)
        unknown = self.gazetteer.unknown(entity_query or query)
        dense = self.dense_scores(query)
        lexical = self.lexical_scores(query)
        all_rows = np.arange(len(self.index))
        compare = len(entities) >= 2 and bool(COMPARE_RE.search(query))
        per_entity: dict[str, list[int]] = {}
        if compare:
            # Each side of a comparison gets its own evidence, then the sides alternate.
            lists = []
            for key in entities[:4]:
                rows = self.index.rows_mentioning([key, family_key(key)])
                lists.append((key, self.interleaved(dense, lexical, rows, [key], k) if len(rows) else []))
            ranked: list[tuple[int, float]] = []
            seen: set[int] = set()
            for i in range(k):
                for _key, ranking in lists:
                    if i < len(ranking) and ranking[i][0] not in seen:
                        seen.add(ranking[i][0])
                        ranked.append(ranking[i])
            ranked = ranked[:k]
            for key, ranking in lists:
                rows_for = {row for row, _ in ranking}
                per_entity[key] = [n for n, (row, _) in enumerate(ranked, 1) if row in rows_for]
        else:
            ranked = self.interleaved(dense, lexical, all_rows, entities, k)
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
                entities=r["entities"],
            )
            for n, (r, (_, score)) in enumerate(zip(records, ranked), 1)
        ]
        return Retrieval(
            query=query,
            passages=passages,
            entities=entities,
            unknown=unknown,
            best_dense=float(dense.max() - 1.0) if len(dense) else 0.0,
            best_lexical=float(lexical.max()) if len(lexical) else 0.0,
            per_entity=per_entity,
        )


def __getattr__(name: str):
    # The LangChain adapter lives apart so that `ask` never imports LangChain's retriever stack.
    if name == "AtlasRetriever":
        from rag.retriever import AtlasRetriever

        return AtlasRetriever
    raise AttributeError(name)
