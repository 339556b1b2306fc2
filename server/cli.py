"""Command line: `ask "question"` and `llm-atlas ingest|eval|serve|slack|bench`.

Each command reads its input, calls the core and prints; heavy imports happen inside
the commands so `ask` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from rag.schema import Answer

app = typer.Typer(
    help="llm-atlas: cited answers about large language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ask_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"llm-atlas {version('llm-atlas')}")
        except PackageNotFoundError:
            typer.echo("llm-atlas (not installed as a package)")
        raise typer.Exit()


VersionOpt = Annotated[
    bool,
    typer.Option("--version", callback=show_version, is_eager=True, help="Print the version and exit."),
]


@app.callback()
def main(version: VersionOpt = False) -> None:
    """llm-atlas: cited answers about large language models."""


IndexOpt = Annotated[
    Path | None,
    typer.Option("--index", help="Index folder (default: LLM_ATLAS_INDEX_DIR or ~/.cache/llm-atlas/index)."),
]


def fail(message: str, code: int = 2) -> None:
    from rich.console import Console

    # soft_wrap: a long path or command stays on one line, so it can be copied
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def progress_printer():
    """A rich progress bar for long work, as a (stage, done, total) callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=__import__("rich.console").console.Console(stderr=True),
    )
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return bar, update


