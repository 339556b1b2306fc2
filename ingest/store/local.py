"""The default store: FAISS vectors, BM25 arrays (bm25s) and entity postings of one index version.

Filters become row sets: the language from the per-row language array, models from the entity
postings. A filtered dense search over the exact (flat) index passes the rows to FAISS as an
ID selector, which scores them exactly as the unfiltered search does; over an approximate index
a small filter (a model's chunks) is scored exactly from the memory-mapped vectors, a large one
(a language) through the selector. Lexical scores are computed over all rows, as bm25s does, and
cut to the top k here; the caller never sees an N-long array.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ingest.ann import AnnSpec
from ingest.store import Hits, top_k

# Up to this many allowed rows, a filtered search over an approximate index is exact (a model's
# chunks: ~100k of a million at most for a popular family, ~50 ms from the memmap).
EXACT_FILTER_MAX = 50_000


class LocalStore:
    kind = "faiss"

    def __init__(
        self,
        vector_index: Any,
        spec: AnnSpec,
        bm25: Any,
        languages: np.ndarray,
        rows_naming: Callable[[Sequence[str]], np.ndarray],
        vectors: Callable[[], np.ndarray],
        damaged: Callable[[BaseException], Exception],
    ):
        self.vector_index = vector_index
        self.spec = spec
        self.bm25 = bm25
        self.languages = languages
        self._rows_naming = rows_naming
        self._vectors = vectors
        self._damaged = damaged

    def __len__(self) -> int:
        return len(self.languages)

    def close(self) -> None:
        pass  # the files belong to the index version; its lease is the Index's

    # --- filters --------------------------------------------------------------------------------
    def allowed(self, language: str | None, models: Sequence[str] | None) -> np.ndarray | None:
        """Ascending rows passing the filters; None: every row."""
        rows = None
        if models is not None:
            rows = self._rows_naming(list(models)) if models else np.zeros(0, dtype=np.int64)
        if language is not None:
            rows = (
                np.flatnonzero(self.languages == language) if rows is None else rows[self.languages[rows] == language]
            )
        return None if rows is None else rows.astype(np.int64)

    # --- dense ----------------------------------------------------------------------------------
    def search_dense(
        self, vectors: np.ndarray, k: int, language: str | None = None, models: Sequence[str] | None = None
    ) -> list[Hits]:
        queries = np.ascontiguousarray(vectors, dtype=np.float32)
        allowed = self.allowed(language, models)
        n = len(self) if allowed is None else len(allowed)
        if n == 0 or k <= 0:
            return [Hits.empty() for _ in queries]
        k = min(k, n)
        if allowed is not None and self.spec.kind != "flat" and n <= EXACT_FILTER_MAX:
            return self._exact(queries, allowed, k)
        scores, rows = self.vector_index.search(queries, k, params=self._params(allowed))
        if not np.isfinite(scores[rows >= 0]).all():  # damaged vectors (NaN/inf) would top every query
            raise self._damaged(ValueError("the vector index holds non-finite vectors"))
        return [Hits(r[r >= 0].astype(np.int64), s[r >= 0]) for s, r in zip(scores, rows)]

    def _params(self, allowed: np.ndarray | None) -> Any:
        """Search parameters carrying the filter (and, since they replace the index's own, the
        nprobe / efSearch set at load)."""
        if allowed is None:
            return None
        import faiss

        selector = faiss.IDSelectorBatch(len(allowed), faiss.swig_ptr(allowed))
        if self.spec.kind == "ivf-sq8":
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self.spec.nprobe or 1)
        elif self.spec.kind == "hnsw-sq8":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=self.spec.ef_search or 512)
        else:
            params = faiss.SearchParameters(sel=selector)
        params._keep = (selector, allowed)  # the selector points into `allowed`: keep both alive
        return params

    def _exact(self, queries: np.ndarray, allowed: np.ndarray, k: int) -> list[Hits]:
        try:
            vectors = np.asarray(self._vectors()[allowed], dtype=np.float32)
        except (OSError, ValueError) as exc:
            raise self._damaged(exc) from exc
        out = []
        for query in queries:
            scores = vectors @ query
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.lexsort((allowed[top], -scores[top]))]
            out.append(Hits(allowed[top], scores[top].astype(np.float32)))
        return out

    # --- lexical --------------------------------------------------------------------------------
    def scores(self, terms: Mapping[str, float]) -> np.ndarray:
        """Every row's BM25 score for the weighted terms (the store's own working array)."""
        scores = np.zeros(len(self), dtype=np.float32)
        for term, weight in terms.items():
            if term in self.bm25.vocab_dict:
                scores += weight * self.bm25.get_scores([term])
        return scores

    def search_lexical(
        self, terms: Mapping[str, float], k: int, language: str | None = None, models: Sequence[str] | None = None
    ) -> Hits:
        allowed = self.allowed(language, models)
        if (allowed is not None and not len(allowed)) or k <= 0:
            return Hits.empty()
        scores = self.scores(terms)
        rows = np.arange(len(self), dtype=np.int64) if allowed is None else allowed
        return top_k(rows, scores[rows], k)
