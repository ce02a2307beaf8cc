"""The replay of one pool over a trace: the daemon's own ``decide()`` on a minute-by-minute model.

This is the backtest semantics of DESIGN.md §3, in one place:

* **Time.** The trace's buckets (normally one minute) are the model's minutes; the policy ticks
  every ``[daemon] interval_seconds`` from the first timestamp. Ticks that fall on a minute run
  before that minute is served, so an instance asked for at minute *t* with ``boot_minutes = 0``
  serves minute *t*.
* **What the policy sees.** At a tick at time *now* it gets ``reduce_window()`` of the buckets
  that would be visible live: complete buckets older than ``now - lag_minutes``, over
  ``window_minutes``, reduced by ``reduce`` (``max``/``mean``/``last``), converted to calls by
  ``to_calls()`` for the pool's ``metric.meaning``. A trace gap is a null bucket. Look-back
  policies get an ``ArrayHistory`` over the trace whose ``visible_until`` is ``now - lag``.
* **Demand.** The trace's calls; in a gap the demand carries on at the last known value (only
  the *metric* is missing), and before the first known value it is zero.
* **Capacity.** An instance requested at *t* is billed from *t* and serves calls from
  *t + boot_minutes*. The pool serves ``ready × calls_per_instance`` calls a minute; demand above
  what it can hold is unserved that minute (and asks again the next minute). The start of the
  trace has ``min`` instances, ready.
* **Calls on instances.** Calls are spread evenly over the ready instances (Teams Connector's
  load balancer sends each new call to a ready instance with room). Every minute a share
  ``1 - exp(-1 / mean_call_minutes)`` of the calls in progress ends (about 1/53: meetings last
  about 53 minutes), more when demand falls faster; new calls fill the room that is left.
  The calls left on a draining instance end as meetings in progress do: with meetings booked for
  30 (35 %), 60 (55 %), 90 (5 %) or 120 minutes (5 %), the share still running *x* minutes later
  is the equilibrium residual life ``Σ p·max(0, d − x) ÷ Σ p·d`` (``MEETING_MINUTES``): 44 %
  after 30 minutes, 8 % after an hour, none after two.
* **Scale-in.** Instances still booting go first (they hold no calls), then ready ones:
  ``drop`` (a plain ``vmss`` pool: Azure deletes the instances at once, without draining) counts
  the calls on the removed instances as *dropped calls*; they ask again the next minute like any
  unserved call. ``drain`` (a pool whose scale-in waits for calls to end, e.g. Pexip-managed
  scaling or a call-safe scale-in) takes the removed instances out of the load balancer: they
  take no new calls, keep serving the ones they hold, and are billed every minute until their
  last call ends (fewer than half a call left) or, with ``max_drain_minutes``, until that time
  is up (then its remaining calls are dropped). Draining instances are not counted in the
  capacity the policy sees. ``idle`` (a drain-aware ``vmss`` without Pexip's drain: the daemon's
  ``plan_drain()``) removes only instances that carry no call and holds the rest of the change
  (``WaitingForIdle``; the busy ones keep taking calls). How many are idle: the load balancer
  hashes each new call to an instance, so the calls on one instance are Poisson-distributed
  around the even share and ``floor(ready × exp(-calls ÷ ready))`` ready instances are idle.
  After ``max_drain_minutes`` of waiting, busy ones go and their calls are dropped
  (``DrainTimedOut``). Which instances go is not modelled here: the replay hands synthetic
  instances (booting ones, idle ones, busy ones with the even share of the rest) to the
  ``vmss`` kind's own planner, ``scaler.kinds.vmss.plan_drain`` — the daemon's code.
* **Platform metrics.** A pool whose metric means ``percent_of_capacity`` is fed an
  Azure-style ``Percentage CPU`` averaged over its ready instances:
  ``cpu% = idle% + (100 - idle%) × calls_per_ready_instance ÷ calls_per_instance``
  (at most 100; ``idle%`` defaults to 10); ``calls_per_instance`` means the served calls per
  ready instance. Both are null in trace gaps and while no instance is ready.
* **Resizes** take effect at the tick (no operation stays in flight) and quota is not modelled.

Accounting covers the scored window only: instance-hours are the time integral of the requested
capacity (the scale set's size) plus the minutes draining instances are kept.

Memory: a pool's trace column is read in place (a ``traces.Column``'s NaN-for-gap buffer, never
copied into objects), times are computed, the metric window a tick reads is kept as a small
sliding window, and the per-bucket series that change seldom (instances, unserved calls) are
kept as runs (``Steps``); so a replay holds a few bytes per bucket beyond the trace itself.
"""

