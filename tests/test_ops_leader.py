"""Leader election on a real Blob lease: Azurite (the npm package, started here on a free loopback
port) for the lease, the HTTPS fake of Azure for the scale set, the real SDK clients for both."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobLeaseClient, BlobServiceClient

from scaler.adapters.azure_lease import BlobLeader, BlobSharedState
from scaler.config import Config, HaConfig, parse_config
from scaler.daemon import Daemon, PoolOutcome
from scaler.state import StateStore
from scaler.wiring import build_adapters
from tests.conftest import HEALTHY_WAIT, config_doc, pool_table, vmss_id
from tests.fakeazure import FakeAzure

LEASE = 15  # Azure's shortest lease, seconds


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeAzure]:
    with FakeAzure(tmp_path / "azure") as azure:
        azure.add_vmss("cvi", "tc", capacity=3)
        set_load(azure, 100.0)
        yield azure


def set_load(fake: FakeAzure, calls: float) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    points = [(now + timedelta(minutes=m), calls) for m in range(-30, 30)]
    fake.set_metric(vmss_id("tc"), "Pexip/CVI", "ActiveCalls", points)


class Replica:
    """One daemon with its own adapters, lease and state store, as ``run`` wires them."""

    def __init__(self, config: Config, ha: HaConfig, clock: _Wall | None = None) -> None:
        self.clock = clock = clock or _Wall()
        self.adapters = build_adapters(config, clock=clock)  # as run wires them
        self.lease = BlobLeader(ha)
        self.store = StateStore(shared=BlobSharedState(self.lease, ha.state_blob))
        self.applied: list[float] = []
        self.daemon = Daemon(
            config=config,
            metrics=self.adapters.metrics,
            actuator=self.adapters.compute,
            quota=self.adapters.compute,
            clock=clock,
            leader=self.lease,
            store=self.store,
            identity=ha.identity,
            on_tick=self._seen,
        )
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _seen(self, now: float, outcomes: Sequence[PoolOutcome]) -> None:
        if any(o.applied for o in outcomes):
            self.applied.append(time.monotonic())

    def run(self) -> None:
        self.thread = threading.Thread(target=self.daemon.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.lease.stop(release=True)
        self.lease.close()
        self.adapters.close()


class _Wall:
    """The wall clock, which a test may step forward instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def pair(
    azurite: str, fake: FakeAzure, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Replica, Replica, HaConfig]]:
    monkeypatch.setenv("CVI_AUTOSCALER_STATIC_TOKEN", "x")
    doc = config_doc(
        pool_table(
            behavior={"scale_up": {"period_seconds": 1}},
            metric={
                "namespace": "Pexip/CVI",
                "name": "ActiveCalls",
                "published_elsewhere": True,
                "lag_minutes": 1,
            },
        ),
        # a healthy read's budget, not the default 80 % of the one-second interval
        daemon={
            "interval_seconds": 1,
            "tick_deadline_seconds": HEALTHY_WAIT,
            "shutdown_deadline_seconds": 5,
        },
    )
    doc["azure"].update(
        resource_manager_url=fake.url,
        metrics_url=fake.url,
        credential="static-token",
        ca_bundle=fake.ca_file,
        polling_interval_seconds=0,
        retry_total=0,
    )
    container = f"ha-{uuid.uuid4().hex[:12]}"
    ha: dict[str, Any] = {
        "enabled": True,
        "connection_string": azurite,
        "container": container,
        "lease_seconds": LEASE,
    }
    doc["ha"] = ha
    config = parse_config(doc, environ={})
    # One wall clock for both replicas' decisions: tests that tick by hand step it forward (a
    # rate-limit period passes without waiting for it); those that run the loop leave it be.
    clock = _Wall()
    a = Replica(config, HaConfig(**ha, identity="a"), clock)
    b = Replica(config, HaConfig(**ha, identity="b"), clock)
    try:
        yield a, b, config.ha
    finally:
        a.close()
        b.close()


