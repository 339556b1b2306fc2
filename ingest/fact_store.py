"""The fact store: every document's facts (`Fact`, cited to an exact span), looked up by model name
or alias. Reading it needs none of the extractor (`ingest.facts`), so answering a question loads this
module only.

`FactStore` resolves names case- and punctuation-insensitively and across scripts (百川 -> Baichuan),
marks conflicting values and answers lookups with dict reads. Conflicts: where sources give different
values for one model and attribute (dates compared at the precision written, numbers within 2%, names
by family), every fact of the pair is kept and marked `conflict=True`; attributes that hold several
values at once (languages, data, hardware, memory per setting) never conflict, nor do sizes that
overlap (a family's 7B/13B and its 13B). A family name also reaches its variants: `Vicuna` lists
Vicuna-13B and Vicuna v1.5 as variants and, for an attribute the family itself lacks, answers with
theirs; a variant without a value of its own inherits the family's developer, licence, architecture,
languages, base model, data and date (never a size-dependent value such as parameters or cost).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest.names import alias_table, ancestors, model_key, variant_root

ATTRIBUTES = (
    "developer",
    "release_date",
    "parameters",
    "base_model",
    "architecture",
    "training_data",
    "training_tokens",
    "context_length",
    "licence",
    "languages",
    "training_cost",
    "training_hardware",
    "memory_requirement",
)
# Attributes that legitimately hold several values at once (a family's sizes, several datasets):
# different values there are not a conflict.
MULTI_VALUED = frozenset({"languages", "training_data", "training_hardware", "memory_requirement"})
# What a variant may inherit from its family when it has no value of its own.
INHERITED = frozenset(
    {"developer", "licence", "architecture", "languages", "base_model", "training_data", "release_date"}
)

Normalized = float | int | str | tuple[float, ...] | tuple[str, ...] | None


@dataclass(frozen=True)
class Fact:
    """One attribute of one model, as one document states it."""

    model: str  # the model as the corpus writes it (despun: LLama两 -> LLama2)
    attribute: str
    value: str  # exactly doc.text[value_start:value_end]
    normalized: Normalized
    doc_id: str
    section: str
    quote: str  # exactly doc.text[start:end]; contains the value
    start: int
    end: int
    value_start: int
    value_end: int
    qualifier: str = ""  # the condition the value holds under: "INT4", "7B", "Inference BF16/FP16"
    shape: str = ""  # table, flat_table, front_matter, list, key_value or prose
    conflict: bool = False

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if isinstance(self.normalized, tuple):
            data["normalized"] = list(self.normalized)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fact:
        data = dict(data)
        if isinstance(data.get("normalized"), list):
            data["normalized"] = tuple(data["normalized"])
        return cls(**data)


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelSheet:
    """Everything known about one model: its facts by attribute, and its variants' facts."""

    model: str
    aliases: list[str]
    facts: list[Fact]
    variants: dict[str, list[Fact]] = field(default_factory=dict)


def _compatible(attribute: str, a: Normalized, b: Normalized, va: str, vb: str) -> bool:
    if a is None or b is None:
        ka, kb = model_key(va), model_key(vb)
        return bool(ka and kb and (ka in kb or kb in ka))
    if attribute == "release_date" and isinstance(a, str) and isinstance(b, str):
        return a.startswith(b) or b.startswith(a)
    if isinstance(a, tuple) and isinstance(b, tuple) and attribute == "parameters":
        # sizes of one family overlap, or one lies within the other's span ("7B to 65B" and "13B")
        if any(_close(x, y) for x in a for y in b):
            return True
        return all(min(b) <= x <= max(b) for x in a) or all(min(a) <= y <= max(a) for y in b)
    if isinstance(a, float) and isinstance(b, float):
        return _close(a, b)
    if isinstance(a, str) and isinstance(b, str):
        if attribute == "base_model":
            # LLaMA, LLaMA1 and LLaMA-7B name one family: compare without sizes, one a prefix of the other
            ka, kb = model_key(variant_root(a)), model_key(variant_root(b))
            return ka.startswith(kb) or kb.startswith(ka)
        ka, kb = model_key(a), model_key(b)
        return ka in kb or kb in ka
    return a == b


def _close(x: Any, y: Any, tolerance: float = 0.02) -> bool:
    try:
        return abs(float(x) - float(y)) <= tolerance * max(abs(float(x)), abs(float(y)), 1e-9)
    except (TypeError, ValueError):
        return False


