"""Fact sheets and comparisons as terminal tables (rich): values with [n] markers, and under the
table the numbered sources with their exact quotes. Conflicting values are flagged with ⚠."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.facts import SourceNumbers

CONFLICT = "⚠"


class SourceList(SourceNumbers):
    """The cited passages, numbered by first use, printed under the table."""

    def render(self, console: Console) -> None:
        for n, c in enumerate(self.citations, 1):
            where = f" › {c['section']}" if c["section"] else ""
            quote = " ".join(c["quote"].split())
            console.print(f"[bold cyan][{n}][/] {escape(c['title'])}{escape(where)}  [dim]{escape(c['url'])}[/]")
            console.print(f"    “{escape(quote[:300])}{'…' if len(quote) > 300 else ''}”")


def cell_text(facts: list[dict[str, Any]], sources: SourceList) -> str:
    """One cell: each distinct value once, with the markers of every passage that states it."""
    values: dict[str, list[int]] = {}
    flagged: set[str] = set()
    for fact in facts:
        label = fact["value"] + (f" ({fact['qualifier']})" if fact.get("qualifier") else "")
        if fact.get("stated_for"):
            label += f" [{fact['stated_for']}]"
        values.setdefault(label, []).append(sources.number(fact["citation"]))
        if fact["conflict"]:
            flagged.add(label)
    return "\n".join(
        f"{CONFLICT + ' ' if label in flagged else ''}{escape(label)} "
        + "".join(f"[{n}]" for n in sorted(set(markers)))
        for label, markers in values.items()
    )


def render_sheet(console: Console, sheet: dict[str, Any]) -> None:
    if "error" in sheet:
        console.print(f"[bold red]{escape(sheet['error'])}[/]")
        return
    sources = SourceList()
    aliases = f" (also: {', '.join(sheet['aliases'])})" if sheet["aliases"] else ""
    table = Table(title=f"{escape(sheet['model'])}{escape(aliases)}", show_lines=True)
    table.add_column("attribute", style="bold")
    table.add_column("value")
    by_attribute: dict[str, list[dict[str, Any]]] = {}
    for fact in sheet["facts"]:
        by_attribute.setdefault(fact["attribute"], []).append(fact)
    for attribute, facts in by_attribute.items():
        table.add_row(attribute.replace("_", " "), cell_text(facts, sources))
    if not by_attribute:
        console.print(f"The corpus states no facts about {escape(sheet['model'])}.")
        return
    console.print(table)
    sources.render(console)


def render_comparison(console: Console, comparison: dict[str, Any]) -> None:
    for unknown in comparison["unknown"]:
        console.print(f"[bold red]{escape(unknown['error'])}[/]")
    if not comparison["models"]:
        return
    sources = SourceList()
    table = Table(show_lines=True)
    table.add_column("attribute", style="bold")
    for model in comparison["models"]:
        table.add_column(escape(model))
    for row in comparison["rows"]:
        cells = [cell_text(row["cells"][m], sources) or "[dim]not stated[/]" for m in comparison["models"]]
        if any(row["cells"][m] for m in comparison["models"]):
            table.add_row(row["attribute"].replace("_", " "), *cells)
    console.print(table)
    sources.render(console)
