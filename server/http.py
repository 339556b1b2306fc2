"""The HTTP service: `/v1/ask`, an OpenAI-compatible `/v1/chat/completions`, and the chat page at `/`.

Routes stay thin over `Atlas`: they validate, call `atlas.ask` / `atlas.ask_stream` in the
thread pool (the core is synchronous and CPU-bound) and shape the result. The Atlas is
loaded once, in a background thread started by the lifespan, so `/healthz` answers at once
while a first index is built; `/readyz` and `/v1/*` answer 503 until it is loaded.
"""

import contextlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corpus import CORPUS_DIR
from ingest.chunk import detect_language
from ingest.index import IndexProblem
from rag.answer import approx_tokens
from rag.schema import Answer, Context, Turn
from rag.service import Atlas, QuestionError
from server.settings import ServerSettings

log = logging.getLogger("llm_atlas.server")

MODEL_ID = "llm-atlas"
WARM_UP_QUESTION = "What is a large language model? 什么是大语言模型？"
WEB_DIR = Path(__file__).parent / "web"
AtlasFactory = Callable[[], Atlas]

# The chat page loads nothing from elsewhere, so a strict policy costs nothing and limits the harm
# of any markup that slips into retrieved text. /docs is left out: Swagger UI loads from a CDN.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
# What clients are told when the index cannot answer. The real reason names server paths, so only the log has it.
LOADING = "The index is still loading; try again in a few seconds."
LOAD_FAILED = (
    "The index failed to load: it is missing, damaged or from another version. The server log says "
    "which; rebuild it with `llm-atlas ingest`."
)
LOAD_FAILED_UNEXPECTEDLY = "The index failed to load; the server log has the details."
INDEX_UNAVAILABLE = (
    "The index cannot answer right now (it is damaged or being replaced). The server log says "
    "why; rebuild it with `llm-atlas ingest`."
)


# ---------------------------------------------------------------- request and response models

# What Python's str.strip() removes, spelled out: the schema's `pattern` is read as an ECMA regex,
# whose \s differs from Python's (\x1c-\x1f, \x85 and \ufeff), and schema and server must agree.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK = f"[^{_SPACE}]"  # "holds a character that is not a space": valid in Python re and ECMA regex alike
_NON_BLANK = re.compile(NON_BLANK)


def valid_text(value: Any) -> Any:
    # JSON may carry lone surrogates ("\ud800"): not text, and they would break encoding the reply. Run
    # before pydantic's own str check, so every field says the same, and a union says it once.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("not valid Unicode text: it holds a lone surrogate (e.g. \\ud800)") from None
    return value


def non_blank(value: str) -> str:
    if not _NON_BLANK.search(value):
        raise ValueError("the question is empty")
    return value


