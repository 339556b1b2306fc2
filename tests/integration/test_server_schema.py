"""The served OpenAPI schema says what the server does: for requests at its edges, a body the schema
calls valid is answered (200) and one it calls invalid is refused (422), over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.http import string_schemas

jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="comes with schemathesis (the test extra)")

pytest.register_assert_rewrite("tests.integration.conftest_server", "conftest_server")
try:  # tests/ is a package in some layouts and not in others
    from tests.integration import conftest_server as srv
except ModuleNotFoundError:
    import conftest_server as srv

pytest_plugins = [srv.__name__]  # the session index and Atlas

LIMIT = 50  # a server with a short question limit, so over-long questions are cheap to send
Q = "What is Alpaca?"


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


ASK_BODIES: dict[str, dict[str, Any]] = {
    "question": {"question": Q},
    "empty": {"question": ""},
    "spaces": {"question": "  \t\n"},
    # Python's strip() and ECMA's \s disagree on these; the schema must say what the server does.
    "python-only spaces": {"question": "\x1c\x1f\x85\u3000"},
    "byte order mark": {"question": "\ufeff"},
    "at the limit": {"question": "x" * LIMIT},
    "over the limit": {"question": "x" * (LIMIT + 1)},
    "llm false": {"question": Q, "llm": False},
    "llm 0": {"question": Q, "llm": 0},
    "llm 'true'": {"question": Q, "llm": "true"},
    "k 3": {"question": Q, "k": 3},
    "k '3'": {"question": Q, "k": "3"},
    "k 3.0": {"question": Q, "k": 3.0},  # an integer to JSON Schema
    "k 3.5": {"question": Q, "k": 3.5},
    "100 turns": {"question": Q, "history": [{"role": "user", "content": "hi"}] * 100},
    "101 turns": {"question": Q, "history": [{"role": "user", "content": "hi"}] * 101},
    "tool turn": {"question": Q, "history": [{"role": "tool", "content": "x"}]},
    "unknown field": {"question": Q, "temperature": 0},
}

CHAT_BODIES: dict[str, dict[str, Any]] = {
    "user": {"messages": [user(Q)]},
    "only a tool message": {"messages": [{"role": "tool", "content": Q}]},
    "only a system message": {"messages": [{"role": "system", "content": Q}]},
    "empty user message": {"messages": [user("")]},
    "blank user message": {"messages": [user(" \u3000")]},
    "question then an empty one": {"messages": [user(Q), user("")]},
    "text part": {"messages": [user([{"type": "text", "text": Q}])]},
    "image part only": {"messages": [user([{"type": "image_url", "image_url": {"url": "x"}}])]},
    "tool, then user": {"messages": [{"role": "tool", "content": "result"}, user(Q)]},
    "user at the limit": {"messages": [user("y" * LIMIT)]},
    "user over the limit": {"messages": [user("y" * (LIMIT + 1))]},
    "earlier user over the limit": {
        "messages": [user("y" * (LIMIT + 1)), {"role": "assistant", "content": "a"}, user(Q)]
    },
    "long assistant turn": {"messages": [user(Q), {"role": "assistant", "content": "z" * 3 * LIMIT}, user(Q)]},
    "stream 'yes'": {"messages": [user(Q)], "stream": "yes"},
    "sampling parameters": {"messages": [user(Q)], "temperature": 0.2, "max_tokens": 10},
    "unknown role": {"messages": [{"role": "robot", "content": Q}, user(Q)]},
}


@pytest.fixture(scope="module")
def strict_server(server_atlas: Any) -> Iterator[srv.LiveServer]:
    with srv.running(server_atlas, srv.server_settings(max_question_chars=LIMIT)) as server:
        yield server


@pytest.fixture(scope="module")
def served_schema(strict_server: srv.LiveServer) -> dict[str, Any]:
    return httpx.get(f"{strict_server.url}/openapi.json").json()


def validator(schema: dict[str, Any], component: str) -> Any:
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{component}", "components": schema["components"]}
    )


@pytest.mark.parametrize(
    ("path", "component", "name", "body"),
    [("/v1/ask", "AskRequest", name, body) for name, body in ASK_BODIES.items()]
    + [("/v1/chat/completions", "ChatRequest", name, body) for name, body in CHAT_BODIES.items()],
    ids=[f"ask: {n}" for n in ASK_BODIES] + [f"chat: {n}" for n in CHAT_BODIES],
)
def test_schema_and_server_agree(
    strict_server: srv.LiveServer,
    served_schema: dict[str, Any],
    path: str,
    component: str,
    name: str,
    body: dict[str, Any],
) -> None:
    valid = validator(served_schema, component).is_valid(body)
    response = httpx.post(f"{strict_server.url}{path}", json=body, timeout=60)
    assert response.status_code == (200 if valid else 422), (
        f"the schema calls {name!r} {'valid' if valid else 'invalid'}; the server said {response.text[:300]}"
    )


def test_the_limits_in_the_schema_are_this_servers(served_schema: dict[str, Any], live_server: srv.LiveServer) -> None:
    schemas = served_schema["components"]["schemas"]
    question = schemas["AskRequest"]["properties"]["question"]
    assert question["maxLength"] == LIMIT and question["minLength"] == 1 and question["pattern"]
    assert schemas["AskRequest"]["properties"]["history"]["maxItems"] == 100
    for component, field in (("UserMessage", "content"), ("UserContentPart", "text")):
        assert [s["maxLength"] for s in string_schemas(schemas[component]["properties"][field])] == [LIMIT]
    assert "contains" in schemas["ChatRequest"]["properties"]["messages"]
    default = httpx.get(f"{live_server.url}/openapi.json").json()
    assert default["components"]["schemas"]["AskRequest"]["properties"]["question"]["maxLength"] == 2000


def test_the_schema_says_whether_the_key_is_needed(server_atlas: Any, live_server: srv.LiveServer) -> None:
    # No key set: the bearer header is optional, and the schema says so; with a key it is required.
    open_security = httpx.get(f"{live_server.url}/openapi.json").json()["paths"]["/v1/ask"]["post"]["security"]
    assert {} in open_security
    with srv.running(server_atlas, srv.server_settings(api_key="k3y")) as keyed:
        schema = httpx.get(f"{keyed.url}/openapi.json").json()
        assert schema["paths"]["/v1/ask"]["post"]["security"] == [{"HTTPBearer": []}]
        assert httpx.post(f"{keyed.url}/v1/ask", json={"question": Q}).status_code == 401
