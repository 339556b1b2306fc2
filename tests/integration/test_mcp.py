"""The MCP server, driven with the official SDK's own clients over the real index: over stdio (the server
spawned as MCP clients spawn it), over streamable HTTP with its bearer key, and in-process for how the
Atlas is loaded. Each subprocess loads the index (a few seconds), so each test does several calls."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from ingest.index import IndexMissing
from rag.service import Atlas
from server.http import LOAD_FAILED
from server.mcp_tools import build_server

pytestmark = pytest.mark.slow  # the real index (tests/conftest.py builds it once per session)

REPO = Path(__file__).resolve().parents[2]
TOOLS = {"ask", "search", "facts", "compare", "get_source"}
KEY = "secret"
# What the SDK sends first; enough for the key check, which runs before any MCP handling.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def server_env(index_dir: Path, **overrides: str) -> dict[str, str]:
    """LLM_ATLAS_* for a server subprocess: this index, no LLM, no key, whatever this machine sets;
    the embedder stays the one the index was built with."""
    env = {"LLM_ATLAS_INDEX_DIR": str(index_dir), "LLM_ATLAS_LLM_BASE_URL": "", "LLM_ATLAS_API_KEY": ""}
    for name in ("LLM_ATLAS_EMBEDDER", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return {**env, **overrides}


def data(result: CallToolResult) -> dict[str, Any]:
    """A successful call's structured content, which its text content mirrors as JSON."""
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    assert json.loads(result.content[0].text) == result.structured_content  # Chinese and all, not mangled
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    """A refused call: a tool error with a readable one-line message, no traceback."""
    assert result.is_error, result.structured_content
    text = " ".join(block.text for block in result.content)
    assert text and "Traceback" not in text
    return text


@asynccontextmanager
async def stdio_session(index_dir: Path, errlog: Any, code: str | None = None) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", code or "from server.mcp_tools import run; run()"],
        env=server_env(index_dir),
        cwd=REPO,
    )
    # The SDK's client ends the subprocess when the block exits (stdin closed, then terminate, then kill).
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def assert_wire_clean(caplog: pytest.LogCaptureFixture) -> None:
    # Anything else the server wrote to stdout would reach the client as a line it cannot parse.
    assert not [r for r in caplog.records if "Failed to parse" in r.getMessage()]


# ---------------------------------------------------------------- stdio


