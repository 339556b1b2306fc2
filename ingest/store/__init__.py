"""Where chunks are searched: a small protocol and the stores behind it.

    ChunkStore      search_dense / search_lexical: the top k rows and scores, with the language and
                    model filters applied inside the store (so a model's passages get candidates of
                    their own at any size, not what is left of a global top k)
    WritableStore   a ChunkStore that is updated in place: upsert / delete by chunk id, and what it
                    holds (chunk id -> content hash), so a re-ingest writes only what changed

Two implementations (models: txtai's ANN backends, LangChain's VectorStore):

    local.LocalStore    FAISS + BM25 arrays + entity postings inside the index version folder (the
                        default). A version is immutable: each ingest writes a new one (IndexWriter).
    milvus.MilvusStore  a Milvus collection (pymilvus; a milvus-lite file or a server URI), updated
                        by chunk id. Needs the `milvus` extra.

Rows: every hit names the chunk's row in the index's SQLite catalog (ingest/index.py), which each
store shares, so retrieval fuses and tie-breaks rows the same way whatever the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

STORE_KINDS = ("faiss", "milvus")


class StoreUnavailable(RuntimeError):
    """The store cannot be reached, read or written; the message says why (and what to do)."""


@dataclass(frozen=True)
class Hits:
    """One ranked list: catalog rows, best first, and their scores (inner product or BM25)."""

    rows: np.ndarray  # int64
    scores: np.ndarray  # float32

    @classmethod
    def empty(cls) -> Hits:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.rows)


@runtime_checkable
class ChunkStore(Protocol):
    kind: str

    def search_dense(
        self, vectors: np.ndarray, k: int, language: str | None = None, models: Sequence[str] | None = None
    ) -> list[Hits]:
        """The k chunks nearest (inner product) to each query vector, among those in `language` and
        naming any of `models` (gazetteer keys) when given."""
        ...

    def search_lexical(
        self, terms: Mapping[str, float], k: int, language: str | None = None, models: Sequence[str] | None = None
    ) -> Hits:
        """The k chunks with the highest BM25 score (each term's score times its weight; > 0 only)."""
        ...

    def close(self) -> None: ...


@dataclass
class StoredChunk:
    """What a writable store keeps of one chunk: enough to search, filter and show it."""

    chunk_id: str
    doc_id: str
    language: str
    models: list[str]  # gazetteer keys the chunk names, with their families
    vector: np.ndarray
    term_counts: dict[str, float]  # BM25 tokens of the embedded text -> count
    length: int  # tokens, with repeats (BM25's document length)
    title: str
    url: str
    section: list[str]
    start: int
    end: int
    text: str
    sha: str = field(default="")  # content_sha of all the above


@runtime_checkable
class WritableStore(ChunkStore, Protocol):
    def upsert(self, chunks: Sequence[StoredChunk]) -> int: ...

    def delete(self, chunk_ids: Sequence[str]) -> int: ...

    def stored(self) -> dict[str, str]:
        """chunk_id -> content hash of every chunk the store holds."""
        ...


def content_sha(*parts: object) -> str:
    """Hash of everything a store writes for a chunk: equal hashes, nothing to rewrite."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> Hits:
    """The k best-scoring rows with a positive score, ties by ascending row (a stable sort of
    ascending rows, as the retriever has always ranked)."""
    keep = scores > 0
    rows, scores = rows[keep], scores[keep]
    if len(rows) > k:
        kth = np.partition(-scores, k - 1)[k - 1]
        cut = -scores <= kth  # every row tied with the k-th stays until the sort below
        rows, scores = rows[cut], scores[cut]
    order = np.lexsort((rows, -scores))[:k]
    return Hits(rows[order].astype(np.int64), scores[order].astype(np.float32))
