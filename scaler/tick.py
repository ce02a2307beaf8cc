"""One tick: observe → decide → act for every pool.

Each tick re-reads every pool's real capacity (level-triggered: a change made in the portal is
simply the new truth), reads all metrics in batches and each region's quota once — all of it
concurrently and bounded by the tick's deadline, so one stuck read holds only its own pool — lets
the pure core decide, lets each pool's kind plan the writes (``scaler.kinds``), and writes only
where the decision differs from what Azure has. A resize is started and not waited for: while it
runs the pool holds (``ResizeInFlight``), so one slow scale set never stalls the others. Errors
of one pool never stop the tick. Leadership is re-checked right before every write (fencing).

``Ticker`` owns what the daemon carries from tick to tick per pool (stabilisation state,
resizes in flight, drains, load history, quota memory, capacity backoff); persistence
(``scaler.persistence``) saves and adopts it, and the loop (``scaler.daemon``) drives it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from policies.composite import lookback_of
from scaler.config import Config, PoolConfig
from scaler.core import (
    Decision,
    MetricReading,
    MetricStatus,
    Observation,
    PoolPlan,
    PoolState,
    QuotaUsage,
    Reason,
    plan_tick,
    record_scale,
)
from scaler.core.history import ArrayHistory
from scaler.core.metrics import to_calls
from scaler.core.quota import CapacityBackoff, QuotaMemory, QuotaRules
from scaler.core.types import PoolLimits, ScalingPolicy
from scaler.core.victims import DrainState, InstanceActions
from scaler.core.wallclock import backward_step, settle_future, shift_state
from scaler.errors import AdapterError, CapacityError
from scaler.kinds import PlanInput, kind_of, limits_of
from scaler.logs import get_logger
from scaler.policyset import build_policies
from scaler.ports import (
    Clock,
    LeaderLease,
    MetricsSource,
    PoolActuator,
    PoolStatus,
    QuotaReader,
    ResizeHandle,
)
from scaler.reads import BoundedReads, Outcome
from scaler.sources import source_of

T = TypeVar("T")
R = TypeVar("R")

CAPACITY_BACKOFF_CAP = 20
"""A pool whose VM size Azure has no capacity for retries at most this many intervals apart."""

HISTORY_MINUTES = 5 * 7 * 24 * 60
"""Most minutes of load kept per pool, for policies that look back weeks (five weeks, ~200 kB a
pool of whole call counts, ``scaler.core.history``); a pool whose policies read less keeps less
(``history_minutes``)."""


def history_minutes(policies: Sequence[ScalingPolicy]) -> int:
    """Minutes of load history a pool keeps: what its policies read (their declared
    ``lookback_minutes``; five weeks for one that does not say), plus an hour, at most five
    weeks. A fleet of target-tracking pools keeps an hour each, not 200 kB each."""
    need = max((lookback_of(p) for p in policies), default=0)
    return min(HISTORY_MINUTES, need + 60)


@dataclass(frozen=True, slots=True)
class PoolOutcome:
    """What a tick did for one pool; ``once --json`` prints these."""

    pool: str
    current: int | None
    desired: int | None
    reason: str
    applied: bool = False
    dry_run: bool = False
    """The pass was a dry run (nothing it decided is written), whether or not it would resize."""
    error: str | None = None
    decision: Decision | None = None

    def to_json(self) -> dict[str, Any]:
        d = self.decision
        return {
            "pool": self.pool,
            "current": self.current,
            "desired": self.desired,
            "reason": self.reason,
            "applied": self.applied,
            "dry_run": self.dry_run,
            "recommended": d.recommended if d else None,
            "policy": d.policy if d else None,
            "calls": d.calls if d else None,
            "metric_status": str(d.metric_status) if d else None,
            "steps": [[s.stage, s.value, str(s.reason)] for s in d.steps] if d else [],
            "detail": (d.detail if d else "") or None,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Observed:
    """What a tick's observe phase hands to its plan and act phases."""

    readable: Sequence[PoolConfig]
    """The pools whose status was read, in the config's order."""
    statuses: Mapping[str, PoolStatus]
    failed: Mapping[str, tuple[Reason, str]]
    """Pools that could not be read: why (``ObserveFailed``/``ObserveTimedOut``) and the error."""
    readings: Mapping[str, MetricReading]
    """The metrics as read (a failed read: missing with its error), before ``to_calls``."""


