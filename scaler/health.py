"""The read-only HTTP endpoint: ``/healthz``, ``/readyz``, ``/metrics`` and ``/status``.

Off by default (``[http] enabled``), bound to 127.0.0.1 unless configured (a non-loopback
``bind`` is logged as a warning: the endpoint has no authentication; the docs show a reverse
proxy in front of it). It only reads the daemon's state: GET and HEAD are served, every other
method gets 405, and nothing here can change capacity. The standard library's HTTP server runs it
in a daemon thread, with bounded resources whatever clients do (``_Server``): a connection's
whole request head is read by one event-driven thread, without a thread of its own, and must
arrive within ``idle_timeout`` seconds of connecting (not per line: a client sending one header
line every few seconds is cut off like a silent one), at most ``MAX_HEAD_BYTES`` of it; at most
``max_waiting`` connections wait (the oldest is closed for a new one). Only a complete request
reaches the fixed pool of ``workers`` threads, so slow clients can never occupy them and
``/healthz`` answers at once however many trickle; an answer that stalls is cut off by the
socket timeout. Hundreds of idle connections cost file descriptors for seconds, never a thread.

- ``/healthz``: the process is alive and the loop has ticked within 3 intervals (the same test
  gates systemd's ``WATCHDOG=1``).
- ``/readyz``: config loaded, Azure reachable (the last tick's reads succeeded) and the replica
  knows whether it leads or stands by.
- ``/metrics``: Prometheus text (per pool instances, min/max, load, decision reason, scale
  actions; ticks; Azure calls by operation and outcome; quota headroom; leader state; build
  info). No ``_created`` series. deploy/grafana-dashboard.json and deploy/prometheus-rules.yml
  query these names (tests/test_dashboards.py checks them against a live endpoint).
- ``/status``: JSON, the last decision per pool with its inputs and reason.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from scaler.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from scaler.config import PoolConfig
    from scaler.daemon import Daemon, DaemonView, PoolOutcome

# A ``*_created`` series per counter and histogram doubles the series count and no dashboard
# reads it (prometheus_client: "disable_created_metrics()").
disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX = "cvi_autoscaler"


class CallMetrics:
    """A ``CallObserver``: counts and times every Azure call by operation and outcome, and
    counts every failed call of Azure or the Pexip Management Node (``adapter_errors``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            f"{PREFIX}_azure_calls",
            "Azure calls made, by operation and outcome (ok, transient, error).",
            ["operation", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            f"{PREFIX}_azure_call_seconds",
            "Duration of Azure calls in seconds, by operation and outcome.",
            ["operation", "outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )

        self.errors = Counter(
            f"{PREFIX}_adapter_errors",
            "Calls to Azure or the Pexip Management Node that failed, by operation and kind "
            "(transient: worth retrying; error: a refusal or an answer that cannot be read).",
            ["operation", "kind"],
            registry=registry,
        )

        self.remaining = Gauge(
            f"{PREFIX}_arm_ratelimit_remaining",
            "ARM requests left per subscription as the last answer's x-ms-ratelimit-remaining-"
            "subscription-{reads,writes,global-reads,global-writes} header said.",
            ["subscription", "header"],
            registry=registry,
        )

    def __call__(self, operation: str, outcome: str, seconds: float) -> None:
        self.calls.labels(operation, outcome).inc()
        self.seconds.labels(operation, outcome).observe(seconds)
        if outcome != "ok":
            self.errors.labels(operation, outcome).inc()

    def ratelimit_remaining(self, subscription: str, header: str, remaining: int) -> None:
        """``azure.BudgetObserver``: one ARM rate-limit header of an answer."""
        short = header.removeprefix("x-ms-ratelimit-remaining-")
        self.remaining.labels(subscription, short).set(remaining)


class ScaleActions:
    """Counts the resizes the daemon applied, by pool and direction (``up``/``down``), fed from
    the daemon's ``on_tick`` hook so that no tick is missed between two scrapes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            f"{PREFIX}_scale_actions",
            "Resizes applied (not dry runs), by pool and direction (up, down).",
            ["pool", "direction"],
            registry=registry,
        )

    def __call__(self, now: float, outcomes: Sequence[PoolOutcome]) -> None:
        for o in outcomes:
            if not o.applied or o.current is None or o.desired is None:
                continue
            if o.desired != o.current:
                direction = "up" if o.desired > o.current else "down"
                self.counter.labels(o.pool, direction).inc()

    def attach(self, daemon: Daemon) -> None:
        """Chain onto ``daemon.on_tick`` (keeping a hook already set; a stand-in without the
        hook gets one)."""
        previous = getattr(daemon, "on_tick", None)

        def on_tick(now: float, outcomes: Sequence[PoolOutcome]) -> None:
            self(now, outcomes)
            if previous is not None:
                previous(now, outcomes)

        daemon.on_tick = on_tick


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cvi-autoscaler")
    except PackageNotFoundError:
        return "unknown"


class DaemonCollector(Collector):
    """Reads the daemon's state at scrape time (no bookkeeping in the loop)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        d = self.daemon.view()
        yield from _pool_families(d)
        yield _build_info()
        yield from _tick_families(d)
        yield _quota_headroom(d)
        yield from _role_families(d)


def _pool_families(d: DaemonView) -> Iterator[Metric]:
    """Per pool: its size, what the last decision wanted and why, its load and its bounds."""
    current = GaugeMetricFamily(
        f"{PREFIX}_pool_current_instances",
        "Instances the pool has (sku.capacity).",
        labels=["pool"],
    )
    desired = GaugeMetricFamily(
        f"{PREFIX}_pool_desired_instances",
        "Instances the last decision wanted.",
        labels=["pool"],
    )
    calls = GaugeMetricFamily(
        f"{PREFIX}_pool_observed_calls", "Concurrent calls the last tick saw.", labels=["pool"]
    )
    reason = GaugeMetricFamily(
        f"{PREFIX}_pool_decision_reason",
        "1, labelled with the reason of the pool's last decision (one series per pool).",
        labels=["pool", "reason"],
    )
    inflight = GaugeMetricFamily(
        f"{PREFIX}_pool_resize_in_flight",
        "1 while a resize started here runs.",
        labels=["pool"],
    )
    low = GaugeMetricFamily(
        f"{PREFIX}_pool_min_instances", "The pool's configured min.", labels=["pool"]
    )
    high = GaugeMetricFamily(
        f"{PREFIX}_pool_max_instances", "The pool's configured max.", labels=["pool"]
    )
    per = GaugeMetricFamily(
        f"{PREFIX}_pool_calls_per_instance",
        "Concurrent calls one instance serves (the pool's calls_per_instance).",
        labels=["pool"],
    )
    for pool in d.config.pools:
        o = d.last.get(pool.name)
        inflight.add_metric([pool.name], 1.0 if pool.name in d.resizing else 0.0)
        low.add_metric([pool.name], float(pool.min))
        high.add_metric([pool.name], float(pool.max))
        per.add_metric([pool.name], float(pool.calls_per_instance))
        if o is None:
            continue
        if o.current is not None:
            current.add_metric([pool.name], float(o.current))
        if o.desired is not None:
            desired.add_metric([pool.name], float(o.desired))
        if o.decision is not None and o.decision.calls is not None:
            calls.add_metric([pool.name], float(o.decision.calls))
        # One series per pool, its reason (a ``Reason``: a bounded set of stable names); a
        # 0-valued series for each of the ~22 other reasons made /metrics 2.2 MB a scrape
        # at 1,000 pools.
        reason.add_metric([pool.name, o.reason], 1.0)
    yield from (current, desired, calls, reason, inflight, low, high, per)


def _build_info() -> Metric:
    build = GaugeMetricFamily(
        f"{PREFIX}_build_info",
        "1, labelled with the version and, when the image sets CVI_AUTOSCALER_REVISION, the "
        "source revision.",
        labels=["version", "revision"],
    )
    build.add_metric([_version(), os.environ.get("CVI_AUTOSCALER_REVISION", "")], 1.0)
    return build


def _tick_families(d: DaemonView) -> Iterator[Metric]:
    ticks = CounterMetricFamily(f"{PREFIX}_ticks", "Ticks completed.")
    ticks.add_metric([], float(d.ticks))
    yield ticks
    last_tick = GaugeMetricFamily(
        f"{PREFIX}_last_tick_timestamp_seconds", "When the last tick completed (epoch)."
    )
    if d.last_tick_at is not None:
        last_tick.add_metric([], d.last_tick_at)
    yield last_tick


def _quota_headroom(d: DaemonView) -> Metric:
    headroom = GaugeMetricFamily(
        f"{PREFIX}_quota_headroom_vcpus",
        "vCPU quota left (limit - current) by region and quota name.",
        labels=["location", "quota"],
    )
    for location, usages in sorted(d.usage.items()):
        for name, u in sorted(usages.items()):
            if u.problem:  # Azure's numbers for the line are unusable: no figure
                continue
            headroom.add_metric([location, name], float(u.limit - u.current))
    return headroom


def _role_families(d: DaemonView) -> Iterator[Metric]:
    role = d.role
    leader = GaugeMetricFamily(
        f"{PREFIX}_leader",
        "1 when this replica may actuate (leader or single).",
    )
    leader.add_metric([], 1.0 if role == "leader" else 0.0)
    yield leader
    roles = GaugeMetricFamily(f"{PREFIX}_role", "1 for this replica's role.", labels=["role"])
    for r in ("leader", "standby", "unknown"):
        roles.add_metric([r], 1.0 if role == r else 0.0)
    yield roles
    ready = GaugeMetricFamily(f"{PREFIX}_ready", "1 when /readyz would answer 200.")
    ready.add_metric([], 1.0 if _ready(d)[0] else 0.0)
    yield ready


def liveness(daemon: Daemon) -> tuple[bool, dict[str, Any]]:
    ok, age = daemon.ticking_healthy()
    return ok, {"ticking": ok, "seconds_since_tick": age, "ticks": daemon.ticks}


def readiness(daemon: Daemon) -> tuple[bool, dict[str, Any]]:
    return _ready(daemon.view())


def _ready(daemon: DaemonView) -> tuple[bool, dict[str, Any]]:
    role = daemon.role
    checks = {
        "config_loaded": True,
        "ticked": daemon.ticks > 0,
        "azure_reachable": daemon.ticks > 0 and not daemon.read_failures,
        "role_known": role in ("leader", "standby"),
    }
    body: dict[str, Any] = {"ready": all(checks.values()), "role": role, "checks": checks}
    if daemon.read_failures:
        body["read_failures"] = list(daemon.read_failures)
    return all(checks.values()), body


def status(of: Daemon) -> dict[str, Any]:
    daemon = of.view()
    pools = []
    for pool in daemon.config.pools:
        o = daemon.last.get(pool.name)
        entry: dict[str, Any] = o.to_json() if o else {"pool": pool.name, "reason": None}
        op = daemon.resizing.get(pool.name)
        entry["resize_in_flight"] = {"target": op[0], "started": _iso(op[1])} if op else None
        entry["min"], entry["max"] = pool.min, pool.max
        cost = daemon.config.cost
        if cost is not None:
            entry["cost"] = _pool_cost(cost.currency, cost.per_instance_hour(pool), pool, entry)
        pools.append(entry)
    body: dict[str, Any] = {
        "role": daemon.role,
        "identity": daemon.identity,
        "dry_run": daemon.dry_run,
        "ticks": daemon.ticks,
        "last_tick_at": _iso(daemon.last_tick_at),
        "interval_seconds": daemon.config.daemon.interval_seconds,
        "pools": pools,
    }
    if daemon.config.cost is not None:
        body["cost"] = _total_cost(daemon.config.cost.currency, [p["cost"] for p in pools])
    return body


def _pool_cost(
    currency: str, price: float | None, pool: PoolConfig, entry: Mapping[str, Any]
) -> dict[str, Any]:
    """``[cost]`` applied to the pool's last decision: what its current and desired sizes
    cost an hour (None where the size is not known)."""

    def per_hour(n: Any) -> float | None:
        if price is None or not isinstance(n, int):
            return None
        return round(n * price, 4)

    current = entry.get("current")
    return {
        "currency": currency,
        "per_instance_hour": price,
        "current_vcpus": current * pool.vcpus_per_instance if isinstance(current, int) else None,
        "current_per_hour": per_hour(current),
        "desired_per_hour": per_hour(entry.get("desired")),
    }


def _total_cost(currency: str, parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """All pools together; None while any pool's figure is unknown (never a partial sum)."""

    def total(key: str) -> float | int | None:
        values: list[float | int | None] = [p[key] for p in parts]
        known = [v for v in values if v is not None]
        return round(sum(known), 4) if len(known) == len(values) else None

    return {
        "currency": currency,
        "current_vcpus": total("current_vcpus"),
        "current_per_hour": total("current_per_hour"),
        "desired_per_hour": total("desired_per_hour"),
    }


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


class HttpEndpoint:
    """The endpoint's server and thread; ``port`` is the bound port (useful with port 0).

    ``idle_timeout`` (seconds) bounds how long a connection may wait for its request and how
    long a read or write may stall; ``workers`` threads answer; at most ``max_waiting``
    connections wait for a request (the oldest is closed for a new one)."""

    def __init__(
        self,
        daemon: Daemon,
        *,
        registry: CollectorRegistry,
        bind: str,
        port: int,
        idle_timeout: float = 10.0,
        workers: int = 4,
        max_waiting: int = 128,
    ) -> None:
        self.daemon = daemon
        self.registry = registry
        registry.register(DaemonCollector(daemon))
        ScaleActions(registry).attach(daemon)
        handler = type("Handler", (_Handler,), {"endpoint": self, "timeout": idle_timeout})
        self.server = _Server(
            (bind, port),
            handler,
            idle_timeout=idle_timeout,
            workers=workers,
            max_waiting=max_waiting,
        )
        self.port = int(self.server.server_address[1])
        self.bind = bind
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.server.start_threads()
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="http", kwargs={"poll_interval": 0.5}
        )
        self._thread.daemon = True
        self._thread.start()
        get_logger().info("http.listening", bind=self.bind, port=self.port)
        if not is_loopback(self.bind):
            get_logger().warning(
                "http.exposed",
                bind=self.bind,
                port=self.port,
                risk=(
                    "the endpoint has no authentication or TLS: anyone who can reach this "
                    "address reads /status (pools, resource ids, decisions) and /metrics"
                ),
                fix=(
                    "bind 127.0.0.1 and put a reverse proxy with TLS and authentication in "
                    "front of it (docs/operations.md, 'Exposing the HTTP endpoint')"
                ),
            )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.stop_threads()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Server(HTTPServer):
    """An HTTP server whose threads and connections are bounded (see the module docstring).

    The accepting thread only hands each new connection to the waiting thread, which watches
    all waiting connections with one selector; a connection that sends its request goes to
    the worker pool, one that stays silent for ``idle_timeout`` is closed. Only the waiting
    thread touches the selector and the waiting set."""

    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        idle_timeout: float,
        workers: int,
        max_waiting: int,
    ) -> None:
        super().__init__(address, handler)
        self.idle_timeout = idle_timeout
        self.max_waiting = max_waiting
        self.max_ready = max_waiting
        self._incoming: list[tuple[socket.socket, Any]] = []
        self._lock = threading.Lock()
        self._waiting: dict[socket.socket, _Pending] = {}  # oldest first
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._ready: queue.Queue[tuple[socket.socket, Any, bytes] | None] = queue.Queue()
        self._local = threading.local()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"http-worker-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        self._threads.append(threading.Thread(target=self._wait, name="http-waiting", daemon=True))
        self.closed_idle = 0
        """Connections closed without a request (timed out or pushed out); for tests/metrics."""

    def start_threads(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop_threads(self) -> None:
        self._stopping.set()
        self._wake()
        for _ in self._threads:
            self._ready.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=2)
        with self._lock:
            leftover, self._incoming = self._incoming, []
        for sock, _ in leftover:
            self.shutdown_request(sock)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the accepting thread ---------------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._incoming.append((request, client_address))
        self._wake()

    def _wake(self) -> None:
        # A full buffer means a wake-up is pending anyway; a closed one that we are stopping.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # -- the waiting thread -----------------------------------------------------------------

    def _wait(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                incoming, self._incoming = self._incoming, []
            now = time.monotonic()
            for sock, addr in incoming:
                try:
                    sock.setblocking(False)
                except OSError:
                    self.shutdown_request(sock)
                    continue
                self._waiting[sock] = _Pending(now + self.idle_timeout, addr)
                self._selector.register(sock, selectors.EVENT_READ)
            while len(self._waiting) > self.max_waiting:
                self._close_waiting(next(iter(self._waiting)))
            for sock, pending in list(self._waiting.items()):
                if pending.deadline > now:
                    break  # deadlines come in arrival order
                self._close_waiting(sock)  # the whole head did not come in time
            first = next(iter(self._waiting.values()), None)
            timeout = 1.0 if first is None else max(0.0, min(1.0, first.deadline - now))
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_r:
                    with contextlib.suppress(OSError):
                        while self._wake_r.recv(4096):
                            pass
                    continue
                self._read_head(cast(socket.socket, key.fileobj))
        for sock in list(self._waiting):
            self._close_waiting(sock)

    def _read_head(self, sock: socket.socket) -> None:
        """Take what the client sent; once the request head is complete, hand it to the
        workers. A client that hangs up, or sends more than ``MAX_HEAD_BYTES`` without
        ending its head, is closed."""
        pending = self._waiting[sock]
        try:
            data = sock.recv(8192)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_waiting(sock)
            return
        pending.head += data
        end = _head_end(pending.head)
        if end < 0:
            if len(pending.head) > MAX_HEAD_BYTES:
                self._close_waiting(sock)
            return
        self._selector.unregister(sock)
        del self._waiting[sock]
        if self._ready.qsize() >= self.max_ready:
            self.shutdown_request(sock)  # every worker is busy and many are queued
            return
        try:
            sock.setblocking(True)
            sock.settimeout(self.idle_timeout)  # the answer must not stall a worker either
        except OSError:
            self.shutdown_request(sock)
            return
        self._ready.put((sock, pending.addr, bytes(pending.head[:end])))

    def _close_waiting(self, sock: socket.socket) -> None:
        self._selector.unregister(sock)
        del self._waiting[sock]
        self.closed_idle += 1
        self.shutdown_request(sock)

    # -- the workers ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._ready.get()
            if item is None:
                return
            sock, addr, head = item
            self._local.head = head
            try:
                self.finish_request(sock, addr)
            except Exception:  # a client that vanished mid-answer; nothing to do but close
                get_logger().debug("http.request_failed", client=str(addr[0]))
            finally:
                self.shutdown_request(sock)

    def head(self) -> bytes:
        """The request head the waiting thread read for the request this worker serves."""
        return cast(bytes, self._local.head)


MAX_HEAD_BYTES = 16 * 1024
"""A request line and headers larger than this are not an HTTP client of this endpoint."""


def _head_end(data: bytearray) -> int:
    """Where the request head ends (after its blank line), or -1 while it has not."""
    for mark in (b"\r\n\r\n", b"\n\n"):
        at = data.find(mark)
        if at >= 0:
            return at + len(mark)
    return -1


@dataclass(slots=True)
class _Pending:
    """A connection whose request head is still coming: by when it must be complete, from
    where, and what came so far."""

    deadline: float
    addr: Any
    head: bytearray = field(default_factory=bytearray)


def is_loopback(bind: str) -> bool:
    """Whether ``bind`` is only reachable from this host (``127.0.0.1``, ``::1``,
    ``localhost``)."""
    if bind.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    endpoint: HttpEndpoint
    server_version = "cvi-autoscaler"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # the head was read by the waiting thread; no body is ever read (GET/HEAD only)
        self.rfile = io.BytesIO(cast(_Server, self.server).head())

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _refuse(self) -> None:
        self._send(
            405,
            b"read-only endpoint: GET and HEAD only\n",
            "text/plain",
            True,
            extra={"Allow": "GET, HEAD"},
        )

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def _serve(self, *, body: bool) -> None:
        daemon = self.endpoint.daemon
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            ok, info = liveness(daemon)
            self._json(200 if ok else 503, info, body)
        elif path == "/readyz":
            ok, info = readiness(daemon)
            self._json(200 if ok else 503, info, body)
        elif path == "/metrics":
            self._send(200, generate_latest(self.endpoint.registry), CONTENT_TYPE_LATEST, body)
        elif path == "/status":
            self._json(200, status(daemon), body)
        else:
            self._send(404, b"not found\n", "text/plain", body)

    def _json(self, code: int, data: Any, body: bool) -> None:
        payload = (json.dumps(data, default=str) + "\n").encode("utf-8")
        self._send(code, payload, "application/json", body)

    def _send(
        self,
        code: int,
        payload: bytes,
        ctype: str,
        body: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        get_logger().debug("http.request", line=format % args)
