"""The fault matrix: every call the daemon makes, under every kind of failure, through the daemon.

Issue 11, "prove the class is closed". One world of five pools covers every call the daemon
makes against the HTTPS fakes through the real Azure SDK clients and the real httpx client:

* ``plain``  vmss sized from Azure Monitor (metrics getBatch, scale set GET and PATCH, LRO polls)
* ``tc``     drain-aware vmss sized from Pexip's teamsnode (instance list, protect, deleteInstances)
* ``teams``  pexip-teams (teams_proxy read and PATCH of ``min_number_of_instances``)
* ``burst``  vm-set growing (VM list, instance view, start; worker_vm, participant reads)
* ``down``   vm-set shrinking (maintenance PATCH on worker_vm, deallocate)
* ``logs``   vmss sized from a Log Analytics query (``LogsQueryClient``), steady

and the region's ``usage.list``. Every metric source has its row (``SOURCE_ROWS``): the calls its
reader makes. Each case arms one fault on one call for the whole first tick,
then disarms it and ticks again. Whatever the fault, the daemon:

* keeps ticking: both ticks return an outcome for every pool and nothing escapes as
  ``tick.failed``;
* holds only the pools the call concerns: every other pool decides exactly as in the healthy run;
* writes nothing the true state would not justify: every write the fakes record is one the
  healthy run makes too (same call, same body);
* says so once: at least one warning or error event names the failure, and no event is repeated
  for the same pool within a tick (no log line per retry);
* counts it: ``cvi_autoscaler_adapter_errors_total`` grows (unless the SDK's own retry recovered,
  as with a short ``Retry-After``);
* makes a bounded number of requests, counted by the fakes.

Bad answers come from ``tests/corpus/answers/`` as files. TLS failures (a certificate the client
does not trust) have a test of their own, per service.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from scaler.adapters.sim import ManualClock
from scaler.config import Config, parse_config
from scaler.daemon import Daemon, PoolOutcome
from scaler.health import CallMetrics
from scaler.sources import BUILTINS as SOURCES
from scaler.wiring import Adapters
from tests.fakeazure import FakeAzure
from tests.fakelogs import FakeLogs
from tests.fakepexip import FakePexip

ANSWERS = Path(__file__).resolve().parent / "corpus" / "answers"
POOLS = ("plain", "tc", "teams", "burst", "down", "logs")
FAST_DOWN = {"scale_down": {"stabilization_seconds": 0, "max_percent": 100}}
RETRY_TOTAL = 1
TIMEOUT = 4.0
"""Seconds: connect/read timeout of both clients, the budget of a *healthy* call. It stays well
above 2 s so that a loaded CI machine cannot turn a healthy call into a timed-out one (at 2 s, a
healthy protection PUT timed out once at a load average of 12 on two cores and the SDK's retry
wrote it twice)."""
DEADLINE = 8.0
"""Seconds: the whole-call budget of both clients (``call_deadline_seconds``,
``read_deadline_seconds``): one timed-out attempt and a retry."""
STALL = 30.0
"""Seconds before a stalled answer comes: far past ``DEADLINE``, so a stall is always a stall,
however slow the machine, and never an answer that just made it."""
FOREVER = 10_000
"""An armed fault's uses: the whole first tick, whatever it retries."""
ELSEWHERE = "https://127.0.0.1:9/elsewhere"
"""Where redirects point (port 9, discard: nothing answers there)."""


# ---------------------------------------------------------------------------------- the calls


@dataclass(frozen=True)
class Call:
    """One call the daemon makes: the fake serving it, how it is matched, and the pools whose
    decision may depend on it (every other pool must decide as in the healthy run)."""

    id: str
    service: str
    method: str
    path: str
    pools: frozenset[str]
    answers: tuple[str, ...] = ()
    """Bad answers of ``tests/corpus/answers/`` served (200, application/json) to this call."""


def _call(id: str, service: str, method: str, path: str, pools: str, *answers: str) -> Call:
    return Call(id, service, method, path, frozenset(pools.split()), answers)


