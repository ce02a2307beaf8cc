"""Wall-clock time from outside is never trusted to be monotonic.

Stabilisation windows, rate limits and cooldowns compare the wall clock of this tick (``now``)
with times recorded earlier (``PoolState``). Two things break that comparison:

- a **backward step** of the system clock (NTP correcting a drifted clock, a VM restored from
  a snapshot): every recorded event then lies in the future and counts against the rate limit
  until the clock catches up; a −2 h step held a pool under rising load at 12 instances
  (``ScaleUpLimit``) for two hours while 25 were needed;
- **times from elsewhere**: a state file or a predecessor's state blob written by a clock that
  was ahead.

The loop measures its ticks on the monotonic clock too, so a backward step is seen as the wall
clock advancing less than the monotonic one (``backward_step``), and every recorded time is
moved back by the step (``shift_state``): in memory the events keep their distance from now, as
if they had been kept on the monotonic clock. What still lies in the future after that (from a
file or another replica) is settled by the rule for uncertainty, which may hold a scale-in but
never a scale-out (``settle_future``). A forward step needs nothing: events only look older,
and windows end sooner (nothing is held back that should move).

Pure functions; the daemon's ``Ticker`` applies them at the start of each tick.
"""

from __future__ import annotations

from scaler.core.types import PoolState

STEP_TOLERANCE_SECONDS = 5.0
"""A wall clock that advanced this much less than the monotonic clock between two ticks has
been stepped back (NTP slews small errors; a step is seconds to hours)."""


def backward_step(
    *, wall_before: float, mono_before: float, wall_now: float, mono_now: float
) -> float:
    """Seconds the wall clock was stepped back between two readings of both clocks (0.0 when
    it was not, or by less than ``STEP_TOLERANCE_SECONDS``)."""
    lag = (mono_now - mono_before) - (wall_now - wall_before)
    return lag if lag > STEP_TOLERANCE_SECONDS else 0.0


def shift_state(state: PoolState, by: float) -> PoolState:
    """``state`` with every recorded time moved by ``by`` seconds."""
    if by == 0.0:
        return state
    return PoolState(
        recommendations=tuple((t + by, v) for t, v in state.recommendations),
        scale_events=tuple((t + by, c) for t, c in state.scale_events),
        last_scale_up=None if state.last_scale_up is None else state.last_scale_up + by,
        last_scale_down=None if state.last_scale_down is None else state.last_scale_down + by,
        since=None if state.since is None else state.since + by,
    )


def settle_future(state: PoolState, *, now: float, max_instances: int) -> PoolState:
    """``state`` with nothing recorded after ``now`` (the same object when nothing was).

    Uncertainty may hold a scale-in but never a scale-out:

    - a scale-out event or ``last_scale_up`` from the future is forgotten (it would count
      against the scale-up limit and cooldown for as long as the clock takes to reach it);
    - a scale-in event or ``last_scale_down`` from the future is taken as happening now (it
      holds further scale-in one period, as a fresh one would);
    - recommendations from the future are replaced by one of ``max_instances`` now: the
      down-stabilisation window holds any scale-in once (as at a safe start), the up-window,
      which takes the lowest recommendation, is untouched.
    """
    recs, events = state.recommendations, state.scale_events
    up, down, since = state.last_scale_up, state.last_scale_down, state.since
    future_recs = any(t > now for t, _ in recs)
    future_events = any(t > now for t, _ in events)
    if not (
        future_recs
        or future_events
        or (up is not None and up > now)
        or (down is not None and down > now)
        or (since is not None and since > now)
    ):
        return state
    if future_recs:
        recs = (*(r for r in recs if r[0] <= now), (now, max_instances))
    if future_events:
        kept = [(t, c) for t, c in events if t <= now]
        kept += [(now, c) for t, c in events if t > now and c < 0]
        events = tuple(sorted(kept, key=lambda e: e[0]))
    return PoolState(
        recommendations=recs,
        scale_events=events,
        last_scale_up=None if up is not None and up > now else up,
        last_scale_down=now if down is not None and down > now else down,
        since=now if since is not None and since > now else since,
    )
