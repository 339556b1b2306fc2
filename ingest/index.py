"""The index on disk: FAISS vectors, a BM25 index, chunk and document metadata in SQLite,
the gazetteer and a manifest. Nothing is pickled.

Layout: INDEX_DIR/current -> a version folder. A build writes a new version folder and then
swaps the `current` link atomically, so an ingest killed at any moment leaves the previous
index loadable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.entities import Gazetteer
from ingest.schema import Chunk, Document

FORMAT_VERSION = 2
REBUILD_HINT = "Rebuild it with: llm-atlas ingest --index {dir}"


class IndexProblem(Exception):
    """Base for index problems; the message always says how to fix them."""


class IndexMissing(IndexProblem):
    pass


class IndexIncompatible(IndexProblem):
    pass


class IndexCorrupt(IndexProblem):
    pass


@dataclass
class BM25Params:
    k1: float = 1.2
    b: float = 0.3  # a weak length penalty: Chinese chunks have ~3x the tokens of English ones


SCHEMA = """
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT, url TEXT, source TEXT, language TEXT,
    license TEXT, sha256 TEXT, text_sha256 TEXT, raw_chars INTEGER, text TEXT);
CREATE TABLE chunks (row INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE, doc_id TEXT, title TEXT, url TEXT,
    section TEXT, language TEXT, start INTEGER, "end" INTEGER, text TEXT, context TEXT, entities TEXT,
    embed_sha TEXT);
CREATE INDEX chunks_doc ON chunks(doc_id);
"""


def embed_sha(chunk: Chunk) -> str:
    """Key of a chunk's vector: the same embedded text gives the same vector."""
    return hashlib.sha256(chunk.embed_text().encode()).hexdigest()


