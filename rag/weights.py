"""The answerer's fitted weights, in one place: `rag/data/weights.json`, written by `python -m rag.fit`.

Nothing here is set by hand to make a question pass: retrieval's fusion constants are chosen by
grid search and the sentence and answerability models are logistic regressions, all fitted on the
training question sets (`../shared/eval/train.jsonl` and `tests/data/qa/train_*.jsonl`); dev and
`tests/data/qa/unseen*.jsonl` are only reported on.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field

WEIGHTS_FILE = Path(__file__).parent / "data" / "weights.json"

SENTENCE_FEATURES = (
    "dense",  # cosine similarity of sentence and question
    "lexical",  # IDF-weighted share of the question's concepts the sentence holds
    "rarest",  # holds the question's rarest concept
    "rare_three",  # share of the question's three rarest concepts it holds
    "all_parts",  # the least it covers of any sub-question
    "entity",  # share of the named models the sentence names
    "in_scope",  # its passage is about a named model
    "other_model",  # names only models the question does not
    "names_others",  # names models, none of them asked, in whatever passage
    "number",  # carries a number, for a question asking a quantity
    "question",  # ends with a question mark
    "junk",  # code, markup, link lists
    "short",  # under 15 characters
    "rank",  # passage rank (0 = first)
    "same_language",  # written in the question's language
    "table_row",
    "fact",  # holds a fact-store value for an asked attribute of a named model
    "words",  # how much it says: words besides names (a Chinese character counts a half), up to 12
    "defines",  # "X is a ..." / "X是一个...", for a question that asks only what a model is
)
ANSWERABLE_FEATURES = (
    "best_sentence_dense",  # similarity of the best sentence about the named model
    "unknown_words",  # share of the question's concept weight in words the corpus never uses
    "unknown_characters",  # the same, in lone Chinese characters (吃, 花)
    "coverage",  # share of the question's concepts found in the passages
    "scoped_coverage",  # the same, in the passages about the named model
    "scoped_top",  # the question's two rarest concepts, in the passages about the named model
    "best_sentence_coverage",  # the most any one sentence about the named model covers
    "best_dense",  # similarity of the best passage
    "best_sentence",  # the best sentence's fitted score
    "named_model",  # the question names a model the corpus knows
    "attribute_found",  # share of (model, attribute) pairs the fact store answers
    "attribute_missing",  # share of (model, attribute) pairs the fact store has nothing for
    "attribute_spoken",  # share of asked attributes some sentence about the model names
    "numeric_supported",  # a quantity asked: a sentence about the model has a figure and most concepts
    "count_stated",  # "how many X": share of the counted concepts some sentence gives a figure beside
    "table_cells",  # table rows the question names, with a column it asks for (two or more: 1)
)


PASSAGE_FEATURES = (
    "fused",  # fused score as a share of the best one's
    "position",  # 1 / log2(2 + rank) in the fused ranking
    "dense",  # the same, in the dense list
    "lexical",  # the same, in the lexical list
    "coverage",  # IDF-weighted share of the question's concepts the passage holds
    "heading_coverage",  # the same, in its title and section path
    "rarest",  # holds the question's rarest concept
    "rare_three",  # share of the question's three rarest concepts it holds
    "entity",  # share of the named models (with families) it names
    "subject",  # its title or section names a named model
    "other_subject",  # its title or section names models, none of them asked
    "same_language",  # written in the question's language
    "numbers",  # figures in it (up to 20, scaled to 1), for a question asking a quantity
    "table",  # share of its lines that are table rows
)


class Logistic(BaseModel):
    coefficients: dict[str, float]
    intercept: float = 0.0

    def logit(self, features: dict[str, float]) -> float:
        return self.intercept + sum(w * features.get(name, 0.0) for name, w in self.coefficients.items())

    def probability(self, features: dict[str, float]) -> float:
        z = max(-30.0, min(30.0, self.logit(features)))
        return 1.0 / (1.0 + math.exp(-z))


class RetrievalWeights(BaseModel):
    rrf_k: float = Field(default=10.0, description="Reciprocal-rank-fusion constant.")
    entity_bonus: float = Field(default=0.1, description="Fused-score bonus per named model a passage is about.")
    admit_ratio: float = Field(
        default=0.6,
        description="A language missing from the top k enters when its best passage scores this share of the k-th.",
    )
    rerank: Logistic | None = Field(
        default=None, description="Orders the fused ranking's first `rerank_pool` passages; None keeps fused order."
    )
    rerank_pool: int = Field(default=20, description="How many fused passages the reranker orders.")


class Weights(BaseModel):
    retrieval: RetrievalWeights = Field(default_factory=RetrievalWeights)
    sentence: Logistic = Field(
        default_factory=lambda: Logistic(
            coefficients={
                "dense": 3.5,
                "lexical": 4.5,
                "entity": 1.5,
                "in_scope": 0.5,
                "other_model": -2.0,
                "number": 0.8,
                "question": -1.5,
                "junk": -1.5,
                "short": -1.0,
                "rank": -0.1,
                "same_language": 0.3,
                "fact": 1.0,
            },
            intercept=-4.0,
        )
    )
    sentence_floor: float = Field(default=0.7, description="Sentences kept: score at least this share of the best.")
    answerable: Logistic = Field(
        default_factory=lambda: Logistic(coefficients={"coverage": 4.0, "best_dense": 4.0}, intercept=-2.0)
    )
    answerable_threshold: float = 0.5
    fitted_on: list[str] = Field(default_factory=list, description="The question sets the weights were fitted on.")


class WeightsMissing(RuntimeError):
    """The fitted weights file is not where the package expects it (a broken install)."""


@lru_cache(maxsize=1)
def load_weights(path: Path = WEIGHTS_FILE) -> Weights:
    """The fitted weights. A missing file is an error, not a silent fall back to the untrained
    defaults, which answer far worse (and refuse far less)."""
    if not path.exists():
        raise WeightsMissing(
            f"The answerer's fitted weights are missing ({path}): reinstall llm-atlas, "
            "or fit them with `python -m rag.fit` from a source checkout."
        )
    return Weights.model_validate_json(path.read_text(encoding="utf-8"))
