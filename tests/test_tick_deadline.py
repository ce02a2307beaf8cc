"""One stuck or broken read never freezes the tick: the pool that waits holds, the others are
decided (the reliability issue's findings 2 and 3, at the daemon's level)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence

from scaler.adapters.sim import ManualClock, SimCloud
from scaler.config import PoolConfig, parse_config
from scaler.core.types import MetricReading
from scaler.daemon import Daemon
from scaler.ports import PoolStatus
from scaler.traces import Trace
from tests.conftest import config_doc, pool_table
from tests.test_daemon import START


class Stuck:
    """The simulator, except that observing ``stuck`` blocks until released."""

    def __init__(self, cloud: SimCloud, stuck: str) -> None:
        self.cloud = cloud
        self.stuck = stuck
        self.release = threading.Event()
        self.observed: list[str] = []

    def observe(self, pool: PoolConfig) -> PoolStatus:
        self.observed.append(pool.name)
        if pool.name == self.stuck:
            self.release.wait(30)
        return self.cloud.observe(pool)

    def apply(self, pool, actions):  # type: ignore[no-untyped-def]
        return self.cloud.apply(pool, actions)

    def resume(self, pool, token):  # type: ignore[no-untyped-def]
        return self.cloud.resume(pool, token)


class BrokenMetrics:
    """A metrics source whose library lets a decode error escape (an HTML error page)."""

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        return json.loads("<html>502 Bad Gateway</html>")  # type: ignore[no-any-return]


def two_pools(**daemon: object):  # type: ignore[no-untyped-def]
    doc = config_doc(pool_table("a"), pool_table("b"))
    doc["daemon"] = {"tick_deadline_seconds": 2.0, **daemon}
    config = parse_config(doc, environ={})
    clock = ManualClock(START.timestamp() + 10 * 60)
    trace = Trace(
        start=START,
        step_seconds=60,
        pools=("a", "b"),
        calls={"a": [120.0] * 60, "b": [120.0] * 60},
        length=60,
    )
    cloud = SimCloud(
        config, trace, clock=clock, quota_limits={"cores": 1000, "standardFSv2Family": 1000}
    )
    return config, clock, cloud


def test_a_stuck_pool_holds_while_the_others_are_decided() -> None:
    config, clock, cloud = two_pools()
    actuator = Stuck(cloud, "a")
    daemon = Daemon(config=config, metrics=cloud, actuator=actuator, quota=cloud, clock=clock)
    began = time.monotonic()
    a, b = daemon.tick()
    took = time.monotonic() - began
    assert a.reason == "ObserveTimedOut" and not a.applied
    assert b.applied and b.desired > b.current
    assert took < 10  # bounded by the tick's deadline, not by the stuck call (30 s)
    # the next tick does not pile another read onto the stuck one
    clock.advance(30)
    a2, _ = daemon.tick()
    assert a2.reason == "ObserveTimedOut"
    assert actuator.observed.count("a") == 1
    actuator.release.set()


def test_a_metrics_library_error_holds_every_pool_and_the_loop_goes_on() -> None:
    config, clock, cloud = two_pools()
    daemon = Daemon(
        config=config, metrics=BrokenMetrics(), actuator=cloud, quota=cloud, clock=clock
    )
    outcomes = daemon.tick()
    assert [o.reason for o in outcomes] == ["MetricsMissing", "MetricsMissing"]
    assert not any(o.applied for o in outcomes)
    assert "JSONDecodeError" in (outcomes[0].decision.detail if outcomes[0].decision else "")
    assert daemon.read_failures == ["metrics"]


def test_a_low_arm_budget_stretches_the_next_tick_and_health_allows_for_it() -> None:
    config, clock, cloud = two_pools()
    stretch = [0.0]
    daemon = Daemon(
        config=config,
        metrics=cloud,
        actuator=cloud,
        quota=cloud,
        clock=clock,
        stretch=lambda: stretch[0],
    )
    stop = threading.Event()
    stretch[0] = 30.0  # the adapters project the read budget below its low-water mark
    runner = threading.Thread(
        target=daemon.run, args=(stop,), kwargs={"period_seconds": 0.2}, daemon=True
    )
    runner.start()
    deadline = time.monotonic() + 20
    while daemon.next_tick_due is None and time.monotonic() < deadline:
        time.sleep(0.01)
    due, ticks = daemon.next_tick_due, daemon.ticks
    waits = None if due is None else due - time.monotonic()
    healthy = daemon.ticking_healthy()[0]
    stop.set()
    runner.join(10)
    assert waits is not None and ticks == 1
    assert waits > 25  # the second tick waits 0.2 s + 30 s, not 0.2 s
    assert healthy  # and health allows for the wait


def test_a_read_still_stuck_is_known_so_the_process_does_not_wait_for_it_at_exit() -> None:
    from scaler.reads import BoundedReads

    release = threading.Event()
    reads = BoundedReads(2)
    out = reads.run(
        {"a": lambda: release.wait(30), "b": lambda: 1}, deadline=time.monotonic() + 2.0
    )
    assert out["a"].timed_out is not None and out["b"].value == 1
    assert reads.busy()  # run/once leave with os._exit rather than join this thread
    release.set()
    deadline = time.monotonic() + 5
    while reads.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not reads.busy()
    reads.close()


def test_pools_share_a_few_tasks_and_a_stuck_one_holds_only_itself() -> None:
    from scaler.reads import BoundedReads

    release = threading.Event()
    started: list[str] = []
    threads: set[str] = set()

    def read(key: str) -> object:
        started.append(key)
        threads.add(threading.current_thread().name)
        if key == "p03":
            release.wait(30)
        return key

    reads = BoundedReads(2)
    keys = [f"p{i:02d}" for i in range(40)]
    out = reads.each({k: (lambda k=k: read(k)) for k in keys}, deadline=time.monotonic() + 2.0)
    assert out["p03"].timed_out is not None
    assert all(out[k].value == k for k in keys if k != "p03")  # the other task took them all
    assert len(threads) <= 2  # 40 pools on at most two tasks, not forty
    again = reads.each({"p03": lambda: read("p03"), "p04": lambda: read("p04")}, deadline=0.0)
    assert again["p03"].timed_out is not None and started.count("p03") == 1  # not piled on
    assert reads.busy()
    release.set()
    deadline = time.monotonic() + 5
    while reads.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not reads.busy()
    reads.close()


def test_a_read_no_task_reached_by_the_deadline_is_not_started_later() -> None:
    from scaler.reads import BoundedReads

    release = threading.Event()
    started: list[str] = []

    def read(key: str) -> object:
        started.append(key)
        release.wait(30)
        return key

    reads = BoundedReads(1)
    out = reads.each({k: (lambda k=k: read(k)) for k in ("a", "b")}, deadline=time.monotonic())
    assert out["a"].timed_out is not None and out["b"].timed_out is not None
    release.set()
    deadline = time.monotonic() + 5
    while reads.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "b" not in started  # still queued at the deadline (behind "a"): never read
    reads.close()
