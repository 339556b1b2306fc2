"""The store protocol on the default FAISS + BM25 store: top-k lists equal exact search over the
rows the filters allow, ties broken by row, and filters pushed into the store (not applied to a
global top k). Real FAISS and bm25s on small random data (no embedder)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.ann import AnnConfig
from ingest.entities import Gazetteer
from ingest.errors import MissingDependency
from ingest.index import Index, write_index
from ingest.store import ChunkStore, Hits, top_k
from ingest.store.config import StoreConfig
from tests.unit.test_ann import fake_corpus

TERMS = {"w1": 1.0, "w7": 0.5, "训练": 2.0, "absent": 3.0}


def built(tmp_path: Path, n: int = 400, ann: AnnConfig | None = None) -> tuple[Index, np.ndarray, list]:
    docs, chunks, entities, vectors, tokens = fake_corpus(n)
    write_index(tmp_path, docs, chunks, entities, vectors, tokens, Gazetteer({}), {}, ann=ann)
    return Index(tmp_path), vectors, entities


def allowed_rows(index: Index, entities: list, language: str | None, models: list[str] | None) -> np.ndarray:
    rows = np.arange(len(index))
    if language is not None:
        rows = rows[index.languages[rows] == language]
    if models is not None:
        rows = np.array([r for r in rows if set(entities[r]) & set(models)], dtype=np.int64)
    return rows


def exact_dense(vectors: np.ndarray, query: np.ndarray, rows: np.ndarray, k: int) -> list[int]:
    scores = vectors[rows] @ query
    order = np.lexsort((rows, -scores))[:k]
    return rows[order].tolist()


FILTERS = [(None, None), ("zh", None), ("en", None), (None, ["model3"]), ("zh", ["model1", "model4"]), (None, [])]


def test_the_faiss_store_follows_the_protocol(tmp_path: Path) -> None:
    index, _, _ = built(tmp_path)
    assert isinstance(index.store, ChunkStore) and index.store.kind == "faiss"
    assert index.manifest["store"] == {"kind": "faiss"}


@pytest.mark.parametrize(("language", "models"), FILTERS)
def test_dense_top_k_is_exact_search_over_the_allowed_rows(tmp_path: Path, language, models) -> None:
    index, vectors, entities = built(tmp_path)
    rows = allowed_rows(index, entities, language, models)
    for query in vectors[:5] * 0.9 + vectors[5:10] * 0.1:
        hits = index.store.search_dense(query[None], 30, language=language, models=models)[0]
        assert hits.rows.tolist() == exact_dense(vectors, query, rows, 30)
        assert np.allclose(hits.scores, vectors[hits.rows] @ query, atol=1e-5)
    if language is not None or models is not None:
        # The filter is pushed into the store: it finds 30 allowed rows however few of them the
        # unfiltered top 30 holds.
        assert len(rows) >= 30 or models == [] and len(hits) == 0
        unfiltered = index.store.search_dense(vectors[:1], 30)[0]
        assert set(unfiltered.rows.tolist()) - set(rows.tolist())


@pytest.mark.parametrize(("language", "models"), FILTERS)
def test_lexical_top_k_is_the_full_bm25_ranking_of_the_allowed_rows(tmp_path: Path, language, models) -> None:
    index, _, entities = built(tmp_path)
    rows = allowed_rows(index, entities, language, models)
    full = np.zeros(len(index), dtype=np.float32)
    for term, weight in TERMS.items():
        if term in index.bm25.vocab_dict:
            full += weight * index.bm25.get_scores([term])
    sub = full[rows]
    keep = sub > 0
    expected = rows[keep][np.argsort(-sub[keep], kind="stable")][:25]  # how retrieval always ranked
    hits = index.store.search_lexical(TERMS, 25, language=language, models=models)
    assert hits.rows.tolist() == expected.tolist()
    assert np.array_equal(hits.scores, full[expected])
    assert (hits.scores > 0).all()


def test_filtered_search_over_an_approximate_index_is_exact_for_small_filters(tmp_path: Path) -> None:
    index, vectors, entities = built(tmp_path, n=2_000, ann=AnnConfig(exact_max=500, nprobe=1, train_size=2_000))
    assert index.ann.kind == "ivf-sq8"
    rows = allowed_rows(index, entities, "zh", ["model2"])
    for query in vectors[:5]:
        hits = index.store.search_dense(query[None], 20, language="zh", models=["model2"])[0]
        assert hits.rows.tolist() == exact_dense(vectors, query, rows, 20)


def test_top_k_breaks_ties_by_row_and_drops_rows_without_signal() -> None:
    rows = np.array([9, 2, 5, 7, 1, 3], dtype=np.int64)
    scores = np.array([1.0, 2.0, 1.0, 0.0, 1.0, 3.0], dtype=np.float32)
    hits = top_k(rows, scores, 4)
    assert hits.rows.tolist() == [3, 2, 1, 5] and hits.scores.tolist() == [3.0, 2.0, 1.0, 1.0]
    assert top_k(rows, scores, 10).rows.tolist() == [3, 2, 1, 5, 9]  # row 7 has no signal
    assert len(Hits.empty()) == 0


def test_the_index_reports_chunk_rows_and_idf_for_stores_keyed_by_id(tmp_path: Path) -> None:
    index, _, _ = built(tmp_path)
    ids = [r["chunk_id"] for r in index.chunks([3, 17, 42])]
    assert index.chunk_rows([*ids, "no-such-chunk"]) == dict(zip(ids, [3, 17, 42]))
    tokens = fake_corpus(400)[4]
    for term in ("训练", "w1"):
        df = sum(term in t for t in tokens)
        assert df and index.term_idf(term) == pytest.approx(np.log(1 + (400 - df + 0.5) / (df + 0.5)), rel=1e-6)
    assert index.term_idf("absent") == 0.0


def test_a_missing_milvus_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.store.milvus import client_for

    monkeypatch.setitem(sys.modules, "pymilvus", None)  # what `import pymilvus` sees when not installed
    with pytest.raises(MissingDependency) as caught:
        client_for(StoreConfig(kind="milvus", uri="/tmp/x.db"))
    assert "pymilvus" in str(caught.value) and "pip install 'llm-atlas[milvus]'" in str(caught.value)


def test_the_default_install_never_imports_pymilvus(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys; from ingest.index import Index; import rag.retrieve, rag.service, server.cli; "
        "print('pymilvus' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_dropped_index_is_freed_at_once(tmp_path: Path) -> None:
    """No reference cycle between the Index and its store: a server that switched versions lets go
    of the old one (its lease) as soon as the last request on it ends, not at some later GC."""
    import gc
    import weakref

    index, vectors, _ = built(tmp_path, n=50)
    index.store.search_dense(vectors[:1], 5)
    ref = weakref.ref(index)
    gc.disable()
    try:
        del index
        assert ref() is None
    finally:
        gc.enable()