from __future__ import annotations

import itertools
import math
import operator
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from typing import Generic, TypeVar, overload

from scaler.core.decide import decide, record_scale
from scaler.core.history import ArrayHistory
from scaler.core.metrics import reduce_window, to_calls
from scaler.core.types import (
    Behavior,
    MetricReading,
    Observation,
    PoolLimits,
    PoolState,
    Reason,
    ScalingPolicy,
)
from scaler.core.victims import DrainState, Instance
from scaler.kinds import ScaleIn as ScaleIn
from scaler.kinds import vmss as vmss_kind
from scaler.traces import Column

SCALE_IN_MODES: tuple[ScaleIn, ...] = ("drop", "drain", "idle")

MEAN_CALL_MINUTES = 53.0
"""Average Teams meeting length (DESIGN.md §1.1), the churn of calls on an instance."""
DEFAULT_CPU_IDLE_PERCENT = 10.0
"""``Percentage CPU`` of a ready Teams Connector instance carrying no call (the model's floor)."""
EMPTY_BELOW_CALLS = 0.5
"""A draining instance holding fewer calls than this is empty and released."""
MEETING_MINUTES: tuple[tuple[float, float], ...] = ((30, 0.35), (60, 0.55), (90, 0.05), (120, 0.05))
"""Booked meeting lengths and their shares (the bundled load model's): how long the calls on a
draining instance last."""


def residual_share(minutes: float) -> float:
    """Share of the calls in progress at some moment that are still running ``minutes`` later
    (the equilibrium residual life of ``MEETING_MINUTES``)."""
    total = sum(p * d for d, p in MEETING_MINUTES)
    return sum(p * max(0.0, d - minutes) for d, p in MEETING_MINUTES) / total


def _residual_steps(step_seconds: float) -> list[float]:
    """Per bucket of age: the share of a draining instance's calls that survive the next bucket."""
    minutes = step_seconds / 60.0
    longest = max(d for d, _ in MEETING_MINUTES)
    out = []
    age = 0.0
    while age < longest:
        now, then = residual_share(age), residual_share(age + minutes)
        out.append(then / now if now > 0 else 0.0)
        age += minutes
    out.append(0.0)
    return out


@dataclass(frozen=True, slots=True)
class Grid:
    """The trace's time grid. ``scored_index``: first scored bucket (after the warm-up)."""

    start: float
    step_seconds: float
    length: int
    scored_index: int
    interval_seconds: float

    @property
    def scored_from(self) -> float:
        return self.start + self.scored_index * self.step_seconds

    @property
    def end(self) -> float:
        return self.start + self.length * self.step_seconds

    @property
    def scored_steps(self) -> int:
        return self.length - self.scored_index


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """What the replay needs of one configured pool (built by ``runner.pool_specs``)."""

    limits: PoolLimits
    behavior: Behavior
    policies: tuple[ScalingPolicy, ...]
    boot_seconds: float
    window_seconds: float
    lag_seconds: float
    reduce: str
    meaning: str
    history_seconds: float = 0.0
    scale_in: ScaleIn = "drop"
    max_drain_seconds: float | None = None
    """``drain``: after this long a draining instance is deleted and its calls are dropped."""
    cpu_idle_percent: float = DEFAULT_CPU_IDLE_PERCENT
    mean_call_minutes: float = MEAN_CALL_MINUTES
    hold_at: Sequence[int] | None = None
    """Per bucket, a size at which ``decide()`` is known to hold: a tick in bucket *i* that
    finds the pool at ``hold_at[i]`` skips ``decide()`` (and is not counted in ``reasons``).
    Only for a policy set that asks for exactly that size under a behaviour without
    stabilisation, rate limit or missing-data floor (the clairvoyant baseline): its replay then
    costs a fraction of a policy's, with the same outcome."""

    @property
    def name(self) -> str:
        return self.limits.name


