"""The Slack bot end to end: the real bolt app served over HTTP by uvicorn (and Socket Mode),
signed Events API requests, the real Atlas over the session's index, and a fake Slack on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn

from rag.schema import Answer, Turn
from rag.service import Atlas
from rag.settings import RagSettings
from server.slack import APOLOGY, DEFAULT_MAX_BODY_BYTES, PLACEHOLDER, USAGE, SlackSettings, asgi_app, build_app
from server.slack_format import answer_message, unescape
from tests.integration.fake_slack import BOT_ID, BOT_USER_ID, TEAM_ID, Call, FakeSlack, FakeSocketMode

pytestmark = pytest.mark.slow  # the real index (tests/conftest.py builds it once per session)

SECRET = "test-signing-secret"
USER = "UHUMAN1"
HTTP = httpx.Client(timeout=10)  # one client: a new one per request costs more than the bot's ack


FORM = "application/x-www-form-urlencoded"


class RecordingAtlas:
    """The real Atlas, remembering what the bot asked it (question, history) and what it answered."""

    def __init__(self, atlas: Atlas, fail: bool = False, delay: float = 0.0):
        self.atlas = atlas
        self.fail = fail
        self.delay = delay
        self.asked: list[tuple[str, list[Turn], Answer | None]] = []
        self.lock = threading.Lock()

    def ask(self, question: str, history: Sequence[Turn | dict] | None = None) -> Answer:
        answer = None
        try:
            time.sleep(self.delay)
            if self.fail:
                raise RuntimeError("index went away")
            answer = self.atlas.ask(question, history=history)
            return answer
        finally:
            with self.lock:
                self.asked.append((question, list(history or []), answer))

    def facts(self, name: str) -> dict:
        return self.atlas.facts(name)

    def compare(self, names: Sequence[str]) -> dict:
        return self.atlas.compare(names)

    def call_for(self, question: str) -> tuple[str, list[Turn], Answer | None]:
        with self.lock:
            return next(c for c in self.asked if c[0] == question)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake_slack:
        yield fake_slack


@contextmanager
def serve_bot(atlas: object, fake: FakeSlack, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Iterator[str]:
    """build_app + asgi_app under uvicorn on a free loopback port; yields the events URL."""
    settings = SlackSettings(
        slack_bot_token=fake.token,
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        slack_max_body_bytes=max_body_bytes,
    )
    app = asgi_app(build_app(atlas, settings), SECRET, settings.slack_max_body_bytes)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def recorder(atlas: Atlas) -> RecordingAtlas:
    return RecordingAtlas(atlas)


@pytest.fixture(scope="module")
def events_url(recorder: RecordingAtlas, fake: FakeSlack) -> Iterator[str]:
    with serve_bot(recorder, fake) as url:
        yield url


# --- speaking as Slack ---


def sign(body: str, timestamp: str, secret: str = SECRET) -> str:
    """Slack's v0 request signature."""
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()


def send(
    url: str,
    body: str,
    content_type: str = "application/json",
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    headers: dict | None = None,
) -> httpx.Response:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signed = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(body, ts, secret),
        **(headers or {}),
    }
    return HTTP.post(url, content=body, headers=signed)


def envelope(event: dict, event_id: str | None = None) -> str:
    return json.dumps(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": "AATLAS",
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def new_channel(prefix: str = "C") -> str:
    return prefix + uuid.uuid4().hex[:9].upper()


def user_says(
    fake: FakeSlack,
    channel: str,
    text: str,
    *,
    thread_ts: str | None = None,
    kind: str = "app_mention",
    user: str = USER,
) -> dict:
    """Store the message in the fake (so threads hold it) and return the event Slack would send."""
    ts = fake.add_user_message(channel, user, text, thread_ts)
    event = {
        "type": kind,
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "client_msg_id": str(uuid.uuid4()),
        "team": TEAM_ID,
    }
    if kind == "message":
        event["channel_type"] = "im" if channel.startswith("D") else "channel"
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def section_text(blocks: list[dict]) -> str:
    return "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")


def context_texts(blocks: list[dict]) -> list[str]:
    return [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]


# --- tests ---