async def test_stdio_tools_give_cited_checkable_answers(bundled_index: Path, caplog: pytest.LogCaptureFixture) -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        async with stdio_session(bundled_index, errlog) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == TOOLS
            for tool in tools.values():
                assert tool.description and tool.input_schema["type"] == "object", tool.name
                assert tool.input_schema["properties"] and tool.output_schema, tool.name
                assert all(p.get("description") for p in tool.input_schema["properties"].values()), tool.name
            assert tools["ask"].input_schema["required"] == ["question"]
            assert tools["ask"].input_schema["properties"]["language"]["anyOf"][0]["enum"] == ["en", "zh"]

            answer = data(await session.call_tool("ask", {"question": "What is QLoRA?"}))
            assert answer["answered"] and answer["mode"] == "extractive" and "[1]" in answer["answer"]
            assert {"notice", "contexts", "query"} <= set(answer)
            assert answer["citations"]
            for citation in answer["citations"]:
                assert {"title", "url", "section", "quote", "doc_id", "start", "end"} <= set(citation)
                whole = data(await session.call_tool("get_source", {"doc_id": citation["doc_id"]}))
                assert whole["text"][citation["start"] : citation["end"]] == citation["quote"]
                assert (whole["start"], whole["end"], whole["length"]) == (0, len(whole["text"]), len(whole["text"]))
                assert whole["title"] == citation["title"] and whole["language"] in ("en", "zh")
                part = data(
                    await session.call_tool(
                        "get_source", {"doc_id": citation["doc_id"], "start": citation["start"], "end": citation["end"]}
                    )
                )
                assert part["text"] == citation["quote"] and part["length"] == len(whole["text"])
                assert whole["text"][: citation["start"]].endswith(part["before"])
                assert whole["text"][citation["end"] :].startswith(part["after"])
                assert part["before"] or part["after"]

            zh = data(await session.call_tool("ask", {"question": "ChatGLM-6B 有多少参数？", "language": "zh"}))
            assert zh["answered"] and "62" in zh["answer"] and "亿" in zh["answer"]

            found = data(await session.call_tool("search", {"query": "ChatGLM-6B 显存", "k": 3}))
            assert found["query"] == "ChatGLM-6B 显存" and 1 <= len(found["passages"]) <= 3
            assert any("ChatGLM" in p["text"] for p in found["passages"])
            first = found["passages"][0]
            assert {"doc_id", "title", "url", "section", "start", "end", "text"} <= set(first)
            source = data(await session.call_tool("get_source", {"doc_id": first["doc_id"]}))
            assert source["text"][first["start"] : first["end"]] == first["text"]

            sheet = data(await session.call_tool("facts", {"model": "ChatGLM-6B"}))
            assert sheet["model"] == "ChatGLM-6B" and sheet["facts"]
            parameters = [f for f in sheet["facts"] if f["attribute"] == "parameters"]
            assert any("亿" in f["value"] for f in parameters), parameters
            for fact in sheet["facts"]:
                assert fact["value"] in fact["citation"]["quote"], fact
            only = data(await session.call_tool("facts", {"model": "ChatGLM-6B", "attributes": ["parameters"]}))
            assert only["facts"] and {f["attribute"] for f in only["facts"]} == {"parameters"}

            table = data(await session.call_tool("compare", {"models": ["Alpaca", "Vicuna"]}))
            assert table["models"] == ["Alpaca", "Vicuna"] and table["unknown"] == []
            rows = {row["attribute"]: row for row in table["rows"]}
            assert set(rows) == set(table["attributes"]) and "base_model" in rows
            assert rows["base_model"]["cells"]["Alpaca"] and rows["base_model"]["cells"]["Vicuna"]
        errlog.seek(0)
        log = errlog.read()
    assert "MCP server on stdio" in log and "Index loaded" in log  # logs go to stderr
    assert_wire_clean(caplog)


# The server as started by a client, with an Atlas loader that prints to stdout (as a progress bar or a
# library might): the print must land on stderr, not on the protocol channel.
NOISY_SERVER = """
import os
import rag.service as service
load = service.Atlas.load.__func__
def noisy(cls, *args, **kwargs):
    print("loading: 50%", flush=True)
    os.write(1, b"native noise\\n")
    return load(cls, *args, **kwargs)
service.Atlas.load = classmethod(noisy)
from server.mcp_tools import run
run()
"""


async def test_stdio_errors_are_readable_tool_errors(bundled_index: Path, caplog: pytest.LogCaptureFixture) -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        async with stdio_session(bundled_index, errlog, NOISY_SERVER) as session:
            for question in ("", "   "):
                assert "empty" in error_text(await session.call_tool("ask", {"question": question}))
            assert "limit" in error_text(await session.call_tool("ask", {"question": "x" * 5000}))
            assert "k" in error_text(await session.call_tool("ask", {"question": "What is QLoRA?", "k": 0}))
            assert "question" in error_text(await session.call_tool("ask", {}))
            assert "empty" in error_text(await session.call_tool("search", {"query": " "}))

            unknown = error_text(await session.call_tool("facts", {"model": "Vicunna"}))
            assert "Vicunna" in unknown and "Closest known" in unknown and "Vicuna" in unknown
            assert "Known: developer" in error_text(
                await session.call_tool("facts", {"model": "Vicuna", "attributes": ["colour"]})
            )
            table = data(await session.call_tool("compare", {"models": ["Alpaca", "Vicunna"]}))
            assert table["models"] == ["Alpaca"]
            assert table["unknown"][0]["query"] == "Vicunna" and "Vicuna" in table["unknown"][0]["closest"]
            assert "Closest known" in error_text(await session.call_tool("compare", {"models": ["Foo-9", "Bar-9"]}))

            assert "No document 'no-such-doc'" in error_text(
                await session.call_tool("get_source", {"doc_id": "no-such-doc"})
            )
            doc_id = data(await session.call_tool("search", {"query": "QLoRA", "k": 1}))["passages"][0]["doc_id"]
            assert "not inside" in error_text(
                await session.call_tool("get_source", {"doc_id": doc_id, "start": 10, "end": 10**9})
            )
            assert "not inside" in error_text(
                await session.call_tool("get_source", {"doc_id": doc_id, "start": 10, "end": 5})
            )
            # The server is still answering after all of that.
            assert data(await session.call_tool("ask", {"question": "What is QLoRA?"}))["answered"]
        errlog.seek(0)
        log = errlog.read()
    assert "loading: 50%" in log and "native noise" in log  # diverted to stderr
    assert_wire_clean(caplog)


