"""Question -> standalone query -> retrieval -> refusal check -> LLM or extractive answer ->
checked citations. The one place that decides what an answer says."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.chunk import detect_language
from ingest.entities import candidate_names, entity_key
from ingest.tokenize import TermSet
from rag.citations import MARKER_RE, MarkerStream, build_citations, claims, fix_markers
from rag.conversation import carry_entities
from rag.extractive import extractive_answer
from rag.retrieve import Retrieval
from rag.schema import Answer, Context, Turn

if TYPE_CHECKING:
    from rag.retrieve import HybridSearcher
    from rag.schema import Passage
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
LLM_UNCITED = "The LLM answer cited no passage; the extractive answer is shown instead."
LLM_CUT_SHORT = "The LLM endpoint stopped mid-answer, so the answer ends there."


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


def approx_tokens(text: str) -> int:
    """A rough token count (words, and each Chinese character): the answers are not made by one tokenizer."""
    return len(CJK_RE.findall(text)) + len(CJK_RE.sub(" ", text).split())


CJK_RE = re.compile(r"[\u3400-\u9fff]")


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The text cut at the last sentence end within about `max_tokens` tokens; the first sentence always stays."""
    kept, used = [], 0
    for sentence, _ in claims(text):
        used += approx_tokens(sentence)
        if kept and used > max_tokens:
            break
        kept.append(sentence)
    return "".join(kept).strip() if kept else text


@dataclass
class Plan:
    """A question that retrieval did not refuse: what answering it needs, whichever way it is answered."""

    settings: RagSettings
    searcher: HybridSearcher
    question: str
    query: str
    history: list[Turn]
    lang: str
    use_llm: bool
    notice: str | None
    retrieval: Retrieval
    max_tokens: int | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passages(self) -> list[Passage]:
        return self.retrieval.passages

    def contexts(self) -> list[Context]:
        return [Context(text=p.text, title=p.title, url=p.url) for p in self.passages]

    def refusal(self, notice: str | None) -> Answer:
        return refusal("weak", self.lang, self.retrieval, self.timings, notice)

    def llm_result(self, text: str, removed: int, unsupported: int, notice: str | None = None) -> Answer | None:
        """The checked LLM text as the answer, or None when it cites no passage."""
        problems = [notice] if notice else []
        if removed:
            problems.append(f"{removed} citation marker(s) naming no passage were removed")
        if unsupported:
            problems.append(f"{unsupported} sentence(s) have no supporting passage")
        citations = build_citations(text, self.passages)
        if not citations:
            return None
        return Answer(
            answer=text,
            answered=True,
            citations=citations,
            contexts=self.contexts(),
            mode="llm",
            notice="; ".join(problems) or None,
            query=self.retrieval.query,
            timings=self.timings,
        )

    def extractive(self, started: float, notice: str | None) -> Answer:
        query, retrieval = self.query, self.retrieval
        text, quotes = extractive_answer(
            self.searcher,
            self.question if query == self.question else query,
            retrieval,
            display_names(query, self.searcher),
        )
        self.timings["answer"] = round(time.perf_counter() - started, 4)
        if not text:
            return self.refusal(notice)
        if self.max_tokens:
            text = truncate_to_tokens(text, self.max_tokens)
        return Answer(
            answer=text,
            answered=True,
            citations=build_citations(text, self.passages, quotes),
            contexts=self.contexts(),
            mode="extractive",
            notice=notice,
            query=retrieval.query,
            timings=self.timings,
        )


def plan_answer(
    settings: RagSettings,
    searcher: HybridSearcher,
    question: str,
    history: list[Turn],
    k: int,
    use_llm: bool,
    language: str | None,
    max_tokens: int | None = None,
) -> Plan | Answer:
    """Rewrite the question into a query, retrieve, and refuse what the corpus cannot answer (an Answer)."""
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
    return Plan(settings, searcher, question, query, history, lang, use_llm, notice, retrieval, max_tokens, timings)


