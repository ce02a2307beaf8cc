"""Azure adapters under a hostile network: the real SDK clients against the HTTPS fake.

Issue 11, findings 2, 3, 4 and 7, and the fault matrix: whatever Azure (or a gateway in front of
it) answers, every call the adapters make ends promptly in an ``AdapterError`` (or, for metrics, a
``MISSING`` reading), after a bounded number of requests counted by the fake; metric values that
cannot be a load never become calls; a capacity computed from a stale read is never written.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaler.adapters.azure import REDIRECT_MAX, AzureCompute, AzureMonitorMetrics, make_credential
from scaler.config import Config, parse_config
from scaler.core.metrics import screen_series
from scaler.core.types import MetricReading, MetricStatus
from scaler.errors import AdapterError, PermanentError, TransientError
from tests.fakeazure import FakeAzure

RETRY_TOTAL = 2
DEADLINE = 4.0
"""``[azure] call_deadline_seconds`` of these tests."""
TIMEOUT = 2.0
"""``[azure] timeout_seconds`` (connect and read) of these tests: the budget of a healthy call,
never below 2 s, so that a loaded machine cannot make a healthy call time out."""
STALL = 60.0
"""Seconds a stalled answer waits: far past ``DEADLINE``, so a stall is never an answer."""
PROMPT = 30.0
"""A generous bound on how long one failing call may take here (the deadline is 4 s); the point
is that nothing sleeps a ``Retry-After`` of an hour or hangs on a stalled connection."""
HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def now_minute() -> datetime:
    """The current minute, read when a test writes its metrics (not when the module was
    imported: under xdist a module's tests may start minutes after collection, and metrics
    dated then are outside the read window)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


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


def pool_table(rid: str, pool: str = "tc", **metric: Any) -> dict[str, Any]:
    return {
        "name": pool,
        "resource_id": rid,
        "vcpus_per_instance": 4,
        "quota_family": "standardFSv2Family",
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
            **metric,
        },
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }


def config(fake: FakeAzure, *pools: dict[str, Any], **azure: Any) -> Config:
    return parse_config(
        {
            "azure": {
                "subscription_id": fake.subscription_id,
                "location": "westeurope",
                "resource_manager_url": fake.url,
                "metrics_url": fake.url,
                "credential": "static-token",
                "ca_bundle": fake.ca_file,
                "polling_interval_seconds": 0,
                "retry_total": RETRY_TOTAL,
                "call_deadline_seconds": DEADLINE,
                "timeout_seconds": TIMEOUT,
                **azure,
            },
            "pools": list(pools),
        }
    )


def per_vm(
    fake: FakeAzure,
    rid: str,
    values: dict[str, list[float | None]],
    *,
    unit: str = "Count",
    namespace: str = "Pexip/CVI",
    name: str = "ActiveCalls",
) -> None:
    """Per-VM values for the last minutes, the list ending at the current minute."""
    now = now_minute()
    for vm, series in values.items():
        points = [(now - timedelta(minutes=len(series) - 1 - i), v) for i, v in enumerate(series)]
        fake.set_metric(rid, namespace, name, points, dimension=("VMName", vm), unit=unit)


@dataclass
class Adapters:
    fake: FakeAzure
    config: Config
    metrics: AzureMonitorMetrics
    compute: AzureCompute

    @property
    def pool(self) -> Any:
        return self.config.pools[0]


@pytest.fixture
def azure(fake: FakeAzure) -> Iterator[Adapters]:
    rid = fake.add_vmss("cvi", "tc", capacity=6)
    fake.set_usage("westeurope", "cores", current=24, limit=400)
    fake.set_usage("westeurope", "standardFSv2Family", current=24, limit=200)
    per_vm(fake, rid, {f"tc_{i}": [10.0] * 8 for i in range(6)})
    cfg = config(fake, pool_table(rid))
    credential = make_credential(cfg.azure)
    metrics = AzureMonitorMetrics(cfg, credential)
    compute = AzureCompute(cfg, credential)
    try:
        yield Adapters(fake, cfg, metrics, compute)
    finally:
        metrics.close()
        compute.close()