def test_url_verification_challenge(events_url: str) -> None:
    body = json.dumps({"token": "unused", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"})
    resp = send(events_url, body)
    assert resp.status_code == 200
    assert resp.json()["challenge"] == "3eZbrw1aBm2rZgRNFdxV"


def test_mention_gets_threaded_cited_answer(events_url: str, fake: FakeSlack, recorder: RecordingAtlas) -> None:
    channel = new_channel()
    event = user_says(fake, channel, f"<@{BOT_USER_ID}> What is QLoRA?")
    started = time.perf_counter()
    resp = send(events_url, envelope(event))
    assert resp.status_code == 200
    assert time.perf_counter() - started < 1.0  # acked before the answer exists

    [placeholder] = fake.wait_for("chat.postMessage", channel)
    assert placeholder.params["thread_ts"] == event["ts"]
    assert placeholder.params["text"] == PLACEHOLDER
    [update] = fake.wait_for("chat.update", channel)
    assert update.result["ok"], update.result
    assert update.params["ts"] == placeholder.result["ts"]

    question, history, answer = recorder.call_for("What is QLoRA?")  # the mention was stripped
    assert history == []
    assert answer is not None and answer.answered and answer.citations
    first = min(answer.citations, key=lambda c: c.n)
    blocks = update.params["blocks"]
    body = section_text(blocks)
    if first.url.startswith("http"):
        assert f"<{first.url}|[{first.n}]>" in body
    assert "**" not in body
    sources = [t for t in context_texts(blocks) if t.startswith("*[")]
    assert len(sources) == len({c.n for c in answer.citations})
    assert sources[0].startswith(f"*[{first.n}]*") and first.title.split()[0] in sources[0]
    assert "[1]" in update.params["text"] and "<http" not in update.params["text"]
    # The thread in Slack now holds the question and the answer, nothing else.
    assert [m["ts"] for m in fake.messages[channel]] == [event["ts"], placeholder.result["ts"]]


def test_thread_follow_up_carries_history(events_url: str, fake: FakeSlack, recorder: RecordingAtlas) -> None:
    channel = new_channel()
    first = user_says(fake, channel, f"<@{BOT_USER_ID}> What is Falcon 180B?")
    send(events_url, envelope(first))
    fake.wait_for("chat.update", channel)

    # A colleague chimes in without mentioning the bot (no event), then the follow-up mention.
    fake.add_user_message(
        channel, "UCOLLEAGUE", "I think it is the biggest open model &amp; new", thread_ts=first["ts"]
    )
    follow_up = user_says(fake, channel, f"<@{BOT_USER_ID}> How many parameters does it have?", thread_ts=first["ts"])
    assert send(events_url, envelope(follow_up)).status_code == 200
    _, second = fake.wait_for("chat.update", channel, count=2)
    assert second.result["ok"]

    [replies] = fake.calls_to("conversations.replies", channel)
    assert replies.params["ts"] == first["ts"]
    _, history, _ = recorder.call_for("How many parameters does it have?")
    _, _, first_answer = recorder.call_for("What is Falcon 180B?")
    assert [t.role for t in history] == ["user", "assistant", "user"]
    assert history[0].content == "What is Falcon 180B?"
    assert history[2].content == "I think it is the biggest open model & new"
    assert first_answer is not None
    assert history[1].content == " ".join(unescape(answer_message(first_answer)["text"]).split())
    # The reply went into the same thread.
    posts = fake.calls_to("chat.postMessage", channel)
    assert [p.params["thread_ts"] for p in posts] == [first["ts"], first["ts"]]


def test_direct_message_answered_in_thread(events_url: str, fake: FakeSlack) -> None:
    channel = new_channel("D")
    event = user_says(fake, channel, "What is llama.cpp?", kind="message")
    assert send(events_url, envelope(event)).status_code == 200
    [update] = fake.wait_for("chat.update", channel)
    [post] = fake.calls_to("chat.postMessage", channel)
    assert post.params["thread_ts"] == event["ts"]
    assert update.result["ok"] and update.params["blocks"]


def test_bad_signature_is_rejected(events_url: str, fake: FakeSlack) -> None:
    channel = new_channel()
    event = user_says(fake, channel, f"<@{BOT_USER_ID}> What is QLoRA?")
    assert send(events_url, envelope(event), secret="not-the-secret").status_code == 401
    unsigned = httpx.post(events_url, content=envelope(event), headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    time.sleep(0.5)
    assert fake.calls_to("chat.postMessage", channel) == []


def test_stale_timestamp_is_rejected(events_url: str, fake: FakeSlack) -> None:
    channel = new_channel()
    event = user_says(fake, channel, f"<@{BOT_USER_ID}> What is QLoRA?")
    # Correctly signed, but 10 minutes old: a replayed request.
    assert send(events_url, envelope(event), timestamp=int(time.time()) - 600).status_code == 401
    time.sleep(0.5)
    assert fake.calls_to("chat.postMessage", channel) == []


def test_retries_and_duplicates_are_answered_once(events_url: str, fake: FakeSlack) -> None:
    channel = new_channel()
    event = user_says(fake, channel, f"<@{BOT_USER_ID}> Who developed Vicuna?")
    body = envelope(event)
    assert send(events_url, body).status_code == 200
    retry = send(events_url, body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200
    assert send(events_url, body).status_code == 200  # same event_id, no retry header
    # The same message as a DM event under a new event_id (app_mention + message.im).
    assert send(events_url, envelope({**event, "type": "message", "channel_type": "im"})).status_code == 200
    fake.wait_for("chat.update", channel)
    time.sleep(1.0)
    assert len(fake.calls_to("chat.postMessage", channel)) == 1
    assert len(fake.calls_to("chat.update", channel)) == 1


def test_ignores_own_bot_and_edited_messages(events_url: str, fake: FakeSlack, recorder: RecordingAtlas) -> None:
    channel = new_channel("D")
    own = user_says(fake, channel, "What is QLoRA? (from the bot itself)", kind="message", user=BOT_USER_ID)
    own["bot_id"] = BOT_ID
    other_bot = {
        **user_says(fake, channel, "What is QLoRA? (another bot)", kind="message", user="UOTHERBOT"),
        "bot_id": "BOTHER",
    }
    bot_message = {
        **user_says(fake, channel, "What is QLoRA? (bot_message)", kind="message"),
        "subtype": "bot_message",
        "bot_id": "BOTHER",
    }
    edited = {**user_says(fake, channel, "What is QLoRA? (edited)", kind="message"), "subtype": "message_changed"}
    for event in (own, other_bot, bot_message, edited):
        assert send(events_url, envelope(event)).status_code == 200
    barrier = user_says(fake, channel, "What is Alpaca-LoRA?", kind="message")
    send(events_url, envelope(barrier))
    fake.wait_for("chat.update", channel)
    time.sleep(0.5)
    [post] = fake.calls_to("chat.postMessage", channel)
    assert post.params["thread_ts"] == barrier["ts"]
    assert not [q for q, _, _ in recorder.asked if q.startswith("What is QLoRA? (")]


def test_empty_mention_gets_usage_hint(events_url: str, fake: FakeSlack) -> None:
    channel = new_channel()
    event = user_says(fake, channel, f"<@{BOT_USER_ID}>  ")
    send(events_url, envelope(event))
    [post] = fake.wait_for("chat.postMessage", channel)
    assert post.params["text"] == USAGE and post.params["thread_ts"] == event["ts"]


def test_too_long_question_gets_a_polite_reason(events_url: str, fake: FakeSlack) -> None:
    channel = new_channel()
    event = user_says(fake, channel, f"<@{BOT_USER_ID}> " + "why " * 800)  # over max_question_chars
    send(events_url, envelope(event))
    [update] = fake.wait_for("chat.update", channel)
    assert update.params["text"].startswith("Sorry, I can't answer that: The question is")


def test_slash_command_acks_fast_then_answers(events_url: str, fake: FakeSlack) -> None:
    channel = new_channel()
    body = urlencode(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "channel_id": channel,
            "channel_name": "llms",
            "user_id": USER,
            "user_name": "ada",
            "command": "/ask",
            "text": "What is QLoRA?",
            "api_app_id": "AATLAS",
            "response_url": fake.response_url(channel),
            "trigger_id": "1.2.3",
        }
    )
    started = time.perf_counter()
    resp = send(events_url, body, FORM)
    ack_seconds = time.perf_counter() - started
    assert resp.status_code == 200 and ack_seconds < 3.0
    assert "What is QLoRA?" in resp.text  # the ephemeral "looking it up" ack
    [answer] = fake.wait_for("response_url", channel)
    assert answer.params["response_type"] == "in_channel"
    blocks = answer.params["blocks"]
    assert context_texts(blocks)[0] == f"<@{USER}> asked: What is QLoRA?"
    assert "<https://" in section_text(blocks) and any(t.startswith("*[1]*") for t in context_texts(blocks))


def slash(fake: FakeSlack, channel: str, command: str, text: str) -> str:
    return urlencode(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "channel_id": channel,
            "channel_name": "llms",
            "user_id": USER,
            "user_name": "ada",
            "command": command,
            "text": text,
            "api_app_id": "AATLAS",
            "response_url": fake.response_url(channel),
            "trigger_id": "1.2.3",
        }
    )


def test_compare_and_facts_commands_post_cited_tables(events_url: str, fake: FakeSlack) -> None:
    channel = new_channel()
    resp = send(events_url, slash(fake, channel, "/compare", "Alpaca, Vicuna and Koala"), FORM)
    assert resp.status_code == 200 and "Alpaca, Vicuna, Koala" in resp.text
    [table] = fake.wait_for("response_url", channel)
    assert table.params["response_type"] == "in_channel"
    fields = [f["text"] for b in table.params["blocks"] for f in b.get("fields", [])]
    assert any("Alpaca" in f for f in fields) and any("LLaMA" in f and "[" in f for f in fields)
    assert any(t.startswith("*[1]*") for t in context_texts(table.params["blocks"]))  # numbered sources

    channel = new_channel()
    send(events_url, slash(fake, channel, "/facts", "Vicunaa"), FORM)
    [missing] = fake.wait_for("response_url", channel)
    assert "Closest known: Vicuna" in missing.params["text"]
    one = send(events_url, slash(fake, new_channel(), "/compare", "Alpaca"), FORM)
    assert "Name two or more models" in one.text


def test_failure_becomes_a_polite_message(atlas: Atlas, fake: FakeSlack) -> None:
    with serve_bot(RecordingAtlas(atlas, fail=True), fake) as url:
        channel = new_channel()
        send(url, envelope(user_says(fake, channel, f"<@{BOT_USER_ID}> What is QLoRA?")))
        [update] = fake.wait_for("chat.update", channel)
    assert update.params["text"] == APOLOGY


def test_slow_answers_do_not_delay_the_ack(atlas: Atlas, fake: FakeSlack) -> None:
    with serve_bot(RecordingAtlas(atlas, delay=4.0), fake) as url:
        channel = new_channel()
        started = time.perf_counter()
        response = send(url, envelope(user_says(fake, channel, f"<@{BOT_USER_ID}> What is QLoRA?")))
        acked = time.perf_counter() - started
        [update] = fake.wait_for("chat.update", channel)
    assert response.status_code == 200 and acked < 1.0
    assert update.at - started >= 4.0 and update.result["ok"]


def test_llm_failure_falls_back_with_notice(atlas: Atlas, fake: FakeSlack) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"  # nothing listens here
        broken_llm = Atlas(atlas.index, RagSettings(llm_base_url=dead, use_llm=True, llm_timeout=3))
        with serve_bot(broken_llm, fake) as url:
            channel = new_channel()
            send(url, envelope(user_says(fake, channel, f"<@{BOT_USER_ID}> What is QLoRA?")))
            [update] = fake.wait_for("chat.update", channel)
    notes = context_texts(update.params["blocks"])
    assert notes[0].startswith(":information_source: The LLM endpoint failed")
    assert "<https://" in section_text(update.params["blocks"])


def test_event_to_answer_latency(
    events_url: str, fake: FakeSlack, recorder: RecordingAtlas, capsys: pytest.CaptureFixture
) -> None:
    """Seconds from a signed event leaving 'Slack' to the chat.update reaching it, and the part of
    that which is the bot's own (everything but Atlas.ask): median of 10 questions."""
    questions = [
        "What is QLoRA?",
        "Who built Vicuna?",
        "How large is Falcon 180B?",
        "What is Alpaca?",
        "What license does Llama 2 use?",
        "What is llama.cpp?",
        "What is RedPajama?",
        "What is ChatGLM-6B?",
        "Who released Mistral 7B?",
        "What data was Dolly trained on?",
    ]
    total, acks, overhead = [], [], []
    for question in questions:
        channel = new_channel()
        event = user_says(fake, channel, f"<@{BOT_USER_ID}> {question}")
        started = time.perf_counter()
        send(events_url, envelope(event))
        acks.append(time.perf_counter() - started)
        [update] = fake.wait_for("chat.update", channel)
        total.append(update.at - started)
        answer = recorder.asked[-1][2]
        assert answer is not None
        overhead.append(total[-1] - answer.timings["total"])
    median = statistics.median
    with capsys.disabled():
        print(
            f"\nslack event -> chat.update: median {median(total):.3f}s (min {min(total):.3f}, max "
            f"{max(total):.3f}); ack median {median(acks) * 1000:.1f} ms; bot overhead beyond "
            f"Atlas.ask median {median(overhead) * 1000:.1f} ms"
        )
    assert median(total) < 10 and median(overhead) < 0.5


CLI = [sys.executable, "-c", "from server.cli import app; app()"]


def run_cli(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    return {**env, **extra}


def test_cli_missing_tokens_fail_cleanly() -> None:
    socket_mode = run_cli("slack", env=clean_env())
    assert socket_mode.returncode == 2
    assert "SLACK_BOT_TOKEN" in socket_mode.stderr and "SLACK_APP_TOKEN" in socket_mode.stderr
    http_mode = run_cli("slack", "--http", env=clean_env(SLACK_BOT_TOKEN="xoxb-test"))
    assert http_mode.returncode == 2 and "SLACK_SIGNING_SECRET" in http_mode.stderr
    for result in (socket_mode, http_mode):
        assert "Traceback" not in result.stderr


def test_cli_rejected_token_fails_cleanly(fake: FakeSlack) -> None:
    env = clean_env(SLACK_BOT_TOKEN="xoxb-wrong", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.api_url)
    result = run_cli("slack", "--http", env=env)
    assert result.returncode == 2 and "invalid_auth" in result.stderr and "Traceback" not in result.stderr


@contextmanager
def bot_process(*args: str, env: dict, log_path: Path) -> Iterator[subprocess.Popen]:
    """`llm-atlas slack ...` as a child process, its output in log_path; stopped afterwards."""
    with log_path.open("w") as log:
        proc = subprocess.Popen([*CLI, "slack", *args], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(10)


def wait_for_start(proc: subprocess.Popen, log: Path, ready: Callable[[], bool], timeout: float = 90) -> None:
    """Until `ready()`; fails with the bot's own output if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def serving(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def bot_env(fake: FakeSlack, **extra: str) -> dict:
    return clean_env(SLACK_BOT_TOKEN=fake.token, SLACK_API_URL=fake.api_url, LLM_ATLAS_USE_LLM="false", **extra)


def test_cli_http_mode_answers(fake: FakeSlack, bundled_index: Path, tmp_path: Path) -> None:
    """`llm-atlas slack --http` as a process: the same endpoint, started the way users start it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "bot.log"
    env = bot_env(fake, SLACK_SIGNING_SECRET=SECRET)
    args = ("--http", "--port", str(port), "--index", str(bundled_index))
    with bot_process(*args, env=env, log_path=log) as proc:
        wait_for_start(proc, log, lambda: serving(f"http://127.0.0.1:{port}/healthz"))
        channel = new_channel()
        send(
            f"http://127.0.0.1:{port}/slack/events",
            envelope(user_says(fake, channel, f"<@{BOT_USER_ID}> What is QLoRA?")),
        )
        [update] = fake.wait_for("chat.update", channel)
    assert update.result["ok"] and "<https://" in section_text(update.params["blocks"])


def test_cli_socket_mode_answers(fake: FakeSlack, bundled_index: Path, tmp_path: Path) -> None:
    """`llm-atlas slack` (Socket Mode): connects to the WebSocket URL from apps.connections.open,
    acks envelopes, answers events and /ask."""
    pytest.importorskip("websockets")

    log = tmp_path / "bot.log"
    env = bot_env(fake, SLACK_APP_TOKEN=fake.app_token)
    with FakeSocketMode() as slack_ws:
        fake.socket_mode_url = slack_ws.url
        with bot_process("--index", str(bundled_index), env=env, log_path=log) as proc:
            wait_for_start(proc, log, lambda: slack_ws.connected)
            update = socket_mode_session(fake, slack_ws)
    assert update.result["ok"] and "<https://" in section_text(update.params["blocks"])


def socket_mode_session(fake: FakeSlack, slack_ws: FakeSocketMode) -> Call:
    """A mention, its retry and an /ask, as Socket Mode envelopes; returns the mention's chat.update."""
    channel = new_channel()
    event = user_says(fake, channel, f"<@{BOT_USER_ID}> What is QLoRA?")
    payload = json.loads(envelope(event))
    envelope_id = slack_ws.push("events_api", payload)
    assert slack_ws.wait_ack(envelope_id) == {"envelope_id": envelope_id}
    retry_id = slack_ws.push("events_api", payload, retry_attempt=1)
    assert slack_ws.wait_ack(retry_id) == {"envelope_id": retry_id}
    [update] = fake.wait_for("chat.update", channel)
    [post] = fake.calls_to("chat.postMessage", channel)  # the retry was not answered
    assert post.params["thread_ts"] == event["ts"]

    command = {
        "command": "/ask",
        "text": "What is llama.cpp?",
        "user_id": USER,
        "channel_id": channel,
        "team_id": TEAM_ID,
        "response_url": fake.response_url(channel),
        "trigger_id": "1.2",
    }
    envelope_id = slack_ws.push("slash_commands", command)
    assert "What is llama.cpp?" in slack_ws.wait_ack(envelope_id)["payload"]["text"]
    [answer] = fake.wait_for("response_url", channel)
    assert answer.params["response_type"] == "in_channel"
    return update
