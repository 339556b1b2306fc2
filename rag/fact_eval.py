"""Score a fact store against gold facts read off the corpus by hand (tests/data/facts_gold.jsonl).

A gold line is `{"model", "attribute", "value"}` (optionally `"alternatives"`: other values a careful
reader would also accept, such as the card's "custom commercial license" next to the Llama 2
Community License), or `{"model", "attribute", "absent": true}` for a pair the corpus is silent
about. The store is asked the way an outside user would ask it: `store.get(model, attribute)`, by
name or alias, family lookups included.

  recall     gold values found: a number within 2%; a list of sizes when every gold number is among
             the returned numbers; a date at the precision either side gives; a string by
             case- and punctuation-insensitive containment either way
  precision  returned facts (for gold pairs with a value) that match one of the pair's gold values
  absent     share of absent pairs for which the store returns nothing
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ingest.fact_store import Fact, FactStore
from ingest.names import model_key

TOLERANCE = 0.02


def load_gold(path: str | Path) -> list[dict[str, Any]]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _numbers(value: Any) -> list[float] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return [float(v) for v in value]
    return None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(abs(a), abs(b), 1e-9)


def _strings(fact: Fact) -> list[str]:
    """The forms of a returned value a string can match: as written and as normalised."""
    forms = [fact.value]
    if isinstance(fact.normalized, str):
        forms.append(fact.normalized)
    elif isinstance(fact.normalized, tuple):
        forms.extend(str(v) for v in fact.normalized)
    return [f for f in forms if f]


def _string_match(gold: str, candidates: Iterable[str]) -> bool:
    g = model_key(gold)
    if not g:
        return False
    return any((k := model_key(c)) and (g in k or k in g) for c in candidates)


def _date_match(gold: str, fact: Fact) -> bool:
    value = fact.normalized if isinstance(fact.normalized, str) else ""
    return bool(value) and (value.startswith(gold) or gold.startswith(value))


def fact_matches(gold_value: Any, attribute: str, fact: Fact) -> bool:
    """Whether one returned fact agrees with one gold value (precision's test)."""
    numbers = _numbers(gold_value)
    if numbers is not None:
        returned = _numbers(fact.normalized)
        if returned is None:
            return False
        # every number the fact gives is one of the gold numbers (a range's ends, a subset of sizes)
        return all(any(_close(r, g) for g in numbers) for r in returned)
    if isinstance(gold_value, list):  # languages
        returned = fact.normalized if isinstance(fact.normalized, tuple) else ()
        return bool(returned) and all(code in gold_value for code in returned)
    if attribute == "release_date":
        return _date_match(str(gold_value), fact)
    return _string_match(str(gold_value), _strings(fact))


def found(gold_value: Any, attribute: str, facts: Sequence[Fact]) -> bool:
    """Whether the returned facts together give the gold value (recall's test)."""
    numbers = _numbers(gold_value)
    if numbers is not None:
        returned = [n for f in facts for n in (_numbers(f.normalized) or [])]
        return bool(returned) and all(any(_close(r, g) for r in returned) for g in numbers)
    if isinstance(gold_value, list):
        returned = {code for f in facts if isinstance(f.normalized, tuple) for code in f.normalized}
        return all(code in returned for code in gold_value)
    return any(fact_matches(gold_value, attribute, f) for f in facts)


def _ratio(hit: int, total: int) -> float:
    return round(hit / total, 4) if total else 1.0


def score_facts(store: FactStore, gold_lines: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall per attribute and overall, absent-pair accuracy, and the misses."""
    gold_lines = list(gold_lines)
    pairs: dict[tuple[str, str], list[Any]] = defaultdict(list)  # (model, attribute) -> accepted values
    for line in gold_lines:
        if not line.get("absent"):
            pairs[(line["model"], line["attribute"])] += [line["value"], *line.get("alternatives", [])]
    recall_hit: dict[str, int] = defaultdict(int)
    recall_total: dict[str, int] = defaultdict(int)
    missed: list[dict[str, Any]] = []
    for line in gold_lines:
        if line.get("absent"):
            continue
        attribute = line["attribute"]
        facts = store.get(line["model"], attribute)
        recall_total[attribute] += 1
        accepted = [line["value"], *line.get("alternatives", [])]
        if any(found(value, attribute, facts) for value in accepted):
            recall_hit[attribute] += 1
        else:
            missed.append({"model": line["model"], "attribute": attribute, "value": line["value"]})
    precision_hit: dict[str, int] = defaultdict(int)
    precision_total: dict[str, int] = defaultdict(int)
    wrong: list[dict[str, Any]] = []
    for (model, attribute), accepted in pairs.items():
        for fact in store.get(model, attribute):
            precision_total[attribute] += 1
            if any(fact_matches(value, attribute, fact) for value in accepted):
                precision_hit[attribute] += 1
            else:
                wrong.append({"model": model, "attribute": attribute, "value": fact.value, "doc_id": fact.doc_id})
    absent = [line for line in gold_lines if line.get("absent")]
    absent_ok = [line for line in absent if not store.get(line["model"], line["attribute"])]
    attributes = sorted(set(recall_total) | set(precision_total))
    return {
        "precision": _ratio(sum(precision_hit.values()), sum(precision_total.values())),
        "recall": _ratio(sum(recall_hit.values()), sum(recall_total.values())),
        "absent_accuracy": _ratio(len(absent_ok), len(absent)),
        "per_attribute": {
            a: {
                "precision": _ratio(precision_hit[a], precision_total[a]),
                "recall": _ratio(recall_hit[a], recall_total[a]),
                "returned": precision_total[a],
                "gold": recall_total[a],
            }
            for a in attributes
        },
        "counts": {
            "gold_values": sum(recall_total.values()),
            "returned": sum(precision_total.values()),
            "absent_pairs": len(absent),
        },
        "missed": missed,
        "wrong": wrong,
        "absent_returned": [
            {"model": line["model"], "attribute": line["attribute"]} for line in absent if line not in absent_ok
        ],
    }
