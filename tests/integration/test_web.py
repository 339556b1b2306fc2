"""The chat page in a real headless browser (Debian's chromium, driven by Playwright) on the real server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (.ci/browser.sh installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (.ci/browser.sh installs it)")

from rag.schema import Answer, Citation  # noqa: E402
from rag.service import Atlas  # noqa: E402

pytest.register_assert_rewrite("tests.integration.conftest_server", "conftest_server")
try:  # tests/ is a package in some layouts and not in others
    from tests.integration import conftest_server as srv
except ModuleNotFoundError:
    import conftest_server as srv

pytest_plugins = [srv.__name__]  # the session index and the shared server

# Without the background-networking flags chromium keeps dialing Google, which this network refuses.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Records the text of the newest answer at every change, to see that it arrives in pieces.
RECORD_RENDERS = """
window.__renders = [];
new MutationObserver(() => {
  const answers = document.querySelectorAll('.msg.assistant .text');
  if (answers.length) window.__renders.push(answers[answers.length - 1].textContent);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: sync_api.Browser) -> Iterator[sync_api.Page]:
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(60_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(RECORD_RENDERS)
    yield page
    context.close()
    assert not errors, errors


def ask(page: sync_api.Page, question: str) -> sync_api.Locator:
    """Type a question, press Enter and wait for the finished answer; returns its message."""
    count = page.locator(".msg.assistant").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    answer = page.locator(".msg.assistant").nth(count)
    answer.locator(".meta").wait_for()  # written once the final `answer` event is in
    return answer


def test_ask_see_the_answer_stream_in_and_open_a_citation(page: sync_api.Page, live_server: srv.LiveServer) -> None:
    expected = httpx.post(f"{live_server.url}/v1/ask", json={"question": srv.EN_QUESTION}, timeout=60).json()
    page.goto(live_server.url)
    answer = ask(page, srv.EN_QUESTION)

    assert page.locator(".msg.user").first.text_content() == srv.EN_QUESTION
    assert answer.locator(".text").text_content() == expected["answer"]
    renders = [r for r in page.evaluate("window.__renders") if r.strip() and not r.startswith("Searching")]
    partial = [r for r in renders if r != expected["answer"]]
    assert len(partial) >= 2, "the answer should appear piece by piece"
    assert all(expected["answer"].startswith(r) for r in partial)

    first = expected["citations"][0]
    marker = answer.locator(".text .cite", has_text=f"[{first['n']}]").first
    marker.click()
    panel = page.locator("#citation-panel")
    assert panel.is_visible()
    assert page.text_content("#citation-title") == first["title"]
    assert page.text_content("#citation-quote") == first["quote"]
    assert page.text_content("#citation-section") == first["section"]
    if first["url"].startswith("http"):
        assert page.get_attribute("#citation-url", "href") == first["url"]
    page.click("#citation-source")
    assert page.locator("#source-text mark").text_content() == first["quote"]

    # The numbered source list under the answer opens the same panel.
    answer.locator(".sources button").first.click()
    assert page.text_content("#citation-quote") == first["quote"]


def test_follow_up_keeps_the_conversation(page: sync_api.Page, live_server: srv.LiveServer) -> None:
    page.goto(live_server.url)
    first = ask(page, "Who released Llama 2?")
    first_text = first.locator(".text").text_content()
    with page.expect_request("**/v1/ask/stream") as request:
        ask(page, "What is its context length?")
    sent = json.loads(request.value.post_data)
    assert sent["history"] == [
        {"role": "user", "content": "Who released Llama 2?"},
        {"role": "assistant", "content": first_text},
    ]
    assert page.locator(".msg.assistant").count() == 2

    page.click("#new-chat")
    assert page.locator(".msg").count() == 0
    with page.expect_request("**/v1/ask/stream") as request:
        ask(page, srv.EN_QUESTION)
    assert json.loads(request.value.post_data)["history"] == []


def test_chinese_page_and_question(page: sync_api.Page, live_server: srv.LiveServer) -> None:
    page.goto(live_server.url)
    page.click("#lang-toggle")
    assert page.text_content("#send") == "提问"
    assert page.get_attribute("html", "lang") == "zh-CN"

    # Enter that confirms an IME composition must not send the half-typed question.
    page.fill("#question", "显存")
    page.dispatch_event("#question", "keydown", {"key": "Enter", "isComposing": True})
    assert page.locator(".msg").count() == 0

    answer = ask(page, srv.ZH_QUESTION)
    assert answer.locator(".sources li").count() >= 1
    answer.locator(".text .cite").first.click()
    assert page.text_content("#citation-quote")
    page.reload()
    assert page.text_content("#send") == "提问"  # the choice is remembered


def test_page_asks_for_the_api_key_and_sends_it(browser: sync_api.Browser, server_atlas: Atlas) -> None:
    with srv.running(server_atlas, srv.server_settings(api_key="page-key")) as server:
        context = browser.new_context()
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(server.url)
        dialog = page.locator("#key-dialog")
        dialog.wait_for(state="visible")  # /v1/models answered 401
        page.fill("#key-input", "page-key")
        page.click("#key-save")
        page.wait_for_function("localStorage.getItem('llm-atlas.apiKey') === 'page-key'")  # on `close`
        with page.expect_request("**/v1/ask/stream") as request:
            answer = ask(page, srv.EN_QUESTION)
        assert request.value.headers["authorization"] == "Bearer page-key"
        assert answer.locator(".sources li").count() >= 1
        context.close()


class Scripted:
    """A core with one fixed answer and its documents, for cases the real corpus cannot show on demand."""

    def __init__(self, atlas: Atlas, answer: Answer, documents: dict[str, dict] | None = None):
        self.index, self.settings = atlas.index, atlas.settings
        self.answer, self.documents = answer, documents or {}

    def ask(self, question, history=None, k=None, use_llm=None, language=None) -> Answer:
        return self.answer

    def ask_stream(self, question, history=None, k=None, use_llm=None):
        yield self.answer.answer
        yield self.answer

    def document(self, doc_id: str) -> dict | None:
        return self.documents.get(doc_id)


HTML = '<img src=x onerror="window.__pwned=1"><b>bold</b>'


def test_untrusted_text_is_never_markup(page: sync_api.Page, server_atlas: Atlas) -> None:
    citation = Citation(
        n=1, title=HTML, url="javascript:window.__pwned=2", section=HTML, quote=HTML, doc_id="x", start=0, end=0
    )
    hostile = Answer(answer=f"{HTML} [1]", answered=True, citations=[citation], notice=HTML)
    with srv.running(Scripted(server_atlas, hostile)) as server:
        page.goto(server.url)
        answer = ask(page, "anything")
        answer.locator(".text .cite").click()
        assert page.locator("img").count() == 0 and page.locator("#chat b, #citation-panel b").count() == 0
        assert HTML in answer.locator(".text").text_content()
        assert page.text_content("#citation-quote") == HTML
        assert page.locator("#citation-url").is_hidden()  # never a javascript: link
        assert page.evaluate("window.__pwned") is None


def test_quote_is_marked_after_emoji_and_rare_characters(page: sync_api.Page, server_atlas: Atlas) -> None:
    # Offsets count code points; in the page, 🦅 and 𠀀 are two UTF-16 units each.
    quote = "Falcon-7B is made available under the Apache 2.0 license."
    text = f"# 🦅 Falcon-7B\n\n😊 𠀀 Paper coming soon.\n\n{quote}\n\n## Contact"
    start = text.index(quote)
    citation = Citation(
        n=1,
        title="Falcon-7B",
        url="https://example.org/falcon",
        section="Falcon-7B",
        quote=quote,
        doc_id="falcon",
        start=start,
        end=start + len(quote),
    )
    document = {"doc_id": "falcon", "title": "Falcon-7B", "url": citation.url, "language": "en", "text": text}
    answer = Answer(answer=f"{quote} [1]", answered=True, citations=[citation])
    with srv.running(Scripted(server_atlas, answer, {"falcon": document})) as server:
        page.goto(server.url)
        ask(page, "Which license does Falcon-7B use?").locator(".text .cite").click()
        page.click("#citation-source")
        assert page.locator("#source-text mark").text_content() == quote
        assert page.locator("#source-text").text_content() == text
