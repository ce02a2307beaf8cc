"""Frozen value types shared by the core, the policies, the adapters and the simulator.

Units, once for the whole module: times are seconds since the Unix epoch (UTC) as ``float``,
durations are seconds, load is *concurrent calls*, capacity is *instances*, quota is *vCPUs*.
Plain floats instead of ``datetime`` keep ``decide()`` cheap enough for month-long backtests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from scaler.core.history import LoadHistory


class Reason(StrEnum):
    """Why a pool's desired capacity is what it is.

    The names are a contract: they appear verbatim in logs, ``once --json``, ``/status`` and
    backtest reports. Add new ones; never rename.
    """

    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    """The policies' answer stood unchanged (which may equal the current capacity)."""
    NO_RECOMMENDATION = "NoRecommendation"
    """No policy had an opinion; the pool holds."""
    WITHIN_TOLERANCE = "WithinTolerance"
    """Load is within the tolerance band around the target; the pool holds."""
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"
    TOO_FEW_INSTANCES = "TooFewInstances"
    """Raised to the pool's ``min``."""
    TOO_MANY_INSTANCES = "TooManyInstances"
    """Lowered to the pool's ``max``."""
    QUOTA_LIMITED = "QuotaLimited"
    """A scale-up was cut to the vCPU headroom of the quota family or the regional total."""
    METRICS_STALE = "MetricsStale"
    """The metric has a series but no usable recent value; the pool never scales in."""
    METRICS_MISSING = "MetricsMissing"
    """The metric has no series at all; the pool never scales in."""
    RESIZE_IN_FLIGHT = "ResizeInFlight"
    """A resize of the pool has not finished; nothing new is asked until it has."""
    OBSERVE_FAILED = "ObserveFailed"
    """The pool's own state could not be read; nothing is decided for it this tick."""
    WAITING_FOR_IDLE = "WaitingForIdle"
    """A call-safe scale-in removes only idle instances; the rest of it waits for calls to end."""
    DRAIN_TIMED_OUT = "DrainTimedOut"
    """The configured maximum drain time passed; the least-loaded busy instances are removed."""
    NO_SPARE_INSTANCES = "NoSpareInstances"
    """A ``vm-set`` pool has no deallocated VM left to start."""
    LICENSE_LIMITED = "LicenseLimited"
    """No longer given (kept so the name stays reserved): Pexip's Teams licence counts Teams
    *tenants*, not calls (docs.pexip.com/admin/teams_configuration.htm), so it never caps a
    Teams Connector's size."""
    PEXIP_SCHEDULED = "PexipScheduledScaling"
    """Pexip's own scheduled scaling adds instances on top of the minimum the daemon sets; the
    pool cannot go below what those policies add while they are active."""
    OBSERVE_TIMED_OUT = "ObserveTimedOut"
    """The pool's reads did not finish within the tick's deadline; it holds this tick."""
    QUOTA_UNKNOWN = "QuotaUnknown"
    """The vCPU quota that a scale-up would use is not known (``usage.list`` failed and no recent
    reading is remembered, or the pool's quota family has no line in it): the scale-up is held to
    the configured safe step (``[azure] quota_unknown_step``, default 0). The detail names the
    family and the location."""
    CAPACITY_UNAVAILABLE = "CapacityUnavailable"
    """Azure had no capacity for the VM size (``AllocationFailed``, ``ZonalAllocationFailed``,
    ``SkuNotAvailable``, ``OverconstrainedAllocationRequest``): not a quota problem; the pool's
    scale-ups back off."""
    SCALE_IN_UNVERIFIED = "ScaleInUnverified"
    """Something a scale-in relies on besides the load could not be read or proven this tick
    (Pexip's scheduled scaling, instance status, the join between Pexip's records and the
    scale set's instances…): the pool does not shrink; a scale-out would have gone ahead. The
    detail names what is unknown."""


