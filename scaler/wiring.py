"""The composition root's wiring: the routers that hand each pool to its kind's actuator and
its metric source's reader, and the factory that builds them from the config.

The kinds themselves (validation, pure planner, replay model) live in ``scaler.kinds`` and
their actuators in ``scaler.actuators``, one module each. ``PoolRouter`` is the daemon's
single actuator (and quota reader) and ``MetricsRouter`` its single metrics source, each
dispatching by pool; ``build_adapters`` wires them from the config and the actuator factories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scaler.actuators import actuator_of
from scaler.adapters.azure import AzureAdapters, AzureCompute
from scaler.adapters.azure_autoscale import AutoscaleSettings
from scaler.adapters.azure_publish import AzureMetricPublisher
from scaler.adapters.pexip import PexipClient
from scaler.config_model import Config, PoolConfig
from scaler.core.metrics import to_calls
from scaler.core.types import MetricReading, MetricStatus, QuotaUsage
from scaler.core.victims import InstanceActions
from scaler.errors import AdapterError, ConfigError, PermanentError
from scaler.kinds import KindActuator, KindContext, discover, kind_of
from scaler.logs import get_logger
from scaler.ports import Clock, MetricsSource, PoolStatus, Preflight, ResizeHandle
from scaler.readers import reader_of
from scaler.sources import ReaderContext, source_of
from scaler.sources import discover as discover_sources
from scaler.sources.azure_monitor import AzureMonitor
from scaler.sources.log_analytics import LogAnalytics
from scaler.sources.pexip import Pexip


class PoolRouter:
    """The daemon's actuator and quota reader: each pool goes to the actuator of its kind."""

    def __init__(
        self,
        kinds: Mapping[str, KindActuator],
        compute: AzureCompute,
        *,
        autoscale: AutoscaleSettings | None = None,
    ) -> None:
        self._kinds = dict(kinds)
        self._compute = compute
        self._autoscale = autoscale

    def _of(self, pool: PoolConfig) -> KindActuator:
        actuator = self._kinds.get(pool.kind)
        if actuator is None:
            raise PermanentError(f"pool {pool.name}: kind {pool.kind!r} needs [pexip] settings")
        return actuator

    def observe(self, pool: PoolConfig) -> PoolStatus:
        return self._of(pool).observe(pool)

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        return self._of(pool).apply(pool, actions)

    def preflight(self, pool: PoolConfig) -> Preflight:
        """The kind's own check, then competing scalers: an enabled Azure autoscale setting
        on the pool's scale set (``AutoscaleSettings.check``), at start-up and on reload."""
        found = self._of(pool).preflight(pool)
        if self._autoscale is None:
            return found
        other = self._autoscale.check(pool)
        return Preflight(
            errors=(*found.errors, *other.errors), warnings=(*found.warnings, *other.warnings)
        )

    def member_names(self, pool: PoolConfig) -> Sequence[str] | None:
        """The names of a pool's members as last observed (``None``: not listed yet or not a
        kind that lists its members)."""
        actuator = self._kinds.get(pool.kind)
        return None if actuator is None else actuator.member_names(pool)

    def resume(self, pool: PoolConfig, token: str) -> ResizeHandle:
        """A scale set update saved before a restart (only scale set writes are resumable;
        Pexip's writes are synchronous and a VM start is re-planned from what is observed)."""
        return self._compute.resume(pool, token)

    def usage(self, location: str) -> Mapping[str, QuotaUsage]:
        return self._compute.usage(location)