def integral(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer; pydantic's strict int does not.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Text = Annotated[str, BeforeValidator(valid_text)]
Passages = Annotated[int | None, BeforeValidator(integral)]
TokenLimit = Annotated[int | None, BeforeValidator(integral)]
# maxLength is the app's max_question_chars: create_app writes it into the schema, the routes enforce it.
Question = Annotated[
    str,
    Field(min_length=1, json_schema_extra={"pattern": NON_BLANK}),
    BeforeValidator(valid_text),
    AfterValidator(non_blank),
]
MAX_HISTORY = 100


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant"]
    content: Text


class AskRequest(BaseModel):
    """Bodies over max_body_bytes (64 000 bytes by default) are refused with 413."""

    model_config = ConfigDict(extra="forbid", strict=True)

    question: Question = Field(
        description="The question, in English or Chinese: at least one non-space character, at most "
        "max_question_chars characters.",
        examples=["What is the context length of Llama 2?"],
    )
    history: list[HistoryTurn] = Field(
        default_factory=list, max_length=MAX_HISTORY, description="Earlier turns of the conversation, oldest first."
    )
    k: Passages = Field(default=None, ge=1, le=20, description="Passages to use (default: top_k).")
    llm: bool | None = Field(default=None, description="Use the configured LLM (default: when one is set).")

    def turns(self) -> list[Turn]:
        return [Turn(role=t.role, content=t.content) for t in self.history]


class CitationOut(BaseModel):
    n: int
    title: str
    url: str
    section: str
    quote: str
    doc_id: str = Field(description="Fetch the whole cleaned document at /v1/sources/{doc_id}.")
    start: int = Field(description="Offset of the quote in the document text.")
    end: int


class AskResponse(BaseModel):
    """`ask --json`'s object, with doc_id/start/end on each citation, and the run's details."""

    model_config = ConfigDict(extra="allow")

    answer: str
    answered: bool
    citations: list[CitationOut]
    contexts: list[Context]
    mode: Literal["extractive", "llm", "refusal"]
    notice: str | None = Field(default=None, description="E.g. why the answer is extractive.")
    query: str | None = None
    timings: dict[str, float] = Field(description="Seconds per stage; `server` includes queueing.")


class SourceDocument(BaseModel):
    doc_id: str
    title: str
    url: str
    language: str
    license: str | None = None
    text: str = Field(description="The cleaned text that citation offsets point into.")


class ContentPart(BaseModel):
    """A part of a message's content; only `text` parts are read."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: Text
    text: Text | None = None


class UserContentPart(ContentPart):
    """A part of a user message; its text is at most max_question_chars characters long."""


def content_kind(value: Any) -> str:
    return "list" if isinstance(value, list) else "string"  # the tags show in error locations


# A string or a list of parts, told apart by type, so that an error names only the branch that was sent.
Content = Annotated[
    Annotated[Text, Tag("string")] | Annotated[list[ContentPart], Tag("list")], Discriminator(content_kind)
]
UserContent = Annotated[
    Annotated[Text, Tag("string")] | Annotated[list[UserContentPart], Tag("list")], Discriminator(content_kind)
]


class MessageBase(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    content: Content | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class SystemMessage(MessageBase):
    role: Literal["system", "developer"]


class UserMessage(MessageBase):
    """A question: at most max_question_chars characters (text parts joined by newlines)."""

    role: Literal["user"]
    content: UserContent | None = None


class AssistantMessage(MessageBase):
    role: Literal["assistant"]


class ToolMessage(MessageBase):
    role: Literal["tool", "function"]


ChatMessage = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]

# The question is the last user message with text, so a conversation needs one; said in the schema.
HAS_QUESTION = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"const": "user"},
        "content": {
            "anyOf": [
                {"type": "string", "pattern": NON_BLANK},
                {
                    "type": "array",
                    "contains": {
                        "type": "object",
                        "required": ["type", "text"],
                        "properties": {"type": {"const": "text"}, "text": {"type": "string", "pattern": NON_BLANK}},
                    },
                },
            ]
        },
    },
}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    include_usage: bool = False


class ChatRequest(BaseModel):
    """Bodies over max_body_bytes (64 000 bytes by default) are refused with 413."""

    # Other sampling parameters (temperature, top_p, ...) are accepted and ignored, as clients send them.
    model_config = ConfigDict(extra="ignore", strict=True)

    # Any string is read (an unknown model is a 404, as OpenAI's); the schema names the one there is.
    model: Text = Field(default=MODEL_ID, json_schema_extra={"enum": [MODEL_ID]})
    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=200,
        description="The conversation; the last user message with text is the question.",
        json_schema_extra={"contains": HAS_QUESTION},
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: TokenLimit = Field(
        default=None,
        ge=1,
        description="Longest answer: sent to the LLM (capped at the server's limit); an extractive "
        "answer is cut at a sentence end near this many tokens.",
    )
    max_completion_tokens: TokenLimit = Field(default=None, ge=1, description="As max_tokens (the smaller one counts).")
    k: Passages = Field(default=None, ge=1, le=20, description="Extension: passages to use.")
    llm: bool | None = Field(default=None, description="Extension: use the configured LLM.")


# ---------------------------------------------------------------- fact sheets

ModelName = Annotated[str, Field(min_length=1, max_length=200, json_schema_extra={"pattern": NON_BLANK}),
                      BeforeValidator(valid_text)]  # fmt: skip
Attribute = Literal[
    "developer", "release_date", "parameters", "base_model", "architecture", "training_data", "training_tokens",
    "context_length", "licence", "languages", "training_cost", "training_hardware", "memory_requirement",
]  # fmt: skip


class FactCitation(BaseModel):
    doc_id: str = Field(description="Fetch the whole cleaned document at /v1/sources/{doc_id}.")
    title: str
    url: str
    section: str
    quote: str = Field(description="The supporting passage: exactly text[start:end] of the document.")
    start: int
    end: int


class FactOut(BaseModel):
    attribute: Attribute
    value: str = Field(description="The value as the source writes it (inside the quote).")
    normalized: float | str | list[float] | list[str] | None = Field(
        default=None,
        description="Sizes and tokens as numbers, dates ISO, money in USD, context length in tokens, licence ids.",
    )
    conflict: bool = Field(description="Other sources give a different value for this model and attribute.")
    qualifier: str | None = Field(default=None, description="The condition the value holds under, e.g. INT4.")
    stated_for: str | None = Field(default=None, description="The variant or family the source states it for.")
    citation: FactCitation


class FactSheet(BaseModel):
    query: str
    model: str = Field(description="The canonical model name.")
    aliases: list[str]
    facts: list[FactOut]


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    models: list[ModelName] = Field(min_length=2, max_length=8, description="Model names or aliases.")
    attributes: list[Attribute] | None = Field(default=None, description="Rows to show (default: all).")


class UnknownModelOut(BaseModel):
    query: str
    error: str
    closest: list[str]


class CompareRow(BaseModel):
    attribute: Attribute
    cells: dict[str, list[FactOut]] = Field(description="Model -> its cited values (empty: the corpus is silent).")
    conflict: bool


class Comparison(BaseModel):
    models: list[str]
    attributes: list[Attribute]
    rows: list[CompareRow]
    unknown: list[UnknownModelOut] = Field(description="Names the corpus does not know, with the closest known.")


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok", "ready", "loading", "failed", "unavailable"]
    version: str | None = Field(default=None, description="The index version answering.")
    documents: int | None = None
    chunks: int | None = None
    error: str | None = Field(default=None, description="Why questions cannot be answered now.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in [
        (400, "The body could not be read."),
        (401, "Missing or wrong API key (when LLM_ATLAS_API_KEY is set)."),
        (413, "Request body too large."),
        (422, "Invalid request, e.g. an empty or too long question."),
        (429, "Too many requests from this client."),
        (503, "The index is not loaded yet, failed to load, or cannot answer (damaged); the log says why."),
    ]
}


# ---------------------------------------------------------------- state shared by the requests


class AtlasHolder:
    """Holds the one Atlas; loads it in a daemon thread so start-up work never blocks /healthz."""

    def __init__(self, source: Atlas | AtlasFactory):
        loaded = callable(getattr(source, "ask", None))  # an Atlas, or a stand-in with its methods
        self.atlas: Atlas | None = source if loaded else None
        self.factory: AtlasFactory | None = None if loaded else source
        self.error: str | None = None  # what clients are told; the log has the details
        self.loaded_in: float | None = None
        self.last_problem: str | None = None

    def start(self) -> None:
        if self.atlas is None and self.factory is not None:
            threading.Thread(target=self._load, name="atlas-load", daemon=True).start()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            atlas = self.factory()
        except Exception as exc:  # reported by /readyz and every /v1 call; the process stays up
            # The message names server paths (and FAISS or SQLite internals): the log gets it, clients do not.
            log.exception("Loading the index failed")
            self.error = LOAD_FAILED if isinstance(exc, IndexProblem) else LOAD_FAILED_UNEXPECTEDLY
            return
        try:  # the first answer loads lazy parts (tokenizer dictionaries); pay for it before /readyz says so
            atlas.ask(WARM_UP_QUESTION, use_llm=False)
        except Exception:
            log.warning("The warm-up question failed", exc_info=True)
        self.atlas = atlas
        self.loaded_in = time.perf_counter() - started
        log.info("Index loaded in %.1f s: %d chunks", self.loaded_in, len(self.atlas.index))

    def health(self) -> dict[str, Any]:
        """`atlas.health()`, never raising; a new problem is logged once, not at every probe."""
        assert self.atlas is not None
        try:
            health = self.atlas.health()
        except Exception as exc:  # a probe must answer whatever breaks underneath
            health = {"ready": False, "problem": f"{exc.__class__.__name__}: {exc}"}
        problem = health.get("problem")
        if problem != self.last_problem:
            self.last_problem = problem
            if problem:
                log.error("The index %s: %s", "has a problem" if health.get("ready") else "cannot answer", problem)
            else:
                log.info("The index is healthy again: %s", health.get("version"))
        return health


class RateLimiter:
    """A token bucket per client: `per_minute` requests, refilled continuously; 0 turns it off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last refill)
        self.lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """Take one token; return 0, or the seconds to wait when the client has none left."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        with self.lock:
            now = self.clock()
            tokens, last = self.buckets.get(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self.buckets[client] = (tokens, now)
                return (1.0 - tokens) / rate
            self.buckets[client] = (tokens - 1.0, now)
            if len(self.buckets) > 10_000:  # forget idle clients so the table cannot grow without end
                idle = now - 60.0
                self.buckets = {c: b for c, b in self.buckets.items() if b[1] > idle}
            return 0.0


def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def get_atlas(request: Request) -> Atlas:
    holder: AtlasHolder = request.app.state.atlas_holder
    if holder.atlas is None:
        raise HTTPException(503, holder.error or LOADING, headers={"Retry-After": "5"})
    return holder.atlas


bearer = HTTPBearer(auto_error=False, description="Needed when the server sets LLM_ATLAS_API_KEY.")
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
AtlasDep = Annotated[Atlas, Depends(get_atlas)]
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def rate_limit(request: Request) -> None:
    client = request.client.host if request.client else "unknown"
    wait = request.app.state.rate_limiter.acquire(client)
    if wait:
        seconds = max(1, math.ceil(wait))
        raise HTTPException(429, f"Too many requests; retry in {seconds} s.", headers={"Retry-After": str(seconds)})


async def require_key(settings: SettingsDep, credentials: CredentialsDep) -> None:
    if not settings.api_key:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), settings.api_key.encode()):  # constant time
        raise HTTPException(
            401, "Missing or wrong API key: send 'Authorization: Bearer <key>'.", headers={"WWW-Authenticate": "Bearer"}
        )


# ---------------------------------------------------------------- shaping answers


_CORPUS_PREFIX = str(CORPUS_DIR) + os.sep


def public_location(location: str) -> str:
    """A document's url as clients see it. Web addresses stay; a path on this server (a seed without a
    URL, a file ingested by path) must not show the server's folders: a bundled document becomes
    `corpus/<its path in the corpus>`, any other file just its name."""
    path = location.removeprefix("file://")
    if not path.startswith("/"):
        return location
    path = os.path.normpath(path)
    if path.startswith(_CORPUS_PREFIX):
        return "corpus/" + path[len(_CORPUS_PREFIX) :]
    return PurePosixPath(path).name or "document"


def public_answer(answer: Answer) -> dict[str, Any]:
    """The `ask --json` shape (with doc_id and offsets, for the page to highlight quotes), without paths."""
    out = answer.public()
    for item in out["citations"] + out["contexts"]:
        item["url"] = public_location(item["url"])
    return out


def public_document(document: dict[str, Any]) -> dict[str, Any]:
    """The documented fields only: `source` (where ingest read it, maybe a server path) stays inside."""
    fields = {k: document.get(k) for k in ("doc_id", "title", "url", "language", "license", "text")}
    return {**fields, "url": public_location(fields["url"] or "")}


def public_facts(facts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fact citations without server paths, like every other citation (see public_location)."""
    return [{**f, "citation": {**f["citation"], "url": public_location(f["citation"]["url"])}} for f in facts]