class MetricStatus(StrEnum):
    """Quality of a metric reading. Only ``OK`` readings may ever lead to a scale-in."""

    OK = "ok"
    STALE = "stale"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class MetricReading:
    """A pool's load as read from a metric source, already converted to concurrent calls.

    ``history`` holds older complete buckets (oldest first) for policies that look back;
    ``None`` in it is an unknown bucket, never zero.
    """

    status: MetricStatus
    calls: float | None = None
    as_of: float | None = None
    detail: str = ""
    history: tuple[tuple[float, float | None], ...] = ()
    by_instance: tuple[tuple[str, float | None], ...] = ()
    """Calls per instance (node or VM name, calls) at ``as_of`` where the source splits them;
    drain-aware pools choose their scale-in victims from it."""
    unlisted_is_idle: bool = False
    """The source lists only instances that carry calls, so an instance the pool itself lists
    as running but ``by_instance`` does not name carries none (Pexip's teamsnode list without
    the Event Hub: "listed only while a Teams call is in progress",
    docs.pexip.com/admin/teams_status.htm). ``False``: an unlisted instance is unknown."""

    @staticmethod
    def ok(calls: float, as_of: float | None = None) -> MetricReading:
        return MetricReading(MetricStatus.OK, calls, as_of)

    @staticmethod
    def stale(detail: str = "") -> MetricReading:
        return MetricReading(MetricStatus.STALE, None, None, detail)

    @staticmethod
    def missing(detail: str = "") -> MetricReading:
        return MetricReading(MetricStatus.MISSING, None, None, detail)


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """The parts of a pool's configuration the core needs."""

    name: str
    min: int
    max: int
    calls_per_instance: float
    vcpus_per_instance: int
    quota_family: str
    location: str
    priority: int = 0
    """Higher goes first when pools compete for scarce quota; ties go by name."""
    boot_minutes: float = 20.0
    """Minutes before a new instance takes calls (for policies that look ahead)."""
    scale_up_uses_quota: bool = True
    """Whether a scale-up needs new vCPU quota. Azure counts the cores of allocated *and*
    deallocated VMs against the regional and family quotas
    (https://learn.microsoft.com/azure/virtual-machines/quotas), so a pool that grows by starting
    pre-provisioned deallocated VMs (``vm-set``) needs no headroom and is not charged for it."""


@dataclass(frozen=True, slots=True)
class DirectionBehavior:
    """Stabilisation and rate limit for one direction, as Kubernetes HPA ``behavior`` has them.

    Within ``period_seconds`` the pool may change by ``max_instances`` or by ``max_percent`` of
    its size at the start of the period; ``select`` picks the policy that allows the bigger
    (``"max"``) or the smaller (``"min"``) change. Both ``None`` means no rate limit; both ``0``
    disables the direction. As HPA's ``Pods`` and ``Percent`` policies each have their own
    ``periodSeconds``, ``instances_period_seconds`` / ``percent_period_seconds`` may give each
    limit its own period (``None``: ``period_seconds``).
    """

    stabilization_seconds: float = 0.0
    max_instances: int | None = None
    max_percent: float | None = None
    period_seconds: float = 60.0
    select: str = "max"
    instances_period_seconds: float | None = None
    percent_period_seconds: float | None = None

    @property
    def longest_period(self) -> float:
        """The longest period either limit looks back (how long scale events matter)."""
        return max(
            self.period_seconds,
            self.instances_period_seconds or 0.0,
            self.percent_period_seconds or 0.0,
        )


@dataclass(frozen=True, slots=True)
class Behavior:
    """How eagerly a pool follows its policies (applies to every policy of the pool)."""

    tolerance: float = 0.1
    scale_up: DirectionBehavior = field(
        default_factory=lambda: DirectionBehavior(0.0, 4, 100.0, 60.0, "max")
    )
    scale_down: DirectionBehavior = field(
        default_factory=lambda: DirectionBehavior(300.0, None, 100.0, 60.0, "max")
    )
    missing_data_floor: int | None = None
    """With stale or missing metrics, scale out to at least this many instances (never in)."""


