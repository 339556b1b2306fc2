"""Fact sheets over the real bundled corpus: known sheets, exact spans everywhere, gold-file scores."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ingest.fact_store import Fact, FactStore
from ingest.facts import build_fact_store, extract
from ingest.pipeline import IngestReport, clean_documents, load_sources
from ingest.schema import Document
from ingest.settings import IngestSettings
from rag.fact_eval import load_gold, score_facts

GOLD = Path(__file__).resolve().parents[1] / "data" / "facts_gold.jsonl"


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[Document]:
    sources, skipped = load_sources(None, IngestSettings())
    assert not skipped
    return clean_documents(sources, IngestReport(index_dir=tmp_path_factory.mktemp("facts")))


@pytest.fixture(scope="module")
def store(documents: list[Document]) -> FactStore:
    return build_fact_store(documents)


def values(facts: list[Fact]) -> list[object]:
    return [f.normalized for f in facts]


def test_every_quote_is_an_exact_span(documents: list[Document], store: FactStore) -> None:
    by_id = {d.doc_id: d for d in documents}
    assert len(store.facts) > 300
    for fact in store.facts:
        text = by_id[fact.doc_id].text
        assert text[fact.start : fact.end] == fact.quote
        assert text[fact.value_start : fact.value_end] == fact.value
        assert fact.start <= fact.value_start < fact.value_end <= fact.end


def test_webgpt_from_the_flattened_table(store: FactStore) -> None:
    sheet = store.sheet("WebGPT")
    assert sheet is not None
    assert (760e6, 13e9, 175e9) in values(store.get("WebGPT", "parameters"))
    assert "2021" in values(store.get("webgpt", "release_date"))
    assert [f.value for f in store.get("WebGPT", "base_model")] == ["GPT-3"]
    assert all(f.shape == "flat_table" for f in sheet.facts)


def test_chatglm_6b(store: FactStore) -> None:
    parameters = store.get("ChatGLM-6B", "parameters")
    assert all(p == (6.2e9,) for p in values(parameters))
    assert {f.value for f in parameters} >= {"6.2 billion", "62 亿"}  # the English card and the Chinese post
    memory = store.get("chatglm6b", "memory_requirement")
    assert any(f.normalized == 6.0 and "INT4" in f.qualifier for f in memory)
    assert all(f.conflict is False for f in memory)  # several settings, not a disagreement


def test_stackllama_and_colossalchat_from_the_list_post(store: FactStore) -> None:
    assert [f.value for f in store.get("StackLLama", "base_model")] == ["LLama"]
    assert [f.value for f in store.get("StackLLama", "training_data")] == ["Stackexchange"]
    assert [f.value for f in store.get("ColossalChat", "developer")] == ["HPC-AI Tech"]
    assert store.get("StackLLama", "developer") == []


def test_names_across_scripts_and_families(store: FactStore) -> None:
    assert store.sheet("百川").model == "Baichuan"
    assert store.sheet("通义千问").model == store.sheet("Qwen").model
    vicuna = store.sheet("Vicuna")
    assert {"Vicuna-13B", "Vicuna v1.5"} <= set(vicuna.variants)
    assert 300.0 in values(store.get("Vicuna", "training_cost"))  # a family answers with its variants'
    assert store.sheet("GPT-5") is None and "GPT-4" in store.closest("GPT-5")


def test_gold_file_targets(store: FactStore) -> None:
    gold = load_gold(GOLD)
    with_value = [g for g in gold if not g.get("absent")]
    assert len(with_value) >= 80 and len(gold) - len(with_value) >= 20
    assert len({g["model"] for g in with_value}) >= 30
    result = score_facts(store, gold)
    assert result["precision"] >= 0.9, result["wrong"]
    assert result["recall"] >= 0.75, result["missed"]
    assert result["absent_accuracy"] >= 0.9, result["absent_returned"]


def test_extraction_is_fast(documents: list[Document]) -> None:
    start = time.perf_counter()
    for document in documents:
        extract(document)
    # ingest of the bundled corpus takes about 12 s; fact extraction must stay well under a quarter of it
    assert time.perf_counter() - start < 3.0
