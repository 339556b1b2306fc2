"""A running server keeps answering while `llm-atlas ingest --add` updates the index it serves:
real uvicorn, 16 concurrent clients over HTTP, the real command in a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from rag.service import Atlas

pytest.register_assert_rewrite("tests.integration.conftest_server", "conftest_server")
try:  # tests/ is a package in some layouts and not in others
    from tests.integration import conftest_server as srv
except ModuleNotFoundError:
    import conftest_server as srv

pytest_plugins = [srv.__name__]  # the session index

CLIENTS = 16
NEW_FILE = "zorblax-7b.md"
NEW_DOC = """# Zorblax-7B

Zorblax-7B is a language model trained on 3T tokens of ocean-science text by the Kelp Institute.
It has a context length of 8192 tokens and was released under the Apache 2.0 licence.
"""
QUESTIONS = [srv.EN_QUESTION, srv.ZH_QUESTION, "How was Vicuna trained?", "What is Alpaca?"]


def ingest(folder: Path, index_dir: Path) -> dict:
    """`llm-atlas ingest FOLDER --index DIR --add --json` in its own process, as an operator runs it."""
    command = [
        sys.executable,
        "-c",
        "from server.cli import app; app()",
        "ingest",
        str(folder),
        "--index",
        str(index_dir),
        "--add",
        "--json",
    ]
    # The environment as is: the same LLM_ATLAS_* settings (embedder, chunking) the index was built with.
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def versions(index_dir: Path) -> set[str]:
    return {p.name for p in index_dir.glob("v-*") if p.is_dir()}


def test_requests_never_fail_while_ingest_switches_the_index(tmp_path: Path, server_index_dir: Path) -> None:
    index_dir = srv.copy_index(server_index_dir, tmp_path / "index")
    docs = tmp_path / "new-docs"
    docs.mkdir()
    (docs / NEW_FILE).write_text(NEW_DOC, encoding="utf-8")
    atlas = Atlas.load(srv.rag_settings(index_dir), index_dir)
    doc_ids = [d["doc_id"] for d in atlas.index.documents()]

    with srv.running(atlas) as server:
        before = httpx.get(f"{server.url}/readyz").json()
        old = before["version"]
        assert before["status"] == "ready" and versions(index_dir) == {old}

        stop = threading.Event()
        ingesting = threading.Event()
        results: list[tuple[str, int, bool]] = []  # (what, status, sent while the ingest ran)
        lock = threading.Lock()

        def client(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=120) as http:
                i = n
                while not stop.is_set():
                    during = ingesting.is_set()
                    if i % 2:
                        what, response = "ask", http.post("/v1/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]})
                    else:
                        what, response = "source", http.get(f"/v1/sources/{doc_ids[i % len(doc_ids)]}")
                    with lock:
                        results.append((what, response.status_code, during))
                    i += 1

        with ThreadPoolExecutor(CLIENTS) as pool:
            running = [pool.submit(client, n) for n in range(CLIENTS)]
            time.sleep(1.0)  # every client has requests in flight before the ingest starts
            ingesting.set()
            report = ingest(docs, index_dir)
            ingesting.clear()
            switched_at = len(results)
            deadline = time.monotonic() + 60
            while len(results) < switched_at + 4 * CLIENTS and time.monotonic() < deadline:
                time.sleep(0.05)  # requests after the switch, served from the new version
            stop.set()
            for future in running:
                future.result()  # a client that raised (a dropped connection) fails the test here

        statuses = Counter((what, status) for what, status, _ in results)
        during = [r for r in results if r[2]]
        print(
            f"{len(results)} requests, {len(during)} while the ingest ran, "
            f"{len(results) - switched_at} after it: {dict(statuses)}"
        )
        assert during and len(results) - switched_at >= 4 * CLIENTS
        assert {status for _, status, _ in results} == {200}, statuses

        new = report["version"]
        assert new != old and report["changed_documents"] == 1
        ready = httpx.get(f"{server.url}/readyz").json()
        assert ready["status"] == "ready" and ready["version"] == new
        assert ready["documents"] == before["documents"] + 1

        answer = httpx.post(
            f"{server.url}/v1/ask", json={"question": "How many tokens was Zorblax-7B trained on?"}, timeout=60
        ).json()
        assert answer["answered"] and "3T" in answer["answer"], answer
        # Named by its place in what was ingested (the folder and file name), not by its path on the server.
        cited = [c for c in answer["citations"] if c["url"].split("/")[-1] == NEW_FILE]
        assert cited and not cited[0]["url"].startswith("/") and str(tmp_path) not in json.dumps(answer)
        assert cited and cited[0]["title"] == "Zorblax-7B", answer["citations"]
        source = httpx.get(f"{server.url}/v1/sources/{cited[0]['doc_id']}").json()
        assert source["text"][cited[0]["start"] : cited[0]["end"]] == cited[0]["quote"]

        # The old version: the first ingest could not delete it (the server still held it when the
        # ingest finished, so it stays); the server lets go of it once its last request on it is done.
        # The next ingest (here: nothing new, so no new version) then deletes it.
        assert versions(index_dir) <= {old, new}
        again = ingest(docs, index_dir)
        assert again["up_to_date"] and again["version"] == new
        assert versions(index_dir) == {new}, "the old version is still there: something still holds it"
        assert httpx.post(f"{server.url}/v1/ask", json={"question": srv.EN_QUESTION}, timeout=60).status_code == 200