def test_exactly_one_of_two_replicas_actuates(
    pair: tuple[Replica, Replica, HaConfig], fake: FakeAzure
) -> None:
    a, b, _ha = pair
    a.lease.start()
    b.lease.start()
    assert (a.lease.role, b.lease.role) == ("leader", "standby")
    for _ in range(4):
        for replica in (b, a):
            replica.daemon.tick()
            assert all(err is None for err in replica.daemon.wait_for_resizes(20).values())
        a.clock.advance(2)  # past the scale-up period (1 s) of the last resize
    assert a.applied and not b.applied
    patches = [w for w in fake.writes() if w.method == "PATCH"]
    assert len(patches) == len(a.applied) >= 1
    assert fake.vmss_capacity("cvi", "tc") == 9  # ceil(100 / (15 × 0.8))
    assert (a.daemon.ticker.last["tc"].desired, b.daemon.ticker.last["tc"].desired) == (9, 9)

    shared = b.store.load_shared()  # the leader's state, in the blob next to the lease
    assert shared is not None and shared.writer == "a"
    assert len(shared.pools["tc"].state.scale_events) == len(a.applied)


def test_the_standby_takes_over_within_a_lease_period_when_the_leader_dies(
    pair: tuple[Replica, Replica, HaConfig], fake: FakeAzure
) -> None:
    a, b, ha = pair
    a.lease.start()
    b.lease.start()
    a.run()
    b.run()
    deadline = time.monotonic() + HEALTHY_WAIT
    while fake.vmss_capacity("cvi", "tc") != 9 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fake.vmss_capacity("cvi", "tc") == 9 and not b.applied

    killed = time.monotonic()
    a.lease.stop(release=False)  # as if the process died: the lease just runs out
    a.stop.set()
    set_load(fake, 200.0)  # the standby has work to do as soon as it leads
    limit = ha.lease_seconds + ha.renew_every / 2 + 2 * 1.0 + 1.0
    while not b.applied and time.monotonic() - killed < limit + 5:
        time.sleep(0.1)
    assert b.applied, "the standby never took over"
    took = b.applied[0] - killed
    print(f"takeover after {took:.1f} s (lease {ha.lease_seconds} s)")
    assert took <= limit
    assert b.lease.role == "leader"
    deadline = time.monotonic() + HEALTHY_WAIT
    while fake.vmss_capacity("cvi", "tc") != 17 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fake.vmss_capacity("cvi", "tc") == 17


def test_a_leader_whose_renewal_fails_stops_writing(
    pair: tuple[Replica, Replica, HaConfig], fake: FakeAzure, azurite: str
) -> None:
    a, _, ha = pair
    assert a.lease.step() and a.lease.is_leader()
    (o,) = a.daemon.tick()
    assert o.applied
    assert all(err is None for err in a.daemon.wait_for_resizes(20).values())
    writes = len(fake.writes())
    a.clock.advance(2)  # past the scale-up period: only the lease can hold what follows

    # Someone breaks the lease (an operator, or the storage account failing over).
    service = BlobServiceClient.from_connection_string(azurite)
    blob = service.get_container_client(ha.container).get_blob_client(ha.blob)
    BlobLeaseClient(blob).break_lease(lease_break_period=0)
    assert a.lease.step() is False  # the renewal fails …
    assert not a.lease.is_leader() and a.lease.role == "standby"  # … and leadership ends at once
    set_load(fake, 200.0)
    for _ in range(3):
        (o,) = a.daemon.tick()
        assert not o.applied and o.desired > o.current
        a.clock.advance(2)
    assert len(fake.writes()) == writes
    service.close()


def test_leadership_is_trusted_only_inside_the_lease(azurite: str) -> None:
    now = [1000.0]
    ha = HaConfig(
        enabled=True,
        connection_string=azurite,
        container=f"ha-{uuid.uuid4().hex[:12]}",
        lease_seconds=LEASE,
        margin_seconds=3,
    )
    lease = BlobLeader(ha, monotonic=lambda: now[0])
    try:
        assert lease.step() and lease.is_leader()
        now[0] += LEASE - 3 - 0.1
        assert lease.is_leader()
        now[0] += 0.2  # no renewal seen in time: not leader, without asking the network
        assert not lease.is_leader()
    finally:
        lease.stop(release=True)
        lease.close()


# -- once and the lease (issue 10, finding 7) ------------------------------------------------


