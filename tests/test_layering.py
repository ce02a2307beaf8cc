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


def test_pool_kinds_import_no_io_and_no_adapter() -> None:
    """The backtest and the core import the kinds for their planners; a kind's actuator lives in
    the composition root (``scaler.actuators``), so no import of a kind — not one inside a
    function or under ``TYPE_CHECKING`` — brings in an SDK or an adapter."""
    offenders = []
    for path in sorted((ROOT / "scaler" / "kinds").glob("*.py")):
        bad = {
            n
            for n in imports(path)
            if n.split(".")[0] in IO_MODULES or n.startswith("scaler.adapters")
        }
        if bad:
            offenders.append((path.relative_to(ROOT).as_posix(), sorted(bad)))
    assert offenders == []


def test_metric_sources_import_no_io_and_no_adapter() -> None:
    """A source (``scaler.sources``) is pure — config checks, the view a fallback reads, its
    capabilities — and its readers live in the composition root (``scaler.readers``)."""
    offenders = []
    for path in sorted((ROOT / "scaler" / "sources").glob("*.py")):
        bad = {
            n
            for n in imports(path)
            if n.split(".")[0] in IO_MODULES or n.startswith(("scaler.adapters", "scaler.kinds"))
        }
        if bad:
            offenders.append((path.relative_to(ROOT).as_posix(), sorted(bad)))
    assert offenders == []


def test_no_source_name_is_switched_on_outside_the_sources() -> None:
    """Adding a metric source touches one new module (and its reader's) and the registry: the
    daemon, the config, the kinds, the adapters and the trace export compare no source's name,
    and no source names another."""
    names = {"azure-monitor", "pexip", "log-analytics"}
    skip = ("scaler/sources/__init__.py",)
    offenders = []
    for path in sorted((ROOT / "scaler").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in skip:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                for side in (node.left, *node.comparators):
                    if isinstance(side, ast.Constant) and side.value in names:
                        offenders.append((rel, node.lineno, side.value))
                    if isinstance(side, ast.Tuple | ast.List | ast.Set) and any(
                        isinstance(e, ast.Constant) and e.value in names for e in side.elts
                    ):
                        offenders.append((rel, node.lineno, "a tuple of source names"))
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
        "scaler/wiring.py",
        "scaler/adapters/pexip.py",
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


def test_each_kind_owns_its_keys_and_the_shared_pool_model_names_none() -> None:
    """A kind's keys of ``[[pools]]`` are its own ``Options`` model, validated by the loader:
    ``PoolConfig`` (and so ``scaler/config_model.py``) names none of them, and nothing outside
    the kinds and their actuators reads one by name."""
    from scaler import kinds
    from scaler.config_model import PoolConfig

    owned = {
        key
        for kind in kinds.discover().values()
        if kind.Options is not None
        for key in kind.Options.model_fields
    }
    assert owned >= {"drain", "max_drain_minutes", "teams_proxy", "vm_set"}
    assert not owned & set(PoolConfig.model_fields)
    readers = []
    for path in sorted((ROOT / "scaler").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("scaler/kinds/", "scaler/actuators/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in owned
                and isinstance(node.value, ast.Name)
                and node.value.id == "pool"
            ):
                readers.append((rel, node.lineno, node.attr))
    assert readers == []


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


# -- The layers, over every import -----------------------------------------------------------
#
# core <- support <- policies <- kinds <- adapters <- composition root: a module imports only
# from its own layer and the layers below it, counting every import statement (module level,
# inside functions, under ``TYPE_CHECKING``; relative ones resolved).

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("scaler.core",)),
    (
        "support",
        (
            "scaler.errors",
            "scaler.redact",
            "scaler.logs",
            "scaler.regions",
            "scaler.templates",
            "scaler.traces",
            "scaler.reads",
            "scaler.loadgen",
            "scaler.plugins",
        ),
    ),
    ("policies", ("policies",)),
    ("kinds", ("scaler.config_model", "scaler.ports", "scaler.sources", "scaler.kinds")),
    ("adapters", ("scaler.adapters",)),
)
"""Every module not named here is the composition root's (wiring, daemon, tick, CLI, backtest)."""

ROOT_LAYER = "root"
ADAPTER_USERS = (
    "scaler.adapters",
    "scaler.actuators",
    "scaler.readers",
    "scaler.wiring",
    "scaler.service",
    "scaler.cli",
    "scaler.demo",
    "scaler.preflight",
    "scaler.trace_export",
)
"""The composition root proper (wiring, service, the CLI and the commands that read the platform
directly): the only modules that import an adapter. The daemon, the tick, persistence and the
backtest get their ports handed to them."""

ALLOWED_CYCLES = ({"policies", "policies.composite"},)
"""The composite policy builds its parts through the policy registry it is registered in."""


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in ("scaler", "policies"):
        for path in sorted((ROOT / base).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def project_imports(module: str) -> set[str]:
    """The project modules ``module`` imports anywhere in its body (``from a import b`` counts
    ``a.b`` when ``b`` is a module)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            names = [origin, *(f"{origin}.{alias.name}" for alias in node.names)]
        for name in names:
            target = _resolve(name)
            if target and target != module:
                found.add(target)
    return found


def layer_of(module: str) -> str:
    for layer, prefixes in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    return ROOT_LAYER


RANK = {name: i for i, (name, _) in enumerate(LAYERS)} | {ROOT_LAYER: len(LAYERS)}


def test_project_imports_sees_function_local_and_type_checking_imports() -> None:
    """The checker itself: the kinds import ``PoolConfig`` only under ``TYPE_CHECKING``, and the
    config loader's registries were once imported inside functions."""
    assert "scaler.config_model" in project_imports("scaler.kinds.vmss")
    assert "scaler.kinds" in project_imports("scaler.config")
    assert "scaler.ports" in project_imports("scaler.kinds.base")


def test_every_import_points_down_the_layers() -> None:
    offenders = []
    for module in MODULES:
        mine = layer_of(module)
        for target in sorted(project_imports(module)):
            theirs = layer_of(target)
            if RANK[theirs] > RANK[mine]:
                offenders.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert offenders == []


def test_adapters_know_ports_never_kinds() -> None:
    offenders = [
        f"{module} imports {target}"
        for module in MODULES
        if layer_of(module) == "adapters"
        for target in sorted(project_imports(module))
        if target == "scaler.kinds" or target.startswith("scaler.kinds.")
    ]
    assert offenders == []


def test_only_the_composition_root_imports_an_adapter() -> None:
    offenders = [
        f"{module} imports {target}"
        for module in MODULES
        if not any(module == u or module.startswith(u + ".") for u in ADAPTER_USERS)
        for target in sorted(project_imports(module))
        if target.startswith("scaler.adapters")
    ]
    assert offenders == []


def test_no_import_cycle() -> None:
    """No strongly connected group of modules (Tarjan's algorithm over every import)."""
    graph = {m: project_imports(m) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert [sorted(c) for c in cycles if c not in ALLOWED_CYCLES] == []