class MetricsRouter:
    """The daemon's metrics source: each pool read from its ``metric.source``'s reader.

    ``readers`` holds each source's reader by name (``scaler.readers.reader_of``), or why it
    has none: the pools read from it are then missing with that detail. A pool whose reading
    fails and that names a ``fallback`` is read again from that source, as the source reads it
    in another's stead (``MetricSource.view``: e.g. ``azure-monitor`` reads the pool's own
    ``fallback_metric``, a platform metric such as the scale set's ``Percentage CPU``, which
    Azure emits whatever Pexip does). The fallback reading is handed on in calls: a
    ``percent_of_capacity`` or ``calls_per_instance`` value becomes calls with the pool's
    current size from ``sizes`` (without it, or when the size cannot be read, the reading is
    missing), and then names no instance: a CPU share cannot tell an idle instance, so a
    drain-aware scale-in waits.

    With a publisher, every good reading from a source that reads the Management Node
    (``needs_pexip``) and splits calls by instance is republished to Azure Monitor (best
    effort: a failure is logged, nothing holds).
    """

    def __init__(
        self,
        config: Config,
        *,
        readers: Mapping[str, MetricsSource | str] | None = None,
        publisher: AzureMetricPublisher | None = None,
        sizes: Callable[[PoolConfig], int] | None = None,
        azure: MetricsSource | None = None,
        pexip: MetricsSource | None = None,
        logs: MetricsSource | None = None,
    ) -> None:
        """``azure``, ``pexip`` and ``logs`` are the built-in sources' readers as the first
        form of this router took them (``None``: that source has none); ``readers`` is the
        form every source has."""
        self._config = config
        self._readers = dict(readers or {})
        for source, reader in ((AzureMonitor, azure), (Pexip, pexip), (LogAnalytics, logs)):
            if source.name not in self._readers:
                self._readers[source.name] = (
                    reader if reader is not None else reader_of(source(), ReaderContext(config))
                )
        self._publisher = publisher
        self._sizes = sizes
        self._log = get_logger()

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        out: dict[str, MetricReading] = {}
        for name, group in _by(pools, lambda p: p.metric.source).items():
            out.update(self._read(name, group, now))
        failed = [p for p in pools if out[p.name].status is not MetricStatus.OK]
        fallbacks = _by([p for p in failed if p.metric.fallback != "none"], fallback_name)
        for name, group in fallbacks.items():
            out.update(self._fallback(name, group, out, now))
        if self._publisher is not None:
            self._publish([p for p in pools if source_of(p).needs_pexip], out, now)
        return out

    def _read(
        self, name: str, pools: Sequence[PoolConfig], now: float
    ) -> Mapping[str, MetricReading]:
        reader = self._readers.get(name, f"{name} source has no reader")
        if isinstance(reader, str):
            return {p.name: MetricReading.missing(reader) for p in pools}
        readings = reader.read(pools, now)
        return {p.name: readings.get(p.name) or MetricReading.missing("no reading") for p in pools}

    def _fallback(
        self,
        name: str,
        pools: Sequence[PoolConfig],
        failed: Mapping[str, MetricReading],
        now: float,
    ) -> dict[str, MetricReading]:
        """Each pool read from its fallback source ``name``, as calls."""
        source = discover_sources()[name]
        views = [source.view(p) for p in pools]
        readings = self._read(name, views, now)
        out: dict[str, MetricReading] = {}
        for pool, view in zip(pools, views, strict=True):
            m = view.metric
            why = failed[pool.name].detail
            what = f"fallback {source.describe(m)}"
            reading = readings[pool.name]
            if reading.status is MetricStatus.OK and m.meaning != "calls":
                reading = self._as_calls(pool, reading, m.meaning)
            self._log.warning(
                "metrics.fallback",
                pool=pool.name,
                source=name,
                metric=source.describe(m),
                status=str(reading.status),
                error=why,
            )
            if reading.status is not MetricStatus.OK:
                detail = f"{why}; {what}: {reading.detail}"
                out[pool.name] = MetricReading(reading.status, None, None, detail)
                continue
            said = f"{what}: {reading.detail}" if reading.detail else what
            out[pool.name] = MetricReading(
                MetricStatus.OK,
                reading.calls,
                reading.as_of,
                f"{said} ({why})",
                reading.history,
                reading.by_instance if m.meaning == "calls" else (),
            )
        return out

    def _as_calls(self, pool: PoolConfig, reading: MetricReading, meaning: str) -> MetricReading:
        if self._sizes is None:
            return MetricReading.missing(f"{meaning} needs the pool's size, which is not read")
        try:
            size = self._sizes(pool)
        except AdapterError as err:
            return MetricReading.missing(f"{meaning} needs the pool's size: {err}")
        return to_calls(
            reading, meaning=meaning, current=size, calls_per_instance=pool.calls_per_instance
        )

    def _publish(
        self, pools: Sequence[PoolConfig], readings: Mapping[str, MetricReading], now: float
    ) -> None:
        assert self._publisher is not None
        for pool in pools:
            reading = readings.get(pool.name)
            rid = pool.metric_resource_id
            if reading is None or reading.status is not MetricStatus.OK or not rid:
                continue
            values = [(name, v) for name, v in reading.by_instance if v is not None]
            try:
                self._publisher.publish(
                    resource_id=rid,
                    location=self._config.location_of(pool),
                    at=reading.as_of if reading.as_of is not None else now,
                    values=values,
                )
            except AdapterError as err:
                self._log.warning("metrics.publish_failed", pool=pool.name, error=str(err))


