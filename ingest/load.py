"""Load files, folders and URLs into `RawSource`s; anything unreadable becomes a `Skipped` with a reason."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ingest.schema import RawSource

FORMATS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".pdf": "pdf"}


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


class LoadError(Exception):
    """A source that cannot be turned into text; the message says why."""


def is_url(value: str) -> bool:
    return urlparse(value).scheme in ("http", "https")


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding (UTF-8, GBK/GB18030, ...); refuse binary data."""
    if not data.strip():
        raise LoadError("empty file")
    if b"\x00" in data[:8192]:
        raise LoadError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("binary or undecodable file (no text encoding fits)")
    encoding = best.encoding.lower()
    # GB2312 and GBK are subsets of GB18030; the superset decodes rarer characters too.
    if encoding in ("gb2312", "gbk", "cp936"):
        return data.decode("gb18030", errors="replace")
    return str(best)


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types on damaged files
        raise LoadError(f"unreadable PDF ({exc.__class__.__name__}: {exc})") from exc
    return "\n\n".join(pages)


def source_from_bytes(data: bytes, source: str, fmt: str, **meta: str | None) -> RawSource:
    sha256 = hashlib.sha256(data).hexdigest()
    content = pdf_text(data) if fmt == "pdf" else decode_text(data)
    if not content.strip():
        raise LoadError("no text in file")
    return RawSource(source=source, content=content, format=fmt, sha256=sha256, **meta)


def load_file(path: Path, max_bytes: int, **meta: str | None) -> RawSource:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(f"unsupported file type '{path.suffix or '(none)'}' (supported: {', '.join(FORMATS)})")
    size = path.stat().st_size
    if size > max_bytes:
        raise LoadError(f"file too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB limit)")
    return source_from_bytes(path.read_bytes(), str(path), fmt, **meta)


def load_url(url: str, max_bytes: int, timeout: float) -> RawSource:
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise LoadError(f"fetch failed ({exc.__class__.__name__}: {exc})") from exc
    data = response.content
    if len(data) > max_bytes:
        raise LoadError(f"response too large ({len(data) / 1e6:.1f} MB)")
    ctype = response.headers.get("content-type", "").lower()
    suffix = Path(urlparse(url).path).suffix.lower()
    if "pdf" in ctype or suffix == ".pdf":
        fmt = "pdf"
    elif "html" in ctype or suffix in (".html", ".htm"):
        fmt = "html"
    elif "markdown" in ctype or suffix in (".md", ".markdown"):
        fmt = "markdown"
    elif ctype.startswith("text/") or suffix == ".txt":
        fmt = "text"
    else:
        raise LoadError(f"unsupported content type '{ctype or 'unknown'}'")
    if fmt != "pdf" and response.charset_encoding:
        try:
            text = data.decode(response.charset_encoding)
            return RawSource(source=url, url=url, content=text, format=fmt, sha256=hashlib.sha256(data).hexdigest())
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong charset header: detect instead
    return source_from_bytes(data, url, fmt, url=url)


def walk(path: Path) -> Iterator[Path]:
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and not any(part.startswith(".") for part in child.relative_to(path).parts):
                yield child
    else:
        yield path


def iter_sources(targets: Iterable[str], max_bytes: int, timeout: float) -> Iterator[RawSource | Skipped]:
    """Load every file under the given paths and every URL; never raises for one bad source."""
    for target in targets:
        if is_url(target):
            try:
                yield load_url(target, max_bytes, timeout)
            except LoadError as exc:
                yield Skipped(target, str(exc))
            continue
        path = Path(target)
        if not path.exists():
            yield Skipped(target, "no such file or folder")
            continue
        for file in walk(path):
            try:
                yield load_file(file, max_bytes)
            except LoadError as exc:
                yield Skipped(str(file), str(exc))
            except OSError as exc:
                yield Skipped(str(file), f"cannot read ({exc.strerror or exc})")


def iter_bundled_corpus(max_bytes: int) -> Iterator[RawSource | Skipped]:
    """The shipped corpus, with title, URL and licence taken from its manifest."""
    from corpus import CORPUS_DIR, MANIFEST_PATH

    manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    for entry in manifest["documents"]:
        path = CORPUS_DIR / entry["path"]
        try:
            yield load_file(
                path,
                max_bytes,
                title=entry["title"],
                url=entry.get("url"),
                license=entry.get("license"),
                language=entry.get("language"),
            )
        except (LoadError, OSError) as exc:
            yield Skipped(str(path), str(exc))