class FactStore:
    """All documents' facts, looked up by model name or alias in constant time."""

    def __init__(self, facts: Iterable[Fact], aliases: Iterable[tuple[str, str]] = ()):
        facts = list(facts)
        self.alias_pairs: list[tuple[str, str]] = list(dict.fromkeys([*alias_table(), *aliases]))
        counts = Counter(model_key(f.model) for f in facts)
        # alias groups: union-find over keys; the group speaks for the key with most facts
        parent: dict[str, str] = {}

        def find(k: str) -> str:
            while parent.get(k, k) != k:
                k = parent[k]
            return k

        for a, b in self.alias_pairs:
            ka, kb = find(model_key(a)), find(model_key(b))
            if ka and kb and ka != kb:
                parent[ka] = kb
        groups: dict[str, set[str]] = defaultdict(set)
        for key in set(counts) | {model_key(n) for pair in self.alias_pairs for n in pair}:
            groups[find(key)].add(key)
        self._resolve: dict[str, str] = {}
        for members in groups.values():
            rep = max(members, key=lambda k: (counts.get(k, 0), bool(re.match(r"[a-z0-9]", k)), k))
            for key in members:
                self._resolve[key] = rep
        self._aliases: dict[str, list[str]] = defaultdict(list)
        for a, b in self.alias_pairs:
            for name in (a, b):
                rep = self._resolve.get(model_key(name), model_key(name))
                if name not in self._aliases[rep]:
                    self._aliases[rep].append(name)
        by_key: dict[str, list[Fact]] = defaultdict(list)
        for fact in facts:
            by_key[self.key(fact.model)].append(fact)
        self._facts = {key: _mark_conflicts(fs) for key, fs in by_key.items()}
        self._index: dict[tuple[str, str], list[Fact]] = defaultdict(list)
        for key, fs in self._facts.items():
            for fact in fs:
                self._index[(key, fact.attribute)].append(fact)
        names: dict[str, Counter] = defaultdict(Counter)
        for key, fs in self._facts.items():
            for fact in fs:
                names[key][fact.model] += 1
        self._names = {key: c.most_common(1)[0][0] for key, c in names.items()}
        self._children: dict[str, set[str]] = defaultdict(set)
        self._parents: dict[str, list[str]] = {}
        for key, fs in self._facts.items():
            chain: list[str] = []
            for written in {f.model for f in fs}:
                chain += [a for a in ancestors(written) if a not in chain]
            chain = [self._resolve.get(a, a) for a in chain if self._resolve.get(a, a) != key]
            self._parents[key] = chain
            for a in chain:
                self._children[a].add(key)

    @property
    def facts(self) -> list[Fact]:
        return [f for fs in self._facts.values() for f in fs]

    def models(self) -> list[str]:
        return sorted(self._names.values(), key=str.lower)

    def key(self, name: str) -> str:
        key = model_key(name)
        return self._resolve.get(key, key)

    def name(self, key: str) -> str:
        return self._names.get(key) or next(iter(self._aliases.get(key, [])), key)

    def knows(self, name: str) -> bool:
        """Whether `sheet(name)` has a sheet, without building it."""
        key = self.key(name)
        return key in self._facts or bool(self._children.get(key))

    def sheet(self, name: str) -> ModelSheet | None:
        key = self.key(name)
        children = sorted(self._children.get(key, ()))
        if key not in self._facts and not children:
            return None
        return ModelSheet(
            model=self.name(key),
            aliases=[a for a in self._aliases.get(key, []) if model_key(a) != key],
            facts=list(self._facts.get(key, [])),
            variants={self.name(c): list(self._facts[c]) for c in children if c in self._facts},
        )

    def get(self, name: str, attribute: str) -> list[Fact]:
        """The model's facts for one attribute; else its family's (inheritable ones) or its variants'."""
        key = self.key(name)
        found = self._index.get((key, attribute))
        if found:
            return list(found)
        if attribute in INHERITED:
            parents = self._parents.get(key) or [self._resolve.get(a, a) for a in ancestors(name)]
            for parent in parents:
                found = self._index.get((parent, attribute))
                if found:
                    return list(found)
        return [f for child in sorted(self._children.get(key, ())) for f in self._index.get((child, attribute), [])]

    def closest(self, name: str, n: int = 5) -> list[str]:
        """Known model names nearest to an unknown one, for 'did you mean'."""
        key = model_key(name)
        candidates = {k: self.name(k) for k in self._facts}
        for alias_key, rep in self._resolve.items():
            if rep in self._facts:
                candidates.setdefault(alias_key, self.name(rep))
        matches = difflib.get_close_matches(key, list(candidates), n=n * 3, cutoff=0.5)
        prefixed = [k for k in candidates if key and (k.startswith(key) or key.startswith(k)) and len(k) > 1]
        result: list[str] = []
        for k in [*matches, *sorted(prefixed, key=lambda k: abs(len(k) - len(key)))]:
            if candidates[k] not in result:
                result.append(candidates[k])
        return result[:n]

    def compare(
        self, names: Sequence[str], attributes: Sequence[str] | None = None
    ) -> dict[str, dict[str, list[Fact]]]:
        """attribute -> model -> facts (empty where the corpus is silent), for a side-by-side table."""
        attributes = list(attributes or ATTRIBUTES)
        labels = [(self.name(self.key(n)) if self.sheet(n) else n) for n in names]
        return {a: {label: self.get(n, a) for label, n in zip(labels, names)} for a in attributes}

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "facts": [f.to_json() for f in self.facts],
            "aliases": [list(p) for p in self.alias_pairs if p not in alias_table()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FactStore:
        return cls([Fact.from_json(f) for f in data["facts"]], [tuple(p) for p in data.get("aliases", [])])


def _mark_conflicts(facts: list[Fact]) -> list[Fact]:
    by_attribute: dict[str, list[int]] = defaultdict(list)
    for i, fact in enumerate(facts):
        by_attribute[fact.attribute].append(i)
    marked = list(facts)
    for attribute, indices in by_attribute.items():
        if attribute in MULTI_VALUED or len(indices) < 2:
            continue
        values = [(facts[i].normalized, facts[i].value) for i in indices]
        agree = all(
            _compatible(attribute, a[0], b[0], a[1], b[1]) for x, a in enumerate(values) for b in values[x + 1 :]
        )
        for i in indices:
            if marked[i].conflict != (not agree):
                marked[i] = dataclasses.replace(marked[i], conflict=not agree)
    return marked
