"""The daemon loop on the simulator: what an operator would see tick by tick."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from scaler.adapters.sim import ManualClock, SimCloud
from scaler.config import parse_config
from scaler.daemon import Daemon
from scaler.traces import Trace
from tests.conftest import config_doc, pool_table

START = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)


def flat_trace(calls: list[float | None], pool: str = "tc") -> Trace:
    return Trace(
        start=START, step_seconds=60, pools=(pool,), calls={pool: calls}, length=len(calls)
    )


def make(calls: list[float | None], *, dry_run: bool = False, quota=None, **pool_over):
    config = parse_config(config_doc(pool_table(**pool_over)), environ={})
    clock = ManualClock(START.timestamp() + 10 * 60)
    cloud = SimCloud(config, flat_trace(calls), clock=clock, quota_limits=quota or {})
    daemon = Daemon(
        config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock, dry_run=dry_run
    )
    return daemon, cloud, clock


def test_high_load_scales_up_once_then_holds_while_the_resize_runs() -> None:
    daemon, cloud, clock = make([120.0] * 60)
    (o,) = daemon.tick()
    assert (o.current, o.desired, o.reason, o.applied) == (1, 5, "ScaleUpLimit", True)
    assert cloud.pools["tc"].capacity == 5
    clock.advance(30)
    (o,) = daemon.tick()
    assert (o.desired, o.reason, o.applied) == (5, "ResizeInFlight", False)
    clock.advance(60)
    (o,) = daemon.tick()
    assert (o.current, o.desired, o.applied) == (5, 10, True)  # ceil(120 / 12)


def test_dry_run_decides_but_writes_nothing() -> None:
    daemon, cloud, _ = make([120.0] * 60, dry_run=True)
    (o,) = daemon.tick()
    assert (o.desired, o.dry_run, o.applied) == (5, True, False)
    assert cloud.pools["tc"].capacity == 1 and cloud.pools["tc"].resizes == 0


def test_metric_gap_holds_instead_of_scaling_in() -> None:
    daemon, cloud, clock = make([120.0] * 5 + [None] * 30, min=1)
    cloud.resize(daemon.config.pools[0], 10)
    clock.advance(120)
    (o,) = daemon.tick()
    assert (o.current, o.desired, o.reason) == (10, 10, "MetricsStale")


def test_quota_limits_the_scale_up() -> None:
    daemon, _cloud, _ = make([240.0] * 60, quota={"cores": 12, "standardFSv2Family": 100})
    (o,) = daemon.tick()
    assert (o.current, o.desired, o.reason) == (1, 3, "QuotaLimited")


def test_a_manual_change_is_the_new_truth() -> None:
    daemon, cloud, clock = make([24.0] * 60)
    (o,) = daemon.tick()
    assert o.desired == 2
    clock.advance(120)
    cloud.pools["tc"].ready_at = cloud.pools["tc"].ready_at[:1] * 7  # someone set 7 by hand
    (o,) = daemon.tick()
    assert o.current == 7


def test_run_stops_promptly_when_asked() -> None:
    daemon, _, _ = make([24.0] * 600)
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), kwargs={"period_seconds": 0.05})
    thread.start()
    deadline = time.monotonic() + 5
    while daemon.ticks < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    began = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert daemon.ticks >= 3
    assert time.monotonic() - began < 2


def test_demo_command_runs_a_day_and_prints_a_summary() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scaler",
            "demo",
            "--speed",
            "40000",
            "--start-hour",
            "6",
            "--end-hour",
            "12",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cvi-autoscaler demo: 2 pools")
    assert any("teams-connector" in line and "->" in line for line in lines)
    assert lines[-1].startswith("day done (06:00-12:00 UTC")
    assert "call-minutes unserved" in lines[-1]


def test_demo_rejects_bad_usage() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scaler", "demo", "--start-hour", "20", "--end-hour", "3"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert "--start-hour" in proc.stderr


def _decisions(events: list[dict]) -> list[tuple[str, int, int, str]]:
    return [
        (e["pool"], e["current"], e["desired"], e["reason"])
        for e in events
        if e["event"] == "decision.made"
    ]


def test_a_decision_is_logged_when_it_changes_and_each_tick_says_it_ticked() -> None:
    from structlog.testing import capture_logs

    daemon, _, clock = make([24.0] * 20 + [120.0] * 50)
    with capture_logs() as events:
        for _ in range(5):  # steady: 24 calls on 1 instance wants 2 (applied at once)
            daemon.tick()
            clock.advance(60)
    assert _decisions(events) == [
        ("tc", 1, 2, "DesiredWithinRange"),
        ("tc", 2, 2, "DesiredWithinRange"),
    ]
    summaries = [e for e in events if e["event"] == "tick.summary"]
    assert len(summaries) == 5
    assert summaries[-1]["pools"] == 1 and summaries[-1]["decisions_logged"] == 0
    assert summaries[-1]["reasons"] == {"DesiredWithinRange": 1}
    with capture_logs() as events:
        clock.advance(10 * 60)  # the load rises: the decision changes, and is said
        daemon.tick()
    assert _decisions(events) == [("tc", 2, 6, "ScaleUpLimit")]


def test_every_tick_logs_every_decision_when_asked() -> None:
    from structlog.testing import capture_logs

    config = parse_config(
        config_doc(pool_table(), daemon={"log_decisions": "every-tick"}), environ={}
    )
    clock = ManualClock(START.timestamp() + 10 * 60)
    cloud = SimCloud(config, flat_trace([24.0] * 60), clock=clock)
    daemon = Daemon(config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock)
    with capture_logs() as events:
        for _ in range(4):
            daemon.tick()
            clock.advance(60)
    assert len(_decisions(events)) == 4
    assert not [e for e in events if e["event"] == "tick.summary"]


def test_a_dry_runs_persisting_wish_is_said_once() -> None:
    from structlog.testing import capture_logs

    daemon, cloud, clock = make([120.0] * 60, dry_run=True)
    with capture_logs() as events:
        for _ in range(4):  # 1 instance, wants 5 (ScaleUpLimit) every tick: nothing written
            (o,) = daemon.tick()
            assert (o.current, o.desired, o.dry_run) == (1, 5, True)
            clock.advance(60)
    assert [e["desired"] for e in events if e["event"] == "scale.dry_run"] == [5]
    assert len(_decisions(events)) == 1 and cloud.pools["tc"].resizes == 0
