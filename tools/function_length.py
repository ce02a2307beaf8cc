"""Fails when a function in ``scaler/`` or ``policies/`` is longer than 80 lines.

A function that long does several jobs (issue 24); ruff has no line-count rule (``C901`` counts
paths, ``PLR0915`` statements), so ``make lint`` runs this beside it. A function's length is
``end_lineno - lineno + 1`` of its ``def`` (decorators excluded, docstring and comments
included); a nested function counts inside its parent and is checked on its own as well.

``python tools/function_length.py [PATH ...]`` prints one line per function over the limit,
naming the file, the line, the function and its length, and exits 1; it also fails on an
``ALLOWED`` entry that is no longer needed, so the list only ever shrinks.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

MAX_LINES = 80
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATHS = ("scaler", "policies")

# Temporarily over the limit, each with why. The metric-source plug-in work (issue 24) owns
# these two and splits them; remove an entry when its function fits (the check says when).
ALLOWED: dict[str, str] = {}


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST, int]]:
    """Yield ``(qualified name, node, length in lines)`` for every function under ``tree``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            end = node.end_lineno if node.end_lineno is not None else node.lineno
            yield prefix + node.name, node, end - node.lineno + 1
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def check(paths: list[Path], *, root: Path = ROOT, max_lines: int = MAX_LINES) -> list[str]:
    """Return one problem line per function over ``max_lines`` (and per stale allowance)."""
    problems: list[str] = []
    seen: set[str] = set()
    for base in paths:
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for file in files:
            rel = file.resolve().relative_to(root).as_posix()
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=rel)
            for name, node, length in functions(tree):
                key = f"{rel}::{name}"
                if length <= max_lines:
                    continue
                if key in ALLOWED:
                    seen.add(key)
                    continue
                line = getattr(node, "lineno", 0)
                problems.append(
                    f"{rel}:{line}: function {name} is {length} lines long "
                    f"(at most {max_lines}); split it into named phases"
                )
    checked = {p.resolve().relative_to(root).as_posix() for p in paths if p.exists()}
    for key in sorted(ALLOWED.keys() - seen):
        file = key.split("::")[0]
        if any(file == c or file.startswith(c + "/") for c in checked):
            problems.append(
                f"{key} is in ALLOWED of tools/function_length.py but is no longer over "
                f"{max_lines} lines (or is gone): remove the entry"
            )
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or [ROOT / p for p in DEFAULT_PATHS]
    problems = check(paths)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
