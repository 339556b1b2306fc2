"""The Milvus store on the real embedded engine (milvus-lite, no mocks): the same top passages as the
FAISS store, filters that restrict, upserts of only what changed, deletes by id, and clear errors
for a missing or out-of-step store. Needs the `milvus` extra; `-m "not milvus"` skips these."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ingest.entities import Gazetteer
from ingest.index import Index, IndexCorrupt, write_index
from ingest.pipeline import run_ingest
from ingest.settings import IngestSettings
from ingest.store import ChunkStore, WritableStore
from ingest.store.config import StoreConfig
from ingest.store.milvus import MilvusStore, client_for
from tests.conftest import copy_corpus_files
from tests.unit.test_ann import fake_corpus

pytestmark = [pytest.mark.milvus, pytest.mark.slow]

FILES = [
    "raw/vicuna-model-card.md",
    "raw/alpaca-model-card.md",
    "raw/koala-blog.md",
    "raw/chatglm-6b-readme.md",
    "seeds/004_f2fee1a0cec11105.txt",
]
# Our own questions (not from any evaluation set): a fact, a Chinese one, a comparison, a how.
QUESTIONS = [
    "Which model was Alpaca fine-tuned from?",
    "ChatGLM-6B 用了多少显存？",
    "Compare Koala and Vicuna: what data were they trained on?",
    "How was Koala evaluated against other chat models?",
]


def milvus(index_dir: Path) -> StoreConfig:
    return StoreConfig(kind="milvus", uri=str(index_dir / "milvus.db"))


def settings(store: str) -> IngestSettings:
    return IngestSettings(store=store)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_corpus_files(FILES, tmp_path_factory.mktemp("docs"))


@pytest.fixture(scope="module")
def both(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same documents indexed into the FAISS store and into Milvus."""
    faiss_dir, milvus_dir = tmp_path_factory.mktemp("faiss"), tmp_path_factory.mktemp("milvus")
    run_ingest([str(folder)], settings("faiss"), faiss_dir)
    report = run_ingest([str(folder)], settings("milvus"), milvus_dir)
    assert report.store["kind"] == "milvus" and report.store["upserted"] == report.chunks > 50
    return faiss_dir, milvus_dir


def test_the_milvus_store_follows_the_protocol(both: tuple[Path, Path]) -> None:
    with Index(both[1]) as index:
        assert isinstance(index.store, ChunkStore) and isinstance(index.store, WritableStore)
        assert index.store.kind == "milvus" and index.faiss is None
        assert not (index.version / "vectors.faiss").exists()  # no FAISS index is built for Milvus


def test_same_top_passages_on_faiss_and_milvus(both: tuple[Path, Path]) -> None:
    from ingest.embed import make_embedder
    from rag.retrieve import HybridSearcher

    embedder = make_embedder("use-m3")
    with Index(both[0]) as local, Index(both[1]) as remote:
        ours, theirs = HybridSearcher(local, embedder), HybridSearcher(remote, embedder)
        for question in QUESTIONS:
            a, b = ours.search(question, k=5), theirs.search(question, k=5)
            assert [p.chunk_id for p in a.passages] == [p.chunk_id for p in b.passages], question
            assert a.per_entity == b.per_entity
            assert a.best_dense == pytest.approx(b.best_dense, abs=1e-4)
            assert a.best_lexical == pytest.approx(b.best_lexical, rel=1e-3)


def test_atlas_answers_from_the_milvus_store(both: tuple[Path, Path]) -> None:
    from rag.service import Atlas
    from rag.settings import RagSettings

    atlas = Atlas.load(RagSettings(index_dir=both[1], llm_base_url=None), both[1])
    answer = atlas.ask("Which model was Alpaca fine-tuned from?", use_llm=False)
    assert answer.answered and answer.citations and "LLaMA" in answer.answer
    assert atlas.health()["ready"] is True
    atlas.index.close()  # let go of the embedded server (the next test opens the file from another process)


@pytest.fixture(scope="module")
def fake_pair(tmp_path_factory: pytest.TempPathFactory):
    """A random corpus (no embedder) in both stores, for filter checks against exact search."""
    docs, chunks, entities, vectors, tokens = fake_corpus(600)
    faiss_dir, milvus_dir = tmp_path_factory.mktemp("fake-faiss"), tmp_path_factory.mktemp("fake-milvus")
    write_index(faiss_dir, docs, chunks, entities, vectors, tokens, Gazetteer({}), {})
    write_index(milvus_dir, docs, chunks, entities, vectors, tokens, Gazetteer({}), {}, store=milvus(milvus_dir))
    local, remote = Index(faiss_dir), Index(milvus_dir)
    yield local, remote, vectors, entities
    local.close()
    remote.close()


