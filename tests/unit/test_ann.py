"""The index at scale: vector index chosen by size, streamed writing, BM25 built in batches.
Real FAISS and bm25s on small random data (no embedder)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ingest.ann import AnnConfig, AnnSpec, build, choose, configure, nlist_for
from ingest.bm25 import BM25Builder
from ingest.entities import Gazetteer
from ingest.index import Index, IndexWriter, current_version, write_index
from ingest.schema import Chunk, Document

WORDS = [f"w{i}" for i in range(300)] + ["训练", "模型", "数据"]


def unit_rows(n: int, d: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Normalised vectors around a few centres, like embeddings of a few topics."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fake_corpus(n: int, d: int = 16, seed: int = 0) -> tuple[list, list[Chunk], list, np.ndarray, list]:
    rng = np.random.default_rng(seed)
    chunks, entities, tokens = [], [], []
    for i in range(n):
        words = list(rng.choice(WORDS, int(rng.integers(0, 12))))  # some chunks have no tokens
        text = " ".join(words) or "-"
        chunks.append(
            Chunk(
                chunk_id=f"d{i // 10}-{i % 10}",
                doc_id=f"d{i // 10}",
                title=f"Doc {i // 10}",
                url="x",
                section=["S"],
                language="zh" if i % 3 == 0 else "en",
                start=0,
                end=len(text),
                text=text,
            )
        )
        entities.append(sorted({f"model{i % 7}", f"model{i % 5}"}) if i % 2 else [])
        tokens.append(words)
    docs = [
        (Document(doc_id=f"d{j}", title=f"Doc {j}", url="x", source="x", language="en", sha256="s", text="t"), "h")
        for j in range((n + 9) // 10)
    ]
    return docs, chunks, entities, unit_rows(n, d, seed), tokens


def test_structure_is_chosen_by_size() -> None:
    assert choose(1_000, AnnConfig(exact_max=2_000)).kind == "flat"
    assert choose(200_000, AnnConfig()).kind == "flat"  # the default threshold is inclusive
    assert choose(1_000_000, AnnConfig()) == AnnSpec("ivf-sq8", nlist=2048, nprobe=AnnConfig.nprobe)
    assert nlist_for(1_000_000) == 2048 and nlist_for(100_000) == 512
    assert choose(300_000, AnnConfig(nprobe=5000)).nprobe == nlist_for(300_000)  # never more than all lists
    assert choose(1_000_000, AnnConfig(kind="hnsw-sq8", ef_search=99)) == AnnSpec("hnsw-sq8", ef_search=99)
    assert choose(1_000_000, AnnConfig(kind="flat")).kind == "flat"
    assert AnnSpec.from_json(None) == AnnSpec("flat")  # indexes from before this field are flat
    with pytest.raises(ValueError):
        choose(10, AnnConfig(exact_max=0, kind="lsh"))


@pytest.mark.parametrize("kind", ["ivf-sq8", "hnsw-sq8"])
def test_approximate_kinds_find_the_exact_neighbours(kind: str) -> None:
    import faiss

    vectors, queries = unit_rows(6_000, 32), unit_rows(50, 32, seed=1)
    exact = faiss.IndexFlatIP(32)
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    spec = choose(len(vectors), AnnConfig(exact_max=0, kind=kind, train_size=6_000))
    index = build(vectors, spec, AnnConfig(train_size=6_000), batch=1_000)  # several batches
    configure(index, AnnSpec(spec.kind, spec.nlist, nprobe=spec.nlist // 4 or 0, ef_search=128))
    scores, found = index.search(queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.8, recall
    # Scores stay inner products (cosines), which the retriever's thresholds rely on.
    exact_scores = np.einsum("qd,qkd->qk", queries, vectors[found])
    assert np.abs(scores - exact_scores).max() < 0.02


def test_bm25_builder_writes_what_bm25s_writes(tmp_path: Path) -> None:
    import bm25s

    rng = np.random.default_rng(3)
    docs = [list(rng.choice(WORDS, int(rng.integers(0, 40)))) for _ in range(400)]
    reference = bm25s.BM25(k1=1.2, b=0.3)
    reference.index([d or [""] for d in docs], show_progress=False)
    builder = BM25Builder(k1=1.2, b=0.3)
    for start in range(0, len(docs), 64):
        builder.add(docs[start : start + 64])
    builder.save(tmp_path / "bm25")
    loaded = bm25s.BM25.load(str(tmp_path / "bm25"), show_progress=False, verbosity=0)
    assert builder.vocabulary() == {t for d in docs for t in d}
    for term in builder.vocabulary():
        assert np.array_equal(loaded.get_scores([term]), reference.get_scores([term])), term
    assert loaded.get_scores([""]).shape == (len(docs),)


def test_streamed_batches_write_the_same_index(tmp_path: Path) -> None:
    docs, chunks, entities, vectors, tokens = fake_corpus(230)
    write_index(tmp_path / "one", docs, chunks, entities, vectors, tokens, Gazetteer({}), {"embedder": "fake"})
    with IndexWriter(tmp_path / "many", len(chunks), vectors.shape[1]) as writer:
        writer.add_documents(docs)
        for start in range(0, len(chunks), 64):
            end = start + 64
            writer.add_chunks(chunks[start:end], entities[start:end], vectors[start:end], tokens[start:end])
        writer.commit(Gazetteer({}), {"embedder": "fake"})
    one, many = current_version(tmp_path / "one"), current_version(tmp_path / "many")
    names = ["vectors.npy", "languages.npy", "entity_rows.npy", "bm25/data.csc.index.npy", "bm25/indices.csc.index.npy"]
    for name in names:
        assert np.array_equal(np.load(one / name), np.load(many / name)), name
    rows = [
        sqlite3.connect(v / "store.sqlite").execute("SELECT * FROM chunks ORDER BY row").fetchall() for v in (one, many)
    ]
    assert rows[0] == rows[1]
    assert not list(tmp_path.glob("*/*.tmp"))


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    docs, chunks, entities, vectors, tokens = fake_corpus(20)
    with pytest.raises(ValueError), IndexWriter(tmp_path, len(chunks) + 1, vectors.shape[1]) as writer:
        writer.add_chunks(chunks, entities, vectors, tokens)
        writer.commit(Gazetteer({}), {})  # one row short of what was announced
    assert not list(tmp_path.iterdir())


def test_entity_rows_match_the_old_scan(tmp_path: Path) -> None:
    docs, chunks, entities, vectors, tokens = fake_corpus(120)
    write_index(tmp_path, docs, chunks, entities, vectors, tokens, Gazetteer({}), {})
    index = Index(tmp_path)
    postings = index.postings
    assert postings is not None
    for keys in (["model1"], ["model3", "model4"], ["nothing"], ["model0", "model2", "model6"], []):
        fast = index.rows_mentioning(keys)
        index.postings = None  # the LIKE scan that indexes from before the postings still use
        slow = index.rows_mentioning(keys)
        index.postings = postings
        assert fast.tolist() == slow.tolist() and fast.dtype == slow.dtype


def test_large_index_is_approximate_and_searches_with_its_settings(tmp_path: Path) -> None:
    import faiss

    docs, chunks, entities, vectors, tokens = fake_corpus(3_000, d=32)
    ann = AnnConfig(exact_max=1_000, kind="ivf-sq8", nprobe=7, train_size=3_000)
    write_index(tmp_path, docs, chunks, entities, vectors, tokens, Gazetteer({}), {}, ann=ann)
    index = Index(tmp_path)
    manifest = json.loads((current_version(tmp_path) / "manifest.json").read_text())
    assert manifest["ann"]["kind"] == "ivf-sq8" and index.ann.nprobe == 7
    assert faiss.extract_index_ivf(index.faiss).nprobe == 7
    scores, rows = index.search_vectors(vectors[:5], 10_000)  # k is capped at the number of chunks
    assert rows.shape == (5, 3_000) and (rows[:, 0] == np.arange(5)).mean() >= 0.8
    assert np.allclose(scores[:, 0], 1.0, atol=0.02)
    assert isinstance(index.vectors(), np.memmap) and index.languages.dtype.kind == "U"
