"""The guard in front of bolt in HTTP mode: body cap (413), signature before parsing (401), malformed
signed bodies (400). Real uvicorn + bolt on loopback, as in test_slack.py; raw sockets where httpx
would hide what the server does with a body it should not read."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest

from rag.service import Atlas
from tests.integration.fake_slack import BOT_USER_ID, TEAM_ID, FakeSlack
from tests.integration.test_slack import (
    HTTP,
    SECRET,
    USER,
    RecordingAtlas,
    envelope,
    new_channel,
    send,
    serve_bot,
    user_says,
)

pytestmark = pytest.mark.slow  # the real index, like test_slack.py

FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake_slack:
        yield fake_slack


@pytest.fixture(scope="module")
def asked(atlas: Atlas) -> RecordingAtlas:
    return RecordingAtlas(atlas)


@pytest.fixture(scope="module")
def url(asked: RecordingAtlas, slack: FakeSlack) -> Iterator[str]:
    with serve_bot(asked, slack) as events_url:
        yield events_url


@pytest.fixture
def untouched(asked: RecordingAtlas, slack: FakeSlack) -> Iterator[None]:
    """The test's requests must reach neither the Atlas nor Slack."""
    questions, calls = len(asked.asked), len(slack.calls)
    yield
    time.sleep(0.3)  # an answer would be on bolt's listener thread by now
    assert len(asked.asked) == questions and len(slack.calls) == calls


def sign_raw(body: bytes, ts: bytes) -> bytes:
    """Slack's v0 signature over the raw bytes (test_slack.sign() takes text)."""
    return b"v0=" + hmac.new(SECRET.encode(), b"v0:" + ts + b":" + body, hashlib.sha256).hexdigest().encode()


def now() -> bytes:
    return str(int(time.time())).encode()


def raw_headers(ts: bytes, signature: bytes, content_type: bytes = b"application/json") -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), (b"x-slack-request-timestamp", ts), (b"x-slack-signature", signature)]


def assert_refused(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert len(resp.content) < 200 and "Traceback" not in resp.text


def flood(url: str, total: int, *, chunked: bool) -> tuple[int, int, float]:
    """POST `total` bytes as fast as the server takes them, reading its answer meanwhile on the same
    socket (httpx would only read after sending everything). Returns (status, bytes sent, seconds)."""
    parts = urlsplit(url)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sent = 0

    def pump() -> None:
        nonlocal sent
        piece = b"{" * 65536
        try:
            sock.sendall(head)
            while sent < total:
                data = piece[: total - sent]
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                sent += len(data)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server hung up on us: what a capped endpoint does

    started = time.perf_counter()
    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    reply = b""
    try:
        while b"\r\n" not in reply and (data := sock.recv(65536)):
            reply += data
    except OSError:
        pass
    elapsed = time.perf_counter() - started
    sender.join(30)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split(b" ", 2)[1]), sent, elapsed


# --- 401: nothing is parsed before the signature holds ---


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"type": "event_callback", "event": ', b"application/json"),  # cut-off JSON
        (b"\xff\xfe{}", b"application/json"),  # not UTF-8
        (b"payload=%7Bnot-json", b"application/x-www-form-urlencoded"),  # an interactivity payload that is no JSON
        (b"text=caf\xe9&command=/ask", b"application/x-www-form-urlencoded"),  # Latin-1, not UTF-8
    ],
)
def test_unsigned_malformed_bodies_are_401(url: str, untouched: None, body: bytes, content_type: bytes) -> None:
    assert_refused(HTTP.post(url, content=body, headers=[(b"content-type", content_type)]), 401)
    # Wrongly signed but with a fresh timestamp: the same, however broken the body.
    resp = HTTP.post(url, content=body, headers=raw_headers(now(), b"v0=" + b"0" * 64, content_type))
    assert_refused(resp, 401)


@pytest.mark.parametrize("ts", [b"abc", b"12.5", b"", b"1e9", b"\xb2", b"+" + now(), b"-" + now()])
def test_non_numeric_timestamp_is_401(url: str, untouched: None, ts: bytes) -> None:
    body = b"{broken"
    # Signed over the very timestamp, so only the timestamp check can refuse it.
    assert_refused(HTTP.post(url, content=body, headers=raw_headers(ts, sign_raw(body, ts))), 401)


@pytest.mark.parametrize("age", [600, -600, 301])
def test_stale_or_future_timestamp_is_401_even_for_a_broken_body(url: str, untouched: None, age: int) -> None:
    ts, body = str(int(time.time()) - age).encode(), b"payload=%7Bnot-json"
    resp = HTTP.post(
        url, content=body, headers=raw_headers(ts, sign_raw(body, ts), b"application/x-www-form-urlencoded")
    )
    assert_refused(resp, 401)


