"""The index on disk: FAISS vectors, a BM25 index, chunk and document metadata in SQLite,
the gazetteer and a manifest. Nothing is pickled.

The vector index is exact up to `faiss_exact_max` chunks and approximate beyond (ingest/ann.py);
it is written in batches (IndexWriter), so a million chunks never sit in memory at once.

Layout: INDEX_DIR/current -> a version folder. A build writes a new version folder and then
swaps the `current` link atomically, so an ingest killed at any moment leaves the previous
index loadable. Builders hold the folder's build lock (ingest/locks.py); readers lease the
version they opened, and a version is deleted only once no reader holds it.

The manifest lists every file with its size and sha256: sizes are checked at every load,
hashes when the index is small enough to hash in milliseconds and on every ingest, so a
damaged index is reported with the command that rebuilds it (and ingest rebuilds it).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.ann import AnnConfig, AnnSpec, build, choose, configure, single_thread_search
from ingest.bm25 import BM25Builder
from ingest.entities import Gazetteer
from ingest.errors import MissingDependency
from ingest.lexicon import Lexicon, write_lexicon
from ingest.locks import READERS_LOCK, ReaderLease, lease_current, remove_unused
from ingest.postings import Postings, PostingsBuilder
from ingest.schema import Chunk, Document
from ingest.store import ChunkStore
from ingest.store.config import StoreConfig
from ingest.store.local import LocalStore

if TYPE_CHECKING:
    from ingest.fact_store import FactStore

FORMAT_VERSION = 4  # 4: the lexicon is a table of store.sqlite
# Below this total size every load checks the files' hashes too (sha256 runs at ~1 GB/s).
HASH_AT_LOAD_MAX_BYTES = 256 * 1024 * 1024
REBUILD_HINT = "Rebuild it with: llm-atlas ingest --index {dir}"


class IndexProblem(Exception):
    """Base for index problems; the message always says how to fix them."""


class IndexMissing(IndexProblem):
    pass


class IndexIncompatible(IndexProblem):
    pass


class IndexCorrupt(IndexProblem):
    pass


class IncompatibleStore(IndexIncompatible):
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
"""
# Made after the bulk inserts: building a b-tree once is faster than keeping it up to date.
SCHEMA_INDEXES = """
CREATE INDEX chunks_doc ON chunks(doc_id);
"""


def embed_sha(chunk: Chunk) -> str:
    """Key of a chunk's vector: the same embedded text gives the same vector."""
    return hashlib.sha256(chunk.embed_text().encode()).hexdigest()