def write_index(
    index_dir: Path,
    documents: Sequence[tuple[Document, str]],
    chunks: Sequence[Chunk],
    chunk_entities: Sequence[list[str]],
    vectors: np.ndarray,
    tokens: Sequence[list[str]],
    gazetteer: Gazetteer,
    manifest: dict[str, Any],
    bm25: BM25Params | None = None,
    lexicon: dict[str, dict[str, list[str]]] | None = None,
) -> Path:
    """Write a complete new version and make it current. `documents` pairs each doc with its text hash."""
    import bm25s
    import faiss

    bm25 = bm25 or BM25Params()
    index_dir.mkdir(parents=True, exist_ok=True)
    version = index_dir / f"v-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    tmp = version.with_name(version.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        flat.add(vectors)
    faiss.write_index(flat, str(tmp / "vectors.faiss"))

    retriever = bm25s.BM25(k1=bm25.k1, b=bm25.b)
    retriever.index([list(t) or [""] for t in tokens] or [[""]], show_progress=False)
    retriever.save(str(tmp / "bm25"), show_progress=False)

    db = sqlite3.connect(tmp / "store.sqlite")
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (d.doc_id, d.title, d.url, d.source, d.language, d.license, d.sha256, text_sha, d.raw_chars, d.text)
            for d, text_sha in documents
        ],
    )
    db.executemany(
        "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                row,
                c.chunk_id,
                c.doc_id,
                c.title,
                c.url,
                json.dumps(c.section, ensure_ascii=False),
                c.language,
                c.start,
                c.end,
                c.text,
                c.context,
                json.dumps(ents),
                embed_sha(c),
            )
            for row, (c, ents) in enumerate(zip(chunks, chunk_entities))
        ],
    )
    db.commit()
    db.close()

    (tmp / "gazetteer.json").write_text(json.dumps(gazetteer.to_json(), ensure_ascii=False), encoding="utf-8")
    (tmp / "lexicon.json").write_text(
        json.dumps(lexicon or {"en2zh": {}, "zh2en": {}}, ensure_ascii=False), encoding="utf-8"
    )
    full_manifest = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "chunks": len(chunks),
        "documents": len(documents),
        "dimension": int(vectors.shape[1]),
        "bm25": {"k1": bm25.k1, "b": bm25.b},
        "created": time.time(),
    }
    (tmp / "manifest.json").write_text(json.dumps(full_manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    for path in tmp.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    tmp.rename(version)

    link_tmp = index_dir / f".current-{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    link_tmp.symlink_to(version.name)
    os.replace(link_tmp, index_dir / "current")  # the atomic switch
    for old in index_dir.glob("v-*"):
        if old.name != version.name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return version


def current_version(index_dir: Path) -> Path:
    link = index_dir / "current"
    if not link.exists():
        raise IndexMissing(f"No index at {index_dir}. " + REBUILD_HINT.format(dir=index_dir))
    return link.resolve()


def read_manifest(index_dir: Path) -> dict[str, Any]:
    version = current_version(index_dir)
    try:
        return json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(
            f"Index manifest at {version} is unreadable ({exc}). " + REBUILD_HINT.format(dir=index_dir)
        ) from exc


class ChunkRecord(dict):
    """A chunk row as read back from the store (a dict, cheap to hand around)."""


class Index:
    """A loaded, read-only index, safe to share across threads."""

    def __init__(self, index_dir: Path, embedder_name: str | None = None):
        self.index_dir = Path(index_dir)
        self.manifest = read_manifest(self.index_dir)
        version = current_version(self.index_dir)
        hint = REBUILD_HINT.format(dir=self.index_dir)
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise IndexIncompatible(
                f"Index format {self.manifest.get('format_version')} is not the supported "
                f"format {FORMAT_VERSION}. " + hint
            )
        if embedder_name and self.manifest.get("embedder") != embedder_name:
            raise IndexIncompatible(
                f"Index was built with embedder '{self.manifest.get('embedder')}', but "
                f"'{embedder_name}' is configured. " + hint
            )
        try:
            import bm25s
            import faiss

            self.faiss = faiss.read_index(str(version / "vectors.faiss"))
            self.bm25 = bm25s.BM25.load(str(version / "bm25"), show_progress=False, verbosity=0)
            self.gazetteer = Gazetteer.from_json(json.loads((version / "gazetteer.json").read_text("utf-8")))
            self.lexicon = json.loads((version / "lexicon.json").read_text("utf-8"))
            self.db_path = version / "store.sqlite"
            self._local = threading.local()
            self.languages = np.array(
                [row[0] for row in self._db().execute("SELECT language FROM chunks ORDER BY row")]
            )
        except Exception as exc:  # faiss, bm25s and sqlite raise many types on damaged files
            raise IndexCorrupt(f"Index at {version} is damaged ({exc.__class__.__name__}: {exc}). " + hint) from exc
        if self.faiss.ntotal != len(self.languages):
            raise IndexCorrupt(
                f"Index at {version} is inconsistent ({self.faiss.ntotal} vectors, "
                f"{len(self.languages)} chunks). " + hint
            )

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def __len__(self) -> int:
        return len(self.languages)

    def chunks(self, rows: Sequence[int]) -> list[ChunkRecord]:
        if not rows:
            return []
        marks = ",".join("?" * len(rows))
        found = {
            r["row"]: r
            for r in self._db().execute(f"SELECT * FROM chunks WHERE row IN ({marks})", [int(r) for r in rows])
        }
        out = []
        for row in rows:
            rec = found[int(row)]
            out.append(
                ChunkRecord(
                    row=rec["row"],
                    chunk_id=rec["chunk_id"],
                    doc_id=rec["doc_id"],
                    title=rec["title"],
                    url=rec["url"],
                    section=json.loads(rec["section"]),
                    language=rec["language"],
                    start=rec["start"],
                    end=rec["end"],
                    text=rec["text"],
                    context=rec["context"],
                    entities=json.loads(rec["entities"]),
                )
            )
        return out

    def rows_mentioning(self, entity_keys: Sequence[str]) -> np.ndarray:
        """Rows of chunks whose text, title or section names any of the entity keys."""
        if not entity_keys:
            return np.zeros(0, dtype=np.int64)
        clauses = " OR ".join("entities LIKE ?" for _ in entity_keys)
        rows = (
            self._db().execute(f"SELECT row FROM chunks WHERE {clauses}", [f'%"{k}"%' for k in entity_keys]).fetchall()
        )
        return np.array([r[0] for r in rows], dtype=np.int64)

    def embed_rows(self) -> dict[str, int]:
        """embed_sha -> row, to reuse vectors of unchanged chunks."""
        return {sha: row for row, sha in self._db().execute("SELECT row, embed_sha FROM chunks")}

    def document(self, doc_id: str) -> dict[str, Any] | None:
        rec = self._db().execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return dict(rec) if rec else None

    def documents(self) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._db().execute(
                "SELECT doc_id, title, url, source, language, sha256, text_sha256 FROM documents"
            )
        ]

    def vectors(self) -> np.ndarray:
        return np.load(current_version(self.index_dir) / "vectors.npy", allow_pickle=False)
