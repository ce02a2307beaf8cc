"""The daemon as operators run it: a real ``python -m scaler run`` process against the HTTPS fake
of Azure, with its HTTP endpoint, systemd notifications, SIGHUP and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scaler.adapters.sim import SimCloud
from scaler.config import parse_config
from scaler.daemon import Daemon as InProcess
from scaler.state import StateFile, StateStore
from scaler.traces import Trace
from tests.conftest import HEALTHY_WAIT, config_doc, pool_table
from tests.fakeazure import FakeAzure

RG = "cvi"
VMSS = "tc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vmss_id(fake: FakeAzure) -> str:
    return (
        f"/subscriptions/{fake.subscription_id}/resourceGroups/{RG}/providers/"
        f"Microsoft.Compute/virtualMachineScaleSets/{VMSS}"
    )


def write_config(path: Path, fake: FakeAzure, state: Path, port: int, *, max_: int = 20) -> None:
    path.write_text(
        f"""
[daemon]
interval_seconds = 1
# a healthy read's budget, not the default 80 % of the one-second interval: load must not
# turn a healthy read into ObserveTimedOut
tick_deadline_seconds = {HEALTHY_WAIT}
shutdown_deadline_seconds = 5
state_dir = "{state}"
log_format = "json"

[azure]
subscription_id = "{fake.subscription_id}"
location = "westeurope"
resource_manager_url = "{fake.url}"
metrics_url = "{fake.url}"
credential = "static-token"
ca_bundle = "{fake.ca_file}"
polling_interval_seconds = 0
retry_total = 0
timeout_seconds = 5

[http]
enabled = true
port = {port}