def public_sheet(sheet: dict[str, Any]) -> dict[str, Any]:
    return {**sheet, "facts": public_facts(sheet["facts"])} if "facts" in sheet else sheet


def public_comparison(table: dict[str, Any]) -> dict[str, Any]:
    rows = [{**r, "cells": {m: public_facts(fs) for m, fs in r["cells"].items()}} for r in table["rows"]]
    return {**table, "rows": rows}


def ask_response(answer: Answer, started: float) -> dict[str, Any]:
    out = public_answer(answer)
    timings = dict(answer.timings)
    timings["server"] = round(time.perf_counter() - started, 4)
    out.update(mode=answer.mode, notice=answer.notice, query=answer.query, timings=timings)
    return out


_SOURCES_HEADINGS = ("Sources:", "来源：")


def sources_tail(answer: Answer, language: str) -> str:
    """What follows the answer text in a chat completion: the notice, then the numbered sources, under
    a heading in the question's language (an English answer may quote Chinese text)."""
    zh = language == "zh"
    parts = []
    if answer.notice:
        parts.append(f"\n\n_{answer.notice}_")
    if answer.citations:
        lines = [_SOURCES_HEADINGS[1] if zh else _SOURCES_HEADINGS[0]]
        for c in answer.citations:
            where = f" › {c.section}" if c.section else ""
            lines.append(f"[{c.n}] {c.title}{where} — {public_location(c.url)}")
        parts.append("\n\n" + "\n".join(lines))
    return "".join(parts)


