"""The bundled corpus is data: every file is a byte-exact copy of its source."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from corpus import CORPUS_DIR, MANIFEST_PATH

MANIFEST = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))["documents"]
# The raw material the corpus was copied from, beside the project checkout where it exists.
SHARED = Path(__file__).parents[3] / "shared" / "corpus"


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["path"] for e in MANIFEST])
def test_every_file_matches_its_manifest_hash(entry: dict) -> None:
    data = (CORPUS_DIR / entry["path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_manifest_lists_every_file() -> None:
    on_disk = {p.relative_to(CORPUS_DIR).as_posix() for d in ("raw", "seeds") for p in (CORPUS_DIR / d).iterdir()}
    assert on_disk == {e["path"] for e in MANIFEST} and len(MANIFEST) == 37


@pytest.mark.skipif(not SHARED.is_dir(), reason="the raw material is not beside this checkout")
def test_files_equal_the_raw_material() -> None:
    differ = [e["path"] for e in MANIFEST if (SHARED / e["path"]).read_bytes() != (CORPUS_DIR / e["path"]).read_bytes()]
    assert not differ
