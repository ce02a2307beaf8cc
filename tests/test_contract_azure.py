"""Contract tests: the real Azure SDK clients, through our adapters, against an HTTPS fake Azure.

Each test sets up what Azure would hold, runs one daemon tick the way `once` does, and checks the
requests Azure would have received.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scaler.adapters.azure import AzureAdapters
from scaler.config import load_config
from scaler.daemon import Daemon
from tests.azure_env import AzureEnv, azure_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[AzureEnv]:
    with azure_env(tmp_path) as e:
        yield e


class WallClock:
    def now(self) -> float:
        import time

        return time.time()


def once(env: AzureEnv, config_path: Path, *, dry_run: bool = False):
    config = load_config(config_path, dry_run=dry_run or None)
    adapters = AzureAdapters(config)
    try:
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=WallClock(),
        )
        outcomes = daemon.tick()
        waits = daemon.wait_for_resizes(20)
        return outcomes, waits
    finally:
        adapters.close()


def patches(env: AzureEnv) -> list:
    return [r for r in env.fake.writes() if r.method == "PATCH"]


def test_high_load_sends_one_patch_to_the_right_capacity(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    # two VMs carrying 30 + 30 calls for the last 10 minutes; the newest minutes still filling
    env.calls(pool["resource_id"], {"vm0": [30.0] * 8 + [None] * 2, "vm1": [30.0] * 8 + [None] * 2})
    (o,), waits = once(env, env.write_config(pool))
    assert (o.current, o.desired, o.reason, o.applied) == (2, 5, "DesiredWithinRange", True)
    assert waits == {"tc": None}
    (patch,) = patches(env)
    assert patch.body == {"sku": {"name": "Standard_F4s_v2", "tier": "Standard", "capacity": 5}}
    assert env.fake.vmss_capacity("cvi", "tc") == 5


def test_quota_headroom_clamps_the_patch(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [120.0] * 10})  # wants ceil(120/12) = 10
    env.fake.set_usage("westeurope", "cores", current=8, limit=20)  # 12 vCPUs = 3 instances free
    env.fake.set_usage("westeurope", "standardFSv2Family", current=8, limit=100)
    (o,), _ = once(env, env.write_config(pool))
    assert (o.desired, o.reason, o.applied) == (5, "QuotaLimited", True)
    assert [p.body["sku"]["capacity"] for p in patches(env)] == [5]
    assert o.decision is not None and "headroom 12 vCPUs" in o.decision.detail


def test_null_metrics_make_no_write(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=6)
    env.calls(pool["resource_id"], {"vm0": [None] * 10})
    (o,), _ = once(env, env.write_config(pool))
    assert (o.current, o.desired, o.reason) == (6, 6, "MetricsStale")
    assert env.fake.writes() == []


def test_missing_series_makes_no_write(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=6)
    (o,), _ = once(env, env.write_config(pool))
    assert (o.desired, o.reason) == (6, "MetricsMissing")
    assert env.fake.writes() == []


def test_dry_run_reads_everything_and_writes_nothing(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [100.0] * 10})
    env.fake.set_usage("westeurope", "cores", current=0, limit=100)
    (o,), _ = once(env, env.write_config(pool), dry_run=True)
    assert (o.desired, o.reason, o.dry_run, o.applied) == (6, "ScaleUpLimit", True, False)
    assert env.fake.writes() == []
    paths = {r.path.lower().rsplit("/", 1)[-1] for r in env.fake.requests}
    assert {"tc", "usages", "metrics:getbatch"} <= paths


def test_scale_in_when_load_is_gone(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=6)
    pool["behavior"] = {"scale_down": {"stabilization_seconds": 0}}
    env.calls(pool["resource_id"], {"vm0": [3.0] * 10})
    (o,), _ = once(env, env.write_config(pool))
    assert (o.current, o.desired) == (6, 1)
    assert [p.body["sku"]["capacity"] for p in patches(env)] == [1]


def test_steady_load_writes_nothing(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=3)
    env.calls(pool["resource_id"], {"vm0": [36.0] * 10})
    (o,), _ = once(env, env.write_config(pool))
    assert (o.current, o.desired) == (3, 3)
    assert env.fake.writes() == []


def test_failed_resize_is_reported_not_applied(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [60.0] * 10})
    env.fake.fail_next_operation()
    (o,), waits = once(env, env.write_config(pool))
    assert o.applied is True  # the PATCH was sent…
    assert "OperationNotAllowed" in (waits["tc"] or "")  # …and Azure refused it
    assert env.fake.vmss_capacity("cvi", "tc") == 2


def test_throttling_is_retried_by_the_sdk(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [60.0] * 10})
    env.fake.inject_fault(
        "GET",
        r"virtualMachineScaleSets/tc$",
        status=429,
        code="TooManyRequests",
        headers={"Retry-After": "0"},
    )
    (o,), _ = once(env, env.write_config(pool))
    assert (o.desired, o.applied) == (5, True)


def test_a_pool_that_cannot_be_read_holds_and_the_others_go_on(env: AzureEnv) -> None:
    a = env.pool("a", capacity=2)
    b = env.pool("b", capacity=2)
    env.calls(a["resource_id"], {"vm0": [60.0] * 10})
    env.calls(b["resource_id"], {"vm0": [60.0] * 10})
    # A role granted on each scale set but not on their resource group: Azure refuses the
    # group's scale set list (so each pool is read by its own GET) and this one scale set.
    env.fake.inject_fault(
        "GET", r"virtualMachineScaleSets$", status=403, code="AuthorizationFailed", times=5
    )
    env.fake.inject_fault(
        "GET", r"virtualMachineScaleSets/a$", status=403, code="AuthorizationFailed", times=5
    )
    (oa, ob), _ = once(env, env.write_config(a, b))
    assert (oa.reason, oa.applied) == ("ObserveFailed", False)
    assert "AuthorizationFailed" in (oa.error or "")
    assert (ob.desired, ob.applied) == (5, True)
    assert [p.path.rsplit("/", 1)[-1] for p in patches(env)] == ["b"]


def test_a_tick_over_many_pools_makes_a_bounded_number_of_calls(env: AzureEnv) -> None:
    pools = []
    for i in range(60):
        pool = env.pool(f"p{i:02d}", capacity=3)
        env.calls(pool["resource_id"], {"vm0": [36.0] * 10})
        pools.append(pool)
    env.fake.set_usage("westeurope", "cores", current=0, limit=10_000)
    env.fake.clear_requests()
    outcomes, _ = once(env, env.write_config(*pools))
    assert all(o.desired == 3 for o in outcomes)
    kinds = [r.path.lower().rsplit("/", 1)[-1] for r in env.fake.requests]
    assert kinds.count("metrics:getbatch") == 2  # 50 + 10 resources
    assert kinds.count("usages") == 1  # one quota read per region
    # VM sizes are read (once per region and process) only for a pool that names no quota
    # family; these all name theirs
    assert kinds.count("skus") == 0
    assert kinds.count("virtualmachinescalesets") == 1  # one list answers all 60 scale sets
    assert len(env.fake.requests) == 1 + 2 + 1  # no GET per scale set, no writes


@pytest.mark.parametrize("code", ["AllocationFailed", "OverconstrainedZonalAllocationRequest"])
def test_no_capacity_for_the_vm_size_backs_off_instead_of_retrying_every_tick(
    env: AzureEnv, code: str
) -> None:
    """AllocationFailed (and its zonal, over-constrained relatives) is Azure having no capacity,
    not a quota refusal (learn.microsoft.com/troubleshoot/azure/virtual-machines/
    allocation-failure): the pool's scale-ups wait (CapacityUnavailable), doubling from one
    interval, instead of a PATCH a tick — never a permanent refusal."""
    import time as _time

    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [60.0] * 10})
    config = load_config(env.write_config(pool))
    adapters = AzureAdapters(config)
    try:
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=WallClock(),
        )
        env.fake.fail_next_operation(code=code, message="no capacity for F4s_v2")
        (first,) = daemon.tick()
        assert first.applied
        deadline = _time.monotonic() + 20
        while not daemon.inflight["tc"].handle.done() and _time.monotonic() < deadline:
            _time.sleep(0.05)
        (second,) = daemon.tick()  # learns of the failure, then holds the scale-up
        assert (second.desired, second.reason) == (2, "CapacityUnavailable")
        assert len(patches(env)) == 1
        assert daemon.capacity_backoff["tc"].backoff.failures == 1
    finally:
        adapters.close()


def test_a_split_metric_reads_every_vm_not_the_first_ten(env: AzureEnv) -> None:
    """With a dimension filter Azure Monitor returns 10 series unless ``top`` says more: a scale
    set of 12 VMs must read all 12, or its load reads low and it shrinks."""
    pool = env.pool("tc", capacity=12, min=1, max=20)
    env.calls(pool["resource_id"], {f"vm{i}": [12.0] * 10 for i in range(12)})
    (o,), _ = once(env, env.write_config(pool))
    assert o.decision is not None and o.decision.calls == 144.0
    assert o.desired >= 12
