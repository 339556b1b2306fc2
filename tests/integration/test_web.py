"""The chat page in a real headless browser (Debian's chromium, driven by Playwright) on the real server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    from tests.integration.openai_server import Script, openai_server
except ModuleNotFoundError:
    import conftest_server as srv
    from openai_server import Script, openai_server

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


MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
SCREENS = os.environ.get("LLM_ATLAS_SCREENSHOTS")  # a folder: the tests save what they show there
LLM_QUESTION = "How much GPU memory does ChatGLM-6B need under INT4 quantization?"


def screenshot(page: sync_api.Page, name: str) -> None:
    if SCREENS:
        Path(SCREENS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENS) / f"{name}.png"))


def first_use(text: str, known: set[int]) -> dict[int, int]:
    """The page's numbering: citation n -> 1..k in order of first use in the answer text."""
    shown: dict[int, int] = {}
    for match in MARKER.finditer(text):
        for n in (int(x) for x in re.split(r"\s*,\s*", match.group(1))):
            if n in known and n not in shown:
                shown[n] = len(shown) + 1
    return shown


def clean_section(section: str, title: str) -> str:
    """What the page shows as the breadcrumb: no markdown, and no first part that repeats the title."""
    parts = [re.sub(r"\*\*|__|`", "", part).strip() for part in section.split(" > ")]
    parts = [part for part in parts if part]
    if parts and re.sub(r"\W", "", parts[0].lower()) == re.sub(r"\W", "", title.lower()):
        parts = parts[1:]
    return " › ".join(parts)


def assert_no_raw_markdown(text: str) -> None:
    assert "**" not in text, text
    assert not re.search(r"(?m)^.*\|.*\|", text), text  # a table row left as typed (a table's cells are not pipes)
    assert "---" not in text and "→" not in text, text


def letters(text: str) -> str:
    """The text without what markdown and table rendering change: spacing, pipes, arrows, emphasis marks."""
    return re.sub(r"[\s|→*_`]|---", "", text)


def assert_markers_numbered(answer: sync_api.Locator, expected: dict) -> dict[int, int]:
    """The answer's markers are 1..k in order of first use, each standing for its own citation,
    and the source list follows that order. Returns n -> the number shown."""
    by_n = {c["n"]: c for c in expected["citations"]}
    shown = first_use(expected["answer"], set(by_n))
    markers = answer.locator(".text .cite")
    seen: list[int] = []
    for i in range(markers.count()):
        marker = markers.nth(i)
        n = int(marker.get_attribute("data-n"))
        assert marker.text_content() == f"[{shown[n]}]" and marker.is_enabled()
        if shown[n] not in seen:
            seen.append(shown[n])
    assert seen == list(range(1, len(seen) + 1)), seen  # no gaps, in order of first use
    listed = [c for c in sorted(by_n.values(), key=lambda c: shown.get(c["n"], 99))]
    entries = answer.locator(".sources li")
    assert entries.count() == len(listed)
    for i, citation in enumerate(listed):
        assert entries.nth(i).locator(".cite").text_content() == f"[{i + 1}]"
        assert entries.nth(i).locator(".source-title").text_content() == citation["title"]
    return shown


