"""``run --dry-run`` beside production (issue 10, finding 7): with ``[ha]`` on, the dry run is an
observer. It never asks for the leader lease, never writes state (neither the local file nor the
state blob) and starts from the leader's published state, so production stays leader and keeps
writing, and capacity follows production's decisions.

Both replicas run in this process against Azurite (the npm package, real Blob lease) and the HTTPS
fake of Azure, through the real SDK clients. The observer is wired exactly as ``run`` wires it
(``run_service``); its Blob requests go through a recording proxy in front of Azurite, so what it
asked the storage account is seen on the wire, not inferred.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import BlobServiceClient

from scaler.config import Config, HaConfig, parse_config
from scaler.daemon import Daemon
from scaler.service import run_service
from scaler.state import decode
from tests.conftest import HEALTHY_WAIT, config_doc, pool_table, vmss_id
from tests.fakeazure import FakeAzure
from tests.test_ops_leader import LEASE, Replica

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class RecordingProxy:
    """Plain HTTP in front of Azurite: forwards every request unchanged and records it."""

    def __init__(self, upstream: str) -> None:
        url = urlsplit(upstream)
        self.upstream = (url.hostname or "127.0.0.1", url.port or 80)
        self.seen: list[tuple[str, str, dict[str, list[str]], str | None]] = []
        """(method, path, query, x-ms-lease-action) of each request."""
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                parts = urlsplit(self.path)
                with proxy._lock:
                    proxy.seen.append(
                        (
                            self.command,
                            parts.path,
                            parse_qs(parts.query),
                            self.headers.get("x-ms-lease-action"),
                        )
                    )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=10)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in _HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    length_header = resp.getheader("Content-Length")
                    if self.command == "HEAD" and length_header is not None:
                        self.send_header("Content-Length", length_header)
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def lease_requests(self) -> list[tuple[str, str, str | None]]:
        with self._lock:
            return [
                (m, p, action)
                for m, p, q, action in self.seen
                if q.get("comp") == ["lease"] or action is not None
            ]

    def writes(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(m, p) for m, p, _q, _a in self.seen if m not in ("GET", "HEAD")]

    def reads_of(self, blob: str) -> int:
        with self._lock:
            return sum(1 for m, p, _q, _a in self.seen if m == "GET" and p.endswith("/" + blob))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _through(connection_string: str, proxy: RecordingProxy) -> str:
    return re.sub(
        r"BlobEndpoint=http://127\.0\.0\.1:\d+/",
        f"BlobEndpoint=http://127.0.0.1:{proxy.port}/",
        connection_string,
    )


def _wait(check: Callable[[], Any], what: str, timeout: float = HEALTHY_WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _settled(prod: Replica) -> None:
    """Wait until production has made two whole ticks since the load changed: the first may
    have read the old load, the second decides on the new one and writes nothing more."""
    mark = prod.daemon.ticker.ticks
    _wait(lambda: prod.daemon.ticker.ticks >= mark + 2, "production ticking on the new load")
    _wait(
        lambda: not any(not op.handle.done() for op in prod.daemon.ticker.inflight.values()), "idle"
    )


class Observer:
    """``run --dry-run`` as the command wires it (``run_service``), in a thread."""

    def __init__(self, config: Config) -> None:
        self.stop = threading.Event()
        self.daemon: Daemon | None = None
        self.clean: bool | None = None

        def grab(daemon: Daemon) -> None:
            self.daemon = daemon

        def body() -> None:
            self.clean = run_service(
                config, stop=self.stop, reload_config=lambda: config, on_daemon=grab
            )

        self.thread = threading.Thread(target=body, name="observer", daemon=True)
        self.thread.start()

    def ticks(self) -> int:
        return self.daemon.ticker.ticks if self.daemon is not None else 0

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


def set_cpu(fake: FakeAzure, percent: float) -> None:
    """The scale set's ``Percentage CPU``, a platform metric (it exists without a publisher).
    At 100 % target tracking (80 %) asks for more each tick; at 78 % it holds the size."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    points = [(now + timedelta(minutes=m), percent) for m in range(-30, 30)]
    fake.set_metric(
        vmss_id("tc"),
        "Microsoft.Compute/virtualMachineScaleSets",
        "Percentage CPU",
        points,
        unit="Percent",
    )


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeAzure]:
    with FakeAzure(tmp_path / "azure") as azure:
        azure.add_vmss("cvi", "tc", capacity=3)
        azure.set_usage("westeurope", "cores", current=12, limit=400)
        azure.set_usage("westeurope", "standardFSv2Family", current=12, limit=400)
        set_cpu(azure, 100.0)
        yield azure