class Adapters:
    """Everything the daemon talks to, built from the config; ``close()`` in the right order.

    ``metrics`` and ``compute`` keep the names of ``AzureAdapters`` (``compute`` is the
    daemon's actuator and quota reader)."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        observer: Any = None,
        pexip_password: str | None = None,
        allow_competing: bool = False,
    ) -> None:
        self.azure = AzureAdapters(config, observer=observer)
        self.autoscale = AutoscaleSettings(
            config, self.azure.credential, observer=observer, allow_competing=allow_competing
        )
        self.pexip: PexipClient | None = None
        self.publisher: AzureMetricPublisher | None = None
        compute = self.azure.compute
        if config.pexip.url:
            try:
                self.pexip = PexipClient(config.pexip, password=pexip_password, observer=observer)
            except BaseException:
                self.azure.close()
                raise
        ctx = KindContext(
            config=config,
            clock=clock,
            compute=compute,
            pexip=self.pexip,
            allow_competing=allow_competing,
        )
        kinds: dict[str, KindActuator] = {}
        for name, kind in discover().items():
            actuator = actuator_of(kind, ctx)
            if actuator is not None:
                kinds[name] = actuator
        router = PoolRouter(kinds, compute, autoscale=self.autoscale)
        if self.pexip is not None and config.pexip.publish_metrics:
            self.publisher = AzureMetricPublisher(config, self.azure.credential)
        self.compute = router
        readers = ReaderContext(
            config,
            azure=self.azure,
            pexip=self.pexip,
            observer=observer,
            members=router.member_names,
            node_metric=node_metric,
            teams_connector=teams_connector,
        )
        self._opened = readers.opened
        self.metrics = MetricsRouter(
            config,
            readers=metric_readers(readers),
            # a fallback to a percentage metric needs the pool's size (one scale set read per
            # falling-back pool per tick, only while falling back)
            sizes=lambda pool: compute.observe(pool).capacity,
            publisher=self.publisher,
        )

    def preflight(self, config: Config) -> None:
        """Check every pool against the live platform (``KindActuator.preflight``): log the
        warnings, and raise ``ConfigError`` naming each pool the platform refuses (e.g. a
        ``pexip-teams`` connector without the Event Hub), so ``run``/``once`` exit 2."""
        errors = check_pools(self.compute, config.pools)
        if errors:
            raise ConfigError(errors)

    @property
    def credential(self) -> Any:
        """The process's one Azure credential (also used by the leader lease)."""
        return self.azure.credential

    def close(self) -> None:
        if self.pexip is not None:
            self.pexip.close()
        if self.publisher is not None:
            self.publisher.close()
        self.autoscale.close()
        for reader in reversed(self._opened):
            reader.close()
        self.azure.close()


def _by(
    pools: Sequence[PoolConfig], key: Callable[[PoolConfig], str]
) -> dict[str, list[PoolConfig]]:
    """The pools grouped by ``key``, in the order first met."""
    out: dict[str, list[PoolConfig]] = {}
    for pool in pools:
        out.setdefault(key(pool), []).append(pool)
    return out


def fallback_name(pool: PoolConfig) -> str:
    return pool.metric.fallback


def node_metric(pool: PoolConfig) -> bool:
    """Whether the pool's kind reads Conferencing Node load (``PoolKind.node_metric``)."""
    return kind_of(pool).node_metric


def teams_connector(pool: PoolConfig) -> str:
    """The Teams Connector the pool's kind names (``PoolKind.teams_connector``)."""
    return kind_of(pool).teams_connector(pool)


def metric_readers(ctx: ReaderContext) -> dict[str, MetricsSource | str]:
    """The reader of every source a pool of the config reads, as source or fallback (a source
    nobody reads opens no client)."""
    used = {p.metric.source for p in ctx.config.pools}
    used |= {p.metric.fallback for p in ctx.config.pools if p.metric.fallback != "none"}
    return {
        name: reader_of(source, ctx) for name, source in discover_sources().items() if name in used
    }


def check_pools(router: Any, pools: Sequence[PoolConfig]) -> list[str]:
    """Each pool's preflight through ``router`` (the daemon's actuator): warnings are logged
    (``pool.preflight_warning``), errors returned."""
    log = get_logger()
    errors: list[str] = []
    for pool in pools:
        try:
            found: Preflight = router.preflight(pool)
        except AdapterError as err:
            log.warning("pool.preflight_warning", pool=pool.name, warning=str(err))
            continue
        for warning in found.warnings:
            log.warning("pool.preflight_warning", pool=pool.name, warning=warning)
        errors.extend(found.errors)
    return errors


def build_adapters(
    config: Config, *, clock: Clock, observer: Any = None, allow_competing: bool = False
) -> Adapters:
    """The adapters for ``run`` and ``once``: Azure always, Pexip when ``[pexip] url`` is set.
    ``allow_competing``: an enabled Azure autoscale setting on a pool's scale set is a warning
    instead of a refusal."""
    adapters = Adapters(config, clock=clock, observer=observer, allow_competing=allow_competing)
    try:
        adapters.preflight(config)
    except BaseException:
        adapters.close()
        raise
    return adapters