[[pools]]
name = "tc"
resource_id = "{vmss_id(fake)}"
vcpus_per_instance = 4
quota_family = "standardFSv2Family"
min = 1
max = {max_}
[pools.metric]
namespace = "Pexip/CVI"
name = "ActiveCalls"
published_elsewhere = true
lag_minutes = 1
[[pools.policies]]
type = "target-tracking"
""",
        encoding="utf-8",
    )


class Daemon:
    """A daemon subprocess, its JSON log and its endpoint."""

    def __init__(self, config: Path, log: Path, port: int, env: dict[str, str]) -> None:
        self.log_path = log
        self.url = f"http://127.0.0.1:{port}"
        self.out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scaler", "run", "--config", str(config)],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def wait_for(self, check: Callable[[], Any], timeout: float = HEALTHY_WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"timed out; log:\n{self.log_path.read_text()[-4000:]}")

    def event(self, name: str, after: int = 0, timeout: float = HEALTHY_WAIT) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            found = [e for e in self.events()[after:] if e.get("event") == name]
            return found[0] if found else None

        return dict(self.wait_for(find, timeout))

    def get(self, path: str, method: str = "GET") -> tuple[int, str]:
        req = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            self.out.close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeAzure]:
    with FakeAzure(tmp_path / "azure") as azure:
        azure.add_vmss(RG, VMSS, capacity=3)
        azure.set_usage("westeurope", "cores", current=12, limit=400)
        azure.set_usage("westeurope", "standardFSv2Family", current=12, limit=400)
        set_load(azure, 100.0)
        yield azure


def set_load(fake: FakeAzure, calls: float) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    points = [(now + timedelta(minutes=m), calls) for m in range(-30, 30)]
    fake.set_metric(vmss_id(fake), "Pexip/CVI", "ActiveCalls", points)


@pytest.fixture
def setup(tmp_path: Path, fake: FakeAzure) -> dict[str, Any]:
    port = free_port()
    config = tmp_path / "cvi-autoscaler.toml"
    state = tmp_path / "state"
    write_config(config, fake, state, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CVI_AUTOSCALER")}
    env.update({"CVI_AUTOSCALER_STATIC_TOKEN": "x", "PYTHONUNBUFFERED": "1"})
    return {"port": port, "config": config, "state": state, "env": env, "tmp": tmp_path}


def start(setup: dict[str, Any], name: str, **env: str) -> Daemon:
    return Daemon(
        setup["config"], setup["tmp"] / f"{name}.log", setup["port"], {**setup["env"], **env}
    )


def test_endpoint_notifications_and_reload(setup: dict[str, Any], fake: FakeAzure) -> None:
    sock_path = str(setup["tmp"] / "notify.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(sock_path)
    rx.settimeout(HEALTHY_WAIT)
    d = start(setup, "a", NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="1000000")
    try:
        ready = rx.recv(4096).decode()
        assert ready.startswith("READY=1\nSTATUS=leader; 1 pools; tc 3->")
        messages = [rx.recv(4096).decode() for _ in range(3)]
        assert any(m.startswith("WATCHDOG=1") for m in messages)

        assert d.wait_for(lambda: d.get("/healthz")[0] == 200)
        assert d.wait_for(lambda: d.get("/readyz")[0] == 200)
        status = json.loads(d.get("/status")[1])
        (pool,) = status["pools"]
        assert status["role"] == "leader" and pool["pool"] == "tc" and pool["calls"] == 100.0
        assert pool["reason"] and pool["steps"]
        families = {f.name: f for f in text_string_to_metric_families(d.get("/metrics")[1])}
        assert families["cvi_autoscaler_ticks"].samples[0].value >= 1
        calls = {
            (s.labels["operation"], s.labels["outcome"])
            for s in families["cvi_autoscaler_azure_calls"].samples
        }
        assert {("vmss.get", "ok"), ("usage.list", "ok")} <= calls
        headroom = families["cvi_autoscaler_quota_headroom_vcpus"].samples
        assert {s.labels["quota"] for s in headroom} == {"cores", "standardFSv2Family"}
        assert d.get("/status", "POST")[0] == 405

        # SIGHUP with a good config: taken at the next tick.
        write_config(setup["config"], fake, setup["state"], setup["port"], max_=4)
        mark = len(d.events())
        d.proc.send_signal(signal.SIGHUP)
        d.event("config.reloaded", after=mark)
        d.wait_for(lambda: json.loads(d.get("/status")[1])["pools"][0]["max"] == 4)

        # SIGHUP with a bad one: rejected, the running one stays.
        setup["config"].write_text(
            setup["config"].read_text().replace("max = 4", "max = 0"), encoding="utf-8"
        )
        mark = len(d.events())
        d.proc.send_signal(signal.SIGHUP)
        rejected = d.event("config.reload_rejected", after=mark)
        assert any("pools[0].max" in p for p in rejected["problems"])
        ticks = json.loads(d.get("/status")[1])["ticks"]
        # it goes on ticking with the running config (two more ticks: one began after the
        # rejection)
        d.wait_for(lambda: json.loads(d.get("/status")[1])["ticks"] >= ticks + 2)
        assert d.proc.poll() is None
        assert json.loads(d.get("/status")[1])["pools"][0]["max"] == 4

        assert d.stop() == 0
        rest = []
        rx.settimeout(0.5)
        try:
            while True:
                rest.append(rx.recv(4096).decode())
        except TimeoutError:
            pass
        assert any(m.startswith("STOPPING=1") for m in rest)
    finally:
        d.stop()
        rx.close()


def test_sigterm_during_a_resize_exits_in_time_and_the_next_start_resumes_it(
    setup: dict[str, Any], fake: FakeAzure
) -> None:
    fake.lro_polls = 10**6  # the PATCH stays in flight
    fake.retry_after = 1
    d = start(setup, "first")
    try:
        applied = d.event("scale.applied")
        assert applied["current"] == 3 and applied["desired"] == 7
        # at least one more tick with the resize in flight
        d.wait_for(
            lambda: any(
                e.get("event") == "decision.made" and e.get("reason") == "ResizeInFlight"
                for e in d.events()
            )
        )
        began = time.monotonic()
        assert d.stop() == 0
        took = time.monotonic() - began
        print(f"SIGTERM with a resize in flight: exited after {took:.2f} s")
        assert took < 5 + 2, took  # within the shutdown deadline
    finally:
        d.stop()
    stopped = [e for e in d.events() if e.get("event") == "daemon.stopped"]
    assert stopped and stopped[0]["resizes_in_flight"] == ["tc"]
    saved = json.loads((setup["state"] / "state.json").read_text())
    inflight = saved["pools"]["tc"]["inflight"]
    assert inflight["target"] == 7 and inflight["token"]
    writes = len(fake.writes())

    e = start(setup, "second")
    try:
        resumed = e.event("scale.resumed")
        assert resumed["desired"] == 7
        decision = e.event("decision.made")
        assert decision["reason"] == "ResizeInFlight"
        assert len(fake.writes()) == writes  # resumed, not sent again
        fake.complete_operations()
        e.event("scale.completed")
    finally:
        assert e.stop() == 0


def test_a_port_already_in_use_is_a_clear_config_error(setup: dict[str, Any]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", setup["port"]))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "scaler", "run", "--config", str(setup["config"])],
            env=setup["env"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"http.port: cannot listen on 127.0.0.1:{setup['port']}" in done.stderr


# -- the loop on its own clock (issue 11: finding 8, and finding 2's SIGTERM part) ------------
# In process, on the simulator; the adapter blocks on demand like a call that never returns.


class SteppedWall:
    """The ``Clock`` port: the system's wall time, plus the steps an operator or NTP made."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


