"""The MCP server: llm-atlas as tools for agents (Claude Desktop, Cursor, any MCP client).

Five tools over the one `Atlas`: `ask` (a cited answer), `search` (passages), `facts` and
`compare` (cited fact sheets) and `get_source` (the cleaned document that citation offsets
point into). Every result is structured content (JSON, with an output schema); every refusal
is a tool error with a readable message, never a traceback.

`run()` serves it over stdio (what MCP clients spawn) or streamable HTTP. Over stdio, stdout
is the protocol channel: logs go to stderr, and the index is loaded only once the SDK has
moved fd 1 aside (in the server's lifespan), so nothing printed while loading reaches the wire.
"""

from __future__ import annotations

import hmac
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.fact_store import ATTRIBUTES
from ingest.index import IndexProblem
from rag.facts import attributes_of
from rag.schema import Turn
from rag.service import Atlas, QuestionError, check_text
from server.http import (
    INDEX_UNAVAILABLE,
    LOAD_FAILED,
    LOAD_FAILED_UNEXPECTEDLY,
    AskResponse,
    Comparison,
    FactSheet,
    error_response,
    is_loopback,
    public_answer,
    public_comparison,
    public_document,
    public_location,
    public_sheet,
)
from server.settings import ServerSettings

log = logging.getLogger("llm_atlas.mcp")

AtlasFactory = Callable[[], Atlas]
T = TypeVar("T")

INSTRUCTIONS = (
    "llm-atlas answers questions about large language models (in English or Chinese) from a curated corpus, "
    "citing the exact source passage. Use `ask` for an answer: every [n] in its text names citation n, whose "
    "`quote` is exactly text[start:end] of document `doc_id`. `answered: false` means the corpus does not say; "
    "do not fill the gap from memory. Use `facts` / `compare` for model attributes (parameters, context "
    "length, licence, ...), `search` for raw passages, and `get_source` to read around a citation."
)
CONTEXT_CHARS = 300  # shown on each side of a requested slice in get_source
MAX_HISTORY = 100
MAX_MODELS = 8
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# An answer may come from the configured LLM: not the same twice, and maybe from a hosted service.
ANSWERS = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=False)


# ---------------------------------------------------------------- output models (the tools' output schemas)


class SearchPassage(BaseModel):
    n: int = Field(description="Rank, from 1.")
    doc_id: str = Field(description="Read the whole document with get_source.")
    title: str
    url: str
    section: str = Field(description="Heading path, e.g. 'Training > Data'.")
    start: int = Field(description="Offset of the passage in the cleaned document text.")
    end: int
    text: str = Field(description="Exactly text[start:end] of the document.")
    score: float


class SearchResult(BaseModel):
    query: str
    passages: list[SearchPassage]


class SourceText(BaseModel):
    doc_id: str
    title: str
    url: str
    language: str
    license: str | None = None
    length: int = Field(description="Characters in the whole cleaned document.")
    start: int = Field(description="Where `text` starts in the document.")
    end: int = Field(description="Where `text` ends in the document.")
    text: str = Field(description="Exactly the document's text[start:end] (the whole text when no range is asked).")
    before: str = Field(default="", description=f"Up to {CONTEXT_CHARS} characters before `start`.")
    after: str = Field(default="", description=f"Up to {CONTEXT_CHARS} characters after `end`.")


# ---------------------------------------------------------------- the shared Atlas


class AtlasLoader:
    """Loads the one Atlas in a worker thread, once, shared by every call. `start()` begins at server
    start so the first call rarely waits; a failed load is retried by the next call, so running
    `llm-atlas ingest` repairs a server that is already up."""

    def __init__(self, factory: AtlasFactory, detailed_errors: bool):
        self.factory = factory
        self.detailed_errors = detailed_errors
        self.atlas: Atlas | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self.atlas is None:
            threading.Thread(target=self._preload, name="atlas-load", daemon=True).start()

    def _preload(self) -> None:
        with suppress(ToolError):  # already logged; the next call retries and reports it
            self.load()

    def load(self) -> Atlas:
        """Blocking: run it in a thread. Waits for a load already under way instead of starting another."""
        with self._lock:
            if self.atlas is None:
                try:
                    self.atlas = self.factory()
                except IndexProblem as exc:  # the message says how to fix it, but names server paths
                    log.error("Loading the index failed: %s", exc)
                    raise ToolError(str(exc) if self.detailed_errors else LOAD_FAILED) from None
                except Exception as exc:
                    log.exception("Loading the index failed")
                    detail = f"The index failed to load ({exc.__class__.__name__}: {exc}); the server log has more."
                    raise ToolError(detail if self.detailed_errors else LOAD_FAILED_UNEXPECTEDLY) from None
                log.info("Index loaded: %s, %d chunks", self.atlas.index.version_name, len(self.atlas.index))
            return self.atlas

    async def get(self) -> Atlas:
        return self.atlas if self.atlas is not None else await anyio.to_thread.run_sync(self.load)

    async def run(self, work: Callable[[Atlas], T]) -> T:
        """`work(atlas)` in a worker thread (the core is synchronous and CPU-bound), the event loop stays free;
        the core's refusals become tool errors with its message."""
        atlas = await self.get()
        try:
            return await anyio.to_thread.run_sync(work, atlas)
        except QuestionError as exc:
            raise ToolError(str(exc)) from None
        except IndexProblem as exc:
            log.error("The index cannot answer: %s", exc)
            raise ToolError(str(exc) if self.detailed_errors else INDEX_UNAVAILABLE) from None