class IndexWriter:
    """Writes a new index version batch by batch, then makes it current.

    Memory stays at one batch: vectors go to a .npy memmap, token counts into a compact
    BM25 builder, rows into SQLite; the vector index is trained on a sample of the memmap
    and filled from it at `commit`. Nothing is visible until `commit` switches `current`;
    an exception (or a kill) leaves the previous version in place.

        with IndexWriter(index_dir, rows=n, dimension=512) as writer:
            writer.add_documents(docs)
            writer.add_chunks(chunks, entities, vectors, tokens)   # any number of batches
            writer.commit(gazetteer, manifest, lexicon)
    """

    def __init__(
        self,
        index_dir: Path,
        rows: int,
        dimension: int,
        bm25: BM25Params | None = None,
        ann: AnnConfig | None = None,
        store: StoreConfig | None = None,
    ):
        self.index_dir = Path(index_dir)
        self.store = store or StoreConfig()
        self.store_report: dict[str, Any] = {}  # what the store wrote: upserted / deleted chunks
        self.rows = rows
        self.dimension = dimension
        self.bm25_params = bm25 or BM25Params()
        self.ann = ann or AnnConfig()
        self.index_dir.mkdir(parents=True, exist_ok=True)
        # Unique even for two builds in one second of one process (the older one is current).
        self.version = self.index_dir / f"v-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
        self.tmp = self.version.with_name(self.version.name + ".tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        self.vectors = (
            np.lib.format.open_memmap(self.tmp / "vectors.npy", mode="w+", dtype=np.float32, shape=(rows, dimension))
            if rows
            else np.zeros((0, dimension), dtype=np.float32)  # an empty file cannot be mapped
        )
        self.bm25 = BM25Builder(k1=self.bm25_params.k1, b=self.bm25_params.b)
        self.postings = PostingsBuilder()
        self.languages: list[str] = []
        self.documents = 0
        self.timings: dict[str, float] = {}
        self.db = sqlite3.connect(self.tmp / "store.sqlite")
        # The file is unreachable until commit has fsynced it, so SQLite's own journal buys nothing.
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.abort()

    def abort(self) -> None:
        self.db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def add_documents(self, documents: Iterable[tuple[Document, str]]) -> None:
        """Documents, each with the hash of its text (the key of incremental ingest)."""
        rows = [
            (d.doc_id, d.title, d.url, d.source, d.language, d.license, d.sha256, text_sha, d.raw_chars, d.text)
            for d, text_sha in documents
        ]
        self.db.executemany("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        self.documents += len(rows)

    def add_chunks(
        self,
        chunks: Sequence[Chunk],
        chunk_entities: Sequence[list[str]],
        vectors: np.ndarray,
        tokens: Sequence[list[str]],
    ) -> None:
        """The next batch of chunks, in row order, with their entity keys, vectors and BM25 tokens."""
        first = len(self.languages)
        if first + len(chunks) > self.rows or not len(chunks) == len(vectors) == len(tokens) == len(chunk_entities):
            raise ValueError("Chunk batch does not fit the rows announced or its parts differ in length.")
        self.vectors[first : first + len(chunks)] = vectors
        self.bm25.add(tokens)
        self.languages.extend(c.language for c in chunks)
        self.db.executemany(
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
                for row, (c, ents) in enumerate(zip(chunks, chunk_entities), first)
            ],
        )
        self.postings.add(first, chunk_entities)

    def vocabulary(self) -> dict[str, int]:
        """Every lexical token added so far, with its chunk frequency (what the lexicon is cut to)."""
        return self.bm25.document_frequencies()

    def rows_with(self, term: str) -> set[int]:
        """The rows added so far that hold a lexical token."""
        return self.bm25.documents_with(term)

    def commit(
        self,
        gazetteer: Gazetteer,
        manifest: dict[str, Any],
        lexicon: dict[str, dict[str, list[str]]] | None = None,
        facts: dict[str, dict[str, Any]] | None = None,
    ) -> Path:
        """Finish every part, fsync, and switch `current` to the new version atomically.
        `facts`: doc_id -> {"text_sha256", "facts", "aliases"} (ingest/facts.py records)."""
        if self.store.kind == "faiss":
            import faiss

        if len(self.languages) != self.rows:
            raise ValueError(f"{len(self.languages)} chunks were added, {self.rows} were announced.")
        tmp = self.tmp
        started = time.perf_counter()
        self.db.executescript(SCHEMA_INDEXES)
        write_lexicon(self.db, lexicon or {})  # timed with the indexes: both are rows of the same database
        self.db.commit()
        self.db.close()
        self.timings["sqlite_index"] = time.perf_counter() - started

        started = time.perf_counter()
        spec = choose(self.rows, self.ann)
        if self.rows:
            self.vectors.flush()
        else:
            np.save(tmp / "vectors.npy", self.vectors, allow_pickle=False)
        if self.store.kind == "faiss":
            vector_index = build(self.vectors, spec, self.ann) if self.rows else faiss.IndexFlatIP(self.dimension)
            faiss.write_index(vector_index, str(tmp / "vectors.faiss"))
            del vector_index
            self.store_report = {"kind": "faiss", "upserted": self.rows, "deleted": 0, "rebuilt": "every ingest"}
        self.timings["vector_index"] = time.perf_counter() - started

        started = time.perf_counter()
        self.bm25.save(tmp / "bm25")
        self.timings["bm25"] = time.perf_counter() - started
        np.save(tmp / "languages.npy", np.array(self.languages, dtype=str), allow_pickle=False)
        self.postings.save(tmp)

        (tmp / "gazetteer.json").write_text(json.dumps(gazetteer.to_json(), ensure_ascii=False), encoding="utf-8")
        (tmp / "facts.json").write_text(json.dumps({"documents": facts or {}}, ensure_ascii=False), encoding="utf-8")
        (tmp / READERS_LOCK).touch()
        full_manifest = {
            **manifest,
            "files": file_table(tmp),
            "format_version": FORMAT_VERSION,
            "chunks": self.rows,
            "documents": self.documents,
            "dimension": self.dimension,
            "bm25": {"k1": self.bm25_params.k1, "b": self.bm25_params.b},
            "ann": spec.to_json(),
            "store": self.store.to_json(),
            "created": time.time(),
        }
        (tmp / "manifest.json").write_text(json.dumps(full_manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        if self.store.kind == "milvus":
            # Before the switch: if Milvus fails, the previous version stays current.
            started = time.perf_counter()
            self.store_report = self._sync_milvus(full_manifest)
            self.timings["store_sync"] = time.perf_counter() - started
        del self.vectors
        started = time.perf_counter()
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        self.timings["fsync"] = time.perf_counter() - started
        tmp.rename(self.version)
        switch_current(self.index_dir, self.version)
        return self.version

    def _chunk_rows(self, where: str = "", params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        db = sqlite3.connect(f"file:{self.tmp / 'store.sqlite'}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            return db.execute(f"SELECT * FROM chunks {where} ORDER BY row", params).fetchall()
        finally:
            db.close()

    def _sync_milvus(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write what changed to the Milvus collection (ingest/store/milvus.py) and report the counts."""
        from ingest.store import StoredChunk, content_sha
        from ingest.store.milvus import sync

        settings_key = (manifest.get("embedder"), manifest.get("pipeline_version"))
        fields = ("chunk_id", "doc_id", "language", "entities", "embed_sha", "title", "url", "section", "start", "end")

        def sha(rec: sqlite3.Row) -> str:
            return content_sha(settings_key, *(rec[f] for f in fields), rec["text"])

        shas = [(rec["chunk_id"], sha(rec)) for rec in self._chunk_rows()]

        def chunks_of(rows: Sequence[int]) -> list[StoredChunk]:
            out = []
            for start in range(0, len(rows), 900):
                part = [int(r) for r in rows[start : start + 900]]
                recs = self._chunk_rows(f"WHERE row IN ({','.join('?' * len(part))})", part)
                terms = self.bm25.document_terms([r["row"] for r in recs])
                for rec, (counts, length) in zip(recs, terms):
                    out.append(
                        StoredChunk(
                            chunk_id=rec["chunk_id"],
                            doc_id=rec["doc_id"],
                            language=rec["language"],
                            models=json.loads(rec["entities"]),
                            vector=np.asarray(self.vectors[rec["row"]]),
                            term_counts=counts,
                            length=length,
                            title=rec["title"],
                            url=rec["url"],
                            section=json.loads(rec["section"]),
                            start=rec["start"],
                            end=rec["end"],
                            text=rec["text"],
                            sha=sha(rec),
                        )
                    )
            return out

        return sync(
            self.store,
            shas,
            chunks_of,
            self.dimension,
            self.bm25.average_length(),
            self.bm25_params.k1,
            self.bm25_params.b,
        )


def file_table(version: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file of a version (what `verify` checks against)."""
    table = {}
    for path in sorted(version.rglob("*")):
        name = path.relative_to(version).as_posix()
        if path.is_file() and name not in (READERS_LOCK, "manifest.json"):
            table[name] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    return table


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def switch_current(index_dir: Path, version: Path) -> None:
    """Point `current` at `version` atomically, then drop older versions nobody reads any more.
    The caller holds the build lock, so any other `.tmp` folder is a killed build's leftover."""
    link_tmp = index_dir / f".current-{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    link_tmp.symlink_to(version.name)
    os.replace(link_tmp, index_dir / "current")  # the atomic switch
    remove_old_versions(index_dir, keep=version.name)


def remove_old_versions(index_dir: Path, keep: str) -> None:
    for old in index_dir.glob("v-*"):
        if old.name != keep and old.is_dir():
            remove_unused(old)  # a version some reader still holds stays until the next ingest
    for trash in index_dir.glob(".trash-*"):
        shutil.rmtree(trash, ignore_errors=True)


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
    ann: AnnConfig | None = None,
    store: StoreConfig | None = None,
) -> Path:
    """Write a complete new version from parts already in memory, and make it current."""
    vectors = np.asarray(vectors, dtype=np.float32)
    with IndexWriter(index_dir, len(chunks), int(vectors.shape[1]), bm25=bm25, ann=ann, store=store) as writer:
        writer.add_documents(documents)
        writer.add_chunks(chunks, chunk_entities, vectors, tokens)
        return writer.commit(gazetteer, manifest, lexicon)


def current_version(index_dir: Path) -> Path:
    link = index_dir / "current"
    if not link.exists():
        raise IndexMissing(f"No index at {index_dir}. " + REBUILD_HINT.format(dir=index_dir))
    return link.resolve()


def current_version_name(index_dir: Path) -> str | None:
    """The name of the version `current` points at, without touching it (cheap: one readlink)."""
    try:
        return os.readlink(Path(index_dir) / "current")
    except OSError:
        return None


def read_manifest(version: Path, index_dir: Path) -> dict[str, Any]:
    hint = REBUILD_HINT.format(dir=index_dir)
    try:
        manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"Index manifest at {version} is unreadable ({exc}). " + hint) from exc
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"Index manifest at {version} is not a JSON object. " + hint)
    return manifest


def check_files(version: Path, manifest: dict[str, Any], index_dir: Path, hashes: bool) -> None:
    """Every file the manifest lists exists with its size (and, with `hashes`, its sha256)."""
    hint = REBUILD_HINT.format(dir=index_dir)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise IndexCorrupt(f"Index manifest at {version} lists no files. " + hint)
    for name, expected in files.items():
        path = version / name
        try:
            size = path.stat().st_size
        except OSError:
            raise IndexCorrupt(f"Index at {version} is damaged: {name} is missing. " + hint) from None
        if not isinstance(expected, dict) or size != expected.get("size"):
            raise IndexCorrupt(f"Index at {version} is damaged: {name} has the wrong size. " + hint)
        if hashes and file_sha256(path) != expected.get("sha256"):
            raise IndexCorrupt(f"Index at {version} is damaged: {name} does not match its checksum. " + hint)


class ChunkRecord(dict):
    """A chunk row as read back from the store (a dict, cheap to hand around)."""


class Index:
    """A loaded, read-only index, safe to share across threads.

    It holds a lease on its version folder until `close()` (or garbage collection), so an ingest
    running meanwhile switches `current` without deleting what this index still reads.
    `verify=True` checks every file's hash and SQLite's own consistency (what ingest does);
    otherwise sizes are always checked and hashes only for small indexes.
    """

    def __init__(
        self, index_dir: Path, embedder_name: str | None = None, verify: bool = False, store: str | None = None
    ):
        self.index_dir = Path(index_dir)
        hint = REBUILD_HINT.format(dir=self.index_dir)
        link = self.index_dir / "current"
        if not link.exists():
            raise IndexMissing(f"No index at {self.index_dir}. " + hint)
        try:
            self.version, self._lease = lease_current(link)
        except OSError as exc:
            raise IndexCorrupt(f"Index at {self.index_dir} cannot be opened ({exc}). " + hint) from exc
        self._closer = weakref.finalize(self, _release, self._lease)
        self._facts: FactStore | None = None
        self._facts_lock = threading.Lock()
        try:
            self._open(embedder_name, verify, hint, store)
        except BaseException:
            self.close()
            raise

    def _open(self, embedder_name: str | None, verify: bool, hint: str, store: str | None) -> None:
        version = self.version
        self.manifest = read_manifest(version, self.index_dir)
        if self.manifest.get("format_version") != FORMAT_VERSION or self._lease is None:
            raise IndexIncompatible(
                f"Index format {self.manifest.get('format_version')} is not the supported "
                f"format {FORMAT_VERSION}. " + hint
            )
        if embedder_name and self.manifest.get("embedder") != embedder_name:
            raise IndexIncompatible(
                f"Index was built with embedder '{self.manifest.get('embedder')}', but "
                f"'{embedder_name}' is configured. " + hint
            )
        files = self.manifest.get("files") if isinstance(self.manifest.get("files"), dict) else {}
        total = sum(f.get("size", 0) for f in files.values() if isinstance(f, dict))
        check_files(version, self.manifest, self.index_dir, hashes=verify or total <= HASH_AT_LOAD_MAX_BYTES)
        self.store_config = StoreConfig.from_manifest(self.manifest.get("store"))
        if store and store != self.store_config.kind:
            raise IncompatibleStore(
                f"Index was built for the '{self.store_config.kind}' store, but '{store}' is configured. " + hint
            )
        # Missing packages are not damage: say which one to install.
        try:
            import bm25s
        except ImportError as exc:
            raise MissingDependency("bm25s", "lexical search", exc) from exc
        try:
            self.ann = AnnSpec.from_json(self.manifest.get("ann"))
            # The BM25 arrays stay with the catalog whatever the store: question analysis reads their
            # term statistics (and the Milvus store its query-side idf).
            self.bm25 = bm25s.BM25.load(str(version / "bm25"), show_progress=False, verbosity=0)
            self.gazetteer = Gazetteer.from_json(json.loads((version / "gazetteer.json").read_text("utf-8")))
            self.db_path = version / "store.sqlite"
            self._local = threading.local()
            me = weakref.proxy(self)  # no reference cycle: a dropped index is freed at once
            self.lexicon = Lexicon(lambda sql, params: me._query(sql, params))
            self.languages = self._load_languages(version)
            self.postings = Postings(version) if Postings.exists(version) else None
            # Open the store now, so a damaged one is reported here with the rebuild hint.
            db = self._db()
            if verify and db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check found damaged pages")
            db.execute("SELECT row FROM chunks ORDER BY row DESC LIMIT 1").fetchone()
            db.execute("SELECT side FROM lexicon LIMIT 1").fetchall()  # the lexicon table is there
        except Exception as exc:  # bm25s and sqlite raise many types on damaged files
            raise IndexCorrupt(f"Index at {version} is damaged ({exc.__class__.__name__}: {exc}). " + hint) from exc
        if self.manifest.get("chunks") != len(self.languages):
            raise IndexCorrupt(
                f"Index at {version} is inconsistent ({self.manifest.get('chunks')} chunks announced, "
                f"{len(self.languages)} found). " + hint
            )
        self.faiss = None
        if self.store_config.kind == "milvus":
            from ingest.store.milvus import MilvusStore

            self.store: ChunkStore = MilvusStore.open(self.store_config, weakref.proxy(self), hint)
            weakref.finalize(self, self.store.close)  # an Index dropped without close() lets go of Milvus too
        else:
            self.store = self._local_store(version, hint)

    def _local_store(self, version: Path, hint: str) -> LocalStore:
        try:
            import faiss
        except ImportError as exc:
            raise MissingDependency("faiss-cpu", "vector search", exc) from exc
        try:
            self.faiss = faiss.read_index(str(version / "vectors.faiss"))
            configure(self.faiss, self.ann)  # nprobe / efSearch, so callers just call .search
            single_thread_search()
        except Exception as exc:  # faiss raises many types on damaged files
            raise IndexCorrupt(f"Index at {version} is damaged ({exc.__class__.__name__}: {exc}). " + hint) from exc
        if self.faiss.ntotal != len(self.languages):
            raise IndexCorrupt(
                f"Index at {version} is inconsistent ({self.faiss.ntotal} vectors, "
                f"{len(self.languages)} chunks). " + hint
            )
        # A proxy, not bound methods: a store holding the Index would make a reference cycle, and the
        # version's lease would then wait for the cyclic garbage collector instead of going with the Index.
        me = weakref.proxy(self)
        return LocalStore(
            self.faiss,
            self.ann,
            self.bm25,
            self.languages,
            lambda keys: me.rows_mentioning(keys),
            lambda: me.vectors(),
            lambda exc: me.damaged(exc),
        )

    def fact_records(self) -> dict[str, dict[str, Any]]:
        """doc_id -> the facts and aliases extracted from that document (what ingest reuses)."""
        path = self.version / "facts.json"
        try:
            records = json.loads(path.read_text("utf-8"))["documents"]
        except FileNotFoundError:
            return {}  # built before fact sheets existed
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise self.damaged(exc) from exc
        if not isinstance(records, dict):
            raise self.damaged(ValueError("facts.json holds no document table"))
        return records

    @property
    def facts(self) -> FactStore:
        """The model fact sheets of every document, built on first use (a few ms) and kept."""
        with self._facts_lock:
            if self._facts is None:
                from ingest.fact_store import Fact, FactStore

                records = self.fact_records().values()
                try:
                    self._facts = FactStore(
                        (Fact.from_json(f) for r in records for f in r["facts"]),
                        (tuple(pair) for r in records for pair in r["aliases"]),
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise self.damaged(exc) from exc
            return self._facts

    @property
    def version_name(self) -> str:
        return self.version.name

    def close(self) -> None:
        """Let go of the version folder (a later ingest may then delete it) and of the store."""
        store = getattr(self, "store", None)
        if store is not None:
            store.close()
        self._closer()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def damaged(self, exc: BaseException) -> IndexCorrupt:
        return IndexCorrupt(
            f"Index at {self.version} is damaged ({exc.__class__.__name__}: {exc}). "
            + REBUILD_HINT.format(dir=self.index_dir)
        )

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read on the store; SQLite damage found only now is still reported as damage."""
        try:
            return self._db().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from exc

    def _load_languages(self, version: Path) -> np.ndarray:
        """Each row's language ('zh', 'en'), as a fixed-width string array (8 bytes a row)."""
        path = version / "languages.npy"
        if path.exists():
            return np.load(path, allow_pickle=False)
        # Indexes written before languages.npy existed: read the column (slow past ~100k rows).
        return np.array([row[0] for row in self._query("SELECT language FROM chunks ORDER BY row")])

    def search_vectors(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product scores and rows of the k nearest chunks of each query vector (-1: none)."""
        k = max(1, min(k, len(self)))
        hits = self.store.search_dense(np.atleast_2d(vectors), k)
        scores = np.full((len(hits), k), -np.inf, dtype=np.float32)
        rows = np.full((len(hits), k), -1, dtype=np.int64)
        for i, h in enumerate(hits):
            scores[i, : len(h)], rows[i, : len(h)] = h.scores, h.rows
        return scores, rows

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
            r["row"]: r for r in self._query(f"SELECT * FROM chunks WHERE row IN ({marks})", [int(r) for r in rows])
        }
        if len(found) != len(set(int(r) for r in rows)):
            raise self.damaged(LookupError("chunk rows are missing from the store"))
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

    def has_term(self, term: str) -> bool:
        """Whether the lexical index holds the token."""
        return term in self.bm25.vocab_dict

    def term_rows(self, terms: Iterable[str]) -> np.ndarray:
        """A boolean mask of the rows holding any of the tokens."""
        mask = np.zeros(len(self), dtype=bool)
        for term in terms:
            if term in self.bm25.vocab_dict:
                mask |= self.bm25.get_scores([term]) > 0
        return mask

    def term_idf(self, term: str) -> float:
        """BM25's idf of a token over this catalog (0 for a token it lacks), as bm25s computes it."""
        column = self.bm25.vocab_dict.get(term)
        if column is None:
            return 0.0
        indptr = self.bm25.scores["indptr"]
        df = int(indptr[column + 1] - indptr[column])
        n = len(self)
        return float(np.float32(np.log(1 + (n - df + 0.5) / (df + 0.5))))

    def chunk_rows(self, chunk_ids: Sequence[str]) -> dict[str, int]:
        """chunk_id -> row, for the ids this catalog holds (a store keyed by chunk id maps its hits so)."""
        out: dict[str, int] = {}
        ids = list(dict.fromkeys(chunk_ids))
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            part = ids[start : start + 900]
            marks = ",".join("?" * len(part))
            out.update(self._query(f"SELECT chunk_id, row FROM chunks WHERE chunk_id IN ({marks})", part))
        return out

    def language_of(self, rows: Sequence[int]) -> list[str]:
        return [str(self.languages[int(r)]) for r in rows]

    def rows_covering(self, doc_id: str, start: int, end: int) -> list[int]:
        """Rows of the document's chunks holding the span [start, end), best-fitting first."""
        found = self._query(
            'SELECT row FROM chunks WHERE doc_id = ? AND start <= ? AND "end" >= ? ORDER BY "end" - start',
            (doc_id, start, end),
        )
        return [r[0] for r in found]

    def rows_mentioning(self, entity_keys: Sequence[str]) -> np.ndarray:
        """Rows of chunks whose text, title or section names any of the entity keys."""
        if not entity_keys:
            return np.zeros(0, dtype=np.int64)
        if self.postings is not None:
            return self.postings.rows_naming(entity_keys)
        # Indexes written before the postings existed: scan every chunk (slow past ~100k).
        clauses = " OR ".join("entities LIKE ?" for _ in entity_keys)
        rows = self._query(f"SELECT row FROM chunks WHERE {clauses}", [f'%"{k}"%' for k in entity_keys])
        return np.array([r[0] for r in rows], dtype=np.int64)

    def embed_rows(self) -> dict[str, int]:
        """embed_sha -> row, to reuse vectors of unchanged chunks."""
        return {sha: row for row, sha in self._query("SELECT row, embed_sha FROM chunks")}

    def document(self, doc_id: str) -> dict[str, Any] | None:
        found = self._query("SELECT * FROM documents WHERE doc_id = ?", (doc_id,))
        return dict(found[0]) if found else None

    def documents(self) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._query("SELECT doc_id, title, url, source, language, sha256, text_sha256 FROM documents")
        ]

    def vectors(self) -> np.ndarray:
        """All vectors, memory-mapped: rows are read from disk only when touched."""
        try:
            return np.load(self.version / "vectors.npy", allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise self.damaged(exc) from exc


def _release(lease: ReaderLease | None) -> None:
    if lease is not None:
        lease.release()
