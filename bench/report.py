"""The `llm-atlas bench` results as one table: each figure with the ratio that makes it comparable."""

from __future__ import annotations

from typing import Any


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(section, measure, value, comparable ratio) for every figure the table shows."""
    out: list[tuple[str, str, str, str]] = []
    ing = result["ingest"]
    out += [
        ("ingest", f"corpus: {ing['corpus']}", f"{ing['documents']} docs, {ing['chunks']} chunks", ""),
        (
            "ingest",
            "embedding chunks/s",
            f"{ing['embedding_chunks_per_s']}",
            f"{ing['embedding_vs_raw_embedder']} x raw embedder ({ing['raw_embedder_chunks_per_s']}/s)",
        ),
        ("ingest", "cold ingest s", f"{ing['cold_s']}", f"embedding is {pct(ing['cold_embedding_share'])} of it"),
        (
            "ingest",
            "fact extraction s",
            f"{ing['fact_extraction_s']} ({ing['facts']} facts)",
            f"{ing['fact_extraction_vs_rest']}x the rest of ingest; adding one document re-extracts "
            f"{ing['add_one_document_facts_extracted']}",
        ),
        ("ingest", "unchanged re-run s", f"{ing['unchanged_rerun_s']}", f"{ing['unchanged_vs_cold']} x cold"),
        (
            "ingest",
            "add one document s",
            f"{ing['add_one_document_s']} ({ing['add_one_document_embedded_chunks']} chunks embedded)",
            f"{ing['add_one_vs_cold']} x cold",
        ),
        (
            "ingest",
            "index on disk",
            f"{ing['index_bytes'] / 2**20:.1f} MiB ({ing['index_bytes_per_chunk']} B/chunk)",
            f"{ing['index_vs_raw_vectors']} x raw float32 vectors",
        ),
    ]
    ask = result["ask_cold"]
    split = ask["split_s"]
    warm_ask_s = result["query_warm"]["answer_first_time"]["p50_ms"] / 1000
    parts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in split.items())
    out += [
        (
            "ask (cold process)",
            f"wall s, median of {ask['runs']}",
            f"{ask['wall_s_median']}",
            f"{ratio_text(ask['wall_s_median'], warm_ask_s)} x warm ask",
        ),
        ("ask (cold process)", "split s", parts, f"python start {ask['interpreter_start_s']} s"),
    ]
    warm = result["query_warm"]
    out += [
        (
            "query (warm)",
            f"retrieval p50 / p95 ms ({warm['questions']} questions)",
            f"{warm['retrieval']['p50_ms']} / {warm['retrieval']['p95_ms']}",
            f"{warm['retrieval_vs_query_embedding']} x query embedding alone",
        ),
        (
            "query (warm)",
            "vector search p50 ms",
            f"{warm['vector_search']['p50_ms']}",
            f"{warm['vector_search_vs_numpy']} x numpy brute force",
        ),
        (
            "query (warm)",
            "extractive answer p50 / p95 ms",
            f"{warm['answer_first_time']['p50_ms']} / {warm['answer_first_time']['p95_ms']}",
            f"{warm['answer_vs_retrieval']} x retrieval",
        ),
        (
            "query (warm)",
            "same, question asked before, p50 / p95 ms",
            f"{warm['answer_repeated']['p50_ms']} / {warm['answer_repeated']['p95_ms']}",
            "query and sentence vectors cached",
        ),
    ]
    server = result["server"]
    if "skipped" in server:
        out.append(("server", "skipped", server["skipped"], ""))
    else:
        for run in server["runs"]:
            c = run["concurrency"]
            compare = (
                f"{server['p50_c1_vs_in_process_ask']} x in-process ask (repeated)"
                if c == 1
                else f"{server[f'rps_c{c}_vs_c1']} x c=1 rps"
            )
            out.append(
                (
                    "server /v1/ask",
                    f"{c} client{'s' if c > 1 else ''}: req/s, p50 / p95 ms",
                    f"{run['requests_per_second']}, {run['p50_ms']} / {run['p95_ms']}"
                    + (" ERRORS" if run["errors"] else ""),
                    compare,
                )
            )
    out += store_rows(result.get("stores") or {})
    out += ray_rows(result.get("ray") or {})
    mem = result["memory"]
    for name, peak in mem["peak_rss_mb"].items():
        if peak:
            out.append(
                ("memory", f"peak RSS {name} MiB", f"{peak}", f"{mem['vs_python_with_imports'][name]} x bare imports")
            )
    return out


def ray_rows(ray: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """`ingest --ray` (local Ray, 2 actors) against the in-process cold ingest."""
    if not ray:
        return []
    if "skipped" in ray:
        return [("ingest --ray", "skipped", str(ray["skipped"]), "")]
    return [
        (
            "ingest --ray",
            f"cold s ({ray['actors']} actors) / in process",
            f"{ray['cold_s']} / {ray['in_process_cold_s']}",
            f"{ray['cold_vs_in_process']} x in process",
        ),
        (
            "ingest --ray",
            "embedding s (Ray start + model loads) / in process",
            f"{ray['embedding_s']} / {ray['in_process_embedding_s']}",
            f"{ray['embedding_vs_in_process']} x in process",
        ),
        (
            "ingest --ray",
            "same index: chunks, largest vector difference",
            f"{ray['same_chunks']}, {ray['largest_vector_difference']}",
            f"texts per actor {ray['texts_per_actor_process']}",
        ),
    ]


def store_rows(stores: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """FAISS vs Milvus (bench/stores.py), one row per measure with both stores' values."""
    if "skipped" in stores:
        return [("stores", "skipped", str(stores["skipped"]), "")]
    if not stores:
        return []
    faiss, milvus = stores.get("faiss", {}), stores.get("milvus", {})
    if "error" in milvus or "error" in faiss:
        return [("stores", "error", (milvus.get("error") or faiss.get("error"))[-200:], "")]

    def pair(key: str, sub: str | None = None) -> str:
        a, b = (faiss.get(key), milvus.get(key)) if sub is None else (faiss[key][sub], milvus[key][sub])
        return f"{a} / {b}"

    return [
        (
            "stores: faiss / milvus",
            "cold ingest s (without embedding)",
            pair("cold_ingest_s"),
            pair("cold_without_embedding_s"),
        ),
        (
            "stores: faiss / milvus",
            "one changed document: re-ingest s",
            pair("one_changed_document_s"),
            f"chunks written {pair('one_changed_document_chunks_written')}",
        ),
        (
            "stores: faiss / milvus",
            "dense k=1000 p50 ms",
            pair("dense_k1000", "p50_ms"),
            f"p95 {pair('dense_k1000', 'p95_ms')}",
        ),
        (
            "stores: faiss / milvus",
            "lexical k=1000 p50 ms",
            pair("lexical_k1000", "p50_ms"),
            f"p95 {pair('lexical_k1000', 'p95_ms')}",
        ),
        (
            "stores: faiss / milvus",
            "dense recall@10 vs exact",
            pair("dense_recall_at_10"),
            f"milvus top-10 = faiss: dense {milvus.get('dense_top10_agreement_with_faiss')}, "
            f"lexical {milvus.get('lexical_top10_agreement_with_faiss')}",
        ),
        ("stores: faiss / milvus", "RSS of a loaded index MiB", pair("rss_mb"), "milvus: client + milvus-lite server"),
    ]


def pct(share: float | None) -> str:
    return f"{share * 100:.0f}%" if share is not None else "?"


def ratio_text(a: float, b: float) -> str:
    return f"{a / b:.1f}" if b else "?"


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    m = result["machine"]
    mode = " --quick" if result["quick"] else ""
    title = f"llm-atlas bench{mode}: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB"
    load = f"load average {m['load_average'][0]} at start, {m.get('load_average_end', ['?'])[0]} at end"
    table = Table(title=title, caption=f"{load}; {result['seconds']} s in all")
    for column in ("section", "measure", "value", "comparable"):
        table.add_column(column)
    for row in rows(result):
        table.add_row(*row)
    Console().print(table)


def markdown(result: dict[str, Any]) -> str:
    """The same table in Markdown, for the README."""
    lines = ["| section | measure | value | comparable |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows(result)]
    return "\n".join(lines)
