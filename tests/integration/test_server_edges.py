"""The HTTP service at its edges, over real HTTP: text that is not text, what a response may show
of the server (no paths), and readiness that tells the truth when the index cannot answer."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from corpus import CORPUS_DIR
from rag.service import Atlas

pytest.register_assert_rewrite("tests.integration.conftest_server", "conftest_server")
try:  # tests/ is a package in some layouts and not in others
    from tests.integration import conftest_server as srv
except ModuleNotFoundError:
    import conftest_server as srv

pytest_plugins = [srv.__name__]  # the session index, the shared server and clients

JSON = {"Content-Type": "application/json"}
BAD = "Vicuna \\ud800 trained?"  # a JSON escape for a lone surrogate: valid JSON, not valid text
USER = '{"role": "user", "content": "How was Vicuna trained?"}'


# ---------------------------------------------------------------- 1. lone surrogates


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/ask", f'{{"question": "{BAD}"}}', ["question"]),
        ("/v1/ask/stream", f'{{"question": "{BAD}"}}', ["question"]),
        (
            "/v1/chat/completions",
            f'{{"model": "llm-atlas", "messages": [{{"role": "user", "content": "{BAD}"}}]}}',
            ["messages", 0, "user", "content", "string"],
        ),
        (
            "/v1/chat/completions",
            f'{{"stream": true, "messages": [{{"role": "user", "content": "{BAD}"}}]}}',
            ["messages", 0, "user", "content", "string"],
        ),
        (
            "/v1/ask",
            f'{{"question": "Who made it?", "history": [{{"role": "user", "content": "{BAD}"}}]}}',
            ["history", 0, "content"],
        ),
        # Messages the core never sees are checked too: the server must never hold such text.
        (
            "/v1/chat/completions",
            f'{{"messages": [{{"role": "system", "content": "{BAD}"}}, {USER}]}}',
            ["messages", 0, "system", "content", "string"],
        ),
        (
            "/v1/chat/completions",
            f'{{"messages": [{{"role": "user", "content": [{{"type": "text", "text": "{BAD}"}}]}}]}}',
            ["messages", 0, "user", "content", "list", 0, "text"],
        ),
        (
            "/v1/chat/completions",
            f'{{"messages": [{USER}, {{"role": "assistant", "content": "{BAD}"}}, {USER}]}}',
            ["messages", 1, "assistant", "content", "string"],
        ),
        # Echoed in the 404 message before, which then failed to encode: a 500 and a dropped connection.
        ("/v1/chat/completions", f'{{"model": "{BAD}", "messages": [{USER}]}}', ["model"]),
    ],
    ids=["ask", "stream", "chat", "chat-stream", "history", "system", "content-part", "assistant", "model"],
)
def test_lone_surrogates_are_a_clear_422_at_the_edge(
    server_client: httpx.Client, path: str, body: str, loc: list
) -> None:
    response = server_client.post(path, content=body.encode(), headers=JSON)
    error = srv.assert_error(response, 422, "lone surrogate")["error"]
    assert error["details"][0]["loc"] == ["body", *loc]  # refused by the request model, not deep inside
    assert "connection" not in response.headers  # a 4xx keeps the connection...
    assert server_client.get("/v1/models").status_code == 200  # ...and the same client goes on using it


def test_a_surrogate_echoed_in_an_error_message_is_replaced(server_client: httpx.Client) -> None:
    # A dict key cannot be a field, so pydantic's message quotes it; the reply must still encode.
    response = server_client.post("/v1/ask", content=b'{"question": "hi", "\\udfff": 1}', headers=JSON)
    srv.assert_error(response, 422)
    assert server_client.get("/v1/models").status_code == 200


# ---------------------------------------------------------------- 2. no server paths in responses


def server_paths(index_dir: Path) -> list[str]:
    return sorted({str(index_dir), str(index_dir.resolve()), str(CORPUS_DIR), str(CORPUS_DIR.resolve())})


def test_answers_and_sources_show_no_server_paths(
    server_client: httpx.Client, server_atlas: Atlas, server_index_dir: Path
) -> None:
    bodies: list[str] = []
    urls: set[str] = set()
    for question in [
        "How was Vicuna trained?",
        "ziya 是基于什么模型训练的？",
        "类ChatGPT模型有哪些？",
        srv.EN_QUESTION,
    ]:
        answer = server_client.post("/v1/ask", json={"question": question})
        assert answer.status_code == 200, answer.text
        bodies.append(answer.text)
        urls |= {c["url"] for c in answer.json()["citations"] + answer.json()["contexts"]}
        chat = server_client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]})
        bodies.append(chat.text)
    # Seeds without a URL are what showed the path; the test means nothing unless some are cited.
    labels = {u for u in urls if not u.startswith("http")}
    assert labels and all(u.startswith("corpus/seeds/") for u in labels), urls
    assert any(label in body for label in labels for body in bodies[1::2])  # the chat's sources list
    for document in server_atlas.index.documents():
        source = server_client.get(f"/v1/sources/{document['doc_id']}")
        assert source.status_code == 200 and "source" not in source.json()
        assert not source.json()["url"].startswith("/")
        bodies.append(source.text)
    for body in bodies:
        for path in server_paths(server_index_dir):
            assert path not in body


def damage_store(index_dir: Path) -> None:
    """Garble the current version's store in place, keeping its size (so only reading it tells)."""
    store = index_dir / "current" / "store.sqlite"
    store.write_bytes(os.urandom(store.stat().st_size))