@pytest.fixture
def setup(
    azurite: str,
    fake: FakeAzure,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("CVI_AUTOSCALER_STATIC_TOKEN", "x")
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    proxy = RecordingProxy(re.search(r"BlobEndpoint=([^;]+)", azurite).group(1))  # type: ignore[union-attr]
    container = f"ha-{uuid.uuid4().hex[:12]}"

    def config(*, dry_run: bool, identity: str, connection_string: str) -> Config:
        doc = config_doc(
            pool_table(
                behavior={"scale_up": {"period_seconds": 1}},
                metric={
                    "namespace": "Microsoft.Compute/virtualMachineScaleSets",
                    "name": "Percentage CPU",
                    "meaning": "percent_of_capacity",
                    "lag_minutes": 1,
                },
            ),
            daemon={
                "interval_seconds": 1,
                "tick_deadline_seconds": HEALTHY_WAIT,  # a healthy read's budget, not 0.8 s
                "shutdown_deadline_seconds": 5,
                "dry_run": dry_run,
                "state_dir": str(tmp_path / f"state-{identity}"),
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
        doc["ha"] = {
            "enabled": True,
            "connection_string": connection_string,
            "container": container,
            "lease_seconds": LEASE,
            "identity": identity,
        }
        return parse_config(doc, environ={})

    prod_config = config(dry_run=False, identity="prod", connection_string=azurite)
    prod = Replica(prod_config, prod_config.ha)
    observer_config = config(
        dry_run=True, identity="observer", connection_string=_through(azurite, proxy)
    )
    service = BlobServiceClient.from_connection_string(azurite)
    observers: list[Observer] = []

    def start_observer() -> Observer:
        o = Observer(observer_config)
        observers.append(o)
        return o

    try:
        yield {
            "prod": prod,
            "ha": prod_config.ha,
            "proxy": proxy,
            "start_observer": start_observer,
            "observer_state": tmp_path / "state-observer",
            "service": service,
            "container": container,
        }
    finally:
        for o in observers:
            o.close()
        prod.close()
        proxy.close()
        service.close()


def _shared_state(setup: dict[str, Any]) -> Any:
    ha: HaConfig = setup["ha"]
    blob = setup["service"].get_container_client(ha.container).get_blob_client(ha.state_blob)
    return decode(blob.download_blob().readall())


def test_a_dry_run_started_first_never_takes_the_lease_and_production_leads(
    setup: dict[str, Any], fake: FakeAzure
) -> None:
    proxy: RecordingProxy = setup["proxy"]
    prod: Replica = setup["prod"]
    observer = setup["start_observer"]()
    _wait(lambda: observer.ticks() >= 3, "three observer ticks")
    (o,) = observer.daemon.ticker.last.values()  # type: ignore[union-attr]
    assert o.desired > o.current == 3 and o.dry_run and not o.applied  # decided, wrote nothing
    assert proxy.lease_requests() == []  # not one acquire, renew or release
    assert proxy.writes() == []  # no container, no lease blob, no state blob
    assert not (setup["observer_state"] / "state.json").exists()
    assert observer.daemon.role == "standby"  # type: ignore[union-attr]
    assert fake.vmss_capacity("cvi", "tc") == 3 and fake.writes() == []

    # Production, started beside it, leads at its first attempt and scales.
    assert prod.lease.step() and prod.lease.role == "leader"
    prod.lease.start()
    prod.run()
    _wait(lambda: fake.vmss_capacity("cvi", "tc") >= 5, "production's scale-up")
    set_cpu(fake, 78.0)  # production holds its size from here on
    _settled(prod)
    size = fake.vmss_capacity("cvi", "tc")
    assert prod.applied and prod.lease.role == "leader"
    _wait(lambda: observer.daemon.ticker.last["tc"].current == size, "the observer seeing it")  # type: ignore[union-attr]
    assert proxy.lease_requests() == [] and proxy.writes() == []
    assert _shared_state(setup).writer == "prod"


def test_a_dry_run_beside_a_leader_follows_its_state_and_never_interferes(
    setup: dict[str, Any], fake: FakeAzure
) -> None:
    proxy: RecordingProxy = setup["proxy"]
    prod: Replica = setup["prod"]
    ha: HaConfig = setup["ha"]
    prod.lease.start()
    prod.run()
    _wait(lambda: fake.vmss_capacity("cvi", "tc") >= 4, "production's scale-up")
    set_cpu(fake, 78.0)
    leader_events = _wait(
        lambda: _shared_state(setup).pools["tc"].state.scale_events, "the published state"
    )

    observer = setup["start_observer"]()
    _wait(lambda: observer.ticks() >= 2, "observer ticks")
    daemon = observer.daemon
    assert daemon is not None and daemon.ticker.dry_run
    # Its decisions start from the leader's stabilisation history (scale events, cooldowns) ...
    assert set(leader_events) <= set(daemon.ticker.states["tc"].scale_events)
    assert proxy.reads_of(ha.state_blob) >= 1  # ... read from the leader's state blob

    # Production's next decisions go on being production's, and the observer follows them.
    before = fake.vmss_capacity("cvi", "tc")
    set_cpu(fake, 100.0)
    _wait(lambda: fake.vmss_capacity("cvi", "tc") >= before + 2, "production's next scale-ups")
    set_cpu(fake, 78.0)
    _settled(prod)
    size = fake.vmss_capacity("cvi", "tc")
    _wait(lambda: daemon.ticker.last["tc"].current == size, "the observer seeing production's size")
    _wait(
        lambda: (
            len(daemon.ticker.states["tc"].scale_events)
            == len(_shared_state(setup).pools["tc"].state.scale_events)
        ),
        "the observer taking the leader's new scale events",
    )
    assert prod.lease.role == "leader" and prod.daemon.role == "leader"
    patches = [w for w in fake.writes() if w.method == "PATCH"]
    assert len(patches) == len(prod.applied)  # every write is production's
    shared = _shared_state(setup)
    assert shared.writer == "prod"  # production keeps writing the state blob ...
    assert proxy.lease_requests() == []  # ... and the observer never asked for the lease,
    assert proxy.writes() == []  # wrote no blob,
    assert not (setup["observer_state"] / "state.json").exists()  # and no local state

    observer.close()
    assert observer.clean is True
    assert proxy.lease_requests() == [] and proxy.writes() == []  # not even when stopping
    assert not (setup["observer_state"] / "state.json").exists()