CALLS = (
    _call(
        "metrics.getBatch",
        "azure",
        "POST",
        r"metrics:getBatch$",
        "plain",
        "metrics.truncated.json",
        "metrics.wrong-shape.json",
        "metrics.absurd.json",
        "metrics.wrong-unit.json",
        "metrics.other-resource.json",
    ),
    # a scale-up needs the region's headroom: without usage.list the pools that grow hold
    _call(
        "usage.list",
        "azure",
        "GET",
        r"/usages$",
        "plain teams",
        "usages.wrong-shape.json",
        "usages.absurd.json",
    ),
    _call(
        "vmss.get",
        "azure",
        "GET",
        r"virtualMachineScaleSets/plain$",
        "plain",
        "vmss.wrong-shape.json",
        "vmss.absurd.json",
    ),
    # the three scale-set pools share a resource group: one list of it reads them all
    _call(
        "vmss.list",
        "azure",
        "GET",
        r"resourceGroups/[^/]+/providers/Microsoft\.Compute/virtualMachineScaleSets$",
        "plain tc teams logs",
        "vmss-list.capacity-negative.json",
        "vmss-list.capacity-true.json",
        "vmss-list.capacity-5000.json",
        "vmss-list.capacity-1e9.json",
        "vmss-list.etag-number.json",
    ),
    # VM sizes: plain takes its quota family from its VM size (the others name theirs)
    _call("resource_skus.list", "azure", "GET", r"/providers/Microsoft\.Compute/skus$", "plain"),
    _call("vmss.patch", "azure", "PATCH", r"virtualMachineScaleSets/plain$", "plain"),
    # LRO status polls of every resize, protection, deleteInstances, start and deallocate
    _call("lro.poll", "azure", "GET", r"/operations/[^/]+$", "plain tc burst down"),
    _call("vmss.vms.list", "azure", "GET", r"virtualMachineScaleSets/tc/virtualMachines$", "tc"),
    _call("vmss.vm.protect", "azure", "PUT", r"virtualMachineScaleSets/tc/virtualMachines/", "tc"),
    _call("vmss.deleteInstances", "azure", "POST", r"virtualMachineScaleSets/tc/delete$", "tc"),
    _call(
        "vm.list",
        "azure",
        "GET",
        r"resourceGroups/[^/]+/providers/Microsoft\.Compute/virtualMachines$",
        "burst down",
        "vms.wrong-shape.json",
    ),
    # power states: the subscription's statusOnly list (the per-VM instance view is only its
    # fallback when that list is refused)
    _call(
        "vm.statusList",
        "azure",
        "GET",
        r"^/subscriptions/[^/]+/providers/Microsoft\.Compute/virtualMachines$",
        "burst down",
    ),
    _call("vm.start", "azure", "POST", r"virtualMachines/burst-\d/start$", "burst"),
    _call("vm.deallocate", "azure", "POST", r"virtualMachines/down-1/deallocate$", "down"),
    _call(
        "pexip.teamsnode",
        "pexip",
        "GET",
        r"status/v1/teamsnode/$",
        "tc teams",
        "teamsnode.truncated.json",
        "teamsnode.wrong-shape.json",
        "teamsnode.absurd.json",
    ),
    _call(
        "pexip.worker_vm",
        "pexip",
        "GET",
        r"status/v1/worker_vm/$",
        "burst down",
        "worker_vm.absurd.json",
        "worker_vm.wrong-shape.json",
    ),
    _call("pexip.worker_vm_config", "pexip", "GET", r"configuration/v1/worker_vm/$", "burst down"),
    _call(
        "pexip.participant",
        "pexip",
        "GET",
        r"status/v1/participant/$",
        "burst down",
        "participant.wrong-shape.json",
    ),
    _call(
        "pexip.teams_proxy",
        "pexip",
        "GET",
        r"configuration/v1/teams_proxy/$",
        "teams",
        "teams_proxy.absurd.json",
    ),
    _call("pexip.teams_proxy.patch", "pexip", "PATCH", r"teams_proxy/\d+/$", "teams"),
    _call("pexip.worker_vm.patch", "pexip", "PATCH", r"configuration/v1/worker_vm/\d+/$", "down"),
    _call("pexip.scheduled_scaling", "pexip", "GET", r"scheduled_scaling/$", "teams"),
    _call("pexip.licensing", "pexip", "GET", r"status/v1/licensing/$", "teams"),
    _call(
        "logs.query",
        "logs",
        "POST",
        r"/query$",
        "logs",
        "logs-query.wrong-shape.json",
        "logs-query.absurd.json",
    ),
)

SOURCE_ROWS = {
    "azure-monitor": ("metrics.getBatch",),
    "pexip": ("pexip.teamsnode", "pexip.worker_vm", "pexip.participant"),
    "log-analytics": ("logs.query",),
}
"""Each metric source's row: the calls its reader makes, each meeting the faults below."""

