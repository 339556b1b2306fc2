"""Scale runs: index a synthetic corpus of 100k or 1M chunks and measure it.

    python -m bench.scale --size 100k          # ~5-10 minutes on 2 cores, ~1 GB of disk
    python -m bench.scale --size 1m            # ~20-40 minutes (HNSW's build alone: 13), ~5 GB of disk

1. build: the synthetic corpus (bench/synthetic.py; its vectors are synthetic, calibrated on the real
   USE-m3 vectors) is streamed through IndexWriter in blocks, tokenised by a pool of workers;
   build time per stage, peak memory and disk per component.
2. vectors: exact top-10 by brute force over the vectors memmap, then each approximate FAISS kind:
   build time, size, recall@10 against exact and single-query latency at several nprobe values.
3. service: a fresh process loads the index (Index + HybridSearcher + the real USE-m3 query
   embedder) and answers the dev questions; its RSS, load time and latencies (bench/scale_service.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.measure import disk_bytes, machine_info, peak_rss_mb, run_child, summary_ms
from bench.synthetic import SyntheticCorpus

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
DEV_QUESTIONS = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"
GENERIC_QUESTIONS = [
    "How was Vicuna trained?",
    "What is the context length of Llama 2?",
    "ChatGLM-6B 需要多少显存？",
    "Which license does Falcon-7B use?",
    "What is QLoRA?",
    "Baichuan-7B 使用了多少训练数据？",
]
NPROBES = (16, 32, 64, 128, 256, 512)
EF_SEARCH = (64, 128, 256, 512)


def questions() -> list[str]:
    """The dev questions when the shared eval set is there, else a built-in generic list."""
    if DEV_QUESTIONS.exists():
        return [json.loads(line)["question"] for line in DEV_QUESTIONS.read_text("utf-8").splitlines() if line]
    return list(GENERIC_QUESTIONS)


def bundled_index(workdir: Path) -> Path:
    """The real index of the bundled corpus: what the synthetic corpus learns from."""
    from ingest.index import Index, IndexProblem
    from ingest.pipeline import run_ingest
    from ingest.settings import IngestSettings

    path = workdir / "bundled"
    try:
        Index(path, embedder_name="use-m3")
    except IndexProblem:
        run_ingest(None, IngestSettings(embedder="use-m3"), path)
    return path


# --- build ------------------------------------------------------------------------------------------

_gazetteer: Any = None


def _init_worker(gazetteer_json: str) -> None:
    from ingest.entities import Gazetteer
    from ingest.tokenize import _jieba

    global _gazetteer
    _gazetteer = Gazetteer.from_json(json.loads(gazetteer_json))
    _jieba()  # load the dictionary once per worker, not per batch


def _lexical_parts(texts: list[str]) -> tuple[list[list[str]], list[list[str]], float]:
    from ingest.pipeline import lexical_parts

    started = time.process_time()
    tokens, entities = lexical_parts(_gazetteer, texts)
    return tokens, entities, time.process_time() - started


def build(size: int, workdir: Path, source: Path, workers: int, seed: int = 0, store: str = "faiss") -> dict[str, Any]:
    """Stream `size` synthetic chunks into a new index at workdir/index-<size> (-milvus: that store)."""
    import multiprocessing

    from ingest.ann import AnnConfig
    from ingest.index import Index, IndexWriter
    from ingest.lexicon import build_lexicon
    from ingest.settings import IngestSettings

    started = time.perf_counter()
    real = Index(source)
    corpus = SyntheticCorpus.from_index(real, seed=seed)
    learn_seconds = time.perf_counter() - started
    gazetteer = real.gazetteer  # synthetic text is made of the bundled corpus's words and names
    from ingest.store.config import StoreConfig

    index_dir = workdir / (f"index-{size}" if store == "faiss" else f"index-{size}-{store}")
    settings = IngestSettings(store=store, milvus_uri=str(index_dir / "milvus.db"))
    store_config = StoreConfig.from_settings(settings, index_dir)
    times = {"generate": 0.0, "write": 0.0, "tokenize_cpu": 0.0}
    chars = {"zh": 0, "en": 0}
    chunks_by_lang = {"zh": 0, "en": 0}
    context = multiprocessing.get_context("fork")
    build_started = time.perf_counter()
    with (
        context.Pool(workers, _init_worker, (json.dumps(gazetteer.to_json()),)) as pool,
        IndexWriter(index_dir, size, 512, ann=AnnConfig.from_settings(settings), store=store_config) as writer,
    ):
        pending: deque = deque()

        def drain_one() -> None:
            batch, result = pending.popleft()
            tokens, entities, cpu = result.get()
            times["tokenize_cpu"] += cpu
            t = time.perf_counter()
            writer.add_documents(batch.documents)
            writer.add_chunks(batch.chunks, entities, batch.vectors, tokens)
            times["write"] += time.perf_counter() - t

        batches = corpus.batches(size)
        while True:
            t = time.perf_counter()
            batch = next(batches, None)
            times["generate"] += time.perf_counter() - t
            if batch is None:
                break
            for c in batch.chunks:
                chars[c.language] += len(c.text)
                chunks_by_lang[c.language] += 1
            texts = [c.embed_text() for c in batch.chunks]
            pending.append((batch, pool.apply_async(_lexical_parts, (texts,))))
            while len(pending) > 2 * workers:  # back-pressure: at most a few blocks in memory
                drain_one()
        while pending:
            drain_one()
        streamed = time.perf_counter() - build_started
        t = time.perf_counter()
        vocabulary = writer.vocabulary()
        lexicon = build_lexicon(vocabulary)
        times["lexicon"] = time.perf_counter() - t
        manifest = {
            "embedder": "synthetic",
            "synthetic": {
                "seed": seed,
                "chunks": size,
                "vectors": "Gaussian, calibrated on the bundled corpus's USE-m3 vectors (not embeddings)",
            },
            "chunk_chars": settings.chunk_chars,
        }
        vocab_size = len(vocabulary)
        writer.commit(gazetteer, manifest, lexicon)
        times.update(writer.timings)
    total = time.perf_counter() - build_started
    version = (index_dir / "current").resolve()
    parts = {
        "vectors.npy": disk_bytes(version / "vectors.npy"),
        "vectors.faiss": disk_bytes(version / "vectors.faiss") if (version / "vectors.faiss").exists() else 0,
        "milvus.db": disk_bytes(index_dir / "milvus.db") if (index_dir / "milvus.db").exists() else 0,
        "bm25": disk_bytes(version / "bm25"),
        "store.sqlite": disk_bytes(version / "store.sqlite"),
    }
    return {
        "chunks": size,
        "store": store,
        "store_report": writer.store_report,
        "documents": int(json.loads((version / "manifest.json").read_text())["documents"]),
        "chunks_by_language": chunks_by_lang,
        "mean_chars": {k: round(chars[k] / max(1, chunks_by_lang[k]), 1) for k in chars},
        "bm25_vocabulary": vocab_size,
        "learn_seconds": round(learn_seconds, 1),
        "seconds_total": round(total, 1),
        "seconds_streaming": round(streamed, 1),
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "chunks_per_second": round(size / total, 1),
        "ann": json.loads((version / "manifest.json").read_text())["ann"],
        "peak_rss_mb_builder": peak_rss_mb(),
        "disk_bytes": {**parts, "total": disk_bytes(version)},
        "disk_bytes_per_chunk": round(disk_bytes(version) / size, 1),
        "workers": workers,
        "index_dir": str(index_dir),
    }


# --- vectors: exact vs approximate ------------------------------------------------------------------


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 100_000) -> np.ndarray:
    """Exact top-k rows by inner product, by brute force over blocks of a (memmapped) matrix."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), block):
        scores = queries @ np.asarray(vectors[start : start + block]).T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        all_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        all_rows = np.concatenate([best_rows, top + start], axis=1)
        keep = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(all_scores, keep, axis=1)
        best_rows = np.take_along_axis(all_rows, keep, axis=1)
    return best_rows


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def latency(index: Any, queries: np.ndarray, k: int) -> dict[str, float]:
    """Single-query searches, one at a time, as the service makes them."""
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q[None, :], k)
        times.append(time.perf_counter() - started)
    return summary_ms(times)


