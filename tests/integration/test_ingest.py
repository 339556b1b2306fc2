"""Ingest end to end on real files with the real embedder, FAISS and BM25."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from corpus import CORPUS_DIR
from ingest.index import Index, IndexCorrupt, IndexIncompatible, IndexMissing
from ingest.pipeline import run_ingest
from ingest.settings import IngestSettings


def small_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in (
        "raw/vicuna-model-card.md",
        "raw/alpaca-model-card.md",
        "raw/grok-1-readme.md",
        "seeds/004_f2fee1a0cec11105.txt",
    ):
        shutil.copy(CORPUS_DIR / name, folder / Path(name).name)
    return folder


def test_bundled_index_contents(bundled_index: Path) -> None:
    index = Index(bundled_index, embedder_name="use-m3")
    manifest = index.manifest
    assert manifest["documents"] == 37 and manifest["embedder"] == "use-m3" and manifest["dimension"] == 512
    assert index.faiss.ntotal == len(index) == manifest["chunks"]
    assert {"zh", "en"} <= set(index.languages)
    # Every chunk's text is exactly its span of the stored cleaned document.
    for rec in index.chunks(list(range(0, len(index), 37))):
        doc = index.document(rec["doc_id"])
        assert doc["text"][rec["start"] : rec["end"]] == rec["text"]
    assert {"vicuna", "alpaca", "chatglm6b", "belle"} <= set(index.gazetteer.names)
    assert "训练" in index.lexicon.to_chinese("train") and "train" in index.lexicon.to_english("训练")
    # Dictionary senses the corpus hardly uses are pruned: "model" is 模型 here, not 典型 (typical).
    assert index.lexicon.to_chinese("model")[0] == "模型" and "典型" not in index.lexicon.to_chinese("model")
    assert "底子" not in index.lexicon.to_chinese("base")
    assert index.lexicon.to_chinese("zorblaxian") == []  # a word it lacks has no senses
    words = index.lexicon.english_words("train")
    assert "train" in words and words == sorted(words) and all(w.startswith("train") and " " not in w for w in words)
    # Nothing in the index is a pickle.
    for path in Path(bundled_index, "current").resolve().rglob("*"):
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)


def test_incremental_ingest(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "docs")
    index_dir = tmp_path / "index"
    settings = IngestSettings()
    cold = run_ingest([str(corpus)], settings, index_dir)
    assert cold.documents == 4 and cold.embedded_chunks == cold.chunks > 10

    warm = run_ingest([str(corpus)], settings, index_dir)
    assert warm.up_to_date and warm.embedded_chunks == 0
    assert warm.seconds < cold.seconds / 3

    # One changed document is re-embedded alone; a removed one disappears.
    card = corpus / "grok-1-readme.md"
    card.write_text(
        card.read_text(encoding="utf-8") + "\n\n## Update\n\nGrok-1 has 314B parameters.\n", encoding="utf-8"
    )
    (corpus / "alpaca-model-card.md").unlink()
    changed = run_ingest([str(corpus)], settings, index_dir)
    assert changed.changed_documents == 1 and changed.removed_documents == 1
    assert 0 < changed.embedded_chunks < changed.chunks
    index = Index(index_dir)
    titles = {d["source"].split("/")[-1] for d in index.documents()}
    assert titles == {"vicuna-model-card.md", "grok-1-readme.md", "004_f2fee1a0cec11105.txt"}
    rows = [r for r in range(len(index)) if "314B parameters" in index.chunks([r])[0]["text"]]
    assert rows
    # Reused vectors are the vectors the embedder gives for the same text.
    from ingest.embed import USEm3Encoder

    rec = index.chunks([0])[0]
    doc_title = index.document(rec["doc_id"])["title"]
    section = " > ".join(rec["section"])
    text = "\n".join(
        [f"{doc_title} > {section}" if section else doc_title]
        + ([rec["context"]] if rec["context"] else [])
        + [rec["text"]]
    )
    fresh = USEm3Encoder().encode([text])[0]
    assert float(fresh @ index.vectors()[0]) > 0.99


def test_add_keeps_existing_documents(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "docs")
    index_dir = tmp_path / "index"
    run_ingest([str(corpus / "vicuna-model-card.md")], IngestSettings(), index_dir)
    report = run_ingest([str(corpus / "grok-1-readme.md")], IngestSettings(), index_dir, add=True)
    assert report.documents == 2 and report.embedded_chunks < report.chunks


def test_killed_ingest_leaves_previous_index_loadable(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "docs")
    index_dir = tmp_path / "index"
    run_ingest([str(corpus)], IngestSettings(), index_dir)
    before = Index(index_dir).manifest["created"]
    shutil.copy(CORPUS_DIR / "raw/koala-blog.md", corpus / "koala-blog.md")
    code = (
        "import sys; from ingest.pipeline import run_ingest; from ingest.settings import IngestSettings; "
        f"run_ingest([{str(corpus)!r}], IngestSettings(), {str(index_dir)!r})"
    )
    for delay in (0.5, 1.5, 3.0, 4.5):
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2])
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with Index(index_dir) as index:  # whatever moment it died, an index loads
            assert index.manifest["created"] >= before and index.faiss.ntotal == len(index)
    run_ingest([str(corpus)], IngestSettings(), index_dir)
    with Index(index_dir) as index:
        assert len(index.documents()) == 5
    # The next successful run clears half-written versions of the killed ones (and older versions,
    # since no reader holds them: the readers above let go of theirs).
    versions = [p.name for p in index_dir.iterdir() if p.name.startswith("v-")]
    assert versions == [(index_dir / "current").resolve().name]


def test_refuses_other_embedder_and_explains(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "docs")
    run_ingest([str(corpus / "vicuna-model-card.md")], IngestSettings(), tmp_path / "index")
    with pytest.raises(IndexIncompatible, match="llm-atlas ingest --index"):
        Index(tmp_path / "index", embedder_name="st:some-model")
    manifest = Path(tmp_path / "index/current/manifest.json")
    data = json.loads(manifest.read_text())
    data["format_version"] = 999
    manifest.write_text(json.dumps(data))
    with pytest.raises(IndexIncompatible, match="Rebuild it with"):
        Index(tmp_path / "index")


def test_missing_and_corrupt_index_say_how_to_rebuild(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="llm-atlas ingest --index"):
        Index(tmp_path / "nothing")
    corpus = small_corpus(tmp_path / "docs")
    run_ingest([str(corpus / "vicuna-model-card.md")], IngestSettings(), tmp_path / "index")
    (tmp_path / "index/current/vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexCorrupt, match="Rebuild it with"):
        Index(tmp_path / "index")


def test_cli_ingest_prints_summary_and_skips(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "docs")
    (corpus / "junk.bin.txt").write_bytes(b"\x00\xff" * 100)
    env = {**os.environ, "LLM_ATLAS_INDEX_DIR": str(tmp_path / "index")}
    out = subprocess.run(["llm-atlas", "ingest", str(corpus)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "documents" in out.stdout and "chunks" in out.stdout and "seconds" in out.stdout
    assert "junk.bin.txt" in out.stdout and "binary" in out.stdout
    again = subprocess.run(["llm-atlas", "ingest", str(corpus)], capture_output=True, text=True, env=env, timeout=300)
    assert "up to date" in again.stdout
