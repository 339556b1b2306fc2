"""Which store an index uses, as the settings say at ingest and the manifest records for loading."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MILVUS_FILE = "milvus.db"  # the default milvus-lite file, beside the version folders


@dataclass(frozen=True)
class StoreConfig:
    kind: str = "faiss"
    uri: str = ""  # Milvus: a local file (embedded milvus-lite) or http(s)://host:19530
    collection: str = "llm_atlas_chunks"
    index: str = "auto"  # Milvus vector index: auto, FLAT, IVF_FLAT, IVF_SQ8, HNSW
    nprobe: int = 64
    ef: int = 512
    exact_max: int = 200_000  # auto: exact (FLAT) up to this many chunks on milvus-lite

    @classmethod
    def from_settings(cls, settings: Any, index_dir: Path) -> StoreConfig:
        kind = getattr(settings, "store", "faiss")
        if kind != "milvus":
            return cls(kind=kind)
        uri = settings.milvus_uri or str(Path(index_dir).resolve() / MILVUS_FILE)
        if not is_server(uri):
            uri = str(Path(uri).expanduser().resolve())
        return cls(
            kind=kind,
            uri=uri,
            collection=settings.milvus_collection,
            index=settings.milvus_index,
            nprobe=settings.milvus_nprobe,
            ef=settings.milvus_ef,
            exact_max=settings.faiss_exact_max,
        )

    @classmethod
    def from_manifest(cls, data: dict[str, Any] | None) -> StoreConfig:
        return cls(**{k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        return asdict(self) if self.kind == "milvus" else {"kind": self.kind}


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))
