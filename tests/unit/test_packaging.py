"""Every Python package and every data file in the source tree ships in the wheel: a subpackage or a
data file missing from pyproject installs fine and then fails (or silently falls back) in a fresh
`pip install .`."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def test_every_package_is_listed_in_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    top_level = {name.split(".")[0] for name in listed}
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in top_level
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk - listed == set(), f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"


def test_every_data_file_is_package_data() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    globs = config.get("package-data", {})
    missing = []
    for package in config["packages"]:
        folder = ROOT.joinpath(*package.split("."))
        for path in folder.rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            inner = [folder / part for part in path.relative_to(folder).parents if part != Path(".")]
            if any((directory / "__init__.py").exists() for directory in inner):
                continue  # a file of a subpackage, checked with that package
            relative = path.relative_to(folder).as_posix()
            if not any(fnmatch.fnmatch(relative, g) for g in globs.get(package, [])):
                missing.append(f"{package}: {relative}")
    assert missing == [], f"add to [tool.setuptools.package-data]: {missing}"


def test_missing_weights_are_an_error_not_the_untrained_defaults(tmp_path: Path) -> None:
    from rag.weights import WEIGHTS_FILE, WeightsMissing, load_weights

    assert load_weights(WEIGHTS_FILE).fitted_on  # the shipped file is a fitted one
    with pytest.raises(WeightsMissing, match="reinstall llm-atlas"):
        load_weights(tmp_path / "weights.json")
