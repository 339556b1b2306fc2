"""Shared fixtures: one real index of the bundled corpus per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default index of the bundled corpus, built once with the real embedder."""
    from ingest.pipeline import run_ingest
    from ingest.settings import IngestSettings

    index_dir = tmp_path_factory.mktemp("index")
    report = run_ingest(None, IngestSettings(), index_dir)
    assert report.chunks > 500 and not report.skipped
    return index_dir


@pytest.fixture(scope="session")
def atlas(bundled_index: Path):
    from rag.service import Atlas
    from rag.settings import RagSettings

    return Atlas.load(RagSettings(index_dir=bundled_index, llm_base_url=None), bundled_index)


def copy_corpus_files(names: list[str], folder: Path) -> Path:
    """A folder holding these bundled documents (paths relative to corpus/), for small indexes."""
    import shutil

    from corpus import CORPUS_DIR

    for name in names:
        shutil.copy(CORPUS_DIR / name, folder / Path(name).name)
    return folder
