"""Scale (issue 13), with the real SDK against the HTTPS fake: scale sets read in bulk give
exactly what a GET per scale set gives; a listing is shared by the concurrent reads of a tick; a
rate-limit header near zero stretches the next tick; pools of two subscriptions read their own
quota and metrics.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from scaler.adapters.azure import (
    STRETCH_MAX_SECONDS,
    ArmBudget,
    AzureAdapters,
    AzureCompute,
    AzureMonitorMetrics,
    make_credential,
)
from scaler.config import Config, PoolConfig, parse_config
from scaler.core.quota import QuotaMemory, QuotaRules, allowance
from scaler.core.types import MetricStatus
from scaler.errors import ConfigError, PermanentError, TransientError
from scaler.health import CallMetrics
from scaler.kinds.vm_set import vm_set_of
from scaler.ports import PoolStatus
from tests.fakeazure import FakeAzure

OTHER_SUB = "00000000-0000-0000-0000-0000000000b2"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeAzure]:
    saved = os.environ.get("CVI_AUTOSCALER_STATIC_TOKEN")
    os.environ["CVI_AUTOSCALER_STATIC_TOKEN"] = "test-token"
    server = FakeAzure(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()
        if saved is None:
            os.environ.pop("CVI_AUTOSCALER_STATIC_TOKEN", None)
        else:
            os.environ["CVI_AUTOSCALER_STATIC_TOKEN"] = saved


def pool(rid: str, name: str, location: str = "westeurope") -> dict[str, Any]:
    return {
        "name": name,
        "resource_id": rid,
        "location": location,
        "vcpus_per_instance": 4,
        "calls_per_instance": 15,
        "min": 1,
        "max": 40,
        "metric": {
            "namespace": "Pexip/CVI",
            "name": "ActiveCalls",
            "filter": "VMName eq '*'",
            "window_minutes": 5,
            "lag_minutes": 2,
            "published_elsewhere": True,
        },
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }


def config(
    fake: FakeAzure, pools: list[dict[str, Any]], *, others: tuple[str, ...] = (), **sections: Any
) -> Config:
    return parse_config(
        {
            **sections,
            "azure": {
                "subscription_id": fake.subscription_id,
                "subscriptions": list(others),
                "location": "westeurope",
                "resource_manager_url": fake.url,
                "metrics_url": fake.url,
                "credential": "static-token",
                "ca_bundle": fake.ca_file,
                "polling_interval_seconds": 0,
                "retry_total": 1,
                "call_deadline_seconds": 5,
                "timeout_seconds": 5,
            },
            "pools": pools,
        }
    )


def compute_for(cfg: Config) -> AzureCompute:
    return AzureCompute(cfg, make_credential(cfg.azure))


def outcome(compute: AzureCompute, p: Any, *, by_get: bool) -> PoolStatus | str:
    """What one read of the pool gives: its status, or the error class and message."""
    try:
        return compute.get(p) if by_get else compute.observe(p)
    except (PermanentError, TransientError) as err:
        return f"{type(err).__name__}: {err}"


def kinds(fake: FakeAzure) -> list[str]:
    return [r.path.rstrip("/").rsplit("/", 1)[-1].lower() for r in fake.requests]


def test_the_list_gives_what_a_get_per_scale_set_gives(fake: FakeAzure) -> None:
    """Across resource groups (list_all), over page boundaries (nextLink), with an operation in
    flight and a scale set that has vanished: the same PoolStatus (or the same error) as the
    per-GET path, and GETs only where the list cannot answer."""
    fake.vmss_page_size = 3  # 8 scale sets: three pages
    tables = []
    for i in range(8):
        rg = "cvi-a" if i % 2 else "cvi-b"
        rid = fake.add_vmss(rg, f"ss{i}", capacity=i + 1, location="westeurope")
        tables.append(pool(rid, f"p{i}"))
    fake.set_vmss_provisioning_state("cvi-a", "ss3", "Updating")  # someone's update runs
    gone = tables[0]["resource_id"].replace("/ss0", "/vanished")
    tables.append(pool(gone, "gone"))
    cfg = config(fake, tables)
    bulk, single = compute_for(cfg), compute_for(cfg)
    try:
        fake.clear_requests()
        listed = {p.name: outcome(bulk, p, by_get=False) for p in cfg.pools}
        seen = kinds(fake)
        fake.clear_requests()
        got = {p.name: outcome(single, p, by_get=True) for p in cfg.pools}
    finally:
        bulk.close()
        single.close()

    assert listed == got
    assert isinstance(listed["p3"], PoolStatus) and listed["p3"].in_flight
    assert isinstance(listed["gone"], str) and "PermanentError" in listed["gone"]
    # three pages of one list_all, a GET for the updating scale set and one for the vanished
    # (404), and the VM size list for the quota family
    assert seen.count("virtualmachinescalesets") == 3
    assert sorted(k for k in seen if k in ("ss3", "vanished")) == ["ss3", "vanished"]
    assert len(seen) == 3 + 2 + 1


def test_a_tick_of_concurrent_reads_shares_one_list_and_the_next_tick_lists_again(
    fake: FakeAzure,
) -> None:
    tables = [pool(fake.add_vmss("cvi", f"ss{i}", capacity=2), f"p{i}") for i in range(40)]
    cfg = config(fake, tables)
    compute = compute_for(cfg)
    try:
        compute.vm_sizes("westeurope")
        for tick in range(2):
            fake.clear_requests()
            if tick == 1:
                fake.set_vmss_capacity("cvi", "ss7", 5)  # changed between the ticks
            with ThreadPoolExecutor(8) as pool_:
                statuses = list(pool_.map(compute.observe, cfg.pools))
            assert kinds(fake) == ["virtualmachinescalesets"]  # one list(rg), no GET
            assert statuses[7].capacity == (5 if tick else 2)
    finally:
        compute.close()


def test_a_list_that_fails_fails_the_tick_once_without_a_get_per_scale_set(
    fake: FakeAzure,
) -> None:
    tables = [pool(fake.add_vmss("cvi", f"ss{i}", capacity=2), f"p{i}") for i in range(10)]
    cfg = config(fake, tables)
    compute = compute_for(cfg)
    try:
        compute.vm_sizes("westeurope")
        fake.inject_fault("GET", r"virtualMachineScaleSets$", status=500, code="Boom", times=50)
        fake.clear_requests()
        errors = [outcome(compute, p, by_get=False) for p in cfg.pools]
        assert all(isinstance(e, str) and "TransientError" in e for e in errors)
        assert set(kinds(fake)) == {"virtualmachinescalesets"}  # the SDK's retries, no GET
        assert len(fake.requests) == 2  # retry_total = 1
    finally:
        compute.close()


def test_a_rate_limit_header_near_zero_stretches_the_next_tick(fake: FakeAzure) -> None:
    rid = fake.add_vmss("cvi", "ss", capacity=2)
    cfg = config(fake, [pool(rid, "p")])
    registry = CollectorRegistry()
    adapters = AzureAdapters(cfg, observer=CallMetrics(registry))
    try:
        fake.ratelimit_headers = {"x-ms-ratelimit-remaining-subscription-reads": "11000"}
        adapters.compute.observe(cfg.pools[0])
        assert adapters.stretch_seconds() == 0.0
        assert adapters.compute.stretch_seconds() == 0.0

        # the token-bucket budget: empty, refilled at 25 reads a second: 100 / 25 = 4 s
        fake.ratelimit_headers = {"x-ms-ratelimit-remaining-subscription-global-reads": "0"}
        adapters.compute.observe(cfg.pools[0])
        assert 3.0 < adapters.compute.stretch_seconds() <= 4.0

        fake.ratelimit_headers = {"x-ms-ratelimit-remaining-subscription-reads": "2"}
        adapters.compute.observe(cfg.pools[0])
        stretch = adapters.compute.stretch_seconds()
        # 98 reads short of the low-water mark, refilled at 25 a second (ARM's token bucket
        # since 2024): about 4 s, not the half minute of the old hourly model
        assert 3.0 < stretch <= 4.0 < STRETCH_MAX_SECONDS
        assert adapters.metrics.stretch_seconds() == pytest.approx(stretch, abs=1.0)  # shared
        gauge = registry.get_sample_value(
            "cvi_autoscaler_arm_ratelimit_remaining",
            {"subscription": fake.subscription_id, "header": "subscription-reads"},
        )
        assert gauge == 2.0

        fake.ratelimit_headers = {
            "x-ms-ratelimit-remaining-subscription-reads": "11000",
            "x-ms-ratelimit-remaining-subscription-global-reads": "240",
        }
        adapters.compute.observe(cfg.pools[0])
        assert adapters.compute.stretch_seconds() == 0.0
    finally:
        adapters.close()


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("x-ms-ratelimit-remaining-subscription-reads", 100 / 25),
        ("x-ms-ratelimit-remaining-subscription-writes", 20 / 10),
        ("x-ms-ratelimit-remaining-subscription-deletes", 20 / 10),
        ("x-ms-ratelimit-remaining-subscription-global-writes", 20 / 10),
    ],
)
def test_an_empty_arm_bucket_waits_only_for_its_refill(header: str, wait: float) -> None:
    # ARM's token bucket (since 2024): reads refill at 25 a second, writes and deletes at 10
    # (learn.microsoft.com, request limits and throttling): an empty bucket is back above its
    # low-water mark in seconds, and the wait shrinks as time passes.
    clock = [1000.0]
    budget = ArmBudget(monotonic=lambda: clock[0])
    budget.record("sub", {header: "0"})
    assert budget.stretch_seconds() == pytest.approx(wait)
    clock[0] += wait / 2
    assert budget.stretch_seconds() == pytest.approx(wait / 2)
    clock[0] += wait
    assert budget.stretch_seconds() == 0.0


def test_two_subscriptions_read_their_own_scale_sets_quota_and_metrics(fake: FakeAzure) -> None:
    fake.add_subscription(OTHER_SUB)
    here = [fake.add_vmss("cvi", f"a{i}", capacity=2) for i in range(2)]
    there = [
        fake.add_vmss("cvi2", f"b{i}", capacity=3, subscription_id=OTHER_SUB) for i in range(2)
    ]
    fake.set_usage("westeurope", "cores", current=0, limit=1000)
    fake.set_usage("westeurope", "standardFSv2Family", current=0, limit=1000)
    fake.set_usage("westeurope", "cores", current=96, limit=100, subscription_id=OTHER_SUB)
    fake.set_usage(
        "westeurope", "standardFSv2Family", current=96, limit=100, subscription_id=OTHER_SUB
    )
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    for rid in here + there:
        points = [(minute - timedelta(minutes=k), 12.0) for k in range(8)]
        fake.set_metric(rid, "Pexip/CVI", "ActiveCalls", points, dimension=("VMName", "vm0"))
    tables = [pool(rid, f"here{i}") for i, rid in enumerate(here)]
    tables += [pool(rid, f"there{i}") for i, rid in enumerate(there)]
    with pytest.raises(ConfigError, match=r"pools\[2\]\.resource_id: in subscription"):
        config(fake, tables)  # another subscription must be named: a typo is not a pool
    cfg = config(fake, tables, others=(OTHER_SUB,))
    compute = compute_for(cfg)
    metrics = AzureMonitorMetrics(cfg, make_credential(cfg.azure))
    try:
        capacities = {p.name: compute.observe(p).capacity for p in cfg.pools}
        assert capacities == {"here0": 2, "here1": 2, "there0": 3, "there1": 3}

        scopes = {cfg.quota_scope_of(p) for p in cfg.pools}
        assert scopes == {"westeurope", f"{OTHER_SUB}/westeurope"}
        usage = {scope: compute.usage(scope) for scope in scopes}
        assert usage["westeurope"]["cores"].limit == 1000
        assert usage[f"{OTHER_SUB}/westeurope"]["cores"].current == 96

        memory = QuotaMemory().remember(usage, now=0.0)
        limits = {lim.name: lim for lim in cfg.pool_limits()}
        free = {
            name: allowance(lim, memory, granted={}, rules=QuotaRules(), now=0.0).headroom_vcpus
            for name, lim in limits.items()
        }
        assert free == {"here0": 1000, "here1": 1000, "there0": 4, "there1": 4}

        fake.clear_requests()
        readings = metrics.read(cfg.pools, time.time())
        assert {r.status for r in readings.values()} == {MetricStatus.OK}
        batches = [r.path for r in fake.requests if r.path.endswith("metrics:getBatch")]
        assert sorted(b.split("/")[2] for b in batches) == sorted([fake.subscription_id, OTHER_SUB])
    finally:
        compute.close()
        metrics.close()


# ----------------------------------------------------------------- vm-set: power states in bulk

VM_POWER = {
    "node-a": "running",
    "node-b": "deallocated",
    "node-c": "starting",
    "node-d": "deallocating",
    "node-e": "stopped",
}


def vm_set_config(fake: FakeAzure) -> Config:
    table = {
        "name": "burst",
        "kind": "vm-set",
        "vm_set": {"resource_group": "nodes", "tag": "pexip-role=burst"},
        "vcpus_per_instance": 8,
        "quota_family": "standardFSv2Family",
        "min": 0,
        "max": 5,
        "metric": {
            "namespace": "Pexip/CVI",
            "name": "ActiveCalls",
            "window_minutes": 5,
            "lag_minutes": 2,
            "published_elsewhere": True,
        },
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }
    # a vm-set pool needs a Management Node; these tests never call it
    return config(fake, [table], pexip={"url": "https://127.0.0.1:9"})


def vm_fleet(fake: FakeAzure) -> None:
    for name, power in VM_POWER.items():
        fake.add_vm("nodes", name, power_state=power, tags={"pexip-role": "burst"})
    fake.add_vm("nodes", "conf-1", power_state="running", tags={"pexip-role": "transcoding"})
    fake.add_vm("elsewhere", "node-z", power_state="running", tags={"pexip-role": "burst"})


def _group(pool: PoolConfig) -> tuple[str, tuple[str, str]]:
    """A vm-set pool's resource group and tag, as the adapter takes them."""
    group = vm_set_of(pool)
    return group.resource_group, group.tag_pair