@dataclass(frozen=True, slots=True)
class PoolState:
    """History the core needs between ticks; returned updated by ``decide()``.

    ``recommendations``: (time, instances) after tolerance, for stabilisation windows.
    ``scale_events``: (time, signed change in instances) actually applied, for rate limits.
    Times come from the wall clock and may lie in the future after a backward clock step or
    from a state file written by a machine whose clock was ahead; ``decide()`` re-stamps them
    so that they can hold a scale-in for at most one window and never hold a scale-out.
    """

    recommendations: tuple[tuple[float, int], ...] = ()
    scale_events: tuple[tuple[float, int], ...] = ()
    last_scale_up: float | None = None
    last_scale_down: float | None = None
    since: float | None = None
    """When ``decide()`` first saw the pool (epoch seconds). ``None``: never, so nothing is known
    of its recent past: ``decide()`` then records the current size as a recommendation, which
    holds any scale-in for one down-stabilisation window (Kubernetes HPA seeds a new HPA's
    recommendations the same way: ``TestScaleDownStabilizeInitialSize``). A known pool whose
    recommendations have all expired (``since`` set, ``recommendations`` empty) is not held."""


@dataclass(frozen=True, slots=True)
class Observation:
    """What the daemon saw of one pool this tick (level-triggered: re-read every tick)."""

    current: int
    """Instances the pool has now (the scale set's capacity): whatever Azure says is the truth."""
    metric: MetricReading
    in_flight: bool = False
    """A resize (ours or anyone's) has not finished."""


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """Everything a policy may look at. ``calls`` is ``None`` when the metric is not usable.

    ``history`` is the pool's past load (calls per minute) as the daemon or backtest has seen
    it, or ``None`` where none is kept.
    """

    now: float
    current: int
    calls: float | None
    pool: PoolLimits
    metric: MetricReading
    state: PoolState
    history: LoadHistory | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A policy's answer: the instances it wants.

    ``utilization_ratio`` (observed utilisation ÷ target) lets the core apply the HPA tolerance
    band; policies that do not track a target leave it ``None``.
    """

    desired: int
    utilization_ratio: float | None = None
    note: str = ""
    source: str | None = None
    """Which part of a combining policy produced ``desired`` (e.g. ``"predictive"`` for a
    composite); the decision then names the policy ``composite:predictive``."""
    ceiling: int | None = None
    """A cap on the pool while this answer stands (a schedule's ``max``). The core applies the
    lowest ceiling of all answers together with the pool's ``max`` (stage 5), never below the
    pool's ``min`` and, like ``max``, never as a scale-in on unusable metrics."""


@runtime_checkable
class ScalingPolicy(Protocol):
    """A pure scaling policy: no I/O, no clock, no randomness.

    Policies are built from their typed config by the registry in ``policies``; ``recommend``
    returns ``None`` when the policy has no opinion (for example no usable metric).
    """

    name: ClassVar[str]

    def recommend(self, ctx: PolicyContext) -> Recommendation | None: ...


@dataclass(frozen=True, slots=True)
class Step:
    """One stage of the clamp pipeline: the value after it and the reason it gave."""

    stage: str
    value: int
    reason: Reason


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of ``decide()`` for one pool at one tick."""

    pool: str
    current: int
    desired: int
    reason: Reason
    recommended: int | None
    policy: str | None
    calls: float | None
    metric_status: MetricStatus
    steps: tuple[Step, ...]
    state: PoolState
    detail: str = ""

    @property
    def change(self) -> int:
        return self.desired - self.current


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """One quota line of ``usage.list(location)``: vCPUs in use and allowed."""

    name: str
    current: int
    limit: int
    problem: str = ""
    """Why the line Azure sent cannot be used (``""`` when it can), e.g. ``limit=1e300``: its
    numbers are then 0 and mean nothing; a pool it concerns holds its scale-ups
    (``QuotaUnknown``) naming the line, rather than reading it as absent."""

    @property
    def headroom(self) -> int:
        return 0 if self.problem else max(0, self.limit - self.current)


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """All inputs ``plan_tick()`` needs for one pool."""

    limits: PoolLimits
    behavior: Behavior
    policies: Sequence[ScalingPolicy]
    observation: Observation
    state: PoolState
    history: LoadHistory | None = None