# ================================================================ the fault matrix


@dataclass(frozen=True)
class Call:
    """One call the daemon makes: which requests a fault targets, and how to make the call."""

    method: str
    path: str
    run: Callable[[Adapters], object]


def _read_metrics(a: Adapters) -> object:
    reading = a.metrics.read(a.config.pools, time.time())[a.pool.name]
    if reading.status is MetricStatus.MISSING:
        # The port's contract: a failed read is a MISSING reading with the error, never a raise.
        raise _Missing(reading)
    return reading


def _patch(a: Adapters) -> object:
    a.compute.observe(a.pool)
    return a.compute.resize(a.pool, 8)


def _poll(a: Adapters) -> object:
    a.compute.observe(a.pool)
    handle = a.compute.resize(a.pool, 8)
    handle.result(timeout=PROMPT)
    return handle


class _Missing(Exception):
    def __init__(self, reading: MetricReading) -> None:
        super().__init__(reading.detail)
        self.reading = reading


CALLS = {
    "metrics.getBatch": Call("POST", r"/metrics:getBatch$", _read_metrics),
    "usage.list": Call("GET", r"/usages$", lambda a: a.compute.usage("westeurope")),
    "vmss.get": Call("GET", r"/virtualMachineScaleSets/tc$", lambda a: a.compute.observe(a.pool)),
    "vmss.patch": Call("PATCH", r"/virtualMachineScaleSets/tc$", _patch),
    "lro.poll": Call("GET", r"/operations/", _poll),
}


@dataclass(frozen=True)
class Fault:
    arm: Callable[[FakeAzure, Call], None]
    expect: type[AdapterError]


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> Fault:
    def arm(fake: FakeAzure, call: Call) -> None:
        fake.inject_fault(
            call.method, call.path, status=status, code=code, headers=headers, times=100
        )

    expect = PermanentError if 400 <= status < 500 and status != 429 else TransientError
    return Fault(arm, expect)


def _transport(kind: str, expect: type[AdapterError], **kw: Any) -> Fault:
    def arm(fake: FakeAzure, call: Call) -> None:
        fake.inject_transport_fault(call.method, call.path, kind, times=100, **kw)

    return Fault(arm, expect)


def _redirect_loop() -> Fault:
    def arm(fake: FakeAzure, call: Call) -> None:
        # The call is sent on to a path that is itself redirected: a loop.
        loop = f"{fake.url}/elsewhere".encode()
        fake.inject_transport_fault(call.method, call.path, "redirect", body=loop, times=100)
        fake.inject_transport_fault("*", r"^/elsewhere$", "redirect", body=loop, times=100)

    return Fault(arm, AdapterError)


FAULTS = {
    "429-short-retry-after": _error(429, "TooManyRequests", {"Retry-After": "1"}),
    "429-absurd-retry-after": _error(429, "TooManyRequests", {"Retry-After": "3600"}),
    "503-absurd-retry-after": _error(503, "ServiceUnavailable", {"Retry-After": "3600"}),
    "500-json": _error(500, "InternalServerError"),
    "403-json": _error(403, "AuthorizationFailed"),
    "404-json": _error(404, "ResourceNotFound"),
    "502-html": _transport("raw", TransientError, status=502, body=HTML, content_type="text/html"),
    "403-html": _transport("raw", PermanentError, status=403, body=HTML, content_type="text/html"),
    "200-html": _transport("raw", TransientError, status=200, body=HTML, content_type="text/html"),
    "200-json-of-another-shape": _transport(
        "raw", TransientError, status=200, body=b"[1, 2]", content_type="application/json"
    ),
    "truncated-body": _transport("truncate", TransientError),
    "connection-reset": _transport("reset", TransientError),
    "read-timeout": _transport("stall", TransientError, delay=STALL),
    "redirect-loop": _redirect_loop(),
}