def _once_config(path: Path, fake: FakeAzure, azurite: str, container: str) -> None:
    path.write_text(
        f"""
[azure]
subscription_id = "{fake.subscription_id}"
location = "westeurope"
resource_manager_url = "{fake.url}"
metrics_url = "{fake.url}"
credential = "static-token"
ca_bundle = "{fake.ca_file}"
polling_interval_seconds = 0
retry_total = 0

[daemon]
once_wait_seconds = 5

[ha]
enabled = true
connection_string = "{azurite}"
container = "{container}"
lease_seconds = {LEASE}
identity = "once-here"

[[pools]]
name = "tc"
resource_id = "{vmss_id("tc")}"
vcpus_per_instance = 4
quota_family = "standardFSv2Family"
min = 1
max = 20
[pools.metric]
namespace = "Microsoft.Compute/virtualMachineScaleSets"
name = "Percentage CPU"
meaning = "percent_of_capacity"
lag_minutes = 1
[[pools.policies]]
type = "target-tracking"
""",
        encoding="utf-8",
    )


def _busy_cpu(fake: FakeAzure) -> None:
    """A platform metric (it exists without a publisher): the scale set at 100 % CPU."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    points = [(now + timedelta(minutes=m), 100.0) for m in range(-30, 30)]
    fake.set_metric(
        vmss_id("tc"),
        "Microsoft.Compute/virtualMachineScaleSets",
        "Percentage CPU",
        points,
        unit="Percent",
    )


def _once(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CVI_AUTOSCALER")}
    env["CVI_AUTOSCALER_STATIC_TOKEN"] = "x"
    return subprocess.run(
        [sys.executable, "-m", "scaler", "once", "--config", str(path), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lease_state(azurite: str, container: str) -> str | None:
    service = BlobServiceClient.from_connection_string(azurite)
    try:
        blob = service.get_container_client(container).get_blob_client("leader")
        if not blob.exists():
            return None
        return str(blob.get_blob_properties().lease.state)
    finally:
        service.close()


def test_once_writes_nothing_while_another_replica_leads(
    azurite: str, fake: FakeAzure, tmp_path: Path
) -> None:
    container = f"ha-{uuid.uuid4().hex[:12]}"
    config = tmp_path / "once.toml"
    _once_config(config, fake, azurite, container)
    _busy_cpu(fake)
    other = BlobLeader(
        HaConfig(
            enabled=True,
            connection_string=azurite,
            container=container,
            lease_seconds=LEASE,
            identity="prod-a",
        )
    )
    try:
        assert other.step()  # the production daemon leads
        done = _once(config)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "another replica leads (prod-a); once wrote nothing" in done.stderr
        assert fake.writes() == []
        # prod-a still holds its lease: it renews it (Azure renews an expired lease for the
        # same lease ID unless another acquired the blob since), so once never took it
        assert other.step() and other.is_leader()
        assert _lease_state(azurite, container) == "leased"
    finally:
        other.stop(release=True)
        other.close()


def test_once_takes_the_lease_writes_and_releases_it(
    azurite: str, fake: FakeAzure, tmp_path: Path
) -> None:
    container = f"ha-{uuid.uuid4().hex[:12]}"
    config = tmp_path / "once.toml"
    _once_config(config, fake, azurite, container)
    _busy_cpu(fake)
    fake.set_usage("westeurope", "cores", current=12, limit=400)
    fake.set_usage("westeurope", "standardFSv2Family", current=12, limit=400)
    done = _once(config, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [w.method for w in fake.writes()] == ["PATCH"]
    assert _lease_state(azurite, container) == "available"  # released at the end


def test_once_dry_run_never_touches_the_lease(
    azurite: str, fake: FakeAzure, tmp_path: Path
) -> None:
    container = f"ha-{uuid.uuid4().hex[:12]}"
    config = tmp_path / "once.toml"
    _once_config(config, fake, azurite, container)
    _busy_cpu(fake)
    done = _once(config, "--dry-run", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert fake.writes() == []
    service = BlobServiceClient.from_connection_string(azurite)
    try:  # not even the container: no attempt was made
        assert not service.get_container_client(container).exists()
    finally:
        service.close()
