"""The read-only HTTP endpoint: ``/healthz``, ``/readyz``, ``/metrics`` and ``/status``.

Off by default (``[http] enabled``), bound to 127.0.0.1 unless configured. It only reads the
daemon's state: GET and HEAD are served, every other method gets 405, and nothing here can
change capacity. The standard library's threading HTTP server runs it in a daemon thread.

- ``/healthz``: the process is alive and the loop has ticked within 3 intervals (the same test
  gates systemd's ``WATCHDOG=1``).
- ``/readyz``: config loaded, Azure reachable (the last tick's reads succeeded) and the replica
  knows whether it leads or stands by.
- ``/metrics``: Prometheus text (per pool instances, load, decision reason; ticks; Azure calls
  by operation and outcome; quota headroom; leader state).
- ``/status``: JSON, the last decision per pool with its inputs and reason.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from scaler.core.types import Reason
from scaler.logs import get_logger

if TYPE_CHECKING:
    from scaler.daemon import Daemon

PREFIX = "cvi_autoscaler"
_REASONS = tuple(str(r) for r in Reason)
"""The only values the reason label takes, so the series count stays bounded."""


class CallMetrics:
    """A ``CallObserver``: counts and times every Azure call by operation and outcome."""

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

    def __call__(self, operation: str, outcome: str, seconds: float) -> None:
        self.calls.labels(operation, outcome).inc()
        self.seconds.labels(operation, outcome).observe(seconds)


class DaemonCollector(Collector):
    """Reads the daemon's state at scrape time (no bookkeeping in the loop)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        d = self.daemon
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
            "1 for the reason of the pool's last decision, 0 for the others.",
            labels=["pool", "reason"],
        )
        inflight = GaugeMetricFamily(
            f"{PREFIX}_pool_resize_in_flight",
            "1 while a resize started here runs.",
            labels=["pool"],
        )
        last = dict(d.last)
        for pool in d.config.pools:
            o = last.get(pool.name)
            inflight.add_metric([pool.name], 1.0 if pool.name in d.inflight else 0.0)
            if o is None:
                continue
            if o.current is not None:
                current.add_metric([pool.name], float(o.current))
            if o.desired is not None:
                desired.add_metric([pool.name], float(o.desired))
            if o.decision is not None and o.decision.calls is not None:
                calls.add_metric([pool.name], float(o.decision.calls))
            for r in _REASONS:
                reason.add_metric([pool.name, r], 1.0 if o.reason == r else 0.0)
        yield from (current, desired, calls, reason, inflight)

        ticks = CounterMetricFamily(f"{PREFIX}_ticks", "Ticks completed.")
        ticks.add_metric([], float(d.ticks))
        yield ticks
        last_tick = GaugeMetricFamily(
            f"{PREFIX}_last_tick_timestamp_seconds", "When the last tick completed (epoch)."
        )
        if d.last_tick_at is not None:
            last_tick.add_metric([], d.last_tick_at)
        yield last_tick

        headroom = GaugeMetricFamily(
            f"{PREFIX}_quota_headroom_vcpus",
            "vCPU quota left (limit - current) by region and quota name.",
            labels=["location", "quota"],
        )
        for location, usages in sorted(dict(d.usage).items()):
            for name, u in sorted(usages.items()):
                headroom.add_metric([location, name], float(u.limit - u.current))
        yield headroom

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
        ready.add_metric([], 1.0 if readiness(d)[0] else 0.0)
        yield ready


def liveness(daemon: Daemon) -> tuple[bool, dict[str, Any]]:
    ok, age = daemon.ticking_healthy()
    return ok, {"ticking": ok, "seconds_since_tick": age, "ticks": daemon.ticks}


def readiness(daemon: Daemon) -> tuple[bool, dict[str, Any]]:
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


def status(daemon: Daemon) -> dict[str, Any]:
    pools = []
    last = dict(daemon.last)
    for pool in daemon.config.pools:
        o = last.get(pool.name)
        entry: dict[str, Any] = o.to_json() if o else {"pool": pool.name, "reason": None}
        op = daemon.inflight.get(pool.name)
        entry["resize_in_flight"] = (
            {"target": op.target, "started": _iso(op.started)} if op else None
        )
        entry["min"], entry["max"] = pool.min, pool.max
        pools.append(entry)
    return {
        "role": daemon.role,
        "identity": daemon.identity,
        "dry_run": daemon.dry_run,
        "ticks": daemon.ticks,
        "last_tick_at": _iso(daemon.last_tick_at),
        "interval_seconds": daemon.config.daemon.interval_seconds,
        "pools": pools,
    }


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


class HttpEndpoint:
    """The endpoint's server and thread; ``port`` is the bound port (useful with port 0)."""

    def __init__(
        self, daemon: Daemon, *, registry: CollectorRegistry, bind: str, port: int
    ) -> None:
        self.daemon = daemon
        self.registry = registry
        registry.register(DaemonCollector(daemon))
        handler = type("Handler", (_Handler,), {"endpoint": self})
        self.server = ThreadingHTTPServer((bind, port), handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.bind = bind
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="http", kwargs={"poll_interval": 0.5}
        )
        self._thread.daemon = True
        self._thread.start()
        get_logger().info("http.listening", bind=self.bind, port=self.port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    endpoint: HttpEndpoint
    server_version = "cvi-autoscaler"
    sys_version = ""

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