@pytest.mark.parametrize("fault_name", sorted(FAULTS))
@pytest.mark.parametrize("call_name", sorted(CALLS))
def test_every_fault_on_every_call_ends_promptly_in_an_adapter_error(
    azure: Adapters, call_name: str, fault_name: str
) -> None:
    call, fault = CALLS[call_name], FAULTS[fault_name]
    fault.arm(azure.fake, call)
    azure.fake.clear_requests()
    started = time.monotonic()
    with pytest.raises((AdapterError, _Missing)) as caught:
        call.run(azure)
    elapsed = time.monotonic() - started

    assert elapsed < PROMPT
    err = caught.value
    if isinstance(err, _Missing):  # metrics: the reading says why, and nothing was raised
        assert err.reading.status is MetricStatus.MISSING
        assert "metrics.query_resources" in err.reading.detail
    else:
        assert isinstance(err, fault.expect), f"{type(err).__name__}: {err}"
        assert err.operation
    hit = [r for r in azure.fake.requests if r.method == call.method or call.method == "*"]
    assert 1 <= len(hit) <= (RETRY_TOTAL + 1) * (REDIRECT_MAX + 1) + 2


# ================================================================ finding 2: Retry-After


def test_a_retry_after_beyond_the_deadline_is_a_hold_not_a_sleep(azure: Adapters) -> None:
    """Finding 2: a 429 with ``Retry-After: 3600`` on metrics hung ``once`` for > 600 s."""
    azure.fake.inject_fault(
        "POST",
        r"metrics:getBatch",
        status=429,
        code="TooManyRequests",
        headers={"Retry-After": "3600"},
        times=100,
    )
    started = time.monotonic()
    reading = azure.metrics.read(azure.config.pools, time.time())["tc"]
    assert time.monotonic() - started < PROMPT
    assert reading.status is MetricStatus.MISSING
    assert "TooManyRequests" in reading.detail
    assert len(azure.fake.requests) == 1  # not retried: the wait would end past the deadline


def test_a_short_retry_after_is_honoured_by_the_sdk(azure: Adapters) -> None:
    azure.fake.inject_fault(
        "POST",
        r"metrics:getBatch",
        status=429,
        code="TooManyRequests",
        headers={"Retry-After": "1"},
    )
    reading = azure.metrics.read(azure.config.pools, time.time())["tc"]
    assert (reading.status, reading.calls) == (MetricStatus.OK, 60.0)
    assert len(azure.fake.requests) == 2  # the throttled request and its retry


def test_retries_stop_at_the_call_deadline(azure: Adapters) -> None:
    """Each Retry-After fits, but all of them together do not: the SDK's own loop stops at the
    deadline instead of running ``retry_total`` times whatever the cost."""
    azure.fake.inject_fault(
        "GET",
        r"/virtualMachineScaleSets/tc$",
        status=503,
        code="ServiceUnavailable",
        headers={"Retry-After": "3"},
        times=100,
    )
    started = time.monotonic()
    with pytest.raises(TransientError, match="ServiceUnavailable"):
        azure.compute.observe(azure.pool)
    assert time.monotonic() - started < PROMPT
    assert len(azure.fake.requests) == 2  # at 0 s and 3 s; a third at 6 s would pass 4 s


def test_a_stalled_answer_is_cut_at_the_deadline(fake: FakeAzure) -> None:
    """With a read timeout longer than the deadline, the deadline still bounds the call."""
    rid = fake.add_vmss("cvi", "tc", capacity=6)
    cfg = config(fake, pool_table(rid), timeout_seconds=60, call_deadline_seconds=2)
    fake.inject_transport_fault("GET", r"/virtualMachineScaleSets/tc$", "stall", delay=20, times=9)
    compute = AzureCompute(cfg, make_credential(cfg.azure))
    try:
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"vmss\.get: Response timeout"):
            compute.observe(cfg.pools[0])
        assert time.monotonic() - started < 15  # not 60 s of read timeout, not 20 s of stall
    finally:
        compute.close()


