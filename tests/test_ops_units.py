"""Operations parts on their own: sd_notify datagrams, the state file, the HTTP endpoint, and the
daemon hooks (fencing, restart, reload) on the simulator."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from scaler.adapters.sim import ManualClock, SimCloud
from scaler.config import Config, parse_config
from scaler.core.types import PoolState
from scaler.daemon import Daemon
from scaler.errors import ConfigError
from scaler.health import CallMetrics, HttpEndpoint
from scaler.sdnotify import Notifier
from scaler.state import (
    InFlightRecord,
    PoolSnapshot,
    Snapshot,
    StateCorrupt,
    StateFile,
    StateStore,
    decode,
    encode,
)
from scaler.traces import Trace
from tests.conftest import config_doc, pool_table

START = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)


# -- sd_notify --------------------------------------------------------------------------------


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_notify_sends_datagrams_to_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with _receiver(path) as rx:
        n = Notifier({"NOTIFY_SOCKET": path})
        n.ready("leader; 1 pools")
        n.ready("again")  # READY is sent once
        n.watchdog()
        n.stopping("bye\nnow")
        got = [rx.recv(4096).decode() for _ in range(3)]
        n.close()
    assert got == ["READY=1\nSTATUS=leader; 1 pools", "WATCHDOG=1", "STOPPING=1\nSTATUS=bye now"]


def test_notify_supports_abstract_sockets() -> None:
    name = f"cvi-autoscaler-test-{os.getpid()}"
    with _receiver(b"\0" + name.encode()) as rx:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        n.status("hello")
        assert rx.recv(4096) == b"STATUS=hello"
        n.close()


def test_notify_without_socket_is_a_no_op_and_reads_the_watchdog() -> None:
    n = Notifier({})
    assert not n.enabled and n.send(READY="1") is False
    assert Notifier({"WATCHDOG_USEC": "20000000"}).watchdog_seconds == 20.0
    assert Notifier({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}).watchdog_seconds is None
    mine = {"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_seconds == 5.0


# -- the state document -------------------------------------------------------------------------


def _snapshot() -> Snapshot:
    state = PoolState(((10.0, 3), (40.0, 4)), ((40.0, 1),), 40.0, None)
    pool = PoolSnapshot(state, InFlightRecord(4, 40.0, "tok"), ({"instance": "3"},))
    return Snapshot(saved_at=50.0, writer="a:1", pools={"tc": pool})


def test_state_round_trips_and_is_written_atomically(tmp_path: Path) -> None:
    f = StateFile(tmp_path / "state")
    f.save(encode(_snapshot()))
    assert decode(f.load() or b"") == _snapshot()
    assert sorted(p.name for p in f.path.parent.iterdir()) == ["state.json"]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{", r"\(top\): Invalid JSON"),
        (b"[]", r"\(top\): Input should be an object"),
        (b'{"version": 9, "saved_at": 1, "pools": {}}', "version: unsupported, got 9"),
        (b'{"version": 1, "pools": 3}', "saved_at: Field required"),
    ],
)
def test_corrupt_state_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(StateCorrupt, match=why):
        decode(data)


def test_store_prefers_the_newest_and_survives_garbage(tmp_path: Path) -> None:
    class Shared:
        def __init__(self, data: bytes | None) -> None:
            self.data = data

        def load(self) -> bytes | None:
            return self.data

        def save(self, data: bytes) -> None:
            self.data = data

    local = StateFile(tmp_path)
    local.path.write_bytes(b"garbage")
    newer = Snapshot(saved_at=99.0, writer="b:2", pools={})
    store = StateStore(local=local, shared=Shared(encode(newer)))
    assert store.load() == newer
    store = StateStore(local=local, shared=Shared(None))
    assert store.load() is None


# -- the daemon's hooks on the simulator ------------------------------------------------------


def _config(**pool_over: Any) -> Config:
    return parse_config(config_doc(pool_table(**pool_over)), environ={})


def _sim(
    calls: list[float | None], config: Config, **kw: Any
) -> tuple[Daemon, SimCloud, ManualClock]:
    clock = ManualClock(START.timestamp() + 10 * 60)
    trace = Trace(start=START, step_seconds=60, pools=("tc",), calls={"tc": calls}, length=180)
    cloud = SimCloud(config, trace, clock=clock)
    # On the simulator the manual clock is also the monotonic one: health's tick age is read
    # from the monotonic clock (a wall-clock step must not fake it).
    daemon = Daemon(
        config=config,
        metrics=cloud,
        actuator=cloud,
        quota=cloud,
        clock=clock,
        **{"monotonic": clock.now, **kw},
    )
    return daemon, cloud, clock


class Lease:
    def __init__(self, leading: bool) -> None:
        self.leading = leading

    @property
    def role(self) -> str:
        return "leader" if self.leading else "standby"

    def is_leader(self) -> bool:
        return self.leading


def test_a_standby_decides_but_never_writes() -> None:
    lease = Lease(False)
    daemon, cloud, clock = _sim([120.0] * 180, _config(), leader=lease)
    (o,) = daemon.tick()
    assert (o.desired, o.applied) == (5, False) and cloud.pools["tc"].resizes == 0
    lease.leading = True
    clock.advance(30)
    (o,) = daemon.tick()
    assert (o.desired, o.applied) == (5, True) and cloud.pools["tc"].resizes == 1


class Shared:
    def __init__(self) -> None:
        self.data: bytes | None = None

    def load(self) -> bytes | None:
        return self.data

    def save(self, data: bytes) -> None:
        self.data = data


def test_a_new_leader_adopts_its_predecessors_scale_events() -> None:
    shared = Shared()
    config = _config()
    first, cloud, clock = _sim([120.0] * 180, config, leader=Lease(True))
    first.store = StateStore(shared=shared)
    (o,) = first.tick()
    assert o.applied and shared.data is not None
    standby_lease = Lease(False)
    second = Daemon(
        config=config,
        metrics=cloud,
        actuator=cloud,
        quota=cloud,
        clock=clock,
        leader=standby_lease,
        store=StateStore(shared=shared),
    )
    second.tick()
    assert second.states["tc"].scale_events == ()
    standby_lease.leading = True  # the first one died; the lease is ours
    clock.advance(5)
    second.tick()
    assert second.states["tc"].scale_events == first.states["tc"].scale_events
    assert second.states["tc"].last_scale_up == first.states["tc"].last_scale_up


def test_restart_keeps_cooldowns_and_unreadable_state_holds_one_window(tmp_path: Path) -> None:
    config = _config(behavior={"scale_down": {"stabilization_seconds": 600}})
    store = StateStore(local=StateFile(tmp_path))
    daemon, cloud, clock = _sim([120.0] * 20 + [10.0] * 160, config, store=store)
    daemon.restore()  # nothing saved yet: safe defaults
    (o,) = daemon.tick()
    assert o.applied and (o.current, o.desired) == (1, 5)
    saved = decode(StateFile(tmp_path).load() or b"")
    assert saved.pools["tc"].state.scale_events == ((clock.now(), 4),)

    # A restart: the rate limit still remembers the scale-up made a moment ago.
    again, _, _ = _sim([120.0] * 180, config, store=store)
    again.clock = clock
    again.actuator = again.metrics = again.quota = cloud
    again.restore()
    assert again.states["tc"].scale_events == saved.pools["tc"].state.scale_events

    # Unreadable state: discarded, and no scale-in for one down-stabilisation window.
    StateFile(tmp_path).path.write_text("{not json")
    cloud.pools["tc"].busy_until = 0
    clock.advance(30 * 60)  # the load is now low: 10 calls → 1 instance wanted
    fresh = Daemon(
        config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock, store=store
    )
    fresh.restore()
    (o,) = fresh.tick()
    assert (o.current, o.desired, o.reason) == (5, 5, "ScaleDownStabilized")
    clock.advance(601)
    (o,) = fresh.tick()
    assert o.desired < 5 and o.applied


def test_reload_applies_a_valid_config_and_rejects_a_bad_one() -> None:
    configs: list[Config | Exception] = [
        _config(max=3),
        ConfigError(["pools[0].max: must be >= min (1), got 0"]),
    ]

    def reload() -> Config:
        nxt = configs.pop(0)
        if isinstance(nxt, Exception):
            raise nxt
        return nxt

    daemon, _, clock = _sim([120.0] * 180, _config(), reload_config=reload)
    daemon.request_reload()
    daemon.check_reload()
    (o,) = daemon.tick()
    assert (o.desired, o.reason) == (3, "TooManyInstances")
    daemon.request_reload()
    daemon.check_reload()
    clock.advance(120)
    (o,) = daemon.tick()
    assert daemon.config.pools[0].max == 3


# -- the HTTP endpoint --------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[Daemon, ManualClock, str]]:
    daemon, _, clock = _sim([120.0] * 180, _config(), leader=Lease(True))
    registry = CollectorRegistry()
    CallMetrics(registry)("vmss.get", "ok", 0.12)
    http = HttpEndpoint(daemon, registry=registry, bind="127.0.0.1", port=0)
    http.start()
    try:
        yield daemon, clock, f"http://127.0.0.1:{http.port}"
    finally:
        http.stop()


def _get(url: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_http_endpoint_reports_health_readiness_metrics_and_status(
    served: tuple[Daemon, ManualClock, str],
) -> None:
    daemon, clock, url = served
    assert _get(url + "/readyz")[0] == 503  # no tick yet
    daemon.tick()
    assert _get(url + "/healthz")[0] == 200
    code, body = _get(url + "/readyz")
    assert code == 200 and json.loads(body)["role"] == "leader"
    status = json.loads(_get(url + "/status")[1])
    assert status["pools"][0]["reason"] == "ScaleUpLimit" and status["pools"][0]["desired"] == 5
    families = {f.name: f for f in text_string_to_metric_families(_get(url + "/metrics")[1])}
    desired = families["cvi_autoscaler_pool_desired_instances"].samples
    assert [(s.labels, s.value) for s in desired] == [({"pool": "tc"}, 5.0)]
    reasons = {
        s.labels["reason"]: s.value for s in families["cvi_autoscaler_pool_decision_reason"].samples
    }
    assert reasons["ScaleUpLimit"] == 1.0 and sum(reasons.values()) == 1.0
    calls = families["cvi_autoscaler_azure_calls"].samples
    assert any(s.labels == {"operation": "vmss.get", "outcome": "ok"} for s in calls)
    assert families["cvi_autoscaler_leader"].samples[0].value == 1.0
    clock.advance(3 * 30 + 1)  # no tick for more than 3 intervals
    assert _get(url + "/healthz")[0] == 503


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_http_endpoint_is_read_only(served: tuple[Daemon, ManualClock, str], method: str) -> None:
    _, _, url = served
    assert _get(url + "/status", method)[0] == 405
    assert _get(url + "/nothing")[0] == 404