class StuckBlob:
    """``SharedState`` (the state blob) whose write blocks while ``stuck`` is set, until
    ``release``: a slow call inside the tick that no read deadline covers."""

    def __init__(self) -> None:
        self.stuck = threading.Event()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.saved: bytes | None = None

    def load(self) -> bytes | None:
        return None

    def save(self, data: bytes) -> None:
        if self.stuck.is_set():
            self.entered.set()
            self.release.wait()
        self.saved = data


class Leading:
    role = "leader"

    def is_leader(self) -> bool:
        return True


def _loop_daemon(tmp: Path, *, deadline: float = 20.0) -> tuple[InProcess, StuckBlob, SteppedWall]:
    config = parse_config(
        config_doc(
            pool_table(  # a platform metric: valid with or without a publisher
                metric={
                    "namespace": "Microsoft.Compute/virtualMachineScaleSets",
                    "name": "Percentage CPU",
                    "meaning": "percent_of_capacity",
                }
            ),
            daemon={"shutdown_deadline_seconds": deadline, "state_dir": str(tmp / "state")},
        ),
        environ={},
    )
    wall = SteppedWall()
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    trace = Trace(
        start=start, step_seconds=60, pools=("tc",), calls={"tc": [60.0] * 600}, length=600
    )
    cloud = SimCloud(
        config, trace, clock=wall, quota_limits={"cores": 400, "standardFSv2Family": 400}
    )
    blob = StuckBlob()
    store = StateStore(local=StateFile(tmp / "state"), shared=blob)
    daemon = InProcess(
        config=config,
        metrics=cloud,
        actuator=cloud,
        quota=cloud,
        clock=wall,
        store=store,
        leader=Leading(),
    )
    return daemon, blob, wall


def _until(check: Callable[[], Any], what: str, timeout: float = HEALTHY_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_backward_wall_clock_step_neither_stops_ticking_nor_hides_a_stuck_tick(
    tmp_path: Path,
) -> None:
    daemon, blob, wall = _loop_daemon(tmp_path)
    period = 0.2
    stop = threading.Event()
    thread = threading.Thread(
        target=daemon.run, args=(stop,), kwargs={"period_seconds": period}, daemon=True
    )
    thread.start()
    try:
        _until(lambda: daemon.ticker.ticks >= 2, "the first ticks")
        wall.offset -= 3600.0  # the system clock steps back one hour
        seen = daemon.ticker.ticks
        _until(lambda: daemon.ticker.ticks >= seen + 3, "ticks after the step")  # ticking goes on
        assert daemon.ticking_healthy()[0]

        blob.stuck.set()  # a tick blocks in a slow call ...
        _until(blob.entered.is_set, "the stuck call")
        wall.offset -= 3600.0  # ... and the wall clock steps back again meanwhile
        _until(lambda: not daemon.ticking_healthy()[0], "health to see the stuck tick")
        ok, age = daemon.ticking_healthy()
        assert not ok and age > 3 * period  # by the monotonic age, whatever the wall says

        stuck_at = daemon.ticker.ticks
        blob.stuck.clear()
        blob.release.set()
        _until(lambda: daemon.ticker.ticks >= stuck_at + 2, "ticks after the call returned")
        assert daemon.ticking_healthy()[0]
    finally:
        stop.set()
        blob.release.set()
        thread.join(10)
    assert not thread.is_alive()


def test_sigterm_with_a_tick_stuck_in_a_slow_call_stops_within_the_deadline(
    tmp_path: Path,
) -> None:
    deadline = 2.0
    daemon, blob, _wall = _loop_daemon(tmp_path, deadline=deadline)
    stop = threading.Event()
    result: list[bool] = []
    thread = threading.Thread(
        target=lambda: result.append(daemon.run(stop, period_seconds=0.2)), daemon=True
    )
    thread.start()
    try:
        _until(lambda: daemon.ticker.ticks >= 2, "the first ticks")
        blob.stuck.set()
        _until(blob.entered.is_set, "the stuck call")
        began = time.monotonic()
        stop.set()  # what the SIGTERM handler does
        thread.join(deadline + 10)
        took = time.monotonic() - began
    finally:
        blob.release.set()
    print(f"stop with a stuck tick: returned after {took:.2f} s (deadline {deadline} s)")
    assert not thread.is_alive()
    assert result == [False]  # not clean: the tick was left behind
    assert took <= deadline  # stopped within the deadline, the stuck tick included
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert "tc" in saved["pools"]  # what was known is saved