# ================================================================ finding 3: non-JSON answers


def test_an_html_error_page_on_metrics_holds_only_the_pools_it_answered_for(
    fake: FakeAzure,
) -> None:
    """Finding 3: a 502 HTML page on metrics raised ``JSONDecodeError`` out of the tick."""
    a = fake.add_vmss("cvi", "a", capacity=2)
    b = fake.add_vmss("cvi", "b", capacity=2)
    per_vm(fake, a, {"a_0": [20.0] * 8})
    now = now_minute()
    moments = [now - timedelta(minutes=7 - i) for i in range(8)]
    fake.set_metric(
        b,
        "Microsoft.Compute/virtualMachineScaleSets",
        "Percentage CPU",
        [(t, 50.0) for t in moments],
        unit="Percent",
    )
    cfg = config(
        fake,
        pool_table(a, pool="a"),
        pool_table(
            b,
            pool="b",
            namespace="Microsoft.Compute/virtualMachineScaleSets",
            name="Percentage CPU",
            filter="",
            published_elsewhere=False,
        ),
    )
    # Pool a's batch (metric ActiveCalls) meets the gateway's error page; pool b's batch
    # (Percentage CPU) does not. The batches go out concurrently, so the fault picks its batch
    # by the query's metric name, not by arrival order.
    fake.inject_transport_fault(
        "POST",
        r"metrics:getBatch",
        "raw",
        status=502,
        body=HTML,
        content_type="text/html",
        content_regex=r"metricnames=ActiveCalls(&|$)",
    )
    metrics = AzureMonitorMetrics(cfg, make_credential(cfg.azure))
    try:
        readings = metrics.read(cfg.pools, time.time())
    finally:
        metrics.close()
    assert readings["a"].status is MetricStatus.MISSING
    assert "502" in readings["a"].detail
    assert (readings["b"].status, readings["b"].calls) == (MetricStatus.OK, 50.0)