@pytest.mark.parametrize(("language", "models"), [(None, None), ("zh", None), (None, ["model3"]), ("en", ["model1"])])
def test_filters_restrict_and_match_the_faiss_store(fake_pair, language, models) -> None:
    local, remote, vectors, entities = fake_pair
    for query in vectors[:4]:
        a = local.store.search_dense(query[None], 40, language=language, models=models)[0]
        b = remote.store.search_dense(query[None], 40, language=language, models=models)[0]
        assert a.rows.tolist() == b.rows.tolist()
        assert np.allclose(a.scores, b.scores, atol=1e-5)
    terms = {"w3": 1.0, "训练": 0.7, "w250": 2.0}
    a = local.store.search_lexical(terms, 40, language=language, models=models)
    b = remote.store.search_lexical(terms, 40, language=language, models=models)
    assert len(a) == len(b) > 0
    assert np.allclose(np.sort(a.scores), np.sort(b.scores), rtol=1e-4)  # our BM25, inside Milvus
    assert set(a.rows.tolist()) == set(b.rows.tolist())
    for row in b.rows.tolist():
        assert language is None or remote.languages[row] == language
        assert models is None or set(entities[row]) & set(models)
    if language or models:  # the filter is not vacuous: unfiltered, other rows come first
        unfiltered = remote.store.search_dense(vectors[:1], 40)[0]
        assert any(
            (language and remote.languages[r] != language) or (models and not set(entities[r]) & set(models))
            for r in unfiltered.rows.tolist()
        )


def test_reingest_upserts_only_the_changed_document(folder: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(folder, docs)
    index_dir = tmp_path / "index"
    first = run_ingest([str(docs)], settings("milvus"), index_dir)
    assert first.store["upserted"] == first.chunks

    again = run_ingest([str(docs)], settings("milvus"), index_dir)
    assert again.up_to_date and again.store["upserted"] == again.store["deleted"] == 0

    before = stored(index_dir)
    koala_id = doc_id_of(index_dir, "koala-blog.md")
    changed = docs / "koala-blog.md"
    changed.write_text(changed.read_text() + "\n\nKoala was also tried on a 4-bit quantised llama.cpp build.\n")
    second = run_ingest([str(docs)], settings("milvus"), index_dir)
    after = stored(index_dir)
    rewritten = {cid for cid in after if before.get(cid) != after[cid]}
    assert second.changed_documents == 1 and second.store["rebuilt"] is None
    assert 0 < second.store["upserted"] == len(rewritten) and second.store["deleted"] == 0
    assert {cid.split("#")[0] for cid in rewritten} == {koala_id}
    with Index(index_dir) as index:
        assert len(index) == len(after) == second.chunks

    changed.unlink()
    third = run_ingest([str(docs)], settings("milvus"), index_dir)
    koala = [cid for cid in after if cid.startswith(koala_id + "#")]
    assert third.store["deleted"] == len(koala) > 0
    assert not set(koala) & set(stored(index_dir))


def stored(index_dir: Path) -> dict[str, str]:
    store = MilvusStore(client_for(milvus(index_dir)), milvus(index_dir))
    try:
        return store.stored()
    finally:
        store.close()


def doc_id_of(index_dir: Path, name: str) -> str:
    with Index(index_dir) as index:
        return next(d["doc_id"] for d in index.documents() if d["source"].endswith(name))


def test_delete_by_id_and_an_out_of_step_store_is_reported_and_repaired(folder: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    run_ingest([str(folder)], settings("milvus"), index_dir)
    with Index(index_dir) as index:
        victim = index.chunks([0])[0]["chunk_id"]
        vector = index.vectors()[:1]
        assert index.store.search_dense(vector, 1)[0].rows.tolist() == [0]
        assert index.store.delete([victim]) == 1
        assert victim not in index.store.stored()
        assert 0 not in index.store.search_dense(vector, 20)[0].rows.tolist()
    with pytest.raises(IndexCorrupt) as caught:
        Index(index_dir)
    assert "out of step" in str(caught.value) and f"llm-atlas ingest --index {index_dir}" in str(caught.value)
    repaired = run_ingest([str(folder)], settings("milvus"), index_dir)
    assert repaired.rebuilt_because and repaired.store["upserted"] == 1  # only the missing chunk is written
    with Index(index_dir) as index:
        assert index.store.search_dense(vector, 1)[0].rows.tolist() == [0]


def test_a_missing_store_says_how_to_rebuild(folder: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    run_ingest([str(folder)], settings("milvus"), index_dir)
    config = milvus(index_dir)
    store = MilvusStore(client_for(config), config)
    store.client.drop_collection(config.collection)
    store.close()
    with pytest.raises(IndexCorrupt) as caught:
        Index(index_dir)
    assert "does not exist" in str(caught.value) and f"llm-atlas ingest --index {index_dir}" in str(caught.value)
    report = run_ingest([str(folder)], settings("milvus"), index_dir)
    assert report.store["rebuilt"] == "no collection yet" and report.store["upserted"] == report.chunks
    with Index(index_dir) as index:
        assert len(index) == report.chunks


def test_a_closed_index_lets_another_process_open_the_embedded_store(both: tuple[Path, Path]) -> None:
    """milvus-lite holds its file while its server runs: closing the last client must stop it, or an
    ingest could never follow a server that let go of the index."""
    import subprocess
    import sys

    Index(both[1]).close()
    code = f"from ingest.index import Index; i = Index({str(both[1])!r}); print(len(i)); i.close()"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(run.stdout.split()[-1]) > 50
