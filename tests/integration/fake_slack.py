"""A loopback HTTP server that speaks the part of Slack's Web API the bot uses, and records every call.

It keeps messages per channel, so conversations.replies returns what chat.postMessage stored,
and it enforces the message limits Slack enforces (50 blocks, 3000 characters of section text,
40,000 of text), so a message it accepts is one Slack would accept on those counts.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"


@dataclass
class Call:
    method: str  # Web API method, or "response_url" for posts to a slash command's response_url
    params: dict
    result: dict = field(default_factory=dict)  # what the fake answered ({"ok": ...})
    at: float = field(default_factory=time.perf_counter)


class FakeSlack:
    def __init__(self, token: str = "xoxb-test", app_token: str = "xapp-test"):
        self.token = token
        self.app_token = app_token
        self.socket_mode_url: str | None = None  # what apps.connections.open hands out
        self.calls: list[Call] = []
        self.messages: dict[str, list[dict]] = {}  # channel -> messages, oldest first
        self._changed = threading.Condition()
        self._seq = itertools.count(1)
        self._start = int(time.time())
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle ---

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, name: str) -> str:
        """A slash command's response_url; posts to it are recorded as "response_url" calls."""
        return f"{self.base}/respond/{name}"

    # --- test helpers ---

    def next_ts(self) -> str:
        return f"{self._start}.{next(self._seq):06d}"

    def add_user_message(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> str:
        """Store a message as if a person had posted it; returns its ts (the event then refers to it)."""
        ts = self.next_ts()
        msg = {"type": "message", "user": user, "text": text, "ts": ts}
        if thread_ts:
            msg["thread_ts"] = thread_ts
        self._store(channel, msg)
        return ts

    def calls_to(self, method: str, channel: str | None = None) -> list[Call]:
        with self._changed:
            return [
                c for c in self.calls if c.method == method and (channel is None or c.params.get("channel") == channel)
            ]

    def wait_for(self, method: str, channel: str | None = None, count: int = 1, timeout: float = 60) -> list[Call]:
        """Block until `count` calls to `method` (for `channel`) arrived; returns them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self.calls_to(method, channel)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {method} for {channel} within {timeout}s; calls: "
                        f"{[(c.method, c.params.get('channel')) for c in self.calls]}"
                    )
                self._changed.wait(left)
            return found

    # --- the Web API ---

    def _store(self, channel: str, msg: dict) -> None:
        with self._changed:
            self.messages.setdefault(channel, []).append(msg)

    def _record(self, method: str, params: dict, result: dict) -> None:
        with self._changed:
            self.calls.append(Call(method, params, result))
            self._changed.notify_all()

    def api(self, method: str, params: dict, authorization: str | None) -> dict:
        token = self.app_token if method == "apps.connections.open" else self.token  # app-level vs bot token
        if authorization != f"Bearer {token}":
            return {"ok": False, "error": "invalid_auth" if authorization else "not_authed"}
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        return handler(params)

    def api_auth_test(self, params: dict) -> dict:
        return {
            "ok": True,
            "url": "https://fake.slack.test/",
            "team": "Fake",
            "user": "atlas",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
        }

    def api_apps_connections_open(self, params: dict) -> dict:
        if not self.socket_mode_url:
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": self.socket_mode_url}

    def api_chat_postMessage(self, params: dict) -> dict:
        if problem := self._check_message(params):
            return {"ok": False, "error": problem}
        channel, ts = params["channel"], self.next_ts()
        msg = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
            "text": params.get("text", ""),
            "blocks": params.get("blocks", []),
        }
        if params.get("thread_ts"):
            if not self._find(channel, params["thread_ts"]):
                return {"ok": False, "error": "thread_not_found"}
            msg["thread_ts"] = params["thread_ts"]
        self._store(channel, msg)
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def api_chat_update(self, params: dict) -> dict:
        if problem := self._check_message(params):
            return {"ok": False, "error": problem}
        msg = self._find(params.get("channel", ""), params.get("ts", ""))
        if msg is None or msg.get("user") != BOT_USER_ID:
            return {"ok": False, "error": "message_not_found" if msg is None else "cant_update_message"}
        msg["text"] = params.get("text", "")
        if "blocks" in params:
            msg["blocks"] = params["blocks"]
        return {"ok": True, "channel": params["channel"], "ts": params["ts"], "text": msg["text"]}

    def api_conversations_replies(self, params: dict) -> dict:
        channel, ts = params.get("channel", ""), params.get("ts", "")
        if not self._find(channel, ts):
            return {"ok": False, "error": "thread_not_found"}
        with self._changed:
            thread = [dict(m) for m in self.messages[channel] if m["ts"] == ts or m.get("thread_ts") == ts]
        return {"ok": True, "messages": sorted(thread, key=lambda m: float(m["ts"])), "has_more": False}

    def _find(self, channel: str, ts: str) -> dict | None:
        with self._changed:
            return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    @staticmethod
    def _check_message(params: dict) -> str | None:
        """Slack's own limits on a message."""
        if not params.get("channel"):
            return "channel_not_found"
        blocks = params.get("blocks") or []
        if not params.get("text") and not blocks:
            return "no_text"
        if len(params.get("text", "")) > 40_000:
            return "msg_too_long"
        if len(blocks) > 50:
            return "invalid_blocks"
        for block in blocks:
            texts = [block.get("text", {})] + list(block.get("elements", []))
            if any(len(t.get("text", "")) > 3000 for t in texts if isinstance(t, dict)):
                return "invalid_blocks"
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:
                self._serve({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:  # form-encoded: structured values (blocks) arrive as JSON strings
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                    if isinstance(params.get("blocks"), str):
                        params["blocks"] = json.loads(params["blocks"])
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                self._serve({**query, **params})

            def _serve(self, params: dict) -> None:
                path = urlsplit(self.path).path
                if path.startswith("/respond/"):
                    # Filed under the name in the URL as its channel, so wait_for("response_url", name) works.
                    fake._record("response_url", {**params, "channel": path.rsplit("/", 1)[1]}, {"ok": True})
                    self._reply(200, "text/plain", b"ok")
                    return
                if not path.startswith("/api/"):
                    self._reply(404, "text/plain", b"not found")
                    return
                method = path[len("/api/") :]
                result = fake.api(method, params, self.headers.get("Authorization"))
                # Recorded after the reply is decided, so a waiter sees the stored message.
                fake._record(method, params, result)
                self._reply(200, "application/json", json.dumps(result).encode())

            def _reply(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class FakeSocketMode:
    """Slack's end of Socket Mode: a WebSocket server the bot connects to (its URL is what
    apps.connections.open returns). Tests push envelopes and read the bot's acks."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.acks: list[dict] = []
        self._connections: list = []
        self._changed = threading.Condition()
        self.server = serve(self._session, "127.0.0.1", 0, compression=None)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/link/?ticket=fake"

    def _session(self, ws) -> None:  # one per bot connection
        ws.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": "AATLAS"},
                    "debug_info": {"host": "fake"},
                }
            )
        )
        with self._changed:
            self._connections.append(ws)
            self._changed.notify_all()
        for raw in ws:
            with self._changed:
                self.acks.append(json.loads(raw))
                self._changed.notify_all()

    def _wait(self, ready, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (found := ready()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout}s")
                self._changed.wait(left)
            return found

    @property
    def connected(self) -> bool:
        with self._changed:
            return bool(self._connections)

    def push(self, kind: str, payload: dict, retry_attempt: int = 0, timeout: float = 60) -> str:
        """Send an envelope (kind: events_api, slash_commands) to the connected bot; returns its id."""
        ws = self._wait(lambda: self._connections[-1] if self._connections else None, timeout, "connection")
        envelope_id = f"env-{time.monotonic_ns()}"
        ws.send(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "payload": payload,
                    "accepts_response_payload": kind != "events_api",
                    "retry_attempt": retry_attempt,
                    "retry_reason": "timeout" if retry_attempt else "",
                }
            )
        )
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict:
        return self._wait(
            lambda: next((a for a in self.acks if a.get("envelope_id") == envelope_id), None),
            timeout,
            f"ack for {envelope_id}",
        )
