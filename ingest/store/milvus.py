"""Chunks in a Milvus collection (pymilvus MilvusClient): a milvus-lite file or a server, one code path.

One entity per chunk, keyed by chunk id:

    chunk_id  VARCHAR primary key        vector   FLOAT_VECTOR, inner product (FLAT / IVF_FLAT on
    doc_id, language  VARCHAR (filters)           milvus-lite, which offers nothing else; HNSW or
    models    ARRAY<VARCHAR> gazetteer keys       IVF_SQ8 on a server)
    lexical   SPARSE_FLOAT_VECTOR: our own BM25 tokens, pre-analysed (see below)
    title, url, section, start, end, text, sha (content hash: what a re-ingest compares)

Lexical search runs inside Milvus over a sparse inverted index. Milvus's built-in BM25 function
would re-tokenise the text with its own analyser (jieba's default dictionary for Chinese, no
stemming for English) and score the question's words without their weights, so its ranking is not
ours. Instead each chunk stores, per token of our tokeniser, BM25's length-normalised term
frequency tf / (k1 * (1 - b + b * len / avglen) + tf); a question sends each term's weight times
its idf (from the index catalog's term statistics), and the inner product is then our weighted
BM25 score. Token ids are a 32-bit hash of the token (collisions merge two tokens' postings: a few
among 250k tokens). avglen is fixed when the collection is created; an ingest whose corpus has
drifted more than 10% from it rewrites every chunk.

The catalog (documents, chunk rows, facts, term statistics, the vectors kept for reuse) stays in
the index version folder in SQLite and .npy files: hits come back as chunk ids and are mapped to
the catalog's rows, so the retriever ranks and breaks ties exactly as with the FAISS store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.errors import MissingDependency
from ingest.store import Hits, StoredChunk, StoreUnavailable
from ingest.store.config import StoreConfig, is_server

if TYPE_CHECKING:
    from ingest.index import Index

log = logging.getLogger("llm_atlas.store")

FORMAT = 1  # bump when the schema or the lexical weighting changes: the collection is then rebuilt
AVGLEN_DRIFT = 0.10
BATCH = 1000
MAX_TOPK = 16_384  # Milvus's limit on k
TEXT_BYTES = 60_000  # VARCHAR max_length is in bytes; the full text is in the catalog anyway
INSTALL = "'llm-atlas[milvus]'"
# Clients open per milvus-lite file in this process. The embedded server holds the file until it
# stops, and no other process can open it meanwhile (an ingest beside a server), so the last
# client to close stops it.
_LITE_CLIENTS: dict[str, int] = {}
_LITE_LOCK = threading.Lock()


def client_for(config: StoreConfig) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MissingDependency("pymilvus", "the Milvus store (LLM_ATLAS_STORE=milvus)", exc, INSTALL) from exc
    if not is_server(config.uri):
        try:
            import milvus_lite  # noqa: F401  (pymilvus starts it for a file URI)
        except ImportError as exc:
            raise MissingDependency("milvus-lite", "the embedded Milvus engine (a file URI)", exc, INSTALL) from exc
    try:
        client = MilvusClient(uri=config.uri)
    except Exception as exc:  # grpc, milvus-lite and pymilvus each raise their own types
        why = (
            ""
            if is_server(config.uri)
            else (
                "; a milvus-lite file is open in one process at a time: stop the other one, or run Milvus "
                "standalone and set LLM_ATLAS_MILVUS_URI=http://host:19530"
            )
        )
        raise StoreUnavailable(
            f"Milvus at {config.uri} cannot be opened ({exc.__class__.__name__}: {exc}){why}"
        ) from exc
    if not is_server(config.uri):
        with _LITE_LOCK:
            _LITE_CLIENTS[config.uri] = _LITE_CLIENTS.get(config.uri, 0) + 1
    return client


def release(client: Any, uri: str) -> None:
    """Close a client; the last one on a milvus-lite file stops its embedded server."""
    with contextlib.suppress(Exception):  # closing a connection that is already gone is not an error
        client.close()
    if is_server(uri):
        return
    with _LITE_LOCK:
        left = _LITE_CLIENTS.get(uri, 1) - 1
        _LITE_CLIENTS[uri] = max(left, 0)
        if left <= 0:
            from milvus_lite.server_manager import server_manager_instance

            with contextlib.suppress(Exception):
                server_manager_instance.release_server(uri)


def term_id(token: str) -> int:
    """A token's sparse dimension: 32 bits of its hash (Milvus takes indices below 2**32 - 1)."""
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little") % (2**32 - 1)


