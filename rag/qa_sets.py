"""Question sets in the scorer's format, and a check that each one is answerable from the index.

A QA line is `{"id", "question", "lang", "type", "facts": [[alt, ...], ...], "evidence": [[alt, ...], ...],
"history"?}`. Evidence and fact strings must occur in some indexed chunk (whitespace-free, case-free,
as the scorer compares), so that a question never asks for what the corpus does not hold;
unanswerable questions carry neither.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TYPES = frozenset({"fact", "numeric", "compare", "list", "followup", "unanswerable"})
LANGS = frozenset({"en", "zh"})


def norm(text: str) -> str:
    """The scorer's comparison form: no whitespace, lower case."""
    return re.sub(r"\s+", "", text or "").lower()


def load_qa(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
    return rows


def qa_problems(rows: Iterable[dict[str, Any]], chunk_texts: list[str]) -> list[str]:
    """Every way the rows break the format or ask for what the chunks do not contain."""
    chunks = [norm(t) for t in chunk_texts]
    problems: list[str] = []
    seen: set[str] = set()
    for row in rows:
        qid = str(row.get("id", "?"))
        if qid in seen:
            problems.append(f"{qid}: duplicate id")
        seen.add(qid)
        if not str(row.get("question", "")).strip():
            problems.append(f"{qid}: empty question")
        if row.get("type") not in TYPES:
            problems.append(f"{qid}: type {row.get('type')!r} not one of {sorted(TYPES)}")
        if row.get("lang") not in LANGS:
            problems.append(f"{qid}: lang {row.get('lang')!r} not en or zh")
        facts, evidence = row.get("facts") or [], row.get("evidence") or []
        if row.get("type") == "unanswerable":
            if facts or evidence:
                problems.append(f"{qid}: an unanswerable question carries no facts or evidence")
            continue
        if row.get("type") == "followup" and not row.get("history"):
            problems.append(f"{qid}: a follow-up needs its history")
        if not facts or not evidence:
            problems.append(f"{qid}: an answerable question needs facts and evidence")
        for kind, groups in (("evidence", evidence), ("fact", facts)):
            for group in groups:
                if not any(norm(alt) and norm(alt) in c for c in chunks for alt in group):
                    problems.append(f"{qid}: no chunk contains any of the {kind} {group}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """`python -m rag.qa_sets FILE...`: check QA files against the default (or LLM_ATLAS_INDEX_DIR) index."""
    import sys

    from ingest.index import Index
    from ingest.settings import IngestSettings

    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    with Index(IngestSettings().index_dir) as index:
        texts = [r["text"] for r in index.chunks(list(range(len(index))))]
    failed = 0
    for path in paths:
        rows = load_qa(path)
        problems = qa_problems(rows, texts)
        for problem in problems:
            print(f"{path.name}: {problem}")
        failed += len(problems)
        print(f"{path.name}: {len(rows)} questions, {len(problems)} problem(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
