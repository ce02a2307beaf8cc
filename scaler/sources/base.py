"""What a metric source is: the one place that knows how a pool's load is read from somewhere.

A source is a small class registered by name (``scaler.sources.discover``), like a pool kind or a
policy:

* ``problems(check)`` — what the source needs of ``[pools.metric]`` when it is the pool's
  ``source``; ``fallback_problems(check)`` when it stands in as the pool's ``fallback``;
  ``section_problems(check)`` — its own table set where it is not read (every source is asked,
  for every pool);
* ``section`` and ``Options`` — the key and the model of its own table under
  ``[pools.metric]``: what it reads, and all a fallback is (``fallback = "<name>"`` reads that
  table). A source without one cannot stand in for another;
* ``view(pool)`` — the pool as this source reads it when it stands in (or when ``trace export
  --source`` names it): by default the same pool with ``source`` set to it;
* its reader (``MetricsSource``) and its trace-export reader live in the composition root
  (``scaler.readers``, one module per built-in source), so a source imports no adapter; the
  ``reader(ctx)`` and ``exporter()`` hooks are how a third-party source brings its own;
* capabilities that the rest of the daemon asks instead of naming a source: ``reads_calls``,
  ``needs_pexip``, ``per_instance``, ``reads_members``.

Adding a source is its module and its registration (the ``cvi_autoscaler.sources`` entry-point
group, or ``scaler.sources.BUILTINS`` and its reader's factory in ``scaler.readers``); nothing
in the daemon, the config, the adapters or the trace export switches on a source's name, and no
source names another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from scaler.config_model import _show

if TYPE_CHECKING:
    from scaler.config_model import Config, MetricCheck, MetricConfig, PoolConfig
    from scaler.ports import MetricsSource


@dataclass(frozen=True, slots=True)
class ReaderContext:
    """What a reader factory may use: the config and the process's clients.

    ``azure`` is the Azure adapters (``AzureAdapters``: the shared credential and the Azure
    Monitor reader), ``pexip`` the Management Node client (``None`` without ``[pexip] url``);
    typed loosely so that this module imports no adapter. A factory that opens a client of its
    own appends it to ``opened`` (closed, newest first, with the adapters)."""

    config: Config
    azure: Any = None
    pexip: Any = None
    observer: Any = None
    members: Callable[[PoolConfig], Sequence[str] | None] | None = None
    """The names of a pool's members as last observed (``KindActuator.member_names``)."""
    node_metric: Callable[[PoolConfig], bool] | None = None
    """Whether the pool's kind reads Conferencing Node load (``PoolKind.node_metric``)."""
    teams_connector: Callable[[PoolConfig], str] | None = None
    """The Teams Connector the pool's kind names (``PoolKind.teams_connector``)."""
    opened: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ExportContext:
    """What a trace-export reader is given: the span, the command line's options and, for
    tests and emulators, clients to use instead of the configured ones."""

    config: Config
    since: datetime
    until: datetime
    update: Callable[[int], None]
    """Progress: called with the number of queries done."""
    credential: Any = None
    client_kwargs: Mapping[str, Any] | None = None
    pexip_client: Any = None
    teams_protocol: str | None = None
    opened: list[Any] = field(default_factory=list)


History = tuple[dict[float, float | None], str]
"""A trace-export reader's answer: calls per minute start (seconds since the epoch; ``None``:
unknown) and a note for the summary line."""


class Exporter(Protocol):
    """How ``trace export`` reads a source's history."""

    def steps(self, ctx: ExportContext, pool: PoolConfig) -> int:
        """Queries the export of ``pool`` makes (the progress bar's total)."""
        ...

    def history(self, ctx: ExportContext, pool: PoolConfig) -> History: ...


