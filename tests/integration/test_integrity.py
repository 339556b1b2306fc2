"""Integrity of the index on disk: damage is found and repaired, builders and readers share a folder
safely, and document ids do not depend on where files or the package live. Real FAISS, bm25s,
SQLite and the real embedder; concurrency runs real processes."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from corpus import CORPUS_DIR
from ingest import index as index_module
from ingest.index import Index, IndexCorrupt, IndexProblem
from ingest.pipeline import run_ingest
from ingest.settings import IngestSettings
from rag.service import Atlas
from rag.settings import RagSettings

ROOT = Path(__file__).parents[2]
# The concurrency tests run this many rounds (CI sets 5: races show up only now and then).
ROUNDS = int(os.environ.get("LLM_ATLAS_CONCURRENCY_ROUNDS", "1"))

NEW_DOC = """# Zorblax-7B

Zorblax-7B is a language model trained on 3T tokens of ocean-science text by the Kelp Institute.
It has a context length of 8192 tokens and was released under the Apache 2.0 licence.
"""


def small_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("raw/vicuna-model-card.md", "raw/grok-1-readme.md", "seeds/004_f2fee1a0cec11105.txt"):
        shutil.copy(CORPUS_DIR / name, folder / Path(name).name)
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small corpus and its index, built once; tests work on copies."""
    base = tmp_path_factory.mktemp("integrity")
    corpus = small_corpus(base / "docs")
    run_ingest([str(corpus)], IngestSettings(), base / "index")
    return corpus, base / "index"


def copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def version_of(index_dir: Path) -> Path:
    return (index_dir / "current").resolve()


def garble_middle(path: Path) -> None:
    """Random bytes over the middle of a file, keeping its size (what a bad disk sector does)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = np.random.default_rng(0).bytes(min(4096, len(data) - middle))
    path.write_bytes(bytes(data))


def drop_table(path: Path, table: str) -> None:
    """A store that lacks one of its tables (its size kept, as a VACUUM-less DROP leaves it)."""
    db = sqlite3.connect(path)
    db.execute(f"DROP TABLE {table}")
    db.commit()
    db.close()


def garble_sqlite_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page * 2, len(data), page * 3):  # every third page after the schema
        data[start : start + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "sqlite pages garbled": lambda v: garble_sqlite_pages(v / "store.sqlite"),
    "sqlite truncated": lambda v: (v / "store.sqlite").write_bytes((v / "store.sqlite").read_bytes()[:5000]),
    "manifest holds a list": lambda v: (v / "manifest.json").write_text("[1, 2, 3]"),
    "manifest not json": lambda v: (v / "manifest.json").write_text("{not json"),
    "lexicon table dropped": lambda v: drop_table(v / "store.sqlite", "lexicon"),
    "random bytes inside vectors.faiss": lambda v: garble_middle(v / "vectors.faiss"),
    "vectors.npy deleted": lambda v: (v / "vectors.npy").unlink(),
    "languages.npy garbled": lambda v: garble_middle(v / "languages.npy"),
    "gazetteer garbled": lambda v: (v / "gazetteer.json").write_text('{"names": 5}'),
    "bm25 folder deleted": lambda v: shutil.rmtree(v / "bm25"),
}


def test_a_store_without_its_lexicon_is_damage_even_unhashed(
    built: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the size where files are hashed on load, the open itself finds the missing lexicon table."""
    _, source = built
    index_dir = copy_index(source, tmp_path / "index")
    drop_table(version_of(index_dir) / "store.sqlite", "lexicon")
    monkeypatch.setattr(index_module, "HASH_AT_LOAD_MAX_BYTES", 0)
    with pytest.raises(IndexCorrupt, match="lexicon"):
        Index(index_dir, embedder_name="use-m3")


