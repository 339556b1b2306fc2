"""Question -> standalone query -> retrieval -> refusal check -> LLM or extractive answer ->
checked citations. The one place that decides what an answer says."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rag.citations import MARKER_RE, MarkerStream, build_citations, claims, fix_markers, in_citation_order
from rag.evidence import Evidence, gather
from rag.extractive import extractive_answer
from rag.query import Query
from rag.retrieve import Retrieval
from rag.schema import Answer, Context, Passage, Turn
from rag.weights import load_weights

if TYPE_CHECKING:
    from ingest.fact_store import FactStore
    from rag.retrieve import HybridSearcher
    from rag.schema import Passage
    from rag.settings import RagSettings

log = logging.getLogger("llm_atlas.answer")

REFUSALS = {
    "en": {
        "unknown": "The corpus does not say: it never mentions {names}, so I can't answer that.",
        "weak": "The corpus does not say: I found no passage that answers this question.",
        "about": "The corpus does not say: nothing in it answers this about {names}.",
        "has": " It does cover {names}'s {attributes}.",
    },
    "zh": {
        "unknown": "语料库中没有相关信息：其中从未提到 {names}，因此无法回答。",
        "weak": "语料库中没有相关信息：没有找到能回答这个问题的段落。",
        "about": "语料库中没有相关信息：其中没有关于 {names} 的这方面内容。",
        "has": "语料库里有 {names} 的{attributes}。",
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
    known: str = "",
) -> Answer:
    text = REFUSALS.get(lang, REFUSALS["en"])[reason].format(names=", ".join(names or []))
    return Answer(
        answer=text + known,
        answered=False,
        # What was searched and found wanting, so a reader can check the refusal.
        contexts=[Context(text=p.text, title=p.title, url=p.url) for p in (retrieval.passages if retrieval else [])],
        mode="refusal",
        notice=notice,
        timings=timings,
        query=retrieval.query if retrieval else None,
    )


def what_it_has(query: Query, store: FactStore | None) -> str:
    """'It does cover Koala's base model, training data.': what a refusal can point to instead."""
    if store is None or not query.models:
        return ""
    from rag.extractive import attribute_name

    key = query.models[0]
    name = query.model_names.get(key, key)
    sheet = store.sheet(name)
    if sheet is None:
        return ""
    attributes = list(dict.fromkeys(f.attribute for f in sheet.facts))[:4]
    if not attributes:
        return ""
    sep = "、" if query.lang == "zh" else ", "
    listed = sep.join(attribute_name(query.lang, a) for a in attributes)
    return REFUSALS.get(query.lang, REFUSALS["en"])["has"].format(names=name, attributes=listed)


def approx_tokens(text: str) -> int:
    """A rough token count (words, and each Chinese character): the answers are not made by one tokenizer."""
    return len(CJK_RE.findall(text)) + len(CJK_RE.sub(" ", text).split())


