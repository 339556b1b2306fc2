"""The question-set checker: format problems and strings the corpus does not hold are reported."""

from __future__ import annotations

from rag.qa_sets import qa_problems

CHUNKS = ["Vicuna is fine-tuned from LLaMA on 70K conversations from ShareGPT.", "Alpaca 使用了 52K 条指令数据。"]


def row(**fields: object) -> dict:
    base = {"id": "q1", "question": "What data was Vicuna tuned on?", "lang": "en", "type": "fact"}
    return {**base, **fields}


def test_a_good_set_has_no_problems() -> None:
    rows = [
        row(facts=[["ShareGPT"]], evidence=[["70K conversations", "70Kconversations"]]),
        row(
            id="q2", question="Alpaca 用了多少数据？", lang="zh", type="numeric", facts=[["52K"]], evidence=[["52K 条"]]
        ),
        row(id="q3", question="What is Vicuna's favourite food?", type="unanswerable"),
    ]
    assert qa_problems(rows, CHUNKS) == []


def test_problems_are_named() -> None:
    rows = [
        row(facts=[["ShareGPT"]], evidence=[["a sentence no chunk holds"]]),
        row(facts=[["ShareGPT"]], evidence=[["ShareGPT"]]),  # the same id again
        row(id="q3", type="unanswerable", facts=[["x"]]),
        row(id="q4", type="riddle", lang="fr", facts=[["ShareGPT"]], evidence=[["ShareGPT"]]),
        row(id="q5", type="followup", facts=[["ShareGPT"]], evidence=[["ShareGPT"]]),
    ]
    problems = "\n".join(qa_problems(rows, CHUNKS))
    assert "a sentence no chunk holds" in problems
    assert "q1: duplicate id" in problems
    assert "q3: an unanswerable question carries no facts or evidence" in problems
    assert "q4: type 'riddle'" in problems and "q4: lang 'fr'" in problems
    assert "q5: a follow-up needs its history" in problems
