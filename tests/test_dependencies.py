"""Every library ``pyproject.toml`` declares for the package is imported by it (a dependency
nobody imports is dead weight in every install and image)."""

from __future__ import annotations

import ast
import re
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

DATA_ONLY = {
    "tzdata": "the IANA time zone database the standard library's zoneinfo falls back to where "
    "the system has none (slim containers, Windows); never imported by name",
}


@cache
def _imported() -> frozenset[str]:
    """Every dotted name the package imports, anywhere in a module (functions included)."""
    found: set[str] = set()
    for base in ("scaler", "policies"):
        for path in (ROOT / base).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                    found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _modules_of(name: str) -> set[str]:
    files = distribution(name).files or []
    out = set()
    for f in files:
        if f.suffix == ".py":
            out.add(".".join(f.with_suffix("").parts).removesuffix(".__init__"))
    return out


def _declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0] for d in project["dependencies"]]


@pytest.mark.parametrize("name", _declared())
def test_each_declared_dependency_is_imported(name: str) -> None:
    if name in DATA_ONLY:
        return
    try:
        modules = _modules_of(name)
    except PackageNotFoundError:
        pytest.fail(f"{name} is declared but not installed (make install)")
    used = sorted(_imported() & modules)
    assert used, (
        f"{name} is declared in pyproject.toml but nothing in scaler/ or policies/ imports it"
    )
