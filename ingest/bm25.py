"""A BM25 index built in batches and saved in bm25s's own format (bm25s.BM25.load reads it).

bm25s.BM25.index wants every document's token list at once: at a million chunks that is
~60M Python strings (several GB). Here each batch is folded into a compact term-frequency
matrix (int32 term ids, float32 counts, one row per document) and the BM25 weights are computed
once at the end, with the same formulas and float order as bm25s's "lucene" method, so the
saved arrays equal what bm25s would have written for the same tokens.
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

EMPTY = ""  # the token a document with no tokens gets, as bm25s does


class BM25Builder:
    def __init__(self, k1: float = 1.2, b: float = 0.3):
        self.k1 = k1
        self.b = b
        self.vocab: dict[str, int] = {}
        self._terms = array("i")  # term id per (document, distinct term)
        self._tfs = array("f")  # its count in the document
        self._distinct = array("i")  # distinct terms per document
        self._lengths = array("q")  # tokens per document (with repeats)
        self._postings: tuple[int, np.ndarray, np.ndarray] | None = None  # sorted (term, document) pairs
        self._offsets: np.ndarray | None = None  # each document's first entry in _terms

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, documents: Iterable[list[str]]) -> None:
        vocab = self.vocab
        for tokens in documents:
            counts = Counter(tokens or [EMPTY])
            self._terms.extend(vocab.setdefault(t, len(vocab)) for t in counts)
            self._tfs.extend(counts.values())
            self._distinct.append(len(counts))
            self._lengths.append(len(tokens) or 1)

    def average_length(self) -> float:
        """Mean tokens per document, as BM25's length normalisation uses it."""
        return float(np.frombuffer(self._lengths, dtype=np.int64).mean()) if len(self._lengths) else 1.0

    def document_terms(self, docs: Sequence[int]) -> list[tuple[dict[str, float], int]]:
        """Each document's tokens with their counts, and its length (what a store computes BM25 from)."""
        terms = np.frombuffer(self._terms, dtype=np.int32)
        tfs = np.frombuffer(self._tfs, dtype=np.float32)
        lengths = np.frombuffer(self._lengths, dtype=np.int64)
        if self._offsets is None or len(self._offsets) != len(self._distinct) + 1:
            self._offsets = np.zeros(len(self._distinct) + 1, dtype=np.int64)
            np.cumsum(np.frombuffer(self._distinct, dtype=np.int32), out=self._offsets[1:])
        names = list(self.vocab)  # ids are insertion order
        out = []
        for doc in docs:
            lo, hi = self._offsets[doc], self._offsets[doc + 1]
            counts = {names[t]: float(tf) for t, tf in zip(terms[lo:hi].tolist(), tfs[lo:hi].tolist())}
            counts.pop(EMPTY, None)
            out.append((counts, int(lengths[doc])))
        return out

    def vocabulary(self) -> set[str]:
        """Every token seen (the empty placeholder excluded)."""
        return set(self.vocab) - {EMPTY}

    def documents_with(self, term: str) -> set[int]:
        """The documents (chunks) holding a token; the first call sorts the postings once."""
        if self._postings is None or self._postings[0] != len(self._terms):
            terms = np.frombuffer(self._terms, dtype=np.int32)
            order = np.argsort(terms, kind="stable")
            docs = np.repeat(np.arange(len(self._distinct)), np.frombuffer(self._distinct, dtype=np.int32))
            self._postings = (len(self._terms), terms[order], docs[order])
        _, terms, docs = self._postings
        term_id = self.vocab.get(term)
        if term_id is None:
            return set()
        lo, hi = np.searchsorted(terms, [term_id, term_id + 1])
        return set(docs[lo:hi].tolist())

    def document_frequencies(self) -> dict[str, int]:
        """Token -> the number of documents (chunks) holding it."""
        df = np.bincount(np.frombuffer(self._terms, dtype=np.int32), minlength=len(self.vocab))
        return {t: int(df[i]) for t, i in self.vocab.items() if t != EMPTY}

    def matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(data, indices, indptr): a CSC matrix documents x terms of BM25 weights, as bm25s stores it."""
        terms = np.frombuffer(self._terms, dtype=np.int32)
        n_docs, n_vocab = len(self._lengths), len(self.vocab)
        lengths = np.frombuffer(self._lengths, dtype=np.int64).astype(np.float64)
        df = np.bincount(terms, minlength=n_vocab)
        # bm25s: idf = log(1 + (N - df + .5) / (df + .5)) in float64, kept as float32.
        idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg_len = lengths.sum() / n_docs if n_docs else 1.0
        per_entry_len = np.repeat(lengths, np.frombuffer(self._distinct, dtype=np.int32))
        tf = np.frombuffer(self._tfs, dtype=np.float32)
        tfc = tf / (self.k1 * ((1 - self.b) + self.b * per_entry_len / avg_len) + tf)
        del per_entry_len
        weights = (idf[terms] * tfc).astype(np.float32)
        del tfc
        docs = np.repeat(np.arange(n_docs, dtype=np.int32), np.frombuffer(self._distinct, dtype=np.int32))
        # Entries come document by document; a stable sort by term keeps documents ascending per term.
        order = np.argsort(terms, kind="stable")
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        return weights[order], docs[order], indptr

    def save(self, folder: Path) -> None:
        from bm25s import __version__ as bm25s_version

        folder.mkdir(parents=True, exist_ok=True)
        if EMPTY not in self.vocab:  # bm25s always has the empty token; here it is a real, empty column
            self.vocab[EMPTY] = len(self.vocab)
        data, indices, indptr = self.matrix()
        np.save(folder / "data.csc.index.npy", data, allow_pickle=False)
        np.save(folder / "indices.csc.index.npy", indices, allow_pickle=False)
        np.save(folder / "indptr.csc.index.npy", indptr, allow_pickle=False)
        (folder / "vocab.index.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        params = {
            "k1": self.k1,
            "b": self.b,
            "delta": 0.5,
            "method": "lucene",
            "idf_method": "lucene",
            "dtype": "float32",
            "int_dtype": "int32",
            "num_docs": len(self._lengths),
            "version": bm25s_version,
            "backend": "numpy",
        }
        (folder / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")
