"""`llm-atlas bench --quick --json`: runs end to end and reports every section in its documented
shape. Only the shape is checked: benchmarks are never timed tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NUMBER = (int, float)


def has(section: dict, **kinds: type | tuple[type, ...]) -> None:
    for key, kind in kinds.items():
        assert isinstance(section.get(key), kind), f"{key}: {section.get(key)!r}"


def test_quick_bench_json_shape(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    llm_atlas = Path(sys.executable).with_name("llm-atlas")
    run = subprocess.run(
        [str(llm_atlas), "bench", "--quick", "--json", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert json.loads(out.read_text()) == result
    assert result["quick"] is True
    has(result["machine"], cores=int, memory_gib=NUMBER, cpu=str)

    ingest = result["ingest"]
    has(
        ingest,
        chunks=int,
        embedding_chunks_per_s=NUMBER,
        raw_embedder_chunks_per_s=NUMBER,
        embedding_vs_raw_embedder=NUMBER,
        cold_s=NUMBER,
        unchanged_rerun_s=NUMBER,
        add_one_document_s=NUMBER,
        index_bytes=int,
        index_vs_raw_vectors=NUMBER,
        peak_rss_mb=NUMBER,
    )
    assert ingest["unchanged_rerun_up_to_date"] is True and ingest["add_one_document_embedded_chunks"] > 0

    ask = result["ask_cold"]
    has(ask, wall_s_median=NUMBER, interpreter_start_s=NUMBER, peak_rss_mb=NUMBER)
    assert set(ask["split_s"]) == {"import", "index_load", "retrieval", "answer"}
    assert ask["answered"] is True

    warm = result["query_warm"]
    for part in ("retrieval", "answer_first_time", "answer_repeated", "query_embedding", "vector_search"):
        has(warm[part], n=int, p50_ms=NUMBER, p95_ms=NUMBER)
    has(warm["numpy_brute_force"], p50_ms=NUMBER)
    has(warm, retrieval_vs_query_embedding=NUMBER, vector_search_vs_numpy=NUMBER, answer_vs_retrieval=NUMBER)

    server = result["server"]
    if "skipped" not in server:
        assert [r["concurrency"] for r in server["runs"]] == [1, 4, 16]
        for r in server["runs"]:
            has(r, requests_per_second=NUMBER, p50_ms=NUMBER, p95_ms=NUMBER)
            assert r["errors"] == 0 and r["ok"] == r["requests"]
        has(server, p50_c1_vs_in_process_ask=NUMBER, rps_c16_vs_c1=NUMBER, peak_rss_mb=NUMBER)

    check_stores(result["stores"])
    check_ray(result["ray"])

    memory = result["memory"]
    assert set(memory["peak_rss_mb"]) == {"ingest", "ask", "server"}
    has(memory, python_with_imports_mb=NUMBER, index_bytes=int)


def check_ray(ray: dict) -> None:
    """`ingest --ray` against in process; CI installs the ray extra, without it the section says so."""
    try:
        import ray as _  # noqa: F401
    except ImportError:
        assert "ray" in ray["skipped"]
        return
    has(ray, cold_s=NUMBER, cold_vs_in_process=NUMBER, embedding_s=NUMBER, embedding_vs_in_process=NUMBER)
    assert ray["actors"] == 2 and 1 <= len(ray["texts_per_actor_process"]) <= 2
    assert ray["same_chunks"] is True and ray["largest_vector_difference"] < 1e-5


def check_stores(stores: dict) -> None:
    """FAISS vs Milvus side by side; CI installs the milvus extra, without it the section says so."""
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError:
        assert "milvus" in stores["skipped"]
        return
    for kind in ("faiss", "milvus"):
        has(stores[kind], cold_ingest_s=NUMBER, one_changed_document_s=NUMBER, dense_recall_at_10=NUMBER, rss_mb=NUMBER)
        for part in ("dense_k1000", "lexical_k1000"):
            has(stores[kind][part], p50_ms=NUMBER, p95_ms=NUMBER)
    # FAISS rewrites every chunk; Milvus only the changed document's.
    assert stores["faiss"]["one_changed_document_chunks_written"] == stores["faiss"]["chunks"]
    assert 0 < stores["milvus"]["one_changed_document_chunks_written"] < stores["milvus"]["chunks"]
    assert stores["milvus"]["dense_top10_agreement_with_faiss"] == stores["milvus"]["dense_recall_at_10"] == 1.0


def test_table_renders_every_section() -> None:
    """The printed table and the README's Markdown come from the same rows."""
    from bench.report import markdown, rows

    result = {
        "machine": {"cores": 2, "cpu": "x", "memory_gib": 24, "load_average": [1, 1, 1]},
        "quick": True,
        "seconds": 1.0,
        "ingest": {
            "corpus": "c",
            "documents": 1,
            "chunks": 2,
            "embedding_chunks_per_s": 1,
            "embedding_vs_raw_embedder": 1,
            "raw_embedder_chunks_per_s": 1,
            "cold_s": 1,
            "cold_embedding_share": 0.5,
            "facts": 3,
            "fact_extraction_s": 0.1,
            "fact_extraction_vs_rest": 0.05,
            "add_one_document_facts_extracted": 1,
            "unchanged_rerun_s": 1,
            "unchanged_vs_cold": 1,
            "add_one_document_s": 1,
            "add_one_document_embedded_chunks": 1,
            "add_one_vs_cold": 1,
            "index_bytes": 1,
            "index_bytes_per_chunk": 1,
            "index_vs_raw_vectors": 1,
        },
        "ask_cold": {"runs": 1, "wall_s_median": 1, "split_s": {"import": 1}, "interpreter_start_s": 0.1},
        "query_warm": {
            "questions": 1,
            **{
                k: {"p50_ms": 1, "p95_ms": 1}
                for k in ("retrieval", "vector_search", "answer_first_time", "answer_repeated")
            },
            "retrieval_vs_query_embedding": 1,
            "vector_search_vs_numpy": 1,
            "answer_vs_retrieval": 1,
        },
        "server": {"skipped": "no server"},
        "memory": {
            "peak_rss_mb": {"ingest": 1, "ask": 1, "server": None},
            "vs_python_with_imports": {"ingest": 1, "ask": 1},
        },
    }
    sections = {r[0] for r in rows(result)}
    assert sections == {"ingest", "ask (cold process)", "query (warm)", "server", "memory"}
    assert markdown(result).count("\n") == len(rows(result)) + 1
