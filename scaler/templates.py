"""Fleets in one file: ``[pool_defaults]`` and named ``[templates.NAME]`` under ``[[pools]]``.

A fleet of hundreds of pools differs from pool to pool in a handful of keys (name, scale set,
region, Teams Connector); the rest (sizes, metric, behaviour, the policy set) is shared. Both
tables take any ``[[pools]]`` key except ``name`` and ``template``. Each pool is the deep merge
of, lowest first: ``[pool_defaults]``, the template its ``template = "NAME"`` names, its own
keys. Tables (``metric``, ``behavior``, ``vm_set``, ``behavior.scale_up``…) merge key by key; a
list (``policies``, ``metric.locations``) or any other value is replaced as a whole.

This runs on the parsed document, before validation, so the pools validate exactly as if they
had been written out in full. ``Origins`` remembers where each merged value came from: a
problem with a value a pool inherited is reported once at the key that set it
(``templates.teams.max: …, got 0 (in pools[0] tc-uk and 3 more)``), not once per pool.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

Path = tuple[str | int, ...]
Origins = dict[Path, Path]
"""Key path in the merged document (``("pools", 3, "metric")``) → key path that set it
(``("templates", "teams", "metric")``). Only inherited values have an entry."""

SHARED_TABLES = ("pool_defaults", "templates")
_NOT_SHARED = ("name", "template")


def expand_pools(
    data: dict[str, Any], pool_keys: Iterable[str]
) -> tuple[dict[str, Any], Origins, list[str]]:
    """``data`` with every pool merged from ``[pool_defaults]`` and its template; the origins
    of inherited values; and the problems of the shared tables themselves (not a table, a key
    no pool takes, a template that does not exist). ``data`` is not changed."""
    known = set(pool_keys)
    problems: list[str] = []
    defaults = data.get("pool_defaults", {})
    templates = data.get("templates", {})
    pools = data.get("pools")
    if not isinstance(defaults, dict):
        problems.append(f"pool_defaults: must be a table of [[pools]] keys, got {_kind(defaults)}")
        defaults = {}
    if not isinstance(templates, dict):
        problems.append(
            f"templates: must be a table of named templates ([templates.NAME]), got "
            f"{_kind(templates)}"
        )
        templates = {}
    problems += _shared_problems("pool_defaults", defaults, known)
    usable: dict[str, dict[str, Any]] = {}
    for name, table in templates.items():
        where = f"templates.{name}"
        if not isinstance(table, dict):
            problems.append(f"{where}: must be a table of [[pools]] keys, got {_kind(table)}")
            continue
        problems += _shared_problems(where, table, known)
        usable[name] = table
    if not isinstance(pools, list) or not (defaults or usable or _uses_template(pools)):
        return data, {}, problems
    out = dict(data)
    origins: Origins = {}
    merged_pools: list[Any] = []
    for i, pool in enumerate(pools):
        if not isinstance(pool, dict):
            merged_pools.append(pool)
            continue
        layers: list[tuple[Path, Mapping[str, Any]]] = [(("pool_defaults",), defaults)]
        ref = pool.get("template")
        if ref is not None:
            if not isinstance(ref, str) or ref not in usable:
                known_names = ", ".join(sorted(usable)) or "none"
                problems.append(
                    f"pools[{i}].template: must name a [templates.NAME] table (known: "
                    f"{known_names}), got {_shown(ref)}"
                )
            else:
                layers.append((("templates", ref), usable[ref]))
        merged: dict[str, Any] = {}
        mine: Origins = {}  # this pool's (a replaced value forgets its own entries only)
        for source, layer in layers:
            _merge(merged, layer, ("pools", i), source, mine, known)
        for key, value in pool.items():  # the pool's own keys: theirs, not inherited
            _merge_own(merged, key, value, ("pools", i, key), mine)
        origins.update(mine)
        merged_pools.append(merged)
    out["pools"] = merged_pools
    return out, origins, problems


def _uses_template(pools: list[Any]) -> bool:
    return any(isinstance(p, dict) and "template" in p for p in pools)


def _shared_problems(where: str, table: Mapping[str, Any], known: set[str]) -> list[str]:
    import difflib

    out = []
    for key in table:
        if key in _NOT_SHARED:
            what = "a pool's own name" if key == "name" else "the template a pool uses"
            out.append(f"{where}.{key}: {what} is set in [[pools]] only, not in shared tables")
        elif key not in known:
            close = difflib.get_close_matches(str(key).lower(), sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(f"{where}.{key}: unknown key{hint}")
    return out


def _merge(
    into: dict[str, Any],
    layer: Mapping[str, Any],
    at: Path,
    source: Path,
    origins: Origins,
    known: set[str] | None = None,
) -> None:
    """Lay ``layer`` (found at ``source``) over ``into`` (found at ``at``); at the top of a
    pool only the ``known`` keys (the others are reported by ``_shared_problems``, once)."""
    for key, value in layer.items():
        if known is not None and (key in _NOT_SHARED or key not in known):
            continue
        here, there = (*at, key), (*source, key)
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, here, there, origins)
            continue
        _forget(origins, here)
        into[key] = copy.deepcopy(value)
        _record(origins, here, there, value)


def _record(origins: Origins, here: Path, there: Path, value: Any) -> None:
    """Each leaf of an inherited value (a list is a leaf: it is replaced whole)."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _record(origins, (*here, key), (*there, key), inner)
    else:
        origins[here] = there