@pytest.mark.parametrize(
    "signature",
    [None, b"", b"v0=" + b"f" * 64, b"v1=" + b"0" * 64, b"v0=\xe9\xe9", b"garbage"],
)
def test_missing_or_wrong_signature_is_401(url: str, untouched: None, signature: bytes | None) -> None:
    headers = [h for h in raw_headers(now(), signature or b"") if signature is not None or h[0] != b"x-slack-signature"]
    assert_refused(HTTP.post(url, content=b"{not json", headers=headers), 401)


def test_signature_by_another_secret_is_401(url: str, slack: FakeSlack, untouched: None) -> None:
    event = envelope(user_says(slack, new_channel(), f"<@{BOT_USER_ID}> What is QLoRA?"))
    assert_refused(send(url, event, secret="someone-elses-secret"), 401)


# --- 413: the cap holds before anything is read in full ---


def test_fifty_megabytes_by_content_length_is_413_without_reading_it(url: str, untouched: None) -> None:
    status, sent, seconds = flood(url, FIFTY_MB, chunked=False)
    assert status == 413
    assert seconds < 5
    assert sent < FIFTY_MB // 2  # the server hung up instead of reading it all


def test_fifty_megabytes_chunked_is_413_without_reading_it(url: str, untouched: None) -> None:
    status, sent, seconds = flood(url, FIFTY_MB, chunked=True)
    assert status == 413
    assert seconds < 5
    assert sent < FIFTY_MB // 2


def test_cap_is_a_setting_and_holds_for_signed_bodies(atlas: Atlas, slack: FakeSlack) -> None:
    with serve_bot(RecordingAtlas(atlas), slack, max_body_bytes=2_000) as small_url:
        padded = json.dumps({"token": "unused", "challenge": "c1", "type": "url_verification", "pad": "z" * 3_000})
        assert_refused(send(small_url, padded), 413)  # signed, but over the cap
        fits = json.dumps({"token": "unused", "challenge": "c2", "type": "url_verification", "pad": "z" * 1_000})
        resp = send(small_url, fits)
        assert resp.status_code == 200 and resp.json()["challenge"] == "c2"


def test_cap_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.slack import SlackSettings

    monkeypatch.delenv("LLM_ATLAS_SLACK_MAX_BODY_BYTES", raising=False)
    assert SlackSettings().slack_max_body_bytes == 1024 * 1024
    monkeypatch.setenv("LLM_ATLAS_SLACK_MAX_BODY_BYTES", "4096")
    assert SlackSettings().slack_max_body_bytes == 4096


# --- 400: signed, but not something Slack sends ---


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"type": "event_callback", "event": ', b"application/json"),
        (b"[1, 2, 3]", b"application/json"),  # JSON, but no object
        (b"null", b"application/json"),
        (b'"event_callback"', b"application/json"),
        (b'{"type": "event_callback", "authorizations": 5}', b"application/json"),  # bolt reads ids from it
        (b"\xff\xfe{}", b"application/json"),
        (b"payload=%7Bnot-json", b"application/x-www-form-urlencoded"),
        (b"payload=" + quote("[1]").encode(), b"application/x-www-form-urlencoded"),
        (b"text=caf\xe9&command=/ask", b"application/x-www-form-urlencoded"),
    ],
)
def test_signed_malformed_body_is_400(url: str, untouched: None, body: bytes, content_type: bytes) -> None:
    ts = now()
    assert_refused(HTTP.post(url, content=body, headers=raw_headers(ts, sign_raw(body, ts), content_type)), 400)


# --- and Slack itself still gets through ---


def test_signed_requests_still_work_after_the_refusals(url: str, slack: FakeSlack) -> None:
    challenge = send(url, json.dumps({"token": "unused", "challenge": "ok-after-all", "type": "url_verification"}))
    assert challenge.status_code == 200 and challenge.json()["challenge"] == "ok-after-all"
    channel = new_channel()
    assert send(url, envelope(user_says(slack, channel, f"<@{BOT_USER_ID}> What is QLoRA?"))).status_code == 200
    [update] = slack.wait_for("chat.update", channel)
    assert update.result["ok"] and update.params["blocks"]
    command = urlencode(
        {
            "token": "unused",
            "team_id": TEAM_ID,
            "channel_id": channel,
            "user_id": USER,
            "command": "/ask",
            "text": "",
            "response_url": slack.response_url(channel),
        }
    )
    usage = send(url, command, "application/x-www-form-urlencoded")
    assert usage.status_code == 200 and "/ask" in usage.text
