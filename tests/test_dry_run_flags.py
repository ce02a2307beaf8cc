"""A dry run says so for every pool — the ones it would resize, the ones it holds and the ones
it could not read — in ``once --json`` (``PoolOutcome.to_json``) and in ``/status``."""

from __future__ import annotations

from datetime import UTC, datetime

from scaler.adapters.sim import ManualClock, SimCloud
from scaler.config import parse_config
from scaler.daemon import Daemon
from scaler.health import status
from scaler.traces import Trace
from tests.conftest import config_doc, pool_table

START = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)


def daemon(dry_run: bool) -> Daemon:
    config = parse_config(
        config_doc(pool_table("busy"), pool_table("quiet"), pool_table("dark")), environ={}
    )
    calls = {"busy": [120.0] * 60, "quiet": [6.0] * 60, "dark": [None] * 60}
    trace = Trace(start=START, step_seconds=60, pools=tuple(calls), calls=calls, length=60)
    clock = ManualClock(START.timestamp() + 10 * 60)
    cloud = SimCloud(config, trace, clock=clock)
    return Daemon(
        config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock, dry_run=dry_run
    )


def test_every_pool_of_a_dry_run_is_marked_dry_run() -> None:
    d = daemon(dry_run=True)
    outcomes = {o.pool: o.to_json() for o in d.tick()}
    assert outcomes["busy"]["desired"] > outcomes["busy"]["current"]  # would resize
    assert outcomes["quiet"]["desired"] == outcomes["quiet"]["current"]  # holds
    assert outcomes["dark"]["reason"] == "MetricsStale"  # cannot read its load
    assert {name: o["dry_run"] for name, o in outcomes.items()} == dict.fromkeys(
        ("busy", "quiet", "dark"), True
    )
    assert not any(o["applied"] for o in outcomes.values())
    body = status(d)
    assert body["dry_run"] is True
    assert [p["dry_run"] for p in body["pools"]] == [True, True, True]


def test_a_live_pass_is_not_marked_dry_run() -> None:
    d = daemon(dry_run=False)
    outcomes = {o.pool: o.to_json() for o in d.tick()}
    assert not any(o["dry_run"] for o in outcomes.values())
    assert outcomes["busy"]["applied"] is True
    assert [p["dry_run"] for p in status(d)["pools"]] == [False, False, False]