def _merge_own(into: dict[str, Any], key: str, value: Any, here: Path, origins: Origins) -> None:
    """A pool's own value over what it inherited (tables merge key by key)."""
    current = into.get(key)
    if isinstance(value, dict) and isinstance(current, dict):
        for sub, inner in value.items():
            _merge_own(current, sub, inner, (*here, sub), origins)
        return
    _forget(origins, here)
    into[key] = value


def _forget(origins: Origins, prefix: Path) -> None:
    """Drop the origins at and below ``prefix`` (the value there is replaced as a whole)."""
    for path in [p for p in origins if p[: len(prefix)] == prefix]:
        del origins[path]


_PATH = re.compile(r"^([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*):(.*)$", re.DOTALL)


def attribute(problems: list[str], origins: Origins, names: Mapping[int, str]) -> list[str]:
    """Problems with an inherited value reported at the key that set it, once, naming the pools
    that inherited it (``names``: pool index → name); the others unchanged, in order."""
    if not origins:
        return problems
    out: list[str] = []
    grouped: dict[str, list[int]] = {}
    for line in problems:
        m = _PATH.match(line)
        if m is None:
            out.append(line)
            continue
        loc: Path = tuple(
            int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", m.group(1))
        )
        hit = _origin_of(loc, origins)
        if hit is None or len(loc) < 2 or not isinstance(loc[1], int):
            out.append(line)
            continue
        prefix, source = hit
        moved = _format((*source, *loc[len(prefix) :])) + ":" + m.group(2)
        if moved not in grouped:
            grouped[moved] = []
            out.append(moved)
        grouped[moved].append(loc[1])
    result = []
    for line in out:
        pools = grouped.get(line)
        if pools is None:
            result.append(line)
            continue
        first = ", ".join(f"pools[{i}] {names.get(i, '?')}" for i in pools[:3])
        more = f" and {len(pools) - 3} more" if len(pools) > 3 else ""
        result.append(f"{line} (in {first}{more})")
    return result


def _origin_of(loc: Path, origins: Origins) -> tuple[Path, Path] | None:
    """The longest prefix of ``loc`` that holds an inherited value, and where it came from."""
    for n in range(len(loc), 1, -1):
        source = origins.get(loc[:n])
        if source is not None:
            return loc[:n], source
    return None


def _format(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a value")


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _kind(value)