def answer_question(
    settings: RagSettings,
    searcher: HybridSearcher,
    question: str,
    history: list[Turn],
    k: int,
    use_llm: bool,
    language: str | None,
    max_tokens: int | None = None,
) -> Answer:
    plan = plan_answer(settings, searcher, question, history, k, use_llm, language, max_tokens)
    if isinstance(plan, Answer):
        return plan
    notice = plan.notice
    started = time.perf_counter()
    if plan.use_llm:
        from rag.llm import NO_ANSWER, llm_answer

        try:
            text = llm_answer(settings, question, plan.passages, history, plan.lang, max_tokens)
        except Exception as exc:  # dead, slow or erroring endpoint: fall back, and say so
            # The provider's detail goes to the log, not to the end user.
            log.warning("LLM answer failed: %s: %s", exc.__class__.__name__, exc)
            text, notice = None, LLM_FAILED
        if text is not None:
            plan.timings["answer"] = round(time.perf_counter() - started, 4)
            if not text or text.strip().startswith(NO_ANSWER):
                return plan.refusal(notice)
            # Citation checking is our code: a bug here must surface, not pass as an LLM failure.
            text, removed, unsupported = fix_markers(text, plan.passages)
            answer = plan.llm_result(text, removed, unsupported)
            if answer is not None:
                return answer
            notice = LLM_UNCITED
    return plan.extractive(started, notice)


def answer_question_stream(
    settings: RagSettings,
    searcher: HybridSearcher,
    question: str,
    history: list[Turn],
    k: int,
    use_llm: bool,
    language: str | None,
    max_tokens: int | None = None,
) -> Iterator[str | Answer]:
    """`answer_question` as it is written: text pieces, then the `Answer`, whose text is the pieces joined.

    With the LLM, its text is checked sentence by sentence (`MarkerStream`) and each sentence sent once
    checked, so a piece never carries a marker that is removed later; nothing is sent before the text
    cites a passage, so an answer citing none can still give way to the extractive one. If the endpoint
    fails (or stalls) before anything was sent, the extractive answer comes instead, as in
    `answer_question`; if it fails after, the answer is what was sent (less an unfinished sentence), with
    a notice. Refusals and extractive answers come in one piece."""
    plan = plan_answer(settings, searcher, question, history, k, use_llm, language, max_tokens)
    if isinstance(plan, Answer):
        yield plan.answer
        yield plan
        return
    notice = plan.notice
    started = time.perf_counter()
    if plan.use_llm:
        from rag.llm import NO_ANSWER, llm_stream

        checker = MarkerStream(plan.passages)
        head: str | None = ""  # the reply's start, until it is known not to be NO_ANSWER
        held, sent, failure = "", False, None
        tokens = llm_stream(settings, question, plan.passages, history, plan.lang, max_tokens)
        try:
            while True:
                try:
                    token = next(tokens)
                except StopIteration:
                    break
                except Exception as exc:  # only the endpoint's failures: a bug in our checks must surface
                    failure = exc
                    break
                if head is not None:
                    head += token
                    start = head.lstrip()
                    if len(start) < len(NO_ANSWER) and NO_ANSWER.startswith(start):
                        continue
                    if start.startswith(NO_ANSWER):
                        plan.timings["answer"] = round(time.perf_counter() - started, 4)
                        answer = plan.refusal(notice)
                        yield answer.answer
                        yield answer
                        return
                    token, head = head, None
                held += checker.feed(token)
                if held and (sent or MARKER_RE.search(held)):
                    yield held
                    held, sent = "", True
        finally:
            tokens.close()  # stops reading the endpoint when the caller stops early, too
        if failure is not None:
            log.warning("LLM answer failed: %s: %s", failure.__class__.__name__, failure)
        if failure is not None and not sent:
            notice = LLM_FAILED
        else:
            plan.timings["answer"] = round(time.perf_counter() - started, 4)
            if head is not None and not head.strip():
                answer = plan.refusal(notice)
                yield answer.answer
                yield answer
                return
            if head:  # a reply shorter than NO_ANSWER
                held += checker.feed(head)
            held += checker.abort() if failure is not None else checker.finish()
            cut = LLM_CUT_SHORT if failure is not None else None
            answer = plan.llm_result(checker.text, checker.removed, checker.unsupported, cut)
            if answer is not None:
                if held:
                    yield held
                yield answer
                return
            notice = LLM_UNCITED
    answer = plan.extractive(started, notice)
    yield answer.answer
    yield answer
