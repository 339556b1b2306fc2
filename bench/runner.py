"""`llm-atlas bench`: speed and memory of ingest, a cold `ask`, warm queries and the HTTP server,
measured in one run on this machine.

Every figure comes with a ratio against a reference measured in the same run on the same
machine (the raw embedder, a numpy brute-force search, an in-process ask), so results from
noisy or different machines can still be compared. Child processes give wall time from spawn
and their own peak RSS. `--quick` (under 2 minutes) works on a 4-document subset of the bundled
corpus with fewer repetitions; the full run uses the whole bundled corpus.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.measure import disk_bytes, machine_info, median, proc_status_mb, run_child, summary_ms, timed
from bench.scale import DEV_QUESTIONS, questions

QUICK_FILES = [
    "raw/vicuna-model-card.md",
    "raw/alpaca-model-card.md",
    "raw/grok-1-readme.md",
    "seeds/004_f2fee1a0cec11105.txt",
]
ADDED_DOCUMENT = """# Benchmark note

## Training

The benchmark model was fine-tuned for three epochs on 10K instruction pairs with a learning rate of 2e-5.
It has 7B parameters and a context length of 4096 tokens.
"""


def probe(args: list[str], timeout: float = 900) -> tuple[dict[str, Any], Any]:
    """Run `python -m bench.probes ARGS`; its JSON result and the run (wall seconds, peak RSS)."""
    run = run_child([sys.executable, "-m", "bench.probes", *args], timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"bench probe {args[0]} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1]), run


def bench_ingest(workdir: Path, quick: bool) -> tuple[dict[str, Any], Path]:
    """Cold ingest, an unchanged re-run, one added document; and the raw embedder on the same texts."""
    from corpus import CORPUS_DIR

    index = workdir / "index"
    paths: list[str] = []
    if quick:
        subset = workdir / "subset"
        subset.mkdir()
        for name in QUICK_FILES:
            shutil.copy(CORPUS_DIR / name, subset / Path(name).name)
        paths = [str(subset)]
    cold, cold_run = probe(["ingest", "--index", str(index), *paths])
    raw, raw_run = probe(["embed", "--index", str(index)])  # right after: the same load on the machine
    again, again_run = probe(["ingest", "--index", str(index), *paths])
    extra = workdir / "bench-note.md"
    extra.write_text(ADDED_DOCUMENT, encoding="utf-8")
    copy = workdir / "index-plus-one"  # the measured index stays the corpus alone
    shutil.copytree(index, copy, symlinks=True)
    added, added_run = probe(["ingest", "--index", str(copy), "--add", str(extra)])
    shutil.rmtree(copy)

    version = (index / "current").resolve()
    size = disk_bytes(version)
    vectors_bytes = cold["chunks"] * 512 * 4
    return {
        "corpus": "bundled subset (4 documents)" if quick else "bundled corpus",
        "documents": cold["documents"],
        "chunks": cold["chunks"],
        "embedding_chunks_per_s": cold["chunks_per_second"],
        "raw_embedder_chunks_per_s": raw["chunks_per_second"],
        "embedding_vs_raw_embedder": ratio(cold["chunks_per_second"], raw["chunks_per_second"]),
        "cold_s": round(cold_run.seconds, 2),
        "cold_in_pipeline_s": cold["seconds"],
        "cold_embedding_share": ratio(cold["embed_seconds"], cold["seconds"]),
        "embedding_s": cold["embed_seconds"],
        "facts": cold["facts"],
        "fact_extraction_s": cold["facts_seconds"],
        # What extraction adds, against the rest of ingest (the budget: under 0.25).
        "fact_extraction_vs_rest": ratio(cold["facts_seconds"], cold["seconds"] - cold["facts_seconds"]),
        "unchanged_rerun_s": round(again_run.seconds, 2),
        "unchanged_rerun_up_to_date": again["up_to_date"],
        "unchanged_vs_cold": ratio(again_run.seconds, cold_run.seconds),
        "add_one_document_s": round(added_run.seconds, 2),
        "add_one_document_embedded_chunks": added["embedded_chunks"],
        "add_one_document_facts_extracted": added["facts_extracted_documents"],
        "add_one_vs_cold": ratio(added_run.seconds, cold_run.seconds),
        "index_bytes": size,
        "index_bytes_per_chunk": round(size / max(1, cold["chunks"])),
        "index_vs_raw_vectors": ratio(size, vectors_bytes),
        "peak_rss_mb": cold_run.peak_rss_mb,
        "raw_embedder_peak_rss_mb": raw_run.peak_rss_mb,
    }, index


def bench_ask_cold(index: Path, repeat: int, split_repeat: int) -> dict[str, Any]:
    """`ask QUESTION --json --no-llm` from process start to printed answer, and its parts."""
    question = "How was Vicuna trained?"
    env = {"LLM_ATLAS_INDEX_DIR": str(index)}
    ask = script("ask")
    runs = [run_child([ask, question, "--json", "--no-llm"], env=env, timeout=300) for _ in range(repeat)]
    if any(r.returncode != 0 for r in runs):
        raise RuntimeError("ask failed: " + next(r.stderr for r in runs if r.returncode)[-2000:])
    answer = json.loads(runs[-1].stdout.strip().splitlines()[-1])
    interpreter = [run_child([sys.executable, "-c", "pass"]).seconds for _ in range(repeat)]
    parts = [probe(["ask", "--index", str(index), question])[0] for _ in range(split_repeat)]
    split = {key: round(median([p[key] for p in parts]), 3) for key in ("import", "index_load", "retrieval", "answer")}
    wall = median([r.seconds for r in runs])
    return {
        "runs": repeat,
        "wall_s_median": round(wall, 3),
        "wall_s_all": [round(r.seconds, 3) for r in runs],
        "interpreter_start_s": round(median(interpreter), 3),
        "split_s": split,
        "answered": answer.get("answered"),
        "peak_rss_mb": max(r.peak_rss_mb for r in runs),
    }


def bench_warm(index: Path, asked: list[str]) -> dict[str, Any]:
    """In loaded processes: retrieval and extractive answers over the dev questions.

    The searcher caches query and sentence vectors, so a question asked again skips the embedder.
    Retrieval and first answers are timed on separate `Atlas` instances, each seeing every
    question for the first time; "repeated" answers are a second pass (what a server answering
    the same questions again does, and what the server figures compare with)."""
    from ingest.index import Index
    from rag.service import Atlas
    from rag.settings import RagSettings

    def load() -> Atlas:
        atlas = Atlas.load(RagSettings(index_dir=index, llm_base_url=None), index)
        atlas.ask("What is a large language model?", use_llm=False)  # loads the model and jieba
        return atlas

    searching, answering = load(), load()
    retrieval, first, repeated, embed, search, brute = [], [], [], [], [], []
    vectors = np.ascontiguousarray(Index(index).vectors())
    k = min(len(vectors), 1000)
    for question in asked:
        retrieval += timed(lambda q=question: searching.searcher.search(q, k=searching.settings.top_k))[0]
        first += timed(lambda q=question: answering.ask(q, use_llm=False))[0]
        times, vector = timed(lambda q=question: searching.embedder.encode([q]))
        embed += times
        search += timed(lambda v=vector: searching.index.store.search_dense(v, k))[0]
        brute += timed(lambda v=vector: top_k(vectors, v[0], k))[0]
    for question in asked:
        repeated += timed(lambda q=question: answering.ask(q, use_llm=False))[0]
    return {
        "questions": len(asked),
        "source": "dev.jsonl" if DEV_QUESTIONS.exists() else "built-in generic questions",
        "retrieval": summary_ms(retrieval),
        "answer_first_time": summary_ms(first),
        "answer_repeated": summary_ms(repeated),
        "query_embedding": summary_ms(embed),
        "vector_search": summary_ms(search),
        "numpy_brute_force": summary_ms(brute),
        "retrieval_vs_query_embedding": ratio(median(retrieval), median(embed)),
        "vector_search_vs_numpy": ratio(median(search), median(brute)),
        "answer_vs_retrieval": ratio(median(first), median(retrieval)),
        "process_rss_mb": proc_status_mb(),
    }


def top_k(vectors: np.ndarray, vector: np.ndarray, k: int) -> np.ndarray:
    """The same search as the vector index's, by brute force in numpy."""
    scores = vectors @ vector
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_server(index: Path, asked: list[str], quick: bool, in_process_ask_ms: float) -> dict[str, Any]:
    """`llm-atlas serve` on a free loopback port: /v1/ask at 1, 4 and 16 concurrent clients."""
    import httpx

    try:
        import server.http  # noqa: F401
        from bench.server_load import measure_server
    except ImportError as exc:
        return {"skipped": f"no HTTP server ({exc})"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LLM_ATLAS_INDEX_DIR": str(index), "LLM_ATLAS_RATE_LIMIT_PER_MINUTE": "0"}
    env.pop("LLM_ATLAS_LLM_BASE_URL", None)  # extractive answers: the server's own cost, no LLM's
    command = [script("llm-atlas"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ready = None
        while time.perf_counter() - started < 300 and proc.poll() is None:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    ready = time.perf_counter() - started
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        if ready is None:
            return {
                "skipped": "the server did not become ready: " + (proc.stderr.read()[-1000:] if proc.poll() else "")
            }
        rss_ready = proc_status_mb(proc.pid)
        api_key = os.environ.get("LLM_ATLAS_API_KEY")
        runs = []
        for concurrency in (1, 4, 16):
            n = max(concurrency, 4) if quick else max(len(asked), 3 * concurrency)
            # The warm-up asks every question once: the figures are repeated questions, as in-process.
            warmup = len(asked) if concurrency == 1 else 0
            runs.append(measure_server(base, concurrency, n, api_key=api_key, questions=asked, warmup=warmup))
        peak = proc_status_mb(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    one = runs[0]
    return {
        "ready_s": round(ready, 2),
        "runs": [
            {k: r[k] for k in ("concurrency", "requests", "ok", "errors", "requests_per_second", "p50_ms", "p95_ms")}
            for r in runs
        ],
        "p50_c1_vs_in_process_ask": ratio(one["p50_ms"], in_process_ask_ms),  # both repeated questions
        "rps_c4_vs_c1": ratio(runs[1]["requests_per_second"], one["requests_per_second"]),
        "rps_c16_vs_c1": ratio(runs[2]["requests_per_second"], one["requests_per_second"]),
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": peak,
    }


def bench_stores(workdir: Path, asked: list[str], quick: bool) -> dict[str, Any]:
    """FAISS vs Milvus on the same documents (bench/stores.py); skipped without the milvus extra."""
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"no milvus extra ({exc}); pip install 'llm-atlas[milvus]'"}
    from bench.stores import bundled

    return bundled(workdir, asked, quick)


def bench_ray(workdir: Path, quick: bool, in_process: dict[str, Any], index: Path) -> dict[str, Any]:
    """`ingest --ray` (a local Ray, 2 actors) on the same documents as the in-process cold ingest:
    time against it, and whether the index is the same; skipped without the ray extra."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"no ray extra ({exc}); pip install 'llm-atlas[ray]'"}
    from ingest.index import Index

    paths = [str(workdir / "subset")] if quick else []
    ray_index = workdir / "index-ray"
    cold, cold_run = probe(["ingest", "--index", str(ray_index), "--ray", "local", *paths])
    with Index(index) as local, Index(ray_index) as on_ray:
        rows = list(range(len(local)))
        same_chunks = [c["chunk_id"] for c in local.chunks(rows)] == [c["chunk_id"] for c in on_ray.chunks(rows)]
        largest_difference = float(np.abs(local.vectors() - on_ray.vectors()).max()) if same_chunks else None
    shutil.rmtree(ray_index)
    return {
        "actors": cold["ray"]["actors"],
        "texts_per_actor_process": sorted(cold["ray"]["texts_per_process"].values()),
        "cold_s": round(cold_run.seconds, 2),
        "in_process_cold_s": in_process["cold_s"],
        "cold_vs_in_process": ratio(cold_run.seconds, in_process["cold_s"]),
        # Ray's embedding time includes starting Ray and one model load per actor.
        "embedding_s": cold["ray"]["seconds"],
        "in_process_embedding_s": in_process["embedding_s"],
        "embedding_vs_in_process": ratio(cold["ray"]["seconds"], in_process["embedding_s"]),
        "same_chunks": same_chunks,
        "largest_vector_difference": largest_difference,
        "peak_rss_mb_driver": cold_run.peak_rss_mb,
    }


def script(name: str) -> str:
    """This environment's console script (not another one earlier on PATH)."""
    sibling = Path(sys.executable).with_name(name)
    return str(sibling) if sibling.exists() else shutil.which(name) or name


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def run(quick: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {"machine": machine_info(), "quick": quick}
    with tempfile.TemporaryDirectory(prefix="llm-atlas-bench-") as tmp:
        workdir = Path(tmp)
        result["ingest"], index = bench_ingest(workdir, quick)
        result["ask_cold"] = bench_ask_cold(index, 2 if quick else 5, 1 if quick else 5)
        asked = questions()[: 5 if quick else None]
        result["query_warm"] = bench_warm(index, asked)
        repeated_ms = result["query_warm"]["answer_repeated"]["p50_ms"]
        result["server"] = bench_server(index, asked, quick, repeated_ms)
        result["stores"] = bench_stores(workdir, asked, quick)
        result["ray"] = bench_ray(workdir, quick, result["ingest"], index)
    baseline = run_child([sys.executable, "-c", "import server.cli, rag.service, ingest.index"]).peak_rss_mb
    peaks = {
        "ingest": result["ingest"]["peak_rss_mb"],
        "ask": result["ask_cold"]["peak_rss_mb"],
        "server": result["server"].get("peak_rss_mb"),
    }
    result["memory"] = {
        "peak_rss_mb": peaks,
        "python_with_imports_mb": baseline,
        "vs_python_with_imports": {k: ratio(v, baseline) if v else None for k, v in peaks.items()},
        "index_bytes": result["ingest"]["index_bytes"],
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(quick: bool = False, as_json: bool = False, out: Path | None = None) -> dict[str, Any]:
    result = run(quick=quick)
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
    if as_json:
        sys.stdout.write(text + "\n")
    else:
        from bench.report import print_table

        print_table(result)
    return result
