"""A local server that speaks the OpenAI chat-completions protocol (JSON and SSE streaming),
standing in for a hosted LLM. It records every request (with when it came) and replies with a
scripted text; streamed, one chunk per word, and it can stall or break off part way."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class Script:
    reply: str = "NO_ANSWER"
    delay: float = 0.0
    chunk_delay: float = 0.0  # between streamed chunks: a model that streams slowly
    status: int = 200
    stall_after: int | None = None  # streamed chunks sent before the model goes silent (for stall_seconds)
    stall_seconds: float = 30.0
    drop_after: int | None = None  # streamed chunks sent before the connection breaks
    requests: list[dict] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)  # when each streamed chunk left (time.monotonic)


def make_app(script: Script) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await request.json()
        script.requests.append({"body": body, "auth": request.headers.get("authorization"), "at": time.monotonic()})
        if script.delay:
            time.sleep(script.delay)  # blocks like a stuck model would
        if script.status != 200:
            return JSONResponse(
                {"error": {"message": "model crashed", "type": "server_error"}}, status_code=script.status
            )
        created = int(time.time())
        if not body.get("stream"):
            return {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": created,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": script.reply}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }

        def events() -> Iterator[str]:
            words = script.reply.split(" ")
            for i, word in enumerate(words):
                if i == script.stall_after:
                    time.sleep(script.stall_seconds)
                if i == script.drop_after:
                    raise ConnectionAbortedError("the model broke off")  # uvicorn drops the connection
                time.sleep(script.chunk_delay)
                delta = {"role": "assistant", "content": word} if i == 0 else {"content": " " + word}
                chunk = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                script.sent.append(time.monotonic())
                yield f"data: {json.dumps(chunk)}\n\n"
            end = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            yield f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def openai_server(script: Script) -> Iterator[str]:
    """Serve the script on a loopback port; yields the base URL (…/v1)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(script), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(5)
