"""Only regular files are read, every skip is reported, and source labels do not depend on where files live."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
from pathlib import Path

import pytest

from ingest.errors import MissingDependency
from ingest.load import Skipped, iter_bundled_corpus, iter_sources, load_file
from ingest.pipeline import doc_id_for

posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks (POSIX)")


def load_all(targets: list[str], max_bytes: int = 1_000_000) -> tuple[list, list[Skipped]]:
    """iter_sources in a thread, so that a read blocking on a FIFO fails the test instead of hanging it."""
    items: list = []
    worker = threading.Thread(target=lambda: items.extend(iter_sources(targets, max_bytes, timeout=5)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():
        for fifo in [Path(t) for t in targets] + [p for t in targets if Path(t).is_dir() for p in Path(t).rglob("*")]:
            if fifo.is_fifo():  # give the blocked reader its EOF so the thread ends
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("loading blocked on a file that is not a regular file")
    return [i for i in items if not isinstance(i, Skipped)], [i for i in items if isinstance(i, Skipped)]


@pytest.fixture()
def awkward(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "good.md").write_text("# Alpaca\n\nAlpaca was fine-tuned from LLaMA 7B.", encoding="utf-8")
    (docs / "sub" / "notes.txt").write_text("Vicuna was trained on ShareGPT.", encoding="utf-8")
    (docs / ".draft.md").write_text("# Draft\n\nNot ready.", encoding="utf-8")
    (docs / ".git").mkdir()
    for i in range(3):
        (docs / ".git" / f"object{i}.txt").write_text("git internals", encoding="utf-8")
    (docs / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    if hasattr(os, "mkfifo"):
        os.mkfifo(docs / "pipe.txt")
        os.symlink("/dev/zero", docs / "zero.txt")
        os.symlink(docs / "loop_b.md", docs / "loop_a.md")
        os.symlink(docs / "loop_a.md", docs / "loop_b.md")
        os.symlink(docs / "nowhere.md", docs / "dangling.md")
        os.symlink(docs, docs / "sub" / "back_up")  # a folder symlink leading back: must not loop
    return docs


@posix_only
def test_only_regular_files_are_read_and_every_skip_is_listed(awkward: Path) -> None:
    loaded, skipped = load_all([str(awkward)])
    assert sorted(r.source for r in loaded) == ["docs/good.md", "docs/sub/notes.txt"]
    reasons = {Path(s.source).relative_to(awkward).as_posix(): s.reason for s in skipped}
    assert reasons == {
        ".draft.md": "hidden file",
        ".git": "hidden folder (not searched)",  # once, not file by file
        "image.png": reasons["image.png"],
        "pipe.txt": "not a regular file (FIFO)",
        "zero.txt": "not a regular file (character device)",
        "loop_a.md": "symlink loop",
        "loop_b.md": "symlink loop",
        "dangling.md": "broken symlink",
        "sub/back_up": "folder already read (a symlink leads back to it)",
    }
    assert "unsupported file type '.png'" in reasons["image.png"]


@posix_only
def test_special_files_named_directly_are_skipped(awkward: Path) -> None:
    sock_path = awkward / "s.md"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(sock_path))
    except OSError:
        pytest.skip("cannot bind a unix socket here")
    names = ["pipe.txt", "zero.txt", "loop_a.md", "dangling.md", "s.md", "missing.md"]
    loaded, skipped = load_all([str(awkward / n) for n in names])
    server.close()
    assert not loaded
    assert [(Path(s.source).name, s.reason) for s in skipped] == [
        ("pipe.txt", "not a regular file (FIFO)"),
        ("zero.txt", "not a regular file (character device)"),
        ("loop_a.md", "symlink loop"),
        ("dangling.md", "broken symlink"),
        ("s.md", "not a regular file (socket)"),
        ("missing.md", "no such file or folder"),
    ]


def test_a_file_larger_than_its_size_check_said_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file may grow between the size check and the read: the read stops at max_bytes + 1."""
    big = tmp_path / "big.txt"
    big.write_text("x" * 5000, encoding="utf-8")
    real_stat = os.stat

    def stale_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        info = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if Path(str(path)) != big:
            return info
        fields = list(info[:10])
        fields[6] = 10  # st_size as it was when checked
        return os.stat_result(fields)

    monkeypatch.setattr(os, "stat", stale_stat)
    loaded, skipped = load_all([str(big)], max_bytes=1000)
    assert not loaded and len(skipped) == 1 and "too large" in skipped[0].reason


def test_labels_do_not_depend_on_where_the_folder_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = tmp_path / "orig" / "notes"
    (original / "deep" / "er").mkdir(parents=True)
    (original / "a.md").write_text("# A\n\nAlpaca was fine-tuned from LLaMA.", encoding="utf-8")
    (original / "deep" / "er" / "b.txt").write_text("Koala is a dialogue model.", encoding="utf-8")
    copies = [tmp_path / "first" / "place" / "notes", tmp_path / "second" / "notes"]
    for copy in copies:
        shutil.copytree(original, copy)
    runs = [load_all([str(copy)])[0] for copy in copies]
    monkeypatch.chdir(copies[0])
    runs.append(load_all(["."])[0])  # "." is labelled by the folder's own name
    monkeypatch.chdir(copies[1].parent)
    runs.append(load_all(["notes/"])[0])
    labels = [[r.source for r in run] for run in runs]
    assert labels[0] == ["notes/a.md", "notes/deep/er/b.txt"]
    assert all(run == labels[0] for run in labels)
    assert {doc_id_for(label) for run in labels for label in run} == {doc_id_for(label) for label in labels[0]}
    single = [load_all([str(copy / "deep" / "er" / "b.txt")])[0][0].source for copy in copies]
    assert single == ["b.txt", "b.txt"]


def test_bundled_corpus_labels_are_relative() -> None:
    from corpus import MANIFEST_PATH

    manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    items = list(iter_bundled_corpus(50_000_000))
    assert not [i for i in items if isinstance(i, Skipped)]
    assert [i.source for i in items] == [f"corpus/{e['path']}" for e in manifest["documents"]]
    assert "corpus/seeds/000_5b6a997812253bcf.txt" in {i.source for i in items}
    assert not any(os.path.isabs(i.source) for i in items)


def test_load_file_defaults_to_the_file_name(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Falcon\n\nFalcon-40B.", encoding="utf-8")
    assert load_file(page, 1_000_000).source == "page.md"
    assert load_file(page, 1_000_000, source="x/page.md").source == "x/page.md"


def test_missing_pypdf_is_an_error_not_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    monkeypatch.setitem(sys.modules, "pypdf", None)  # makes `from pypdf import ...` fail
    with pytest.raises(MissingDependency, match="'pypdf'") as info:
        list(iter_sources([str(tmp_path)], 1_000_000, timeout=5))
    assert info.value.package == "pypdf"


def test_two_targets_with_one_label_do_not_merge(tmp_path: Path) -> None:
    """Labels become document ids: a second file of the same label is reported, not silently merged."""
    for place in ("a", "b"):
        (tmp_path / place / "notes").mkdir(parents=True)
        (tmp_path / place / "notes" / "x.md").write_text(f"# {place}\n\nText of {place}.", encoding="utf-8")
    loaded, skipped = load_all([str(tmp_path / "a" / "notes"), str(tmp_path / "b" / "notes")])
    assert [r.source for r in loaded] == ["notes/x.md"] and "Text of a." in loaded[0].content
    assert [s.source for s in skipped] == [str(tmp_path / "b" / "notes" / "x.md")]
    assert "already loaded" in skipped[0].reason