def test_the_status_list_gives_what_an_instance_view_per_vm_gives(fake: FakeAzure) -> None:
    """Contract: the two-list read of a vm-set (``list(rg)`` joined with the subscription's
    ``statusOnly`` list) gives exactly the ``VmInfo`` of the per-VM instanceView read, for
    every power state, with two requests instead of one per VM."""
    from scaler.adapters.azure_instances import AzureVmSet

    vm_fleet(fake)
    cfg = vm_set_config(fake)
    compute = compute_for(cfg)
    vms = AzureVmSet(compute)
    try:
        fake.clear_requests()
        each = vms.list_each(*_group(cfg.pools[0]))
        per_vm = len(fake.requests)
        fake.clear_requests()
        bulk = vms.list(*_group(cfg.pools[0]))
        requests = [(r.path, r.query) for r in fake.requests]
    finally:
        compute.close()
    assert bulk == each
    assert {v.name: v.power_state for v in bulk} == VM_POWER
    assert per_vm == 1 + len(VM_POWER)
    assert len(requests) == 2
    assert any(q.get("statusOnly") == "true" for _, q in requests)


def test_a_refused_status_list_falls_back_to_each_vm_and_is_not_asked_again_at_once(
    fake: FakeAzure,
) -> None:
    """A role scoped to the resource group may not list the subscription's VMs (403): power
    states come from each VM's instanceView, the same answer, and the next read does not ask
    for the status list again before ``STATUS_LIST_REFUSED_RETRY_SECONDS``."""
    from scaler.adapters.azure_instances import AzureVmSet

    vm_fleet(fake)
    cfg = vm_set_config(fake)
    compute = compute_for(cfg)
    vms = AzureVmSet(compute)
    fake.inject_fault(
        "GET",
        r"^/subscriptions/[^/]+/providers/Microsoft.Compute/virtualMachines/?$",
        status=403,
        code="AuthorizationFailed",
        message="no read at subscription scope",
        content_regex=r"statusOnly=true",
    )
    try:
        expected = vms.list_each(*_group(cfg.pools[0]))
        first = vms.list(*_group(cfg.pools[0]))
        fake.clear_requests()
        second = vms.list(*_group(cfg.pools[0]))
        asked_again = [r for r in fake.requests if r.query.get("statusOnly")]
    finally:
        compute.close()
    assert first == expected == second
    assert asked_again == []


