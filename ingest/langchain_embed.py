"""LangChain `Embeddings` over the project's embedders, for LangChain code (a vector store, LangChain's
standard tests): the same models, settings and vectors as `ingest.embed`."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from ingest.embed import SentenceTransformerEncoder, USEm3Encoder


class USEm3Embeddings(USEm3Encoder, Embeddings):
    """Universal Sentence Encoder Multilingual v3 as LangChain `Embeddings`."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


class SentenceTransformerEmbeddings(SentenceTransformerEncoder, Embeddings):
    """A sentence-transformers model as LangChain `Embeddings`."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()
