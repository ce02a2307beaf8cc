"""``decide()``: from one pool's observation to its desired capacity, through fixed clamps.

The order is a contract (it is what the ``steps`` of a decision and docs/how-it-works.md list):

1. **policy**        every policy recommends; the highest recommendation wins, so a pool scales
                     in only when all its policies agree (and never on stale or missing data);
                     the decision names the winner (``composite:predictive`` when a combining
                     policy says which of its parts won through ``Recommendation.source``)
2. **tolerance**     within ±``tolerance`` of the target utilisation the pool holds (HPA)
3. **stabilisation** scale up to the *lowest* recommendation of the up-window, down to the
                     *highest* of the down-window (HPA ``behavior``)
4. **rate limit**    at most N instances or P % per period, per direction (HPA ``behavior``)
5. **min/max**       the pool's bounds, ``max`` narrowed by the lowest ``ceiling`` a policy
                     gave (a schedule's ``max``), never below ``min``
6. **quota**         a scale-up fits the vCPU headroom of the quota family *and* the regional
                     ``cores`` total, shared by every pool of the region in priority order;
                     unknown quota holds it to a safe step (``QuotaUnknown``), a pool backing
                     off after a capacity error holds (``CapacityUnavailable``); a pool that
                     starts deallocated VMs needs no headroom (quota already counts them)

A resize still in flight or a pool that could not be read holds outright. Each stage that changes
the value gives its ``Reason``; the decision's reason is that of the last stage that changed it.

Two things happen to the pool's history before the stages run (``_known``):

* **A pool never seen** (``PoolState.since`` unset: no state store, a new pool) gets its current
  size as a recommendation, so no scale-in happens until one down-stabilisation window has passed
  (HPA: a new HPA's recommendations start with the current replicas,
  ``TestScaleDownStabilizeInitialSize`` in ``pkg/controller/podautoscaler/horizontal_test.go``).
* **Timestamps from the future** (a backward step of the wall clock, a state file written on a
  machine whose clock was ahead) never hold a scale-out and hold a scale-in at most one window:
  a future recommendation is re-stamped at the edge of the up-window (outside it; inside the
  down-window when that is longer), a future scale-out event is dropped (it would shrink the
  period's starting size and so the scale-up allowed), a future scale-in event is re-stamped
  now (it counts for one period, which only ever allows more scale-up and less scale-in), and a
  future ``last_scale_up``/``last_scale_down`` is forgotten (cooldowns restart from nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from scaler.core.history import LoadHistory
from scaler.core.metrics import ABSURD
from scaler.core.quota import (
    REGIONAL_QUOTA,
    QuotaMemory,
    QuotaRules,
    allowance,
    charged_lines,
)
from scaler.core.types import (
    Behavior,
    Decision,
    DirectionBehavior,
    MetricReading,
    MetricStatus,
    Observation,
    PolicyContext,
    PoolLimits,
    PoolPlan,
    PoolState,
    QuotaUsage,
    Reason,
    Recommendation,
    ScalingPolicy,
    Step,
)

__all__ = ["REGIONAL_QUOTA", "combine", "decide", "plan_tick", "record_scale"]


def decide(
    *,
    pool: PoolLimits,
    behavior: Behavior,
    policies: Sequence[ScalingPolicy],
    observation: Observation,
    state: PoolState,
    now: float,
    headroom_vcpus: int | None = None,
    history: LoadHistory | None = None,
    quota_note: str = "",
    quota_unknown: str = "",
    unknown_step: int = 0,
    capacity_hold: str = "",
) -> Decision:
    """Decide one pool's desired capacity. Pure: the same inputs always give the same output.

    ``headroom_vcpus`` is the quota still free for this pool (``None``: no quota clamp — for a
    pool whose scale-up needs no new quota, or a replay that does not model quota).
    ``quota_unknown``, when set, says why the quota is not known: a scale-up is then held to
    ``unknown_step`` instances (``QuotaUnknown``), whatever ``headroom_vcpus`` says.
    ``capacity_hold``, when set, says why Azure has no capacity for the pool right now: a
    scale-up is held (``CapacityUnavailable``). ``now`` is in seconds since the epoch.
    ``quota_note`` says which quota line binds and which pools were served first; it is added
    to the detail of a ``QuotaLimited`` decision.
    """
    current = observation.current
    state = _known(state, behavior, current, now)
    metric = _screened(observation.metric)
    usable = metric.status is MetricStatus.OK
    calls = metric.calls if usable else None
    steps: list[Step] = []

    # 1. policy
    ctx = PolicyContext(now, current, calls, pool, metric, state, history)  # its fields' order
    best, winner, ceiling = _strongest(policies, ctx)

    if observation.in_flight:
        value, reason, detail = current, Reason.RESIZE_IN_FLIGHT, ""
        steps.append(Step("policy", value, reason))
    else:
        # 1.–3. policy, tolerance, stabilisation
        value, reason, state = _proposed(best, metric.status, state, behavior, current, now, steps)
        # 4. rate limit
        if value != current:
            value, reason = _rate_limited(value, reason, state, behavior, current, now, steps)
        # 5. min/max
        value, reason = _bounded(value, reason, pool, ceiling, current, usable, steps)
        # 6. quota (and capacity)
        detail = ""
        if value > current:
            value, reason, detail = _quota_gated(
                value,
                reason,
                pool,
                current,
                steps,
                headroom_vcpus=headroom_vcpus,
                quota_note=quota_note,
                quota_unknown=quota_unknown,
                unknown_step=unknown_step,
                capacity_hold=capacity_hold,
            )
        if not usable and not detail:
            detail = metric.detail  # why the metric is unusable (e.g. the node that failed)
    return Decision(
        pool=pool.name,
        current=current,
        desired=value,
        reason=reason,
        recommended=best.desired if best is not None else None,
        policy=winner,
        calls=calls,
        metric_status=metric.status,
        steps=tuple(steps),
        state=state,
        detail=detail,
    )


def _screened(metric: MetricReading) -> MetricReading:
    """``metric``, or a missing reading when it is marked ok but holds no valid call count: a
    source that did not screen its values (a plug-in, a bug) fails closed here too."""
    if metric.status is MetricStatus.OK and not (
        metric.calls is not None and 0.0 <= metric.calls <= ABSURD  # NaN fails both
    ):
        return MetricReading.missing(
            f"invalid value {metric.calls!r} in a reading marked ok (not a number ≥ 0 and ≤ 1e6)"
        )
    return metric


def _proposed(
    best: Recommendation | None,
    status: MetricStatus,
    state: PoolState,
    behavior: Behavior,
    current: int,
    now: float,
    steps: list[Step],
) -> tuple[int, Reason, PoolState]:
    """Stages 1–3: the policies' recommendation (held on unusable data), then tolerance and
    stabilisation. Returns the value, its reason and ``state`` with its windows pruned and
    this tick's recommendation recorded (the same object when nothing changed)."""
    recs, events = _prune(state, behavior, now)
    if status is not MetricStatus.OK:
        # Rule: missing or stale data never shrinks anything; it holds or rises to a safe floor.
        reason = Reason.METRICS_STALE if status is MetricStatus.STALE else Reason.METRICS_MISSING
        recommended = best.desired if best is not None else 0
        value = max(current, recommended, behavior.missing_data_floor or 0)
        steps.append(Step("policy", value, reason))
    elif best is None:
        reason = Reason.NO_RECOMMENDATION
        value = current
        steps.append(Step("policy", value, reason))
    else:
        reason = Reason.DESIRED_WITHIN_RANGE
        value = best.desired
        steps.append(Step("policy", value, reason))

        # 2. tolerance
        ratio = best.utilization_ratio
        within = ratio is not None and current > 0 and abs(ratio - 1.0) <= behavior.tolerance + 1e-9
        if within and value != current:
            value, reason = current, Reason.WITHIN_TOLERANCE
            steps.append(Step("tolerance", value, reason))

        # 3. stabilisation
        stabilized = _stabilize(recs, value, current, behavior, now)
        recs = (*recs, (now, value))
        if stabilized != value:
            reason = Reason.SCALE_UP_STABILIZED if value > current else Reason.SCALE_DOWN_STABILIZED
            value = stabilized
            steps.append(Step("stabilisation", value, reason))
    if recs is not state.recommendations or events is not state.scale_events:
        # ``replace()`` spelt out: every tick of every pool passes here
        state = PoolState(recs, events, state.last_scale_up, state.last_scale_down, state.since)
    return value, reason, state


