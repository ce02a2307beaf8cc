"""The composition root's wiring: the routers that hand each pool to its kind's actuator and
metric source, and the factory that builds them from the config.

The kinds themselves (validation, pure planner, replay model) live in ``scaler.kinds`` and
their actuators in ``scaler.actuators``, one module each. ``PoolRouter`` is the daemon's
single actuator (and quota reader) and ``MetricsRouter`` its single metrics source, each
dispatching by pool; ``build_adapters`` wires them from the config and the actuator factories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scaler.actuators import actuator_of
from scaler.adapters.azure import AzureAdapters, AzureCompute, AzureMonitorMetrics
from scaler.adapters.azure_autoscale import AutoscaleSettings
from scaler.adapters.azure_logs import LogAnalyticsMetrics
from scaler.adapters.azure_publish import AzureMetricPublisher
from scaler.adapters.pexip import PexipClient, PexipMetrics
from scaler.config_model import Config, PoolConfig
from scaler.core.metrics import to_calls
from scaler.core.types import MetricReading, MetricStatus, QuotaUsage
from scaler.core.victims import InstanceActions
from scaler.errors import AdapterError, ConfigError, PermanentError
from scaler.kinds import KindActuator, KindContext, discover, kind_of
from scaler.logs import get_logger
from scaler.ports import Clock, MetricsSource, PoolStatus, Preflight, ResizeHandle


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
    """The daemon's metrics source: each pool read from its ``metric.source``.

    A ``pexip`` pool with ``fallback = "azure-monitor"`` is read from its own
    ``fallback_metric`` (a platform metric such as the scale set's ``Percentage CPU``, which
    Azure emits whatever Pexip does) when the Management Node fails it; never from what the
    daemon itself publishes from Pexip, which stops with the Management Node. The fallback
    reading is handed on in calls (the ``pexip`` source's unit): a ``percent_of_capacity`` or
    ``calls_per_instance`` value becomes calls with the pool's current size from ``sizes``
    (without it, or when the size cannot be read, the reading is missing). It names no
    instance: a CPU share cannot tell an idle instance, so a drain-aware scale-in waits.

    A ``log-analytics`` pool is read from its KQL query (``logs``). Any pool with
    ``fallback = "log-analytics"`` whose own source fails is read from that query instead: a
    source of its own (another service, fed by another path), already in calls.

    With a publisher, every good Pexip reading that splits calls by instance is republished
    to Azure Monitor (best effort: a failure is logged, nothing holds).
    """

    def __init__(
        self,
        config: Config,
        *,
        azure: MetricsSource,
        pexip: MetricsSource | None,
        publisher: AzureMetricPublisher | None = None,
        sizes: Callable[[PoolConfig], int] | None = None,
        logs: MetricsSource | None = None,
    ) -> None:
        self._config = config
        self._azure = azure
        self._pexip = pexip
        self._logs = logs
        self._publisher = publisher
        self._sizes = sizes
        self._log = get_logger()

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        by_pexip = [p for p in pools if p.metric.source == "pexip"]
        by_logs = [p for p in pools if p.metric.source == "log-analytics"]
        by_azure = [p for p in pools if p.metric.source not in ("pexip", "log-analytics")]
        out: dict[str, MetricReading] = {}
        if by_pexip:
            if self._pexip is None:
                for p in by_pexip:
                    out[p.name] = MetricReading.missing("pexip source needs [pexip] settings")
            else:
                out.update(self._pexip.read(by_pexip, now))
        if by_logs:
            out.update(self._read_logs(by_logs, now))
        if by_azure:
            out.update(self._azure.read(by_azure, now))
        failed = [p for p in pools if out[p.name].status is not MetricStatus.OK]
        to_azure = [p for p in failed if p.metric.fallback == "azure-monitor"]
        if to_azure:
            out.update(self._fallback(to_azure, out, now))
        to_logs = [p for p in failed if p.metric.fallback == "log-analytics"]
        if to_logs:
            out.update(self._logs_fallback(to_logs, out, now))
        if self._publisher is not None:
            self._publish(by_pexip, out, now)
        return out

    def _read_logs(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        if self._logs is None:
            why = "log-analytics source is not available (no Log Analytics client)"
            return {p.name: MetricReading.missing(why) for p in pools}
        readings = self._logs.read(pools, now)
        return {p.name: readings.get(p.name) or MetricReading.missing("no reading") for p in pools}

    def _logs_fallback(
        self, pools: Sequence[PoolConfig], failed: Mapping[str, MetricReading], now: float
    ) -> dict[str, MetricReading]:
        """Each pool's ``log_analytics`` query, read because its own source failed."""
        change = {"source": "log-analytics", "fallback": "none", "meaning": "calls"}
        views = [p.model_copy(update={"metric": p.metric.model_copy(update=change)}) for p in pools]
        readings = self._read_logs(views, now)
        out: dict[str, MetricReading] = {}
        for pool in pools:
            why = failed[pool.name].detail
            reading = readings[pool.name]
            self._log.warning(
                "metrics.fallback",
                pool=pool.name,
                source="log-analytics",
                status=str(reading.status),
                error=why,
            )
            detail = f"fallback log-analytics: {reading.detail}" if reading.detail else ""
            out[pool.name] = MetricReading(
                reading.status,
                reading.calls,
                reading.as_of,
                f"{detail or 'fallback log-analytics'} ({why})",
                reading.history,
            )
        return out

    def _fallback(
        self, pools: Sequence[PoolConfig], failed: Mapping[str, MetricReading], now: float
    ) -> dict[str, MetricReading]:
        """Each pool's ``fallback_metric`` read from Azure Monitor, as calls."""
        views = [
            p.model_copy(update={"metric": p.metric.fallback_view(p.resource_id)}) for p in pools
        ]
        readings = self._azure.read(views, now)
        out: dict[str, MetricReading] = {}
        for pool, view in zip(pools, views, strict=True):
            fb = view.metric
            why = failed[pool.name].detail
            what = f"fallback {fb.namespace}/{fb.name}"
            reading = readings.get(pool.name) or MetricReading.missing("no reading")
            if reading.status is MetricStatus.OK and fb.meaning != "calls":
                reading = self._as_calls(pool, reading, fb.meaning)
            self._log.warning(
                "metrics.fallback",
                pool=pool.name,
                source="azure-monitor",
                metric=f"{fb.namespace}/{fb.name}",
                status=str(reading.status),
                error=why,
            )
            if reading.status is not MetricStatus.OK:
                detail = f"{why}; {what}: {reading.detail}"
                out[pool.name] = MetricReading(reading.status, None, None, detail)
                continue
            out[pool.name] = MetricReading(
                MetricStatus.OK,
                reading.calls,
                reading.as_of,
                f"{what} ({why})",
                reading.history,
                reading.by_instance if fb.meaning == "calls" else (),
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
        azure_metrics: AzureMonitorMetrics = self.azure.metrics
        compute = self.azure.compute
        pexip_metrics: MetricsSource | None = None
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
        if self.pexip is not None:
            pexip_metrics = PexipMetrics(
                config, self.pexip, members=router.member_names, node_metric=node_metric
            )
            if config.pexip.publish_metrics:
                self.publisher = AzureMetricPublisher(config, self.azure.credential)
        self.compute = router
        self.logs = _logs_source(config, self.azure.credential, observer)
        self.metrics = MetricsRouter(
            config,
            azure=azure_metrics,
            pexip=pexip_metrics,
            # a fallback to a percentage metric needs the pool's size (one scale set read per
            # falling-back pool per tick, only while falling back)
            sizes=lambda pool: compute.observe(pool).capacity,
            publisher=self.publisher,
            logs=self.logs,
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
        if self.logs is not None:
            self.logs.close()
        self.azure.close()


def node_metric(pool: PoolConfig) -> bool:
    """Whether the pool's kind reads Conferencing Node load (``PoolKind.node_metric``)."""
    return kind_of(pool).node_metric


def _logs_source(config: Config, credential: Any, observer: Any) -> LogAnalyticsMetrics | None:
    """The Log Analytics query client, when a pool reads (or falls back to) Log Analytics."""
    if not any("log-analytics" in (p.metric.source, p.metric.fallback) for p in config.pools):
        return None
    return LogAnalyticsMetrics(config, credential, observer=observer)


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