CJK_RE = re.compile(r"[\u3400-\u9fff]")


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The text cut at the last sentence end within about `max_tokens` tokens. Everything up to the
    first cited sentence always stays (a table's header lines come with its first row)."""
    kept, used, cited = [], 0, False
    for sentence, numbers in claims(text):
        used += approx_tokens(sentence)
        if cited and used > max_tokens:
            break
        kept.append(sentence)
        cited = cited or bool(numbers)
    return "".join(kept).strip() if kept else text


@dataclass
class Plan:
    """A question that was not refused: what answering it needs, whichever way it is answered."""

    settings: RagSettings
    query: Query
    history: list[Turn]
    use_llm: bool
    notice: str | None
    retrieval: Retrieval
    evidence: Evidence
    max_tokens: int | None
    timings: dict[str, float] = field(default_factory=dict)
    names: Collection[str] = ()  # the corpus's model names, which a cited LLM sentence must not invent

    @property
    def question(self) -> str:
        return self.query.question

    @property
    def lang(self) -> str:
        return self.query.lang

    @property
    def passages(self) -> list[Passage]:
        return self.evidence.passages

    def contexts(self, passages: Sequence[Passage] | None = None) -> list[Context]:
        return [Context(text=p.text, title=p.title, url=p.url) for p in (passages or self.passages)]

    def refusal(self, notice: str | None) -> Answer:
        return refusal("weak", self.lang, self.retrieval, self.timings, notice)

    def llm_result(self, text: str, removed: int, unsupported: int, notice: str | None = None) -> Answer | None:
        """The checked LLM text as the answer, or None when it cites no passage."""
        problems = [notice] if notice else []
        if removed:
            problems.append(f"{removed} citation marker(s) naming no passage were removed")
        if unsupported:
            problems.append(
                f"{unsupported} sentence(s) have no supporting passage"
                " (cited ones whose numbers or model names the passage lacks were dropped)"
            )
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
        text, quotes = extractive_answer(self.evidence, load_weights().sentence_floor)
        self.timings["answer"] = round(time.perf_counter() - started, 4)
        if not text:
            return self.refusal(notice)
        if self.max_tokens:
            text = truncate_to_tokens(text, self.max_tokens)
        text, passages, quotes = in_citation_order(text, self.passages, quotes)
        return Answer(
            answer=text,
            answered=True,
            citations=build_citations(text, passages, quotes),
            contexts=self.contexts(passages),
            mode="extractive",
            notice=notice,
            query=self.retrieval.query,
            timings=self.timings,
        )


def is_answerable(evidence: Evidence) -> bool:
    weights = load_weights()
    return weights.answerable.probability(evidence.features) >= weights.answerable_threshold


def plan_answer(
    settings: RagSettings,
    searcher: HybridSearcher,
    question: str,
    history: list[Turn],
    k: int,
    use_llm: bool,
    language: str | None,
    max_tokens: int | None = None,
    store: FactStore | None = None,
) -> Plan | Answer:
    """Analyse the question once, retrieve, gather evidence, and refuse what the corpus cannot answer."""
    timings: dict[str, float] = {}
    notice = None
    started = time.perf_counter()
    query = searcher.analyzer.analyse(question, history, language)
    if use_llm and history:
        from rag.llm import rewrite_query

        try:
            rewritten = rewrite_query(settings, question, history)
            if rewritten:
                query.search_text = f"{query.search_text}\n{rewritten}"
        except Exception as exc:  # any endpoint failure: keep the offline rewrite
            log.warning("LLM query rewrite failed: %s: %s", exc.__class__.__name__, exc)
            notice = LLM_FAILED
            use_llm = False

    retrieval = searcher.search(query, k=k)
    timings["retrieval"] = round(time.perf_counter() - started, 4)
    if query.unknown:
        return refusal("unknown", query.lang, retrieval, timings, notice, query.unknown)
    if not retrieval.passages:
        return refusal("weak", query.lang, retrieval, timings, notice)
    started = time.perf_counter()
    evidence = gather(query, retrieval, searcher, store, load_weights())
    timings["evidence"] = round(time.perf_counter() - started, 4)
    if not is_answerable(evidence):
        if query.models:
            names = [query.model_names.get(k, k) for k in query.models[:3]]
            return refusal("about", query.lang, retrieval, timings, notice, names, what_it_has(query, store))
        return refusal("weak", query.lang, retrieval, timings, notice)
    return Plan(
        settings,
        query,
        history,
        use_llm,
        notice,
        retrieval,
        evidence,
        max_tokens,
        timings,
        searcher.analyzer.known_names,
    )


def answer_question(
    settings: RagSettings,
    searcher: HybridSearcher,
    question: str,
    history: list[Turn],
    k: int,
    use_llm: bool,
    language: str | None,
    max_tokens: int | None = None,
    store: FactStore | None = None,
) -> Answer:
    plan = plan_answer(settings, searcher, question, history, k, use_llm, language, max_tokens, store)
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
            text, removed, unsupported = fix_markers(text, plan.passages, names=plan.names)
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
    store: FactStore | None = None,
) -> Iterator[str | Answer]:
    """`answer_question` as it is written: text pieces, then the `Answer`, whose text is the pieces joined.

    With the LLM, its text is checked sentence by sentence (`MarkerStream`) and each sentence sent once
    checked, so a piece never carries a marker that is removed later; nothing is sent before the text
    cites a passage, so an answer citing none can still give way to the extractive one. If the endpoint
    fails (or stalls) before anything was sent, the extractive answer comes instead, as in
    `answer_question`; if it fails after, the answer is what was sent (less an unfinished sentence), with
    a notice. Refusals and extractive answers come in one piece."""
    plan = plan_answer(settings, searcher, question, history, k, use_llm, language, max_tokens, store)
    if isinstance(plan, Answer):
        yield plan.answer
        yield plan
        return
    notice = plan.notice
    started = time.perf_counter()
    if plan.use_llm:
        from rag.llm import NO_ANSWER, llm_stream

        checker = MarkerStream(plan.passages, names=plan.names)
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