@pytest.mark.parametrize(
    "body",
    [
        b'{"values": [{"value": [{"timeseries": "x"}]}]}',
        b'{"values": [{"value": [{"id": 5, "unit": "Count", "timeseries": [{"data": [{}]}]}]}]}',
        b'{"values": [{"value": [{"unit": "Count", "timeseries": [{"data": '
        b'[{"timeStamp": "{t}", "maximum": "ten"}]}]}]}]}',
    ],
    ids=["timeseries-not-a-list", "no-timestamp", "value-not-a-number"],
)
def test_metrics_json_of_another_shape_is_a_missing_reading(azure: Adapters, body: bytes) -> None:
    in_window = (now_minute() - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = body.replace(b"{t}", in_window.encode())
    azure.fake.inject_transport_fault(
        "POST", r"metrics:getBatch", "raw", body=body, content_type="application/json"
    )
    reading = azure.metrics.read(azure.config.pools, time.time())["tc"]
    assert reading.status is MetricStatus.MISSING
    assert "could not be read" in reading.detail or "invalid value 'ten'" in reading.detail


def test_a_login_page_instead_of_the_scale_set_is_transient(azure: Adapters) -> None:
    azure.fake.inject_transport_fault(
        "GET", r"/virtualMachineScaleSets/tc$", "raw", body=HTML, content_type="text/html"
    )
    with pytest.raises(TransientError, match="HTTP 200 could not be read"):
        azure.compute.observe(azure.pool)
    assert azure.compute.observe(azure.pool).capacity == 6  # the next read is fine


# ================================================================ finding 4: invalid values


@pytest.mark.parametrize(
    "bad",
    [-25.0, math.nan, math.inf, 1e7],
    ids=["negative", "nan", "inf", "absurd"],
)
def test_one_invalid_vm_value_makes_the_whole_reading_missing(azure: Adapters, bad: float) -> None:
    """Finding 4: per-VM ``[30, -25, 0, 0, 0, 0]`` read as 5 calls and PATCHed 6 → 5."""
    rid = azure.pool.resource_id
    values = [30.0, bad, 0.0, 0.0, 0.0, 0.0]
    per_vm(azure.fake, rid, {f"tc_{i}": [v] * 8 for i, v in enumerate(values)})
    reading = azure.metrics.read(azure.config.pools, time.time())["tc"]
    assert reading.status is MetricStatus.MISSING
    assert reading.calls is None
    assert "tc_1" in reading.detail and "invalid value" in reading.detail


def test_an_invalid_value_outside_the_window_is_only_an_unknown_bucket(fake: FakeAzure) -> None:
    """Older history and the minutes still filling are not what the reading stands on."""
    rid = fake.add_vmss("cvi", "tc", capacity=2)
    per_vm(fake, rid, {"tc_0": [-5.0] + [10.0] * 12 + [-7.0], "tc_1": [10.0] * 14})
    cfg = config(fake, pool_table(rid, history_minutes=30))
    metrics = AzureMonitorMetrics(cfg, make_credential(cfg.azure))
    try:
        reading = metrics.read(cfg.pools, time.time())["tc"]
    finally:
        metrics.close()
    assert (reading.status, reading.calls) == (MetricStatus.OK, 20.0)
    assert reading.history[0][1] is None  # the -5 minute: unknown, not 5 calls


@pytest.mark.parametrize("unit", ["Percent", "Bytes", "BytesPerSecond"])
def test_a_metric_in_another_unit_is_not_read_as_calls(azure: Adapters, unit: str) -> None:
    """Finding 4: a metric whose unit is ``Percent`` or ``Bytes`` was read as calls."""
    per_vm(azure.fake, azure.pool.resource_id, {"tc_0": [10.0] * 8}, unit=unit)
    reading = azure.metrics.read(azure.config.pools, time.time())["tc"]
    assert reading.status is MetricStatus.MISSING
    assert repr(unit) in reading.detail and "Count" in reading.detail


_LOAD = {"namespace": "Contoso/Pexip", "name": "LoadPercent", "published_elsewhere": False}
"""A custom percentage metric (another team's), read as ``percent_of_capacity``."""


@pytest.mark.parametrize(
    ("unit", "metric", "status"),
    [
        ("Count", {}, MetricStatus.OK),
        ("Unspecified", {}, MetricStatus.OK),  # a custom metric is ingested without a unit
        ("Count", {**_LOAD, "meaning": "percent_of_capacity"}, MetricStatus.MISSING),
        ("Percent", {**_LOAD, "meaning": "percent_of_capacity"}, MetricStatus.OK),
        ("Unspecified", {**_LOAD, "meaning": "percent_of_capacity"}, MetricStatus.MISSING),
        (
            "Unspecified",
            {**_LOAD, "meaning": "percent_of_capacity", "unit": "Unspecified"},
            MetricStatus.OK,
        ),
        ("Percent", {"unit": "Count"}, MetricStatus.MISSING),
    ],
)
def test_the_unit_must_match_what_the_metric_means(
    fake: FakeAzure, unit: str, metric: dict[str, Any], status: MetricStatus
) -> None:
    rid = fake.add_vmss("cvi", "tc", capacity=6)
    where = {k: metric[k] for k in ("namespace", "name") if k in metric}
    per_vm(fake, rid, {"tc_0": [10.0] * 8}, unit=unit, **where)
    cfg = config(fake, pool_table(rid, **metric))
    metrics = AzureMonitorMetrics(cfg, make_credential(cfg.azure))
    try:
        assert metrics.read(cfg.pools, time.time())["tc"].status is status
    finally:
        metrics.close()


_VALID = st.floats(min_value=0, max_value=1e6, allow_nan=False)
_INVALID = st.one_of(
    st.floats(max_value=-1e-9),
    st.just(math.nan),
    st.just(math.inf),
    st.floats(min_value=1e6, exclude_min=True),
)


@given(
    rows=st.lists(st.lists(_VALID, min_size=5, max_size=5), min_size=1, max_size=6),
    bad=_INVALID,
    where=st.tuples(st.integers(0, 5), st.integers(0, 4)),
)
def test_no_invalid_element_in_the_window_ever_reaches_a_sum(
    rows: list[list[float]], bad: float, where: tuple[int, int]
) -> None:
    """Whatever the other VMs say, one invalid value in the window: no series comes back."""
    vm, minute = where[0] % len(rows), where[1]
    rows[vm][minute] = bad
    now = 10_000 * 60.0
    # five complete minutes ending one lag (2 min) plus one bucket before now
    starts = [now - (2 + 1 + 4 - i) * 60 for i in range(5)]
    series = [(f"vm{j}", list(zip(starts, row, strict=True))) for j, row in enumerate(rows)]
    clean, detail = screen_series(series, now=now, window_seconds=300, lag_seconds=120)
    assert clean == [] and f"vm{vm}" in detail


# ================================================================ finding 7: stale capacity


def test_a_resize_from_a_stale_read_is_refused_and_removes_nothing(azure: Adapters) -> None:
    """Finding 7: read 6, an operator set 16, the daemon PATCHed 12 and removed 4 instances."""
    status = azure.compute.observe(azure.pool)
    assert (status.capacity, status.etag) == (6, azure.fake.vmss_etag("cvi", "tc"))
    azure.fake.set_vmss_capacity("cvi", "tc", 16)  # the operator, between our read and write

    with pytest.raises(TransientError, match="changed since it was read") as caught:
        azure.compute.resize(azure.pool, 12)
    assert (caught.value.status, caught.value.code) == (412, "PreconditionFailed")
    assert azure.fake.vmss_capacity("cvi", "tc") == 16
    (patch,) = [r for r in azure.fake.requests if r.method == "PATCH"]
    assert patch.headers.get("If-Match") == status.etag

    # The next tick reads again and may write from the new truth.
    assert azure.compute.observe(azure.pool).capacity == 16
    azure.compute.resize(azure.pool, 17).result(timeout=PROMPT)
    assert azure.fake.vmss_capacity("cvi", "tc") == 17


def test_a_resize_from_a_fresh_read_carries_its_etag_and_applies(azure: Adapters) -> None:
    status = azure.compute.observe(azure.pool)
    azure.compute.resize(azure.pool, 5).result(timeout=PROMPT)
    assert azure.fake.vmss_capacity("cvi", "tc") == 5
    (patch,) = [r for r in azure.fake.requests if r.method == "PATCH"]
    assert patch.headers.get("If-Match") == status.etag


def test_an_explicit_etag_from_an_older_read_is_refused(azure: Adapters) -> None:
    old = azure.compute.observe(azure.pool).etag
    azure.fake.set_vmss_capacity("cvi", "tc", 9)
    azure.compute.observe(azure.pool)  # someone read again, but this decision was made on `old`
    with pytest.raises(TransientError, match="changed since it was read"):
        azure.compute.resize(azure.pool, 4, etag=old)
    assert azure.fake.vmss_capacity("cvi", "tc") == 9


def test_without_an_etag_the_capacity_is_read_again_before_the_write(azure: Adapters) -> None:
    azure.fake.serve_vmss_etag = False
    status = azure.compute.observe(azure.pool)
    assert (status.capacity, status.etag) == (6, None)
    azure.fake.set_vmss_capacity("cvi", "tc", 16)
    azure.fake.clear_requests()

    with pytest.raises(TransientError, match="6 → 16"):
        azure.compute.resize(azure.pool, 12)
    assert azure.fake.vmss_capacity("cvi", "tc") == 16
    assert [r.method for r in azure.fake.requests] == ["GET"]  # the re-read, and no PATCH

    azure.compute.observe(azure.pool)
    azure.compute.resize(azure.pool, 17).result(timeout=PROMPT)
    assert azure.fake.vmss_capacity("cvi", "tc") == 17