def brute_force_latency(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> dict[str, float]:
    """numpy q @ V.T + argpartition over the whole matrix (in memory), one query at a time."""
    times = []
    for q in queries:
        started = time.perf_counter()
        scores = vectors @ q
        np.argpartition(-scores, k)[:k]
        times.append(time.perf_counter() - started)
    return summary_ms(times)


def vector_study(
    index_dir: Path,
    queries: np.ndarray,
    kinds: Sequence[str],
    real: int,
    build_seconds: float,
    timing_queries: int = 100,
) -> dict[str, Any]:
    """Exact vs approximate search on the same vectors; the last `real` queries are real question vectors."""
    import faiss

    from ingest.ann import AnnConfig, AnnSpec, build, choose, configure, nlist_for, single_thread_search

    single_thread_search()  # as the service searches
    version = (index_dir / "current").resolve()
    vectors = np.load(version / "vectors.npy", mmap_mode="r")
    rows = len(vectors)
    started = time.perf_counter()
    truth = exact_top(vectors, queries, 10)
    out: dict[str, Any] = {
        "queries": len(queries),
        "exact_ground_truth_seconds": round(time.perf_counter() - started, 1),
    }
    timing = queries[:timing_queries]

    in_memory = np.ascontiguousarray(vectors)  # 2 GB at 1M: only this study holds it
    out["numpy_brute_force"] = brute_force_latency(in_memory, timing[:30])
    flat = faiss.IndexFlatIP(in_memory.shape[1])
    flat.add(in_memory)
    out["flat"] = {
        "bytes": rows * in_memory.shape[1] * 4,
        "k10": latency(flat, timing, 10),
        "k1000": latency(flat, timing, 1000),
    }
    del flat, in_memory

    config = AnnConfig()
    chosen = choose(rows, config)
    out["service_kind"] = chosen.to_json()
    for kind in kinds:
        spec = choose(rows, AnnConfig(exact_max=0, kind=kind))
        started = time.perf_counter()
        if spec.kind == chosen.kind:  # the index the build wrote: no second build
            index = faiss.read_index(str(version / "vectors.faiss"))
            seconds = build_seconds
        else:
            index = build(vectors, spec, config)
            seconds = time.perf_counter() - started
        entry: dict[str, Any] = {
            "factory": kind,
            "nlist": spec.nlist or None,
            "build_seconds": round(seconds, 1),
            "bytes": int(faiss.serialize_index(index).nbytes),
            "sweep": [],
        }
        entry["bytes_per_chunk"] = round(entry["bytes"] / rows, 1)
        settings = [("nprobe", n) for n in NPROBES if n <= spec.nlist] if spec.nlist else []
        settings = settings or [("efSearch", e) for e in EF_SEARCH]
        for name, value in settings:
            if name == "nprobe":
                configure(index, AnnSpec(spec.kind, spec.nlist, value))
            else:
                configure(index, AnnSpec(spec.kind, ef_search=value))
            scores, found = index.search(queries, 10)
            exact_scores = np.einsum("qd,qkd->qk", queries, np.asarray(vectors[np.maximum(found, 0)]))
            entry["sweep"].append(
                {
                    name: value,
                    "recall_at_10": round(recall_at(found, truth), 4),
                    "recall_at_10_real_questions": round(recall_at(found[-real:], truth[-real:]), 4),
                    "score_error_mean": round(float(np.abs(scores - exact_scores)[found >= 0].mean()), 5),
                    "k10": latency(index, timing, 10),
                    "k1000": latency(index, timing, 1000),
                }
            )
        out[kind] = entry
        del index
    out["nlist_rule"] = nlist_for(rows)
    return out


# --- stores: FAISS vs Milvus ------------------------------------------------------------------------


def store_study(size: int, args: Any, source: Path, queries: np.ndarray, faiss_build: dict[str, Any]) -> dict[str, Any]:
    """The same synthetic corpus in Milvus (milvus-lite): build, one-document upsert, queries, memory,
    beside the FAISS index built above (bench/stores.py measures both in fresh processes)."""
    import shutil

    from bench.stores import measure_in_child, side_by_side, synthetic_upsert

    shutil.rmtree(args.workdir / f"index-{size}-milvus", ignore_errors=True)  # a cold build, not a diff
    milvus_build = build(size, args.workdir, source, args.workers, store="milvus")
    index_dirs = {"faiss": Path(faiss_build["index_dir"]), "milvus": Path(milvus_build["index_dir"])}
    asked = questions()
    results = {kind: measure_in_child(path, queries, asked, args.workdir) for kind, path in index_dirs.items()}
    for kind, b in (("faiss", faiss_build), ("milvus", milvus_build)):
        t = b["seconds"]
        store_s = t.get("vector_index", 0) + t.get("bm25", 0) if kind == "faiss" else t.get("store_sync", 0)
        results[kind].update(
            build_s=b["seconds_total"],
            store_write_s=round(store_s, 1),
            builder_peak_rss_mb=b["peak_rss_mb_builder"],
            disk_bytes=b["disk_bytes"],
        )
    # FAISS rewrites its whole index on every ingest; Milvus is written by chunk id.
    results["faiss"]["one_changed_document"] = {
        "rewrites": "every chunk",
        "store_write_s": results["faiss"]["store_write_s"],
    }
    results["milvus"]["one_changed_document"] = synthetic_upsert(index_dirs["milvus"])
    return side_by_side(results)


# --- service process ----------------------------------------------------------------------------------


def service(index_dir: Path, workdir: Path, profile: bool) -> dict[str, Any]:
    """Load and query the index in a fresh process (so RSS is the service's own)."""
    out_file = workdir / f"service-{index_dir.name}.json"
    command = [sys.executable, "-m", "bench.scale_service", "--index", str(index_dir), "--out", str(out_file)]
    if profile:
        command += ["--profile", str(workdir / f"profile-{index_dir.name}.txt")]
    run = run_child(command, timeout=3600)
    if run.returncode != 0:
        return {"error": run.stderr[-2000:]}
    result = json.loads(out_file.read_text())
    result["process_peak_rss_mb"] = run.peak_rss_mb
    return result


def print_summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    b = result["build"]
    table = Table(title=f"Scale run: {b['chunks']:,} synthetic chunks (synthetic vectors)")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("build seconds (total)", f"{b['seconds_total']}")
    for key, value in b["seconds"].items():
        table.add_row(f"  {key} s", f"{value}")
    table.add_row("peak RSS builder MiB", f"{b['peak_rss_mb_builder']}")
    table.add_row("disk bytes/chunk", f"{b['disk_bytes_per_chunk']}")
    table.add_row("BM25 vocabulary", f"{b['bm25_vocabulary']:,}")
    v = result.get("vectors", {})
    if "flat" in v:
        table.add_row("exact flat k=10 p50/p95 ms", f"{v['flat']['k10']['p50_ms']} / {v['flat']['k10']['p95_ms']}")
        table.add_row("numpy brute force p50 ms", f"{v['numpy_brute_force']['p50_ms']}")
    for kind in ("ivf-sq8", "ivf-pq", "hnsw-sq8"):
        if kind in v:
            for point in v[kind]["sweep"]:
                knob = next(k for k in point if k in ("nprobe", "efSearch"))
                table.add_row(
                    f"{kind} {knob}={point[knob]} recall@10 / k=1000 p50,p95 ms",
                    f"{point['recall_at_10']} / {point['k1000']['p50_ms']}, {point['k1000']['p95_ms']}",
                )
            table.add_row(
                f"{kind} build s / bytes per chunk", f"{v[kind]['build_seconds']} / {v[kind]['bytes_per_chunk']}"
            )
    s = result.get("service", {})
    if "rss_mb" in s:
        table.add_row("service RSS after queries MiB (peak)", f"{s['rss_mb']['after_queries']} ({s['rss_mb']['peak']})")
        table.add_row("service load seconds", f"{s['load_seconds']}")
        table.add_row("search p50/p95 ms", f"{s['search']['p50_ms']} / {s['search']['p95_ms']}")
        table.add_row("ask (extractive) p50/p95 ms", f"{s['ask']['p50_ms']} / {s['ask']['p95_ms']}")
    Console().print(table)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", help="10k, 100k, 1m or a number of chunks")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "llm-atlas-scale")
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--kinds", default="hnsw-sq8,ivf-sq8", help="approximate kinds to compare")
    parser.add_argument("--queries", type=int, default=200, help="held-out synthetic query vectors")
    parser.add_argument("--skip-build", action="store_true", help="reuse the index a previous run built")
    parser.add_argument("--profile", action="store_true", help="profile the service's queries (pyinstrument)")
    parser.add_argument("--out", type=Path, help="write the JSON here (default: WORKDIR/scale-SIZE.json)")
    parser.add_argument("--stores", default="faiss,milvus", help="'faiss,milvus': also build and compare Milvus")
    parser.add_argument("--skip-service", action="store_true", help="leave out the service process run")
    args = parser.parse_args(argv)
    size = SIZES.get(args.size.lower()) or int(args.size)
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = bundled_index(args.workdir)
    result: dict[str, Any] = {"size": size, "machine": machine_info()}
    out = args.out or args.workdir / f"scale-{args.size.lower()}.json"
    index_dir = args.workdir / f"index-{size}"
    build_file = args.workdir / f"build-{size}.json"
    if args.skip_build and build_file.exists():
        result["build"] = json.loads(build_file.read_text())
    else:
        result["build"] = build(size, args.workdir, source, args.workers)
        build_file.write_text(json.dumps(result["build"], indent=1))
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))

    from ingest.embed import USEm3Encoder
    from ingest.index import Index

    real_questions = USEm3Encoder().encode(questions()[:30])
    synthetic = SyntheticCorpus.from_index(Index(source)).query_vectors(args.queries)
    queries = np.vstack([synthetic, real_questions]).astype(np.float32)  # real ones last (see vector_study)
    kinds = [k for k in args.kinds.split(",") if k]
    built = result["build"]["seconds"].get("vector_index", float("nan"))
    result["vectors"] = vector_study(index_dir, queries, kinds, real=len(real_questions), build_seconds=built)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    if not args.skip_service:
        result["service"] = service(index_dir, args.workdir, args.profile)
        out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    if "milvus" in args.stores.split(","):
        result["stores"] = store_study(size, args, source, queries, result["build"])
        out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print_summary(result)
    print(f"JSON: {out}")
    return result


if __name__ == "__main__":
    main()
