"""Settings for the ingest side, read from LLM_ATLAS_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path

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
