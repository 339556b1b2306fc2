"""Slack bot: answers mentions, direct messages and `/ask` in threads, with linked citations.

A thin layer over `Atlas` built on slack-bolt. Events are acknowledged at once and answered on
bolt's listener threads (process_before_response=False), so Slack never waits on retrieval.
`llm-atlas slack` runs it in Socket Mode, or with `--http` as an Events API endpoint at
POST /slack/events (uvicorn). In HTTP mode a guard runs before bolt sees anything: bodies over
the cap get 413 unread, unsigned or stale ones 401 unparsed, signed but malformed ones 400.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field
from slack_bolt import App, BoltResponse
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from rag.schema import Answer, Turn
from rag.service import QuestionError
from server.settings import ServerSettings
from server.slack_format import answer_message, comparison_message, escape, facts_message, unescape

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request

log = logging.getLogger("llm_atlas.slack")

PLACEHOLDER = ":mag: Looking it up…"
APOLOGY = "Sorry, something went wrong while I was answering. Please try again in a moment."
USAGE = "Ask me a question about large language models, e.g. `/ask What is RLHF?`"
COMPARE_USAGE = "Name two or more models, e.g. `/compare Alpaca, Vicuna, Koala`"
FACTS_USAGE = "Name a model, e.g. `/facts ChatGLM-6B`"
CANT_ANSWER = "Sorry, I can't answer that: "
HISTORY_TURNS = 12  # earlier thread messages passed to the core; older ones rarely change the query
TURN_CHARS = 4000  # per history turn, so a pasted log cannot crowd out the question
DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are a few KB; this bounds what a stranger makes us hold
MAX_CLOCK_SKEW = 5 * 60  # Slack's replay window: older (or newer) signed requests are refused
TIMESTAMP = re.compile(r"[0-9]{1,15}")  # int() alone would take " 1", "+1", "1_0", Unicode digits


class SlackSettings(ServerSettings):
    """ServerSettings plus what only the Slack bot reads."""

    slack_max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        gt=0,
        description="Slack HTTP mode: larger request bodies get 413 (LLM_ATLAS_SLACK_MAX_BODY_BYTES).",
    )


class Answerer(Protocol):
    """What the bot needs from `rag.service.Atlas` (tests wrap the real one to record calls)."""

    def ask(self, question: str, history: Sequence[Turn | dict] | None = None) -> Answer: ...

    def facts(self, name: str) -> dict: ...

    def compare(self, names: Sequence[str]) -> dict: ...


class SeenCache:
    """Recently handled ids (event_id, channel:ts), bounded so a long-running bot stays small."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, *keys: str | None) -> bool:
        """Record the keys; True unless any of them was seen before."""
        keys_ = [k for k in keys if k]
        with self._lock:
            seen = any(k in self._keys for k in keys_)
            for key in keys_:
                self._keys[key] = None
                self._keys.move_to_end(key)
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)
        return not seen