def _rate_limited(
    value: int,
    reason: Reason,
    state: PoolState,
    behavior: Behavior,
    current: int,
    now: float,
    steps: list[Step],
) -> tuple[int, Reason]:
    """Stage 4: at most the instances or per cent a direction allows per period, counted from
    the (pruned) scale events of ``state``."""
    events = state.scale_events
    if value > current:
        limit = _up_limit(events, current, behavior.scale_up, now)
        if value > limit:
            value, reason = max(current, limit), Reason.SCALE_UP_LIMIT
            steps.append(Step("rate_limit", value, reason))
    elif value < current:
        limit = _down_limit(events, current, behavior.scale_down, now)
        if value < limit:
            value, reason = min(current, limit), Reason.SCALE_DOWN_LIMIT
            steps.append(Step("rate_limit", value, reason))
    return value, reason


def _bounded(
    value: int,
    reason: Reason,
    pool: PoolLimits,
    ceiling: int | None,
    current: int,
    usable: bool,
    steps: list[Step],
) -> tuple[int, Reason]:
    """Stage 5: the pool's min and max (with unusable metrics, max only stops a rise: it never
    forces a scale-in). A policy's ceiling (a schedule's max) narrows max while it stands,
    never below min."""
    top = pool.max if ceiling is None else max(pool.min, min(pool.max, ceiling))
    if value < pool.min:
        value, reason = pool.min, Reason.TOO_FEW_INSTANCES
        steps.append(Step("bounds", value, reason))
    elif value > top:
        cap = top if usable else max(top, current)
        if value > cap:
            value, reason = cap, Reason.TOO_MANY_INSTANCES
            steps.append(Step("bounds", value, reason))
    return value, reason


