"""FAISS vs Milvus (embedded milvus-lite), side by side on the same index content.

For each store: build time, a re-ingest after one changed document (chunks written), store query
latency (dense k=1000 and lexical k=1000, what the retriever asks for), dense recall@10 against
exact search over the same vectors, lexical top-10 agreement with the FAISS store, and the resident
memory of a fresh process holding the loaded index, milvus-lite's server process included (it runs
as a child of the client).

    python -m bench.stores measure --index DIR --queries Q.npy --questions Q.json --out R.json
    python -m bench.stores builtin-bm25 --index DIR --questions QA.jsonl   # Milvus's own BM25 vs ours
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.measure import run_child, summary_ms


def rss_tree_mb(pid: int | None = None) -> float:
    """Resident memory of a process and all its descendants (milvus-lite's server is one)."""
    root = pid or int(Path("/proc/self").resolve().name)
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return round(total / 1024, 1)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    from bench.scale import exact_top as blocked

    return blocked(vectors, queries, k)


def measure(index_dir: Path, queries: np.ndarray, questions: list[str]) -> dict[str, Any]:
    """In this (fresh) process: load the index, time its store's searches, check them."""
    from ingest.index import Index
    from rag.query import QueryAnalyzer

    started = time.perf_counter()
    index = Index(index_dir)
    load_seconds = time.perf_counter() - started
    store = index.store
    analyzer = QueryAnalyzer(index, index.facts)
    terms = [analyzer.analyse(q).terms for q in questions]
    store.search_dense(queries[:1], 10)  # first-call costs (collection load, caches) out of the timings
    dense, dense_ms, lexical, lexical_ms = [], [], [], []
    for vector in queries:
        t = time.perf_counter()
        store.search_dense(vector[None], 1000)
        dense_ms.append(time.perf_counter() - t)
        dense.append(store.search_dense(vector[None], 10)[0].rows.tolist())
    for weighted in terms:
        t = time.perf_counter()
        store.search_lexical(weighted, 1000)
        lexical_ms.append(time.perf_counter() - t)
        lexical.append(store.search_lexical(weighted, 10).rows.tolist())
    truth = exact_top(index.vectors(), queries, 10)
    recall = float(np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(dense, truth)]))
    filtered_ms = []
    for vector in queries[:50]:
        t = time.perf_counter()
        store.search_dense(vector[None], 1000, language="zh")
        filtered_ms.append(time.perf_counter() - t)
    return {
        "store": store.kind,
        "chunks": len(index),
        "load_seconds": round(load_seconds, 3),
        "dense_k1000": summary_ms(dense_ms),
        "dense_k1000_language_filter": summary_ms(filtered_ms),
        "lexical_k1000": summary_ms(lexical_ms),
        "dense_recall_at_10": round(recall, 4),
        "dense_top10": dense,
        "lexical_top10": lexical,
        "rss_mb": rss_tree_mb(),
    }


def measure_in_child(index_dir: Path, queries: np.ndarray, questions: list[str], workdir: Path) -> dict[str, Any]:
    name = index_dir.name
    qfile, tfile, out = workdir / f"{name}-q.npy", workdir / f"{name}-q.json", workdir / f"{name}-stores.json"
    np.save(qfile, queries, allow_pickle=False)
    tfile.write_text(json.dumps(questions, ensure_ascii=False), encoding="utf-8")
    command = [sys.executable, "-m", "bench.stores", "measure", "--index", str(index_dir)]
    run = run_child([*command, "--queries", str(qfile), "--questions", str(tfile), "--out", str(out)], timeout=3600)
    if run.returncode != 0:
        return {"error": run.stderr[-2000:]}
    return json.loads(out.read_text())


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Mean overlap of two stores' top-10 lists for the same queries."""
    return round(float(np.mean([len(set(x) & set(y)) / max(1, len(x)) for x, y in zip(a, b)])), 4) if a else 1.0


