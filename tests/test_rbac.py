"""deploy/azure-role.json and deploy/azure-role-ha.json grant exactly what the daemon uses.

Every request the HTTPS fake of Azure serves is mapped to the RBAC operation that authorises it
(``tests.fakeazure.RBAC_OPERATIONS``, from Microsoft's resource provider operations lists); blob
requests to Azurite are mapped the same way (``tests.rbac.BLOB_OPERATIONS``). The tests here
drive one representative run of every code path that talks to Azure (scale set scale-out, drain-
aware scale-in, pexip-teams, vm-set start and deallocate, metric publishing, the competing-
scaler check, the leader lease and shared state), so they are self-contained: the role must
grant every operation those runs needed and nothing they did not. Whatever else ran in the
session is checked by ``tests/conftest.py`` at the session's end, over the operations every
pytest-xdist worker collected (``tests/rbac.py``): every operation any FakeAzure served is
granted, and no request reached a route the RBAC table does not name.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scaler.adapters.azure_lease import BlobLeader, BlobSharedState
from scaler.adapters.sim import ManualClock
from scaler.config import HaConfig
from scaler.daemon import Daemon
from scaler.wiring import build_adapters
from tests.fakeazure import FakeAzure, rbac_operation
from tests.fakepexip import FakePexip
from tests.rbac import blob_operation, granted
from tests.test_dry_run_observer import RecordingProxy, _through
from tests.test_pexip_integration import RG, T0, Env, burst_pool, teams_pool


class WallClock:
    def now(self) -> float:
        return time.time()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("CVI_AUTOSCALER_STATIC_TOKEN", "test-token")
    monkeypatch.setenv("CVI_AUTOSCALER_PEXIP_PASSWORD", "s3cret")
    with FakeAzure(tmp_path) as azure, FakePexip(tmp_path) as pexip:
        yield Env(azure, pexip, tmp_path)


def _run(env: Env, pools: list[dict[str, Any]], clock: Any, ticks: int = 1, **pexip: Any) -> None:
    config = env.config(*pools, **pexip)
    adapters = build_adapters(config, clock=clock)
    try:
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=clock,
        )
        for i in range(ticks):
            if i and isinstance(clock, ManualClock):
                clock.advance(60 if i < ticks - 1 else 3600)
            daemon.tick()
            assert all(err is None for err in daemon.wait_for_resizes(10).values())
    finally:
        adapters.close()


def _every_path(env: Env) -> None:
    """One run of each way the daemon talks to Azure Resource Manager and Azure Monitor."""
    azure, pexip = env.azure, env.pexip
    # vmss, scaled out on a metric read from Azure Monitor (metrics:getBatch, quota, SKUs, PATCH)
    plain = azure.add_vmss(RG, "plain", capacity=1)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    points = [(now - timedelta(minutes=9 - i), 40.0) for i in range(10)]
    azure.set_metric(plain, "Pexip/CVI", "ActiveCalls", points, dimension=("VMName", "plain_0"))
    metric = {
        "namespace": "Pexip/CVI",
        "name": "ActiveCalls",
        "published_elsewhere": True,
        "filter": "VMName eq '*'",
        "lag_minutes": 2,
    }
    # its quota family comes from its VM size (the Resource SKUs list)
    _run(env, [teams_pool(plain, name="plain", metric=metric, quota_family="")], WallClock())
    assert azure.vmss_capacity(RG, "plain") > 1

    # drain-aware vmss from Pexip's counts (instance list, protection, deleteInstances), and the
    # counts republished to Azure Monitor (custom-metrics ingestion)
    tc = azure.add_vmss(RG, "tc", capacity=3)
    for i, calls in enumerate([5, 0, 4]):
        pexip.add_teams_node(f"tc00000{i}", call_count=calls, scaleset_id="tc")
    _run(env, [teams_pool(tc)], ManualClock(T0), publish_metrics=True, publish_url=azure.url)
    assert azure.vmss_instance_ids(RG, "tc") == ["0", "2"]

    # pexip-teams: the scale set is read, Pexip is written
    teams = azure.add_vmss(RG, "tt", capacity=1)
    pexip.add_teams_proxy(7, "cvi-teams", min_number_of_instances=1)
    pool = teams_pool(teams, name="tt", kind="pexip-teams", teams_proxy="cvi-teams")
    _run(env, [pool], ManualClock(T0))

    # vm-set: a deallocated node started, a running one without calls deallocated
    tags = {"pexip-role": "burst"}
    azure.add_vm(RG, "burst-1", power_state="running", tags=tags)
    azure.add_vm(RG, "burst-2", tags=tags)
    pexip.add_node("always-1", max_hd_calls=40, media_load=100.0)
    pexip.add_node("burst-1", max_hd_calls=20, media_load=50.0)
    pexip.add_node("burst-2", max_hd_calls=20)
    clock = ManualClock(T0)
    config = env.config(burst_pool())
    adapters = build_adapters(config, clock=clock)
    try:
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=clock,
        )
        daemon.tick()
        daemon.wait_for_resizes(10)
        assert azure.vm_power_state(RG, "burst-2") == "running"
        pexip.set_media_load("always-1", 10.0)
        for _ in range(4):
            clock.advance(60)
            daemon.tick()
        clock.advance(50 * 60)
        daemon.tick()
        daemon.wait_for_resizes(10)
        assert azure.vm_power_state(RG, "burst-1") == "deallocated"
    finally:
        adapters.close()

    # vm-set where the role is assigned on the resource group only: the subscription's status
    # list is refused, so each VM's power state comes from its instance view
    azure.inject_fault(
        "GET",
        r"^/subscriptions/[^/]+/providers/Microsoft\.Compute/virtualMachines$",
        status=403,
        code="AuthorizationFailed",
        times=5,
    )
    adapters = build_adapters(config, clock=clock)
    try:
        Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=clock,
        ).tick()
    finally:
        adapters.close()


def test_the_azure_role_grants_exactly_what_the_daemon_uses(env: Env) -> None:
    _every_path(env)
    requests = env.azure.requests
    unmapped = [
        f"{r.method} {r.path}" for r in requests if rbac_operation(r.method, r.path) is None
    ]
    assert unmapped == []
    used = {str(rbac_operation(r.method, r.path)).lower() for r in requests}
    role = granted("azure-role.json")
    assert used - role == set(), "the role lacks operations the daemon needs"
    assert role - used == set(), "the role grants operations no request needed"


def test_the_ha_role_grants_exactly_what_the_lease_and_shared_state_use(
    azurite: str,
) -> None:
    proxy = RecordingProxy(re.search(r"BlobEndpoint=(http://[^/;]+)", azurite)[1])  # type: ignore[index]
    ha = HaConfig(
        enabled=True,
        connection_string=_through(azurite, proxy),
        container=f"rbac-{uuid.uuid4().hex[:8]}",
        lease_seconds=15,
    )
    leader = BlobLeader(ha)
    try:
        assert leader.step()  # create container and blob, acquire, label
        assert leader.step()  # renew
        assert leader.holder() == leader.identity
        shared = BlobSharedState(leader, ha.state_blob)
        shared.save(b"{}")
        assert shared.load() == b"{}"
        leader.stop(release=True)
    finally:
        leader.close()
        proxy.close()
    used: set[str] = set()
    for method, _path, query, _action in proxy.seen:
        operation = blob_operation(method, query)
        assert operation is not None, f"no RBAC mapping for blob request {method} {query}"
        used.add(operation.lower())
    role = granted("azure-role-ha.json")
    assert used - role == set(), "the HA role lacks operations the lease needs"
    assert role - used == set(), "the HA role grants operations no lease request needed"