@pytest.mark.parametrize("damage", list(CORRUPTIONS))
def test_damage_is_reported_and_ingest_repairs_it(built: tuple[Path, Path], tmp_path: Path, damage: str) -> None:
    corpus, source = built
    index_dir = copy_index(source, tmp_path / "index")
    CORRUPTIONS[damage](version_of(index_dir))

    # Every reader gets the clear message with the command that repairs it, never a traceback.
    with pytest.raises(IndexProblem, match="Rebuild it with: llm-atlas ingest --index"):
        Index(index_dir, embedder_name="use-m3")
    env = {**os.environ, "LLM_ATLAS_INDEX_DIR": str(index_dir)}
    asked = subprocess.run(
        [sys.executable, "-c", "from server.cli import ask_main; ask_main()", "How was Vicuna trained?"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert asked.returncode == 2 and "Rebuild it with" in asked.stderr and "Traceback" not in asked.stderr

    # The suggested command rebuilds from scratch; it never says "up to date".
    report = run_ingest([str(corpus)], IngestSettings(), index_dir)
    assert not report.up_to_date and report.embedded_chunks == report.chunks
    assert report.rebuilt_because
    with Index(index_dir, embedder_name="use-m3", verify=True) as repaired:
        assert len(repaired.documents()) == 3
    # ... and what comes next works too.
    added = tmp_path / "more"
    added.mkdir()
    (added / "zorblax.md").write_text(NEW_DOC, encoding="utf-8")
    report = run_ingest([str(added)], IngestSettings(), index_dir, add=True)
    assert report.documents == 4 and report.embedded_chunks < report.chunks


def test_damage_past_the_hash_limit_is_found_when_used(
    built: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large indexes check only sizes at load; damage is then caught where it shows."""
    monkeypatch.setattr(index_module, "HASH_AT_LOAD_MAX_BYTES", 0)
    index_dir = copy_index(built[1], tmp_path / "index")
    version = version_of(index_dir)
    index = Index(index_dir)
    # Garbled floats (same file size) with huge exponents give inf scores that top every query:
    # searching says the index is damaged instead.
    import faiss

    vectors = faiss.rev_swig_ptr(index.faiss.get_xb(), index.faiss.ntotal * index.faiss.d)
    vectors[: index.faiss.d * 3] = 1e37
    with pytest.raises(IndexCorrupt, match="non-finite"):
        index.search_vectors(np.ones((1, index.faiss.d), dtype=np.float32), 5)
    index.close()
    # Garbled SQLite pages behind a valid header are reported when read.
    garble_sqlite_pages(version / "store.sqlite")
    try:
        index = Index(index_dir)
    except IndexCorrupt:
        return  # found at load already
    with pytest.raises(IndexCorrupt, match="Rebuild it with"):
        for start in range(0, len(index), 50):
            index.chunks(list(range(start, min(start + 50, len(index)))))
            index.document(index.chunks([start])[0]["doc_id"])


def test_check_command_verifies_every_file(built: tuple[Path, Path], tmp_path: Path) -> None:
    index_dir = copy_index(built[1], tmp_path / "index")
    command = [sys.executable, "-c", "from server.cli import app; app()", "ingest", "--check", "--json"]
    sound = subprocess.run([*command, "--index", str(index_dir)], capture_output=True, text=True, cwd=ROOT)
    assert sound.returncode == 0 and json.loads(sound.stdout)["ok"] is True
    garble_middle(version_of(index_dir) / "vectors.faiss")
    broken = subprocess.run([*command, "--index", str(index_dir)], capture_output=True, text=True, cwd=ROOT)
    assert broken.returncode == 1 and "checksum" in json.loads(broken.stdout)["problem"]


def test_reader_keeps_its_version_until_it_lets_go(built: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, source = built
    index_dir = copy_index(source, tmp_path / "index")
    reader = Index(index_dir)
    old = reader.version
    (corpus.parent / "extra").mkdir(exist_ok=True)
    (corpus.parent / "extra" / "zorblax.md").write_text(NEW_DOC, encoding="utf-8")
    report = run_ingest([str(corpus.parent / "extra")], IngestSettings(), index_dir, add=True)
    assert version_of(index_dir) != old and report.version == version_of(index_dir).name
    # The old version is still whole: the reader can read any row of it.
    assert old.is_dir() and len(reader.chunks(list(range(len(reader))))) == len(reader)
    reader.close()
    run_ingest([str(corpus.parent / "extra")], IngestSettings(), index_dir, add=True)  # up to date
    assert not old.exists()
    assert [p.name for p in index_dir.iterdir() if p.name.startswith(("v-", ".trash"))] == [version_of(index_dir).name]


def test_atlas_follows_a_new_version(built: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, source = built
    index_dir = copy_index(source, tmp_path / "index")
    atlas = Atlas.load(RagSettings(index_dir=index_dir, llm_base_url=None), index_dir)
    before = atlas.health()
    assert before["ready"] and before["documents"] == 3
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zorblax.md").write_text(NEW_DOC, encoding="utf-8")
    run_ingest([str(extra)], IngestSettings(), index_dir, add=True)
    answer = atlas.ask("What was Zorblax-7B trained on?")
    assert answer.answered and any("Zorblax" in c.quote for c in answer.citations)
    after = atlas.health()
    assert after["ready"] and after["documents"] == 4 and after["version"] != before["version"]
    # A damaged newer version is not switched to: the working one keeps answering.
    (extra / "quibble.md").write_text(NEW_DOC.replace("Zorblax", "Quibble"), encoding="utf-8")
    assert not run_ingest([str(extra)], IngestSettings(), index_dir, add=True).up_to_date
    (version_of(index_dir) / "gazetteer.json").write_text("")
    assert atlas.ask("What was Zorblax-7B trained on?").answered
    assert atlas.health()["version"] == after["version"] and "damaged" in atlas.health()["problem"]


def test_document_ids_do_not_depend_on_where_files_live(tmp_path: Path) -> None:
    ids = []
    for place in ("one/place", "another/deeper/place"):
        corpus = small_corpus(tmp_path / place / "docs")
        report = run_ingest([str(corpus)], IngestSettings(), tmp_path / place / "index")
        with Index(tmp_path / place / "index") as index:
            docs = index.documents()
        assert report.documents == 3
        assert not any(str(tmp_path) in (d["source"] + d["url"]) for d in docs)
        ids.append(sorted(d["doc_id"] for d in docs))
    assert ids[0] == ids[1]


def test_bundled_documents_are_keyed_by_their_manifest_path(bundled_index: Path) -> None:
    with Index(bundled_index) as index:
        docs = index.documents()
    manifest = json.loads((CORPUS_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert {d["source"] for d in docs} == {f"corpus/{e['path']}" for e in manifest["documents"]}
    assert not any(d["url"].startswith("/") or str(CORPUS_DIR) in d["url"] for d in docs)


# --- Concurrency: real processes on one index folder -------------------------------------------


def start(args: list[str], index_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "LLM_ATLAS_INDEX_DIR": str(index_dir), "LLM_ATLAS_LLM_BASE_URL": ""}
    return subprocess.Popen(
        [sys.executable, "-c", args[0], *args[1:]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip


ASK = "from server.cli import ask_main; ask_main()"
CLI = "from server.cli import app; app()"


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_first_asks_at_once_build_one_index(tmp_path: Path, round_: int) -> None:
    index_dir = tmp_path / "index"
    procs = [start([ASK, "How was Vicuna trained?", "--json"], index_dir) for _ in range(2)]
    answers = [json.loads(finish(p)) for p in procs]
    assert all(a["answered"] for a in answers)
    with Index(index_dir, verify=True) as index:
        assert len(index.documents()) == 37
    assert len([p for p in index_dir.iterdir() if p.name.startswith("v-")]) == 1


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_asks_during_ingest_and_two_ingests_at_once(built: tuple[Path, Path], tmp_path: Path, round_: int) -> None:
    corpus, source = built
    index_dir = copy_index(source, tmp_path / "index")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zorblax.md").write_text(NEW_DOC, encoding="utf-8")
    ingests = [start([CLI, "ingest", str(extra), "--add", "--json"], index_dir) for _ in range(2)]
    asks = [start([ASK, "How was Vicuna trained?", "--json"], index_dir) for _ in range(2)]
    reports = [json.loads(finish(p)) for p in ingests]
    assert all(json.loads(finish(p))["answered"] for p in asks)
    # The second builder waited for the first and found its result.
    assert sorted(r["up_to_date"] for r in reports) == [False, True]
    assert reports[0]["version"] == reports[1]["version"] == version_of(index_dir).name
    with Index(index_dir, verify=True) as index:
        assert len(index.documents()) == 4
    after = start([ASK, "What was Zorblax-7B trained on?", "--json"], index_dir)
    assert "Zorblax" in json.dumps(json.loads(finish(after))["citations"])


def test_sqlite_of_a_leased_version_stays_readable_from_new_threads(built: tuple[Path, Path], tmp_path: Path) -> None:
    """The service's failure mode: SQLite is opened lazily per thread, after an ingest switched."""
    import threading

    corpus, source = built
    index_dir = copy_index(source, tmp_path / "index")
    reader = Index(index_dir)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zorblax.md").write_text(NEW_DOC, encoding="utf-8")
    run_ingest([str(extra)], IngestSettings(), index_dir, add=True)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            reader.chunks([0, 1])
        except (IndexProblem, sqlite3.Error) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    reader.close()


def test_a_missing_package_is_named_not_reported_as_damage(
    built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.errors import MissingDependency

    for module, package in (("faiss", "faiss-cpu"), ("bm25s", "bm25s")):
        with monkeypatch.context() as patched:
            patched.setitem(sys.modules, module, None)  # import now fails as if not installed
            with pytest.raises(MissingDependency, match=f"pip install {package}"):
                Index(built[1])


def test_invalid_utf8_question_gets_a_clear_error(built: tuple[Path, Path]) -> None:
    env = {**os.environ, "LLM_ATLAS_INDEX_DIR": str(built[1])}
    asked = subprocess.run(
        [sys.executable.encode(), b"-c", ASK.encode(), b"How was Vicuna \xff\xfe trained?"],
        capture_output=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    stderr = asked.stderr.decode(errors="replace")
    assert asked.returncode == 2 and "not valid text" in stderr and "Traceback" not in stderr