def strip_sources(text: str) -> str:
    """Drop our own sources block from an assistant turn sent back as history."""
    for heading in _SOURCES_HEADINGS:
        cut = text.rfind("\n\n" + heading + "\n")
        if cut >= 0:
            text = text[:cut]
    return text.strip()


def check_length(question: str, settings: ServerSettings, what: str = "The question") -> str:
    """The server's limit, on the text as sent (the schema's maxLength); the core applies its own
    too (the same setting, unless a caller splits them)."""
    length = len(question)
    if length > settings.max_question_chars:
        raise QuestionError(f"{what} is {length} characters long; the limit is {settings.max_question_chars}.")
    return question


def chat_to_question(messages: list[ChatMessage], settings: ServerSettings) -> tuple[str, list[Turn]]:
    """The last user message with text is the question; earlier user and assistant messages are the
    history. Every user message is held to the question limit, as the schema says."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    last = max((i for i in users if _NON_BLANK.search(messages[i].text)), default=None)
    if last is None:
        raise QuestionError("The conversation has no user message to answer (one with text).")
    for i in users:
        check_length(messages[i].text, settings, "The question" if i == last else f"User message {i}")
    history = [
        Turn(role=m.role, content=strip_sources(m.text) if m.role == "assistant" else m.text)
        for m in messages[:last]
        if m.role in ("user", "assistant") and _NON_BLANK.search(m.text)
    ]
    return messages[last].text, history


def sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


_END = object()


async def stream_pieces(
    atlas: Atlas, question: str, history: list[Turn], k: int | None, llm: bool | None, **options: Any
) -> AsyncIterator[str | Answer]:
    """`atlas.ask_stream` in the thread pool, each piece sent as the core yields it (with the LLM, a
    checked sentence at a time). The first piece is awaited before the caller starts the response, so a
    refused question still gets its 4xx instead of a broken 200 stream."""
    pieces: Iterator[str | Answer] = atlas.ask_stream(question, history, k, llm, **options)
    item = await run_in_threadpool(next, pieces, _END)

    async def rest() -> AsyncIterator[str | Answer]:
        current = item
        try:
            while current is not _END:
                yield current
                current = await run_in_threadpool(next, pieces, _END)
        finally:  # a client that hangs up stops the LLM stream too (closing only sets a flag: no waiting)
            close = getattr(pieces, "close", None)
            if close is not None:
                with contextlib.suppress(ValueError):  # still running in a worker thread: it ends on its own
                    close()

    return rest()


def event_stream(
    pieces: AsyncIterator[str | Answer],
    on_piece: Callable[[str], str],
    on_answer: Callable[[Answer], list[str]],
    on_error: Callable[[str], str],
    preamble: tuple[str, ...] = (),
) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        for event in preamble:
            yield event
        try:
            async for item in pieces:
                if isinstance(item, Answer):
                    for event in on_answer(item):
                        yield event
                else:
                    yield on_piece(item)
        except Exception:  # the status line is already sent: report in the stream, never a trace
            log.exception("Answering failed while streaming")
            yield on_error("Answering failed on the server; see its log.")

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def error_json(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "code": None}}


# ---------------------------------------------------------------- routes

v1 = APIRouter(prefix="/v1", dependencies=[Depends(rate_limit), Depends(require_key)], responses=ERROR_RESPONSES)


@v1.post("/ask", response_model=AskResponse, tags=["native"])
async def ask(body: AskRequest, atlas: AtlasDep, settings: SettingsDep) -> dict[str, Any]:
    """Answer a question with numbered citations: `ask --json`'s object plus mode, notice and timings."""
    started = time.perf_counter()
    question = check_length(body.question, settings)
    answer = await run_in_threadpool(atlas.ask, question, body.turns(), body.k, body.llm)
    return ask_response(answer, started)


