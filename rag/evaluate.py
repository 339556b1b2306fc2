"""`llm-atlas eval`: answer a QA file and score the answers.

Scores follow the QA format's definitions: evidence_recall@k (share of evidence groups found
in the first k contexts), fact_coverage (share of fact groups in the answer), answered_rate,
refusal_accuracy and citation_valid, each a mean in [0, 1].
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rag.service import Atlas, QuestionError


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text or "").lower()


def score(questions: list[dict], answers: dict[str, dict], k: int = 5) -> dict[str, float | int | None]:
    recall, coverage, answered, refused, cited = [], [], [], [], []
    by_type: dict[str, list[float]] = {}
    for q in questions:
        a = answers.get(str(q["id"]), {})
        if q.get("type") == "unanswerable":
            refused.append(1.0 if a.get("answered") is False else 0.0)
            by_type.setdefault("unanswerable", []).append(refused[-1])
            continue
        contexts = [_norm(c.get("text", "")) for c in (a.get("contexts") or [])[:k]]
        groups = q.get("evidence") or []
        hits = [any(_norm(x) in c for c in contexts for x in g) for g in groups]
        recall.append(sum(hits) / len(groups) if groups else 1.0)
        text = _norm(a.get("answer", ""))
        facts = q.get("facts") or []
        coverage.append(sum(any(_norm(x) in text for x in g) for g in facts) / len(facts) if facts else 1.0)
        by_type.setdefault(q.get("type", "other"), []).append(coverage[-1])
        answered.append(1.0 if a.get("answered") else 0.0)
        if a.get("answered"):
            ns = {int(c["n"]) for c in a.get("citations") or [] if str(c.get("n", "")).isdigit()}
            marks = {int(m) for m in re.findall(r"\[(\d+)\]", a.get("answer", ""))}
            cited.append(1.0 if marks and marks <= ns else 0.0)

    def mean(xs: list[float]) -> float | None:
        return round(sum(xs) / len(xs), 3) if xs else None

    out: dict[str, float | int | None] = {
        "n": len(questions),
        f"evidence_recall@{k}": mean(recall),
        "fact_coverage": mean(coverage),
        "answered_rate": mean(answered),
        "refusal_accuracy": mean(refused),
        "citation_valid": mean(cited),
    }
    for kind, values in sorted(by_type.items()):
        out[f"{kind}"] = mean(values)
    return out


def run_eval(
    atlas: Atlas, qa_file: Path, out: Path, use_llm: bool | None = None, k: int | None = None
) -> dict[str, float | int | None]:
    """Answer every question (honouring `history`), write one answer per line, return the scores."""
    questions = [json.loads(line) for line in qa_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    answers: dict[str, dict] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for q in questions:
            qid = str(q.get("id", len(answers)))
            try:
                answer = atlas.ask(q["question"], history=q.get("history") or [], k=k, use_llm=use_llm)
                line = answer.public(id=qid)
                line["timings"] = answer.timings
            except QuestionError as exc:
                line = {"id": qid, "answer": str(exc), "answered": False, "citations": [], "contexts": []}
            answers[qid] = line
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return score(questions, answers, k=atlas.settings.top_k if k is None else k)