def lexical_vector(counts: Mapping[str, float], length: int, avglen: float, k1: float, b: float) -> dict[int, float]:
    norm = k1 * ((1 - b) + b * length / avglen)
    out: dict[int, float] = {}
    for token, tf in counts.items():
        if token:
            tid = term_id(token)
            out[tid] = out.get(tid, 0.0) + float(tf / (norm + tf))
    return out


def quoted(values: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def filter_expr(language: str | None, models: Sequence[str] | None) -> str:
    parts = []
    if language is not None:
        parts.append(f"language == {json.dumps(language)}")
    if models is not None:
        parts.append(f"ARRAY_CONTAINS_ANY(models, {quoted(models)})")
    return " and ".join(parts)


class MilvusStore:
    kind = "milvus"

    def __init__(
        self,
        client: Any,
        config: StoreConfig,
        rows_of: Callable[[Sequence[str]], dict[str, int]] | None = None,
        idf: Callable[[str], float] | None = None,
    ):
        self.client = client
        self.config = config
        self.collection = config.collection
        self._rows_of = rows_of
        self._idf = idf
        self.meta = self._meta() if client.has_collection(self.collection) else {}

    # --- opening --------------------------------------------------------------------------------
    @classmethod
    def open(cls, config: StoreConfig, index: Index, hint: str) -> MilvusStore:
        """The store an index's catalog points at, checked: the collection exists and holds exactly
        the catalog's chunks (a clear error with the rebuild command otherwise)."""
        from ingest.index import IndexCorrupt

        where = f"Milvus collection '{config.collection}' at {config.uri}"
        try:
            # Lambdas over the caller's proxy: bound methods would hold the Index (a reference cycle).
            store = cls(client_for(config), config, lambda ids: index.chunk_rows(ids), lambda t: index.term_idf(t))
        except MissingDependency:
            raise
        except Exception as exc:
            raise IndexCorrupt(f"The store of the index at {index.index_dir} is unusable ({exc}). " + hint) from exc
        try:
            if not store.meta:
                raise StoreUnavailable(f"{where} does not exist")
            store.client.load_collection(store.collection)
            held = store.count()
        except Exception as exc:
            store.close()
            raise IndexCorrupt(f"The store of the index at {index.index_dir} is unusable ({exc}). " + hint) from exc
        if held != len(index):
            store.close()
            raise IndexCorrupt(
                f"{where} holds {held} chunks, the index catalog {len(index)}: they are out of step. " + hint
            )
        return store

    def _meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.client.describe_collection(self.collection).get("description") or "{}")
        except ValueError:
            return {}

    def close(self) -> None:
        if self.client is not None:
            release(self.client, self.config.uri)
            self.client = None

    def count(self) -> int:
        found = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(found[0]["count(*)"])

    # --- schema ---------------------------------------------------------------------------------
    def vector_index(self, rows: int) -> tuple[str, dict[str, Any]]:
        kind = self.config.index
        if kind == "auto":
            # milvus-lite builds FLAT and IVF_FLAT only.
            exact = rows <= self.config.exact_max
            kind = "HNSW" if is_server(self.config.uri) else "FLAT" if exact else "IVF_FLAT"
        if kind == "HNSW":
            return kind, {"M": 32, "efConstruction": 200}
        if kind in ("IVF_FLAT", "IVF_SQ8"):
            return kind, {"nlist": int(min(65536, max(16, 2 ** round(math.log2(2 * math.sqrt(max(rows, 1)))))))}
        return "FLAT", {}

    def create(self, dimension: int, rows: int, avglen: float, k1: float, b: float) -> None:
        """A new, empty collection (an existing one of that name is dropped)."""
        from pymilvus import DataType, MilvusClient

        if self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)
        kind, params = self.vector_index(rows)
        self.meta = {
            "format": FORMAT,
            "dimension": dimension,
            "avglen": avglen,
            "k1": k1,
            "b": b,
            "index": kind,
            "index_params": params,
        }
        schema = MilvusClient.create_schema(auto_id=False, description=json.dumps(self.meta))
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=1024)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("lexical", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("language", DataType.VARCHAR, max_length=16)
        schema.add_field("models", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4096, max_length=256)
        schema.add_field("title", DataType.VARCHAR, max_length=4096)
        schema.add_field("url", DataType.VARCHAR, max_length=4096)
        schema.add_field("section", DataType.VARCHAR, max_length=8192)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=65535)
        schema.add_field("sha", DataType.VARCHAR, max_length=64)
        index_params = self.client.prepare_index_params()
        index_params.add_index("vector", index_type=kind, metric_type="IP", params=params)
        index_params.add_index("lexical", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        # Strong: an ingest's writes are visible to the very next search (the catalog switches at once).
        self.client.create_collection(
            self.collection, schema=schema, index_params=index_params, consistency_level="Strong"
        )

    # --- writing --------------------------------------------------------------------------------
    def entity(self, chunk: StoredChunk) -> dict[str, Any]:
        m = self.meta
        text = chunk.text.encode()[:TEXT_BYTES].decode(errors="ignore")
        return {
            "chunk_id": chunk.chunk_id,
            "vector": np.asarray(chunk.vector, dtype=np.float32).tolist(),
            "lexical": lexical_vector(chunk.term_counts, chunk.length, m["avglen"], m["k1"], m["b"]) or {0: 0.0},
            "doc_id": chunk.doc_id,
            "language": chunk.language,
            "models": list(chunk.models),
            "title": chunk.title.encode()[:4000].decode(errors="ignore"),
            "url": chunk.url.encode()[:4000].decode(errors="ignore"),
            "section": json.dumps(chunk.section, ensure_ascii=False).encode()[:8000].decode(errors="ignore"),
            "start": int(chunk.start),
            "end": int(chunk.end),
            "text": text,
            "sha": chunk.sha,
        }

    def upsert(self, chunks: Sequence[StoredChunk]) -> int:
        written = 0
        for start in range(0, len(chunks), BATCH):
            part = [self.entity(c) for c in chunks[start : start + BATCH]]
            written += int(self.client.upsert(self.collection, part)["upsert_count"])
        return written

    def delete(self, chunk_ids: Sequence[str]) -> int:
        deleted = 0
        ids = list(chunk_ids)
        for start in range(0, len(ids), BATCH):
            found = self.client.delete(self.collection, ids=ids[start : start + BATCH])
            deleted += len(found) if isinstance(found, list) else int(found.get("delete_count", 0))
        return deleted

    def stored(self) -> dict[str, str]:
        """Paged by primary key: Milvus returns a limited query's smallest keys in key order (what
        pymilvus's own query_iterator relies on). Paging stops at the count, never asking for an
        empty page: milvus-lite 2.5.1 answers one with an untyped array field pymilvus cannot read
        (which also breaks query_iterator)."""
        out: dict[str, str] = {}
        held = self.count()
        last = None
        while len(out) < held:
            where = f"chunk_id > {json.dumps(last)}" if last is not None else 'chunk_id != ""'
            batch = self.client.query(self.collection, filter=where, output_fields=["chunk_id", "sha"], limit=4096)
            fresh = {e["chunk_id"]: e["sha"] for e in batch if e["chunk_id"] not in out}
            if not fresh:
                raise StoreUnavailable(f"paging the collection found {len(out)} of its {held} chunks")
            out.update(fresh)
            last = max(fresh)
        return out

    def flush(self) -> None:
        self.client.flush(self.collection)

    # --- searching ------------------------------------------------------------------------------
    def _search_params(self, k: int) -> dict[str, Any]:
        kind = self.meta.get("index")
        if kind == "HNSW":
            return {"metric_type": "IP", "params": {"ef": max(self.config.ef, k)}}
        if kind in ("IVF_FLAT", "IVF_SQ8"):
            nlist = self.meta.get("index_params", {}).get("nlist", 1)
            return {"metric_type": "IP", "params": {"nprobe": min(self.config.nprobe, nlist)}}
        return {"metric_type": "IP", "params": {}}

    def _hits(self, found: list[dict[str, Any]]) -> Hits:
        ids = [h["id"] for h in found]
        rows = self._rows_of(ids) if self._rows_of else {i: n for n, i in enumerate(ids)}
        # An id the catalog lacks is a chunk written by an ingest whose catalog is not current yet.
        kept = [(rows[h["id"]], h["distance"]) for h in found if h["id"] in rows]
        if not kept:
            return Hits.empty()
        return Hits(np.array([r for r, _ in kept], dtype=np.int64), np.array([s for _, s in kept], dtype=np.float32))

    def search_dense(
        self, vectors: np.ndarray, k: int, language: str | None = None, models: Sequence[str] | None = None
    ) -> list[Hits]:
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if k <= 0 or (models is not None and not models):
            return [Hits.empty() for _ in queries]
        k = min(k, MAX_TOPK)
        found = self.client.search(
            self.collection,
            data=queries.tolist(),
            anns_field="vector",
            limit=k,
            filter=filter_expr(language, models),
            search_params=self._search_params(k),
        )
        return [self._hits(list(hits)) for hits in found]

    def query_vector(self, terms: Mapping[str, float]) -> dict[int, float]:
        out: dict[int, float] = {}
        for term, weight in terms.items():
            idf = self._idf(term) if self._idf else 1.0
            if idf > 0 and weight > 0:
                tid = term_id(term)
                out[tid] = out.get(tid, 0.0) + weight * idf
        return out

    def search_lexical(
        self, terms: Mapping[str, float], k: int, language: str | None = None, models: Sequence[str] | None = None
    ) -> Hits:
        query = self.query_vector(terms)
        if k <= 0 or not query or (models is not None and not models):
            return Hits.empty()
        found = self.client.search(
            self.collection,
            data=[query],
            anns_field="lexical",
            limit=min(k, MAX_TOPK),
            filter=filter_expr(language, models),
            search_params={"metric_type": "IP", "params": {"drop_ratio_search": 0.0}},
        )
        hits = self._hits(list(found[0]))
        keep = hits.scores > 0
        return Hits(hits.rows[keep], hits.scores[keep])


def sync(
    config: StoreConfig,
    shas: Sequence[tuple[str, str]],
    chunks_of: Callable[[Sequence[int]], list[StoredChunk]],
    dimension: int,
    avglen: float,
    k1: float,
    b: float,
) -> dict[str, Any]:
    """Make the collection hold exactly these chunks (`shas`: (chunk_id, content hash) per catalog
    row): upsert what is new or changed, delete what is gone. Returns the counts written."""
    store = MilvusStore(client_for(config), config)
    try:
        return _sync(store, shas, chunks_of, dimension, avglen, k1, b)
    except (StoreUnavailable, MissingDependency):
        raise
    except Exception as exc:  # pymilvus and grpc errors: the previous index version stays current
        raise StoreUnavailable(
            f"Writing to Milvus at {config.uri} failed ({exc.__class__.__name__}: {exc}); the previous index "
            "version is still current"
        ) from exc
    finally:
        store.close()


def _sync(
    store: MilvusStore,
    shas: Sequence[tuple[str, str]],
    chunks_of: Callable[[Sequence[int]], list[StoredChunk]],
    dimension: int,
    avglen: float,
    k1: float,
    b: float,
) -> dict[str, Any]:
    m = store.meta
    reason = None
    if not m:
        reason = "no collection yet"
    elif (m.get("format"), m.get("dimension"), m.get("k1"), m.get("b")) != (FORMAT, dimension, k1, b):
        reason = "collection written with other settings"
    elif abs(avglen / m["avglen"] - 1) > AVGLEN_DRIFT:
        reason = f"average chunk length moved from {m['avglen']:.1f} to {avglen:.1f} tokens"
    if reason:
        store.create(dimension, len(shas), avglen, k1, b)
        stored: dict[str, str] = {}
    else:
        stored = store.stored()
    wanted = {cid: sha for cid, sha in shas}
    changed = [row for row, (cid, sha) in enumerate(shas) if stored.get(cid) != sha]
    gone = [cid for cid in stored if cid not in wanted]
    upserted = 0
    for start in range(0, len(changed), BATCH * 4):
        upserted += store.upsert(chunks_of(changed[start : start + BATCH * 4]))
    deleted = store.delete(gone) if gone else 0
    if changed or gone:
        store.flush()
    if reason is None:
        store.client.load_collection(store.collection)
    held = store.count()
    if held != len(wanted):
        raise StoreUnavailable(f"after writing, the collection holds {held} chunks instead of {len(wanted)}")
    return {"kind": "milvus", "upserted": upserted, "deleted": deleted, "rebuilt": reason}
