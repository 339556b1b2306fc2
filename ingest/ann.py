"""The vector index structure, chosen by size: exact while it is cheap, approximate beyond.

    flat      IndexFlatIP: exact inner products, 4*d bytes per chunk (2 KiB at d=512).
    ivf-sq8   k-means lists (IVF) over 8-bit scalar-quantised vectors: d bytes per chunk (+8 for the
              id). A query scans `nprobe` of ~2*sqrt(N) lists. The default above `exact_max`.
    hnsw-sq8  an HNSW graph over the same SQ8 codes: ~256 more bytes of links per chunk; a query costs
              about log N, but the build is ~12x slower than IVF's.

Measured at 1M chunks on 2 cores (docs/scaling.md): ivf-sq8 built in 64 s and reached recall@10
0.96 at nprobe=256 (15 ms a query); hnsw-sq8 took 782 s to build and reached 0.93 at efSearch=512
(6 ms). The whole index is rebuilt on every ingest, so build time wins over a few milliseconds.
Both score with inner products of the decoded vectors (error ~3e-4), so on normalised vectors a
score stays a cosine similarity, which the retriever's thresholds assume. Product quantisation
was left out: recall@10 at most 0.59 (8-bit PQ, 10k vectors, 200 s of polysemous training) and
0.43 (4-bit fast-scan, 100k). Vectors are read in batches (a .npy memmap is fine), so building
never holds more than one batch of float32 vectors beside the index itself.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

KINDS = ("flat", "ivf-sq8", "hnsw-sq8")


@dataclass(frozen=True)
class AnnConfig:
    """What the ingest settings say about the vector index (see IngestSettings.faiss_*)."""

    exact_max: int = 200_000
    kind: str = "ivf-sq8"
    nprobe: int = 256
    ef_search: int = 512
    train_size: int = 100_000
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: Any) -> AnnConfig:
        return cls(
            exact_max=settings.faiss_exact_max,
            kind=settings.faiss_kind,
            nprobe=settings.faiss_nprobe,
            ef_search=settings.faiss_ef_search,
            train_size=settings.faiss_train_size,
        )


@dataclass(frozen=True)
class AnnSpec:
    """The structure actually built, as recorded in the manifest."""

    kind: str = "flat"
    nlist: int = 0
    nprobe: int = 0
    ef_search: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AnnSpec:
        return cls(**(data or {}))  # indexes written before this field existed are flat


def nlist_for(rows: int) -> int:
    """About 2*sqrt(N) lists, a power of two: ~500 chunks per list at 1M, ~600 at 100k."""
    return int(min(65536, max(64, 2 ** round(math.log2(2 * math.sqrt(max(rows, 1)))))))


def choose(rows: int, config: AnnConfig) -> AnnSpec:
    if rows <= config.exact_max or config.kind == "flat":
        return AnnSpec("flat")
    if config.kind not in KINDS:
        raise ValueError(f"Unknown vector index kind '{config.kind}': use one of {', '.join(KINDS)}.")
    if config.kind == "hnsw-sq8":
        return AnnSpec("hnsw-sq8", ef_search=config.ef_search)
    nlist = nlist_for(rows)
    return AnnSpec(config.kind, nlist=nlist, nprobe=min(config.nprobe, nlist))


def factory_string(spec: AnnSpec, dimension: int) -> str:
    if spec.kind == "flat":
        return "Flat"
    if spec.kind == "ivf-sq8":
        return f"IVF{spec.nlist},SQ8"
    return "HNSW32,SQ8"


def training_rows(rows: int, size: int, seed: int) -> np.ndarray:
    """A sorted, seeded sample of row numbers (sorted so a memmap is read front to back)."""
    if rows <= size:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))


def build(vectors: np.ndarray, spec: AnnSpec, config: AnnConfig | None = None, batch: int = 50_000) -> Any:
    """A FAISS index over `vectors` (rows x d, float32; may be a memmap), trained on a sample."""
    import faiss

    config = config or AnnConfig()
    rows, dimension = vectors.shape
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # training and adding do use every core
    try:
        return _build(vectors, spec, config, batch)
    finally:
        faiss.omp_set_num_threads(previous)


def _build(vectors: np.ndarray, spec: AnnSpec, config: AnnConfig, batch: int) -> Any:
    import faiss

    rows, dimension = vectors.shape
    index = faiss.index_factory(dimension, factory_string(spec, dimension), faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        # k-means wants ~40 points per list; more only slows training down.
        wanted = max(config.train_size, 40 * spec.nlist) if spec.nlist else config.train_size
        sample = np.ascontiguousarray(vectors[training_rows(rows, wanted, config.seed)], dtype=np.float32)
        index.train(sample)
        del sample
    for start in range(0, rows, batch):
        index.add(np.ascontiguousarray(vectors[start : start + batch], dtype=np.float32))
    configure(index, spec)
    return index


def single_thread_search() -> None:
    """One OpenMP thread per search. The service makes one search per request (requests run in
    parallel threads of their own), and OpenMP threads spinning on a busy 2-core machine made one
    exact search over 10k vectors 6x slower (16 ms with 2 threads, 2.7 ms with 1)."""
    import faiss

    faiss.omp_set_num_threads(1)


def configure(index: Any, spec: AnnSpec) -> None:
    """Set the search-time parameters on a built or loaded index, so `index.search` needs no arguments."""
    import faiss

    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and spec.nprobe:
        ivf.nprobe = spec.nprobe
    if spec.kind == "hnsw-sq8":
        faiss.downcast_index(index).hnsw.efSearch = spec.ef_search or AnnConfig.ef_search