def _quota_gated(
    value: int,
    reason: Reason,
    pool: PoolLimits,
    current: int,
    steps: list[Step],
    *,
    headroom_vcpus: int | None,
    quota_note: str,
    quota_unknown: str,
    unknown_step: int,
    capacity_hold: str,
) -> tuple[int, Reason, str]:
    """Stage 6, for a scale-up (``value > current``): it needs Azure capacity and vCPU quota
    (see ``decide()`` for the arguments). Returns the value, its reason and the detail that
    says what held it (empty when nothing did)."""
    detail = ""
    if capacity_hold:
        detail = capacity_hold
        value, reason = current, Reason.CAPACITY_UNAVAILABLE
        steps.append(Step("quota", value, reason))
    elif quota_unknown:
        allowed = current + max(0, unknown_step)
        if headroom_vcpus is not None:  # a line that is known still binds
            allowed = min(allowed, current + max(0, headroom_vcpus) // pool.vcpus_per_instance)
        if value > allowed:
            detail = f"quota unknown: {quota_unknown}; safe step {max(0, unknown_step)}"
            value, reason = allowed, Reason.QUOTA_UNKNOWN
            steps.append(Step("quota", value, reason))
    elif headroom_vcpus is not None:
        allowed = current + max(0, headroom_vcpus) // max(1, pool.vcpus_per_instance)
        if value > allowed:
            detail = (
                f"needs {(value - current) * pool.vcpus_per_instance} vCPUs, "
                f"headroom {max(0, headroom_vcpus)} vCPUs"
            )
            if quota_note:
                detail += f" ({quota_note})"
            value, reason = allowed, Reason.QUOTA_LIMITED
            steps.append(Step("quota", value, reason))
    return value, reason, detail


def combine(policies: Sequence[ScalingPolicy], ctx: PolicyContext) -> Recommendation | None:
    """The anchors' rule for several policies: the highest recommendation wins (so scale-in only
    when all agree), the lowest ceiling stands, and ``source`` names the winner
    (``composite:predictive`` through a combining policy). On a tie the first listed wins.
    ``None`` when no policy has an opinion."""
    best, source, ceiling = _strongest(policies, ctx)
    if best is None:
        return None
    return Recommendation(
        desired=best.desired,
        utilization_ratio=best.utilization_ratio,
        note=best.note,
        source=source,
        ceiling=ceiling,
    )


def _strongest(
    policies: Sequence[ScalingPolicy], ctx: PolicyContext
) -> tuple[Recommendation | None, str | None, int | None]:
    """``combine()`` without building its answer: (winning recommendation as its policy gave it,
    the winner's name, the lowest ceiling)."""
    best: Recommendation | None = None
    source: str | None = None
    ceiling: int | None = None
    for policy in policies:
        rec = policy.recommend(ctx)
        if rec is None:
            continue
        if rec.ceiling is not None and (ceiling is None or rec.ceiling < ceiling):
            ceiling = rec.ceiling
        if best is None or rec.desired > best.desired:
            best = rec
            source = policy.name if rec.source is None else f"{policy.name}:{rec.source}"
    return best, source, ceiling


def plan_tick(
    *,
    pools: Sequence[PoolPlan],
    usage: Mapping[str, Mapping[str, QuotaUsage]] | None = None,
    now: float,
    quota: QuotaMemory | None = None,
    rules: QuotaRules | None = None,
    capacity_holds: Mapping[str, str] | None = None,
) -> list[Decision]:
    """Decide every pool of a tick, sharing each region's vCPU quota between them.

    ``quota`` is what is known of each region's ``usage.list`` (this tick's reads and older ones,
    see ``scaler.core.quota``); ``usage`` is the short form for "all read just now" (a location
    that is absent from it was not read). Either way, quota that is not known never means "no
    limit": a scale-up is then held to ``rules.unknown_step`` instances and says
    ``QuotaUnknown``. ``capacity_holds`` names the pools whose scale-ups wait after a capacity
    error (pool → why). Pools are served in priority order (higher first, then by name), so
    scarce headroom is split deterministically and the pools that lost out say
    ``QuotaLimited``. Decisions come back in the order of ``pools``.
    """
    memory = quota if quota is not None else QuotaMemory().remember(usage or {}, now=now)
    rules = rules or QuotaRules()
    holds = capacity_holds or {}
    granted: dict[tuple[str, str], int] = {}
    takers: dict[tuple[str, str], list[str]] = {}
    order = sorted(
        range(len(pools)), key=lambda i: (-pools[i].limits.priority, pools[i].limits.name)
    )
    out: dict[int, Decision] = {}
    for i in order:
        p = pools[i]
        lim = p.limits
        loc = lim.location.lower()
        allow = allowance(lim, memory, granted=granted, rules=rules, now=now)
        note = allow.note
        if allow.binding:
            first = takers.get((loc, allow.binding), [])
            if first:
                note += f", after {', '.join(first)} (served first)"
        d = decide(
            pool=lim,
            behavior=p.behavior,
            policies=p.policies,
            observation=p.observation,
            state=p.state,
            now=now,
            headroom_vcpus=allow.headroom_vcpus,
            history=p.history,
            quota_note=note,
            quota_unknown=allow.unknown,
            unknown_step=rules.unknown_step,
            capacity_hold=holds.get(lim.name, ""),
        )
        if d.desired > d.current:
            need = (d.desired - d.current) * lim.vcpus_per_instance
            for name in charged_lines(lim):
                key = (loc, name)
                granted[key] = granted.get(key, 0) + need
                takers.setdefault(key, []).append(f"{lim.name} +{need} vCPUs")
        out[i] = d
    return [out[i] for i in range(len(pools))]


def record_scale(state: PoolState, *, now: float, change: int) -> PoolState:
    """Return ``state`` with an applied resize of ``change`` instances recorded (rate limits)."""
    if change == 0:
        return state
    return replace(
        state,
        scale_events=(*state.scale_events, (now, change)),
        last_scale_up=now if change > 0 else state.last_scale_up,
        last_scale_down=now if change < 0 else state.last_scale_down,
    )


def _known(state: PoolState, behavior: Behavior, current: int, now: float) -> PoolState:
    """``state`` made safe to decide on (see the module docstring): a pool never seen gets its
    current size as a recommendation, and timestamps from the future are re-stamped or dropped.
    The same object when there is nothing to do (the common case)."""
    recs, events = state.recommendations, state.scale_events
    up, down = state.last_scale_up, state.last_scale_down
    future = (
        any(t > now for t, _ in recs)
        or any(t > now for t, _ in events)
        or (up is not None and up > now)
        or (down is not None and down > now)
    )
    if state.since is not None and not future:
        return state
    if future:
        edge = now - behavior.scale_up.stabilization_seconds
        recs = tuple((edge, v) if t > now else (t, v) for t, v in recs)
        recs = tuple(sorted(recs, key=lambda r: r[0]))
        events = tuple(
            (now, c) if t > now else (t, c) for t, c in events if not (t > now and c > 0)
        )
        events = tuple(sorted(events, key=lambda e: e[0]))
        up = None if up is not None and up > now else up
        down = None if down is not None and down > now else down
    since = state.since
    if since is None or since > now:
        if since is None:
            recs = (*recs, (now, current))
        since = now
    return PoolState(recs, events, up, down, since)


def _prune(
    state: PoolState, behavior: Behavior, now: float
) -> tuple[tuple[tuple[float, int], ...], tuple[tuple[float, int], ...]]:
    """The state's recommendations and scale events still inside their longest window (the
    same tuples when nothing expired)."""
    up, down = behavior.scale_up, behavior.scale_down
    recs = state.recommendations
    events = state.scale_events
    if recs:
        cut = now - max(up.stabilization_seconds, down.stabilization_seconds)
        if recs[0][0] <= cut:
            recs = tuple([r for r in recs if r[0] > cut])
    if events:
        cut = now - max(up.longest_period, down.longest_period)
        if events[0][0] <= cut:
            events = tuple([e for e in events if e[0] > cut])
    return recs, events


def _stabilize(
    history: Sequence[tuple[float, int]], value: int, current: int, behavior: Behavior, now: float
) -> int:
    """HPA's rule: up to the lowest recommendation of the up-window, down to the highest of the
    down-window, so a brief dip or spike does not move the pool."""
    up_cut = now - behavior.scale_up.stabilization_seconds
    down_cut = now - behavior.scale_down.stabilization_seconds
    up_rec = down_rec = value
    for t, rec in history:
        if t > up_cut and rec < up_rec:
            up_rec = rec
        if t > down_cut and rec > down_rec:
            down_rec = rec
    result = current
    if result < up_rec:
        result = up_rec
    if result > down_rec:
        result = down_rec
    return result


def _period_start(
    events: Sequence[tuple[float, int]], current: int, period: float, now: float
) -> int:
    """The pool's size at the start of a rate-limit period: ``current`` less what was added
    and plus what was removed within it, counting changes in *both* directions (Kubernetes
    since PR #109058, the fix of issue #108354: before it a scale-up period counted only
    scale-ups, so 4 → 8 → 6 with "300 % per 300 s" allowed 8 instead of 16)."""
    cut = now - period
    return current - sum(c for t, c in events if t > cut)


def _disabled(rule: DirectionBehavior) -> bool:
    """Both limits 0 (or one 0 and the other unset): the direction is off, as HPA's
    ``selectPolicy: Disabled``, whatever happened earlier in the period."""
    limits = [x for x in (rule.max_instances, rule.max_percent) if x is not None]
    return bool(limits) and all(x == 0 for x in limits)


def _periods(rule: DirectionBehavior) -> tuple[float, float]:
    return (
        rule.period_seconds
        if rule.instances_period_seconds is None
        else rule.instances_period_seconds,
        rule.period_seconds if rule.percent_period_seconds is None else rule.percent_period_seconds,
    )


def _up_limit(
    events: Sequence[tuple[float, int]], current: int, rule: DirectionBehavior, now: float
) -> int:
    if rule.max_instances is None and rule.max_percent is None:
        return 1 << 30
    if _disabled(rule):
        return current
    by_count, by_percent = _periods(rule)
    limits = []
    if rule.max_instances is not None:
        limits.append(_period_start(events, current, by_count, now) + rule.max_instances)
    if rule.max_percent is not None:
        start = _period_start(events, current, by_percent, now)
        limits.append(math.ceil(round(start * (1.0 + rule.max_percent / 100.0), 9)))
    return max(limits) if rule.select == "max" else min(limits)


def _down_limit(
    events: Sequence[tuple[float, int]], current: int, rule: DirectionBehavior, now: float
) -> int:
    if rule.max_instances is None and rule.max_percent is None:
        return 0
    if _disabled(rule):
        return current
    by_count, by_percent = _periods(rule)
    limits = []
    if rule.max_instances is not None:
        limits.append(_period_start(events, current, by_count, now) - rule.max_instances)
    if rule.max_percent is not None:
        # HPA truncates toward zero (int32 of a float); below zero min clamps anyway
        start = _period_start(events, current, by_percent, now)
        limits.append(math.floor(round(start * (1.0 - rule.max_percent / 100.0), 9)))
    # "max" allows the bigger change, which for scale-in is the lower limit.
    return min(limits) if rule.select == "max" else max(limits)
