"""`Atlas`: the one entry point the interfaces use. Load once, then `ask` from any thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ingest.index import Index, IndexMissing
from rag.schema import Answer, Turn
from rag.settings import RagSettings


class QuestionError(ValueError):
    """A question that cannot be asked (empty, too long); the message says why."""


class Atlas:
    def __init__(self, index: Index, settings: RagSettings):
        from ingest.embed import make_embedder
        from rag.retrieve import HybridSearcher

        self.settings = settings
        self.index = index
        self.embedder = make_embedder(settings.embedder, settings.embed_batch_size)
        self.searcher = HybridSearcher(index, self.embedder)

    @classmethod
    def load(
        cls,
        settings: RagSettings | None = None,
        index_dir: Path | None = None,
        build_if_missing: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Atlas:
        """Load the index; with `build_if_missing`, build the default one first if there is none."""
        settings = settings or RagSettings()
        index_dir = Path(index_dir or settings.index_dir)
        try:
            index = Index(index_dir, embedder_name=settings.embedder)
        except IndexMissing:
            if not build_if_missing:
                raise
            from ingest.pipeline import run_ingest

            run_ingest(None, settings, index_dir, progress=progress)
            index = Index(index_dir, embedder_name=settings.embedder)
        return cls(index, settings)

    def check_question(self, question: str) -> str:
        question = (question or "").strip()
        if not question:
            raise QuestionError("The question is empty.")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"The question is {len(question)} characters long; the limit is {self.settings.max_question_chars}."
            )
        return question

    def ask(
        self,
        question: str,
        history: Sequence[Turn | dict] | None = None,
        k: int | None = None,
        use_llm: bool | None = None,
        language: str | None = None,
    ) -> Answer:
        """Answer a question (with optional conversation history) with checked [n] citations."""
        from rag.answer import answer_question

        started = time.perf_counter()
        question = self.check_question(question)
        if k is not None and not 1 <= k <= 50:
            raise QuestionError(f"k must be between 1 and 50 (got {k}).")
        turns = [t if isinstance(t, Turn) else Turn.model_validate(t) for t in history or []]
        use_llm = self.settings.llm_enabled if use_llm is None else use_llm
        answer = answer_question(self, question, turns, k or self.settings.top_k, use_llm, language)
        answer.timings["total"] = round(time.perf_counter() - started, 4)
        return answer

    def ask_stream(
        self,
        question: str,
        history: Sequence[Turn | dict] | None = None,
        k: int | None = None,
        use_llm: bool | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer text in pieces, then the full `Answer`. Citations are checked before
        anything is sent, so the pieces never carry a marker that gets removed later."""
        answer = self.ask(question, history, k, use_llm)
        yield from split_for_streaming(answer.answer)
        yield answer

    def document(self, doc_id: str) -> dict | None:
        return self.index.document(doc_id)


def split_for_streaming(text: str, size: int = 24) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]