@v1.post(
    "/ask/stream",
    tags=["native"],
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-sent events: `delta` {text}, then `answer` (as /v1/ask), or `error` {error}.",
        }
    },
)
async def ask_stream(body: AskRequest, atlas: AtlasDep, settings: SettingsDep) -> StreamingResponse:
    """The answer as server-sent events, for the chat page."""
    started = time.perf_counter()
    question = check_length(body.question, settings)
    pieces = await stream_pieces(atlas, question, body.turns(), body.k, body.llm)
    return event_stream(
        pieces,
        on_piece=lambda text: sse({"text": text}, "delta"),
        on_answer=lambda answer: [sse(ask_response(answer, started), "answer")],
        on_error=lambda message: sse(error_json(message), "error"),
    )


@v1.get(
    "/sources/{doc_id}",
    response_model=SourceDocument,
    tags=["native"],
    responses={404: {"model": ErrorResponse, "description": "No such document."}},
)
async def source(doc_id: str, atlas: AtlasDep) -> dict[str, Any]:
    """The cleaned source document that citation offsets point into, with its metadata."""
    document = await run_in_threadpool(atlas.document, doc_id)
    if document is None:
        raise HTTPException(404, f"No document '{doc_id}' in the index.")
    return public_document(document)


@v1.get(
    "/facts/{model}",
    response_model=FactSheet,
    response_model_exclude_none=True,
    tags=["native"],
    responses={404: {"model": ErrorResponse, "description": "No such model; the message names the closest."}},
)
async def facts(model: Annotated[str, PathParam(min_length=1, max_length=200)], atlas: AtlasDep) -> dict[str, Any]:
    """A model's fact sheet (by name or alias, e.g. `ChatGLM-6B`, `百川`): every value with its citation."""
    sheet = await run_in_threadpool(atlas.facts, model)
    if "error" in sheet:
        raise HTTPException(404, sheet["error"])
    return public_sheet(sheet)


