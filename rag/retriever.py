"""The hybrid searcher as a LangChain `BaseRetriever`, for use in any chain."""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, model_validator

from ingest.index import Index
from rag.retrieve import HybridSearcher


class AtlasRetriever(BaseRetriever):
    """The hybrid searcher as a LangChain retriever, for use in any chain:
    `AtlasRetriever(index_dir="~/.cache/llm-atlas/index", k=5)` or `AtlasRetriever(searcher=...)`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: HybridSearcher | None = None
    index_dir: str | None = None
    embedder: str = "use-m3"
    k: int = 5

    @model_validator(mode="after")
    def _load(self) -> AtlasRetriever:
        if self.searcher is None:
            from pathlib import Path

            from ingest.embed import make_embedder
            from ingest.settings import IngestSettings

            index_dir = Path(self.index_dir).expanduser() if self.index_dir else IngestSettings().index_dir
            self.searcher = HybridSearcher(Index(index_dir, embedder_name=self.embedder), make_embedder(self.embedder))
        return self

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs
    ) -> list[LCDocument]:
        k = int(kwargs.get("k", self.k))
        retrieval = self.searcher.search(query, k=k)
        return [
            LCDocument(
                page_content=p.text,
                id=p.chunk_id,
                metadata={
                    "n": p.n,
                    "doc_id": p.doc_id,
                    "title": p.title,
                    "url": p.url,
                    "section": p.section_path,
                    "language": p.language,
                    "start": p.start,
                    "end": p.end,
                    "score": p.score,
                },
            )
            for p in retrieval.passages
        ]
