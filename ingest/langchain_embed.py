"""LangChain `Embeddings` over the project's embedders, for LangChain code (a vector store, LangChain's
standard tests): the same models, settings and vectors as `ingest.embed`."""

from __future__ import annotations

import numpy as np
from langchain_core.embeddings import Embeddings

from ingest.embed import SentenceTransformerEncoder, USEm3Encoder


class _LangChainEmbeddings(Embeddings):
    """`embed_documents` / `embed_query` over the encoder's `encode` it is mixed into (first in the bases)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


class USEm3Embeddings(USEm3Encoder, _LangChainEmbeddings):
    """Universal Sentence Encoder Multilingual v3 as LangChain `Embeddings`."""


class SentenceTransformerEmbeddings(SentenceTransformerEncoder, _LangChainEmbeddings):
    """A sentence-transformers model as LangChain `Embeddings`."""
