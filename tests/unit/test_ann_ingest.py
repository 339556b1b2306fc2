"""Ingest writes the index batch by batch: every chunk gets its own vector, whether the batch
holds new chunks, reused ones or both. A deterministic fake embedder stands in for USE-m3."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from ingest.index import Index
from ingest.pipeline import run_ingest
from ingest.schema import Chunk
from ingest.settings import IngestSettings


class TextHashEmbedder:
    """The same text always gives the same unit vector."""

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(32)
            rows.append(v / np.linalg.norm(v))
        return np.array(rows, dtype=np.float32)


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> TextHashEmbedder:
    embedder = TextHashEmbedder()
    monkeypatch.setattr("ingest.embed.make_embedder", lambda spec, batch_size=64: embedder)
    return embedder


def write_docs(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        sections = "\n\n".join(
            f"## Part {i}\n\n{name} was trained on dataset {i} for {i + 1} epochs with batch size {8 * i}."
            for i in range(12)
        )
        (folder / f"{name}.md").write_text(f"# {name}\n\n{sections}\n", encoding="utf-8")


def test_batches_all_reused_all_new_or_mixed(tmp_path: Path, fake_embedder: TextHashEmbedder) -> None:
    settings = IngestSettings(embed_batch_size=1)  # batches of 8 chunks
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    write_docs(docs, ["Alpha", "Beta"])
    first = run_ingest([str(docs)], settings, index_dir)
    assert first.embedded_chunks == first.chunks > 16
    write_docs(tmp_path / "more", ["Gamma"])
    added = run_ingest([str(tmp_path / "more")], settings, index_dir, add=True)
    assert 0 < added.embedded_chunks < added.chunks  # leading batches were entirely reused

    index = Index(index_dir)
    fields = set(Chunk.model_fields)
    records = index.chunks(list(range(len(index))))
    texts = [Chunk(**{k: v for k, v in r.items() if k in fields}).embed_text() for r in records]
    assert np.allclose(index.vectors(), fake_embedder.encode(texts))
    assert {r["title"] for r in records} == {"Alpha", "Beta", "Gamma"}