def clean_user_text(text: str, bot_user_id: str | None) -> str:
    """Slack message text -> the question: drop the bot's mention, unwrap links, unescape."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = re.sub(r"<((?:https?|mailto):[^|>]+)\|([^>]+)>", r"\2", text)
    text = re.sub(r"<((?:https?|mailto):[^|>]+)>", r"\1", text)
    return " ".join(unescape(text).split())


class SlackBot:
    """The listeners. Each answer: placeholder in the thread -> Atlas -> chat.update with blocks."""

    def __init__(self, atlas: Answerer, seen: SeenCache | None = None):
        self.atlas = atlas
        self.seen = seen or SeenCache()

    # --- listeners (bolt injects arguments by name) ---

    def on_mention(self, event: dict, body: dict, client: WebClient, context: dict) -> None:
        self.handle_message(event, body, client, context)

    def on_message(self, event: dict, body: dict, client: WebClient, context: dict) -> None:
        # Only DMs: channel messages reach us through app_mention.
        if event.get("channel_type") == "im":
            self.handle_message(event, body, client, context)

    def on_command(self, ack: Any, command: dict, respond: Any) -> None:
        question = clean_user_text(command.get("text", ""), None)
        if not question:
            ack(text=USAGE)
            return
        ack(text=f"Looking it up: _{escape(question)}_")
        header = f"<@{command['user_id']}> asked: {escape(question)}"
        self.reply(respond, "/ask", lambda: answer_message(self.atlas.ask(question), header=header))

    def on_compare(self, ack: Any, command: dict, respond: Any) -> None:
        """`/compare Alpaca, Vicuna, Koala`: the fact sheets side by side, a citation in every cell."""
        text = clean_user_text(command.get("text", ""), None)
        names = [n.strip() for n in re.split(r"[,，;；]|\s+vs\.?\s+|\s+and\s+", text) if n.strip()]
        if len(names) < 2:
            ack(text=COMPARE_USAGE)
            return
        ack(text=f"Comparing: _{escape(', '.join(names))}_")
        header = f"<@{command['user_id']}> compared: {escape(', '.join(names))}"
        self.reply(respond, "/compare", lambda: comparison_message(self.atlas.compare(names), header=header))

    def on_facts(self, ack: Any, command: dict, respond: Any) -> None:
        """`/facts ChatGLM-6B`: one model's fact sheet."""
        name = clean_user_text(command.get("text", ""), None)
        if not name:
            ack(text=FACTS_USAGE)
            return
        ack(text=f"Looking up: _{escape(name)}_")
        header = f"<@{command['user_id']}> looked up: {escape(name)}"
        self.reply(respond, "/facts", lambda: facts_message(self.atlas.facts(name), header=header))

    def reply(self, respond: Any, command: str, build: Callable[[], dict]) -> None:
        """Answer a slash command through its response_url; a failure becomes a polite ephemeral note."""
        try:
            message = build()
        except (QuestionError, ValueError) as exc:
            respond(text=escape(f"{CANT_ANSWER}{exc}"), response_type="ephemeral")
            return
        except Exception:
            log.exception("answering %s failed", command)
            respond(text=APOLOGY, response_type="ephemeral")
            return
        try:
            respond(response_type="in_channel", **message)
        except Exception:
            log.exception("posting the %s answer with blocks failed; sending text only", command)
            respond(response_type="in_channel", text=message["text"])

    # --- answering ---

    def handle_message(self, event: dict, body: dict, client: WebClient, context: dict) -> None:
        bot_user_id, bot_id = context.get("bot_user_id"), context.get("bot_id")
        # Edits, deletions, joins and bot posts carry a subtype or bot_id; only people get answers
        # (bolt drops our own events already; this also keeps two bots from talking forever).
        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return
        if event.get("user") == bot_user_id:
            return
        channel, ts = event["channel"], event["ts"]
        # A message can arrive twice (app_mention + message.im, or a redelivery with a new envelope).
        if not self.seen.first_time(body.get("event_id"), f"{channel}:{ts}"):
            log.info("skipping %s:%s, already answered", channel, ts)
            return
        thread_ts = event.get("thread_ts") or ts
        question = clean_user_text(event.get("text", ""), bot_user_id)
        if not question:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=USAGE)
            return
        placeholder = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=PLACEHOLDER)
        history: list[Turn] = []
        if event.get("thread_ts"):
            history = self.thread_history(client, channel, thread_ts, ts, bot_user_id, bot_id)
        try:
            message = answer_message(self.atlas.ask(question, history=history))
        except QuestionError as exc:
            message = {"text": escape(f"{CANT_ANSWER}{exc}")}
        except Exception:
            log.exception("answering %s:%s failed", channel, ts)
            message = {"text": APOLOGY}
        self.replace(client, channel, placeholder["ts"], message)

    def thread_history(
        self, client: WebClient, channel: str, thread_ts: str, before: str, bot_user_id: str | None, bot_id: str | None
    ) -> list[Turn]:
        """Earlier messages of the thread as turns: ours are the assistant's, everyone else's the user's."""
        try:
            replies = client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
        except SlackApiError as exc:  # e.g. a missing *:history scope: answer without context
            log.warning("conversations.replies failed (%s); answering without history", exc.response.get("error"))
            return []
        turns = []
        for msg in replies.get("messages", []):
            if float(msg["ts"]) >= float(before):
                continue
            mine = bool(msg.get("user") and msg.get("user") == bot_user_id) or bool(
                bot_id and msg.get("bot_id") == bot_id
            )
            text = msg.get("text", "")
            if mine and text.startswith((PLACEHOLDER, APOLOGY, USAGE, CANT_ANSWER)):
                continue  # our notices are not answers; as history they would only mislead
            content = clean_user_text(text, bot_user_id)[:TURN_CHARS]
            if content:
                turns.append(Turn(role="assistant" if mine else "user", content=content))
        return turns[-HISTORY_TURNS:]

    def replace(self, client: WebClient, channel: str, ts: str, message: dict) -> None:
        """chat.update the placeholder; if Slack refuses the blocks, the text alone still gets through."""
        try:
            client.chat_update(channel=channel, ts=ts, **message)
        except SlackApiError as exc:
            if "blocks" not in message:
                raise
            log.warning("chat.update with blocks failed (%s); sending text only", exc.response.get("error"))
            client.chat_update(channel=channel, ts=ts, text=message["text"])