@dataclass(frozen=True, slots=True)
class Planned:
    """What a tick's plan phase hands to its act phase: the core's decisions."""

    decisions: tuple[Decision, ...]


@dataclass(frozen=True, slots=True)
class _Backoff:
    backoff: CapacityBackoff
    code: str


@dataclass(slots=True)
class _InFlight:
    handle: ResizeHandle
    target: int
    started: float


class Ticker:
    """The per-pool state carried between ticks, and the tick itself."""

    def __init__(
        self,
        *,
        config: Config,
        metrics: MetricsSource,
        actuator: PoolActuator,
        quota: QuotaReader,
        clock: Clock,
        monotonic: Callable[[], float],
        period: Callable[[], float],
        dry_run: bool,
        leader: LeaderLease | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.actuator = actuator
        self.quota = quota
        self.clock = clock
        self.monotonic = monotonic
        self.period = period
        """Seconds between ticks now (the tick's deadline defaults to 80 % of it)."""
        self.dry_run = dry_run
        self.leader = leader
        self.stopping = threading.Event()
        """Set when the daemon stops: no new write starts."""
        self.states: dict[str, PoolState] = {p.name: PoolState() for p in config.pools}
        self.inflight: dict[str, _InFlight] = {}
        self.last: dict[str, PoolOutcome] = {}
        self.usage: dict[str, Mapping[str, QuotaUsage]] = {}
        self.ticks = 0
        self.last_tick_at: float | None = None
        self.read_failures: list[str] = []
        """What the last tick could not read (pools, metrics, quota); empty when all worked."""
        self.quota_memory = QuotaMemory()
        """The last ``usage.list`` of each region with its age, charged with what was granted
        since (``scaler.core.quota``)."""
        self._charged: dict[str, PoolLimits] = {}
        self.capacity_backoff: dict[str, _Backoff] = {}
        """Pools whose last resize Azure refused for want of capacity."""
        self.reads = BoundedReads(config.daemon.read_workers, monotonic=monotonic)
        """Reads of one tick run here, bounded by the tick's deadline."""
        self.pending_drains: dict[str, DrainState] = {}
        """Per pool, what a call-safe scale-in waits for (pools with nothing waiting have no
        entry); persisted."""
        self._limits = {p.name: limits_of(p, config.azure.location) for p in config.pools}
        self._scopes = sorted({config.quota_scope_of(p) for p in config.pools})
        self._behaviors = {p.name: p.behavior.to_core() for p in config.pools}
        self._policies = {p.name: build_policies(p) for p in config.pools}
        self.history = {p.name: self._new_history(p.name, clock.now()) for p in config.pools}
        self._logged: dict[str, tuple[object, ...]] = {}
        """Per pool, what its last ``decision.made`` said (``[daemon] log_decisions``)."""
        self.log = get_logger()
        self._clock_seen: tuple[float, float] | None = None
        """(wall clock, monotonic clock) at the start of the last tick (``follow_clock``)."""

    def use_config(self, new: Config) -> None:
        """A reloaded config: pools added get fresh state, pools removed are forgotten."""
        now = self.clock.now()
        self.config = new
        self._limits = {p.name: limits_of(p, new.azure.location) for p in new.pools}
        self._scopes = sorted({new.quota_scope_of(p) for p in new.pools})
        self._behaviors = {p.name: p.behavior.to_core() for p in new.pools}
        self._policies = {p.name: build_policies(p) for p in new.pools}
        names = {p.name for p in new.pools}
        self._logged.clear()  # a new config: every pool's next decision is said again
        for pool in new.pools:
            self.states.setdefault(pool.name, PoolState())
            if pool.name in self.history:  # its policies may now read further back, or less
                self.history[pool.name].set_capacity(history_minutes(self._policies[pool.name]))
            else:
                self.history[pool.name] = self._new_history(pool.name, now)
        for table in (self.states, self.history, self.last):
            for name in [n for n in table if n not in names]:
                del table[name]

    def _new_history(self, pool: str, now: float) -> ArrayHistory:
        return ArrayHistory(
            start=now // 60.0 * 60.0, capacity=history_minutes(self._policies[pool])
        )

    def follow_clock(self, now: float) -> None:
        """Keep what the pools remember consistent with a wall clock that may step
        (``scaler.core.wallclock``): after a backward step every recorded time moves back by
        the step; whatever still lies in the future (a state file, a predecessor's snapshot)
        is settled so that it never holds a scale-out. Called at the start of every tick."""
        mono = self.monotonic()
        last, self._clock_seen = self._clock_seen, (now, mono)
        if last is not None:
            back = backward_step(
                wall_before=last[0], mono_before=last[1], wall_now=now, mono_now=mono
            )
            if back:
                self.log.warning(
                    "clock.stepped_back",
                    seconds=round(back, 1),
                    detail="recorded scale events and windows moved back with the clock",
                )
                self._shift(-back)
        settled = []
        for pool in self.config.pools:
            state = self.states.get(pool.name)
            if state is None:
                continue
            fixed = settle_future(state, now=now, max_instances=pool.max)
            if fixed is not state:
                self.states[pool.name] = fixed
                settled.append(pool.name)
        if settled:
            self.log.warning(
                "state.from_the_future",
                pools=settled,
                detail="times after now: scale-outs forgotten, scale-ins held one window",
            )

    def _shift(self, by: float) -> None:
        """Move every recorded wall-clock time by ``by`` seconds."""
        self.states = {name: shift_state(state, by) for name, state in self.states.items()}
        for op in self.inflight.values():
            op.started += by
        for name, b in list(self.capacity_backoff.items()):
            if b.backoff.last_failure_at is not None:
                moved = dataclasses.replace(
                    b.backoff, last_failure_at=b.backoff.last_failure_at + by
                )
                self.capacity_backoff[name] = _Backoff(moved, b.code)
        for name, drain in list(self.pending_drains.items()):
            if drain.pending_since is not None:
                self.pending_drains[name] = dataclasses.replace(
                    drain, pending_since=drain.pending_since + by
                )
        self.quota_memory = QuotaMemory(
            {
                loc: dataclasses.replace(region, as_of=region.as_of + by)
                for loc, region in self.quota_memory.regions.items()
            }
        )

    def tick(self, now: float) -> list[PoolOutcome]:
        """Observe, decide and act once for every pool; ``now`` from the wall clock. Three
        phases with typed hand-offs: ``_observe`` (every read, bounded by the tick's deadline)
        gives ``Observed``, ``_plan`` (the pure core's decisions) gives ``Planned``, ``_act``
        (each pool's kind plans its writes, which start) gives the outcomes."""
        self.follow_clock(now)
        start = self.monotonic()
        seen = self._observe(now, start)
        planned = self._plan(seen, now)
        outcomes, logged = self._act_on(seen, planned, now)
        for o in outcomes:
            self.last[o.pool] = o
        self.ticks += 1
        self.last_tick_at = now
        if self.config.daemon.log_decisions == "changes":
            self._summary(outcomes, logged, start)
        return outcomes

    # -- observe ------------------------------------------------------------------------------

    def _observe(self, now: float, start: float) -> Observed:
        """Every read of the tick: each pool's status, the metrics, each quota scope's usage,
        concurrently and bounded by the tick's budget (the pools' reads get half of it,
        metrics and quota the rest)."""
        pools = self.config.pools
        # (of the configured interval, in real seconds: a demo's sped-up period is no budget)
        budget = (
            self.config.daemon.tick_deadline_seconds or 0.8 * self.config.daemon.interval_seconds
        )
        # Metrics and quota are read while the pools are: they do not depend on what the pools'
        # reads find (their readings of a pool that cannot be read are simply not used), except
        # a node metric, which counts the pool's members as this tick lists them.
        early = [p for p in pools if not _reads_members(p)]
        locations = self._scopes  # vCPU quota is read once per subscription and region
        calls: dict[str, Callable[[], Any]] = {
            f"quota {loc}": _bind(self.quota.usage, loc) for loc in locations
        }
        if early:
            calls["metrics"] = lambda: self.metrics.read(early, now)
        background = self.reads.submit(calls)
        observed = self.reads.each(
            {pool.name: _bind(self.actuator.observe, pool) for pool in pools},
            deadline=start + budget / 2.0,
        )
        statuses, failed, read_failures = self._pool_statuses(observed)
        self._reap_finished()

        readable = [p for p in pools if p.name in statuses]
        late = [p for p in readable if _reads_members(p)]
        got_all: dict[str, Outcome[Any]] = {}
        if late:
            got_all.update(
                self.reads.run(
                    {"metrics nodes": lambda: self.metrics.read(late, now)},
                    deadline=start + budget,
                )
            )
        got_all.update(background.wait(start + budget))
        readings = self._readings(
            got_all, (("metrics", early), ("metrics nodes", late)), read_failures
        )
        usage = self._usage(got_all, locations, read_failures)
        self.usage = usage
        self.quota_memory = self.quota_memory.remember(usage, now=now)
        self.read_failures = read_failures
        return Observed(readable, statuses, failed, readings)

    def _pool_statuses(
        self, observed: Mapping[str, Outcome[PoolStatus]]
    ) -> tuple[dict[str, PoolStatus], dict[str, tuple[Reason, str]], list[str]]:
        """The pools read, the pools that could not be (and why), and the failures' names."""
        statuses: dict[str, PoolStatus] = {}
        failed: dict[str, tuple[Reason, str]] = {}
        read_failures: list[str] = []
        for pool in self.config.pools:
            got = observed[pool.name]
            if got.value is not None:
                statuses[pool.name] = got.value
                continue
            read_failures.append(f"pool {pool.name}")
            self._logged.pop(pool.name, None)  # said again once it can be decided
            error = self._failure("observe", got)
            if got.timed_out is not None:
                failed[pool.name] = (Reason.OBSERVE_TIMED_OUT, error)
                self.log.warning("pool.observe_timed_out", pool=pool.name, error=error)
            else:
                failed[pool.name] = (Reason.OBSERVE_FAILED, error)
                self.log.warning("pool.observe_failed", pool=pool.name, error=error)
        return statuses, failed, read_failures

    def _readings(
        self,
        got_all: Mapping[str, Outcome[Any]],
        groups: Sequence[tuple[str, Sequence[PoolConfig]]],
        read_failures: list[str],
    ) -> dict[str, MetricReading]:
        """Each metrics read's readings; a failed read makes its pools' readings missing with
        the error (and is named among the tick's read failures)."""
        readings: dict[str, MetricReading] = {}
        for key, group in groups:
            metrics = got_all.get(key)
            if metrics is None:
                continue
            if metrics.value is not None:
                readings.update(metrics.value)
                continue
            read_failures.append(key)
            error = self._failure("metrics read", metrics)
            self.log.warning("metrics.read_failed", error=error)
            readings.update({p.name: MetricReading.missing(error) for p in group})
        return readings

    def _usage(
        self,
        got_all: Mapping[str, Outcome[Any]],
        locations: Sequence[str],
        read_failures: list[str],
    ) -> dict[str, Mapping[str, QuotaUsage]]:
        """Each quota scope's usage as read now (a failed read is named and left out)."""
        usage: dict[str, Mapping[str, QuotaUsage]] = {}
        for loc in locations:
            quota = got_all[f"quota {loc}"]
            if quota.value is not None:
                usage[loc] = quota.value
            else:
                read_failures.append(f"quota {loc}")
                error = self._failure("usage.list", quota)
                self.log.warning("quota.read_failed", location=loc, error=error)
        return usage

    # -- plan ---------------------------------------------------------------------------------

    def _plan(self, seen: Observed, now: float) -> Planned:
        """What the pure core decides for every pool that could be read (its reading in calls
        fed to the pool's history first)."""
        plans = [self._pool_plan(pool, seen) for pool in seen.readable]
        interval = self.config.daemon.interval_seconds
        holds = {
            name: f"{b.code}: Azure had no capacity; retrying after a backoff"
            for name, b in self.capacity_backoff.items()
            if b.backoff.holds(now=now, interval=interval, cap=CAPACITY_BACKOFF_CAP * interval)
        }
        decisions = plan_tick(
            pools=plans,
            quota=self.quota_memory,
            rules=QuotaRules(
                self.config.azure.quota_max_age_seconds, self.config.azure.quota_unknown_step
            ),
            capacity_holds=holds,
            now=now,
        )
        self._charged = {p.limits.name: p.limits for p in plans}
        return Planned(tuple(decisions))

    def _pool_plan(self, pool: PoolConfig, seen: Observed) -> PoolPlan:
        status = seen.statuses[pool.name]
        reading = seen.readings.get(pool.name) or MetricReading.missing("no reading")
        limits = self._limits[pool.name]
        if status.quota_family and not pool.quota_family:  # from the VM size
            limits = dataclasses.replace(limits, quota_family=status.quota_family)
        if status.calls_per_instance:  # a vm-set's nodes report their own capacity
            limits = dataclasses.replace(limits, calls_per_instance=status.calls_per_instance)
        reading = to_calls(
            reading,
            meaning=pool.metric.meaning,
            current=status.capacity,
            calls_per_instance=limits.calls_per_instance,
        )
        self._remember(pool.name, reading)
        return PoolPlan(
            limits=limits,
            behavior=self._behaviors[pool.name],
            policies=self._policies[pool.name],
            observation=Observation(
                current=status.capacity,
                metric=reading,
                in_flight=status.in_flight or pool.name in self.inflight,
            ),
            state=self.states[pool.name],
            history=self.history[pool.name],
        )

    # -- act ----------------------------------------------------------------------------------

    def _act_on(
        self, seen: Observed, planned: Planned, now: float
    ) -> tuple[list[PoolOutcome], int]:
        """Each decision through its pool's kind (the writes it plans start), and the pools
        that could not be read as failed outcomes, in the config's order; with how many
        decisions were logged."""
        pools = self.config.pools
        by_name = {p.name: p for p in pools}
        outcomes: list[PoolOutcome] = []
        logged = 0
        for decision in planned.decisions:
            pool = by_name[decision.pool]
            decision, actions = self._per_instance(
                pool, decision, seen.statuses[pool.name], seen.readings.get(pool.name), now
            )
            said = self._log_decision(pool.name, decision)
            logged += said
            outcomes.append(self._act(pool, decision, now, actions, said=said))
        for name, (why, error) in seen.failed.items():
            prev = self.last.get(name)
            outcomes.append(
                PoolOutcome(
                    pool=name,
                    current=prev.current if prev else None,
                    desired=prev.current if prev else None,
                    reason=why,
                    error=error,
                )
            )
        order = {p.name: i for i, p in enumerate(pools)}
        outcomes.sort(key=lambda o: order[o.pool])
        if self.dry_run:  # every pool of a dry run is one, the held and the failed too
            outcomes = [o if o.dry_run else dataclasses.replace(o, dry_run=True) for o in outcomes]
        return outcomes, logged

    def _summary(self, outcomes: Sequence[PoolOutcome], logged: int, start: float) -> None:
        """``tick.summary``: the heartbeat of a tick whose unchanged decisions were not logged
        (counts only, so a line stays short at any fleet size)."""
        reasons: dict[str, int] = {}
        for o in outcomes:
            reasons[o.reason] = reasons.get(o.reason, 0) + 1
        self.log.info(
            "tick.summary",
            pools=len(outcomes),
            decisions_logged=logged,
            resizing=sum(1 for o in outcomes if o.desired != o.current and o.error is None),
            failed=sum(1 for o in outcomes if o.error is not None),
            reasons=dict(sorted(reasons.items())),
            seconds=round(self.monotonic() - start, 3),
        )

    def _failure(self, what: str, outcome: Outcome[Any]) -> str:
        """Why a read gave nothing: still running at the deadline, or the error it raised."""
        if outcome.timed_out is not None:
            return f"{what} {outcome.timed_out.describe(self.monotonic())}"
        return _error_text(outcome.error)

    def _remember(self, pool: str, reading: MetricReading) -> None:
        """Feed the pool's rolling history with what this tick's reading saw."""
        store = self.history[pool]
        for t, v in reading.history:
            if v is not None:
                store.put(t, v)
        if reading.as_of is not None and reading.calls is not None:
            store.put(reading.as_of, reading.calls)

    def _per_instance(
        self,
        pool: PoolConfig,
        d: Decision,
        status: PoolStatus,
        reading: MetricReading | None,
        now: float,
    ) -> tuple[Decision, InstanceActions]:
        """The pool kind's pure planner refines the decision into what will really happen and
        the writes that make it happen (``scaler.kinds``): e.g. only idle instances are
        removed (``vmss`` with drain), burst nodes drain before they stop (``vm-set``)."""
        plan = kind_of(pool).plan(
            PlanInput(
                pool=pool,
                decision=d,
                status=status,
                reading=reading,
                state=self.pending_drains.get(pool.name, DrainState()),
                now=now,
            )
        )
        if plan.state == DrainState():
            self.pending_drains.pop(pool.name, None)
        else:
            self.pending_drains[pool.name] = plan.state
        if plan.waiting or plan.decision.reason is Reason.WAITING_FOR_IDLE:
            self.log.info(
                "drain.waiting", pool=pool.name, detail=plan.waiting or plan.decision.detail
            )
        return plan.decision, plan.actions

    def _act(
        self,
        pool: PoolConfig,
        d: Decision,
        now: float,
        actions: InstanceActions,
        *,
        said: bool = True,
    ) -> PoolOutcome:
        """Carry out the pool's writes (or say what they would be); ``said``: its decision was
        logged this tick (a dry run's unchanged wish is not repeated every tick)."""
        self.states[pool.name] = d.state
        self._warn(pool.name, d)
        base = PoolOutcome(pool.name, d.current, d.desired, str(d.reason), decision=d)
        if d.desired == d.current and actions.empty:
            return base
        if self.dry_run:
            if said:
                self.log.info(
                    "scale.dry_run",
                    pool=pool.name,
                    current=d.current,
                    desired=d.desired,
                    reason=str(d.reason),
                    actions=_describe(actions),
                )
            return PoolOutcome(
                pool.name, d.current, d.desired, str(d.reason), dry_run=True, decision=d
            )
        if self.stopping.is_set():
            self.log.info("scale.skipped_stopping", pool=pool.name, desired=d.desired)
            return base
        if self.leader is not None and not self.leader.is_leader():  # fencing, right before
            self.log.info("scale.skipped_standby", pool=pool.name, desired=d.desired)
            return base
        try:
            handle = self.actuator.apply(pool, actions)
        except AdapterError as err:
            self._capacity_failed(pool.name, err, now)
            self.log.error(
                "scale.failed",
                pool=pool.name,
                current=d.current,
                desired=d.desired,
                error=str(err),
                code=err.code or None,
            )
            return PoolOutcome(
                pool.name, d.current, d.desired, str(d.reason), error=str(err), decision=d
            )
        self._applied(pool.name, d, actions, handle, now)
        return PoolOutcome(pool.name, d.current, d.desired, str(d.reason), applied=True, decision=d)

    def _warn(self, pool: str, d: Decision) -> None:
        """Warnings beside ``decision.made``: an unusable metric, and a scale-up held or cut
        for want of quota knowledge, capacity or headroom."""
        if d.metric_status is not MetricStatus.OK:
            self.log.warning(f"metrics.{d.metric_status}", pool=pool, detail=d.detail or None)
        if d.reason in (Reason.QUOTA_UNKNOWN, Reason.CAPACITY_UNAVAILABLE):
            # a scale-up held for want of knowledge or capacity: said as a warning, not only
            # in decision.made
            self.log.warning(
                "quota.unknown" if d.reason is Reason.QUOTA_UNKNOWN else "scale.held_no_capacity",
                pool=pool,
                current=d.current,
                recommended=d.recommended,
                detail=d.detail,
            )
        if d.reason is Reason.QUOTA_LIMITED:
            self.log.warning(
                "quota.limited",
                pool=pool,
                current=d.current,
                desired=d.desired,
                detail=d.detail,
            )

    def _applied(
        self, pool: str, d: Decision, actions: InstanceActions, handle: ResizeHandle, now: float
    ) -> None:
        """After the actuator took the pool's writes: charge the quota it was granted, track a
        capacity change until it finishes, record the resize for the rate limits, say so."""
        changed = handle.changed  # False: the target was already set
        if changed and d.change > 0 and pool in self._charged:
            # the headroom granted here is not offered again before the next usage.list
            self.quota_memory = self.quota_memory.charge(self._charged[pool], instances=d.change)
        if actions.changes_capacity:
            self.inflight[pool] = _InFlight(handle, d.desired, now)
        if changed:
            self.states[pool] = record_scale(d.state, now=now, change=d.change)
        self.log.info(
            "scale.applied" if changed else "scale.unchanged",
            pool=pool,
            current=d.current,
            desired=d.desired,
            reason=str(d.reason),
            actions=_describe(actions),
        )

    def _log_decision(self, pool: str, d: Decision) -> bool:
        """``decision.made`` for the pool, if ``[daemon] log_decisions`` wants it now: every
        tick, or when what it says (current, desired, reason, winning policy, metric status)
        differs from the pool's last one. The load itself (``calls``) changes every minute and
        is not a change of decision: ``/status`` and ``/metrics`` carry it. Whether it logged."""
        said = (d.current, d.desired, str(d.reason), d.policy, str(d.metric_status))
        if self.config.daemon.log_decisions == "changes" and self._logged.get(pool) == said:
            return False
        self._logged[pool] = said
        self.log.info(
            "decision.made",
            pool=pool,
            current=d.current,
            desired=d.desired,
            reason=str(d.reason),
            recommended=d.recommended,
            policy=d.policy,
            calls=d.calls,
            metric_status=str(d.metric_status),
            steps=[f"{s.stage}={s.value}:{s.reason}" for s in d.steps],
            detail=d.detail or None,
        )
        return True

    def _reap_finished(self) -> None:
        for name, op in list(self.inflight.items()):
            if not op.handle.done():
                continue
            del self.inflight[name]
            try:
                op.handle.result(0)
            except AdapterError as err:
                self._capacity_failed(name, err, self.clock.now())
                self.log.error(
                    "scale.failed",
                    pool=name,
                    desired=op.target,
                    error=str(err),
                    code=err.code or None,
                )
            else:
                self.capacity_backoff.pop(name, None)
                self.log.info("scale.completed", pool=name, capacity=op.target)

    def _capacity_failed(self, pool: str, err: AdapterError, now: float) -> None:
        """Azure had no capacity for the pool's VM size (not a quota refusal): its scale-ups
        wait, doubling from one interval (``CapacityUnavailable``)."""
        if not isinstance(err, CapacityError):
            return
        earlier = self.capacity_backoff.get(pool)
        backoff = (earlier.backoff if earlier else CapacityBackoff()).failed(now)
        self.capacity_backoff[pool] = _Backoff(backoff, err.code or "AllocationFailed")
        self.log.warning(
            "scale.capacity_unavailable",
            pool=pool,
            code=err.code or None,
            failures=backoff.failures,
        )

    def wait_for_resizes(self, timeout: float) -> dict[str, str | None]:
        """Wait (``once``) for the resizes started by this process; pool → error or ``None``."""
        deadline = self.clock.now() + timeout
        results: dict[str, str | None] = {}
        for name, op in list(self.inflight.items()):
            remaining = max(0.0, deadline - self.clock.now())
            try:
                op.handle.result(remaining)
            except AdapterError as err:
                results[name] = str(err)
            except TimeoutError as err:
                results[name] = str(err)
                continue
            del self.inflight[name]
            results.setdefault(name, None)
        return results


def _describe(actions: InstanceActions | None) -> dict[str, Any] | None:
    """Per-instance writes for the log (only the non-empty ones)."""
    if actions is None:
        return None
    return {
        f.name: getattr(actions, f.name)
        for f in dataclasses.fields(actions)
        if getattr(actions, f.name) not in (None, ())
    }


def _reads_members(pool: PoolConfig) -> bool:
    """Whether the pool's metric reading needs this tick's observation of it: a node metric
    read from Pexip (``vm-set``) counts the calls of the VMs the pool's observation lists."""
    return source_of(pool).reads_members and kind_of(pool).node_metric


def _bind(read: Callable[[T], R], arg: T) -> Callable[[], R]:
    """``read(arg)`` as a call of no arguments (one per pool or location)."""
    return lambda: read(arg)


def _error_text(err: BaseException | None) -> str:
    """An adapter error's message; anything else (a bug in an adapter, a library's exception
    that escaped translation) is named by its type so the pool holds and the loop goes on."""
    if err is None:
        return "no answer"
    if isinstance(err, AdapterError):
        return str(err)
    return f"{type(err).__name__}: {err}"
