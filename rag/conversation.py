"""Follow-up questions: turn 'and how much did it cost?' into a standalone query.

Offline, the models named in earlier user turns are carried into a question that names
none; with an LLM configured, the LLM rewrites the question (in English and Chinese).
"""

from __future__ import annotations

from rag.retrieve import HybridSearcher
from rag.schema import Turn


def carry_entities(searcher: HybridSearcher, question: str, history: list[Turn]) -> str:
    if not history or searcher.query_entities(question):
        return question
    for turn in reversed(history):
        if turn.role != "user":
            continue
        keys = searcher.query_entities(turn.content)
        if keys:
            names = [searcher.gazetteer.names[k][0] for k in keys]
            return f"{question} ({', '.join(names)})"
    return question
