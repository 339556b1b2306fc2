"""Table lookups: which rows and columns a question asks for, and the answer lines they make."""

from __future__ import annotations

from rag.evidence import Evidence, Scored
from rag.extractive import extractive_answer
from rag.query import Query
from rag.sentences import split_sentences
from rag.tables import abbreviates, table_lookup
from tests.unit.test_extractive import passage

TABLE = (
    "## Results on the Widget benchmark\n\n"
    "| Model | Widget-A | Widget-B | Avg |\n"
    "|---|---|---|---|\n"
    "| Orca-9 | 41.0 | 43.2 | 42.1 |\n"
    "| Tuned Orca-9 (LoRA) | 50.5 | 48.1 | 49.3 |\n"
    "| Zebu-7B0 | 30.1 | 33.3 | 31.7 |\n"
    "| Zebu 2 | 35.5 | 36.1 | 35.8 |\n"
    "| Heron | 20.0 | 21.0 | 20.5 |\n"
    "| Heron | 25.0 | 26.0 | 25.5 |\n"
)


SIZED = "| Model | Size | Avg |\n|---|---|---|\n| Kite | 7B | 1.5 |\n| Kite | 13B | 2.5 |\n"


def evidence_for(question: str, names: dict[str, str], concepts: list[str], text: str = TABLE) -> Evidence:
    table = passage(text)
    # The models each row names, as the gazetteer would find them.
    sentences = [
        Scored(s, 1.0, {k for k, name in names.items() if name in s.text}, [], 0.0, 0.0, "en", True)
        for s in split_sentences(table)
    ]
    query = Query(
        question,
        "en",
        "en",
        question,
        models=list(names),
        model_names=names,
        concepts=[(frozenset({c}), 1.0) for c in concepts],
    )
    evidence = Evidence(query, [table], sentences)
    evidence.cells = table_lookup(query, sentences)
    return evidence


def test_named_rows_and_an_abbreviated_column_give_the_cells() -> None:
    evidence = evidence_for(
        "What average do Tuned Orca-9 (LoRA) and Zebu-7B reach on this benchmark?",
        {"orca9": "Orca-9", "zebu7b": "Zebu-7B"},
        ["averag", "benchmark"],
    )
    # "Orca-9" is only written inside the longer label; "Zebu-7B0" is Zebu-7B with a footnote mark.
    assert [(row.label, row.cells) for row in evidence.cells] == [
        ("Tuned Orca-9 (LoRA)", [("Avg", "49.3")]),
        ("Zebu-7B0", [("Avg", "31.7")]),
    ]
    text, spans = extractive_answer(evidence)
    assert text.startswith("Tuned Orca-9 (LoRA): Avg 49.3 [1].\nZebu-7B0: Avg 31.7 [1].")
    assert "42.1" not in text and "20.5" not in text  # the other rows do not follow
    assert {s.text for s in spans[1]} >= {"| Tuned Orca-9 (LoRA) | 50.5 | 48.1 | 49.3 |"}


def test_rows_the_question_does_not_write_are_not_asked() -> None:
    # "Zebu 2" is another model than Zebu; "Heron" labels two rows, so it says neither.
    evidence = evidence_for(
        "What Widget-A scores do Zebu and Heron get?", {"zebu": "Zebu", "heron": "Heron"}, ["widget"]
    )
    assert evidence.cells == []


def test_a_size_beside_a_family_name_says_which_row() -> None:
    evidence = evidence_for("What average do Kite 13B and Kite 7B reach?", {"kite": "Kite"}, ["averag"], SIZED)
    assert [(row.label, row.cells) for row in evidence.cells] == [
        ("Kite 13B", [("Avg", "2.5")]),
        ("Kite 7B", [("Avg", "1.5")]),
    ]


def test_no_asked_column_no_cells() -> None:
    assert evidence_for("Who trained Orca-9?", {"orca9": "Orca-9"}, ["train"]).cells == []


def test_abbreviations() -> None:
    assert abbreviates("avg", "averag") and abbreviates("acc", "accuracy")
    assert not abbreviates("avg", "avg") and not abbreviates("std", "average") and not abbreviates("lr", "layer")