@dataclass(slots=True)
class PoolTotals:
    """One pool's figures over the scored window (raw units; ``Metrics`` rounds them)."""

    instance_seconds: float = 0.0
    """Integral of the requested capacity (instances × seconds)."""
    drain_instance_seconds: float = 0.0
    """Instance-seconds of instances kept only to drain their calls."""
    call_minutes: float = 0.0
    served_call_minutes: float = 0.0
    unserved_call_minutes: float = 0.0
    dropped_calls: float = 0.0
    peak_shortfall_calls: float = 0.0
    scale_actions: int = 0
    min_instances: int = 0
    max_instances: int = 0


_N = TypeVar("_N", int, float)


class Steps(Sequence[_N], Generic[_N]):
    """A per-bucket series that changes seldom (instances, unserved calls), held as runs: where
    each run starts and its value. It reads as the plain sequence it stands for (indexing,
    slices, iteration, ``len``, equality with any sequence of the same items), at a few bytes
    per change instead of 8 per bucket: a pool's 60 days of minutes change a few thousand times.
    """

    __slots__ = ("_at", "_length", "_values")

    def __init__(self, at: array[int], values: array[_N], length: int) -> None:
        """``at[k]``: the bucket where run ``k`` starts (``at[0] == 0`` unless empty, strictly
        increasing, below ``length``); ``values[k]``: its value (runs need not be maximal)."""
        self._at: array[int] = at
        self._values: array[_N] = values
        self._length = length

    @classmethod
    def of(cls, items: Sequence[_N], *, typecode: str = "d") -> Steps[_N]:
        """The runs of ``items`` (``typecode``: ``"d"`` for floats, ``"q"`` for whole numbers)."""
        n = len(items)
        at = array("q", (0,) if n else ())
        at.extend(compress(itertools.count(1), map(operator.ne, islice(items, 1, None), items)))
        values: array[_N] = array(typecode, map(items.__getitem__, at))
        return cls(at, values, n)

    def __len__(self) -> int:
        return self._length

    def _counts(self) -> Iterator[int]:
        return map(operator.sub, chain(islice(self._at, 1, None), (self._length,)), self._at)

    def __iter__(self) -> Iterator[_N]:
        return chain.from_iterable(map(repeat, self._values, self._counts()))

    def whole(self) -> Steps[int]:
        """The same runs with each value as an ``int`` (instance counts kept as floats)."""
        return Steps(self._at, array("q", map(int, self._values)), self._length)

    def runs(self) -> Iterator[tuple[int, int, _N]]:
        """``(first, count, value)`` per run, in order."""
        return zip(self._at, self._counts(), self._values, strict=True)

    @overload
    def __getitem__(self, index: int) -> _N: ...

    @overload
    def __getitem__(self, index: slice) -> array[_N]: ...

    def __getitem__(self, index: int | slice) -> _N | array[_N]:
        if isinstance(index, slice):
            first, stop, stride = index.indices(self._length)
            out: array[_N] = array(self._values.typecode)
            if stride != 1:
                out.extend(map(self.__getitem__, range(first, stop, stride)))
                return out
            if first >= stop:
                return out
            k = bisect_right(self._at, first) - 1
            for start, n, run_value in islice(self.runs(), k, None):
                if start >= stop:
                    break
                out.extend(repeat(run_value, min(start + n, stop) - max(start, first)))
            return out
        i = index + self._length if index < 0 else index
        if not 0 <= i < self._length:
            raise IndexError("Steps index out of range")
        value: _N = self._values[bisect_right(self._at, i) - 1]
        return value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(other) == self._length and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        more = ", ..." if self._length > 8 else ""
        return f"Steps({list(self[:8])!r}{more}, length={self._length})"


def _no_steps() -> Steps[float]:
    return Steps(array("q"), array("d"), 0)


@dataclass(slots=True)
class PoolSeries:
    """Per scored bucket: demand (calls), ready and requested instances, unserved calls, and
    draining instances. All but demand change seldom and are held as runs (``Steps``)."""

    demand: array[float] = field(default_factory=lambda: array("d"))
    ready: Steps[float] = field(default_factory=_no_steps)
    requested: Steps[float] = field(default_factory=_no_steps)
    unserved: Steps[float] = field(default_factory=_no_steps)
    draining: Steps[float] = field(default_factory=_no_steps)


