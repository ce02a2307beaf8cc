"""Pool kinds as actuator adapters, the routers that pick one per pool, and the factory.

One ``PoolActuator`` per kind, each translating only (the choices are made by the pure core):

============  ===========================================================================
``vmss``      capacity PATCH of the scale set; with ``drain``, a per-instance view and
              protection / ``deleteInstances`` by id (``VmssActuator``)
``pexip-teams`` observes the scale set (or Pexip's teamsnode list) and applies the desired
              size as the Teams Connector's ``min_number_of_instances`` through Pexip, so
              Pexip drains and removes instances itself; never writes the scale set
``vm-set``    Conferencing Node VMs selected by resource group and tag: start, maintenance
              mode, deallocate (``VmSetActuator``)
============  ===========================================================================

``PoolRouter`` is the daemon's single actuator (and quota reader) and ``MetricsRouter`` its
single metrics source, each dispatching by pool; ``build_adapters`` wires them from the config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from scaler.adapters.azure import AzureAdapters, AzureCompute, AzureMonitorMetrics
from scaler.adapters.azure_instances import AzureScaleSetInstances, AzureVmSet
from scaler.adapters.azure_publish import AzureMetricPublisher
from scaler.adapters.pexip import MAINTENANCE_REASON, PexipClient, PexipMetrics, WorkerVmConfig
from scaler.config import Config, PoolConfig
from scaler.core.types import MetricReading, MetricStatus, QuotaUsage
from scaler.core.victims import DEALLOCATED, Instance, InstanceActions
from scaler.errors import AdapterError, PermanentError
from scaler.logs import get_logger
from scaler.ports import Clock, MetricsSource, PoolStatus, ResizeHandle


class Done:
    """A handle on something that already finished (a synchronous Pexip write).

    ``changed`` is false when nothing had to be written (the value was already set)."""

    def __init__(self, changed: bool = True) -> None:
        self.changed = changed

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> None:
        return None

    def continuation_token(self) -> str | None:
        return None


class AllOf:
    """Several running operations as one handle: done when all are, failing if any does."""

    def __init__(self, handles: Sequence[ResizeHandle]) -> None:
        self._handles = list(handles)

    def done(self) -> bool:
        return all(h.done() for h in self._handles)

    def result(self, timeout: float | None = None) -> None:
        errors: list[AdapterError] = []
        for h in self._handles:
            try:
                h.result(timeout)
            except AdapterError as err:
                errors.append(err)
        if errors:
            raise errors[0]

    def continuation_token(self) -> str | None:
        tokens = [h.continuation_token() for h in self._handles]
        return tokens[0] if len(tokens) == 1 else None


class KindActuator(Protocol):
    def observe(self, pool: PoolConfig) -> PoolStatus: ...

    def resize(self, pool: PoolConfig, capacity: int) -> ResizeHandle: ...

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle: ...


class VmssActuator:
    """Kind ``vmss``: capacity PATCH; drain-aware pools also get the instance view and act
    per instance (protection, deletion by id)."""

    def __init__(self, compute: AzureCompute, instances: AzureScaleSetInstances) -> None:
        self._compute = compute
        self._instances = instances

    def observe(self, pool: PoolConfig) -> PoolStatus:
        status = self._compute.observe(pool)
        if not pool.drain_enabled:
            return status
        return dataclasses.replace(status, instances=tuple(self._instances.list(pool)))

    def resize(self, pool: PoolConfig, capacity: int) -> ResizeHandle:
        return self._compute.resize(pool, capacity)

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        if actions.protect:
            self._instances.set_protection(pool, actions.protect, True)
        if actions.unprotect:
            self._instances.set_protection(pool, actions.unprotect, False)
        handles: list[ResizeHandle] = []
        if actions.remove:
            handles.append(self._instances.delete(pool, actions.remove))
        if actions.capacity is not None:
            handles.append(self._compute.resize(pool, actions.capacity))
        return AllOf(handles)


class PexipTeamsActuator:
    """Kind ``pexip-teams``: Pexip owns the scale set; the daemon only moves its minimum."""

    def __init__(self, compute: AzureCompute, pexip: PexipClient) -> None:
        self._compute = compute
        self._pexip = pexip

    def observe(self, pool: PoolConfig) -> PoolStatus:
        if pool.resource_id:
            status = self._compute.observe(pool)
        else:
            status = PoolStatus(capacity=len(self._pexip.teams_nodes()))
        self._pexip.teams_proxy(pool.teams_proxy)  # fail here, not at write time
        return status

    def resize(self, pool: PoolConfig, capacity: int) -> ResizeHandle:
        proxy = self._pexip.teams_proxy(pool.teams_proxy)
        if proxy.min_number_of_instances == capacity:
            return Done(changed=False)
        self._pexip.set_min_instances(proxy.id, capacity)
        return Done()

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        raise PermanentError(f"pool {pool.name}: kind pexip-teams is sized as a whole")


class VmSetActuator:
    """Kind ``vm-set``: stand-alone Conferencing Node VMs joined with their Pexip status.

    Remembers, per VM, when it saw it start (the minimum lifetime counts from the later of that
    and Pexip's ``boot_time``) and when it last saw it serving (most recently healthy first).
    """

    def __init__(self, vms: AzureVmSet, pexip: PexipClient, clock: Clock) -> None:
        self._vms = vms
        self._pexip = pexip
        self._clock = clock
        self._started: dict[str, float] = {}
        self._healthy: dict[str, float] = {}
        self.members: dict[str, tuple[str, ...]] = {}

    def member_names(self, pool: PoolConfig) -> Sequence[str] | None:
        return self.members.get(pool.name)

    def observe(self, pool: PoolConfig) -> PoolStatus:
        now = self._clock.now()
        vms = self._vms.list(pool)
        self.members[pool.name] = tuple(v.name for v in vms)
        workers = {w.name.lower(): w for w in self._pexip.worker_vms()}
        instances = []
        capacities = []
        for vm in vms:
            worker = workers.get(vm.name.lower())
            state = vm.power_state
            if state in ("stopped", "deallocated"):
                state = DEALLOCATED
            allocated = state in ("running", "starting")
            if allocated:
                self._started.setdefault(vm.name, now)
            else:
                self._started.pop(vm.name, None)
            calls: float | None = None
            started = self._started.get(vm.name)
            ours = maint = False
            healthy = self._healthy.get(vm.name)
            if worker is not None:
                capacities.append(worker.max_hd_calls)
                ours = worker.maintenance_mode and worker.maintenance_mode_reason == (
                    MAINTENANCE_REASON
                )
                maint = worker.maintenance_mode and not ours
                if allocated:
                    calls = worker.hd_calls
                    if worker.boot_time is not None and started is not None:
                        started = max(started, worker.boot_time)
                healthy = max(healthy or 0.0, worker.last_contacted or 0.0) or None
            if state == "running" and worker is not None:
                self._healthy[vm.name] = now
            if state == DEALLOCATED:
                calls = 0.0
            instances.append(
                Instance(
                    id=vm.name,
                    names=(vm.name,),
                    state=state,
                    calls=calls,
                    capacity_calls=worker.max_hd_calls if worker is not None else None,
                    maintenance=maint,
                    draining=ours and allocated,
                    started_at=started,
                    last_healthy=healthy,
                )
            )
        serving = sum(1 for i in instances if i.allocated and not i.draining and not i.maintenance)
        per_instance = None
        if pool.calls_per_instance_from_nodes and capacities:
            per_instance = sum(capacities) / len(capacities)
        return PoolStatus(
            capacity=serving, instances=tuple(instances), calls_per_instance=per_instance
        )

    def resize(self, pool: PoolConfig, capacity: int) -> ResizeHandle:
        raise PermanentError(f"pool {pool.name}: kind vm-set acts per node")

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        configs: dict[str, WorkerVmConfig] = {}
        if actions.drain or actions.undrain or actions.start:
            configs = {c.name.lower(): c for c in self._pexip.worker_vm_configs()}
        for name in actions.undrain:
            self._pexip.set_maintenance(_node(configs, name, pool).id, False)
        for name in actions.drain:
            self._pexip.set_maintenance(_node(configs, name, pool).id, True)
        handles: list[ResizeHandle] = []
        for name in actions.start:
            # A node stopped after a drain is still in our maintenance: lift it before it boots.
            node = configs.get(name.lower())
            ours = node is not None and node.maintenance_mode_reason == MAINTENANCE_REASON
            if node is not None and node.maintenance_mode and ours:
                self._pexip.set_maintenance(node.id, False)
            handles.append(self._vms.start(pool, name))
            self._started[name] = self._clock.now()
        for name in actions.deallocate:
            handles.append(self._vms.deallocate(pool, name))
            self._started.pop(name, None)
        return AllOf(handles)


def _node(configs: Mapping[str, WorkerVmConfig], name: str, pool: PoolConfig) -> WorkerVmConfig:
    node = configs.get(name.lower())
    if node is None:
        raise PermanentError(
            f"pool {pool.name}: VM {name!r} is not a Conferencing Node known to Pexip"
        )
    return node


class PoolRouter:
    """The daemon's actuator and quota reader: each pool goes to the adapter of its kind."""

    def __init__(self, kinds: Mapping[str, KindActuator], quota: AzureCompute) -> None:
        self._kinds = dict(kinds)
        self._quota = quota

    def _of(self, pool: PoolConfig) -> KindActuator:
        actuator = self._kinds.get(pool.kind)
        if actuator is None:
            raise PermanentError(f"pool {pool.name}: kind {pool.kind!r} needs [pexip] settings")
        return actuator

    def observe(self, pool: PoolConfig) -> PoolStatus:
        return self._of(pool).observe(pool)

    def resize(self, pool: PoolConfig, capacity: int) -> ResizeHandle:
        return self._of(pool).resize(pool, capacity)

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        return self._of(pool).apply(pool, actions)

    def resume(self, pool: PoolConfig, token: str) -> ResizeHandle:
        resume = getattr(self._quota, "resume", None)
        if pool.kind != "vmss" or resume is None:
            raise PermanentError(f"pool {pool.name}: nothing to resume for kind {pool.kind!r}")
        handle: ResizeHandle = resume(pool, token)
        return handle

    def usage(self, location: str) -> Mapping[str, QuotaUsage]:
        return self._quota.usage(location)


class MetricsRouter:
    """The daemon's metrics source: each pool read from its ``metric.source``.

    A ``pexip`` pool with ``fallback = "azure-monitor"`` is read from Azure Monitor when the
    Management Node fails it. With a publisher, every good Pexip reading that splits calls by
    instance is republished to Azure Monitor (best effort: a failure is logged, nothing holds).
    """

    def __init__(
        self,
        config: Config,
        *,
        azure: MetricsSource,
        pexip: MetricsSource | None,
        publisher: AzureMetricPublisher | None = None,
    ) -> None:
        self._config = config
        self._azure = azure
        self._pexip = pexip
        self._publisher = publisher
        self._log = get_logger()

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        by_pexip = [p for p in pools if p.metric.source == "pexip"]
        by_azure = [p for p in pools if p.metric.source != "pexip"]
        out: dict[str, MetricReading] = {}
        if by_pexip:
            if self._pexip is None:
                for p in by_pexip:
                    out[p.name] = MetricReading.missing("pexip source needs [pexip] settings")
            else:
                out.update(self._pexip.read(by_pexip, now))
            fallback = [
                p
                for p in by_pexip
                if p.metric.fallback == "azure-monitor"
                and out[p.name].status is not MetricStatus.OK
            ]
            for p in fallback:
                self._log.warning(
                    "metrics.fallback",
                    pool=p.name,
                    source="azure-monitor",
                    error=out[p.name].detail,
                )
            by_azure += fallback
        if by_azure:
            out.update(self._azure.read(by_azure, now))
        if self._publisher is not None:
            self._publish(by_pexip, out, now)
        return out

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
    ) -> None:
        self.azure = AzureAdapters(config, observer=observer)
        self.pexip: PexipClient | None = None
        self.publisher: AzureMetricPublisher | None = None
        azure_metrics: AzureMonitorMetrics = self.azure.metrics
        compute = self.azure.compute
        kinds: dict[str, KindActuator] = {
            "vmss": VmssActuator(compute, AzureScaleSetInstances(compute))
        }
        pexip_metrics: MetricsSource | None = None
        if config.pexip.url:
            try:
                self.pexip = PexipClient(config.pexip, password=pexip_password)
            except BaseException:
                self.azure.close()
                raise
            vm_set = VmSetActuator(AzureVmSet(compute), self.pexip, clock)
            kinds["pexip-teams"] = PexipTeamsActuator(compute, self.pexip)
            kinds["vm-set"] = vm_set
            pexip_metrics = PexipMetrics(config, self.pexip, members=vm_set.member_names)
            if config.pexip.publish_metrics:
                self.publisher = AzureMetricPublisher(config, self.azure.credential)
        self.compute = PoolRouter(kinds, compute)
        self.metrics = MetricsRouter(
            config, azure=azure_metrics, pexip=pexip_metrics, publisher=self.publisher
        )

    @property
    def credential(self) -> Any:
        """The process's one Azure credential (also used by the leader lease)."""
        return self.azure.credential

    def close(self) -> None:
        if self.pexip is not None:
            self.pexip.close()
        if self.publisher is not None:
            self.publisher.close()
        self.azure.close()


def build_adapters(config: Config, *, clock: Clock, observer: Any = None) -> Adapters:
    """The adapters for ``run`` and ``once``: Azure always, Pexip when ``[pexip] url`` is set."""
    return Adapters(config, clock=clock, observer=observer)
