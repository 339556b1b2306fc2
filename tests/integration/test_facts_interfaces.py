"""Fact sheets from every interface, on the real bundled index: the CLI (`facts`, `compare`), the HTTP
API, the Python API; every cited quote is an exact span of its cleaned document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from corpus import CORPUS_DIR
from ingest.index import Index
from ingest.pipeline import run_ingest
from ingest.settings import IngestSettings

ROOT = Path(__file__).parents[2]
CLI = "from server.cli import app; app()"

try:
    from tests.integration import conftest_server as srv
except ModuleNotFoundError:
    import conftest_server as srv

pytest_plugins = [srv.__name__]


def cli(*args: str, index: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLM_ATLAS_INDEX_DIR": str(index)}
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=env, cwd=ROOT)


def assert_exact_quotes(index: Index, facts: list[dict]) -> None:
    for fact in facts:
        citation = fact["citation"]
        text = index.document(citation["doc_id"])["text"]
        assert text[citation["start"] : citation["end"]] == citation["quote"]
        assert fact["value"] in citation["quote"]


def test_facts_json_follows_the_contract(bundled_index: Path) -> None:
    out = cli("facts", "WebGPT", "ChatGLM-6B", "Zorblax-9000", "--json", index=bundled_index)
    assert out.returncode == 1  # one name is unknown
    webgpt, chatglm, unknown = (json.loads(line) for line in out.stdout.splitlines())
    assert set(webgpt) == {"query", "model", "aliases", "facts"} and webgpt["model"] == "WebGPT"
    for fact in webgpt["facts"] + chatglm["facts"]:
        assert {"attribute", "value", "normalized", "conflict", "citation"} <= set(fact)
        assert set(fact["citation"]) == {"doc_id", "title", "url", "section", "quote", "start", "end"}
    sizes = [f["normalized"] for f in webgpt["facts"] if f["attribute"] == "parameters"]
    assert sizes and {760e6, 13e9, 175e9} <= set(sizes[0])
    assert any(f["attribute"] == "base_model" and "GPT-3" in f["value"] for f in webgpt["facts"])
    assert set(unknown) == {"query", "error", "closest"} and "Zorblax-9000" in unknown["error"]
    with Index(bundled_index) as index:
        assert_exact_quotes(index, webgpt["facts"] + chatglm["facts"])


def test_facts_terminal_sheet_and_comparison_table(bundled_index: Path) -> None:
    sheet = cli("facts", "WebGPT", index=bundled_index)
    assert sheet.returncode == 0 and "parameters" in sheet.stdout and "760M" in sheet.stdout
    assert "[1]" in sheet.stdout and "GPT FamilyWebGPT" in sheet.stdout  # the quote of the flattened table row
    table = cli("compare", "Alpaca", "Vicuna", "Koala", "-a", "base_model,training_data", index=bundled_index)
    assert table.returncode == 0, table.stderr
    header = next(line for line in table.stdout.splitlines() if "Alpaca" in line and "Koala" in line)
    assert "Vicuna" in header and "base model" in table.stdout and "LLaMA" in table.stdout
    wrong = cli("compare", "Alpaca", "Vicuna", "-a", "favourite_colour", index=bundled_index)
    assert wrong.returncode == 2 and "Unknown attribute" in wrong.stderr


def test_compare_json_cites_every_cell(bundled_index: Path) -> None:
    out = cli("compare", "Alpaca", "Vicuna", "Koala", "--json", index=bundled_index)
    table = json.loads(out.stdout)
    assert table["models"] == ["Alpaca", "Vicuna", "Koala"] and not table["unknown"]
    base = next(row for row in table["rows"] if row["attribute"] == "base_model")
    assert all(base["cells"][model] for model in table["models"])  # each names its base model
    with Index(bundled_index) as index:
        for row in table["rows"]:
            for facts in row["cells"].values():
                assert_exact_quotes(index, facts)
                assert row["conflict"] == any(f["conflict"] for f in facts) or row["conflict"]


def test_http_facts_and_compare(live_server: srv.LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        sheet = client.get("/v1/facts/百川")
        assert sheet.status_code == 200 and sheet.json()["model"].lower().startswith("baichuan")
        missing = client.get("/v1/facts/Vicunaa")
        assert missing.status_code == 404 and "Closest known: Vicuna" in missing.json()["error"]["message"]
        compared = client.post("/v1/compare", json={"models": ["Alpaca", "Vicuna"], "attributes": ["base_model"]})
        assert compared.status_code == 200 and [r["attribute"] for r in compared.json()["rows"]] == ["base_model"]
        too_few = client.post("/v1/compare", json={"models": ["Alpaca"]})
        assert too_few.status_code == 422


def test_reingest_extracts_facts_of_changed_documents_only(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("raw/vicuna-model-card.md", "raw/llama-2-model-card.md", "raw/grok-1-readme.md"):
        shutil.copy(CORPUS_DIR / name, docs / Path(name).name)
    cold = run_ingest([str(docs)], IngestSettings(), tmp_path / "index")
    assert cold.facts_extracted_documents == 3 and cold.facts > 0
    card = docs / "grok-1-readme.md"
    card.write_text(card.read_text(encoding="utf-8") + "\n\nGrok-1 has a context length of 8192 tokens.\n")
    warm = run_ingest([str(docs)], IngestSettings(), tmp_path / "index")
    assert warm.facts_extracted_documents == 1
    with Index(tmp_path / "index") as index:
        lengths = index.facts.get("Grok-1", "context_length")
        assert any(f.normalized == 8192 for f in lengths)
        assert index.facts.sheet("Vicuna") is not None  # the reused records are still there


def test_fact_citations_never_show_server_paths() -> None:
    from server.http import public_comparison, public_sheet

    cite = {"doc_id": "d", "title": "t", "url": "/srv/data/notes/card.md", "section": "", "quote": "q"}
    fact = {"attribute": "licence", "value": "q", "citation": {**cite, "start": 0, "end": 1}}
    sheet = public_sheet({"query": "X", "model": "X", "aliases": [], "facts": [fact]})
    assert sheet["facts"][0]["citation"]["url"] == "card.md"
    table = public_comparison({"models": ["X"], "rows": [{"attribute": "licence", "cells": {"X": [fact]}}]})
    assert table["rows"][0]["cells"]["X"][0]["citation"]["url"] == "card.md"
    assert fact["citation"]["url"] == "/srv/data/notes/card.md"  # the store's own record is not changed