FAULTS = (
    "429-short",
    "429-absurd",
    "500-json",
    "502-html",
    "reset",
    "stall",
    "truncate",
    "redirect",
    "content-type",
)
"""Every kind of failure; ``answers`` adds each call's bad answers from the corpus."""
FULL = frozenset(
    {"metrics.getBatch", "vmss.patch", "lro.poll", "vm.start", "pexip.teamsnode"}
    | {"pexip.teams_proxy.patch", "usage.list"}
)
"""One call of each class (Azure read, write, LRO poll, POST action, quota; Pexip read, write)
meets every kind of failure: a class shares its translation code, so the kinds that differ only
there (short and absurd Retry-After, JSON and HTML 5xx, a redirect, a wrong content type) are
proven once per class and kept under a minute."""
CORE = ("429-absurd", "502-html", "reset", "stall", "truncate")
"""What every other call meets: what differs by call is which pools hold and what is written."""
LISTS = frozenset(
    {"usage.list", "vmss.list", "vmss.vms.list", "vm.list", "vm.statusList", "resource_skus.list"}
)
"""The Azure lists (read through the one guarded pager) also meet hostile ``nextLink`` s."""
NEXT_LINKS = {
    "nextlink-elsewhere": ELSEWHERE + "/{n}",
    "nextlink-http": "http://127.0.0.1:9/{n}",
    "nextlink-userinfo": "https://admin:SECRETVALUE@{host}{path}?page={n}",
    "nextlink-loop": "{url}{path}",
    "nextlink-endless": "{url}{path}?page={n}",
}
"""``nextLink`` s the pager must not follow (another host, http, a user and password), a link
back to a page already read, and an endless series (stopped by ``[azure] max_pages``)."""
MAX_PAGES = 8


# ---------------------------------------------------------------------------------- the world


@dataclass
class World:
    """Both fakes for the module; each case builds its pools in a resource group of its own."""

    azure: FakeAzure
    pexip: FakePexip
    logs: FakeLogs
    serial: Iterator[int] = field(default_factory=lambda: count(1))