@dataclass(slots=True)
class PoolRun:
    """The outcome of replaying one pool."""

    name: str
    totals: PoolTotals
    series: PoolSeries
    reasons: dict[str, int]
    """How often each decision reason was given over the scored window (ticks)."""


def carry_demand(calls: Sequence[float | None]) -> list[float]:
    """Demand per bucket: the trace's calls, a gap carrying the last known value (0 at first)."""
    out: list[float] = []
    last = 0.0
    for v in calls:
        if v is not None:
            last = v
        out.append(last)
    return out


def nan_buffer(calls: Sequence[float | None]) -> array[float]:
    """A trace column as a buffer of doubles, NaN for a gap: a ``Column``'s own (no copy)."""
    if isinstance(calls, Column):
        return calls.values
    return array("d", (math.nan if v is None else v for v in calls))


def carried_demand(values: array[float]) -> array[float]:
    """``carry_demand`` of a NaN-for-gap buffer, as a buffer (8 bytes a bucket)."""
    out = array("d", values)
    last = 0.0
    for i, v in enumerate(values):
        if v != v:  # NaN: a gap carries the last known value
            out[i] = last
        else:
            last = v
    return out


def replay_pool(
    spec: PoolSpec,
    calls: Sequence[float | None],
    grid: Grid,
    *,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 1440,
) -> PoolRun:
    """Replay one pool over its trace column ``calls`` (``None``: metric unavailable).

    It reads like the tick it replays: at each tick due, ``observe`` (the metric window the
    daemon would see), ``plan`` (the daemon's ``decide()``, and for an idle-only scale-in the
    kind's own planner) and ``act`` (the resize taking effect in the model); then every bucket
    is ``serve``d by the minute model and ``record``ed in the scored series.

    Calls ``progress(n)`` every ``progress_every`` buckets with the buckets done since the last
    call. Cost: one ``decide()`` per tick plus a few float operations per bucket.
    """
    r = _Replay(spec, calls, grid)
    start, s, interval, scored_i = (
        grid.start,
        grid.step_seconds,
        grid.interval_seconds,
        grid.scored_index,
    )
    next_tick = start
    done_since_progress = 0
    for i in range(grid.length):
        t = start + i * s
        # -- ticks due by the start of this bucket --------------------------------------------
        while next_tick <= t:
            now = next_tick
            next_tick += interval
            if r.held(now):
                continue
            desired, forced = r.plan(now, r.observe(now))
            if desired != r.cap:
                r.act(now, desired, forced)
        if i == scored_i:
            r.totals.min_instances = r.totals.max_instances = r.cap
        unserved = r.serve(i, t)
        if i >= scored_i:
            r.record(i - scored_i, unserved)
        if progress is not None:
            done_since_progress += 1
            if done_since_progress >= progress_every:
                progress(done_since_progress)
                done_since_progress = 0
    if progress is not None and done_since_progress:
        progress(done_since_progress)
    return r.result()


