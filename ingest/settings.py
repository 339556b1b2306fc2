"""Settings for the ingest side, read from LLM_ATLAS_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_index_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "llm-atlas" / "index"


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_ATLAS_", extra="ignore")

    index_dir: Path = Field(default_factory=default_index_dir, description="Where the index lives.")
    embedder: str = Field(
        default="use-m3",
        description="'use-m3' (offline, numpy only) or 'st:<sentence-transformers model name or path>'.",
    )
    embed_batch_size: int = Field(default=64, ge=1)
    chunk_chars: int = Field(default=600, ge=100, description="Target chunk size in characters.")
    max_file_bytes: int = Field(default=20_000_000, description="Larger files are skipped, with a reason.")
    fetch_timeout: float = Field(default=20.0, description="Seconds to wait for a URL.")
    # Vector index structure (see docs/scaling.md): exact search while it fits, approximate beyond.
    faiss_exact_max: int = Field(
        default=200_000, ge=0, description="Up to this many chunks the vector index is exact (IndexFlatIP)."
    )
    faiss_kind: Literal["ivf-sq8", "hnsw-sq8"] = Field(
        default="ivf-sq8", description="Approximate vector index used above faiss_exact_max (see ingest/ann.py)."
    )
    faiss_nprobe: int = Field(default=256, ge=1, description="IVF lists scanned per query (recall vs speed).")
    faiss_ef_search: int = Field(default=512, ge=1, description="HNSW candidates kept per query (recall vs speed).")
    faiss_train_size: int = Field(
        default=100_000, ge=1_000, description="Vectors sampled to train the approximate index (k-means, SQ8 ranges)."
    )
    # Where chunks are searched (ingest/store/): FAISS + BM25 files in the index folder, or Milvus.
    store: Literal["faiss", "milvus"] = Field(
        default="faiss", description="'faiss' (files in the index folder) or 'milvus' (needs llm-atlas[milvus])."
    )
    milvus_uri: str | None = Field(
        default=None,
        description="A local file (embedded milvus-lite; default INDEX_DIR/milvus.db) or http://host:19530.",
    )
    milvus_collection: str = Field(default="llm_atlas_chunks", description="The Milvus collection of the chunks.")
    milvus_index: Literal["auto", "FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW"] = Field(
        default="auto",
        description="Milvus vector index; auto: exact up to faiss_exact_max chunks on milvus-lite "
        "(which offers FLAT and IVF_FLAT only), then IVF_FLAT; HNSW on a server.",
    )
    milvus_nprobe: int = Field(default=64, ge=1, description="IVF lists Milvus scans per query.")
    milvus_ef: int = Field(default=512, ge=1, description="HNSW candidates Milvus keeps per query.")
    # Embedding on Ray (ingest/ray_embed.py, needs llm-atlas[ray]): off unless an address is set.
    ray_address: str | None = Field(
        default=None,
        description="Embed new chunks on Ray: 'local' starts one for the run; 'auto' or ray://host:10001 joins one.",
    )
    ray_actors: int = Field(default=2, ge=1, description="Embedders in the Ray actor pool (one per actor).")
    ray_cpus_per_actor: float = Field(default=1.0, gt=0, description="CPUs each Ray actor reserves.")
    ray_gpus_per_actor: float = Field(default=0.0, ge=0, description="GPUs each Ray actor reserves (a GPU cluster).")
