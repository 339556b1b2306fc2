"""What `llm-atlas bench` runs in child processes, so each gets its own wall clock and peak RSS.
Each prints one JSON object on its last stdout line.

    python -m bench.probes ingest --index DIR [PATH ...] [--add] [--ray ADDRESS]
    python -m bench.probes embed --index DIR            # the raw embedder on the index's chunk texts
    python -m bench.probes ask --index DIR QUESTION     # a cold `ask`, split into its parts
"""

from __future__ import annotations

import json
import sys
import time

STARTED = time.perf_counter()  # as early as a script can take it: before any import of ours


def ingest(index: str, paths: list[str], add: bool, ray: str | None = None) -> dict:
    from pathlib import Path

    from ingest.pipeline import run_ingest
    from ingest.settings import IngestSettings

    settings = IngestSettings(**({"ray_address": ray} if ray else {}))
    report = run_ingest(paths or None, settings, Path(index), add=add)
    return {
        "ray": report.ray,
        "documents": report.documents,
        "chunks": report.chunks,
        "embedded_chunks": report.embedded_chunks,
        "reused_chunks": report.reused_chunks,
        "up_to_date": report.up_to_date,
        "seconds": round(report.seconds, 3),
        "embed_seconds": round(report.embed_seconds, 3),
        "facts": report.facts,
        "facts_seconds": round(report.facts_seconds, 3),
        "facts_extracted_documents": report.facts_extracted_documents,
        "chunks_per_second": round(report.chunks_per_second, 2),
    }


def embed(index: str) -> dict:
    """The embedder alone, on the exact texts the ingest embedded (model load included, as in ingest)."""
    from pathlib import Path

    from ingest.embed import make_embedder
    from ingest.index import Index
    from ingest.schema import Chunk
    from ingest.settings import IngestSettings

    settings = IngestSettings()
    loaded = Index(Path(index))
    rows = list(range(len(loaded)))
    fields = set(Chunk.model_fields)
    texts = [Chunk(**{k: v for k, v in rec.items() if k in fields}).embed_text() for rec in loaded.chunks(rows)]
    embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    started = time.perf_counter()
    embedder.encode(texts)
    seconds = time.perf_counter() - started
    return {"chunks": len(texts), "seconds": round(seconds, 3), "chunks_per_second": round(len(texts) / seconds, 2)}


def ask(index: str, question: str) -> dict:
    """A cold `ask --json --no-llm`, timed part by part in one process."""
    from pathlib import Path

    parts = {}
    t = time.perf_counter()
    import server.cli  # noqa: F401  (what the `ask` command imports first)
    from rag.service import Atlas
    from rag.settings import RagSettings

    parts["import"] = time.perf_counter() - t
    t = time.perf_counter()
    atlas = Atlas.load(RagSettings(), Path(index))
    parts["index_load"] = time.perf_counter() - t
    t = time.perf_counter()
    answer = atlas.ask(question, use_llm=False)
    total = time.perf_counter() - t
    # The first answer also loads the embedder model and jieba's dictionary: that lands in retrieval.
    parts["retrieval"] = answer.timings.get("retrieval", 0.0)
    parts["answer"] = max(0.0, total - parts["retrieval"])
    t = time.perf_counter()
    sys.stdout.write(json.dumps(answer.public(), ensure_ascii=False) + "\n")
    parts["print"] = time.perf_counter() - t
    parts["in_script"] = time.perf_counter() - STARTED
    return {k: round(v, 4) for k, v in parts.items()} | {"answered": answer.answered}


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="probe", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--index", required=True)
    p.add_argument("--add", action="store_true")
    p.add_argument("--ray", default=None, help="embed on Ray: 'local' or a cluster address")
    p.add_argument("paths", nargs="*")
    p = sub.add_parser("embed")
    p.add_argument("--index", required=True)
    p = sub.add_parser("ask")
    p.add_argument("--index", required=True)
    p.add_argument("question")
    args = parser.parse_args(argv)
    if args.probe == "ingest":
        result = ingest(args.index, args.paths, args.add, args.ray)
    elif args.probe == "embed":
        result = embed(args.index)
    else:
        result = ask(args.index, args.question)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
