"""What the registries share: the classes a ``cvi_autoscaler.*`` entry-point group adds to the
built-ins (policies, pool kinds, metric sources).

Each entry point names a class whose ``name`` is the entry point's name; two *different* classes
under one name is an error (the operator could not tell which runs), while a built-in that this
distribution also registers as an entry point is not a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any


def with_entry_points(
    group: str,
    builtins: Mapping[str, type[Any]],
    *,
    base: type[Any] = object,
    label: str,
    error: type[ValueError],
) -> dict[str, type[Any]]:
    """``builtins`` plus the classes of the entry points of ``group`` (subclasses of ``base``),
    by name; ``error`` (with ``label`` naming what is registered) when one is malformed or a
    name is taken twice."""
    found: dict[str, type[Any]] = dict(builtins)
    for ep in entry_points(group=group):
        cls = ep.load()
        name = getattr(cls, "name", None)
        if not (isinstance(cls, type) and issubclass(cls, base)) or name != ep.name:
            what = "class" if base is object else base.__name__
            raise error(
                f"entry point {ep.name!r} ({ep.value}) must name a {what} whose name is "
                f"{ep.name!r}, got {name!r}"
            )
        if name in found and found[name] is not cls:
            raise error(
                f"{label} {name!r} is registered twice: {found[name].__module__} and "
                f"{cls.__module__}"
            )
        found[name] = cls
    return found
