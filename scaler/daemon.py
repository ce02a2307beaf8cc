"""The loop: observe → decide → act, once per interval.

Each tick re-reads every pool's real capacity (level-triggered: a change made in the portal is
simply the new truth), reads all metrics in batches and each region's quota once, lets the pure
core decide, and writes only where the decision differs from what Azure has. A resize is started
and not waited for: while it runs the pool holds (``ResizeInFlight``), so one slow scale set never
stalls the others. Errors of one pool never stop the loop.

Operations hooks, each optional so the loop reads the same without them: a ``LeaderLease``
(only the leader writes; leadership is re-checked right before every write), a ``StateStore``
(stabilisation history, cooldowns, in-flight resizes and drains survive a restart), a systemd
``Notifier`` (``READY``/``WATCHDOG``/``STOPPING``/``STATUS``) and ``reload_config`` (SIGHUP).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

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
from scaler.core.types import PoolLimits
from scaler.core.victims import DrainState, InstanceActions
from scaler.errors import AdapterError, CapacityError, ConfigError
from scaler.kinds import PlanInput, kind_of, limits_of
from scaler.logs import get_logger
from scaler.ports import (
    Clock,
    LeaderLease,
    MetricsSource,
    PoolActuator,
    PoolStatus,
    QuotaReader,
    ResizeHandle,
)
from scaler.reads import BoundedReads
from scaler.sdnotify import Notifier
from scaler.state import InFlightRecord, PoolSnapshot, Snapshot, StateStore, hold_one_window

T = TypeVar("T")
R = TypeVar("R")

CAPACITY_BACKOFF_CAP = 20
"""A pool whose VM size Azure has no capacity for retries at most this many intervals apart."""

HISTORY_MINUTES = 5 * 7 * 24 * 60
"""Minutes of load kept per pool for policies that look back (five weeks, ~400 kB a pool)."""


@dataclass(frozen=True, slots=True)
class PoolOutcome:
    """What a tick did for one pool; ``once --json`` prints these."""

    pool: str
    current: int | None
    desired: int | None
    reason: str
    applied: bool = False
    dry_run: bool = False
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
class _Backoff:
    backoff: CapacityBackoff
    code: str


@dataclass(slots=True)
class _InFlight:
    handle: ResizeHandle
    target: int
    started: float


class Daemon:
    """One daemon: its config, its adapters (injected), and the state carried between ticks."""

    def __init__(
        self,
        *,
        config: Config,
        metrics: MetricsSource,
        actuator: PoolActuator,
        quota: QuotaReader,
        clock: Clock,
        dry_run: bool | None = None,
        on_tick: Callable[[float, Sequence[PoolOutcome]], None] | None = None,
        leader: LeaderLease | None = None,
        store: StateStore | None = None,
        notifier: Notifier | None = None,
        reload_config: Callable[[], Config] | None = None,
        identity: str = "",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.actuator = actuator
        self.quota = quota
        self.clock = clock
        self.dry_run = config.daemon.dry_run if dry_run is None else dry_run
        self._dry_run_arg = dry_run
        self.on_tick = on_tick
        self.states: dict[str, PoolState] = {p.name: PoolState() for p in config.pools}
        self.inflight: dict[str, _InFlight] = {}
        self.last: dict[str, PoolOutcome] = {}
        self.usage: dict[str, Mapping[str, QuotaUsage]] = {}
        self.ticks = 0
        self.last_tick_at: float | None = None
        self.stopping = threading.Event()
        self._tick_lock = threading.Lock()
        self.leader = leader
        self.store = store
        self.notifier = notifier
        self.reload_config = reload_config
        self.identity = identity
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
        self.started_at = clock.now()
        self.monotonic = monotonic
        """Seconds on a clock that never steps (health's tick age); the wall ``clock`` feeds
        decisions only, so a step of the system clock neither stalls nor fakes health."""
        self._started_mono = monotonic()
        self._last_tick_mono: float | None = None
        self.stop_deadline: float | None = None
        self.period: float | None = None
        """``run``'s ``period_seconds`` while it runs (the demo's sped-up interval)."""
        self._followed_at = float("-inf")
        """``time.monotonic()`` by which a stop must be complete, once ``run`` is stopping."""
        self._reload_requested = threading.Event()
        self._pending_config: Config | None = None
        self._was_leader = False
        self._limits = {p.name: limits_of(p, config.azure.location) for p in config.pools}
        self._behaviors = {p.name: p.behavior.to_core() for p in config.pools}
        self.history = {
            p.name: ArrayHistory(start=clock.now() // 60.0 * 60.0, capacity=HISTORY_MINUTES)
            for p in config.pools
        }
        self.log = get_logger()

    # -- one pass -----------------------------------------------------------------------------

    def tick(self) -> list[PoolOutcome]:
        """Observe, decide and act once for every pool."""
        with self._tick_lock:
            return self._tick()

    def _tick(self) -> list[PoolOutcome]:
        self._apply_pending_config()
        now = self.clock.now()
        pools = self.config.pools
        self._check_promotion(now)
        statuses: dict[str, PoolStatus] = {}
        failed: dict[str, tuple[Reason, str]] = {}
        read_failures: list[str] = []
        # the tick's budget: the pools' reads get half of it, metrics and quota the rest
        start = self.monotonic()
        budget = self.config.daemon.tick_deadline_seconds or 0.8 * self._period()
        observed = self.reads.run(
            {pool.name: _bind(self.actuator.observe, pool) for pool in pools},
            deadline=start + budget / 2.0,
        )
        for pool in pools:
            got = observed[pool.name]
            if got.value is not None:
                statuses[pool.name] = got.value
                continue
            read_failures.append(f"pool {pool.name}")
            if got.timed_out is not None:
                error = f"observe {got.timed_out.describe(self.monotonic())}"
                failed[pool.name] = (Reason.OBSERVE_TIMED_OUT, error)
                self.log.warning("pool.observe_timed_out", pool=pool.name, error=error)
            else:
                error = _error_text(got.error)
                failed[pool.name] = (Reason.OBSERVE_FAILED, error)
                self.log.warning("pool.observe_failed", pool=pool.name, error=error)
        self._reap_finished()

        readable = [p for p in pools if p.name in statuses]
        readings: Mapping[str, MetricReading] = {}
        locations = sorted({self.config.location_of(p) for p in readable})
        calls: dict[str, Callable[[], Any]] = {
            f"quota {loc}": _bind(self.quota.usage, loc) for loc in locations
        }
        if readable:
            calls["metrics"] = lambda: self.metrics.read(readable, now)
        got_all = self.reads.run(calls, deadline=start + budget)
        metrics = got_all.get("metrics")
        if metrics is not None and metrics.value is not None:
            readings = metrics.value
        elif metrics is not None:
            read_failures.append("metrics")
            error = (
                f"metrics read {metrics.timed_out.describe(self.monotonic())}"
                if metrics.timed_out is not None
                else _error_text(metrics.error)
            )
            self.log.warning("metrics.read_failed", error=error)
            readings = {p.name: MetricReading.missing(error) for p in readable}
        usage: dict[str, Mapping[str, QuotaUsage]] = {}
        for loc in locations:
            quota = got_all[f"quota {loc}"]
            if quota.value is not None:
                usage[loc] = quota.value
            else:
                error = (
                    f"usage.list {quota.timed_out.describe(self.monotonic())}"
                    if quota.timed_out is not None
                    else _error_text(quota.error)
                )
                self.log.warning("quota.read_failed", location=loc, error=error)
        self.usage = usage
        self.quota_memory = self.quota_memory.remember(usage, now=now)
        read_failures += [
            f"quota {loc}"
            for loc in sorted({self.config.location_of(p) for p in readable})
            if loc not in self.usage
        ]
        self.read_failures = read_failures

        plans = []
        for pool in readable:
            status = statuses[pool.name]
            reading = readings.get(pool.name) or MetricReading.missing("no reading")
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
            plans.append(
                PoolPlan(
                    limits=limits,
                    behavior=self._behaviors[pool.name],
                    policies=pool.policies_built,
                    observation=Observation(
                        current=status.capacity,
                        metric=reading,
                        in_flight=status.in_flight or pool.name in self.inflight,
                    ),
                    state=self.states[pool.name],
                    history=self.history[pool.name],
                )
            )
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

        by_name = {p.name: p for p in pools}
        outcomes: list[PoolOutcome] = []
        for decision in decisions:
            pool = by_name[decision.pool]
            decision, actions = self._per_instance(
                pool, decision, statuses[pool.name], readings.get(pool.name), now
            )
            outcomes.append(self._act(pool, decision, now, actions))
        for name, (why, error) in failed.items():
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
        for o in outcomes:
            self.last[o.pool] = o
        self.ticks += 1
        self.last_tick_at = now
        self.persist()
        if self.on_tick is not None:
            self.on_tick(now, outcomes)
        return outcomes

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
    ) -> PoolOutcome:
        self.states[pool.name] = d.state
        self.log.info(
            "decision.made",
            pool=pool.name,
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
        if d.metric_status is not MetricStatus.OK:
            self.log.warning(f"metrics.{d.metric_status}", pool=pool.name, detail=d.detail or None)
        if d.reason is Reason.QUOTA_LIMITED:
            self.log.warning(
                "quota.limited",
                pool=pool.name,
                current=d.current,
                desired=d.desired,
                detail=d.detail,
            )
        base = PoolOutcome(pool.name, d.current, d.desired, str(d.reason), decision=d)
        if d.desired == d.current and actions.empty:
            return base
        if self.dry_run:
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
        changed = handle.changed  # False: the target was already set
        if changed and d.change > 0 and pool.name in self._charged:
            # the headroom granted here is not offered again before the next usage.list
            self.quota_memory = self.quota_memory.charge(
                self._charged[pool.name], instances=d.change
            )
        if actions.changes_capacity:
            self.inflight[pool.name] = _InFlight(handle, d.desired, now)
        if changed:
            self.states[pool.name] = record_scale(d.state, now=now, change=d.change)
        self.log.info(
            "scale.applied" if changed else "scale.unchanged",
            pool=pool.name,
            current=d.current,
            desired=d.desired,
            reason=str(d.reason),
            actions=_describe(actions),
        )
        return PoolOutcome(pool.name, d.current, d.desired, str(d.reason), applied=True, decision=d)

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

    # -- the loop -----------------------------------------------------------------------------

    def safe_tick(self) -> bool:
        """A tick that never raises: the loop must survive anything one tick meets. Returns
        whether the tick ran to its end."""
        try:
            self.tick()
        except Exception:
            self.log.exception("tick.failed")
            return False
        return True

    # -- operations: role, health, state, reload ------------------------------------------------

    @property
    def role(self) -> str:
        """``leader`` (also without HA: the only replica), ``standby`` or ``unknown``."""
        return "leader" if self.leader is None else self.leader.role

    def ticking_healthy(self) -> tuple[bool, float]:
        """Whether the loop has completed a tick within 3 intervals; and the age in seconds.
        Gates ``/healthz`` and systemd's ``WATCHDOG=1``. The age is on the monotonic clock:
        after a backward step of the wall clock, a wall-clock age is negative (clamped to 0)
        and a stuck loop looked healthy for as long as the step; a forward step made a
        healthy one look stuck."""
        ref = self._last_tick_mono if self._last_tick_mono is not None else self._started_mono
        age = max(0.0, self.monotonic() - ref)
        return age <= 3 * self._period(), age

    def _period(self) -> float:
        """Seconds between ticks: ``run``'s ``period_seconds`` (the demo), else the config's
        (so a reloaded ``interval_seconds`` applies to the next wait)."""
        return self.period or self.config.daemon.interval_seconds

    def status_line(self) -> str:
        """A one-line summary for systemd's ``STATUS=``."""
        parts = []
        for name, o in self.last.items():
            move = f"{o.current}" if o.current == o.desired else f"{o.current}->{o.desired}"
            parts.append(f"{name} {move} {o.reason}")
        return f"{self.role}; {len(self.config.pools)} pools; " + "; ".join(parts)

    def snapshot(self) -> Snapshot:
        pools = {}
        for pool in self.config.pools:
            op = self.inflight.get(pool.name)
            record = None
            if op is not None:
                record = InFlightRecord(op.target, op.started, op.handle.continuation_token())
            pools[pool.name] = PoolSnapshot(
                state=self.states.get(pool.name, PoolState()),
                inflight=record,
                drains=(drain.to_doc(),) if (drain := self.pending_drains.get(pool.name)) else (),
            )
        return Snapshot(saved_at=self.clock.now(), writer=self.identity, pools=pools)

    def persist(self) -> None:
        """Save the state locally, and to the shared blob when this replica leads. A dry run
        saves nothing: run beside production it is an observer, and the state file (same
        ``StateDirectory``) and the state blob are production's."""
        if self.store is None or self.dry_run:
            return
        self.store.save(self.snapshot(), shared=self.leader is not None and self.role == "leader")

    def restore(self) -> None:
        """Load the saved state; without a usable one, hold one down-stabilisation window."""
        if self.store is None:
            return
        now = self.clock.now()
        snap = self.store.load()
        if snap is None:
            for pool in self.config.pools:
                self.states[pool.name] = hold_one_window(max_instances=pool.max, now=now)
            self.log.info("state.safe_defaults", hold="one scale-down stabilisation window")
            return
        self._adopt(snap, full=True, now=now)

    def _adopt(self, snap: Snapshot, *, full: bool, now: float, following: bool = False) -> None:
        """Take a snapshot's state: all of it at start-up (``full``), or, on becoming leader,
        the predecessor's scale events, cooldowns, in-flight resizes and drains; a dry-run
        observer takes the same from the leader's every new snapshot (``following``)."""
        resumed = []
        for pool in self.config.pools:
            saved = snap.pools.get(pool.name)
            if saved is None:
                if full:
                    self.states[pool.name] = hold_one_window(max_instances=pool.max, now=now)
                continue
            mine = self.states.get(pool.name, PoolState())
            self.states[pool.name] = (
                saved.state
                if full
                else PoolState(
                    recommendations=mine.recommendations,
                    scale_events=saved.state.scale_events,
                    last_scale_up=_latest(mine.last_scale_up, saved.state.last_scale_up),
                    last_scale_down=_latest(mine.last_scale_down, saved.state.last_scale_down),
                )
            )
            if saved.drains:
                self.pending_drains[pool.name] = DrainState.from_doc(saved.drains[0])
            inflight = saved.inflight
            if (
                inflight
                and not self.dry_run  # an observer does not poll the leader's operations
                and pool.name not in self.inflight
                and self._resume(pool, inflight)
            ):
                resumed.append(pool.name)
        (self.log.debug if following else self.log.info)(
            "state.followed" if following else "state.restored",
            saved_at=snap.saved_at,
            writer=snap.writer or None,
            age_seconds=round(now - snap.saved_at, 1),
            resumed=resumed,
            adopted_from_leader=not full,
        )

    def _resume(self, pool: PoolConfig, rec: InFlightRecord) -> bool:
        if rec.token is None:
            self.log.info("scale.not_resumable", pool=pool.name, desired=rec.target)
            return False
        try:
            handle = self.actuator.resume(pool, rec.token)
        except AdapterError as err:
            self.log.warning("scale.resume_failed", pool=pool.name, error=str(err))
            return False
        self.inflight[pool.name] = _InFlight(handle, rec.target, rec.started)
        self.log.info("scale.resumed", pool=pool.name, desired=rec.target)
        return True

    def _check_promotion(self, now: float) -> None:
        if self.dry_run:
            self._follow_leader(now)
            return
        if self.leader is None:
            return
        leading = self.leader.is_leader()
        if leading and not self._was_leader and self.store is not None and self.ticks > 0:
            snap = self.store.load_shared()
            if snap is not None:
                self._adopt(snap, full=False, now=now)
        self._was_leader = leading

    def _follow_leader(self, now: float) -> None:
        """A dry run never records scale events of its own (it writes nothing), so it takes
        the leader's scale events and cooldowns from the state blob whenever the leader has
        published a newer one: its decisions then follow the production history."""
        if self.store is None:
            return
        snap = self.store.load_shared(quiet=True)
        if snap is None or snap.saved_at <= self._followed_at:
            return
        self._followed_at = snap.saved_at
        self._adopt(snap, full=False, now=now, following=True)

    def request_reload(self) -> None:
        """SIGHUP: re-read the config soon (the signal handler must not do the work)."""
        self._reload_requested.set()

    def check_reload(self) -> None:
        """Validate a requested reload now; a valid config takes effect at the next tick, an
        invalid one is rejected and the running one stays in force."""
        if not self._reload_requested.is_set() or self.reload_config is None:
            return
        self._reload_requested.clear()
        try:
            new = self.reload_config()
        except ConfigError as err:
            self.log.error("config.reload_rejected", problems=err.problems)
            return
        problems = [
            f"{section}: changes need a restart, the running [{section}] stays in force"
            for section in ("azure", "ha", "http")
            if getattr(new, section) != getattr(self.config, section)
        ]
        for pool in new.pools:  # the platform's own refusals (e.g. no Event Hub for pexip-teams)
            try:
                found = self.actuator.preflight(pool)
            except AdapterError as err:
                self.log.warning("pool.preflight_warning", pool=pool.name, warning=str(err))
                continue
            problems.extend(found.errors)
            for warning in found.warnings:
                self.log.warning("pool.preflight_warning", pool=pool.name, warning=warning)
        if problems:
            self.log.error("config.reload_rejected", problems=problems)
            return
        self._pending_config = new

    def _apply_pending_config(self) -> None:
        new, self._pending_config = self._pending_config, None
        if new is None:
            return
        now = self.clock.now()
        self.config = new
        self.dry_run = new.daemon.dry_run if self._dry_run_arg is None else self._dry_run_arg
        self._limits = {p.name: limits_of(p, new.azure.location) for p in new.pools}
        self._behaviors = {p.name: p.behavior.to_core() for p in new.pools}
        names = {p.name for p in new.pools}
        for pool in new.pools:
            self.states.setdefault(pool.name, PoolState())
            if pool.name not in self.history:
                self.history[pool.name] = ArrayHistory(
                    start=now // 60.0 * 60.0, capacity=HISTORY_MINUTES
                )
        for table in (self.states, self.history, self.last):
            for name in [n for n in table if n not in names]:
                del table[name]
        self.log.info(
            "config.reloaded",
            pools=[p.name for p in new.pools],
            interval_seconds=new.daemon.interval_seconds,
            dry_run=self.dry_run,
        )

    def run(
        self,
        stop: threading.Event,
        *,
        period_seconds: float | None = None,
        until: Callable[[], bool] | None = None,
    ) -> bool:
        """Tick every ``period_seconds`` (default ``[daemon] interval_seconds``) until ``stop``
        is set (by a signal) or ``until()`` says so. Returns ``False`` if a tick was still
        running when the shutdown deadline passed.

        The cadence is a loop on the monotonic clock in a thread of its own, not APScheduler's
        ``IntervalTrigger``: that trigger computes every next run time from the wall clock,
        so a backward step of the system clock (NTP fixing a drifted clock, a VM restored from
        a snapshot) postponed the next tick by the size of the step (-1 h: no tick for an
        hour) while health, read from the same wall clock, stayed green. The wall clock (the
        ``Clock`` port) feeds decisions only. APScheduler remains the tool for wall-clock,
        cron-like schedules; a fixed interval needs none of it.

        Stopping is bounded by ``[daemon] shutdown_deadline_seconds`` in all: the loop waits
        for a running tick for most of it, then saves what it knows (resizes in flight
        included) and leaves ``stop_deadline`` for the caller to release the lease by. A tick
        stuck in a slow call is left to die with the process (its thread is a daemon thread);
        its writes are fenced by ``stopping``."""
        self.period = period_seconds
        notifier = self.notifier
        self.restore()
        ticker = threading.Thread(
            target=self._tick_loop, args=(stop, until), name="tick", daemon=True
        )
        ticker.start()
        self.log.info(
            "daemon.started",
            pools=[p.name for p in self.config.pools],
            interval_seconds=self.config.daemon.interval_seconds,
            dry_run=self.dry_run,
        )
        watchdog_every = (notifier.watchdog_seconds or 0.0) / 2.0 if notifier else 0.0
        last_ping = time.monotonic()
        try:
            while not stop.wait(0.5):
                self.check_reload()
                if (
                    notifier is not None
                    and watchdog_every
                    and time.monotonic() - last_ping >= watchdog_every
                    and self.ticking_healthy()[0]
                ):
                    notifier.watchdog()
                    last_ping = time.monotonic()
        finally:
            deadline = self.config.daemon.shutdown_deadline_seconds
            self.stop_deadline = time.monotonic() + deadline
            self.stopping.set()
            stop.set()  # also when leaving by an exception: the tick thread ends too
            if notifier is not None:
                notifier.stopping(f"stopping; {self.status_line()}")
        # Most of the deadline waits for the tick; a quarter (at most 4 s) is kept for saving
        # the state and, after ``run`` returns, releasing the lease.
        reserve = min(4.0, deadline / 4.0)
        finished = self._tick_lock.acquire(timeout=max(0.0, deadline - reserve))
        try:
            # Records resizes still in flight, to resume after the restart; bounded, as the
            # shared blob may be as slow as whatever held the tick.
            self._persist_by(self.stop_deadline - reserve / 2.0)
        finally:
            if finished:
                self._tick_lock.release()
        self.log.info(
            "daemon.stopped",
            ticks=self.ticks,
            clean=finished,
            resizes_in_flight=sorted(self.inflight),
        )
        return finished

    def _tick_loop(self, stop: threading.Event, until: Callable[[], bool] | None) -> None:
        """Start a tick every period on the monotonic clock, one at a time: a tick that
        overruns its period delays the next to the next period boundary (``tick.overrun``),
        missed ones are not made up. Waits are short so that a reloaded interval applies at
        once."""
        due = time.monotonic()
        while not stop.is_set():
            period = self._period()
            now = time.monotonic()
            if now < due:
                stop.wait(min(due - now, 0.5))
                continue
            began = now
            self._loop_tick(stop, until)
            period = self._period()
            due = began + period
            now = time.monotonic()
            if now >= due:
                skipped = int((now - due) // period) + 1
                due += skipped * period
                self.log.warning(
                    "tick.overrun",
                    period_seconds=period,
                    took_seconds=round(now - began, 3),
                    skipped=skipped,
                )

    def _loop_tick(self, stop: threading.Event, until: Callable[[], bool] | None) -> None:
        if stop.is_set():
            return
        if self.safe_tick():
            self._last_tick_mono = self.monotonic()
            notifier = self.notifier
            if notifier is not None:
                status = self.status_line()
                if notifier.ready_sent:
                    notifier.send(WATCHDOG="1", STATUS=status)
                else:
                    notifier.ready(status)
        if until is not None and until():
            stop.set()

    def _persist_by(self, deadline: float) -> None:
        """``persist()``, given up at ``deadline`` (``time.monotonic()``); never raises."""

        def save() -> None:
            try:
                self.persist()
            except Exception:
                self.log.exception("state.save_failed", where="shutdown")

        saver = threading.Thread(target=save, name="persist", daemon=True)
        saver.start()
        saver.join(timeout=max(0.0, deadline - time.monotonic()))
        if saver.is_alive():
            self.log.error("state.save_timed_out", where="shutdown")


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _describe(actions: InstanceActions | None) -> dict[str, Any] | None:
    """Per-instance writes for the log (only the non-empty ones)."""
    if actions is None:
        return None
    return {
        f.name: getattr(actions, f.name)
        for f in dataclasses.fields(actions)
        if getattr(actions, f.name) not in (None, ())
    }


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
