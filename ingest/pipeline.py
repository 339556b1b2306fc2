"""Ingest end to end: sources -> cleaned documents -> chunks -> embeddings -> index on disk.

Incremental: a document whose cleaned text (and the chunking and embedder settings) did
not change keeps its vectors from the previous index; only new or changed documents are
embedded, removed ones are dropped, and an unchanged corpus rewrites nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.ann import AnnConfig
from ingest.chunk import chunk_document, detect_language
from ingest.clean import CleanReport, clean_lines, template_lines, to_text
from ingest.entities import Gazetteer, family_key
from ingest.errors import MissingDependency
from ingest.index import Index, IndexCorrupt, IndexProblem, IndexWriter, current_version_name, remove_old_versions
from ingest.lexicon import build_lexicon
from ingest.load import Skipped, iter_bundled_corpus, iter_sources
from ingest.locks import build_lock
from ingest.schema import Chunk, Document, RawSource
from ingest.settings import IngestSettings
from ingest.store.config import StoreConfig
from ingest.tokenize import tokenize

Progress = Callable[[str, int, int], None]

# Bump when cleaning, chunking, tokenizing, the lexicon or the gazetteer change: the next ingest then
# rebuilds the lexical index and metadata (vectors of unchanged chunk texts are still reused).
PIPELINE_VERSION = 17


@dataclass
class IngestReport:
    index_dir: Path
    documents: int = 0
    chunks: int = 0
    embedded_chunks: int = 0
    reused_chunks: int = 0
    changed_documents: int = 0
    removed_documents: int = 0
    up_to_date: bool = False
    rebuilt_because: str | None = None  # why the previous index could not be reused
    version: str | None = None
    skipped: list[Skipped] = field(default_factory=list)
    cleaning: dict[str, tuple[int, int]] = field(default_factory=dict)  # source -> chars before, after
    embed_seconds: float = 0.0
    facts: int = 0
    facts_extracted_documents: int = 0  # documents whose facts were extracted (not reused) this run
    facts_seconds: float = 0.0
    store: dict = field(default_factory=dict)  # kind, upserted / deleted chunks, why it was rebuilt
    ray: dict | None = None  # where the embedding ran when on Ray (address, actors, texts per process)
    seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.embedded_chunks / self.embed_seconds if self.embed_seconds else 0.0

    def to_json(self) -> dict:
        return {
            "index": str(self.index_dir),
            "version": self.version,
            "documents": self.documents,
            "chunks": self.chunks,
            "embedded_chunks": self.embedded_chunks,
            "reused_chunks": self.reused_chunks,
            "changed_documents": self.changed_documents,
            "removed_documents": self.removed_documents,
            "up_to_date": self.up_to_date,
            "rebuilt_because": self.rebuilt_because,
            "facts": self.facts,
            "facts_extracted_documents": self.facts_extracted_documents,
            "facts_seconds": round(self.facts_seconds, 3),
            "store": self.store,
            "ray": self.ray,
            "skipped": [{"source": s.source, "reason": s.reason} for s in self.skipped],
            "seconds": round(self.seconds, 3),
        }


def doc_id_for(source: str) -> str:
    stem = Path(source.rstrip("/")).stem or "doc"
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:40] or "doc"
    return f"{slug}-{hashlib.sha1(source.encode()).hexdigest()[:6]}"


def title_for(raw: RawSource, found: str | None, text: str) -> str:
    if raw.title:
        return raw.title
    if found:
        return found.strip()
    for line in text.split("\n"):
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120]
    return Path(raw.source).name


def load_sources(targets: Iterable[str] | None, settings: IngestSettings) -> tuple[list[RawSource], list[Skipped]]:
    items = (
        iter_bundled_corpus(settings.max_file_bytes)
        if not targets
        else iter_sources(targets, settings.max_file_bytes, settings.fetch_timeout)
    )
    sources, skipped = [], []
    for item in items:
        (skipped if isinstance(item, Skipped) else sources).append(item)
    return sources, skipped


def clean_documents(sources: list[RawSource], report: IngestReport) -> list[Document]:
    """Clean every source; repetition is judged across the whole batch."""
    converted = []
    for raw in sources:
        try:
            text, found_title = to_text(raw.content, raw.format)
        except MissingDependency:
            raise  # an install problem, never one skipped document
        except Exception as exc:  # a parser failing on one odd file must not stop the run
            report.skipped.append(Skipped(raw.source, f"cannot parse {raw.format} ({exc.__class__.__name__})"))
            continue
        converted.append((raw, text, found_title))
    shared = template_lines(text for _, text, _ in converted)
    seen_paragraphs: set[str] = set()
    documents = []
    for raw, text, found_title in converted:
        clean_report = CleanReport(chars_before=len(raw.content))
        cleaned = clean_lines(text, shared, seen_paragraphs, clean_report)
        report.cleaning[raw.source] = (len(raw.content), len(cleaned))
        if not cleaned.strip():
            report.skipped.append(Skipped(raw.source, "no content left after cleaning"))
            continue
        source_key = raw.url if raw.url and raw.source.startswith("http") else raw.source
        doc_id = doc_id_for(source_key)
        documents.append(
            Document(
                doc_id=doc_id,
                title=title_for(raw, found_title, cleaned),
                url=raw.url or raw.source,
                source=raw.source,
                language=raw.language or detect_language(cleaned),
                license=raw.license,
                sha256=raw.sha256,
                text=cleaned,
                raw_chars=len(raw.content),
            )
        )
    return documents


def text_hash(doc: Document, settings_key: str) -> str:
    return hashlib.sha256(f"{settings_key}\n{doc.title}\n{doc.url}\n{doc.text}".encode()).hexdigest()


def lexical_parts(gazetteer: Gazetteer, embed_texts: Sequence[str]) -> tuple[list[list[str]], list[list[str]]]:
    """What the index keeps of each chunk's embedded text besides its vector: BM25 tokens, and the
    gazetteer keys it names with their families (vicuna13b also names vicuna)."""
    tokens = [tokenize(text) for text in embed_texts]
    entities = []
    for text in embed_texts:
        keys = gazetteer.find(text)
        entities.append(sorted(set(keys) | {family_key(k) for k in keys}))
    return tokens, entities


def document_facts(
    documents: Sequence[Document], hashes: dict[str, str], prev: Index | None, report: IngestReport
) -> dict[str, dict]:
    """Each document's fact records: reused from the previous index when its text is unchanged,
    extracted otherwise (extraction is a pure function of one document)."""
    from ingest.facts import EXTRACTOR_VERSION, extract

    started = time.perf_counter()
    previous = prev.fact_records() if prev else {}
    records = {}
    for doc in documents:
        old = previous.get(doc.doc_id)
        key = {"text_sha256": hashes[doc.doc_id], "extractor": EXTRACTOR_VERSION}  # a new extractor re-reads all
        if old and all(old.get(k) == v for k, v in key.items()):
            records[doc.doc_id] = old
            continue
        facts, aliases = extract(doc)
        records[doc.doc_id] = {**key, "facts": [f.to_json() for f in facts], "aliases": [list(p) for p in aliases]}
        report.facts_extracted_documents += 1
    report.facts = sum(len(r["facts"]) for r in records.values())
    report.facts_seconds = time.perf_counter() - started
    return records


def previous_index(index_dir: Path, embedder: str, report: IngestReport) -> Index | None:
    """The current index, fully verified, to reuse vectors from; None means build from scratch."""
    try:
        return Index(index_dir, embedder_name=embedder, verify=True)
    except IndexCorrupt as exc:
        report.rebuilt_because = str(exc).split(" Rebuild it")[0]
        return None
    except IndexProblem:
        return None  # missing or built with other settings: nothing reusable


def ray_vectors(
    embed_texts: list[str],
    shas: list[str],
    old_rows: dict[str, int],
    settings: IngestSettings,
    report: IngestReport,
    progress: Progress,
) -> dict[int, np.ndarray] | None:
    """With a Ray address set, every chunk that needs a vector is embedded in one Ray job
    (one actor pool, each actor loading the model once); row -> vector. None: in process."""
    fresh = [i for i, sha in enumerate(shas) if sha not in old_rows]
    if not settings.ray_address or not fresh:
        return None
    from ingest.ray_embed import RayJob, embed_on_ray

    job = RayJob(
        address=settings.ray_address,
        actors=settings.ray_actors,
        batch_size=settings.embed_batch_size,
        cpus_per_actor=settings.ray_cpus_per_actor,
        gpus_per_actor=settings.ray_gpus_per_actor,
    )
    progress("embedding", 0, len(fresh))
    vectors, ray_report = embed_on_ray([embed_texts[i] for i in fresh], settings.embedder, job)
    report.embed_seconds += ray_report.seconds
    report.ray = ray_report.model_dump()
    progress("embedding", len(fresh), len(fresh))
    return dict(zip(fresh, vectors, strict=True))


def run_ingest(
    targets: list[str] | None,
    settings: IngestSettings,
    index_dir: Path | None = None,
    progress: Progress | None = None,
    add: bool = False,
) -> IngestReport:
    """Build or update the index at `index_dir` from `targets` (the bundled corpus when empty).

    One builder at a time: a second call on the same folder waits for the first, then finds
    its result (usually: up to date)."""
    index_dir = Path(index_dir or settings.index_dir)
    with build_lock(index_dir):
        return _run_ingest(targets, settings, index_dir, progress, add)


def _run_ingest(
    targets: list[str] | None,
    settings: IngestSettings,
    index_dir: Path,
    progress: Progress | None,
    add: bool,
) -> IngestReport:
    started = time.perf_counter()
    report = IngestReport(index_dir=index_dir)
    progress = progress or (lambda stage, done, total: None)

    progress("loading", 0, 1)
    sources, report.skipped = load_sources(targets, settings)
    documents = clean_documents(sources, report)
    settings_key = f"{settings.embedder}|{settings.chunk_chars}"
    hashes = {d.doc_id: text_hash(d, settings_key) for d in documents}

    prev = previous_index(index_dir, settings.embedder, report)
    try:
        _build(documents, hashes, prev, settings, index_dir, report, progress, add)
    finally:
        if prev is not None:
            prev.close()  # our own lease must not keep the old version alive
    report.version = current_version_name(index_dir)
    if report.version:
        remove_old_versions(index_dir, keep=report.version)
    report.seconds = time.perf_counter() - started
    return report


def _build(
    documents: list[Document],
    hashes: dict[str, str],
    prev: Index | None,
    settings: IngestSettings,
    index_dir: Path,
    report: IngestReport,
    progress: Progress,
    add: bool,
) -> None:
    from ingest.embed import make_embedder

    prev_docs = {d["doc_id"]: d for d in prev.documents()} if prev else {}
    if add and prev:  # keep what the previous index had that this run did not touch
        kept_ids = [i for i in prev_docs if i not in hashes]
        for doc_id in kept_ids:
            rec = prev.document(doc_id)
            documents.append(Document(**{k: rec[k] for k in Document.model_fields if k in rec}))
            hashes[doc_id] = rec["text_sha256"]
    unchanged = {i for i, h in hashes.items() if prev_docs.get(i, {}).get("text_sha256") == h}
    report.documents = len(documents)
    report.changed_documents = len(documents) - len(unchanged)
    report.removed_documents = len(set(prev_docs) - set(hashes))
    from ingest.facts import EXTRACTOR_VERSION

    store = StoreConfig.from_settings(settings, index_dir)
    same_pipeline = (
        bool(prev)
        and prev.manifest.get("pipeline_version") == PIPELINE_VERSION
        and prev.manifest.get("fact_extractor") == EXTRACTOR_VERSION
        and prev.store_config == store
    )
    if same_pipeline and report.changed_documents == 0 and report.removed_documents == 0:
        report.up_to_date = True
        report.chunks = len(prev)
        report.reused_chunks = len(prev)
        report.store = {"kind": store.kind, "upserted": 0, "deleted": 0, "rebuilt": None}
        return

    facts = document_facts(documents, hashes, prev, report)
    chunks: list[Chunk] = []
    for doc in documents:
        chunks.extend(chunk_document(doc, settings.chunk_chars, markdown=not doc.source.endswith(".txt")))
    report.chunks = len(chunks)

    # Vectors of chunks whose embedded text is unchanged are reused; the rest are embedded.
    # Batch by batch, each chunk's vector, tokens and entities go straight to the index writer.
    embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    old_rows = prev.embed_rows() if prev else {}
    old_vectors = prev.vectors() if prev and old_rows else None
    embed_texts = [c.embed_text() for c in chunks]
    shas = [hashlib.sha256(t.encode()).hexdigest() for t in embed_texts]
    report.embedded_chunks = sum(1 for sha in shas if sha not in old_rows)
    report.reused_chunks = len(chunks) - report.embedded_chunks
    on_ray = ray_vectors(embed_texts, shas, old_rows, settings, report, progress)

    def vector_batches(size: int) -> Iterator[tuple[range, np.ndarray]]:
        embedded = 0
        for start in range(0, len(chunks), size):
            rows = range(start, min(start + size, len(chunks)))
            fresh = [i for i in rows if shas[i] not in old_rows]
            new = None  # a batch can be all reused (an added document's chunks come last)
            if fresh:
                progress("embedding", embedded, report.embedded_chunks)
                embed_started = time.perf_counter()
                if on_ray is not None:
                    new = np.stack([on_ray[i] for i in fresh])
                else:
                    new = embedder.encode([embed_texts[i] for i in fresh])
                    report.embed_seconds += time.perf_counter() - embed_started
                embedded += len(fresh)
            dimension = new.shape[1] if new is not None else old_vectors.shape[1]
            vectors = np.zeros((len(rows), dimension), dtype=np.float32)
            if new is not None:
                vectors[[i - start for i in fresh]] = new
            for i in rows:
                if shas[i] in old_rows:
                    vectors[i - start] = old_vectors[old_rows[shas[i]]]
            yield rows, vectors
        progress("embedding", embedded, report.embedded_chunks)

    batches = vector_batches(settings.embed_batch_size * 8)
    first = next(batches, None)
    if first is None:
        raise ValueError("Nothing to index: every source was skipped or empty.")
    gazetteer = Gazetteer.build(embed_texts)
    manifest = {
        "embedder": settings.embedder,
        "chunk_chars": settings.chunk_chars,
        "pipeline_version": PIPELINE_VERSION,
        "fact_extractor": EXTRACTOR_VERSION,
        "sources": {d.doc_id: d.sha256 for d in documents},
    }
    ann = AnnConfig.from_settings(settings)
    with IndexWriter(index_dir, len(chunks), first[1].shape[1], ann=ann, store=store) as writer:
        writer.add_documents((d, hashes[d.doc_id]) for d in documents)
        for rows, vectors in itertools.chain([first], batches):
            tokens, entities = lexical_parts(gazetteer, embed_texts[rows.start : rows.stop])
            writer.add_chunks(chunks[rows.start : rows.stop], entities, vectors, tokens)
        progress("indexing", 0, 1)
        lexicon = build_lexicon(writer.vocabulary(), rows_with=writer.rows_with)
        writer.commit(gazetteer, manifest, lexicon=lexicon, facts=facts)
        report.store = writer.store_report
    progress("indexing", 1, 1)
