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


PURE_EXCEPTIONS = {"apscheduler.triggers.cron"}
"""APScheduler's cron trigger is a pure function from an instant to the next fire time (the
``schedule`` policy's KEDA cron form uses it); its schedulers and executors stay out."""


def test_core_and_policies_do_no_io() -> None:
    offenders = []
    for base in (ROOT / "scaler" / "core", ROOT / "policies"):
        for path in sorted(base.rglob("*.py")):
            bad = {
                n
                for n in imports(path)
                if n.split(".")[0] in IO_MODULES and n not in PURE_EXCEPTIONS
            }
            if bad:
                offenders.append((path.relative_to(ROOT).as_posix(), sorted(bad)))
    assert offenders == []


def module_level_imports(path: Path) -> set[str]:
    """Imports executed when the module loads (not those inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_pool_kinds_load_no_io_and_no_adapter_until_an_actuator_is_built() -> None:
    """The backtest and the core import the kinds for their planners; only an actuator factory
    (called by the daemon's wiring) brings in an SDK or an adapter."""
    offenders = []
    for path in sorted((ROOT / "scaler" / "kinds").glob("*.py")):
        bad = {
            n
            for n in module_level_imports(path)
            if n.split(".")[0] in IO_MODULES or n.startswith("scaler.adapters")
        }
        if bad:
            offenders.append((path.relative_to(ROOT).as_posix(), sorted(bad)))
    assert offenders == []


def test_no_kind_name_is_switched_on_outside_the_kinds() -> None:
    """Adding a kind touches one new module and the registry: nothing else names a kind."""
    names = {"vmss", "pexip-teams", "vm-set"}
    offenders = []
    for rel in (
        "scaler/daemon.py",
        "scaler/tick.py",
        "scaler/persistence.py",
        "scaler/config.py",
        "scaler/adapters/pools.py",
        "scaler/adapters/sim.py",
        "scaler/backtest/engine.py",
        "scaler/backtest/runner.py",
        "scaler/demo.py",
    ):
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                for side in (node.left, *node.comparators):
                    if isinstance(side, ast.Constant) and side.value in names:
                        offenders.append((rel, node.lineno, side.value))
    assert offenders == []


def test_the_daemon_asks_its_ports_instead_of_probing_them() -> None:
    probes = [
        (name, node.lineno)
        for name in ("daemon.py", "tick.py", "persistence.py")
        for node in ast.walk(ast.parse((ROOT / "scaler" / name).read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr")
        and node.args
        and isinstance(node.args[0], ast.Attribute)
        and node.args[0].attr in ("actuator", "metrics", "quota")
    ]
    assert probes == []


def test_the_daemon_is_split_along_its_seams() -> None:
    """The loop, the tick and persistence are separate modules; the tick never saves state and
    persistence never decides."""
    tick = imports(ROOT / "scaler" / "tick.py")
    persistence = imports(ROOT / "scaler" / "persistence.py")
    assert "scaler.state" not in tick and "scaler.persistence" not in tick
    assert "scaler.core.decide" not in persistence and "scaler.kinds" not in persistence