def test_only_a_configured_split_asks_azure_for_series_per_vm(fake: FakeAzure) -> None:
    """The ``VMName`` split (and its ``top``) is sent only where the pool's filter asks for it;
    a pool without a filter reads the unsplit total in one series. Batches of several queries
    go out concurrently and each pool still gets its own reading."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    moments = [minute - timedelta(minutes=7 - i) for i in range(8)]
    split = fake.add_vmss("cvi", "split", capacity=2)
    whole = fake.add_vmss("cvi", "whole", capacity=2)
    for vm in ("split_0", "split_1"):
        fake.set_metric(
            split,
            "Pexip/CVI",
            "ActiveCalls",
            [(t, 10.0) for t in moments],
            dimension=("VMName", vm),
        )
    fake.set_metric(whole, "Pexip/CVI", "ActiveCalls", [(t, 12.0) for t in moments])
    plain = pool(whole, "whole")
    plain["metric"] = {**plain["metric"], "filter": "", "window_minutes": 4}
    cfg = config(fake, [pool(split, "split"), plain])
    metrics = AzureMonitorMetrics(cfg, make_credential(cfg.azure))
    try:
        fake.clear_requests()
        readings = metrics.read(cfg.pools, time.time())
    finally:
        metrics.close()
    queries = {
        r.body["resourceids"][0].rsplit("/", 1)[-1]: r.query
        for r in fake.requests
        if r.path.endswith("metrics:getBatch")
    }
    assert (readings["split"].status, readings["split"].calls) == (MetricStatus.OK, 20.0)
    assert {name for name, _ in readings["split"].by_instance} == {"split_0", "split_1"}
    assert (readings["whole"].status, readings["whole"].calls) == (MetricStatus.OK, 12.0)
    assert readings["whole"].by_instance == ()
    assert queries["split"]["filter"] == "VMName eq '*'"
    assert queries["split"]["top"] == "1000"
    assert "filter" not in queries["whole"] and "top" not in queries["whole"]