def side_by_side(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    base = results.get("faiss", {})
    for kind, result in results.items():
        if kind != "faiss" and "dense_top10" in result and "dense_top10" in base:
            result["dense_top10_agreement_with_faiss"] = agreement(base["dense_top10"], result["dense_top10"])
            result["lexical_top10_agreement_with_faiss"] = agreement(base["lexical_top10"], result["lexical_top10"])
    for result in results.values():
        result.pop("dense_top10", None)
        result.pop("lexical_top10", None)
    return results


def bundled(workdir: Path, questions: list[str], quick: bool = False) -> dict[str, Any]:
    """Both stores on the bundled corpus (a copy in a folder, so one document can change)."""
    from corpus import CORPUS_DIR
    from ingest.embed import USEm3Encoder
    from ingest.pipeline import run_ingest
    from ingest.settings import IngestSettings

    docs = workdir / "corpus-copy"
    shutil.rmtree(docs, ignore_errors=True)
    names = ["raw/vicuna-model-card.md", "raw/alpaca-model-card.md", "raw/koala-blog.md"] if quick else None
    if names:
        docs.mkdir(parents=True)
        for name in names:
            shutil.copy(CORPUS_DIR / name, docs / Path(name).name)
    else:
        shutil.copytree(CORPUS_DIR, docs, ignore=shutil.ignore_patterns("*.json", "*.py", "__pycache__"))
    changed = docs / "raw" / "koala-blog.md" if not quick else docs / "koala-blog.md"
    original = changed.read_text(encoding="utf-8")
    queries = USEm3Encoder().encode(questions).astype(np.float32)
    out: dict[str, Any] = {}
    for kind in ("faiss", "milvus"):
        changed.write_text(original, encoding="utf-8")
        index_dir = workdir / f"stores-{kind}"
        shutil.rmtree(index_dir, ignore_errors=True)
        settings = IngestSettings(store=kind)
        t = time.perf_counter()
        cold = run_ingest([str(docs)], settings, index_dir)
        cold_s = time.perf_counter() - t
        changed.write_text(original + "\n\nKoala was also run from a 4-bit llama.cpp build.\n", encoding="utf-8")
        t = time.perf_counter()
        again = run_ingest([str(docs)], settings, index_dir)
        again_s = time.perf_counter() - t
        out[kind] = {
            "cold_ingest_s": round(cold_s, 2),
            "embed_s": round(cold.embed_seconds, 2),
            "cold_without_embedding_s": round(cold_s - cold.embed_seconds, 2),
            "one_changed_document_s": round(again_s, 2),
            "one_changed_document_chunks_written": again.store.get("upserted"),
            "one_changed_document_chunks_deleted": again.store.get("deleted"),
            "chunks": again.chunks,
            **measure_in_child(index_dir, queries, questions, workdir),
        }
    changed.write_text(original, encoding="utf-8")
    return side_by_side(out)


def synthetic_upsert(index_dir: Path) -> dict[str, Any]:
    """One document of a synthetic Milvus index rewritten in place: what an ingest sends Milvus
    when one document changed (its chunks' vectors and text), timed with the flush."""
    from ingest.index import Index
    from ingest.store import StoredChunk

    with Index(index_dir) as index:
        recs = index.chunks(list(range(min(len(index), 12))))
        doc = recs[0]["doc_id"]
        recs = [r for r in recs if r["doc_id"] == doc]
        vectors = index.vectors()
        chunks = [
            StoredChunk(
                chunk_id=r["chunk_id"],
                doc_id=r["doc_id"],
                language=r["language"],
                models=r["entities"],
                vector=np.asarray(vectors[r["row"]]) * 0.99,
                term_counts={w: 1.0 for w in r["text"].split()[:40]},
                length=len(r["text"].split()),
                title=r["title"],
                url=r["url"],
                section=r["section"],
                start=r["start"],
                end=r["end"],
                text=r["text"] + " (changed)",
                sha="changed",
            )
            for r in recs
        ]
        t = time.perf_counter()
        written = index.store.upsert(chunks)
        index.store.flush()
        seconds = time.perf_counter() - t
        t = time.perf_counter()
        listing = len(index.store.stored())  # what an ingest compares against
        listing_s = time.perf_counter() - t
    return {
        "chunks_written": written,
        "upsert_and_flush_s": round(seconds, 3),
        "list_stored_hashes_s": round(listing_s, 2),
        "listed": listing,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--index", type=Path, required=True)
    m.add_argument("--queries", type=Path, required=True)
    m.add_argument("--questions", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("builtin-bm25", help="top-10 overlap of Milvus's built-in BM25 with ours")
    b.add_argument("--index", type=Path, required=True)
    b.add_argument("--questions", type=Path, required=True, help="a QA .jsonl file")
    args = parser.parse_args(argv)
    if args.command == "builtin-bm25":
        lines = args.questions.read_text(encoding="utf-8").splitlines()
        asked = [json.loads(line)["question"] for line in lines if line.strip()]
        print(json.dumps(builtin_bm25_agreement(args.index, asked, Path(tempfile.mkdtemp()))))
        return
    queries = np.load(args.queries, allow_pickle=False)
    questions = json.loads(args.questions.read_text(encoding="utf-8"))
    result = measure(args.index, queries, questions)
    args.out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()


def builtin_bm25_agreement(index_dir: Path, questions: list[str], workdir: Path) -> dict[str, Any]:
    """Why the Milvus store carries our own BM25 tokens: Milvus's built-in BM25 function over the
    chunk text (jieba analyser for Chinese, the standard one for English), searched with the
    question's text, against our weighted BM25 (the FAISS store's search_lexical): top-10 overlap."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from ingest.index import Index
    from ingest.schema import Chunk
    from rag.query import QueryAnalyzer

    index = Index(index_dir)
    records = index.chunks(list(range(len(index))))
    path = workdir / "builtin-bm25.db"
    path.unlink(missing_ok=True)
    client = MilvusClient(str(path))
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a dense field in every collection
    for lang, analyzer in (("zh", {"tokenizer": "jieba"}), ("en", {"type": "english"})):
        schema.add_field(
            f"text_{lang}", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params=analyzer
        )
        schema.add_field(f"bm25_{lang}", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name=f"bm25_{lang}",
                function_type=FunctionType.BM25,
                input_field_names=[f"text_{lang}"],
                output_field_names=[f"bm25_{lang}"],
            )
        )
    params = client.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="IP")
    for lang in ("zh", "en"):
        params.add_index(f"bm25_{lang}", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection("builtin", schema=schema, index_params=params, consistency_level="Strong")
    rows = []
    for r in records:
        text = Chunk(**{k: r[k] for k in Chunk.model_fields if k in r}).embed_text()
        # Each chunk in both analysers' fields, so one question is searched by the analyser of its language.
        rows.append({"row": r["row"], "v": [1.0, 0.0], "text_zh": text[:20000], "text_en": text[:20000]})
    for start in range(0, len(rows), 500):
        client.insert("builtin", rows[start : start + 500])
    analyzer = QueryAnalyzer(index, index.facts)
    overlaps = []
    for question in questions:
        query = analyzer.analyse(question)
        ours = index.store.search_lexical(query.terms, 10).rows.tolist()
        lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in question) else "en"
        found = client.search(
            "builtin", data=[question], anns_field=f"bm25_{lang}", limit=10, search_params={"metric_type": "BM25"}
        )
        theirs = [h["id"] for h in found[0]]
        overlaps.append(len(set(ours) & set(theirs)) / max(1, len(ours)))
    client.close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))
    index.close()
    return {"questions": len(questions), "top10_overlap_with_ours": round(float(np.mean(overlaps)), 3)}