@v1.post("/compare", response_model=Comparison, response_model_exclude_none=True, tags=["native"])
async def compare(body: CompareRequest, atlas: AtlasDep) -> dict[str, Any]:
    """Models side by side: one row per attribute, a cited value (or nothing) per model, conflicts flagged."""
    return public_comparison(await run_in_threadpool(atlas.compare, body.models, body.attributes))


def model_card() -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "llm-atlas"}


@v1.get("/models", tags=["openai"])
async def models() -> dict[str, Any]:
    return {"object": "list", "data": [model_card()]}


@v1.get("/models/{model}", tags=["openai"], responses={404: {"model": ErrorResponse}})
async def model(model: str) -> dict[str, Any]:
    check_model(model)
    return model_card()


def check_model(model: str) -> None:
    if model != MODEL_ID:
        raise HTTPException(404, f"The model '{model}' does not exist; this server offers '{MODEL_ID}'.")


@v1.post(
    "/chat/completions",
    tags=["openai"],
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "A chat.completion object, or chat.completion.chunk events "
            "ending with `data: [DONE]` when `stream` is true.",
        },
        404: {"model": ErrorResponse, "description": "Unknown model."},
    },
)
async def chat_completions(body: ChatRequest, atlas: AtlasDep, settings: SettingsDep) -> Any:
    """OpenAI-compatible chat. The answer text carries [n] markers and ends with its numbered sources;
    the structured citations are also in the extension field `citations`."""
    check_model(body.model)
    question, history = chat_to_question(body.messages, settings)
    language = detect_language(question)  # the answer's language, so the sources heading's too
    limits = [n for n in (body.max_tokens, body.max_completion_tokens) if n is not None]
    # Only passed when sent, so that a core without the option still serves the other requests.
    options: dict[str, Any] = {"max_tokens": min(limits)} if limits else {}
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def usage(answer: Answer, text: str) -> dict[str, int]:
        prompt = approx_tokens(question) + sum(approx_tokens(t.content) for t in history)
        completion = approx_tokens(text)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def extensions(answer: Answer) -> dict[str, Any]:
        return {"citations": public_answer(answer)["citations"], "mode": answer.mode, "notice": answer.notice}

    if not body.stream:
        answer = await run_in_threadpool(lambda: atlas.ask(question, history, body.k, body.llm, **options))
        text = answer.answer + sources_tail(answer, language)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage(answer, text),
            **extensions(answer),
        }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra,
            }
        )

    def finish(answer: Answer) -> list[str]:
        tail = sources_tail(answer, language)
        events = [chunk({"content": tail})] if tail else []
        events.append(chunk({}, "stop", **extensions(answer)))
        if body.stream_options and body.stream_options.include_usage:
            events.append(
                sse(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": MODEL_ID,
                        "choices": [],
                        "usage": usage(answer, answer.answer + tail),
                    }
                )
            )
        return [*events, "data: [DONE]\n\n"]

    pieces = await stream_pieces(atlas, question, history, body.k, body.llm, **options)
    return event_stream(
        pieces,
        on_piece=lambda text: chunk({"content": text}),
        on_answer=finish,
        on_error=lambda message: sse(error_json(message)) + "data: [DONE]\n\n",
        preamble=(chunk({"role": "assistant", "content": ""}),),  # as OpenAI's first chunk
    )


