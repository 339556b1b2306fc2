"""Model fact sheets and comparisons as the interfaces show them: one JSON shape for the CLI, the
HTTP API and the Python API, every value with its citation (an exact span of its document)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.fact_store import Fact, FactStore, ModelSheet
    from ingest.index import Index


class UnknownModel(LookupError):
    """A model name the fact store does not know; the message names the closest known ones."""

    def __init__(self, name: str, closest: list[str]):
        self.name, self.closest = name, closest
        hint = f" Closest known: {', '.join(closest)}." if closest else ""
        super().__init__(f"No model named '{name}' in the corpus.{hint}")


class SourceNumbers:
    """Numbers the passages that facts cite 1..n in order of first use; the same passage keeps its
    number. What every interface showing a sheet or comparison lists under it."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, int, int], int] = {}
        self.citations: list[dict[str, Any]] = []

    def number(self, citation: dict[str, Any]) -> int:
        key = (citation["doc_id"], citation["start"], citation["end"])
        if key not in self.numbers:
            self.numbers[key] = len(self.numbers) + 1
            self.citations.append(citation)
        return self.numbers[key]


def attributes_of(requested: Sequence[str] | None) -> list[str]:
    from ingest.fact_store import ATTRIBUTES

    if not requested:
        return list(ATTRIBUTES)
    wanted = [a.strip().lower().replace("-", "_").replace("license", "licence") for a in requested]
    unknown = [a for a in wanted if a not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"Unknown attribute(s): {', '.join(unknown)}. Known: {', '.join(ATTRIBUTES)}.")
    return wanted


class FactView:
    """Fact sheets over one index version (documents' titles and URLs come from it)."""

    def __init__(self, index: Index):
        self.store: FactStore = index.facts
        self._documents = {d["doc_id"]: d for d in index.documents()}

    def fact_json(self, fact: Fact, model: str) -> dict[str, Any]:
        doc = self._documents.get(fact.doc_id, {})
        normalized = list(fact.normalized) if isinstance(fact.normalized, tuple) else fact.normalized
        out: dict[str, Any] = {
            "attribute": fact.attribute,
            "value": fact.value,
            "normalized": normalized,
            "conflict": fact.conflict,
        }
        if fact.qualifier:
            out["qualifier"] = fact.qualifier
        if fact.model != model:  # a variant's or the family's value, e.g. Vicuna-13B's for Vicuna
            out["stated_for"] = fact.model
        out["citation"] = {
            "doc_id": fact.doc_id,
            "title": doc.get("title", ""),
            "url": doc.get("url", ""),
            "section": fact.section,
            "quote": fact.quote,
            "start": fact.start,
            "end": fact.end,
        }
        return out

    def resolve(self, name: str) -> ModelSheet:
        """The model's sheet (its canonical name is `.model`), or UnknownModel naming the closest known ones."""
        name = name.strip()
        sheet = self.store.sheet(name) if name else None
        if sheet is None:
            raise UnknownModel(name, self.store.closest(name) if name else [])
        return sheet

    def sheet(self, name: str, attributes: Sequence[str] | None = None) -> dict[str, Any]:
        """`{"query", "model", "aliases", "facts"}`, or `{"query", "error", "closest"}` for an unknown name."""
        try:
            sheet = self.resolve(name)
        except UnknownModel as exc:
            return {"query": name, "error": str(exc), "closest": exc.closest}
        model = sheet.model
        facts = [self.fact_json(f, model) for a in attributes_of(attributes) for f in self.store.get(name, a)]
        return {"query": name, "model": model, "aliases": sheet.aliases, "facts": facts}

    def compare(self, names: Sequence[str], attributes: Sequence[str] | None = None) -> dict[str, Any]:
        """Side by side: one row per attribute, one cell per model (its cited values, or empty where the
        corpus is silent). Unknown names are listed with their closest known ones, not dropped."""
        wanted = attributes_of(attributes)
        known, unknown = [], []
        for name in names:
            try:
                known.append((name, self.resolve(name).model))
            except UnknownModel as exc:
                unknown.append({"query": name, "error": str(exc), "closest": exc.closest})
        rows = []
        for attribute in wanted:
            cells = {model: [self.fact_json(f, model) for f in self.store.get(q, attribute)] for q, model in known}
            conflict = any(fact["conflict"] for facts in cells.values() for fact in facts)
            rows.append({"attribute": attribute, "cells": cells, "conflict": conflict})
        return {"models": [model for _, model in known], "attributes": wanted, "rows": rows, "unknown": unknown}
