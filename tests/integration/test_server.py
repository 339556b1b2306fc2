"""The HTTP service over real HTTP: a real index, real uvicorn on loopback, httpx and the openai client."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from ingest.index import IndexMissing
from rag.service import Atlas
from server.http import public_location

pytest.register_assert_rewrite("tests.integration.conftest_server", "conftest_server")
try:  # tests/ is a package in some layouts and not in others
    from tests.integration import conftest_server as srv
except ModuleNotFoundError:
    import conftest_server as srv

pytest_plugins = [srv.__name__]  # the session index, the shared server and clients

PUBLIC_KEYS = {"answer", "answered", "citations", "contexts"}


assert_error = srv.assert_error


def check_citations(answer: dict) -> None:
    """Every [n] in the text has its citation, and each citation's quote is its document's text[start:end]."""
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])}
    assert numbers <= {c["n"] for c in answer["citations"]}


# ---------------------------------------------------------------- health, docs, the native API


def test_health_ready_and_docs(server_client: httpx.Client) -> None:
    assert server_client.get("/healthz").json() == {"status": "ok"}
    ready = server_client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["chunks"] > 100 and ready["documents"] > 10
    docs = server_client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = server_client.get("/openapi.json").json()["paths"]
    assert set(paths) >= {"/v1/ask", "/v1/ask/stream", "/v1/chat/completions", "/v1/models", "/v1/sources/{doc_id}"}


def test_ask_returns_the_ask_json_object_plus_timings(server_client: httpx.Client, server_atlas: Atlas) -> None:
    response = server_client.post("/v1/ask", json={"question": srv.EN_QUESTION, "llm": False})
    assert response.status_code == 200, response.text
    body = response.json()
    direct = server_atlas.ask(srv.EN_QUESTION, use_llm=False)
    # `ask --json`'s object, field for field, except that a document's path on the server (a seed
    # without a URL) is shown as its corpus label.
    expected = direct.public()
    for item in expected["contexts"] + expected["citations"]:
        item["url"] = public_location(item["url"])
    assert set(body) >= PUBLIC_KEYS
    assert body["answer"] == expected["answer"] and body["answered"] is True
    assert body["contexts"] == expected["contexts"]
    assert body["citations"] == expected["citations"]
    assert body["mode"] == "extractive"
    assert body["timings"]["total"] > 0 and body["timings"]["server"] >= body["timings"]["total"]
    assert body["citations"], "an answered question cites something"
    check_citations(body)


def test_cited_quote_is_in_the_source_document(server_client: httpx.Client) -> None:
    body = server_client.post("/v1/ask", json={"question": srv.EN_QUESTION}).json()
    citation = body["citations"][0]
    source = server_client.get(f"/v1/sources/{citation['doc_id']}")
    assert source.status_code == 200
    document = source.json()
    assert document["doc_id"] == citation["doc_id"] and document["title"] == citation["title"]
    assert document["text"][citation["start"] : citation["end"]] == citation["quote"]
    assert "sha256" not in document  # only the documented fields


def test_unknown_source_is_a_404_json(server_client: httpx.Client) -> None:
    assert_error(server_client.get("/v1/sources/no-such-doc"), 404, "no-such-doc")


def test_chinese_question(server_client: httpx.Client) -> None:
    body = server_client.post("/v1/ask", json={"question": srv.ZH_QUESTION}).json()
    assert body["answered"] and body["citations"]
    assert re.search(r"[\u4e00-\u9fff]", body["answer"] + body["citations"][0]["quote"])
    check_citations(body)


def test_follow_up_with_history(server_client: httpx.Client) -> None:
    first = server_client.post("/v1/ask", json={"question": "Who released Llama 2?"}).json()
    history = [{"role": "user", "content": "Who released Llama 2?"}, {"role": "assistant", "content": first["answer"]}]
    follow_up = server_client.post("/v1/ask", json={"question": "What is its context length?", "history": history})
    assert follow_up.status_code == 200, follow_up.text
    body = follow_up.json()
    assert body["answer"] and body["query"]
    check_citations(body)


def test_ask_stream_events_add_up_to_the_answer(server_client: httpx.Client) -> None:
    with server_client.stream("POST", "/v1/ask/stream", json={"question": srv.EN_QUESTION}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = srv.json_events(text)
    deltas = [data["text"] for event, data in events if event == "delta"]
    answers = [data for event, data in events if event == "answer"]
    assert len(answers) == 1 and events[-1][0] == "answer"
    # No LLM here: the extractive answer is made at once, so it comes in one piece (test_streaming.py has the LLM).
    assert deltas == [answers[0]["answer"]] and answers[0]["mode"] == "extractive"
    assert answers[0]["citations"][0]["doc_id"]


def test_refused_question_is_refused_before_the_stream_starts(server_client: httpx.Client) -> None:
    assert_error(server_client.post("/v1/ask/stream", json={"question": "   "}), 422, "empty")


# ---------------------------------------------------------------- the OpenAI-compatible API


@pytest.fixture
def openai_client(live_server: srv.LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", max_retries=0, timeout=60)


def test_openai_client_lists_the_model(openai_client: openai.OpenAI) -> None:
    assert [m.id for m in openai_client.models.list()] == ["llm-atlas"]
    assert openai_client.models.retrieve("llm-atlas").id == "llm-atlas"


def test_openai_client_non_streaming(openai_client: openai.OpenAI, server_atlas: Atlas) -> None:
    completion = openai_client.chat.completions.create(
        model="llm-atlas",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": srv.EN_QUESTION}],
    )
    assert completion.object == "chat.completion" and completion.model == "llm-atlas"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    text = choice.message.content
    answer = server_atlas.ask(srv.EN_QUESTION)
    assert text.startswith(answer.answer)
    assert "\n\nSources:\n[1] " in text and answer.citations[0].title in text
    assert completion.usage.total_tokens > 0
    assert completion.model_extra["citations"][0]["quote"] == answer.citations[0].quote


def test_openai_client_streaming_matches_non_streaming(openai_client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": srv.EN_QUESTION}]
    whole = openai_client.chat.completions.create(model="llm-atlas", messages=messages)
    chunks = list(
        openai_client.chat.completions.create(
            model="llm-atlas", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finished] == ["stop"]
    assert finished[0].model_extra["citations"]
    assert chunks[-1].usage and chunks[-1].usage.total_tokens > 0


def test_openai_conversation_keeps_history(openai_client: openai.OpenAI) -> None:
    first = openai_client.chat.completions.create(
        model="llm-atlas", messages=[{"role": "user", "content": "Who released Llama 2?"}]
    )
    follow_up = openai_client.chat.completions.create(
        model="llm-atlas",
        messages=[
            {"role": "user", "content": "Who released Llama 2?"},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": [{"type": "text", "text": "What is its context length?"}]},
        ],
    )
    assert follow_up.choices[0].message.content
    assert follow_up.model_extra["citations"]


def test_raw_stream_ends_with_done(server_client: httpx.Client) -> None:
    body = {"model": "llm-atlas", "stream": True, "messages": [{"role": "user", "content": srv.ZH_QUESTION}]}
    with server_client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    assert text.endswith("data: [DONE]\n\n")
    events = srv.json_events(text)
    assert all(data["object"] == "chat.completion.chunk" for _, data in events[:-1])
    content = "".join(d["choices"][0]["delta"].get("content", "") for _, d in events[:-1])
    assert "来源：\n[1] " in content  # a Chinese answer gets a Chinese sources heading


def test_openai_errors(openai_client: openai.OpenAI, server_client: httpx.Client) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        openai_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert_error(
        server_client.post(
            "/v1/chat/completions", json={"model": "llm-atlas", "messages": [{"role": "system", "content": "hello"}]}
        ),
        422,
        "no user message",
    )
    assert_error(server_client.post("/v1/chat/completions", json={"model": "llm-atlas", "messages": []}), 422)


# ---------------------------------------------------------------- auth, limits, errors


def test_api_key_is_required_when_set(server_atlas: Atlas) -> None:
    with srv.running(server_atlas, srv.server_settings(api_key="s3cret-key")) as server:
        url = server.url
        assert httpx.get(f"{url}/healthz").status_code == 200  # probes stay open
        assert httpx.get(f"{url}/").status_code == 200  # the page itself asks for the key
        missing = httpx.post(f"{url}/v1/ask", json={"question": srv.EN_QUESTION})
        assert_error(missing, 401, "API key")
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer s3cret-kez"})
        assert_error(wrong, 401)
        assert_error(httpx.get(f"{url}/v1/sources/x", headers={"Authorization": "Basic s3cret-key"}), 401)
        right = httpx.post(
            f"{url}/v1/ask",
            json={"question": srv.EN_QUESTION},
            headers={"Authorization": "Bearer s3cret-key"},
            timeout=60,
        )
        assert right.status_code == 200
        good = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret-key", max_retries=0)
        assert (
            good.chat.completions.create(model="llm-atlas", messages=[{"role": "user", "content": srv.EN_QUESTION}])
            .choices[0]
            .message.content
        )
        bad = openai.OpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()


def test_too_long_question_is_a_clear_422(server_client: httpx.Client) -> None:
    body = assert_error(server_client.post("/v1/ask", json={"question": "x" * 2001}), 422, "2001", "2000")
    assert body["error"]["type"] == "invalid_request_error"
    assert_error(
        server_client.post(
            "/v1/chat/completions", json={"model": "llm-atlas", "messages": [{"role": "user", "content": "问" * 2001}]}
        ),
        422,
        "limit is 2000",
    )


def test_server_question_limit_can_be_stricter(server_atlas: Atlas) -> None:
    with srv.running(server_atlas, srv.server_settings(max_question_chars=50)) as server:
        assert_error(httpx.post(f"{server.url}/v1/ask", json={"question": "y" * 51}), 422, "limit is 50")


def test_bad_json_and_bad_fields_are_422_json(server_client: httpx.Client) -> None:
    bad = server_client.post(
        "/v1/ask", content=b'{"question": "unterminated', headers={"Content-Type": "application/json"}
    )
    assert_error(bad, 422, "not valid JSON")
    assert_error(server_client.post("/v1/ask", json={"question": "hi", "k": 0}), 422, "k")
    robot = [{"role": "robot", "content": ""}]
    assert_error(server_client.post("/v1/ask", json={"question": "hi", "history": robot}), 422)
    assert_error(server_client.post("/v1/ask", json={"question": "hi", "surprise": 1}), 422, "surprise")
    assert_error(server_client.post("/v1/ask", json=["question"]), 422)


def test_large_bodies_are_413(server_atlas: Atlas) -> None:
    with srv.running(server_atlas, srv.server_settings(max_body_bytes=2_000)) as server:
        big = {"question": "hi", "history": [{"role": "user", "content": "z" * 3_000}]}
        assert_error(httpx.post(f"{server.url}/v1/ask", json=big), 413, "2000 bytes")

        def chunked():  # no Content-Length: the limit still holds
            for _ in range(10):
                yield b" " * 500

        assert_error(
            httpx.post(f"{server.url}/v1/ask", content=chunked(), headers={"Content-Type": "application/json"}), 413
        )
        small = httpx.post(f"{server.url}/v1/ask", json={"question": srv.EN_QUESTION}, timeout=60)
        assert small.status_code == 200


def test_rate_limit_is_429_per_client(server_atlas: Atlas) -> None:
    with srv.running(server_atlas, srv.server_settings(rate_limit_per_minute=3)) as server:
        statuses = [httpx.get(f"{server.url}/v1/models").status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        limited = httpx.get(f"{server.url}/v1/models")
        assert_error(limited, 429, "too many")
        assert int(limited.headers["retry-after"]) >= 1
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # probes are not limited


def test_dead_llm_falls_back_to_the_extractive_answer(server_index_dir: Path) -> None:
    dead = f"http://127.0.0.1:{srv.free_port()}/v1"  # nothing listens there
    atlas = Atlas.load(srv.rag_settings(server_index_dir, llm_base_url=dead, llm_timeout=5), server_index_dir)
    with srv.running(atlas) as server:
        started = time.monotonic()
        response = httpx.post(f"{server.url}/v1/ask", json={"question": srv.EN_QUESTION, "llm": True}, timeout=120)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["answered"] and body["mode"] == "extractive" and body["citations"]
        assert "extractive" in body["notice"] and "LLM" in body["notice"]
        assert time.monotonic() - started < 60
        chat = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0).chat
        messages = [{"role": "user", "content": srv.EN_QUESTION}]
        completion = chat.completions.create(model="llm-atlas", messages=messages, extra_body={"llm": True})
        assert completion.model_extra["notice"] and "extractive" in completion.choices[0].message.content


def test_twenty_concurrent_requests(server_client: httpx.Client, live_server: srv.LiveServer) -> None:
    questions = [srv.EN_QUESTION, srv.ZH_QUESTION, "Which license does Falcon-7B use?", "What is Alpaca?"]
    expected = {q: server_client.post("/v1/ask", json={"question": q}).json()["answer"] for q in questions}

    def one(i: int) -> tuple[str, httpx.Response]:
        question = questions[i % len(questions)]
        with httpx.Client(base_url=live_server.url, timeout=120) as http:
            if i % 5 == 4:
                return question, http.post(
                    "/v1/chat/completions",
                    json={"model": "llm-atlas", "messages": [{"role": "user", "content": question}]},
                )
            return question, http.post("/v1/ask", json={"question": question})

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert [r.status_code for _, r in results] == [200] * 20
    for question, response in results:
        body = response.json()
        text = body["answer"] if "answer" in body else body["choices"][0]["message"]["content"]
        assert text.startswith(expected[question])  # shared state is not mixed up between requests


class Failing:
    """A core that breaks, to see what an unexpected error looks like from outside."""

    def __init__(self, atlas: Atlas):
        self.index, self.settings, self.document = atlas.index, atlas.settings, atlas.document
        self.health = atlas.health  # /readyz stays 200: only answering breaks

    def ask(self, *args, **kwargs):
        raise RuntimeError("secret internal detail")

    def ask_stream(self, *args, **kwargs):
        yield "partial "
        raise RuntimeError("secret internal detail")


def test_unexpected_errors_are_json_without_a_trace(server_atlas: Atlas) -> None:
    with srv.running(Failing(server_atlas)) as server:
        response = httpx.post(f"{server.url}/v1/ask", json={"question": srv.EN_QUESTION})
        assert_error(response, 500, "internal error")
        assert "secret internal detail" not in response.text
        # uvicorn drops the connection after an unhandled error; keep-alive clients must be told.
        assert response.headers["connection"] == "close"
        streamed = httpx.post(f"{server.url}/v1/ask/stream", json={"question": srv.EN_QUESTION}).text
        assert srv.json_events(streamed)[-1][0] == "error" and "secret" not in streamed


def test_readyz_is_503_until_the_index_is_loaded(server_atlas: Atlas) -> None:
    release = threading.Event()

    def slow_load() -> Atlas:
        release.wait(30)
        return server_atlas

    with srv.running(slow_load, wait_ready=False) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        loading = httpx.get(f"{server.url}/readyz")
        assert loading.status_code == 503 and loading.json()["status"] == "loading"
        assert_error(httpx.post(f"{server.url}/v1/ask", json={"question": srv.EN_QUESTION}), 503, "loading")
        release.set()
        srv.wait_for(f"{server.url}/readyz", timeout=30)


def test_a_failed_load_is_reported(tmp_path: Path) -> None:
    def missing() -> Atlas:
        raise IndexMissing(f"No index at {tmp_path}. Rebuild it with: llm-atlas ingest --index {tmp_path}")

    with srv.running(missing, wait_ready=False) as server:
        failed = srv.wait_for(f"{server.url}/readyz", status=503)
        deadline = time.monotonic() + 10
        while failed.json()["status"] != "failed" and time.monotonic() < deadline:
            failed = httpx.get(f"{server.url}/readyz")
        assert "llm-atlas ingest" in failed.json()["error"]
        assert_error(httpx.get(f"{server.url}/v1/sources/x"), 503, "llm-atlas ingest")


def test_chat_page_is_served_with_a_strict_policy(server_client: httpx.Client) -> None:
    page = server_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/web/app.js", "/web/style.css"):
        assert server_client.get(asset).status_code == 200
    assert "innerHTML" not in server_client.get("/web/app.js").text


# ---------------------------------------------------------------- the command line


def test_serve_command_warns_without_a_key_on_a_public_interface(server_index_dir: Path) -> None:
    port = srv.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_ATLAS_")}
    command = [
        str(Path(sys.executable).with_name("llm-atlas")),
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--index",
        str(server_index_dir),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        srv.wait_for(f"http://127.0.0.1:{port}/readyz", timeout=120)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": srv.EN_QUESTION}, timeout=60)
        assert answer.status_code == 200 and answer.json()["citations"]
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "WARNING" in output and "no API key" in output and "LLM_ATLAS_API_KEY" in output