ops = APIRouter(tags=["operations"])


@ops.get("/healthz", response_model=Health, response_model_exclude_none=True)
async def healthz() -> dict[str, Any]:
    """The process is alive (the index may still be loading)."""
    return {"status": "ok"}


@ops.get(
    "/readyz",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health, "description": "Loading, failed to load, or the index cannot answer."}},
)
async def readyz(request: Request) -> Any:
    """The index is loaded and can answer: a chunk is read and a vector search run on the version in use."""
    holder: AtlasHolder = request.app.state.atlas_holder
    if holder.atlas is None:
        status = "failed" if holder.error else "loading"
        return JSONResponse(
            {"status": status, "error": holder.error or LOADING}, status_code=503, headers={"Retry-After": "5"}
        )
    health = await run_in_threadpool(holder.health)  # reads the store: not on the event loop
    shown = {k: health.get(k) for k in ("version", "documents", "chunks")}
    if not health.get("ready"):
        return JSONResponse(
            {"status": "unavailable", "error": INDEX_UNAVAILABLE, **{k: v for k, v in shown.items() if v is not None}},
            status_code=503,
        )
    return {"status": "ready", **shown}


@ops.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


# ---------------------------------------------------------------- errors, middleware, the app


class SafeJSONResponse(JSONResponse):
    """JSON whose text may echo the request (a model name, a validation message): a lone surrogate
    from the request's JSON becomes '?' instead of failing to encode, which would turn a 4xx into a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
            "utf-8", "replace"
        )


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return SafeJSONResponse(
        {"error": {"message": message, "type": kind, "code": None, **extra}}, status_code=status, headers=headers
    )


def validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        if err.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON (error at character {err['loc'][-1]})")
            continue
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        msg = str(err.get("msg")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "Invalid request: " + "; ".join(parts)


def add_error_handlers(app: FastAPI) -> None:
    """Every error is a JSON object with a message (OpenAI's shape), never a stack trace."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        return error_response(422, validation_message(errors), details=errors)

    @app.exception_handler(QuestionError)
    async def bad_question(request: Request, exc: QuestionError) -> JSONResponse:
        return error_response(422, str(exc))

    @app.exception_handler(IndexProblem)
    async def index_problem(request: Request, exc: IndexProblem) -> JSONResponse:
        log.error("%s %s: the index cannot answer: %s", request.method, request.url.path, exc)
        return error_response(503, INDEX_UNAVAILABLE)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after this response is sent, so the server logs the traceback, and
        # uvicorn then drops the connection: say so, or a keep-alive client's next request fails.
        return error_response(500, "Internal error; the server log has the details.", {"Connection": "close"})


class BodySizeLimit:
    """Refuse request bodies over `limit` bytes with 413, counting chunked bodies too."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self.refuse(scope, receive, send)
        # Read the body here (it is small by now) so no route ever sees a partial one.
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self.refuse(scope, receive, send)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, f"The request body is larger than {self.limit} bytes.", headers={"Connection": "close"}
        )
        await response(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        is_docs = scope["path"] in ("/docs", "/redoc") or scope["path"].startswith("/docs/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if not is_docs:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def app_version() -> str:
    try:
        return package_version("llm-atlas")
    except PackageNotFoundError:
        return "0"


def create_app(atlas: Atlas | AtlasFactory, settings: ServerSettings | None = None) -> FastAPI:
    """The app over a loaded Atlas, or over a factory that the lifespan calls once in the background."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.atlas_holder.start()
        yield

    app = FastAPI(
        title="llm-atlas",
        version=app_version(),
        lifespan=lifespan,
        description="Answers about large language models, citing the exact source passage. "
        "Native API under /v1/ask, an OpenAI-compatible /v1/chat/completions "
        "(model `llm-atlas`), and a chat page at /.",
    )
    app.openapi = lambda: openapi_with_limits(app, settings)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.atlas_holder = AtlasHolder(atlas)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    add_error_handlers(app)
    app.include_router(v1)
    app.include_router(ops)
    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


def openapi_with_limits(app: FastAPI, settings: ServerSettings) -> dict[str, Any]:
    """FastAPI's schema plus what this app's settings decide, so that the schema says what the server
    does: the question length limit, and whether the API key is needed."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        components = schema["components"]["schemas"]
        for name, field in (("AskRequest", "question"), ("UserMessage", "content"), ("UserContentPart", "text")):
            for option in string_schemas(components[name]["properties"][field]):
                option["maxLength"] = settings.max_question_chars
        if not settings.api_key:  # no key set: the bearer header is optional (`{}` is "no security")
            for operation in (op for path in schema["paths"].values() for op in path.values()):
                if operation.get("security"):
                    operation["security"] = [*operation["security"], {}]
        app.openapi_schema = schema
    return app.openapi_schema


def string_schemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The string alternatives of a field's schema (itself, or inside anyOf / oneOf)."""
    if schema.get("type") == "string":
        yield schema
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, []):
            yield from string_schemas(option)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(host: str = "127.0.0.1", port: int = 8000, index_dir: Path | None = None) -> None:
    """Run the service with uvicorn; the index (built first if missing) is loaded once, at start-up."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    settings = ServerSettings()
    index_dir = Path(index_dir or settings.index_dir)
    if not settings.api_key and not is_loopback(host):
        log.warning(
            "\n%s\n  WARNING: serving on %s with no API key: anyone who can reach this port can "
            "use it.\n  Set LLM_ATLAS_API_KEY to require 'Authorization: Bearer <key>' on /v1/*.\n%s",
            "!" * 78,
            host,
            "!" * 78,
        )
    app = create_app(lambda: Atlas.load(settings, index_dir, build_if_missing=True), settings)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=10)
