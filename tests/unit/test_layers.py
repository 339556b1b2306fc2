"""Imports flow one way: interfaces (server) -> rag -> ingest. import-linter enforces it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def test_import_layers() -> None:
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.fail("import-linter is not installed: pip install -e '.[test]'")
    out = subprocess.run([lint], cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout
