"""The daemon with the real adapters against the HTTPS fakes of Azure and the Management Node.

Each test sets up what Azure and Pexip would hold, runs daemon ticks through the real Azure SDK
clients and the real httpx client, and checks what both services were asked to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scaler.adapters.sim import ManualClock
from scaler.config import Config, parse_config
from scaler.daemon import Daemon, PoolOutcome
from scaler.wiring import build_adapters
from tests.fakeazure import FakeAzure
from tests.fakepexip import FakePexip

RG = "cvi"
T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC).timestamp()
FAST_DOWN = {"scale_down": {"stabilization_seconds": 0, "max_percent": 100}}


@dataclass
class Env:
    azure: FakeAzure
    pexip: FakePexip
    tmp: Path

    def config(self, *pools: dict[str, Any], **pexip: Any) -> Config:
        doc = {
            "daemon": {"once_wait_seconds": 10},
            "azure": {
                "subscription_id": self.azure.subscription_id,
                "location": "westeurope",
                "resource_manager_url": self.azure.url,
                "metrics_url": self.azure.url,
                "credential": "static-token",
                "ca_bundle": self.azure.ca_file,
                "polling_interval_seconds": 0,
                "retry_total": 0,
            },
            "pexip": {
                "url": self.pexip.url,
                "username": "admin",
                "ca_bundle": self.pexip.ca_file,
                "page_size": 2,
                **pexip,
            },
            "pools": list(pools),
        }
        return parse_config(doc, environ={})

    def daemon(self, config: Config, clock: ManualClock) -> tuple[Daemon, Any]:
        adapters = build_adapters(config, clock=clock)
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=clock,
        )
        return daemon, adapters

    def azure_writes(self, kind: str = "") -> list[Any]:
        return [
            w
            for w in self.azure.writes()
            if "/providers/Microsoft.Compute/" in w.path and kind in w.path
        ]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("CVI_AUTOSCALER_STATIC_TOKEN", "test-token")
    monkeypatch.setenv("CVI_AUTOSCALER_PEXIP_PASSWORD", "s3cret")
    with FakeAzure(tmp_path) as azure, FakePexip(tmp_path) as pexip:
        yield Env(azure, pexip, tmp_path)


def teams_pool(rid: str, **over: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": "tc",
        "resource_id": rid,
        "vcpus_per_instance": 4,
        "quota_family": "standardFSv2Family",
        "calls_per_instance": 15,
        "min": 1,
        "max": 10,
        "metric": {"source": "pexip"},
        "behavior": FAST_DOWN,
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }
    table.update(over)
    return table


def burst_pool(**over: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": "burst",
        "kind": "vm-set",
        "vm_set": {"resource_group": RG, "tag": "pexip-role=burst"},
        "vcpus_per_instance": 8,
        "quota_family": "standardFSv2Family",
        "min": 0,
        "max": 3,
        "metric": {"source": "pexip", "locations": ["London"], "base_fill": 0.8},
        "behavior": FAST_DOWN,
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }
    table.update(over)
    return table


def one(outcomes: list[PoolOutcome], name: str) -> PoolOutcome:
    return next(o for o in outcomes if o.pool == name)


# ------------------------------------------------------------------------- drain-aware vmss


def test_scale_in_deletes_only_the_idle_instance_and_protects_the_busy(env: Env) -> None:
    rid = env.azure.add_vmss(RG, "tc", capacity=3)
    # Pexip names Teams Connector instances by computer name.
    for i, calls in enumerate([5, 0, 4]):
        env.pexip.add_teams_node(f"tc00000{i}", call_count=calls, scaleset_id="tc")
    clock = ManualClock(T0)
    daemon, adapters = env.daemon(env.config(teams_pool(rid)), clock)
    try:
        (o,) = daemon.tick()
        assert daemon.wait_for_resizes(10) == {"tc": None}
        # 9 calls want one instance; two may go, but only instance 1 is empty.
        assert (o.current, o.desired, o.reason, o.applied) == (3, 2, "WaitingForIdle", True)
        assert "0/tc000000=5" in (o.decision.detail if o.decision else "")
        assert env.azure.vmss_instance_ids(RG, "tc") == ["0", "2"]
        deletes = [w for w in env.azure_writes() if w.path.endswith("/delete")]
        assert [w.body for w in deletes] == [{"instanceIds": ["1"]}]
        protected = {
            w.path.rsplit("/", 1)[1]: w.body for w in env.azure_writes("/virtualMachines/")
        }
        assert sorted(protected) == ["0", "2"]
        assert all(
            b["properties"]["protectionPolicy"]["protectFromScaleIn"] for b in protected.values()
        )
        assert not [w for w in env.azure_writes() if w.method == "PATCH" and w.path.endswith("/tc")]

        # The calls on instance 2 end: it goes, and instance 0's protection is lifted.
        env.pexip.set_calls("tc000002", 0)
        env.azure.clear_requests()
        clock.advance(60)
        (o,) = daemon.tick()
        daemon.wait_for_resizes(10)
        assert (o.current, o.desired, o.reason) == (2, 1, "DesiredWithinRange")
        assert env.azure.vmss_instance_ids(RG, "tc") == ["0"]
        lifted = [w for w in env.azure_writes("/virtualMachines/0")]
        assert (
            lifted and not lifted[-1].body["properties"]["protectionPolicy"]["protectFromScaleIn"]
        )
        assert daemon.pending_drains == {}
    finally:
        adapters.close()


def test_no_idle_instance_means_no_delete_at_all(env: Env) -> None:
    rid = env.azure.add_vmss(RG, "tc", capacity=2)
    env.pexip.add_teams_node("tc000000", call_count=3)
    env.pexip.add_teams_node("tc000001", call_count=2)
    daemon, adapters = env.daemon(env.config(teams_pool(rid)), ManualClock(T0))
    try:
        (o,) = daemon.tick()
        assert (o.current, o.desired, o.reason) == (2, 2, "WaitingForIdle")
        assert not [w for w in env.azure_writes() if w.path.endswith("/delete")]
        assert env.azure.vmss_capacity(RG, "tc") == 2
    finally:
        adapters.close()


def test_a_stopped_instance_is_neither_capacity_nor_a_victim(env: Env) -> None:
    # Power states come from the instance view: instance 1 is deallocated (it counts in
    # sku.capacity, serves nothing). Instance 0 carries 5 calls, instance 2 none: one serving
    # instance is enough, so only the idle running instance 2 goes, never the stopped one.
    rid = env.azure.add_vmss(RG, "tc", capacity=3)
    env.azure.set_instance_power_state(RG, "tc", "1", "deallocated")
    env.pexip.add_teams_node("tc000000", call_count=5, scaleset_id="tc")
    env.pexip.add_teams_node("tc000002", call_count=0, scaleset_id="tc")
    daemon, adapters = env.daemon(env.config(teams_pool(rid)), ManualClock(T0))
    try:
        (o,) = daemon.tick()
        daemon.wait_for_resizes(10)
        assert (o.current, o.desired) == (2, 1)
        assert o.decision is not None and "starting, stopped" in o.decision.detail
        assert env.azure.vmss_instance_ids(RG, "tc") == ["0", "1"]
        # the load grows to 40 calls: 4 serving instances are wanted, so 5 are asked for
        env.pexip.set_calls("tc000000", 40)
        (o,) = daemon.tick()
        daemon.wait_for_resizes(10)
        assert (o.current, o.desired) == (1, 4)
        assert env.azure.vmss_capacity(RG, "tc") == 5  # 4 serving + the stopped one
    finally:
        adapters.close()


# ------------------------------------------------------------------------- pexip-teams


def test_pexip_teams_writes_min_instances_and_never_the_scale_set(env: Env) -> None:
    rid = env.azure.add_vmss(RG, "tc", capacity=2)
    env.pexip.add_teams_proxy(7, "cvi-teams", min_number_of_instances=1)
    env.pexip.add_teams_node("tc000000", call_count=20)
    env.pexip.add_teams_node("tc000001", call_count=20)
    pool = teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams")
    clock = ManualClock(T0)
    daemon, adapters = env.daemon(env.config(pool), clock)
    try:
        (o,) = daemon.tick()
        assert (o.current, o.desired, o.applied) == (2, 4, True)  # ceil(40 / 12)
        assert env.pexip.teams_proxies[7]["min_number_of_instances"] == 4
        # Pexip has not grown the scale set yet: the same minimum is not written again.
        clock.advance(60)
        (o,) = daemon.tick()
        patches = [w for w in env.pexip.writes() if "teams_proxy" in w.path]
        assert [w.body for w in patches] == [{"min_number_of_instances": 4}]
        # Calls end: the minimum goes back down; Pexip drains instances itself.
        env.pexip.set_calls("tc000000", 0)
        env.pexip.set_calls("tc000001", 0)
        clock.advance(60)
        (o,) = daemon.tick()
        assert (o.current, o.desired) == (2, 1)
        assert env.pexip.teams_proxies[7]["min_number_of_instances"] == 1
        assert env.azure_writes() == []  # never a PATCH, PUT or delete on the scale set
        assert env.azure.vmss_capacity(RG, "tc") == 2
    finally:
        adapters.close()


# ------------------------------------------------------------------------- vm-set


def test_burst_node_drains_then_stops_after_load_and_lifetime(env: Env) -> None:
    tags = {"pexip-role": "burst"}
    env.azure.add_vm(RG, "burst-1", power_state="running", tags=tags)
    env.azure.add_vm(RG, "burst-2", tags=tags)
    env.azure.add_vm(RG, "burst-3", tags=tags)
    env.azure.add_vm(RG, "other", tags={"pexip-role": "core"})
    env.pexip.add_node("always-1", max_hd_calls=40, media_load=100.0)
    env.pexip.add_node("burst-1", max_hd_calls=20, media_load=50.0)
    env.pexip.add_node("burst-2", max_hd_calls=20, last_contacted="2026-11-18T08:00:00")
    env.pexip.add_node("burst-3", max_hd_calls=20, last_contacted="2026-11-17T08:00:00")
    clock = ManualClock(T0)
    daemon, adapters = env.daemon(env.config(burst_pool()), clock)
    try:
        # 40 + 10 HD calls in London, beyond 0.8 × 40 of the always-on node: 18 → 2 nodes.
        (o,) = daemon.tick()
        assert (o.current, o.desired, o.applied) == (1, 2, True)
        daemon.wait_for_resizes(10)
        assert env.azure.vm_power_state(RG, "burst-2") == "running"  # most recently healthy
        assert env.azure.vm_power_state(RG, "burst-3") == "deallocated"

        # The meeting load falls away: both burst nodes are to go, least loaded first.
        env.pexip.set_media_load("always-1", 10.0)
        clock.advance(60)
        (o,) = daemon.tick()
        assert (o.current, o.desired) == (2, 0)
        assert env.pexip.nodes["burst-1"].maintenance_mode
        assert env.pexip.nodes["burst-2"].maintenance_mode
        assert env.azure.vm_power_state(RG, "burst-1") == "running"

        # burst-2 is empty but was started a minute ago; burst-1 still has calls ending.
        for _ in range(3):
            clock.advance(60)
            (o,) = daemon.tick()
        # Its calls have ended, yet in maintenance it still reports a media load of 100 %
        # (docs.pexip.com/admin/maintenance_mode.htm): emptiness comes from its calls.
        assert env.pexip.node_calls("burst-1") == 0
        assert env.pexip.nodes["burst-1"].reported_media_load == 100.0
        assert env.azure.vm_power_state(RG, "burst-1") == "running"
        assert env.azure.vm_power_state(RG, "burst-2") == "running"

        # Past the 50-minute minimum lifetime both are stopped.
        clock.advance(50 * 60)
        daemon.tick()
        daemon.wait_for_resizes(10)
        assert env.azure.vm_power_state(RG, "burst-1") == "deallocated"
        assert env.azure.vm_power_state(RG, "burst-2") == "deallocated"
        assert env.azure.vm_power_state(RG, "other") == "deallocated"  # not in the set
        starts = [w.path.rsplit("/", 2)[1] for w in env.azure_writes("/start")]
        assert starts == ["burst-2"]
    finally:
        adapters.close()


# ------------------------------------------------------------------------- shared quota


@pytest.mark.parametrize("teams_first", [True, False])
def test_a_burst_start_takes_no_headroom_whatever_the_priority(env: Env, teams_first: bool) -> None:
    """Azure counts the cores of allocated *and* deallocated VMs against quota
    (learn.microsoft.com/azure/virtual-machines/quotas), so starting a pre-provisioned burst
    node needs no headroom and never takes the Teams Connector's: both grow, in either order."""
    rid = env.azure.add_vmss(RG, "tc", capacity=1)
    env.azure.set_usage("westeurope", "cores", current=16, limit=24)  # 8 vCPUs free
    env.azure.set_usage("westeurope", "standardFSv2Family", current=12, limit=100)
    env.pexip.add_teams_proxy(7, "cvi-teams")
    env.pexip.add_teams_node("tc000000", call_count=36)  # wants 3 instances: +8 vCPUs
    tags = {"pexip-role": "burst"}
    env.azure.add_vm(RG, "burst-1", tags=tags)
    env.azure.add_vm(RG, "burst-2", tags=tags)
    env.pexip.add_node("always-1", max_hd_calls=40, media_load=100.0)  # 40 − 32: one node
    env.pexip.add_node("burst-1", max_hd_calls=20)
    env.pexip.add_node("burst-2", max_hd_calls=20)
    teams = teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams", priority=10)
    burst = burst_pool(priority=5 if teams_first else 20)
    daemon, adapters = env.daemon(env.config(teams, burst), ManualClock(T0))
    try:
        outcomes = daemon.tick()
        daemon.wait_for_resizes(10)
    finally:
        adapters.close()
    tc, nodes = one(outcomes, "tc"), one(outcomes, "burst")
    assert (tc.current, tc.desired, tc.reason) == (1, 3, "DesiredWithinRange")
    assert (nodes.current, nodes.desired, nodes.reason) == (0, 1, "DesiredWithinRange")
    assert env.azure.vm_power_state(RG, "burst-1") == "running"


def test_scarce_headroom_goes_by_priority_and_the_loser_is_named(env: Env) -> None:
    big = env.azure.add_vmss(RG, "big", capacity=1)
    small = env.azure.add_vmss(RG, "small", capacity=1)
    env.azure.set_usage("westeurope", "cores", current=12, limit=24)  # 12 vCPUs free
    env.azure.set_usage("westeurope", "standardFSv2Family", current=12, limit=100)
    env.pexip.add_teams_node("big000000", call_count=36, scaleset_id=big)  # wants +2: 8 vCPUs
    env.pexip.add_teams_node("small000000", call_count=36, scaleset_id=small)
    first = teams_pool(big, name="big", priority=10)
    second = teams_pool(small, name="small", priority=5)
    daemon, adapters = env.daemon(env.config(first, second), ManualClock(T0))
    try:
        outcomes = daemon.tick()
    finally:
        adapters.close()
    winner, loser = one(outcomes, "big"), one(outcomes, "small")
    assert (winner.current, winner.desired, winner.reason) == (1, 3, "DesiredWithinRange")
    assert (loser.current, loser.desired, loser.reason) == (1, 2, "QuotaLimited")
    detail = loser.decision.detail if loser.decision else ""
    assert "headroom 4 vCPUs" in detail and "cores in westeurope" in detail and "big +8" in detail


# ------------------------------------------------------------------------- bad Pexip answers


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 500, "body": "oops"}, "HTTP 500"),
        ({"status": 200, "body": "{not json"}, "malformed JSON"),
    ],
)
def test_bad_status_answers_hold_the_pool(env: Env, fault: dict[str, Any], expected: str) -> None:
    rid = env.azure.add_vmss(RG, "tc", capacity=3)
    for i in range(3):
        env.pexip.add_teams_node(f"tc00000{i}", call_count=0)
    # a Management Node that keeps failing (the start-up check reads teamsnode too)
    env.pexip.inject_fault("teamsnode", times=10, **fault)
    daemon, adapters = env.daemon(env.config(teams_pool(rid)), ManualClock(T0))
    try:
        (o,) = daemon.tick()
        assert (o.current, o.desired, o.reason, o.applied) == (3, 3, "MetricsMissing", False)
        assert expected in (o.decision.detail if o.decision else "")
        assert "teamsnode" in (o.decision.detail if o.decision else "")
        assert env.azure_writes() == []
    finally:
        adapters.close()


def test_a_node_missing_a_field_holds_and_is_named(env: Env) -> None:
    rid = env.azure.add_vmss(RG, "tc", capacity=3)
    for i in range(3):
        env.pexip.add_teams_node(f"tc00000{i}", call_count=0)
    env.pexip.drop_field("tc000001", "call_count")
    daemon, adapters = env.daemon(env.config(teams_pool(rid)), ManualClock(T0))
    try:
        (o,) = daemon.tick()
        assert (o.desired, o.reason) == (3, "MetricsMissing")
        assert "teamsnode 'tc000001': missing field 'call_count'" in (
            o.decision.detail if o.decision else ""
        )
        assert env.azure_writes() == []
    finally:
        adapters.close()


def test_unauthorised_management_node_holds_a_pexip_teams_pool(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = env.azure.add_vmss(RG, "tc", capacity=2)
    env.pexip.add_teams_proxy(7, "cvi-teams")
    monkeypatch.setenv("CVI_AUTOSCALER_PEXIP_PASSWORD", "wrong")
    pool = teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams")
    daemon, adapters = env.daemon(env.config(pool), ManualClock(T0))
    try:
        (o,) = daemon.tick()
        assert o.reason == "ObserveFailed" and "HTTP 401" in (o.error or "")
        assert "teams_proxy" in (o.error or "") and env.pexip.writes() == []
    finally:
        adapters.close()


# ------------------------------------------------------------------------- publishing


def test_pexip_counts_are_published_and_read_back_from_azure_monitor(env: Env) -> None:
    rid = env.azure.add_vmss(RG, "tc", capacity=2)
    env.pexip.add_teams_node("tc000000", call_count=7)
    env.pexip.add_teams_node("tc000001", call_count=2)
    config = env.config(teams_pool(rid), publish_metrics=True, publish_url=env.azure.url)
    daemon, adapters = env.daemon(config, ManualClock(T0))
    try:
        daemon.tick()
        (post,) = [w for w in env.azure.writes() if w.path.endswith("/metrics")]
        assert post.path == f"{rid}/metrics"
        assert post.headers.get("Authorization", "").startswith("Bearer ")
        base = post.body["data"]["baseData"]
        assert (base["namespace"], base["metric"], base["dimNames"]) == (
            "Pexip/CVI",
            "ActiveCalls",
            ["VMName"],
        )
        assert {s["dimValues"][0]: s["max"] for s in base["series"]} == {
            "tc000000": 7,
            "tc000001": 2,
        }
    finally:
        adapters.close()
    assert os.environ["CVI_AUTOSCALER_PEXIP_PASSWORD"] == "s3cret"


def test_drain_from_azure_monitor_split_by_vm_name(env: Env) -> None:
    """Without the Management Node: each instance's calls from the metric's VMName series."""
    import time
    from datetime import timedelta

    rid = env.azure.add_vmss(RG, "tc", capacity=3)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for vm, calls in {"tc_0": 6.0, "tc_1": 0.0, "tc_2": 0.0}.items():
        points = [(now - timedelta(minutes=9 - i), calls) for i in range(10)]
        env.azure.set_metric(rid, "Pexip/CVI", "ActiveCalls", points, dimension=("VMName", vm))
    pool = teams_pool(
        rid,
        drain=True,
        metric={
            "namespace": "Pexip/CVI",
            "name": "ActiveCalls",
            "published_elsewhere": True,  # per-VM calls as another cvi-autoscaler publishes them
            "filter": "VMName eq '*'",
            "window_minutes": 5,
            "lag_minutes": 2,
        },
    )

    class WallClock:
        def now(self) -> float:
            return time.time()

    adapters = build_adapters(env.config(pool), clock=WallClock())
    daemon = Daemon(
        config=env.config(pool),
        metrics=adapters.metrics,
        actuator=adapters.compute,
        quota=adapters.compute,
        clock=WallClock(),
    )
    try:
        (o,) = daemon.tick()
        daemon.wait_for_resizes(10)
    finally:
        adapters.close()
    assert (o.current, o.desired, o.reason) == (3, 1, "DesiredWithinRange")
    (delete,) = [w for w in env.azure_writes() if w.path.endswith("/delete")]
    assert sorted(delete.body["instanceIds"]) == ["1", "2"]
    assert env.azure.vmss_instance_ids(RG, "tc") == ["0"]


def test_the_backtest_drains_the_pools_that_drain_and_waits_for_idle_ones_on_vmss() -> None:
    from scaler.backtest.runner import scale_in_mode
    from tests.conftest import config_doc, pool_table

    vm_set = {"resource_group": "rg", "tag": "role=burst"}
    doc = config_doc(
        pool_table("plain"),
        pool_table("drained", metric={"source": "pexip"}),
        pool_table("teams", kind="pexip-teams", teams_proxy="t"),
        pool_table("burst", kind="vm-set", resource_id="", vm_set=vm_set),
        pexip={"url": "https://pexip.example.com"},
    )
    config = parse_config(doc, environ={})
    assert [scale_in_mode(p) for p in config.pools] == ["drop", "idle", "drain", "drain"]