def open_citation(page: sync_api.Page, marker: sync_api.Locator) -> str:
    """Click a marker and wait for its quote to be shown inside its source text; returns the marked text."""
    marker.click()
    page.locator("#citation-quote.in-context").wait_for()
    return page.locator("#citation-quote mark").text_content()


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
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(live_server.url)
    answer = ask(page, srv.EN_QUESTION)
    # Everything, the markdown renderer and sanitiser included, comes from this server: no CDN.
    assert f"{live_server.url}/web/vendor/marked.umd.js" in requested
    assert all(url.startswith((live_server.url, "data:")) for url in requested), requested

    assert page.locator(".msg.user").first.text_content() == srv.EN_QUESTION
    shown = assert_markers_numbered(answer, expected)
    renumbered = MARKER.sub(
        lambda m: "".join(f"[{shown[int(n)]}]" for n in re.split(r"\s*,\s*", m.group(1))), expected["answer"]
    )
    final = answer.locator(".text").text_content()
    assert letters(final) == letters(renumbered)
    assert_no_raw_markdown(answer.locator(".text").inner_text())  # this answer quotes a table row

    first = expected["citations"][0]
    marker = answer.locator(f'.text .cite[data-n="{first["n"]}"]').first
    assert open_citation(page, marker) == first["quote"]
    panel = page.locator("#citation-panel")
    assert panel.is_visible()
    assert page.text_content("#citation-number") == str(shown[first["n"]])
    assert page.text_content("#citation-title") == first["title"]
    assert page.text_content("#citation-section") == clean_section(first["section"], first["title"])
    document = httpx.get(f"{live_server.url}/v1/sources/{first['doc_id']}", timeout=60).json()
    context = page.text_content("#citation-quote")
    assert first["quote"] in context and len(context) > len(first["quote"])  # the quote inside its passage
    assert context.strip("…").replace(first["quote"], "") in document["text"].replace(first["quote"], "")
    if first["url"].startswith("http"):
        assert page.get_attribute("#citation-url", "href") == first["url"]
    page.click("#citation-source")
    assert page.locator("#source-text mark").text_content() == first["quote"]

    # The numbered source list under the answer opens the same panel.
    answer.locator(".sources button").nth(shown[first["n"]] - 1).click()
    page.locator("#citation-quote.in-context").wait_for()
    assert page.locator("#citation-quote mark").text_content() == first["quote"]


def llm_atlas(atlas: Atlas, base_url: str) -> Atlas:
    """The session's Atlas, answering through the LLM at base_url (a local fake speaking the OpenAI protocol)."""
    settings = atlas.settings.model_copy(
        update={"llm_base_url": base_url, "llm_api_key": "sk-test", "llm_model": "test-model", "llm_timeout": 30.0}
    )
    clone = Atlas.__new__(Atlas)
    clone.__dict__.update(atlas.__dict__, settings=settings)
    return clone