@pytest.mark.parametrize("problem", ["missing", "damaged"])
def test_a_failed_load_shows_no_server_paths(tmp_path: Path, server_index_dir: Path, problem: str) -> None:
    index_dir = tmp_path / "index"
    if problem == "damaged":
        damage_store(srv.copy_index(server_index_dir, index_dir))

    with srv.running(lambda: Atlas.load(srv.rag_settings(index_dir), index_dir), wait_ready=False) as server:
        failed = srv.wait_for(f"{server.url}/readyz", status=503)
        deadline = time.monotonic() + 30
        while failed.json()["status"] != "failed" and time.monotonic() < deadline:
            time.sleep(0.1)
            failed = httpx.get(f"{server.url}/readyz")
        assert failed.json()["status"] == "failed" and "llm-atlas ingest" in failed.json()["error"]
        ask = httpx.post(f"{server.url}/v1/ask", json={"question": srv.EN_QUESTION})
        srv.assert_error(ask, 503, "failed to load")
        for body in (failed.text, ask.text, httpx.get(f"{server.url}/v1/sources/x").text):
            for secret in [*server_paths(index_dir), str(tmp_path), "sqlite", "faiss", "IndexCorrupt", "IndexMissing"]:
                assert secret.lower() not in body.lower(), body


# ---------------------------------------------------------------- 3. readiness that tells the truth


def test_readyz_reports_the_version_and_503_once_the_store_is_damaged(tmp_path: Path, server_index_dir: Path) -> None:
    index_dir = srv.copy_index(server_index_dir, tmp_path / "index")
    atlas = Atlas.load(srv.rag_settings(index_dir), index_dir)
    with srv.running(atlas) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "version": os.readlink(index_dir / "current"),
            "documents": atlas.index.manifest["documents"],
            "chunks": len(atlas.index),
        }
        doc_id = atlas.index.documents()[0]["doc_id"]
        assert http.post("/v1/ask", json={"question": srv.EN_QUESTION}).status_code == 200

        damage_store(index_dir)  # what a bad disk, or someone editing the index by hand, does

        unready = http.get("/readyz")
        assert unready.status_code == 503 and unready.json()["status"] == "unavailable"
        assert "llm-atlas ingest" in unready.json()["error"]
        ask = http.post("/v1/ask", json={"question": srv.EN_QUESTION})
        srv.assert_error(ask, 503, "index cannot answer")
        responses = [
            unready,
            ask,
            http.post("/v1/ask/stream", json={"question": srv.ZH_QUESTION}),
            http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": srv.EN_QUESTION}]}),
            http.get(f"/v1/sources/{doc_id}"),
        ]
        for response in responses:
            assert response.status_code == 503, response.text
            for secret in [*server_paths(index_dir), str(tmp_path), "DatabaseError", "Traceback"]:
                assert secret not in response.text


def test_readyz_is_503_when_the_vectors_file_is_gone(tmp_path: Path, server_index_dir: Path) -> None:
    index_dir = srv.copy_index(server_index_dir, tmp_path / "index")
    atlas = Atlas.load(srv.rag_settings(index_dir), index_dir)
    with srv.running(atlas) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        (index_dir / "current" / "vectors.npy").unlink()  # a restart could not load this version
        unready = httpx.get(f"{server.url}/readyz")
        assert unready.status_code == 503 and unready.json()["status"] == "unavailable", unready.text
        assert str(index_dir) not in unready.text and "vectors.npy" not in unready.text