def drop_retries(req: BoltRequest, next: Any) -> BoltResponse:
    """Slack retries an event it thinks we missed; the first delivery is already being answered,
    so a retry is acknowledged and dropped (the SeenCache catches the rest). Socket Mode mirrors
    its envelope's retry_attempt into this header, "0" on a first delivery."""
    retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
    if retry.isdigit() and int(retry) > 0:
        return BoltResponse(status=200, body="")
    return next()


def build_app(atlas: Answerer, settings: ServerSettings) -> App:
    """The bolt app with the bot's listeners. Calls auth.test once (bolt learns the bot's ids)."""
    base_url = (settings.slack_api_url or DEFAULT_API_URL).rstrip("/") + "/"
    client = WebClient(token=settings.slack_bot_token, base_url=base_url)
    app = App(client=client, signing_secret=settings.slack_signing_secret or "", process_before_response=False)
    bot = SlackBot(atlas)
    app.use(drop_retries)
    app.event("app_mention")(bot.on_mention)
    app.event("message")(bot.on_message)
    app.command("/ask")(bot.on_command)
    app.command("/compare")(bot.on_compare)
    app.command("/facts")(bot.on_facts)
    return app


def signature_ok(secret: bytes, headers: Mapping[str, str], body: bytes) -> bool:
    """Slack's v0 signature over the raw bytes, with a fresh, plain-digits timestamp.

    Our own check rather than slack_sdk's SignatureVerifier: that one raises on a non-numeric
    timestamp (int()) and on a non-ASCII signature (hmac.compare_digest on str)."""
    timestamp = headers.get("x-slack-request-timestamp") or ""
    signature = headers.get("x-slack-signature") or ""
    if not TIMESTAMP.fullmatch(timestamp):
        return False
    if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = b"v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest().encode()
    # Starlette decodes header values as Latin-1, so this gives back the bytes that were sent.
    return hmac.compare_digest(expected, signature.encode("latin-1"))


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to pass `limit`: by Content-Length before reading
    anything, or while streaming (chunked bodies have no length); the rest is never read."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isascii() or not length.isdigit() or int(length) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def asgi_app(bolt_app: App, signing_secret: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
    """POST /slack/events (and GET /healthz) as an ASGI app for uvicorn, guarded in front of bolt."""
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    if not signing_secret:
        raise ValueError("HTTP mode needs a signing secret: without one anybody could sign requests")
    secret = signing_secret.encode()

    def refuse(status: int, error: str, **headers: str) -> Response:
        return JSONResponse({"error": error}, status_code=status, headers=headers)

    async def events(request: Request) -> Response:
        # Order matters: the cap first (cheap, and it bounds memory), then the signature over the raw
        # bytes, and only then any parsing, so a stranger's body is never decoded.
        try:
            body = await read_capped(request, max_body_bytes)
        except ClientDisconnect:  # gone mid-body: nobody to answer, and not our error to log
            return Response(status_code=400)
        if body is None:
            # Connection: close, so uvicorn hangs up rather than draining the rest of the body.
            return refuse(413, f"request body over {max_body_bytes} bytes", Connection="close")
        if not signature_ok(secret, request.headers, body):
            return refuse(401, "invalid signature or timestamp")
        try:
            # Decodes UTF-8, parses JSON or form and reads ids out of it: nothing but the body can fail
            # here (bad UTF-8 or JSON are ValueErrors; `[1]` or `{"authorizations": 5}` the others).
            bolt_request = to_bolt_request(request, body)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            log.warning("signed Slack request with a malformed body: %r", exc)
            return refuse(400, "malformed body")
        # dispatch() blocks until ack(); keep it off the event loop so one slow ack stalls nothing else.
        return to_starlette_response(await run_in_threadpool(bolt_app.dispatch, bolt_request))

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"]), Route("/healthz", health)])


