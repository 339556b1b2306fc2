"""Load files, folders and URLs into `RawSource`s; anything unreadable becomes a `Skipped` with a reason.

Only regular files are read (a FIFO would block, `/dev/zero` never ends), and every file or folder a
walk passes over is reported. A source's label is stable and never an absolute path: the bundled corpus
is `corpus/<manifest path>`, a user's file `<target folder name>/<path inside it>` or `<file name>`; the
pipeline derives document ids from it, so they do not depend on where the files live.
"""

from __future__ import annotations

import array
import errno
import hashlib
import io
import json
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ingest.errors import MissingDependency
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


_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),  # before UTF-16 LE, whose BOM it starts with
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# CJK punctuation, Extension A, Unified and Compatibility Ideographs, full-width forms.
_CJK_RE = re.compile("[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def valid_unicode(text: str) -> str:
    """Text that encodes to UTF-8: lone surrogates (from lenient decoders) become U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text)
    return text


def _looks_like_text(text: str) -> bool:
    """Few control, unassigned, private-use or replacement characters: bytes read in the wrong encoding
    (or binary data) give many."""
    sample = text[:4096]
    bad = sum(
        1
        for ch in sample
        if ch == "\ufffd" or (unicodedata.category(ch) in ("Cc", "Cn", "Co", "Cs") and ch not in "\t\n\r\f\v")
    )
    return bad <= 2 + 0.05 * len(sample)  # a damaged character or two in a short text is still text


def _utf16_by_nuls(data: bytes) -> str | None:
    """UTF-16 without a BOM shows as a NUL in every other byte of mostly ASCII or Latin text."""
    head = data[:1024]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    pairs = len(head) // 2
    if pairs and odd >= 0.25 * pairs and even <= 0.1 * odd:
        return "utf-16-le"
    if pairs and even >= 0.25 * pairs and odd <= 0.1 * even:
        return "utf-16-be"
    return None


def _decode_unicode(data: bytes, encoding: str) -> str | None:
    """UTF-16/32 as text, or None where it does not read as text."""
    text = data.decode(encoding, errors="replace")
    return text if "\x00" not in text and _looks_like_text(text) else None


def _mostly_cjk_or_ascii(text: str) -> bool:
    """UTF-16 read from bytes without any NUL must be CJK text (ASCII would have NULs); the same bytes
    read in the wrong byte order or as another encoding give Hangul, Yi or symbols."""
    sample = "".join(text[:2048].split())
    common = sum(ch.isascii() for ch in sample) + len(_CJK_RE.findall(sample))
    return bool(sample) and common >= 0.9 * len(sample)


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding (UTF-8, UTF-16 with or without BOM, GBK/GB18030, ...); refuse
    binary data. The text returned always encodes to UTF-8."""
    if not data.strip():
        raise LoadError("empty file")
    bom, encoding = next(((bom, enc) for bom, enc in _BOMS if data.startswith(bom)), (b"", _utf16_by_nuls(data)))
    text = _decode_unicode(data[len(bom) :], encoding) if encoding else None
    if text is not None and not bom and sum(ch.isascii() for ch in text[:4096]) < 0.7 * len(text[:4096]):
        text = None  # the NUL pattern promised mostly ASCII; "\x00\xff" * 100 is binary, not "ÿÿÿ"
    if text is not None:
        if not text.strip():
            raise LoadError("empty file")
        return valid_unicode(text)
    try:
        from charset_normalizer import from_bytes
    except ImportError as exc:
        raise MissingDependency("charset-normalizer", "detecting text encodings", exc) from exc

    if b"\x00" in data:
        # A NUL anywhere marks binary data (weights, images, archives), not text with a stray byte:
        # stripping NULs would index garbage. Only UTF-16 text is let through, which in Chinese has too
        # few NULs to show the pattern above: charset_normalizer tells it apart. Two NUL bytes at an even
        # offset (U+0000) are never UTF-16 text.
        if 0 in array.array("H", data[: min(len(data), 65536) // 2 * 2]):
            raise LoadError("binary file (contains NUL bytes)")
        best = from_bytes(data).best()
        if best is not None and best.encoding.startswith("utf_16"):
            text = _decode_unicode(data, best.encoding)
            if text is not None and text.strip():
                return valid_unicode(text)
        raise LoadError("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")  # strict: never lets a lone surrogate through
    except UnicodeDecodeError:
        pass
    for match in from_bytes(data):  # best first
        encoding = match.encoding.lower()
        if encoding.startswith("utf_16"):
            if _mostly_cjk_or_ascii(str(match)):
                return valid_unicode(str(match))
            continue
        # GB2312 and GBK are subsets of GB18030; the superset decodes rarer characters too.
        if encoding in ("gb2312", "gbk", "cp936"):
            return valid_unicode(data.decode("gb18030", errors="replace"))
        return valid_unicode(str(match))
    # UTF-8 with a few damaged bytes (charset_normalizer gives up on it) is still the document.
    text = data.decode("utf-8", errors="replace")
    if text.count("\ufffd") <= max(1, len(text) // 100):
        return text
    raise LoadError("binary or undecodable file (no text encoding fits)")


def pdf_text(data: bytes) -> str:
    try:
        from pypdf import PdfReader
    except ImportError as exc:
        raise MissingDependency("pypdf", "reading PDF files", exc) from exc

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types on damaged files
        raise LoadError(f"unreadable PDF ({exc.__class__.__name__}: {exc})") from exc
    # Some fonts map glyphs to NUL; in PDF text that is noise, not a sign of binary data.
    return valid_unicode("\n\n".join(pages).replace("\x00", ""))


def source_from_bytes(data: bytes, source: str, fmt: str, **meta: str | None) -> RawSource:
    sha256 = hashlib.sha256(data).hexdigest()
    content = pdf_text(data) if fmt == "pdf" else decode_text(data)
    if not content.strip():
        raise LoadError("no text in file")
    return RawSource(source=source, content=content, format=fmt, sha256=sha256, **meta)


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    )
    return next((name for test, name in kinds if test(mode)), "special file")


def _stat_reason(path: Path, exc: OSError) -> str:
    """Why os.stat failed, in the user's words."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return "broken symlink"
    return f"cannot read ({exc.strerror or exc})"


def _too_large(size: int, max_bytes: int) -> LoadError:
    return LoadError(f"file too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB limit)")


def regular_stat(path: Path) -> os.stat_result:
    """The file's stat (symlinks followed); a LoadError unless it is a regular file."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise LoadError(_stat_reason(path, exc)) from exc
    if not stat.S_ISREG(info.st_mode):
        raise LoadError(f"not a regular file ({_file_kind(info.st_mode)})")
    return info


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file (symlinks followed) of at most max_bytes; anything else is a LoadError."""
    info = regular_stat(path)
    if info.st_size > max_bytes:
        raise _too_large(info.st_size, max_bytes)
    # The path may be swapped for a FIFO or device after the check: O_NONBLOCK keeps the open from
    # waiting on a FIFO, fstat checks what was opened, and the read is capped in case the file grew.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    with open(os.open(path, flags), "rb") as handle:
        opened = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(opened):
            raise LoadError(f"not a regular file ({_file_kind(opened)})")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)
    return data


def load_file(path: Path, max_bytes: int, source: str | None = None, **meta: str | None) -> RawSource:
    """One file as a RawSource labelled `source` (default: the file's name, never its absolute path)."""
    regular_stat(path)  # a FIFO or device is reported as such, whatever its name says
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(f"unsupported file type '{path.suffix or '(none)'}' (supported: {', '.join(FORMATS)})")
    return source_from_bytes(read_regular_file(path, max_bytes), source or path.name, fmt, **meta)


def load_url(url: str, max_bytes: int, timeout: float) -> RawSource:
    try:
        import httpx
    except ImportError as exc:
        raise MissingDependency("httpx", "fetching URLs", exc) from exc

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
        except (LookupError, UnicodeDecodeError):
            text = None  # a wrong charset header: detect instead
        # A NUL means the header lied about binary data: detection refuses it with a reason.
        if text is not None and text.strip() and "\x00" not in text:
            sha256 = hashlib.sha256(data).hexdigest()
            return RawSource(source=url, url=url, content=valid_unicode(text), format=fmt, sha256=sha256)
    return source_from_bytes(data, url, fmt, url=url)


def walk(path: Path) -> Iterator[Path | Skipped]:
    """The files under a folder in sorted order (or the path itself), and a `Skipped` for each thing
    passed over: hidden files, hidden folders (once, not file by file), broken symlinks, symlink loops,
    unreadable folders, folders seen before through a symlink. FIFOs and devices are yielded: loading
    refuses them with a reason."""
    if not path.is_dir():
        yield path
        return
    seen: set[tuple[int, int]] = set()
    stack: list[Iterator[Path]] = []

    def enter(folder: Path, info: os.stat_result) -> Skipped | None:
        if (info.st_dev, info.st_ino) in seen:
            return Skipped(str(folder), "folder already read (a symlink leads back to it)")
        seen.add((info.st_dev, info.st_ino))
        try:
            with os.scandir(folder) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            return Skipped(str(folder), f"cannot read folder ({exc.strerror or exc})")
        stack.append(iter([folder / name for name in names]))
        return None

    # An explicit stack: a deep folder tree must not hit Python's recursion limit.
    try:
        skip = enter(path, os.stat(path))
    except OSError as exc:
        skip = Skipped(str(path), _stat_reason(path, exc))
    if skip is not None:
        yield skip
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        hidden = child.name.startswith(".")
        try:
            info = os.stat(child)
        except OSError as exc:
            yield Skipped(str(child), "hidden file" if hidden else _stat_reason(child, exc))
            continue
        if hidden:
            yield Skipped(str(child), "hidden folder (not searched)" if stat.S_ISDIR(info.st_mode) else "hidden file")
        elif stat.S_ISDIR(info.st_mode):
            if (skip := enter(child, info)) is not None:
                yield skip
        else:
            yield child


def _fetch_or_skip(url: str, max_bytes: int, timeout: float) -> RawSource | Skipped:
    try:
        return load_url(url, max_bytes, timeout)
    except LoadError as exc:
        return Skipped(url, str(exc))


def _load_or_skip(path: Path, label: str, max_bytes: int) -> RawSource | Skipped:
    try:
        return load_file(path, max_bytes, source=label)
    except LoadError as exc:
        return Skipped(str(path), str(exc))
    except OSError as exc:
        return Skipped(str(path), f"cannot read ({exc.strerror or exc})")


def folder_label(path: Path) -> str:
    """The name a folder target's files are labelled under: its own name, resolved for '.' and '..'."""
    return path.name if path.name not in ("", ".", "..") else path.resolve().name


def iter_sources(targets: Iterable[str], max_bytes: int, timeout: float) -> Iterator[RawSource | Skipped]:
    """Load every file under the given paths and every URL; never raises for one bad source (only for
    a missing package). A file is labelled by its path from the target's parent folder."""
    # Labels become document ids: a second file with a label already loaded (the same folder named
    # twice, or two folders of one name) would overwrite the first, so it is skipped with the reason.
    loaded: set[str] = set()

    def duplicate(label: str, shown: str) -> Skipped | None:
        if label not in loaded:
            return None
        return Skipped(shown, f"a file labelled '{label}' was already loaded (same name in two targets?)")

    def keep(item: RawSource | Skipped) -> RawSource | Skipped:
        if isinstance(item, RawSource):
            loaded.add(item.source)
        return item

    for target in targets:
        if is_url(target):
            yield duplicate(target, target) or keep(_fetch_or_skip(target, max_bytes, timeout))
            continue
        path = Path(target)
        try:
            info = os.stat(path)
        except OSError as exc:
            missing = exc.errno == errno.ENOENT and not path.is_symlink()
            yield Skipped(target, "no such file or folder" if missing else _stat_reason(path, exc))
            continue
        if not stat.S_ISDIR(info.st_mode):
            yield duplicate(path.name, target) or keep(_load_or_skip(path, path.name, max_bytes))
            continue
        root = folder_label(path)
        for item in walk(path):
            if isinstance(item, Skipped):
                yield item
                continue
            inside = item.relative_to(path).as_posix()
            label = f"{root}/{inside}" if root else inside
            yield duplicate(label, str(item)) or keep(_load_or_skip(item, label, max_bytes))


def iter_bundled_corpus(max_bytes: int) -> Iterator[RawSource | Skipped]:
    """The shipped corpus, with title, URL and licence taken from its manifest; labelled
    `corpus/<manifest path>` wherever the package is installed."""
    from corpus import CORPUS_DIR, MANIFEST_PATH

    manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    for entry in manifest["documents"]:
        label = f"corpus/{entry['path']}"
        try:
            yield load_file(
                CORPUS_DIR / entry["path"],
                max_bytes,
                source=label,
                title=entry["title"],
                url=entry.get("url"),
                license=entry.get("license"),
                language=entry.get("language"),
            )
        except (LoadError, OSError) as exc:
            yield Skipped(label, str(exc))
