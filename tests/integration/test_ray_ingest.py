"""Embedding on a real local Ray (no mocks): `ingest --ray` embeds on an actor pool, the actors
(not the driver) do the work, and the index equals the one built in process. Needs the `ray`
extra; `-m "not ray"` skips these."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.index import Index
from ingest.pipeline import run_ingest
from ingest.settings import IngestSettings
from tests.conftest import copy_corpus_files

pytestmark = [pytest.mark.ray, pytest.mark.slow]

FILES = ["raw/alpaca-model-card.md", "raw/koala-blog.md", "seeds/001_490c9f23e16214d2.txt"]
# Our own questions (not from any evaluation set), in both languages.
QUESTIONS = ["Which model was Alpaca fine-tuned from?", "Koala 的训练数据是什么？", "How was Koala evaluated?"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_corpus_files(FILES, tmp_path_factory.mktemp("docs"))


@pytest.fixture(scope="module")
def built(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The same documents indexed in process and by `llm-atlas ingest --ray` (a local Ray)."""
    local_dir, ray_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("ray")
    run_ingest([str(folder)], IngestSettings(), local_dir)
    cli = Path(sys.executable).with_name("llm-atlas")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_ATLAS_")}
    done = subprocess.run(
        [str(cli), "ingest", str(folder), "--index", str(ray_dir), "--ray", "--ray-actors", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return local_dir, ray_dir, json.loads(done.stdout.strip().splitlines()[-1])


def test_the_actors_did_the_embedding(built: tuple[Path, Path, dict]) -> None:
    report = built[2]
    ray = report["ray"]
    assert ray is not None and ray["address"].startswith("local") and ray["actors"] == 2
    assert ray["texts"] == report["embedded_chunks"] == report["chunks"] > 30
    processes = ray["texts_per_process"]
    assert sum(processes.values()) == ray["texts"]
    assert str(ray["driver_pid"]) not in processes  # the driver embedded nothing
    assert 1 <= len(processes) <= 2  # at most one process per actor of the pool


def test_ray_builds_the_same_index(built: tuple[Path, Path, dict]) -> None:
    from ingest.embed import make_embedder
    from rag.retrieve import HybridSearcher

    with Index(built[0]) as local, Index(built[1]) as on_ray:
        assert len(local) == len(on_ray)
        rows = list(range(len(local)))
        assert [c["chunk_id"] for c in local.chunks(rows)] == [c["chunk_id"] for c in on_ray.chunks(rows)]
        assert np.allclose(local.vectors(), on_ray.vectors(), atol=1e-5)
        embedder = make_embedder("use-m3")
        ours, theirs = HybridSearcher(local, embedder), HybridSearcher(on_ray, embedder)
        for question in QUESTIONS:
            a, b = ours.search(question, k=5), theirs.search(question, k=5)
            assert [p.chunk_id for p in a.passages] == [p.chunk_id for p in b.passages], question


def test_a_second_ray_ingest_of_unchanged_documents_embeds_nothing(
    built: tuple[Path, Path, dict], folder: Path
) -> None:
    report = run_ingest([str(folder)], IngestSettings(ray_address="local"), built[1])
    assert report.up_to_date and report.embedded_chunks == 0 and report.ray is None  # Ray is not even started


def test_changed_document_is_embedded_on_ray_and_the_rest_reused(folder: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(folder, docs)
    run_ingest([str(docs)], IngestSettings(), tmp_path / "index")
    note = docs / "note.md"
    note.write_text("# A note\n\nThe Example-7B model has 7B parameters and a context of 4096 tokens.\n", "utf-8")
    report = run_ingest([str(docs)], IngestSettings(ray_address="local", ray_actors=1), tmp_path / "index")
    assert report.ray is not None and report.ray["texts"] == report.embedded_chunks >= 1
    assert report.reused_chunks == report.chunks - report.embedded_chunks > 30


def test_an_unreachable_cluster_is_a_clear_error_and_keeps_the_index(
    built: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    from ingest.errors import ClusterError

    extra = tmp_path / "extra.md"
    extra.write_text("# Extra\n\nSomething new to embed about the Example-9B model.\n", encoding="utf-8")
    version = (built[1] / "current").resolve()
    with pytest.raises(ClusterError, match="Cannot reach the Ray cluster"):
        run_ingest([str(extra)], IngestSettings(ray_address="127.0.0.1:9"), built[1], add=True)
    assert (built[1] / "current").resolve() == version  # nothing replaced the working index
