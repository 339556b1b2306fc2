"""Fit the answerer's weights on training question sets and write rag/data/weights.json.

    python -m rag.fit [QA.jsonl ...]        # default: ../shared/eval/train.jsonl + tests/data/qa/train_*.jsonl

1. Retrieval: the fusion constants (RRF k, model bonus, other-language admission share) by grid
   search for the best evidence recall@5 (each setting with its grid neighbours); settings within one
   question of the best are told apart by the fact coverage of the answers, written with the sentence
   model of the weights file in place (so a refit can differ slightly from a fit from scratch).
   Then a passage reranker: a logistic regression over the fused ranking's first passages, telling
   those that hold an evidence string from the rest.
2. Sentences: a logistic regression telling sentences that hold an expected fact or evidence string
   from the rest, over the features of rag/weights.py.
3. Answerability: a logistic regression telling answerable from unanswerable questions, over the
   evidence features (questions naming a model the corpus never mentions are refused by rule and
   left out); its regularisation C is the one with the best 5-fold held-out answered + refused share.
4. The sentence floor, by grid search for the best fact coverage.

Never fit on the reporting sets (dev, tests/data/qa/unseen*.jsonl): the point is to measure on them.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from rag.qa_sets import load_qa, norm
from rag.schema import Turn
from rag.weights import (
    ANSWERABLE_FEATURES,
    PASSAGE_FEATURES,
    SENTENCE_FEATURES,
    WEIGHTS_FILE,
    Logistic,
    RetrievalWeights,
    Weights,
    load_weights,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS = [
    ROOT.parent / "shared" / "eval" / "train.jsonl",
    *sorted((ROOT / "tests" / "data" / "qa").glob("train_*.jsonl")),
]
REPORTING_ONLY = ("dev.jsonl", "unseen.jsonl", "unseen_crosslingual.jsonl")


# RRF k, model bonus, other-language admission share.
RETRIEVAL_GRID = ((5, 10, 20, 40), (0.0, 0.05, 0.1, 0.2), (0.4, 0.6, 0.8, 1.01))


def retrieval_weights(at: tuple[int, ...]) -> RetrievalWeights:
    rrf_k, bonus, admit = (axis[i] for axis, i in zip(RETRIEVAL_GRID, at))
    return RetrievalWeights(rrf_k=rrf_k, entity_bonus=bonus, admit_ratio=admit)


def smoothed_recall(recall_at: dict[tuple[int, ...], float], at: tuple[int, ...]) -> float:
    """The mean recall of a grid point and the points one step from it on any axes."""
    near = [r for other, r in recall_at.items() if all(abs(a - b) <= 1 for a, b in zip(other, at))]
    return sum(near) / len(near)


def history_of(row: dict[str, Any]) -> list[Turn]:
    return [Turn.model_validate(t) for t in row.get("history") or []]


def hit(strings: list[list[str]], text: str) -> float:
    found = norm(text)
    return sum(any(norm(a) in found for a in group) for group in strings) / len(strings) if strings else 1.0


def mean_coverage(pairs: list[tuple[dict[str, Any], Any]], floor: float) -> float:
    """The mean fact coverage of the extractive answers written from each (question, evidence)."""
    from rag.extractive import extractive_answer

    return sum(hit(row["facts"], extractive_answer(evidence, floor)[0]) for row, evidence in pairs) / len(pairs)


def fit_logistic(rows: list[dict[str, float]], labels: list[int], names: tuple[str, ...], c: float) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit([[r.get(n, 0.0) for n in names] for r in rows], labels)
    return Logistic(
        coefficients={n: round(float(w), 4) for n, w in zip(names, model.coef_[0])},
        intercept=round(float(model.intercept_[0]), 4),
    )


def held_out_answerability(
    rows: list[dict[str, float]], labels: list[int], names: tuple[str, ...], c: float
) -> tuple[float, float]:
    """Answered and refused shares of 5-fold cross-validated answerability (each question judged by a
    model fitted without it): what a new question can expect, unlike the accuracy on training."""
    from sklearn.model_selection import StratifiedKFold

    right = {0: 0, 1: 0}
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(rows, labels):
        model = fit_logistic([rows[i] for i in train], [labels[i] for i in train], names, c)
        for i in test:
            right[labels[i]] += (model.probability(rows[i]) >= 0.5) == bool(labels[i])
    return right[1] / labels.count(1), right[0] / labels.count(0)


FOLDS = 5
# Regularisation strengths tried for the passage reranker; the best held-out evidence recall wins.
RERANK_C = (0.01, 0.03, 0.1, 0.3, 1.0)
# Regularisation strengths tried for answerability; the one with the best held-out balanced accuracy wins.
ANSWERABLE_C = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def main(argv: list[str] | None = None) -> int:
    from rag.evidence import gather
    from rag.service import Atlas
    from rag.settings import RagSettings

    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])] or DEFAULT_SETS
    if any(p.name in REPORTING_ONLY for p in paths):
        raise SystemExit(f"{', '.join(REPORTING_ONLY)} are for reporting only; fit on training sets.")
    rows = [row for p in paths for row in load_qa(p)]
    settings = RagSettings(llm_base_url=None)
    atlas = Atlas.load(settings, build_if_missing=True)
    view = atlas.current()
    searcher, store = view.searcher, view.index.facts
    weights = Weights(fitted_on=[p.name for p in paths])
    k = settings.top_k
    queries = [(row, searcher.analyzer.analyse(row["question"], history_of(row))) for row in rows]
    answerable = [(row, q) for row, q in queries if row["type"] != "unanswerable"]

    # 1. retrieval constants. A difference of one question's evidence is noise at this size, so each
    # setting is judged by its mean recall with its grid neighbours: a broad optimum, not a lucky point.
    recall_at: dict[tuple[int, ...], float] = {}
    for at in itertools.product(*(range(len(axis)) for axis in RETRIEVAL_GRID)):
        searcher.weights = retrieval_weights(at)
        recall = 0.0
        for row, q in answerable:
            texts = [p.text for p in searcher.search(q, k).passages]
            recall += sum(any(norm(a) in norm(t) for t in texts for a in g) for g in row["evidence"]) / max(
                1, len(row["evidence"])
            )
        recall_at[at] = recall / len(answerable)
    smoothed = {at: smoothed_recall(recall_at, at) for at in recall_at}
    # Settings within one question's evidence of the best are told apart by what counts in the end:
    # the fact coverage of the answers (written with the sentence model fitted last time).
    top = max(smoothed.values())
    close = [at for at in recall_at if smoothed[at] >= top - 1 / len(answerable)]
    previous = load_weights() if WEIGHTS_FILE.exists() else weights  # a first fit starts from the defaults
    coverage_at = {}
    for at in close:
        searcher.weights = retrieval_weights(at)
        evidence = [(row, gather(q, searcher.search(q, k), searcher, store, previous)) for row, q in answerable]
        coverage_at[at] = mean_coverage(evidence, previous.sentence_floor)
    chosen = max(close, key=lambda at: (round(coverage_at[at], 9), smoothed[at]))
    weights.retrieval = searcher.weights = retrieval_weights(chosen)
    print(
        f"retrieval: {weights.retrieval.model_dump()} recall@{k}={recall_at[chosen]:.3f}"
        f" (with neighbours {smoothed[chosen]:.3f}, best {top:.3f}; fact coverage {coverage_at[chosen]:.3f}"
        f" of {len(close)} settings within one question of the best)"
    )

    # 1b. the passage reranker: a logistic regression telling the fused candidates that hold an
    # evidence string from the rest, over rag.weights.PASSAGE_FEATURES.
    p_rows: list[dict[str, float]] = []
    p_labels: list[int] = []
    p_question: list[int] = []  # which question a candidate came from: folds hold whole questions out
    for i, (row, q) in enumerate(answerable):
        pools: list[list[tuple[dict[str, float], str]]] = []
        searcher.search(q, k, record=pools)
        wanted = [norm(a) for g in row["evidence"] for a in g if norm(a)]
        for features, text in (item for pool in pools for item in pool):
            p_rows.append(features)
            p_labels.append(int(any(w in norm(text) for w in wanted)))
            p_question.append(i)
    # A question asked in two sets (or twice in one) falls in one fold: held out is held out.
    groups: dict[str, int] = {}
    fold_of = [groups.setdefault(norm(row["question"]), len(groups)) % FOLDS for row, _ in answerable]
    unranked = weights.retrieval
    held_out_recall = {}
    for c in RERANK_C:
        recall = 0.0
        for fold in range(FOLDS):
            fitted_on = [j for j, i in enumerate(p_question) if fold_of[i] != fold]
            model = fit_logistic([p_rows[j] for j in fitted_on], [p_labels[j] for j in fitted_on], PASSAGE_FEATURES, c)
            searcher.weights = unranked.model_copy(update={"rerank": model})
            recall += sum(
                hit(row["evidence"], " ".join(p.text for p in searcher.search(q, k).passages))
                for i, (row, q) in enumerate(answerable)
                if fold_of[i] == fold
            )
        held_out_recall[c] = recall / len(answerable)
        print(f"reranker C={c}: held out recall@{k} {held_out_recall[c]:.3f}")
    c_rerank = max(RERANK_C, key=lambda c: (round(held_out_recall[c], 9), -c))  # ties: the simpler model
    weights.retrieval = unranked.model_copy(
        update={"rerank": fit_logistic(p_rows, p_labels, PASSAGE_FEATURES, c=c_rerank)}
    )
    searcher.weights = weights.retrieval
    reranked = sum(
        hit(row["evidence"], " ".join(p.text for p in searcher.search(q, k).passages)) for row, q in answerable
    ) / len(answerable)
    print(
        f"reranker: {sum(p_labels)} of {len(p_labels)} candidates positive; recall@{k} {recall_at[chosen]:.3f}"
        f" -> {reranked:.3f}; {weights.retrieval.rerank.model_dump()}"
    )

    # 2. sentences
    features, labels = [], []
    gathered = []
    for row, q in queries:
        retrieval = searcher.search(q, k)
        evidence = gather(q, retrieval, searcher, store, weights, keep_features=True)
        gathered.append((row, q, retrieval, evidence))
        if row["type"] == "unanswerable":
            continue
        wanted = [norm(a) for g in row["facts"] + row["evidence"] for a in g if norm(a)]
        for s in evidence.sentences:
            text = norm(s.sentence.text)
            features.append(s.features)  # type: ignore[attr-defined]
            labels.append(int(any(w in text for w in wanted)))
    weights.sentence = fit_logistic(features, labels, SENTENCE_FEATURES, c=1.0)
    print(f"sentences: {sum(labels)} of {len(labels)} positive; {weights.sentence.model_dump()}")

    # 3. answerability, on evidence rescored with the fitted sentence model
    a_rows, a_labels = [], []
    for i, (row, q, retrieval, _) in enumerate(gathered):
        evidence = gather(q, retrieval, searcher, store, weights)
        gathered[i] = (row, q, retrieval, evidence)
        if q.unknown:
            continue
        a_rows.append(evidence.features)
        a_labels.append(int(row["type"] != "unanswerable"))
    held_out = {c: held_out_answerability(a_rows, a_labels, ANSWERABLE_FEATURES, c) for c in ANSWERABLE_C}
    c_best = max(ANSWERABLE_C, key=lambda c: (sum(held_out[c]), c))
    weights.answerable = fit_logistic(a_rows, a_labels, ANSWERABLE_FEATURES, c=c_best)
    correct = sum((weights.answerable.probability(f) >= 0.5) == bool(y) for f, y in zip(a_rows, a_labels))
    print(f"answerable: {correct}/{len(a_labels)} right on training; {weights.answerable.model_dump()}")
    for c, (answered, refused) in held_out.items():
        chosen = " <-" if c == c_best else ""
        print(f"answerable C={c}: held out answered {answered:.3f}, refused {refused:.3f}{chosen}")

    # 4. the sentence floor
    best_floor = (-1.0, weights.sentence_floor)
    answerable_evidence = [(row, evidence) for row, _, _, evidence in gathered if row["type"] != "unanswerable"]
    for floor in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        mean = mean_coverage(answerable_evidence, floor)
        if mean > best_floor[0] + 1e-9:
            best_floor = (mean, floor)
    weights.sentence_floor = best_floor[1]
    print(f"sentence floor: {best_floor[1]} fact coverage={best_floor[0]:.3f}")

    WEIGHTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    WEIGHTS_FILE.write_text(json.dumps(weights.model_dump(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
