"""Fixtures for the HTTP service tests: one real index per session and real uvicorn servers
on free loopback ports, driven over HTTP. Test modules import what they use from here."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ingest.pipeline import run_ingest
from ingest.settings import IngestSettings
from rag.service import Atlas
from rag.settings import RagSettings
from server.http import AtlasFactory, create_app
from server.settings import ServerSettings

EN_QUESTION = "What is the context length of Llama 2?"
ZH_QUESTION = "ChatGLM-6B 需要多少显存？"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rag_settings(index_dir: Path, **overrides: Any) -> RagSettings:
    # No LLM unless a test asks for one, whatever LLM_ATLAS_* says on this machine.
    values: dict[str, Any] = {"index_dir": index_dir, "llm_base_url": None, "use_llm": None}
    return RagSettings(**{**values, **overrides})


def server_settings(**overrides: Any) -> ServerSettings:
    values: dict[str, Any] = {
        "api_key": None,
        "rate_limit_per_minute": 0,
        "max_body_bytes": 64_000,
        "max_question_chars": 2000,
    }
    return ServerSettings(**{**values, **overrides})


class LiveServer:
    """uvicorn serving an app in a background thread, on a free loopback port."""

    def __init__(self, app: Any, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    def start(self, wait_ready: bool = True, timeout: float = 120.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)
        if wait_ready:
            wait_for(f"{self.url}/readyz", timeout=deadline - time.monotonic())
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def wait_for(url: str, timeout: float = 60.0, status: int = 200) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=5)
            if last.status_code == status:
                return last
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status} in {timeout:.0f} s (last: {last!r})")


@contextmanager
def running(
    atlas: Atlas | AtlasFactory, settings: ServerSettings | None = None, wait_ready: bool = True
) -> Iterator[LiveServer]:
    live = LiveServer(create_app(atlas, settings or server_settings())).start(wait_ready=wait_ready)
    try:
        yield live
    finally:
        live.stop()


def assert_error(response: httpx.Response, status: int, *words: str) -> dict:
    """A JSON error of OpenAI's shape with that status, whose message has these words; no trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]["message"]
    assert message and "Traceback" not in response.text
    for word in words:
        assert word.lower() in message.lower(), message
    return response.json()


def copy_index(index_dir: Path, to: Path) -> Path:
    """A copy of a built index to damage or update; `symlinks` keeps `current` a link to its version."""
    shutil.copytree(index_dir, to, symlinks=True)
    assert (to / "current").is_symlink()
    return to


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream."""
    events = []
    for block in text.split("\n\n"):
        event, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((event, "\n".join(data)))
    return events


def json_events(text: str) -> list[tuple[str, Any]]:
    return [(event, data if data == "[DONE]" else json.loads(data)) for event, data in sse_events(text)]


@pytest.fixture(scope="session")
def server_index_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled corpus, indexed once per session (about 20 s): tests/conftest.py's index when
    there is one, so a full run builds it only once."""
    try:
        return request.getfixturevalue("bundled_index")
    except pytest.FixtureLookupError:
        index_dir = tmp_path_factory.mktemp("server-index")
        run_ingest(None, IngestSettings(), index_dir)
        return index_dir


@pytest.fixture(scope="session")
def server_atlas(server_index_dir: Path) -> Atlas:
    return Atlas.load(rag_settings(server_index_dir), server_index_dir)


@pytest.fixture(scope="session")
def live_server(server_atlas: Atlas) -> Iterator[LiveServer]:
    """An open server (no key, no rate limit) shared by the tests that do not change settings."""
    with running(server_atlas) as server:
        yield server


@pytest.fixture
def server_client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        yield http
