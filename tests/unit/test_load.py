"""Loading real files of every awkward kind: one bad file never stops the run."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.clean import to_text
from ingest.load import Skipped, iter_sources, load_file

GBK_PAGE = (
    "<html><head><meta charset='gbk'><title>大模型笔记</title></head><body><article>"
    "<h1>ChatGLM 简介</h1><p>ChatGLM-6B 是一个开源的、支持中英双语的对话语言模型,具有 62 亿参数。"
    "结合模型量化技术,用户可以在消费级的显卡上进行本地部署。</p></article></body></html>"
)


def make_pdf(text: str) -> bytes:
    """A minimal one-page PDF with a cross-reference table, written by hand."""
    stream = f"BT /F1 12 Tf 10 50 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def load_all(targets: list[str], max_bytes: int = 1_000_000) -> tuple[list, list[Skipped]]:
    items = list(iter_sources(targets, max_bytes=max_bytes, timeout=5))
    return [i for i in items if not isinstance(i, Skipped)], [i for i in items if isinstance(i, Skipped)]


def test_gbk_page_is_decoded(tmp_path: Path) -> None:
    page = tmp_path / "gbk.html"
    page.write_bytes(GBK_PAGE.encode("gbk"))
    raw = load_file(page, 1_000_000)
    text, title = to_text(raw.content, raw.format)
    assert "62 亿参数" in text and "ChatGLM 简介" in text
    assert title in ("大模型笔记", "ChatGLM 简介")  # trafilatura prefers the <h1>; either is decoded right


def test_broken_html_still_gives_text(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><div><p>Koala is fine-tuned from LLaMA on dialogue data <b>unclosed <table><tr><td>cell</p></div>",
        encoding="utf-8",
    )
    raw = load_file(page, 1_000_000)
    text, _ = to_text(raw.content, raw.format)
    assert "Koala is fine-tuned from LLaMA" in text


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("# Alpaca\n\nAlpaca was fine-tuned from LLaMA 7B.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "blank.md").write_text("   \n\n", encoding="utf-8")
    (tmp_path / "weights.txt").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    (tmp_path / "huge.txt").write_text("大模型" * 400_000, encoding="utf-8")
    loaded, skipped = load_all([str(tmp_path), str(tmp_path / "missing.md")])
    assert [Path(r.source).name for r in loaded] == ["good.md"]
    reasons = {Path(s.source).name: s.reason for s in skipped}
    assert reasons["empty.txt"] == "empty file"
    assert reasons["blank.md"] == "empty file"
    assert "binary" in reasons["weights.txt"]
    assert "unsupported file type '.png'" in reasons["image.png"]
    assert "too large" in reasons["huge.txt"]
    assert reasons["missing.md"] == "no such file or folder"


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(make_pdf("Vicuna was trained on ShareGPT"))
    raw = load_file(pdf, 1_000_000)
    assert "Vicuna was trained on ShareGPT" in raw.content
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    _, skipped = load_all([str(tmp_path / "broken.pdf")])
    assert skipped and "PDF" in skipped[0].reason


@pytest.fixture()
def http_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "post.html").write_bytes(GBK_PAGE.encode("gbk"))
    (tmp_path / "notes.md").write_text("# Falcon\n\nFalcon-180B was trained on 3.5 trillion tokens.", encoding="utf-8")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01" * 50)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_urls_are_fetched(http_server: str) -> None:
    loaded, skipped = load_all(
        [
            f"{http_server}/post.html",
            f"{http_server}/notes.md",
            f"{http_server}/blob.bin",
            f"{http_server}/missing.html",
            "http://127.0.0.1:1/closed.html",
        ]
    )
    by_url = {r.url: r for r in loaded}
    assert "62 亿参数" in to_text(by_url[f"{http_server}/post.html"].content, "html")[0]
    assert "3.5 trillion tokens" in by_url[f"{http_server}/notes.md"].content
    reasons = {s.source: s.reason for s in skipped}
    assert "unsupported content type" in reasons[f"{http_server}/blob.bin"]
    assert "404" in reasons[f"{http_server}/missing.html"]
    assert "fetch failed" in reasons["http://127.0.0.1:1/closed.html"]