def valid(text: str, what: str) -> str:
    try:
        check_text(text, what)  # lone surrogates would break encoding the reply
    except QuestionError as exc:
        raise ToolError(str(exc)) from None
    return text


def attribute_list(requested: Sequence[str] | None) -> list[str] | None:
    if requested is None:
        return None
    try:
        return attributes_of([valid(a, "attribute") for a in requested])
    except ValueError as exc:  # names the known attributes
        raise ToolError(str(exc)) from None


# ---------------------------------------------------------------- the tools

Question = Annotated[
    str,
    Field(
        description="The question, in English or Chinese (at most LLM_ATLAS_MAX_QUESTION_CHARS characters, "
        "2000 by default).",
        json_schema_extra={"minLength": 1},  # said in the schema; the core checks it (and blank ones) with its message
    ),
]
History = Annotated[
    list[Turn] | None,
    Field(
        description="Earlier turns of the conversation, oldest first, so follow-ups ('and its licence?') resolve.",
        max_length=MAX_HISTORY,
    ),
]
Passages = Annotated[int | None, Field(ge=1, le=20, description="Passages to retrieve (default: LLM_ATLAS_TOP_K, 5).")]
Language = Annotated[
    Literal["en", "zh"] | None, Field(description="Answer language (default: the question's language).")
]
Attributes = Annotated[
    list[str] | None,
    Field(description=f"Attributes to show (default: all). Known: {', '.join(ATTRIBUTES)}."),
]


