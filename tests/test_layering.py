"""The architecture is checked, not hoped for: azure.* stays in the Azure adapters, and the core
and the policies import nothing that does I/O."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = {
    "azure",
    "socket",
    "ssl",
    "http",
    "urllib",
    "requests",
    "httpx",
    "subprocess",
    "threading",
    "asyncio",
    "time",
    "logging",
    "structlog",
    "random",
    "os",
    "shutil",
    "apscheduler",
    "sqlite3",
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_azure_sdk_is_imported_only_by_the_azure_adapters() -> None:
    offenders = []
    for path in sorted((ROOT / "scaler").rglob("*.py")) + sorted((ROOT / "policies").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("scaler/adapters/azure"):
            continue
        if any(name.split(".")[0] == "azure" for name in imports(path)):
            offenders.append(rel)
    assert offenders == []


def test_core_and_policies_do_no_io() -> None:
    offenders = []
    for base in (ROOT / "scaler" / "core", ROOT / "policies"):
        for path in sorted(base.rglob("*.py")):
            bad = {n for n in imports(path) if n.split(".")[0] in IO_MODULES}
            if bad:
                offenders.append((path.relative_to(ROOT).as_posix(), sorted(bad)))
    assert offenders == []