class _Replay:
    """One pool's replay: what the daemon carries between ticks (its ``PoolState``, the metric
    window, a waiting scale-in), the minute model of the pool (instances booting, ready and
    draining, the calls on them) and the scored accounting."""

    def __init__(self, spec: PoolSpec, calls: Sequence[float | None], grid: Grid) -> None:
        s = grid.step_seconds
        self.spec = spec
        self.grid = grid
        self.minutes_per_step = s / 60.0
        self.as_calls = spec.meaning == "calls"
        self.drain = spec.scale_in == "drain"
        self.idle_only = spec.scale_in == "idle"
        self.churn = 1.0 - math.exp(-self.minutes_per_step / spec.mean_call_minutes)
        self.busy_span = 100.0 - spec.cpu_idle_percent
        n = grid.length
        start = grid.start
        self.values = nan_buffer(calls)  # the trace's calls, NaN in a gap; read, never written
        # What the metric source would publish per bucket (NaN: null): the trace itself, or a
        # platform metric derived from the model as it runs (filled in as each bucket is served).
        self.metric = self.values if self.as_calls else array("d", (math.nan,)) * n
        self.history = ArrayHistory(
            start=start, step_seconds=s, values=self.values if self.as_calls else ()
        )
        self.history.visible_until = start
        # The (time, value) buckets the last tick read, oldest first (``window_first`` is the
        # first one's index): ticks only move forward, so each bucket becomes a point once.
        self.points: deque[tuple[float, float | None]] = deque()
        self.window_first = 0
        reach = spec.window_seconds + spec.history_seconds
        self.hi_base = start + spec.lag_seconds + s  # bucket index arithmetic, see ``observe``
        self.lo_base = start + spec.lag_seconds + reach

        limits = spec.limits
        self.cap = limits.min  # requested instances (the scale set's size)
        self.ready = limits.min  # ready, taking calls
        self.pending: deque[list[float]] = deque()  # [ready at, count], oldest first
        self.active_calls = 0.0  # calls on the ready instances, spread evenly
        self.draining: list[float] = []  # calls held by each draining instance
        self.drain_age: list[int] = []  # buckets since it started draining
        self.drain_deadline: list[float] = []  # when each is deleted regardless
        self.survive = _residual_steps(s)
        self.oldest = len(self.survive) - 1
        self.drain_state = DrainState()  # ``idle``: what a waiting scale-in carries between ticks
        self.idle_ready = 0
        self.state = PoolState()
        self.last_hold = len(spec.hold_at) - 1 if spec.hold_at is not None else -1
        self.last_known = 0.0  # demand carries the last known value through a gap (0 before any)

        self.totals = PoolTotals(min_instances=self.cap, max_instances=self.cap)
        # Per scored bucket: demand, and the runs of the series that change seldom (where a run
        # starts, its value); ``math.nan`` as the last value starts the first run.
        self.demand = array("d")
        self.runs = {key: (array("q"), array("d")) for key in _SERIES}
        self.last_run = dict.fromkeys(_SERIES, math.nan)
        self.reasons: dict[Reason, int] = {}
        self.instance_seconds = 0.0
        self.dropped = 0.0
        self.actions = 0
        self.last_change = start  # billing: time since which ``cap`` has held

    # -- observe ----------------------------------------------------------------------------

    def held(self, now: float) -> bool:
        """Whether the trace says the pool held at its size at this tick (``hold_at``): the
        tick is skipped, as ``decide()`` would have asked for the current size."""
        hold_at = self.spec.hold_at
        if hold_at is None:
            return False
        k = int((now - self.grid.start) // self.grid.step_seconds)
        if hold_at[k if k < self.last_hold else self.last_hold] != self.cap:
            return False
        if self.idle_only:  # decide() would have asked for ``cap``: no scale-in waits
            self.drain_state = DrainState()
        return True

    def observe(self, now: float) -> MetricReading:
        """What the daemon's metric read gives at ``now``: the buckets of
        [now - lag - window (- history), now - lag), complete ones only, reduced."""
        spec = self.spec
        s = self.grid.step_seconds
        hi = int((now - self.hi_base) // s)
        lo = -int((self.lo_base - now) // s)
        if lo < 0:
            lo = 0
        # slide the window to buckets [lo, hi]: every bucket in it has been served
        points = self.points
        while points and self.window_first < lo:
            points.popleft()
            self.window_first += 1
        if not points:
            self.window_first = lo
        k = self.window_first + len(points)
        start = self.grid.start
        while k <= hi:
            v = self.metric[k]
            points.append((start + k * s, None if v != v else v))
            k += 1
        reading = reduce_window(
            points,
            now=now,
            window_seconds=spec.window_seconds,
            lag_seconds=spec.lag_seconds,
            reduce=spec.reduce,
            bucket_seconds=s,
            history_seconds=spec.history_seconds,
        )
        if not self.as_calls:
            reading = to_calls(
                reading,
                meaning=spec.meaning,
                current=self.cap,
                calls_per_instance=spec.limits.calls_per_instance,
            )
        self.history.visible_until = now - spec.lag_seconds
        return reading

    # -- plan -------------------------------------------------------------------------------

    def plan(self, now: float, reading: MetricReading) -> tuple[int, int]:
        """The daemon's decision on this reading: the size it asks for, and how many busy
        instances an idle-only scale-in removes after ``max_drain_seconds``."""
        spec = self.spec
        d = decide(
            pool=spec.limits,
            behavior=spec.behavior,
            policies=spec.policies,
            observation=Observation(self.cap, reading),
            state=self.state,
            now=now,
            history=self.history,
        )
        self.state = d.state
        desired = d.desired
        reason = d.reason
        forced = 0
        if self.idle_only:
            if desired < self.cap:
                ready = self.ready
                self.idle_ready = int(ready * math.exp(-self.active_calls / ready)) if ready else 0
                plan = vmss_kind.plan_drain(
                    decision=d,
                    instances=_synthetic_instances(
                        self.pending, spec.boot_seconds, ready, self.idle_ready, self.active_calls
                    ),
                    state=self.drain_state,
                    now=now,
                    max_drain_seconds=spec.max_drain_seconds,
                )
                self.drain_state = plan.state
                desired = plan.decision.desired
                reason = plan.decision.reason
                forced = len(plan.actions.forced)
            else:
                self.drain_state = DrainState()
        if now >= self.grid.scored_from:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        return desired, forced

    # -- act --------------------------------------------------------------------------------

    def act(self, now: float, desired: int, forced: int) -> None:
        """The resize takes effect: new instances boot, removed ones go (booting ones first)."""
        scored_t = self.grid.scored_from
        on_score = now >= scored_t
        change = desired - self.cap
        self.state = record_scale(self.state, now=now, change=change)
        # billing of the capacity that held until now
        seg = self.last_change if self.last_change > scored_t else scored_t
        if now > seg:
            self.instance_seconds += self.cap * (now - seg)
        self.last_change = now
        if change > 0:
            self.pending.append([now + self.spec.boot_seconds, float(change)])
        else:
            self._remove(now, -change, forced, on_score)
        self.cap = desired
        if on_score:
            self.actions += 1
            totals = self.totals
            if desired > totals.max_instances:
                totals.max_instances = desired
            if desired < totals.min_instances:
                totals.min_instances = desired

    def _remove(self, now: float, remove: int, forced: int, on_score: bool) -> None:
        pending = self.pending
        while remove and pending:  # the newest, still booting, go first
            last = pending[-1]
            take = min(remove, int(last[1]))
            last[1] -= take
            remove -= take
            if not last[1]:
                pending.pop()
        if remove and self.idle_only:
            if forced:  # their calls drop, as Azure deletes them busy
                per = self.active_calls / max(1, self.ready - self.idle_ready)
                moved = min(self.active_calls, per * forced)
                self.active_calls -= moved
                if on_score:
                    self.dropped += moved
            self.ready -= remove
        elif remove:
            per = self.active_calls / self.ready if self.ready else 0.0
            moved = per * remove
            self.active_calls -= moved
            if self.active_calls < 0.0:
                self.active_calls = 0.0
            self.ready -= remove
            if self.drain:
                if per >= EMPTY_BELOW_CALLS:
                    max_drain = self.spec.max_drain_seconds
                    self.draining.extend([per] * remove)
                    self.drain_age.extend([0] * remove)
                    deadline = now + max_drain if max_drain is not None else math.inf
                    self.drain_deadline.extend([deadline] * remove)
            elif on_score:
                self.dropped += moved

    # -- the minute model -------------------------------------------------------------------

    def serve(self, i: int, t: float) -> float:
        """Bucket ``i``: instances that finished booting join; some calls end, the rest stay
        where they are, new ones fill the room. Returns the calls unserved."""
        pending = self.pending
        while pending and pending[0][0] <= t:
            self.ready += int(pending.popleft()[1])
        known = self.values[i]
        if known == known:  # not a gap
            self.last_known = known
        want = self.last_known
        held = self.active_calls
        if self.draining:
            held += sum(self.draining)
        if held > 0.0:
            held = self._calls_end(want, held, t, i >= self.grid.scored_index)
        ready = self.ready
        cpi = self.spec.limits.calls_per_instance
        room = ready * cpi
        new = want - held
        unserved = 0.0
        if new > 0.0:
            space = room - self.active_calls
            if new > space:
                unserved = new - space
                new = space if space > 0.0 else 0.0
            self.active_calls += new
        if not self.as_calls and known == known and ready:
            meaning = self.spec.meaning
            if meaning == "percent_of_capacity":
                value = self.spec.cpu_idle_percent + self.busy_span * self.active_calls / room
                if value > 100.0:
                    value = 100.0
            else:  # calls_per_instance
                value = self.active_calls / ready
            self.metric[i] = value
            self.history.put(t, to_calls_value(value, meaning, self.cap, cpi))
        if i >= self.grid.scored_index:
            self.demand.append(want)
        return unserved

    def _calls_end(self, want: float, held: float, t: float, scored: bool) -> float:
        """A share of the calls held ends (more when demand falls faster than churn); what is
        still held after."""
        churn = self.churn
        end_share = churn
        if want < held:
            drop_share = (held - want) / held
            if drop_share > end_share:
                end_share = drop_share
        keep = 1.0 - end_share
        self.active_calls *= keep
        if not self.draining:
            return self.active_calls
        # meetings end as they do, and faster when demand falls faster than churn
        extra = keep / (1.0 - churn)
        survive, oldest = self.survive, self.oldest
        kept: list[float] = []
        kept_age: list[int] = []
        kept_deadline: list[float] = []
        for c, age, deadline in zip(
            self.draining, self.drain_age, self.drain_deadline, strict=True
        ):
            c *= survive[age if age < oldest else oldest] * extra
            if c < EMPTY_BELOW_CALLS:
                continue
            if deadline <= t:
                if scored:
                    self.dropped += c
                continue
            kept.append(c)
            kept_age.append(age + 1)
            kept_deadline.append(deadline)
        self.draining, self.drain_age, self.drain_deadline = kept, kept_age, kept_deadline
        return self.active_calls + sum(self.draining)

    # -- accounting -------------------------------------------------------------------------

    def record(self, at: int, unserved: float) -> None:
        """The scored bucket ``at`` in the series that change seldom (a new run on a change)."""
        for key, value in (
            ("ready", float(self.ready)),
            ("requested", float(self.cap)),
            ("unserved", unserved),
            ("draining", float(len(self.draining))),
        ):
            if value != self.last_run[key]:
                at_, v_ = self.runs[key]
                at_.append(at)
                v_.append(value)
                self.last_run[key] = value

    def result(self) -> PoolRun:
        grid = self.grid
        seg = self.last_change if self.last_change > grid.scored_from else grid.scored_from
        if grid.end > seg:
            self.instance_seconds += self.cap * (grid.end - seg)
        scored_n = len(self.demand)
        runs = self.runs
        series = PoolSeries(
            demand=self.demand,
            ready=Steps(*runs["ready"], scored_n),
            requested=Steps(*runs["requested"], scored_n),
            unserved=Steps(*runs["unserved"], scored_n),
            draining=Steps(*runs["draining"], scored_n),
        )
        totals = self.totals
        mps = self.minutes_per_step
        totals.instance_seconds = self.instance_seconds
        totals.dropped_calls = self.dropped
        totals.scale_actions = self.actions
        totals.call_minutes = sum(series.demand) * mps
        totals.unserved_call_minutes = sum(series.unserved) * mps
        totals.served_call_minutes = totals.call_minutes - totals.unserved_call_minutes
        totals.peak_shortfall_calls = max(series.unserved, default=0.0)
        totals.drain_instance_seconds = sum(series.draining) * grid.step_seconds
        reasons = {reason.value: k for reason, k in self.reasons.items()}
        return PoolRun(self.spec.name, totals, series, reasons)


_SERIES = ("ready", "requested", "unserved", "draining")
"""The per-bucket series kept as runs (``Steps``), by their ``PoolSeries`` field."""


def to_calls_value(value: float, meaning: str, current: int, calls_per_instance: float) -> float:
    """One bucket of a platform metric as the daemon's history would hold it (calls)."""
    if meaning == "calls_per_instance":
        return value * current
    return value / 100.0 * current * calls_per_instance


def _synthetic_instances(
    pending: Sequence[list[float]],
    boot_seconds: float,
    ready: int,
    idle_ready: int,
    active_calls: float,
) -> tuple[Instance, ...]:
    """The pool as the ``vmss`` planner would observe it: instances still booting (no calls,
    newest last), ``idle_ready`` ready ones without calls and the other ready ones sharing
    ``active_calls`` evenly. Ids are numbers in the order the instances were created."""
    busy = ready - idle_ready
    per = active_calls / busy if busy > 0 else 0.0
    out = [
        Instance(id=str(n), calls=0.0 if n < idle_ready else per, started_at=0.0)
        for n in range(ready)
    ]
    n = ready
    for ready_at, count in pending:
        for _ in range(int(count)):
            out.append(
                Instance(id=str(n), state="starting", calls=0.0, started_at=ready_at - boot_seconds)
            )
            n += 1
    return tuple(out)