@app.command()
def ingest(
    paths: Annotated[list[str] | None, typer.Argument(help="Files, folders or URLs (default: bundled corpus).")] = None,
    index: IndexOpt = None,
    add: Annotated[bool, typer.Option("--add", help="Keep documents already in the index.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Only verify the index (every file's checksum, the store); build nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    ray: Annotated[
        bool, typer.Option("--ray", help="Embed new chunks on Ray (a local Ray unless --ray-address); llm-atlas[ray].")
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Join this Ray cluster to embed: 'auto', ray://head:10001 (implies --ray)."),
    ] = None,
    ray_actors: Annotated[int | None, typer.Option("--ray-actors", min=1, help="Embedders in the actor pool.")] = None,
) -> None:
    """Build or update the index (incremental: unchanged documents are not embedded again).

    Exits 1 when a bundled document could not be indexed; files skipped from your own paths are
    listed with their reasons."""
    from ingest.errors import ClusterError, MissingDependency
    from ingest.settings import IngestSettings
    from ingest.store import StoreUnavailable

    settings = IngestSettings()
    if ray_address or (ray and not settings.ray_address):
        settings.ray_address = ray_address or "local"
    if ray_actors:
        settings.ray_actors = ray_actors
    index_dir = index or settings.index_dir
    if check:
        check_index(index_dir, settings.embedder, as_json)
        return
    from ingest.pipeline import run_ingest

    bar, update = progress_printer()
    try:
        report = run_ingest(paths or None, settings, index_dir, progress=update, add=add)
    except (ValueError, MissingDependency, StoreUnavailable, ClusterError) as exc:
        fail(str(exc))
    finally:
        if bar.live.is_started:
            bar.stop()
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    else:
        print_report(report)
    if report.skipped and not paths:
        fail(f"{len(report.skipped)} bundled document(s) could not be indexed (listed above).", code=1)


def store_line(store: dict) -> str:
    """The store and what this ingest wrote to it (Milvus: only new or changed chunks)."""
    if not store:
        return "-"
    line = f"{store.get('kind')}: {store.get('upserted', 0)} chunks written, {store.get('deleted', 0)} deleted"
    return line + (f" (rebuilt: {store['rebuilt']})" if store.get("rebuilt") and store["kind"] != "faiss" else "")


def ray_line(ray: dict | None) -> str:
    """Where the embedding ran: this process, or Ray's actors and how many texts each took."""
    if not ray:
        return "this process"
    shares = ", ".join(f"{n}" for n in ray["texts_per_process"].values())
    return f"Ray {ray['address']}: {ray['actors']} actors, texts per actor process {shares}"


def print_report(report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Index {report.index_dir}", show_header=False)
    state = (
        "up to date (nothing re-embedded)"
        if report.up_to_date
        else (f"{report.changed_documents} new/changed, {report.removed_documents} removed")
    )
    for key, value in [
        ("documents", report.documents),
        ("chunks", report.chunks),
        ("changes", state),
        ("embedded chunks", report.embedded_chunks),
        ("reused chunks", report.reused_chunks),
        ("embedding chunks/s", f"{report.chunks_per_second:.1f}"),
        ("skipped", len(report.skipped)),
        ("store", store_line(report.store)),
        ("embedded on", ray_line(report.ray)),
        ("version", report.version),
        ("seconds", f"{report.seconds:.2f}"),
    ]:
        table.add_row(key, str(value))
    console.print(table)
    if report.rebuilt_because:
        console.print(f"[yellow]rebuilt from scratch:[/] {report.rebuilt_because}")
    for skip in report.skipped:
        console.print(f"[yellow]skipped[/] {skip.source}: {skip.reason}")


def check_index(index_dir: Path, embedder: str, as_json: bool) -> None:
    """`ingest --check`: a full verification, exit 1 when the index is missing or damaged."""
    from ingest.index import Index, IndexProblem

    try:
        with Index(index_dir, embedder_name=embedder, verify=True) as index:
            result = {
                "ok": True,
                "version": index.version_name,
                "documents": index.manifest.get("documents"),
                "chunks": len(index),
            }
    except IndexProblem as exc:
        result = {"ok": False, "problem": str(exc)}
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    elif result["ok"]:
        typer.echo(
            f"Index {index_dir} is sound: version {result['version']}, {result['documents']} documents, "
            f"{result['chunks']} chunks."
        )
    if not result["ok"]:
        fail(result["problem"], code=1)


def print_answer(answer: Answer, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(answer.public(), ensure_ascii=False) + "\n")
        return
    from rich.console import Console
    from rich.markdown import Markdown

    console = Console()
    if answer.notice:
        console.print(f"[yellow]{answer.notice}[/]")
    console.print(Markdown(answer.answer))
    print_sources(console, answer)


def print_sources(console: Console, answer: Answer) -> None:
    if answer.citations:
        console.print("\n[bold]Sources[/]")
        for c in answer.citations:
            where = f" › {c.section}" if c.section else ""
            console.print(f"[bold cyan][{c.n}][/] {c.title}{where}\n    [dim]{c.url}[/]\n    “{c.quote[:200]}”")


def print_stream(pieces: Iterable[str | Answer], out: TextIO | None = None) -> Answer | None:
    """Write the answer text as it comes (plain: Markdown cannot be laid out before it is complete),
    then its notice and sources; returns the `Answer`."""
    from rich.console import Console

    from rag.schema import Answer

    out = out or sys.stdout
    answer = None
    for item in pieces:
        if isinstance(item, Answer):
            answer = item
            break
        out.write(item)
        out.flush()  # a piece is a checked sentence: show it now, not when a buffer fills
    out.write("\n")
    out.flush()
    console = Console(file=out)
    if answer is not None and answer.notice:
        console.print(f"[yellow]{answer.notice}[/]")
    if answer is not None:
        print_sources(console, answer)
    return answer


@ask_app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question, in English or Chinese.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    k: Annotated[int | None, typer.Option("--k", "-k", min=1, max=20, help="Passages to use.")] = None,
    llm: Annotated[
        bool | None, typer.Option("--llm/--no-llm", help="Use the configured LLM (default: if set).")
    ] = None,
    language: Annotated[
        str | None, typer.Option("--lang", help="Answer language: en or zh (default: the question's).")
    ] = None,
    index: IndexOpt = None,
    version: VersionOpt = False,
) -> None:
    """Answer a question from the corpus, with numbered sources.

    With the LLM and a terminal, the answer is printed as it is written, a checked sentence at a time."""
    from ingest.errors import MissingDependency
    from ingest.index import IndexProblem
    from rag.service import Atlas, QuestionError, check_text
    from rag.settings import RagSettings
    from rag.weights import WeightsMissing

    settings = RagSettings()
    # Only the LLM writes over time; otherwise the whole answer is there at once and is laid out as Markdown.
    streaming = not as_json and sys.stdout.isatty() and (settings.llm_enabled if llm is None else llm)
    try:
        check_text(question, "question")  # before any loading: invalid bytes need no index
        settings_index = index or settings.index_dir
        bar, update = progress_printer()
        try:
            atlas = Atlas.load(settings, settings_index, build_if_missing=True, progress=update)
        finally:
            if bar.live.is_started:
                bar.stop()
        if streaming:
            print_stream(atlas.ask_stream(question, k=k, use_llm=llm, language=language))
            return
        answer = atlas.ask(question, k=k, use_llm=llm, language=language)
    except (QuestionError, IndexProblem, MissingDependency, WeightsMissing) as exc:
        fail(str(exc))
    print_answer(answer, as_json)


def ask_main() -> None:
    ask_app()


@app.command("eval")
def evaluate(
    qa_file: Annotated[
        Path | None, typer.Argument(help="Question file (JSON lines: id, question, history?, ...).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the answers (JSON lines).")] = None,
    facts: Annotated[
        Path | None, typer.Option("--facts", help="Also score the fact store on a gold file (model, attribute, value).")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", help="Passages per question.")] = None,
    llm: Annotated[bool | None, typer.Option("--llm/--no-llm")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
    index: IndexOpt = None,
) -> None:
    """Answer every question of a QA file and print the scores; with --facts, score the fact sheets."""
    if qa_file is None and facts is None:
        fail("Give a question file (with --out), or --facts GOLD.jsonl, or both.")
    for path in (qa_file, facts):
        if path is not None and not path.is_file():
            fail(f"No such file: {path}")
    if qa_file is not None and out is None:
        fail("--out FILE is needed to write the answers.")
    atlas = load_atlas(index)
    results = {}
    if qa_file is not None:
        from rag.evaluate import run_eval

        results["answers"] = run_eval(atlas, qa_file, out, use_llm=llm, k=k)
        if not as_json:
            typer.echo("  ".join(f"{key}={value}" for key, value in results["answers"].items()))
    if facts is not None:
        from rag.fact_eval import load_gold, score_facts

        results["facts"] = score_facts(atlas.index.facts, load_gold(facts))
        if not as_json:
            print_fact_scores(results["facts"])
    if as_json:
        sys.stdout.write(json.dumps(results, ensure_ascii=False) + "\n")


def print_fact_scores(scores: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Fact store against the gold file")
    for column in ("attribute", "precision", "recall", "returned", "gold"):
        table.add_column(column, justify="left" if column == "attribute" else "right")
    for attribute, row in scores["per_attribute"].items():
        table.add_row(attribute, *(str(row[c]) for c in ("precision", "recall", "returned", "gold")))
    counts = scores["counts"]
    table.add_row("[bold]all[/]", str(scores["precision"]), str(scores["recall"]), str(counts["returned"]),
                  str(counts["gold_values"]))  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"absent pairs answered with nothing: {scores['absent_accuracy']} of {counts['absent_pairs']}")


def load_atlas(index: Path | None):
    """The Atlas of `index` (built first when missing), or a clear error and exit 2."""
    from ingest.errors import MissingDependency
    from ingest.index import IndexProblem
    from rag.service import Atlas
    from rag.settings import RagSettings

    settings = RagSettings()
    try:
        return Atlas.load(settings, index or settings.index_dir, build_if_missing=True)
    except (IndexProblem, MissingDependency) as exc:
        fail(str(exc))


AttributesOpt = Annotated[
    str | None, typer.Option("--attributes", "-a", help="Comma-separated attributes (default: all).")
]


def split_attributes(attributes: str | None) -> list[str] | None:
    return [a for a in attributes.split(",") if a.strip()] if attributes else None


@app.command()
def facts(
    names: Annotated[list[str], typer.Argument(help="Model names or aliases (ChatGLM-6B, 百川, ...).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per name.")] = False,
    attributes: AttributesOpt = None,
    index: IndexOpt = None,
) -> None:
    """Print each model's fact sheet: every value with the exact source passage it comes from."""
    from rich.console import Console

    from server.fact_render import render_sheet

    atlas = load_atlas(index)
    try:
        sheets = [atlas.facts(name, split_attributes(attributes)) for name in names]
    except ValueError as exc:
        fail(str(exc))
    console = Console(soft_wrap=not sys.stdout.isatty())
    for sheet in sheets:
        if as_json:
            sys.stdout.write(json.dumps(sheet, ensure_ascii=False) + "\n")
        else:
            render_sheet(console, sheet)
    if any("error" in sheet for sheet in sheets):
        raise typer.Exit(1)


@app.command()
def compare(
    names: Annotated[list[str], typer.Argument(help="Two or more model names or aliases.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    attributes: AttributesOpt = None,
    index: IndexOpt = None,
) -> None:
    """Compare models side by side: a table with a citation in every cell, conflicts flagged."""
    from rich.console import Console

    from server.fact_render import render_comparison

    if len(names) < 2:
        fail("Name at least two models to compare.")
    atlas = load_atlas(index)
    try:
        table = atlas.compare(names, split_attributes(attributes))
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(table, ensure_ascii=False) + "\n")
    else:
        render_comparison(Console(soft_wrap=not sys.stdout.isatty()), table)
    if table["unknown"]:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    index: IndexOpt = None,
) -> None:
    """Run the HTTP service: /v1/ask, OpenAI-compatible /v1/chat/completions, and a chat page at /."""
    from server.http import serve as run_server

    run_server(host=host, port=port, index_dir=index)


@app.command()
def slack(
    http: Annotated[bool, typer.Option("--http", help="Events API over HTTP instead of Socket Mode.")] = False,
    host: Annotated[str, typer.Option(help="Interface to bind (HTTP mode).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (HTTP mode).")] = 3000,
    index: IndexOpt = None,
) -> None:
    """Run the Slack bot (Socket Mode with SLACK_APP_TOKEN, or --http for the Events API)."""
    from server.slack import run as run_slack

    run_slack(http=http, host=host, port=port, index_dir=index)


@app.command()
def mcp(
    http: Annotated[bool, typer.Option("--http", help="Streamable HTTP instead of stdio.")] = False,
    host: Annotated[str, typer.Option(help="Interface to bind (HTTP).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (HTTP).")] = 8765,
    index: IndexOpt = None,
) -> None:
    """Run the MCP server (tools: ask, search, facts, compare, get_source) for agents and MCP clients."""
    from server.mcp_tools import run as run_mcp

    run_mcp(http=http, host=host, port=port, index_dir=index)


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="A short run (under 2 minutes).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON results here.")] = None,
) -> None:
    """Measure ingest, ask, retrieval, server and memory on this machine."""
    from bench.runner import main as run_bench

    run_bench(quick=quick, as_json=as_json, out=out)
