"""HTML that parsers give up on keeps its text; a missing HTML parser is an error naming the package."""

from __future__ import annotations

import builtins
import sys
import time

import pytest

from ingest.clean import CleanReport, clean_lines, flat_html_text, to_text, tree_is_cut
from ingest.errors import MissingDependency
from ingest.schema import RawSource

SECRET = "The secret sentence about Vicuna."


def cleaned(content: str) -> str:
    text, _ = to_text(content, "html")
    return clean_lines(text, set(), set(), CleanReport())


@pytest.mark.parametrize("depth", [300, 10_000])
def test_deeply_nested_html_keeps_its_text(depth: int) -> None:
    page = "<div>" * depth + f"<p>{SECRET}</p>" + "</div>" * depth
    assert tree_is_cut(page)
    assert SECRET in cleaned(page)


def test_deep_page_keeps_text_title_and_paragraphs_but_not_scripts() -> None:
    page = (
        "<html><head><title>Deep notes</title><script>var hidden = 'SCRIPT TEXT';</script>"
        "<style>p { color: red }</style></head><body><h1>Vicuna</h1>"
        + "<div>" * 5000
        + "<p>Vicuna was fine-tuned &amp; evaluated on <b>ShareGPT</b> data.</p><p>Second paragraph.</p>"
        + "</div>" * 5000
        + "</body></html>"
    )
    text, title = to_text(page, "html")
    assert "Vicuna was fine-tuned & evaluated on ShareGPT data." in text
    assert "Vicuna was fine-tuned & evaluated on ShareGPT data.\n\nSecond paragraph." in text
    assert "SCRIPT TEXT" not in text and "color: red" not in text
    assert title in ("Deep notes", "Vicuna")


def test_ordinary_pages_are_not_flattened() -> None:
    page = "<html><body>" + "<div>" * 50 + f"<article><p>{SECRET}</p></article>" + "</div>" * 50 + "</body></html>"
    assert not tree_is_cut(page)
    assert SECRET in cleaned(page)


def test_flat_text_is_linear_in_nesting() -> None:
    def seconds(depth: int) -> float:
        page = "<div><span>" * depth + SECRET + "</span></div>" * depth
        started = time.perf_counter()
        assert SECRET in flat_html_text(page)
        return time.perf_counter() - started

    seconds(1000)
    small = min(seconds(20_000) for _ in range(3))
    large = min(seconds(80_000) for _ in range(3))
    assert large / small < 6


def test_unclosed_script_drops_the_rest_like_a_browser() -> None:
    assert flat_html_text("<p>kept</p><script>never closed <p>gone</p>") == "kept"


def test_missing_trafilatura_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # makes `import trafilatura` fail
    with pytest.raises(MissingDependency, match="'trafilatura'") as info:
        to_text(f"<html><body><p>{SECRET}</p></body></html>", "html")
    assert info.value.package == "trafilatura"
    assert "pip install trafilatura" in str(info.value)
    assert to_text("# Markdown needs no parser", "markdown")[0] == "# Markdown needs no parser"


def test_missing_lxml_html_clean_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "trafilatura":
            # What lxml >= 5.2 raises inside trafilatura's import when the cleaner is not installed.
            raise ImportError(
                "lxml.html.clean module is now a separate project lxml_html_clean.\n"
                "Install lxml[html_clean] or lxml_html_clean directly."
            )
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependency, match="'lxml_html_clean'"):
        to_text("<html><body><p>x</p></body></html>", "html")


def test_pipeline_does_not_turn_a_missing_parser_into_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.pipeline import IngestReport, clean_documents

    monkeypatch.setitem(sys.modules, "trafilatura", None)
    raw = RawSource(source="notes/page.html", content=f"<p>{SECRET}</p>", format="html", sha256="0" * 64)
    report = IngestReport(index_dir=None)  # type: ignore[arg-type]
    with pytest.raises(MissingDependency, match="trafilatura"):
        clean_documents([raw], report)
    assert not report.skipped