class MetricSource:
    """Base of the metric sources: a source of calls with a table of its own."""

    name: ClassVar[str] = ""
    section: ClassVar[str] = ""
    """The key of the source's own table under ``[pools.metric]``; empty: none (then it cannot
    be another source's fallback)."""
    Options: ClassVar[type[BaseModel] | None] = None
    """The model of a plug-in source's table (the built-ins' tables are fields of
    ``MetricConfig``): the loader validates ``[pools.metric.<section>]`` against it."""
    reads_calls: ClassVar[bool] = True
    """Whether its readings are concurrent calls (``meaning`` then defaults to, and must be,
    ``calls``)."""
    needs_pexip: ClassVar[bool] = False
    """Whether it reads the Management Node (``[pexip] url`` is then required, and its
    readings are what ``[pexip] publish_metrics`` republishes)."""
    per_instance: ClassVar[bool] = False
    """Whether its readings carry each instance's calls, so that a ``vmss`` pool drains (only
    idle instances are removed) unless ``drain`` says otherwise."""
    reads_members: ClassVar[bool] = False
    """Whether reading a Conferencing Node pool needs this tick's observation of its members."""

    def problems(self, check: MetricCheck) -> list[str]:
        """Config problems of a pool read from this source (key paths from ``check.at``)."""
        return self.meaning_problems(check) + self.options_problems(check)

    def meaning_problems(self, check: MetricCheck) -> list[str]:
        """A source of calls read as anything else."""
        m = check.metric
        if self.reads_calls and m.meaning != "calls":
            return [f"{check.at}.meaning: the {self.name} source reads calls, got {m.meaning!r}"]
        return []

    def fallback_problems(self, check: MetricCheck) -> list[str]:
        """Config problems of a pool whose fallback this source is."""
        return self.options_problems(check)

    def options_problems(self, check: MetricCheck) -> list[str]:
        """What the source's own table lacks where it is read (a plug-in's model already
        refuses what it cannot take)."""
        return []

    def reads_section(self, metric: MetricConfig) -> bool:
        """Whether ``metric`` reads this source's table: as its source or its fallback."""
        return self.name in (metric.source, metric.fallback)

    def section_problems(self, check: MetricCheck) -> list[str]:
        """The source's table set where nothing reads it."""
        m = check.metric
        if not self.section or self.reads_section(m) or not m.is_set(self.section):
            return []
        return [
            f"{check.at}.{self.section}: read only with source or fallback = {self.name!r}, "
            f"got source = {m.source!r}, fallback = {m.fallback!r}"
        ]

    def view(self, pool: PoolConfig) -> PoolConfig:
        """The pool as this source reads it in another source's stead (its fallback, or
        ``trace export --source``): the same pool, read from here."""
        metric = pool.metric.model_copy(update={"source": self.name, "fallback": "none"})
        return pool.model_copy(update={"metric": metric})

    def describe(self, metric: MetricConfig) -> str:
        """What is read, in a reading's detail and the logs."""
        return self.name

    def export_problem(self, pools: Sequence[PoolConfig]) -> str:
        """Why ``trace export`` cannot read these pools from this source (empty: it can)."""
        if not self.section:
            return ""
        lacking = [p.name for p in pools if not self.reads_section(p.metric)]
        if not lacking:
            return ""
        return (
            f"--source: pool {', '.join(lacking)} has no [pools.metric.{self.section}] table "
            f"(source or fallback {self.name!r}), got {self.name!r}"
        )

    def reader(self, ctx: ReaderContext) -> MetricsSource | str:
        """A third-party source's reader (built-ins: ``scaler.readers``), or why there is none
        (each pool read from it is then missing with that detail)."""
        return f"{self.name} source has no reader"

    def exporter(self) -> Exporter | None:
        """A third-party source's trace-export reader (built-ins: ``scaler.readers``)."""
        return None


def unread_keys(check: MetricCheck, keys: Sequence[str], why: str) -> list[str]:
    """The keys of ``[pools.metric]`` among ``keys`` that the file sets although the pool's
    source does not read them (``why``: what it reads instead)."""
    m = check.metric
    return [
        f"{check.at}.{key}: not read with source {m.source!r} ({why}), got {_show(getattr(m, key))}"
        for key in keys
        if key in m.model_fields_set
    ]
