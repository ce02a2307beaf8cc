"""Time from outside is never trusted to be monotonic (issue 20, cases 3 and 4).

The daemon on a world whose load does not depend on the clock (a constant reading, a scale set
that resizes at once), driven by a manual wall clock and a manual monotonic clock, so a step of
one without the other is exactly what a VM sees when NTP or a snapshot restore steps its clock.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from scaler.adapters.handles import Done
from scaler.adapters.sim import ManualClock
from scaler.config import Config, PoolConfig, parse_config
from scaler.core.types import MetricReading, PoolState, QuotaUsage
from scaler.core.victims import InstanceActions
from scaler.core.wallclock import backward_step, settle_future, shift_state
from scaler.daemon import Daemon
from scaler.ports import PoolStatus, Preflight
from scaler.state import StateFile, StateStore, decode
from tests.conftest import config_doc, pool_table

T0 = 1_790_000_000.0
HOURS = 3600.0


class World:
    """``calls`` concurrent calls whatever the time; resizes take effect at once."""

    def __init__(self, config: Config, calls: float, capacity: int) -> None:
        self.calls = calls
        self.capacity = {p.name: capacity for p in config.pools}

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        return {p.name: MetricReading.ok(self.calls, as_of=now - 120) for p in pools}

    def observe(self, pool: PoolConfig) -> PoolStatus:
        return PoolStatus(self.capacity[pool.name], quota_family="standardFSv2Family")

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> Done:
        assert actions.capacity is not None
        self.capacity[pool.name] = actions.capacity
        return Done()

    def preflight(self, pool: PoolConfig) -> Preflight:
        return Preflight()

    def resume(self, pool: PoolConfig, token: str) -> Done:
        return Done()

    def usage(self, location: str) -> Mapping[str, QuotaUsage]:
        return {
            "cores": QuotaUsage("cores", 0, 100_000),
            "standardFSv2Family": QuotaUsage("standardFSv2Family", 0, 100_000),
        }


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _daemon(
    *, calls: float = 300.0, capacity: int = 1, store: StateStore | None = None, **pool: Any
) -> tuple[Daemon, World, ManualClock, Mono]:
    table = pool_table(max=40, **pool)
    config = parse_config(config_doc(table), environ={})
    world = World(config, calls, capacity)
    clock, mono = ManualClock(T0), Mono()
    daemon = Daemon(
        config=config,
        metrics=world,
        actuator=world,
        quota=world,
        clock=clock,
        monotonic=mono,
        store=store,
    )
    return daemon, world, clock, mono


def _minutes(daemon: Daemon, clock: ManualClock, mono: Mono, n: int) -> list[int]:
    sizes = []
    for _ in range(n):
        clock.advance(60)
        mono.t += 60
        (o,) = daemon.tick()
        sizes.append(o.desired)
    return sizes


def test_a_backward_step_of_two_hours_does_not_freeze_scale_out() -> None:
    """Issue 20 case 3: after a −2 h step a pool under load stayed at 12 (``ScaleUpLimit``)
    while 25 were needed, for two hours. Now it grows exactly as without the step."""
    control, _, c_clock, c_mono = _daemon()
    stepped, _, s_clock, s_mono = _daemon()
    before = _minutes(control, c_clock, c_mono, 2)
    assert _minutes(stepped, s_clock, s_mono, 2) == before
    s_clock.advance(-2 * HOURS)  # the wall clock steps back; the monotonic one does not
    with capture_logs() as events:
        after = _minutes(stepped, s_clock, s_mono, 5)
    assert after == _minutes(control, c_clock, c_mono, 5)
    assert after[-1] == 25  # ceil(300 / 12)
    assert next(e for e in events if e["event"] == "clock.stepped_back")["seconds"] == 7200.0


def test_a_backward_step_still_holds_the_scale_in_windows() -> None:
    """The step moves the windows with the clock: a scale-in waits its stabilisation window
    as it would have without the step, neither longer nor shorter."""
    runs = []
    for step in (False, True):
        daemon, world, clock, mono = _daemon(calls=300.0)
        _minutes(daemon, clock, mono, 6)
        world.calls = 24.0
        if step:
            clock.advance(-2 * HOURS)
        runs.append(_minutes(daemon, clock, mono, 8))
    assert runs[0] == runs[1]
    assert runs[0][0] == 25 and runs[0][-1] < 25  # held first, then scaled in


def test_a_forward_step_changes_nothing_that_holds_a_scale_out() -> None:
    daemon, _, clock, mono = _daemon()
    _minutes(daemon, clock, mono, 1)
    clock.advance(2 * HOURS)
    assert _minutes(daemon, clock, mono, 4)[-1] == 25


def _write_state(directory: Path, doc: dict[str, Any] | str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (directory / "state.json").write_text(text)


def _doc(saved_at: float, events: list[list[float]], recs: list[list[float]]) -> dict[str, Any]:
    return {
        "version": 1,
        "saved_at": saved_at,
        "writer": "other",
        "pools": {"tc": {"recommendations": recs, "scale_events": events}},
    }


def test_a_state_file_saved_two_hours_ahead_is_discarded_and_the_safe_start_applies(
    tmp_path: Path,
) -> None:
    """Issue 20 case 3, on restart: a state file whose times were 2 h ahead gave no scale-out
    at 300 calls. It is discarded with a warning; the safe start holds scale-in only."""
    ahead = T0 + 2 * HOURS
    _write_state(tmp_path, _doc(ahead, [[ahead - 60, 4], [ahead, 4]], [[ahead, 9]]))
    store = StateStore(local=StateFile(tmp_path))
    daemon, _, clock, mono = _daemon(store=store, capacity=9)
    with capture_logs() as events:
        daemon.restore()
    found = [e for e in events if e["event"] == "state.discarded"]
    assert found and "saved_at: 7200 s in the future" in found[0]["error"]
    sizes = _minutes(daemon, clock, mono, 3)
    assert sizes[0] > 9 and sizes[-1] == 25


def test_a_state_file_with_nan_is_discarded_and_saving_goes_on(tmp_path: Path) -> None:
    """Issue 20 case 4: ``"saved_at": NaN`` and ``[[NaN, 2]]`` were restored: the safe start
    was skipped, the pool scaled in at once and every later save failed."""
    text = '{"version": 1, "saved_at": NaN, "pools": {"tc": {"recommendations": [[NaN, 2]]}}}'
    _write_state(tmp_path, text)
    store = StateStore(local=StateFile(tmp_path))
    daemon, _, clock, mono = _daemon(store=store, calls=0.0, capacity=8)
    with capture_logs() as events:
        daemon.restore()
        sizes = _minutes(daemon, clock, mono, 2)
    assert [e for e in events if e["event"] == "state.discarded"]
    assert sizes == [8, 8]  # the safe start: no scale-in within the down window
    saved = decode((tmp_path / "state.json").read_bytes())  # written again, and finite
    assert math.isfinite(saved.saved_at) and saved.saved_at == clock.now()


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 1, "saved_at": Infinity, "pools": {}}',
        '{"version": 1, "saved_at": 1e999, "pools": {}}',
        '{"version": 1, "saved_at": 1.0, "pools": {"tc": {"last_scale_up": -Infinity}}}',
        '{"version": 1, "saved_at": 1.0, "pools": {"tc": {"drains": [{"pending_since": NaN}]}}}',
        "[" * 100_000,
    ],
)
def test_a_state_document_with_any_non_finite_number_is_refused(text: str) -> None:
    from scaler.state import StateCorrupt

    with pytest.raises(StateCorrupt, match=r"not finite|not JSON"):
        decode(text.encode())


def test_a_time_after_saved_at_makes_the_document_unusable() -> None:
    from scaler.state import StateCorrupt

    doc = _doc(T0, [[T0 + 3 * HOURS, 4]], [])
    with pytest.raises(StateCorrupt, match=r"pools\.tc: a time 10800 s after saved_at"):
        decode(json.dumps(doc).encode(), now=T0)
    assert decode(json.dumps(_doc(T0, [[T0 - 60, 4]], [])).encode(), now=T0).saved_at == T0


def test_a_fifo_as_state_file_is_refused_instead_of_hanging_the_start(tmp_path: Path) -> None:
    """Issue 20 case 8: ``state.json`` as a FIFO hung the start."""
    os.mkfifo(tmp_path / "state.json")
    store = StateStore(local=StateFile(tmp_path))
    daemon, _, clock, mono = _daemon(store=store)
    with capture_logs() as events:
        daemon.restore()
    unreadable = [e for e in events if e["event"] == "state.unreadable"]
    assert unreadable and "not a regular file" in unreadable[0]["error"]
    _minutes(daemon, clock, mono, 1)  # and the next save replaces it with a regular file
    assert (tmp_path / "state.json").is_file()


def test_an_adopted_snapshot_from_a_clock_ahead_never_holds_a_scale_out() -> None:
    """Times still in the future after the restore (another replica's clock, a little ahead)
    are settled at the next tick: scale-outs from the future are forgotten."""
    daemon, _, clock, mono = _daemon(capacity=10)
    ahead = T0 + 30
    daemon.ticker.states["tc"] = PoolState(
        recommendations=((ahead, 10),), scale_events=((ahead, 9),), last_scale_up=ahead
    )
    with capture_logs() as events:
        clock.advance(1)
        mono.t += 1
        (o,) = daemon.tick()
    assert o.desired == 20  # start + 100 %: the future +9 no longer counts
    assert [e for e in events if e["event"] == "state.from_the_future"]


# -- the pure rules -------------------------------------------------------------------------


def test_backward_step_is_the_lag_of_the_wall_clock_behind_the_monotonic_one() -> None:
    assert backward_step(wall_before=100, mono_before=5, wall_now=160, mono_now=65) == 0.0
    assert backward_step(wall_before=100, mono_before=5, wall_now=40, mono_now=65) == 120.0
    assert backward_step(wall_before=100, mono_before=5, wall_now=158, mono_now=65) == 0.0
    # a manual clock advanced faster than real time (tests, the demo) is no step
    assert backward_step(wall_before=100, mono_before=5, wall_now=7300, mono_now=6) == 0.0


times = st.floats(min_value=T0 - 10 * HOURS, max_value=T0 + 10 * HOURS)
changes = st.integers(min_value=-20, max_value=20).filter(bool)


@given(
    recs=st.lists(st.tuples(times, st.integers(0, 40)), max_size=8),
    events=st.lists(st.tuples(times, changes), max_size=8),
    up=st.none() | times,
    down=st.none() | times,
)
def test_settled_state_holds_nothing_in_the_future_and_never_more_scale_out(
    recs: list[tuple[float, int]],
    events: list[tuple[float, int]],
    up: float | None,
    down: float | None,
) -> None:
    now = T0
    state = PoolState(tuple(sorted(recs)), tuple(sorted(events)), up, down)
    settled = settle_future(state, now=now, max_instances=40)
    stamps = [t for t, _ in (*settled.recommendations, *settled.scale_events)]
    stamps += [t for t in (settled.last_scale_up, settled.last_scale_down) if t is not None]
    assert all(t <= now for t in stamps)
    # scale-out events only ever disappear (the up-limit can only loosen)
    outs = [e for e in settled.scale_events if e[1] > 0]
    assert all(e in state.scale_events for e in outs)
    # scale-in events are all kept (moved to now at the latest)
    assert sum(c for _, c in settled.scale_events if c < 0) == sum(c for _, c in events if c < 0)
    # the lowest recommendation of any window from now back never drops (up-window unchanged
    # or looser), and a future recommendation leaves a (now, max) behind (holds scale-in)
    if any(t > now for t, _ in recs):
        assert settled.recommendations[-1] == (now, 40)
    assert list(settled.recommendations) == sorted(settled.recommendations, key=lambda r: r[0])
    assert settle_future(settled, now=now, max_instances=40) is settled


@given(by=st.floats(min_value=-1e6, max_value=1e6))
def test_shift_moves_every_time_and_nothing_else(by: float) -> None:
    state = PoolState(((T0, 3),), ((T0 - 60, 2), (T0, -1)), T0 - 60, T0)
    moved = shift_state(state, by)
    assert [v for _, v in moved.recommendations] == [3]
    assert [c for _, c in moved.scale_events] == [2, -1]
    assert moved.scale_events[0][0] == pytest.approx(T0 - 60 + by)
    assert moved.last_scale_down == pytest.approx(T0 + by)