# What an LLM writes for the INT4 question, markdown and all; [n] name the passages retrieved for it.
LLM_REPLIES = {
    "en": (
        LLM_QUESTION,
        "ChatGLM-6B needs **6 GB** of GPU memory under INT4 quantization [1].\n\n"
        "| Quantization Level | GPU Memory |\n|---|---|\n| FP16 | 13 GB [2] |\n| INT4 | 6 GB [1] |\n\n"
        "- **FP16**: about 13GB of memory [2]\n- **INT4**: only 6GB [1]",
    ),
    "zh": (
        "ChatGLM-6B 在 INT4 量化下需要多少显存？",
        "**ChatGLM-6B** 在 INT4 量化级别下最低只需 6GB 显存 [1]。\n\n"
        "| 量化等级 | 最低显存 |\n|---|---|\n| FP16（无量化） | 13 GB [2] |\n| INT4 | 6 GB [1] |\n\n"
        "- **微调**：INT4 下最低 7GB [1]",
    ),
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_markdown_answers_render_as_html_with_live_markers(
    page: sync_api.Page, server_atlas: Atlas, language: str
) -> None:
    question, reply = LLM_REPLIES[language]
    script = Script(reply=reply, chunk_delay=0.03)  # a word at a time, so the answer streams in
    with openai_server(script) as base_url, srv.running(llm_atlas(server_atlas, base_url)) as server:
        expected = httpx.post(f"{server.url}/v1/ask", json={"question": question}, timeout=60).json()
        assert expected["mode"] == "llm" and "|---|" in expected["answer"], expected
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(server.url)
        if language == "zh":
            page.click("#lang-toggle")
        answer = ask(page, question)

        # Rendered as it streamed in: every earlier render is the start of the final one.
        final = letters(answer.locator(".text").text_content())
        renders = [letters(r) for r in page.evaluate("window.__renders") if r.strip() and r != t_thinking(language)]
        partial = [r for r in renders if r != final]
        assert len(partial) >= 2, "the answer should appear piece by piece"
        assert all(final.startswith(r) for r in partial), (partial, final)

        text = answer.locator(".text").inner_text()
        assert_no_raw_markdown(text)
        table = answer.locator(".text table")
        assert table.count() == 1
        header = ["Quantization Level", "GPU Memory"] if language == "en" else ["量化等级", "最低显存"]
        # The answer code may put the header row's sentence marker after its closing pipe: it lands in the last cell.
        assert [MARKER.sub("", h).strip() for h in table.locator("th").all_inner_texts()] == header
        cells = table.locator("tbody td").all_inner_texts()
        assert cells[2] == "INT4" and cells[3].startswith("6 GB [")
        assert ("6 GB" if language == "en" else "ChatGLM-6B") in answer.locator(".text strong").all_text_contents()
        assert answer.locator(".text li").count() >= 1
        shown = assert_markers_numbered(answer, expected)

        # Every marker, those inside table cells too, opens its own citation with its quote marked.
        by_n = {c["n"]: c for c in expected["citations"]}
        for n in shown:
            citation = by_n[n]
            assert open_citation(page, answer.locator(f'.text .cite[data-n="{n}"]').first) == citation["quote"]
            assert page.text_content("#citation-title") == citation["title"]
            assert page.text_content("#citation-number") == str(shown[n])
        marker = table.locator(".cite").last
        assert open_citation(page, marker) == by_n[int(marker.get_attribute("data-n"))]["quote"]
        screenshot(page, language)


def t_thinking(language: str) -> str:
    return "Searching the sources…" if language == "en" else "正在检索资料…"


def cjk_font_installed() -> bool:
    try:
        families = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(families.strip())


def fonts_used(page: sync_api.Page, selector: str) -> dict[str, int]:
    """The fonts Chromium drew the text of `selector` with: family -> glyphs (from the DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]
    node = cdp.send("DOM.querySelector", {"nodeId": root["nodeId"], "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return {font["familyName"]: font["glyphCount"] for font in fonts}


def test_chinese_page_and_question(page: sync_api.Page, live_server: srv.LiveServer) -> None:
    page.goto(live_server.url)
    page.click("#lang-toggle")
    assert page.text_content("#send") == "提问"
    assert page.get_attribute("html", "lang") == "zh-CN"

    # Enter that confirms an IME composition must not send the half-typed question.
    page.fill("#question", "显存")
    page.dispatch_event("#question", "keydown", {"key": "Enter", "isComposing": True})
    assert page.locator(".msg").count() == 0

    expected = httpx.post(f"{live_server.url}/v1/ask", json={"question": srv.ZH_QUESTION}, timeout=60).json()
    answer = ask(page, srv.ZH_QUESTION)
    assert_no_raw_markdown(answer.locator(".text").inner_text())
    assert_markers_numbered(answer, expected)
    first = answer.locator(".text .cite").first
    n = int(first.get_attribute("data-n"))
    assert open_citation(page, first) == next(c["quote"] for c in expected["citations"] if c["n"] == n)
    if cjk_font_installed():  # .ci/browser.sh installs fonts-noto-cjk; without a CJK font every character is a box
        fonts = fonts_used(page, ".msg.assistant .text p")
        assert any(re.search(r"CJK|Sans SC|PingFang|YaHei|Source Han", family) for family in fonts), fonts
    page.reload()
    assert page.text_content("#send") == "提问"  # the choice is remembered


def test_renumbered_markers_follow_first_use(page: sync_api.Page, server_atlas: Atlas) -> None:
    # Extractive answers already number sources in citation order; an LLM cites the passages it was
    # given in whatever order it writes, and the page renumbers them by first use.
    reply = "Under FP16 ChatGLM-6B needs about 13 GB of GPU memory [2]; under INT4 it needs only 6 GB [1]."
    with openai_server(Script(reply=reply)) as base_url, srv.running(llm_atlas(server_atlas, base_url)) as server:
        expected = httpx.post(f"{server.url}/v1/ask", json={"question": LLM_QUESTION}, timeout=60).json()
        assert expected["mode"] == "llm", expected
        shown = first_use(expected["answer"], {c["n"] for c in expected["citations"]})
        assert any(n != number for n, number in shown.items()), shown  # the server's numbers are out of order
        page.goto(server.url)
        answer = ask(page, LLM_QUESTION)
        assert_markers_numbered(answer, expected)


def test_seed_documents_get_a_local_source_link(page: sync_api.Page, live_server: srv.LiveServer) -> None:
    question = "Alpaca 的训练成本是多少？"
    expected = httpx.post(f"{live_server.url}/v1/ask", json={"question": question}, timeout=60).json()
    seed = next(c for c in expected["citations"] if not c["url"].startswith("http"))
    page.goto(live_server.url)
    answer = ask(page, question)
    assert answer.locator(".sources a.local").count() == sum(
        not c["url"].startswith("http") for c in expected["citations"]
    )
    assert open_citation(page, answer.locator(f'.text .cite[data-n="{seed["n"]}"]').first) == seed["quote"]
    assert page.locator("#citation-url").is_hidden()  # a relative label is not a link to anywhere
    local = page.locator("#citation-local")
    assert local.is_visible()
    href = local.get_attribute("href")
    assert href.startswith("/web/source.html?") and f"doc={seed['doc_id']}" in href

    # The local view shows the cleaned document with the quote marked.
    document = httpx.get(f"{live_server.url}/v1/sources/{seed['doc_id']}", timeout=60).json()
    page.goto(live_server.url + href)
    page.locator("#doc-text mark").wait_for()
    assert page.text_content("#doc-title") == document["title"]
    assert page.locator("#doc-text mark").text_content() == seed["quote"]
    assert page.locator("#doc-text").text_content() == document["text"]


def test_section_breadcrumbs_show_no_markdown(page: sync_api.Page, live_server: srv.LiveServer) -> None:
    question = "What hardware was Llama 2 trained on?"
    expected = httpx.post(f"{live_server.url}/v1/ask", json={"question": question}, timeout=60).json()
    citation = next(c for c in expected["citations"] if "**" in c["section"])  # the model card's bold headings
    page.goto(live_server.url)
    answer = ask(page, question)
    sections = answer.locator(".sources .source-section").all_text_contents()
    assert sections and not any("*" in s for s in sections), sections
    open_citation(page, answer.locator(f'.text .cite[data-n="{citation["n"]}"]').first)
    section = page.text_content("#citation-section")
    assert section == clean_section(citation["section"], citation["title"]) and section and "*" not in section


def fact_numbers(rows: list[dict], models: list[str]) -> dict[tuple[str, int, int], int]:
    """The page's numbering of fact citations: 1..k in order of first use, row by row, model by model."""
    numbers: dict[tuple[str, int, int], int] = {}
    for row in rows:
        for model in models:
            for fact in row["cells"].get(model, []):
                c = fact["citation"]
                numbers.setdefault((c["doc_id"], c["start"], c["end"]), len(numbers) + 1)
    return numbers


def assert_fact_table(page: sync_api.Page, table: sync_api.Locator, models: list[str], rows: list[dict]) -> None:
    """One row per attribute, one column per model; each cell's values with their markers, ⚠ on the
    values the sources disagree on, "not stated" for an empty cell."""
    numbers = fact_numbers(rows, models)
    assert table.locator("thead th").all_text_contents() == ["Attribute", *models]
    body = table.locator("tbody tr")
    assert body.count() == len(rows)
    clicked = 0
    for i, row in enumerate(rows):
        line = body.nth(i)
        assert line.locator("th").get_attribute("data-attribute") == row["attribute"]
        for j, model in enumerate(models):
            cell = line.locator("td").nth(j)
            facts = row["cells"].get(model, [])
            if not facts:
                assert cell.text_content() == "not stated"
                continue
            markers = cell.locator(".cite")
            shown = {int(m.strip("[]")) for m in markers.all_text_contents()}
            assert shown == {
                numbers[(f["citation"]["doc_id"], f["citation"]["start"], f["citation"]["end"])] for f in facts
            }
            conflicted = {(f["value"], f.get("qualifier"), f.get("stated_for")) for f in facts if f["conflict"]}
            assert cell.locator(".conflict").count() == len(conflicted)
            for value in {f["value"] for f in facts}:
                assert value in cell.text_content()
            if clicked < 6:  # opening every marker would take long: the first of a few cells
                by_number = {
                    numbers[(f["citation"]["doc_id"], f["citation"]["start"], f["citation"]["end"])]: f for f in facts
                }
                first = markers.first
                citation = by_number[int(first.text_content().strip("[]"))]["citation"]
                assert open_citation(page, first) == citation["quote"]
                assert page.text_content("#citation-title") == citation["title"]
                clicked += 1
    assert clicked


def lookup(page: sync_api.Page, mode: str, names: str) -> sync_api.Locator:
    count = page.locator(".msg.assistant").count()
    page.click(f'.mode[data-mode="{mode}"]')
    page.fill("#models", names)
    page.press("#models", "Enter")
    item = page.locator(".msg.assistant").nth(count)
    item.locator(".meta, .error").first.wait_for()
    return item


def test_compare_models_in_a_cited_table(page: sync_api.Page, live_server: srv.LiveServer) -> None:
    expected = httpx.post(f"{live_server.url}/v1/compare", json={"models": ["Alpaca", "Vicuna"]}, timeout=60).json()
    assert any(row["conflict"] for row in expected["rows"]) and any(
        not all(r["cells"].values()) for r in expected["rows"]
    )
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(live_server.url)
    item = lookup(page, "compare", "Alpaca, Vicuna")
    assert page.locator(".msg.user").last.text_content() == "Compare: Alpaca, Vicuna"
    table = item.locator("table.facts")
    assert table.count() == 1
    assert_fact_table(page, table, expected["models"], expected["rows"])
    flagged = [row["attribute"] for row in expected["rows"] if row["conflict"]]
    assert table.locator("tbody th:has(.conflict)").count() == len(flagged)
    sources = item.locator(".sources li .cite").all_text_contents()
    assert sources == [f"[{n}]" for n in range(1, len(fact_numbers(expected["rows"], expected["models"])) + 1)]
    licence = table.locator('tbody tr:has(th[data-attribute="licence"]) td .cite').first
    open_citation(page, licence)
    screenshot(page, "compare")

    # Unknown names are reported with the closest known ones; one name is not a comparison.
    item = lookup(page, "compare", "Alpaca, Vicuna, Nosuchmodel")
    assert "Nosuchmodel" in item.locator(".notice").text_content()
    item = lookup(page, "compare", "Alpaca")
    assert item.locator(".error").text_content().endswith("Give at least two model names, separated by commas.")


def test_fact_sheet_lookup(page: sync_api.Page, live_server: srv.LiveServer) -> None:
    sheet = httpx.get(f"{live_server.url}/v1/facts/ChatGLM-6B", timeout=60).json()
    rows: dict[str, dict[str, Any]] = {}
    for fact in sheet["facts"]:
        row = rows.setdefault(fact["attribute"], {"attribute": fact["attribute"], "cells": {sheet["model"]: []}})
        row["cells"][sheet["model"]].append(fact)
    page.goto(live_server.url)
    item = lookup(page, "facts", "ChatGLM-6B")
    assert_fact_table(page, item.locator("table.facts"), [sheet["model"]], list(rows.values()))

    missing = httpx.get(f"{live_server.url}/v1/facts/Nosuchmodel", timeout=60).json()["error"]["message"]
    item = lookup(page, "facts", "Nosuchmodel")
    assert item.locator(".notice").text_content() == missing  # names the closest known models


def test_follow_up_keeps_the_conversation(page: sync_api.Page, live_server: srv.LiveServer) -> None:
    expected = httpx.post(f"{live_server.url}/v1/ask", json={"question": "Who released Llama 2?"}, timeout=60).json()
    page.goto(live_server.url)
    ask(page, "Who released Llama 2?")
    with page.expect_request("**/v1/ask/stream") as request:
        ask(page, "What is its context length?")
    sent = json.loads(request.value.post_data)
    # The history carries the answer as the server wrote it: its own markers, not the page's renumbering.
    assert sent["history"] == [
        {"role": "user", "content": "Who released Llama 2?"},
        {"role": "assistant", "content": expected["answer"]},
    ]
    assert page.locator(".msg.assistant").count() == 2

    page.click("#new-chat")
    assert page.locator(".msg").count() == 0
    with page.expect_request("**/v1/ask/stream") as request:
        ask(page, srv.EN_QUESTION)
    assert json.loads(request.value.post_data)["history"] == []


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
        self.health = atlas.health  # /readyz probes the real index
        self.answer, self.documents = answer, documents or {}

    def ask(self, question, history=None, k=None, use_llm=None, **options) -> Answer:
        return self.answer

    def ask_stream(self, question, history=None, k=None, use_llm=None, **options):
        yield self.answer.answer
        yield self.answer

    def document(self, doc_id: str) -> dict | None:
        return self.documents.get(doc_id)


HTML = '<img src=x onerror="window.__pwned=1"><b>bold</b>'


def test_untrusted_text_is_never_markup(page: sync_api.Page, server_atlas: Atlas) -> None:
    citation = Citation(
        n=1, title=HTML, url="javascript:window.__pwned=2", section=HTML, quote=HTML, doc_id="x", start=0, end=0
    )
    markdown = (
        "[a link](javascript:window.__pwned=3) ![an image](https://example.org/x.png) [site](https://example.org/)"
    )
    hostile = Answer(answer=f"{HTML} [1] {markdown}", answered=True, citations=[citation], notice=HTML)
    with srv.running(Scripted(server_atlas, hostile)) as server:
        page.goto(server.url)
        answer = ask(page, "anything")
        answer.locator(".text .cite").click()
        assert page.locator("img").count() == 0 and page.locator("#chat b, #citation-panel b").count() == 0
        assert HTML in answer.locator(".text").text_content()  # raw HTML in an answer is shown as typed
        links = answer.locator(".text a")
        assert links.count() == 2 and links.first.get_attribute("href") is None  # markdown, but no javascript:
        assert links.last.get_attribute("href") == "https://example.org/" and links.last.get_attribute("rel")
        assert "an image" in answer.locator(".text").text_content()  # only an image's alt text
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
        marker = ask(page, "Which license does Falcon-7B use?").locator(".text .cite")
        assert open_citation(page, marker) == quote
        assert page.locator("#citation-quote").text_content() == text  # a short document: all of it is context
        page.click("#citation-source")
        assert page.locator("#source-text mark").text_content() == quote
        assert page.locator("#source-text").text_content() == text


def test_marker_opens_the_sentence_it_stands_behind(page: sync_api.Page, server_atlas: Atlas) -> None:
    # Passages 2, 4, 5 and 7 were retrieved; the answer cites 4, 2, 4 and 5, and 7 is cited but unused.
    def cite(n: int, quote: str) -> Citation:
        return Citation(
            n=n, title=f"Doc {n}", url=f"https://example.org/{n}", section="**Intro**", quote=quote,
            doc_id=f"d{n}", start=0, end=len(quote),
        )  # fmt: skip

    long_quote = "Some lead-in text. The first claim is stated right here. And more after it."
    citations = [cite(2, "The second claim."), cite(4, long_quote), cite(5, "Five."), cite(7, "Seven.")]
    text = "The first claim is stated right here. [4] The second claim. [2] And again. [4][5]"
    documents = {c.doc_id: {"doc_id": c.doc_id, "title": c.title, "url": c.url, "language": "en", "text": c.quote}
                 for c in citations}  # fmt: skip
    with srv.running(
        Scripted(server_atlas, Answer(answer=text, answered=True, citations=citations), documents)
    ) as server:
        page.goto(server.url)
        answer = ask(page, "anything")
        assert answer.locator(".text .cite").all_text_contents() == ["[1]", "[2]", "[1]", "[3]"]
        assert (
            answer.locator(".text").text_content().strip()
            == "The first claim is stated right here. [1] The second claim. [2] And again. [1][3]"
        )
        assert answer.locator(".sources .source-title").all_text_contents() == ["Doc 4", "Doc 2", "Doc 5", "Doc 7"]
        assert answer.locator(".sources li .cite").all_text_contents() == ["[1]", "[2]", "[3]", "[4]"]

        assert open_citation(page, answer.locator(".text .cite").first) == long_quote
        assert page.text_content("#citation-number") == "1" and page.text_content("#citation-title") == "Doc 4"
        assert page.text_content("#citation-section") == "Intro"
        assert page.text_content("#citation-quote .support") == "The first claim is stated right here."
        # "And again." is not in the quote: the whole quote is marked and nothing in it is singled out.
        assert open_citation(page, answer.locator(".text .cite").nth(2)) == long_quote
        assert page.locator("#citation-quote .support").count() == 0
        assert open_citation(page, answer.locator(".text .cite").nth(1)) == "The second claim."
        assert page.text_content("#citation-number") == "2"