@dataclass
class Run:
    """What one case saw: the outcomes and events of both ticks, writes and requests."""

    ticks: list[list[PoolOutcome]]
    events: list[list[dict[str, Any]]]
    writes: list[Counter[str]]
    requests: list[int]
    errors: list[float]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    saved = {
        k: os.environ.get(k)
        for k in ("CVI_AUTOSCALER_STATIC_TOKEN", "CVI_AUTOSCALER_PEXIP_PASSWORD")
    }
    os.environ["CVI_AUTOSCALER_STATIC_TOKEN"] = "test-token"
    os.environ["CVI_AUTOSCALER_PEXIP_PASSWORD"] = "s3cret"
    tmp = tmp_path_factory.mktemp("faults")
    with FakeAzure(tmp) as azure, FakePexip(tmp) as pexip, FakeLogs(tmp) as logs:
        azure.default_quota_limit = 10**7  # every case's VMs share the region's usage
        azure.lro_polls = 0  # operations end at their first poll: fewer requests per case
        yield World(azure, pexip, logs)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _pool(name: str, rid: str, **over: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": name,
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


def _nodes(name: str, rg: str, tag: str, location: str, **over: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "vm-set",
        "vm_set": {"resource_group": rg, "tag": f"pexip-role={tag}", **over},
        "vcpus_per_instance": 8,
        "quota_family": "standardFSv2Family",
        "min": 0,
        "max": 3,
        "metric": {"source": "pexip", "locations": [location], "base_fill": 0.8},
        "behavior": FAST_DOWN,
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }


def build(world: World, **ca: str) -> tuple[Config, dict[str, str]]:
    """The five pools in a fresh resource group, as in the module docstring; ``ca`` gives a
    service (``azure``, ``pexip``) another CA bundle."""
    az, px = world.azure, world.pexip
    serial = next(world.serial)
    rg = f"rg{serial}"
    px.clear()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    plain = az.add_vmss(rg, "plain", capacity=1)
    az.set_metric(
        plain,
        "Pexip/CVI",
        "ActiveCalls",
        [(now - timedelta(minutes=9 - i), 60.0) for i in range(10)],
    )
    tc = az.add_vmss(rg, "tc", capacity=3)
    for i, calls in enumerate([5, 0, 4]):  # instance 1 is idle: the only one to go
        px.add_teams_node(f"tc00000{i}", call_count=calls, scaleset_id="tc")
    teams = az.add_vmss(rg, "teams", capacity=2)
    px.add_teams_proxy(7, "cvi-teams", min_number_of_instances=1)
    px.add_teams_node("teams000000", call_count=20, scaleset_id="teams")
    px.add_teams_node("teams000001", call_count=20, scaleset_id="teams")
    for vm in ("burst-1", "burst-2"):
        az.add_vm(rg, vm, tags={"pexip-role": "burst"})
        px.add_node(vm, max_hd_calls=20)
    px.add_node("always-1", max_hd_calls=40, media_load=100.0)  # London is full: one burst node
    az.add_vm(rg, "down-1", power_state="running", tags={"pexip-role": "down"})
    px.add_node("down-1", max_hd_calls=20, system_location="Oslo")  # idle: drained and stopped
    logs = az.add_vmss(rg, "logs", capacity=2)
    workspace = f"00000000-0000-0000-0000-{serial:012d}"  # a workspace per case
    world.logs.add_rows(
        workspace, "logs", [(now - timedelta(minutes=9 - i), 20) for i in range(10)]
    )
    pools = [
        _pool(
            "plain",
            plain,
            quota_family="",  # from its VM size: the Resource SKUs list
            metric={
                "namespace": "Pexip/CVI",
                "name": "ActiveCalls",
                "published_elsewhere": True,
                "window_minutes": 5,
                "lag_minutes": 2,
            },
        ),
        _pool("tc", tc),
        _pool("teams", teams, kind="pexip-teams", teams_proxy="cvi-teams"),
        _nodes("burst", rg, "burst", "London"),
        _nodes("down", rg, "down", "Oslo", min_lifetime_minutes=0),
        _pool(
            "logs",
            logs,
            metric={
                "source": "log-analytics",
                "lag_minutes": 2,
                "log_analytics": {
                    "workspace_id": workspace,
                    "query": "PexipCalls_CL | summarize calls = dcount(CallId) by pool, "
                    "bin(TimeGenerated, 1m)",
                    "logs_url": world.logs.url,
                },
            },
        ),
    ]
    doc = {
        "daemon": {"once_wait_seconds": 10, "tick_deadline_seconds": 20},
        "azure": {
            "subscription_id": az.subscription_id,
            "location": "westeurope",
            "resource_manager_url": az.url,
            "metrics_url": az.url,
            "credential": "static-token",
            "ca_bundle": ca.get("azure", _bundle(world)),
            "polling_interval_seconds": 0,
            "retry_total": RETRY_TOTAL,
            "timeout_seconds": TIMEOUT,
            "call_deadline_seconds": DEADLINE,
            "max_pages": MAX_PAGES,
        },
        "pexip": {
            "url": px.url,
            "username": "admin",
            "ca_bundle": ca.get("pexip", px.ca_file),
            "page_size": 50,
            "timeout_seconds": TIMEOUT,
            "read_deadline_seconds": DEADLINE,
        },
        "pools": pools,
    }
    return parse_config(doc, environ={}), {"RESOURCE_ID": plain, "RG": rg}


def _bundle(world: World) -> str:
    """Azure's and Log Analytics' CAs in one file: ``[azure] ca_bundle`` serves both."""
    path = Path(world.azure.ca_file).with_name("azure-and-logs.pem")
    if not path.exists():
        text = Path(world.azure.ca_file).read_text() + Path(world.logs.ca_file).read_text()
        path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------------------- arming


def _answer(name: str, values: dict[str, str]) -> bytes:
    text = (ANSWERS / name).read_text(encoding="utf-8")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    values = {
        **values,
        "START": (now - timedelta(minutes=6)).isoformat().replace("+00:00", "Z"),
        "END": (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
    }
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode()


def arm(world: World, call: Call, fault: str, values: dict[str, str]) -> None:
    """Arm ``fault`` on ``call`` for the rest of the tick (``429-short``: once)."""
    html = _answer("any.gateway-502.html", values)
    login = _answer("any.login-page.html", values)
    if call.service == "logs":
        _arm_logs(world.logs, fault, values, html, login)
        return
    if call.service == "azure":
        az, m, p = world.azure, call.method, call.path
        if fault == "429-short":
            # azure-core honours Retry-After (fractional seconds too) and retries once
            az.inject_fault(
                m, p, status=429, code="TooManyRequests", headers={"Retry-After": "0.1"}
            )
        elif fault == "429-absurd":
            az.inject_fault(
                m,
                p,
                status=429,
                code="TooManyRequests",
                headers={"Retry-After": "3600"},
                times=FOREVER,
            )
        elif fault == "500-json":
            az.inject_fault(m, p, status=500, code="InternalServerError", times=FOREVER)
        elif fault == "502-html":
            az.inject_transport_fault(
                m, p, "raw", status=502, body=html, content_type="text/html", times=FOREVER
            )
        elif fault == "stall":
            az.inject_transport_fault(m, p, "stall", delay=STALL, times=FOREVER)
        elif fault in ("reset", "truncate"):
            az.inject_transport_fault(m, p, fault, times=FOREVER)
        elif fault == "redirect":
            az.inject_transport_fault(m, p, "redirect", body=ELSEWHERE.encode(), times=FOREVER)
        elif fault == "content-type":
            az.inject_transport_fault(
                m, p, "raw", status=200, body=login, content_type="text/html", times=FOREVER
            )
        elif fault in NEXT_LINKS:
            link = NEXT_LINKS[fault].replace("{host}", az.url.removeprefix("https://"))
            az.inject_transport_fault(m, p, "nextlink", body=link.encode(), times=FOREVER)
        else:  # a bad answer from the corpus
            az.inject_transport_fault(
                m,
                p,
                "raw",
                body=_answer(fault, values),
                content_type="application/json",
                times=FOREVER,
            )
        return
    px, m, p = world.pexip, call.method, call.path
    if fault == "429-short":  # httpx does not retry: a 429 fails the call
        px.inject_transport_fault(
            p,
            "raw",
            method=m,
            status=429,
            body=b'{"error": "throttled"}',
            content_type="application/json",
            headers={"Retry-After": "0.1"},
        )
    elif fault == "429-absurd":
        px.inject_transport_fault(
            p, "raw", method=m, status=429, body=b"", headers={"Retry-After": "3600"}, times=FOREVER
        )
    elif fault == "500-json":
        px.inject_fault(p, method=m, status=500, body='{"error": "internal"}', times=FOREVER)
    elif fault == "502-html":
        px.inject_transport_fault(
            p, "raw", method=m, status=502, body=html, content_type="text/html", times=FOREVER
        )
    elif fault == "stall":
        px.inject_transport_fault(p, "stall", method=m, delay=STALL, times=FOREVER)
    elif fault in ("reset", "truncate"):
        px.inject_transport_fault(p, fault, method=m, times=FOREVER)
    elif fault == "redirect":
        px.inject_transport_fault(p, "redirect", method=m, body=ELSEWHERE.encode(), times=FOREVER)
    elif fault == "content-type":
        px.inject_transport_fault(
            p, "raw", method=m, status=200, body=login, content_type="text/html", times=FOREVER
        )
    else:
        px.inject_transport_fault(
            p,
            "raw",
            method=m,
            body=_answer(fault, values),
            content_type="application/json",
            times=FOREVER,
        )


def _arm_logs(
    logs: FakeLogs, fault: str, values: dict[str, str], html: bytes, login: bytes
) -> None:
    """The Log Analytics query endpoint fails as ``FakeAzure`` does (the same SDK pipeline)."""
    throttled = b'{"error": {"code": "TooManyRequests", "message": "throttled"}}'
    if fault in ("429-short", "429-absurd"):
        after = "0.1" if fault == "429-short" else "3600"
        times = 1 if fault == "429-short" else FOREVER
        logs.inject_transport_fault(
            "raw", status=429, body=throttled, headers={"Retry-After": after}, times=times
        )
    elif fault == "500-json":
        logs.inject_fault(500, times=FOREVER)
    elif fault == "502-html":
        logs.inject_transport_fault(
            "raw", status=502, body=html, content_type="text/html", times=FOREVER
        )
    elif fault == "stall":
        logs.inject_transport_fault("stall", delay=STALL, times=FOREVER)
    elif fault in ("reset", "truncate"):
        logs.inject_transport_fault(fault, times=FOREVER)
    elif fault == "content-type":
        logs.inject_transport_fault(
            "raw", status=200, body=login, content_type="text/html", times=FOREVER
        )
    else:  # a bad answer from the corpus
        logs.inject_transport_fault("raw", body=_answer(fault, values), times=FOREVER)


def disarm(world: World) -> None:
    world.pexip.clear_faults()
    world.logs.clear_faults()
    with world.azure._lock:  # the fake has no public way to disarm unused faults
        world.azure._faults.clear()


# ---------------------------------------------------------------------------------- running


_ID = re.compile(r"/\d+/")


def _writes(world: World, rg: str, since: tuple[int, int]) -> Counter[str]:
    """Writes since ``since`` (request counts of both fakes), as comparable text."""
    out: Counter[str] = Counter()
    for r in world.azure.requests[since[0] :]:
        if r.is_write:
            body = json.dumps(r.body, sort_keys=True) if r.body is not None else ""
            out[f"azure {r.method} {r.path} {body}".replace(rg, "RG")] += 1
    for q in world.pexip.requests[since[1] :]:
        if q.method in ("PATCH", "PUT", "POST", "DELETE"):
            out[
                f"pexip {q.method} {_ID.sub('/ID/', q.path)} {json.dumps(q.body, sort_keys=True)}"
            ] += 1
    return out


def _settle(daemon: Daemon) -> None:
    """Let the resizes started in the tick finish polling (so an LRO fault meets its polls)."""
    waited = 0.0
    while any(not op.handle.done() for op in daemon.ticker.inflight.values()) and waited < 10:
        time.sleep(0.01)
        waited += 0.01


def _errors(metrics: CallMetrics) -> float:
    return sum(
        s.value
        for fam in metrics.errors.collect()
        for s in fam.samples
        if s.name.endswith("_total")
    )


def run(world: World, call: Call | None, fault: str | None) -> Run:
    config, values = build(world)
    clock = ManualClock(time.time())
    registry = CollectorRegistry()
    metrics = CallMetrics(registry)
    result = Run([], [], [], [], [])
    adapters = Adapters(config, clock=clock, observer=metrics)  # no start-up checks: ticks only
    try:
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=clock,
        )
        for tick in range(2):
            if tick == 0 and call is not None and fault is not None:
                arm(world, call, fault, values)
            since = (len(world.azure.requests), len(world.pexip.requests))
            before = _errors(metrics)
            with capture_logs() as events:
                outcomes = daemon.tick()
                _settle(daemon)
            disarm(world)
            result.ticks.append(outcomes)
            result.events.append(events)
            result.writes.append(_writes(world, values["RG"], since))
            result.requests.append(
                len(world.azure.requests) - since[0] + len(world.pexip.requests) - since[1]
            )
            result.errors.append(_errors(metrics) - before)
            clock.advance(60)
    finally:
        adapters.close()
    return result


@pytest.fixture(scope="module")
def healthy(world: World) -> Run:
    return run(world, None, None)


def _decided(outcomes: list[PoolOutcome]) -> dict[str, tuple[Any, ...]]:
    return {o.pool: (o.current, o.desired, o.reason, o.error is None) for o in outcomes}


# ---------------------------------------------------------------------------------- the tests


def test_the_healthy_world_makes_every_call_of_the_matrix(world: World, healthy: Run) -> None:
    """The world exercises every call the matrix faults, and writes what each pool needs."""
    first = _decided(healthy.ticks[0])
    assert first["plain"][:2] == (1, 5)
    assert first["tc"][:3] == (3, 2, "WaitingForIdle")
    assert first["teams"][:2] == (2, 4)
    assert first["burst"][:2] == (0, 1)
    assert first["down"][:2] == (1, 0)
    assert first["logs"][:2] == (2, 2)  # 20 calls, 12 per instance at 80 %
    writes = " | ".join(healthy.writes[0] + healthy.writes[1])
    for needed in (
        "PATCH /subscriptions",
        "/tc/delete",
        "/tc/virtualMachines/0",
        "burst-1/start",
        "down-1/deallocate",
        "teams_proxy/ID/",
        "worker_vm/ID/",
    ):
        assert needed in writes
    assert all(not e for e in healthy.errors)
    assert not [e for ev in healthy.events for e in ev if e["log_level"] in ("error", "critical")]


def test_every_metric_source_has_its_row() -> None:
    """A source's reader is proven against every fault through its calls' rows."""
    assert set(SOURCE_ROWS) == set(SOURCES)
    rows = {c.id for c in CALLS}
    assert all(set(ids) <= rows for ids in SOURCE_ROWS.values())


CASES = [
    pytest.param(call, fault, id=f"{call.id}-{fault}")
    for call in CALLS
    for fault in (FAULTS if call.id in FULL else CORE)
    + call.answers
    + (tuple(NEXT_LINKS) if call.id in LISTS else ())
]


@pytest.mark.parametrize(("call", "fault"), CASES)
def test_one_failing_call_holds_only_its_pools(
    world: World, healthy: Run, call: Call, fault: str
) -> None:
    got = run(world, call, fault)

    # the daemon keeps ticking: both ticks decide every pool, nothing escapes
    for outcomes, events in zip(got.ticks, got.events, strict=True):
        assert [o.pool for o in outcomes] == list(POOLS)
        assert not [e for e in events if e["event"] == "tick.failed"]

    # only the pools the call concerns may decide otherwise
    want, seen = _decided(healthy.ticks[0]), _decided(got.ticks[0])
    for pool in POOLS:
        if pool not in call.pools:
            assert seen[pool] == want[pool], f"{pool} is not concerned by {call.id}"

    # no write the true state would not justify: each is one the healthy run makes too
    # (a write that failed may be tried again by the SDK, and once more by the next tick)
    justified = healthy.writes[0] + healthy.writes[1]
    for tick, tries in enumerate((RETRY_TOTAL + 1, 1)):
        for write, n in got.writes[tick].items():
            assert write in justified, f"unjustified write {write}"
            assert n <= tries * justified[write], f"{write} {n} times in tick {tick}"

    # a bounded number of requests: at most every healthy request retried
    assert got.requests[0] <= (RETRY_TOTAL + 1) * healthy.requests[0] + 4

    # said once, counted
    failing = got.errors[0] + got.errors[1]
    warned = [e for ev in got.events for e in ev if e["log_level"] in ("warning", "error")]
    for events in got.events:
        per_pool = Counter(
            (e["event"], e.get("pool"), e.get("location"))
            for e in events
            if e["log_level"] in ("warning", "error")
        )
        assert max(per_pool.values(), default=1) == 1, per_pool
    changed = _decided(got.ticks[0]) != want
    # the second tick, faults gone, runs without an error anywhere
    assert all(o.error is None for o in got.ticks[1]), [o for o in got.ticks[1] if o.error]
    if changed:  # a decision that differs says why, in a warning
        assert warned, "a decision changed by a failure nobody is told of"
        # an answer that came but is unusable is a failed call; or the reading says so
        assert failing >= 1 or any(e["event"].startswith("metrics.") for e in warned)
    if failing:  # a failed call is told, unless the SDK's own retry recovered it
        assert warned, "a failed call nobody is told of"


@pytest.mark.parametrize("service", ["azure", "pexip"])
def test_a_certificate_nobody_trusts_holds_and_writes_nothing(
    world: World, healthy: Run, service: str
) -> None:
    """TLS failure: the client is given the other fake's CA, so no request reaches the server;
    the pools that need the service hold, the others decide as in the healthy run."""
    other = world.pexip.ca_file if service == "azure" else world.azure.ca_file
    config, values = build(world, **{service: other})
    clock = ManualClock(time.time())
    metrics = CallMetrics(CollectorRegistry())
    since = (len(world.azure.requests), len(world.pexip.requests))
    with capture_logs() as events:
        adapters = Adapters(config, clock=clock, observer=metrics)
        try:
            daemon = Daemon(
                config=config,
                metrics=adapters.metrics,
                actuator=adapters.compute,
                quota=adapters.compute,
                clock=clock,
            )
            first = daemon.tick()
            _settle(daemon)
            clock.advance(60)
            second = daemon.tick()
        finally:
            adapters.close()
    writes = _writes(world, values["RG"], since)
    if service == "azure":
        assert writes == Counter()
    else:  # plain reads Azure alone: its scale-up is the healthy run's
        assert set(writes) <= set(healthy.writes[0]) and not any("pexip" in w for w in writes)
    served = world.azure if service == "azure" else world.pexip
    assert len(served.requests) == since[0 if service == "azure" else 1]
    assert [o.pool for o in first] == [o.pool for o in second] == list(POOLS)
    assert not [e for e in events if e["event"] == "tick.failed"]
    if service == "pexip":  # plain reads Azure alone
        assert _decided(first)["plain"] == _decided(healthy.ticks[0])["plain"]
    else:
        assert all(o.reason == "ObserveFailed" for o in first + second)
    assert _errors(metrics) >= 1
    assert [e for e in events if e["log_level"] in ("warning", "error")]