# ---------------------------------------------------------------- streamable HTTP


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def http_server(bundled_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`run(http=True)` in a subprocess with LLM_ATLAS_API_KEY set; yields its endpoint."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_ATLAS_")}
    env.update(server_env(bundled_index, LLM_ATLAS_API_KEY=KEY))
    log_path = tmp_path_factory.mktemp("mcp-http") / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", f"from server.mcp_tools import run; run(http=True, port={port})"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:  # up once the key check answers
            try:
                if httpx.post(url, json=INITIALIZE, timeout=5).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the MCP HTTP server did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def test_http_tools_with_the_key(http_server: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http,
        streamable_http_client(http_server, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
        answer = data(await session.call_tool("ask", {"question": "How was Vicuna trained?"}))
        assert answer["answered"] and answer["citations"]
        sheet = data(await session.call_tool("facts", {"model": "ChatGLM-6B"}))
        assert sheet["model"] == "ChatGLM-6B" and sheet["facts"]
        assert "Closest known" in error_text(await session.call_tool("facts", {"model": "GPT-5"}))


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}, {"Authorization": f"Bearer {KEY}x"}],
    ids=["no header", "wrong key", "not bearer", "longer key"],
)
def test_http_refuses_without_the_key(http_server: str, headers: dict[str, str]) -> None:
    response = httpx.post(http_server, json=INITIALIZE, headers={**MCP_HEADERS, **headers}, timeout=10)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["error"]["message"]


def test_http_key_lets_the_handshake_through(http_server: str) -> None:
    # The same request with the key reaches the MCP server: the refusals above are the key check's.
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {KEY}"}
    response = httpx.post(http_server, json=INITIALIZE, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert "serverInfo" in response.text and "llm-atlas" in response.text


# ---------------------------------------------------------------- loading the Atlas (in-process)


async def test_load_failure_is_reported_and_retried(atlas: Atlas) -> None:
    calls: list[int] = []

    def factory() -> Atlas:
        calls.append(1)
        if len(calls) == 1:
            raise IndexMissing("No index at /srv/private/index. Run `llm-atlas ingest`.")
        return atlas

    async with Client(build_server(factory, preload=False)) as client:
        message = error_text(await client.call_tool("search", {"query": "QLoRA"}))
        assert "No index at /srv/private/index" in message and "llm-atlas ingest" in message
        # The next call loads again (the index was built meanwhile) and answers.
        assert data(await client.call_tool("search", {"query": "QLoRA"}))["passages"]
    assert len(calls) == 2

    def missing() -> Atlas:
        raise IndexMissing("No index at /srv/private/index. Run `llm-atlas ingest`.")

    async with Client(build_server(missing, detailed_errors=False, preload=False)) as client:
        message = error_text(await client.call_tool("ask", {"question": "What is QLoRA?"}))
        assert LOAD_FAILED in message and "/srv/private" not in message  # remote clients are not told paths


async def test_atlas_is_loaded_once_off_the_event_loop(atlas: Atlas) -> None:
    release = threading.Event()
    calls: list[int] = []

    def slow_factory() -> Atlas:
        calls.append(1)
        assert release.wait(30)
        return atlas

    async with Client(build_server(slow_factory)) as client:  # preload starts when the server does
        results: list[CallToolResult] = []

        async def search() -> None:
            results.append(await client.call_tool("search", {"query": "Vicuna", "k": 2}))

        async with anyio.create_task_group() as tasks:
            for _ in range(4):
                tasks.start_soon(search)
            with anyio.fail_after(10):  # the loop still serves requests while the index loads
                await anyio.sleep(0.2)
                assert len((await client.list_tools()).tools) == len(TOOLS)
            assert not results
            release.set()
    assert len(calls) == 1
    assert len(results) == 4 and all(len(data(r)["passages"]) == 2 for r in results)
