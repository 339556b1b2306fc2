"""Question -> standalone query -> retrieval -> refusal check -> LLM or extractive answer ->
checked citations. The one place that decides what an answer says."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ingest.chunk import detect_language
from ingest.entities import candidate_names, entity_key
from ingest.tokenize import TermSet
from rag.citations import build_citations, fix_markers
from rag.conversation import carry_entities
from rag.extractive import extractive_answer
from rag.retrieve import Retrieval
from rag.schema import Answer, Context, Turn

if TYPE_CHECKING:
    from rag.retrieve import HybridSearcher
    from rag.settings import RagSettings

log = logging.getLogger("llm_atlas.answer")

# Off-topic questions: the passages cover almost none of the question's words, or nothing is
# semantically close (USE-m3 cosine) and the question names no model the corpus knows.
MIN_COVERAGE = 0.2
MIN_DENSE_WITHOUT_ENTITY = 0.25

REFUSALS = {
    "en": {
        "unknown": "The corpus does not say: it never mentions {names}, so I can't answer that.",
        "weak": "The corpus does not say: I found no passage that answers this question.",
    },
    "zh": {
        "unknown": "语料库中没有相关信息：其中从未提到 {names}，因此无法回答。",
        "weak": "语料库中没有相关信息：没有找到能回答这个问题的段落。",
    },
}


LLM_FAILED = "The LLM endpoint failed, so this is the extractive answer."


def refusal(
    reason: str,
    lang: str,
    retrieval: Retrieval | None,
    timings: dict,
    notice: str | None = None,
    names: list[str] | None = None,
) -> Answer:
    text = REFUSALS.get(lang, REFUSALS["en"])[reason].format(names=", ".join(names or []))
    return Answer(
        answer=text,
        answered=False,
        mode="refusal",
        notice=notice,
        timings=timings,
        query=retrieval.query if retrieval else None,
    )


def coverage(searcher, query: str, retrieval: Retrieval) -> float:
    """IDF-weighted share of the question's words (or their translations) found in the passages.
    A question with neither words nor known models (an emoji, punctuation) covers nothing."""
    concepts = searcher.concepts(query)
    if not concepts:
        return 1.0 if retrieval.entities else 0.0
    found = TermSet("\n".join(f"{p.title} {p.section_path} {p.text}" for p in retrieval.passages))
    return sum(w for options, w in concepts if found.any_of(options)) / sum(w for _, w in concepts)


def display_names(question: str, searcher) -> dict[str, str]:
    names = {entity_key(token): token for token in candidate_names(question)}
    return {**{k: v[0] for k, v in searcher.gazetteer.names.items() if k in names}, **names}


def answer_question(
    settings: RagSettings,
    searcher: HybridSearcher,
    question: str,
    history: list[Turn],
    k: int,
    use_llm: bool,
    language: str | None,
) -> Answer:
    timings: dict[str, float] = {}
    lang = language or detect_language(question)
    notice = None

    query = carry_entities(searcher, question, history)
    if use_llm and history:
        from rag.llm import rewrite_query

        try:
            rewritten = rewrite_query(settings, question, history)
            query = f"{query}\n{rewritten}" if rewritten else query
        except Exception as exc:  # any endpoint failure: keep the offline rewrite
            log.warning("LLM query rewrite failed: %s: %s", exc.__class__.__name__, exc)
            notice = LLM_FAILED
            use_llm = False

    started = time.perf_counter()
    retrieval = searcher.search(query, k=k)
    timings["retrieval"] = round(time.perf_counter() - started, 4)

    if retrieval.unknown:
        return refusal("unknown", lang, retrieval, timings, notice, retrieval.unknown)
    # A question about a model the corpus knows is answered from that model's passages; the
    # off-topic checks are for questions that name none.
    if not retrieval.passages or (
        not retrieval.entities
        and (coverage(searcher, query, retrieval) < MIN_COVERAGE or retrieval.best_dense < MIN_DENSE_WITHOUT_ENTITY)
    ):
        return refusal("weak", lang, retrieval, timings, notice)

    passages = retrieval.passages
    contexts = [Context(text=p.text, title=p.title, url=p.url) for p in passages]
    started = time.perf_counter()
    if use_llm:
        from rag.llm import NO_ANSWER, llm_answer

        try:
            text = llm_answer(settings, question, passages, history, lang)
        except Exception as exc:  # dead, slow or erroring endpoint: fall back, and say so
            # The provider's detail goes to the log, not to the end user.
            log.warning("LLM answer failed: %s: %s", exc.__class__.__name__, exc)
            text, notice = None, LLM_FAILED
        if text is not None:
            timings["answer"] = round(time.perf_counter() - started, 4)
            if not text or text.strip().startswith(NO_ANSWER):
                return refusal("weak", lang, retrieval, timings, notice)
            # Citation checking is our code: a bug here must surface, not pass as an LLM failure.
            text, removed, unsupported = fix_markers(text, passages)
            problems = []
            if removed:
                problems.append(f"{removed} citation marker(s) naming no passage were removed")
            if unsupported:
                problems.append(f"{unsupported} sentence(s) have no supporting passage")
            citations = build_citations(text, passages)
            if citations:
                return Answer(
                    answer=text,
                    answered=True,
                    citations=citations,
                    contexts=contexts,
                    mode="llm",
                    notice="; ".join(problems) or None,
                    query=retrieval.query,
                    timings=timings,
                )
            notice = "The LLM answer cited no passage; the extractive answer is shown instead."

    text, quotes = extractive_answer(
        searcher, question if query == question else query, retrieval, display_names(query, searcher)
    )
    timings["answer"] = round(time.perf_counter() - started, 4)
    if not text:
        return refusal("weak", lang, retrieval, timings, notice)
    return Answer(
        answer=text,
        answered=True,
        citations=build_citations(text, passages, quotes),
        contexts=contexts,
        mode="extractive",
        notice=notice,
        query=retrieval.query,
        timings=timings,
    )