def required_settings(http: bool) -> list[str]:
    return ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET" if http else "SLACK_APP_TOKEN"]


def missing_settings(settings: ServerSettings, http: bool) -> list[str]:
    values = {
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
        "SLACK_APP_TOKEN": settings.slack_app_token,
        "SLACK_SIGNING_SECRET": settings.slack_signing_secret,
    }
    return [name for name in required_settings(http) if not values[name]]


def fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(2)


def check_token(settings: ServerSettings) -> None:
    """auth.test before the index loads, so a wrong token fails in a second with a clear message."""
    base_url = (settings.slack_api_url or DEFAULT_API_URL).rstrip("/") + "/"
    try:
        WebClient(token=settings.slack_bot_token, base_url=base_url, timeout=15).auth_test()
    except SlackApiError as exc:
        fail(
            f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')}). Use the app's Bot User OAuth "
            "Token (xoxb-…) from OAuth & Permissions."
        )
    except OSError as exc:
        fail(f"Cannot reach the Slack API at {base_url}: {exc}")


def run(http: bool = False, host: str = "127.0.0.1", port: int = 3000, index_dir: Path | None = None) -> None:
    """`llm-atlas slack`: Socket Mode by default, Events API over HTTP with `http=True`."""
    from ingest.index import IndexProblem
    from rag.service import Atlas

    settings = SlackSettings()
    missing = missing_settings(settings, http)
    if missing:
        mode = "HTTP mode (--http)" if http else "Socket Mode"
        fail(
            f"{' and '.join(missing)} not set: {mode} needs {' and '.join(required_settings(http))} "
            "in the environment (see the README section 'Slack bot')."
        )
    if not http and not (settings.slack_app_token or "").startswith("xapp-"):
        fail("SLACK_APP_TOKEN must be an app-level token (xapp-…) with the connections:write scope.")
    check_token(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        atlas = Atlas.load(settings, index_dir or settings.index_dir, build_if_missing=True)
    except IndexProblem as exc:
        fail(str(exc))
    app = build_app(atlas, settings)
    if http:
        import uvicorn

        log.info("Events API endpoint: http://%s:%d/slack/events", host, port)
        guarded = asgi_app(app, settings.slack_signing_secret or "", settings.slack_max_body_bytes)
        uvicorn.run(guarded, host=host, port=port, log_level="info")
    else:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        SocketModeHandler(app, settings.slack_app_token).start()
