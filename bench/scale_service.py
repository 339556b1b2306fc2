"""The service side of a scale run, in a process of its own so its memory is the service's alone:
load an index as `Atlas` does (Index + HybridSearcher + the USE-m3 query embedder), answer the
dev questions, and report RSS at each step, load time and latencies.

    python -m bench.scale_service --index DIR --out FILE [--profile FILE] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.measure import proc_status_mb, summary_ms


def bm25_term_timings(bm25: Any, repeat: int = 3) -> dict[str, Any]:
    """get_scores for one term, for terms at several document frequencies (rare to common)."""
    indptr = np.asarray(bm25.scores["indptr"])
    df = np.diff(indptr)
    order = np.argsort(df)
    inverse = {i: t for t, i in bm25.vocab_dict.items()}
    out = {}
    for q in (0.5, 0.9, 0.99, 1.0):
        term_id = int(order[min(len(order) - 1, int(q * (len(order) - 1)))])
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            bm25.get_scores([inverse[term_id]])
            times.append(time.perf_counter() - started)
        out[f"df_quantile_{q}"] = {"df": int(df[term_id]), **summary_ms(times)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", type=Path, help="write a pyinstrument text profile of the queries here")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    rss: dict[str, float] = {"start": proc_status_mb()}
    import bm25s
    import faiss

    from bench.scale import questions
    from ingest.index import Index, current_version
    from rag.service import Atlas
    from rag.settings import RagSettings

    rss["imports"] = proc_status_mb()
    version = current_version(args.index)

    # What each part costs on its own (loaded, measured, dropped; large arrays go back to the OS).
    parts: dict[str, float] = {}
    before = proc_status_mb()
    vector_index = faiss.read_index(str(version / "vectors.faiss"))
    parts["faiss"] = round(proc_status_mb() - before, 1)
    del vector_index
    before = proc_status_mb()
    lexical = bm25s.BM25.load(str(version / "bm25"), show_progress=False, verbosity=0)
    parts["bm25"] = round(proc_status_mb() - before, 1)
    bm25_arrays = sum(np.asarray(lexical.scores[k]).nbytes for k in ("data", "indices", "indptr"))
    del lexical

    started = time.perf_counter()
    index = Index(args.index)
    load_seconds = time.perf_counter() - started
    rss["index_loaded"] = proc_status_mb()
    atlas = Atlas(index, RagSettings(index_dir=args.index, llm_base_url=None))
    asked = questions()
    atlas.ask(asked[0], use_llm=False)  # loads the embedder model and jieba's dictionary
    rss["warm"] = proc_status_mb()

    searcher = atlas.searcher
    timings: dict[str, list[float]] = {"search": [], "dense": [], "lexical": [], "ask": []}
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    store = index.store
    analysed = {q: searcher.analyzer.analyse(q) for q in asked}
    vectors = {q: searcher.encoder.encode([a.search_text]) for q, a in analysed.items()}
    for _ in range(args.rounds):
        for question in asked:
            for name, call in (
                ("dense", lambda q=question: store.search_dense(vectors[q], 1000)),
                ("lexical", lambda q=question: store.search_lexical(analysed[q].terms, 1000)),
                ("search", lambda q=question: searcher.search(q, k=5)),
                ("ask", lambda q=question: atlas.ask(q, use_llm=False)),
            ):
                started = time.perf_counter()
                call()
                timings[name].append(time.perf_counter() - started)
    if profiler:
        profiler.stop()
        args.profile.write_text(profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8")
    rss["after_queries"] = proc_status_mb()
    rss["peak"] = proc_status_mb(field="VmHWM")

    chunks = len(index)
    result: dict[str, Any] = {
        "chunks": chunks,
        "ann": index.ann.to_json(),
        "load_seconds": round(load_seconds, 2),
        "rss_mb": rss,
        "rss_mb_per_part": parts,
        "bm25_array_bytes": int(bm25_arrays),
        "bm25_vocabulary": len(index.bm25.vocab_dict),
        "languages_bytes": int(index.languages.nbytes),
        "rss_bytes_per_chunk": round((rss["after_queries"] - rss["imports"]) * 2**20 / chunks, 1),
        "questions": len(asked),
        "bm25_single_term": bm25_term_timings(index.bm25),
        **{name: summary_ms(values) for name, values in timings.items()},
    }
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
