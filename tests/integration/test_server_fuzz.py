"""Property-based API fuzzing with schemathesis, from the app's own OpenAPI schema, over real HTTP,
with every check schemathesis has: no 5xx, statuses, content types, headers and bodies as
declared, schema-valid requests accepted and invalid ones refused, and the API key enforced."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the API fuzz needs `pip install schemathesis`")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS, is_check_class, load_all_checks  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

pytest.register_assert_rewrite("tests.integration.conftest_server", "conftest_server")
try:  # tests/ is a package in some layouts and not in others
    from tests.integration import conftest_server as srv
except ModuleNotFoundError:
    import conftest_server as srv

pytest_plugins = [srv.__name__]  # the session index and Atlas

load_all_checks()
# `--checks all`; check classes (none are built in today) run anyway, as response checks.
ALL_CHECKS = [check for check in CHECKS.get_all() if not is_check_class(check)]
KEY = "fuzz-key"
# A body over max_body_bytes (64 000) is refused with 413 before it is read, as the schema's responses
# say; JSON Schema cannot state a byte limit, so a generated body that large, valid or not, gets 413.
# That refuses it: these are schemathesis's default lists for both checks, with 413 added.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx")
                ]
            },
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
            },
        }
    }
)
# Per operation and mode: enough to reach every field's edges, small enough for CI on 2 cores (LLM off;
# about 20 s in all).
EXAMPLES = 50
OPERATIONS = [
    ("POST", "/v1/ask"),
    ("POST", "/v1/ask/stream"),
    ("GET", "/v1/sources/{doc_id}"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model}"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/facts/{model}"),
    ("POST", "/v1/compare"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
]
# The probes take no input at all (not even the key), so there is no invalid request to make of them.
NO_INPUT = {("GET", "/healthz"), ("GET", "/readyz")}
RUNS = [
    pytest.param(method, path, mode, id=f"{method} {path} {label}")
    for method, path in OPERATIONS
    for mode, label in [(GenerationMode.POSITIVE, "valid"), (GenerationMode.NEGATIVE, "invalid")]
    if mode is GenerationMode.POSITIVE or (method, path) not in NO_INPUT
]


@pytest.fixture(scope="module")
def keyed_server(server_atlas) -> Iterator[srv.LiveServer]:
    # With a key, so that `ignored_auth` has something to check: /v1/* must refuse a missing or wrong one.
    with srv.running(server_atlas, srv.server_settings(api_key=KEY)) as server:
        yield server


def test_every_operation_is_fuzzed(keyed_server: srv.LiveServer) -> None:
    paths = httpx.get(f"{keyed_server.url}/openapi.json").json()["paths"]
    assert sorted((method.upper(), path) for path, ops in paths.items() for method in ops) == sorted(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), RUNS)
def test_no_server_errors_and_responses_match_the_schema(
    keyed_server: srv.LiveServer, method: str, path: str, mode: GenerationMode
) -> None:
    # schemathesis.pytest.from_fixture does not work with pytest 9, so the strategy is driven by hand.
    schema = schemathesis.openapi.from_url(f"{keyed_server.url}/openapi.json", config=CONFIG)
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        case.call_and_validate(checks=ALL_CHECKS, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)

    fuzz()
