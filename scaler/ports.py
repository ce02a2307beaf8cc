"""The small protocols between the daemon and the world.

The real Azure adapters, the in-memory simulator and test fakes all implement these, so the
daemon loop is the same code in production, in the demo and in tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from scaler.config_model import PoolConfig
from scaler.core.types import MetricReading, QuotaUsage
from scaler.core.victims import Instance, InstanceActions


@dataclass(frozen=True, slots=True)
class Preflight:
    """What a check of a pool against the live platform found at start-up or on reload.

    An error refuses the pool (``run``/``once`` exit 2 naming it; a reload is rejected); a
    warning is logged and the pool runs."""

    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """A pool as Azure reports it now."""

    capacity: int
    """Instances requested (the scale set's ``sku.capacity``)."""
    provisioning_state: str = "Succeeded"
    """``Updating`` etc. means someone's change is still running."""
    instances: tuple[Instance, ...] | None = None
    """Per-instance view of pools that act per instance (drain-aware ``vmss``, ``vm-set``);
    ``None`` for pools resized as a whole."""
    calls_per_instance: float | None = None
    """Calls one instance carries, when the pool itself says (``vm-set``: its nodes'
    ``max_hd_calls``); ``None``: the configured ``calls_per_instance``."""
    scheduled_instances: int | None = 0
    """Instances Pexip's own scheduled-scaling policies add on top of the minimum right now
    (``pexip-teams``; docs.pexip.com/admin/teams_scaling.htm); ``None``: unknown (the read
    failed or the Management Node has no such policies) — then a scale-out writes the whole
    need as the minimum and a scale-in holds."""
    free_call_licences: int | None = None
    """Pexip call licences free now (``pexip-teams``; ``port_total - port_count`` of
    ``status/v1/licensing``): said in the detail of a scale-out that needs more, never a cap.
    ``None``: unknown."""
    quota_family: str | None = None
    """The quota family of the pool's VM size as Azure lists it (Resource SKUs); ``None``:
    not known (then the configured ``quota_family`` applies, or ``QuotaUnknown``)."""
    draining: int = 0
    """Instances still allocated but on their way out (Pexip's "Waiting for termination"),
    not counted in ``capacity``."""
    unserving: int = 0
    """Instances the scale set counts (``sku.capacity``) that serve no call and are not in
    ``capacity``: stopped or starting ones (power state), ones Pexip reports in "Maintenance"
    or "Failure" (docs.pexip.com/admin/teams_status.htm). A scale-out writes the desired size
    *plus* these, so that the serving instances reach it."""
    scale_in_unverified: str = ""
    """Why a scale-in of the pool cannot be trusted this tick ("" when it can): an auxiliary
    read failed or a join is not proven. The kind's planner then holds a scale-in
    (``Reason.SCALE_IN_UNVERIFIED``); a scale-out goes ahead."""
    notes: tuple[str, ...] = ()
    """Assumptions taken this tick for what could not be read (shown in the decision's detail,
    so in ``/status`` and ``once --json``)."""
    etag: str | None = None
    """The scale set's etag as read (``vmss``); the adapter writes ``sku.capacity`` only
    ``If-Match`` it, so a resize computed from this read fails (412, transient) once someone else
    has changed the scale set. ``None``: not a scale set, or Azure sent none."""

    @property
    def in_flight(self) -> bool:
        return self.provisioning_state.lower() not in ("succeeded", "failed", "canceled")


class Clock(Protocol):
    """Wall time in seconds since the epoch (virtual in the simulator)."""

    def now(self) -> float: ...


class MetricsSource(Protocol):
    """Reads every pool's load in as few calls as possible.

    Returns a reading per pool name, in the metric's own unit (``MetricConfig.meaning``); a pool
    whose read failed gets a ``MISSING`` reading with the error as detail, never an exception.
    """

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]: ...


class ResizeHandle(Protocol):
    """A resize that has been started and may still be running."""

    @property
    def changed(self) -> bool:
        """Whether anything was written (``False``: the value was already set)."""
        ...

    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds; raise ``AdapterError`` if the resize failed and
        ``TimeoutError`` if it is still running."""
        ...

    def continuation_token(self) -> str | None: ...


class PoolActuator(Protocol):
    """Reads and changes pools: each pool's kind (``scaler.kinds``) plans the writes
    (``InstanceActions``: a capacity, or instances to protect, delete, start, drain or
    deallocate) and the actuator carries them out in order, returning a handle on whatever
    keeps running."""

    def observe(self, pool: PoolConfig) -> PoolStatus: ...

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle: ...

    def preflight(self, pool: PoolConfig) -> Preflight:
        """Checks of the pool against the live platform, at start-up and on reload."""
        ...

    def resume(self, pool: PoolConfig, token: str) -> ResizeHandle:
        """A handle on the resize saved as ``token`` (``ResizeHandle.continuation_token()``);
        raises ``AdapterError`` when the token is no longer usable (or the pool's writes are
        not resumable)."""
        ...


class QuotaReader(Protocol):
    """vCPU usage and limits of a region, by quota name (``cores``, ``standardFSv2Family``…)."""

    def usage(self, location: str) -> Mapping[str, QuotaUsage]: ...


class LeaderLease(Protocol):
    """Who may write: only the leader among replicas actuates.

    ``is_leader`` must be cheap and time-bounded, because the daemon asks it right before every
    write (fencing): it is true only while now < last successful renewal + lease − margin.
    """

    @property
    def role(self) -> str:
        """``leader``, ``standby``, or ``unknown`` before the first attempt."""
        ...

    def is_leader(self) -> bool: ...


class SharedState(Protocol):
    """A small document the replicas share (the daemon's state, written by the leader)."""

    def load(self) -> bytes | None:
        """The document, ``None`` if there is none; raises ``AdapterError`` when unreadable."""
        ...

    def save(self, data: bytes) -> None: ...