def build_server(atlas_factory: AtlasFactory, *, detailed_errors: bool = True, preload: bool = True) -> MCPServer:
    """The MCP server over the Atlas that `atlas_factory` loads (once, on first need or at server start).

    `detailed_errors`: say why the index failed to load (the message names paths on this machine); off
    for clients on other machines, who get the HTTP API's generic message while the log has the details."""
    loader = AtlasLoader(atlas_factory, detailed_errors)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict[str, Any]]:
        # Entered once the transport is up (over stdio: after fd 1 is moved to stderr), once per server.
        if preload:
            loader.start()
        yield {}

    mcp = MCPServer("llm-atlas", title="llm-atlas", instructions=INSTRUCTIONS, lifespan=lifespan)

    @mcp.tool(annotations=ANSWERS)
    async def ask(
        question: Question,
        history: History = None,
        k: Passages = None,
        language: Language = None,
    ) -> AskResponse:
        """Answer a question about large language models with numbered citations.

        Returns `answer` (text with [n] markers), `answered` (false: the corpus does not say), `citations`
        (n, title, url, section, quote, doc_id, start, end; `quote` is exactly text[start:end] of document
        doc_id, see get_source), `contexts` (the passages shown to the answerer), `mode` (extractive, llm or
        refusal), `notice` (e.g. why the LLM was not used), `query` (the standalone query searched) and
        `timings`."""
        turns = list(history or [])
        answer = await loader.run(lambda atlas: atlas.ask(question, turns, k, None, language))
        out = public_answer(answer)
        out.update(mode=answer.mode, notice=answer.notice, query=answer.query, timings=answer.timings)
        return AskResponse.model_validate(out)

    @mcp.tool(annotations=READ_ONLY)
    async def search(
        query: Annotated[str, Field(description="What to look for, in English or Chinese.")],
        k: Annotated[int, Field(ge=1, le=20, description="Passages to return.")] = 5,
    ) -> SearchResult:
        """Retrieve the passages that best match a query (hybrid dense + lexical search), without answering.

        Each passage has doc_id, title, url, section, start, end (offsets in the cleaned document), text
        (exactly the document's text[start:end]) and score."""

        def work(atlas: Atlas) -> SearchResult:
            found = atlas.search(query, k)
            return SearchResult(
                query=found.query,
                passages=[
                    SearchPassage(
                        n=p.n,
                        doc_id=p.doc_id,
                        title=p.title,
                        url=public_location(p.url),
                        section=p.section_path,
                        start=p.start,
                        end=p.end,
                        text=p.text,
                        score=p.score,
                    )
                    for p in found.passages
                ],
            )

        return await loader.run(work)

    @mcp.tool(annotations=READ_ONLY)
    async def facts(
        model: Annotated[str, Field(description="A model name or alias, e.g. 'ChatGLM-6B', 'Vicuna', '百川'.")],
        attributes: Attributes = None,
    ) -> FactSheet:
        """A model's fact sheet: every known value of each attribute, each with its citation (doc_id, title,
        url, section, quote, start, end). `conflict` marks values that other sources contradict; `stated_for`
        names the variant or family a value is stated for. An unknown name is an error naming the closest
        known models."""
        name = valid(model, "model name").strip()
        if not name:
            raise ToolError("The model name is empty.")
        wanted = attribute_list(attributes)
        sheet = await loader.run(lambda atlas: atlas.facts(name, wanted))
        if "error" in sheet:
            raise ToolError(sheet["error"])
        return FactSheet.model_validate(public_sheet(sheet))

    @mcp.tool(annotations=READ_ONLY)
    async def compare(
        models: Annotated[
            list[str],
            Field(min_length=2, max_length=MAX_MODELS, description="Two to eight model names or aliases."),
        ],
        attributes: Attributes = None,
    ) -> Comparison:
        """Models side by side: one row per attribute with each model's cited values (an empty list: the corpus
        is silent), `conflict` when sources disagree. Names the corpus does not know are listed in `unknown`
        with the closest known ones; when it knows none of them, that is an error."""
        names = [valid(m, "model name").strip() for m in models]
        if not all(names):
            raise ToolError("A model name is empty.")
        wanted = attribute_list(attributes)
        table = await loader.run(lambda atlas: atlas.compare(names, wanted))
        if not table["models"]:
            raise ToolError(" ".join(u["error"] for u in table["unknown"]))
        return Comparison.model_validate(public_comparison(table))

    @mcp.tool(annotations=READ_ONLY)
    async def get_source(
        doc_id: Annotated[str, Field(description="A document id, from a citation or a search passage.")],
        start: Annotated[int | None, Field(ge=0, description="Start of the slice to return (default: 0).")] = None,
        end: Annotated[
            int | None, Field(ge=0, description="End of the slice to return (default: the document's end).")
        ] = None,
    ) -> SourceText:
        """The cleaned source document that citation offsets point into: title, url, language, licence and its
        text, or only text[start:end] with some context before and after (to read around a citation)."""
        wanted = valid(doc_id, "document id")
        document = await loader.run(lambda atlas: atlas.document(wanted))
        if document is None:
            raise ToolError(f"No document '{doc_id}' in the index; document ids come from citations and search.")
        shown = public_document(document)
        text: str = shown.pop("text") or ""
        lo = 0 if start is None else start
        hi = len(text) if end is None else end
        if hi > len(text) or lo > hi:
            raise ToolError(f"The range {lo}:{hi} is not inside the document, which has {len(text)} characters.")
        ranged = start is not None or end is not None
        return SourceText(
            **shown,
            length=len(text),
            start=lo,
            end=hi,
            text=text[lo:hi],
            before=text[max(0, lo - CONTEXT_CHARS) : lo] if ranged else "",
            after=text[hi : hi + CONTEXT_CHARS] if ranged else "",
        )

    return mcp


# ---------------------------------------------------------------- transports


class RequireBearerKey:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <key>` (constant-time comparison),
    otherwise 401 with a JSON error, as the HTTP API answers."""

    def __init__(self, app: ASGIApp, key: str):
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: starts the SDK's session manager
            return await self.app(scope, receive, send)
        header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            return await self.app(scope, receive, send)
        response = error_response(
            401, "Missing or wrong API key: send 'Authorization: Bearer <key>'.", {"WWW-Authenticate": "Bearer"}
        )
        await response(scope, receive, send)


def run(http: bool = False, host: str = "127.0.0.1", port: int = 8765, index_dir: Path | None = None) -> None:
    """Serve the tools over stdio (default) or, with `http`, streamable HTTP at http://host:port/mcp. The index
    (built first if missing) is loaded once, when the server starts."""
    # stderr: over stdio, stdout carries the protocol
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    settings = ServerSettings()
    index_dir = Path(index_dir or settings.index_dir)
    server = build_server(lambda: Atlas.load(settings, index_dir, build_if_missing=True), detailed_errors=not http)
    if not http:
        log.info("llm-atlas MCP server on stdio, index %s", index_dir)
        with suppress(KeyboardInterrupt):
            server.run("stdio")
        return

    import uvicorn

    if not settings.api_key and not is_loopback(host):
        log.warning(
            "\n%s\n  WARNING: serving MCP on %s with no API key: anyone who can reach this port can use it.\n"
            "  Set LLM_ATLAS_API_KEY to require 'Authorization: Bearer <key>'.\n%s",
            "!" * 78,
            host,
            "!" * 78,
        )
    # host: the SDK turns on DNS-rebinding protection (Host/Origin checks) for a loopback address
    app: ASGIApp = server.streamable_http_app(host=host)
    if settings.api_key:
        app = RequireBearerKey(app, settings.api_key)
    log.info("llm-atlas MCP server at http://%s:%d/mcp, index %s", host, port, index_dir)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
