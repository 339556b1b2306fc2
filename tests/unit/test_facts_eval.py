"""The gold-file scorer: matching rules, precision, recall and absent pairs on a tiny store."""

from __future__ import annotations

from ingest.fact_store import Fact, FactStore
from rag.fact_eval import fact_matches, found, score_facts


def fact(model: str, attribute: str, value: str, normalized: object) -> Fact:
    return Fact(
        model=model,
        attribute=attribute,
        value=value,
        normalized=normalized,
        doc_id="d",
        section="",
        quote=value,
        start=0,
        end=len(value),
        value_start=0,
        value_end=len(value),
    )


STORE = FactStore(
    [
        fact("Foo-7B", "parameters", "7B, 13B", (7e9, 13e9)),
        fact("Foo-7B", "parameters", "7.05B", (7.05e9,)),
        fact("Foo-7B", "release_date", "March 2023", "2023-03"),
        fact("Foo-7B", "developer", "The Example Labs team", None),
        fact("Foo-7B", "licence", "MIT", "mit"),
        fact("Bar", "base_model", "Foo-7B", "Foo-7B"),
    ]
)


def test_matching_rules() -> None:
    params = STORE.get("Foo-7B", "parameters")
    assert found([7e9, 13e9], "parameters", params)  # every gold number is among the returned ones
    assert not found([7e9, 70e9], "parameters", params)
    assert fact_matches([7e9], "parameters", params[1])  # within 2%
    assert not fact_matches([7e9], "parameters", params[0])  # 13B is not a size the gold gives
    date = STORE.get("Foo-7B", "release_date")[0]
    assert fact_matches("2023", "release_date", date) and fact_matches("2023-03-30", "release_date", date)
    assert not fact_matches("2022", "release_date", date)
    developer = STORE.get("foo7b", "developer")[0]
    assert fact_matches("example labs", "developer", developer)  # case/punctuation-insensitive containment
    assert not fact_matches("Meta", "developer", developer)


def test_scores() -> None:
    gold = [
        {"model": "Foo-7B", "attribute": "parameters", "value": [7e9, 13e9]},
        {"model": "Foo-7B", "attribute": "licence", "value": "apache-2.0"},
        {"model": "Foo-7B", "attribute": "release_date", "value": "2023-03"},
        {"model": "Bar", "attribute": "base_model", "value": "Foo", "alternatives": ["Foo-7B"]},
        {"model": "Foo-7B", "attribute": "context_length", "absent": True},
        {"model": "Foo-7B", "attribute": "developer", "absent": True},
    ]
    result = score_facts(STORE, gold)
    assert result["recall"] == 0.75  # the licence is wrong
    assert result["precision"] == 0.8  # 4 of 5 returned facts: the MIT licence is not Apache
    assert result["absent_accuracy"] == 0.5  # the developer pair is not absent after all
    assert result["per_attribute"]["licence"] == {"precision": 0.0, "recall": 0.0, "returned": 1, "gold": 1}
    assert result["missed"] == [{"model": "Foo-7B", "attribute": "licence", "value": "apache-2.0"}]
    assert result["absent_returned"] == [{"model": "Foo-7B", "attribute": "developer"}]
