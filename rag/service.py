"""`Atlas`: the one entry point the interfaces use. Load once, then `ask` from any thread.

A long-running Atlas follows index updates: every call checks (one `readlink`) whether an
ingest switched the index folder's `current` version; if so it opens the new version and
answers from it, while calls already running finish on the version they started with. The
old version is let go (and can be deleted by the next ingest) once no call holds it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.index import Index, IndexMissing, IndexProblem, current_version_name
from rag.schema import Answer, Turn
from rag.settings import RagSettings

if TYPE_CHECKING:
    from rag.facts import FactView
    from rag.retrieve import HybridSearcher, Retrieval

log = logging.getLogger("llm_atlas.service")


class QuestionError(ValueError):
    """A question that cannot be asked (empty, too long, not valid text); the message says why."""


@dataclass(frozen=True)
class IndexView:
    """One index version and the searcher over it: what a single call works on from start to end."""

    index: Index
    searcher: HybridSearcher

    @cached_property  # built on first use, once per version (a benign race at worst builds it twice)
    def fact_view(self) -> FactView:
        from rag.facts import FactView

        return FactView(self.index)


class Atlas:
    def __init__(self, index: Index, settings: RagSettings):
        from ingest.embed import make_embedder

        self.settings = settings
        self.embedder = make_embedder(settings.embedder, settings.embed_batch_size)
        self._view = self._view_of(index)
        self._switching = threading.Lock()
        self.switch_problem: str | None = None  # why the newest version could not be opened, if so
        self._failed_version: str | None = None  # not retried on every call

    def _view_of(self, index: Index) -> IndexView:
        from rag.retrieve import HybridSearcher

        return IndexView(index, HybridSearcher(index, self.embedder))

    @classmethod
    def load(
        cls,
        settings: RagSettings | None = None,
        index_dir: Path | None = None,
        build_if_missing: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Atlas:
        """Load the index; with `build_if_missing`, build the default one first if there is none.
        Two processes doing this at once build it once: the second waits for the first."""
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

    @property
    def index(self) -> Index:
        return self.current().index

    @property
    def searcher(self) -> HybridSearcher:
        return self.current().searcher

    def current(self) -> IndexView:
        """The view to answer one call from: the newest index version that opens."""
        view = self._view
        index_dir = view.index.index_dir
        newest = current_version_name(index_dir)
        if newest is None or newest in (view.index.version_name, self._failed_version):
            return view
        with self._switching:
            if self._view is view:  # not switched meanwhile by another thread
                try:
                    fresh = Index(index_dir, embedder_name=self.settings.embedder)
                except IndexProblem as exc:  # keep answering from the version that works
                    if self.switch_problem != str(exc):
                        log.error(
                            "The new index version cannot be opened; still serving %s: %s", view.index.version_name, exc
                        )
                    self.switch_problem, self._failed_version = str(exc), newest
                    return view
                self._view = self._view_of(fresh)
                self.switch_problem = None
                log.info("Index switched from %s to %s", view.index.version_name, fresh.version_name)
            return self._view

    def health(self) -> dict[str, Any]:
        """Whether the index can answer: reads a chunk and runs a vector search on it."""
        view = self.current()
        index = view.index
        status: dict[str, Any] = {
            "version": index.version_name,
            "documents": index.manifest.get("documents"),
            "chunks": len(index),
        }
        try:
            if len(index):
                index.chunks([0])
                index.search_vectors(index.vectors()[:1], 1)
        except IndexProblem as exc:
            return {**status, "ready": False, "problem": str(exc)}
        if self.switch_problem:
            status["problem"] = self.switch_problem
        return {**status, "ready": True}

    def check_question(self, question: str, what: str = "question") -> str:
        question = (question or "").strip()
        if not question:
            raise QuestionError(f"The {what} is empty.")
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"The {what} is {len(question)} characters long; the limit is {self.settings.max_question_chars}."
            )
        check_text(question, what)
        return question

    def search(self, query: str, k: int | None = None) -> Retrieval:
        """The passages that best match a query (hybrid dense + lexical), without answering."""
        return self.current().searcher.search(self.check_question(query, "query"), self.check_k(k))

    def ask(
        self,
        question: str,
        history: Sequence[Turn | dict] | None = None,
        k: int | None = None,
        use_llm: bool | None = None,
        language: str | None = None,
        max_tokens: int | None = None,
    ) -> Answer:
        """Answer a question (with optional conversation history) with checked [n] citations.
        `max_tokens` limits the answer: passed to the LLM (capped at llm_max_tokens), and an extractive
        answer is cut at a sentence end near that many tokens."""
        from rag.answer import answer_question

        started = time.perf_counter()
        question, turns, k, use_llm = self._arguments(question, history, k, use_llm)
        view = self.current()
        answer = answer_question(
            self.settings, view.searcher, question, turns, k, use_llm, language, max_tokens, view.index.facts
        )
        answer.timings["total"] = round(time.perf_counter() - started, 4)
        return answer

    def ask_stream(
        self,
        question: str,
        history: Sequence[Turn | dict] | None = None,
        k: int | None = None,
        use_llm: bool | None = None,
        language: str | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[str | Answer]:
        """Yield the answer text as the LLM writes it, then the full `Answer`, whose text is the pieces
        joined. Each sentence is sent once its citation markers are checked, so the pieces never carry a
        marker that gets removed later. Refusals and extractive answers come in one piece. A bad
        question raises at the first `next`, before anything is yielded."""
        from rag.answer import answer_question_stream

        started = time.perf_counter()
        question, turns, k, use_llm = self._arguments(question, history, k, use_llm)
        view = self.current()
        for item in answer_question_stream(
            self.settings, view.searcher, question, turns, k, use_llm, language, max_tokens, view.index.facts
        ):
            if isinstance(item, Answer):
                item.timings["total"] = round(time.perf_counter() - started, 4)
            yield item

    def _arguments(
        self, question: str, history: Sequence[Turn | dict] | None, k: int | None, use_llm: bool | None
    ) -> tuple[str, list[Turn], int, bool]:
        """The checked question, history turns, k and LLM choice of one call (QuestionError if bad)."""
        question = self.check_question(question)
        k = self.check_k(k)
        turns = [t if isinstance(t, Turn) else Turn.model_validate(t) for t in history or []]
        for turn in turns:
            check_text(turn.content, "conversation history")
        use_llm = self.settings.llm_enabled if use_llm is None else use_llm
        return question, turns, k, use_llm

    def check_k(self, k: int | None) -> int:
        """Passages per call: the setting's top_k unless 1..50 is asked for."""
        if k is not None and not 1 <= k <= 50:
            raise QuestionError(f"k must be between 1 and 50 (got {k}).")
        return k or self.settings.top_k

    def document(self, doc_id: str) -> dict | None:
        return self.current().index.document(doc_id)

    def facts(self, name: str, attributes: Sequence[str] | None = None) -> dict[str, Any]:
        """A model's fact sheet: `{"query", "model", "aliases", "facts": [...]}` with a citation per
        value, or `{"query", "error", "closest"}` for a name the corpus does not know."""
        return self.current().fact_view.sheet(name, attributes)

    def compare(self, names: Sequence[str], attributes: Sequence[str] | None = None) -> dict[str, Any]:
        """Models side by side: `{"models", "attributes", "rows": [{"attribute", "cells", "conflict"}], "unknown"}`."""
        return self.current().fact_view.compare(names, attributes)


def check_text(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: from invalid UTF-8 bytes or a JSON "\ud800"
        raise QuestionError(f"The {what} is not valid text (it holds invalid UTF-8 or lone surrogates).") from None
