"""The log-analytics metric source through the real ``LogsQueryClient`` against an HTTPS fake.

What an operator notices: the pools read their calls from the configured KQL query with the
same lag, staleness and fail-closed rules as the other sources (a null or absent minute is
unknown, never 0; an invalid value, a duplicate minute, a partial answer or a broken contract
holds the pool), pools sharing a query cost one query per tick, and a pool whose Management
Node is down reads the query as its fallback.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.adapters.azure import StaticTokenCredential
from scaler.adapters.azure_logs import LogAnalyticsMetrics, history_chunks
from scaler.config import Config, PoolConfig, parse_config
from scaler.core.types import MetricReading, MetricStatus
from scaler.errors import ConfigError, PermanentError
from scaler.wiring import MetricsRouter
from tests.conftest import examples
from tests.fakelogs import FakeLogs

WS = "11111111-2222-3333-4444-555555555555"
SUB = "00000000-0000-0000-0000-000000000001"
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
QUERY = "PexipCalls_CL | summarize calls = dcount(CallId) by pool, bin(TimeGenerated, 1m)"


def _rid(name: str) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/cvi/providers/"
        f"Microsoft.Compute/virtualMachineScaleSets/{name}"
    )


def _pool(name: str, **metric: Any) -> dict[str, Any]:
    return {
        "name": name,
        "resource_id": _rid(name),
        "vcpus_per_instance": 4,
        "min": 1,
        "max": 20,
        "metric": {
            "source": "log-analytics",
            "window_minutes": 5,
            "lag_minutes": 2,
            **metric,
        },
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }


def _config(fake: FakeLogs, *pools: dict[str, Any], retry_total: int = 0) -> Config:
    for p in pools:
        la = p["metric"].setdefault("log_analytics", {})
        la.setdefault("workspace_id", WS)
        la.setdefault("query", QUERY)
        la.setdefault("logs_url", fake.url)
    azure = {"location": "westeurope", "retry_total": retry_total}
    return parse_config({"azure": azure, "pools": list(pools)})


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeLogs]:
    with FakeLogs(tmp_path) as f:
        yield f


def _source(fake: FakeLogs, config: Config) -> LogAnalyticsMetrics:
    return LogAnalyticsMetrics(config, StaticTokenCredential("t"), connection_verify=fake.ca_file)


def _minutes_back(values: Sequence[Any]) -> list[tuple[datetime, Any]]:
    """Values for the minutes ending at NOW's minute (last value = NOW's minute)."""
    top = NOW.replace(second=0)
    return [(top - timedelta(minutes=len(values) - 1 - i), v) for i, v in enumerate(values)]


def _read(fake: FakeLogs, config: Config) -> Mapping[str, MetricReading]:
    source = _source(fake, config)
    try:
        return source.read(config.pools, NOW.timestamp())
    finally:
        source.close()


def test_pools_read_their_calls_with_one_query_per_tick(fake: FakeLogs) -> None:
    config = _config(fake, _pool("a"), _pool("b"))
    # Window 5 min, lag 2: minutes NOW-7 … NOW-3 count; the newest ones are still filling.
    fake.add_rows(WS, "a", _minutes_back([1, 2, 4, 5, 6, 8, 7, 99, 99]))
    fake.add_rows(WS, "b", _minutes_back([0, 0, 2, 3, 2, 1, 0, 50, 50]))
    fake.add_rows(WS, "not-a-pool", _minutes_back([500] * 9))
    readings = _read(fake, config)
    assert readings["a"].status is MetricStatus.OK and readings["a"].calls == 8.0
    assert readings["b"].status is MetricStatus.OK and readings["b"].calls == 3.0
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    assert sent.query == QUERY and sent.workspace == WS
    assert sent.headers["authorization"] == "Bearer t"


def test_null_or_absent_minutes_are_unknown_never_zero(fake: FakeLogs) -> None:
    config = _config(fake, _pool("a"), _pool("b"), _pool("c"))
    fake.add_rows(WS, "a", _minutes_back([None, None, None, None, None, 1, 1]))
    fake.add_rows(WS, "b", _minutes_back([4, None, None, None, None, None, 0, 0, 0]))
    readings = _read(fake, config)
    assert readings["a"].status is MetricStatus.STALE and readings["a"].calls is None
    assert readings["b"].status is MetricStatus.STALE and readings["b"].calls is None
    assert readings["c"].status is MetricStatus.MISSING
    assert "no row for pool c" in readings["c"].detail


@pytest.mark.parametrize("bad", ["-3", "NaN", "lots", "1e400", True])
def test_an_invalid_value_in_the_window_holds_the_pool(fake: FakeLogs, bad: Any) -> None:
    config = _config(fake, _pool("a"))
    fake.add_rows(WS, "a", _minutes_back([5, 5, bad, 5, 5, 5, 5]))
    reading = _read(fake, config)["a"]
    assert reading.status is MetricStatus.MISSING
    assert "invalid value" in reading.detail


def test_two_rows_for_one_minute_hold_the_pool(fake: FakeLogs) -> None:
    config = _config(fake, _pool("a"))
    fake.add_rows(WS, "a", _minutes_back([5, 5, 5, 5, 5, 5, 5]))
    fake.add_rows(WS, "a", _minutes_back([5, 5, 5]))
    reading = _read(fake, config)["a"]
    assert reading.status is MetricStatus.MISSING and "two rows for minute" in reading.detail


def test_a_query_that_breaks_the_contract_names_the_columns(fake: FakeLogs) -> None:
    config = _config(fake, _pool("a"))
    fake.set_columns(WS, [("TimeGenerated", "datetime"), ("Computer", "string")])
    fake.add_rows(WS, "a", _minutes_back([5, 5, 5]))
    reading = _read(fake, config)["a"]
    assert reading.status is MetricStatus.MISSING
    assert "lacks column(s) pool, calls" in reading.detail


def test_a_partial_answer_holds_rather_than_undercounts(fake: FakeLogs) -> None:
    config = _config(fake, _pool("a"))
    fake.add_rows(WS, "a", _minutes_back([5, 5, 5, 5, 5, 5, 5]))
    fake.set_partial(WS, "Query result set has exceeded the internal record count limit")
    reading = _read(fake, config)["a"]
    assert reading.status is MetricStatus.MISSING and "partial answer" in reading.detail


@pytest.mark.parametrize(("status", "code"), [(500, "InternalServerError"), (403, "Forbidden")])
def test_service_errors_hold_the_pool(fake: FakeLogs, status: int, code: str) -> None:
    config = _config(fake, _pool("a"))
    fake.add_rows(WS, "a", _minutes_back([5, 5, 5, 5, 5, 5, 5]))
    fake.inject_fault(status, code)
    reading = _read(fake, config)["a"]
    assert reading.status is MetricStatus.MISSING
    assert "logs.query_workspace" in reading.detail


def test_the_sdk_retries_a_server_error_once_within_the_call(fake: FakeLogs) -> None:
    config = _config(fake, _pool("a"), retry_total=1)
    fake.add_rows(WS, "a", _minutes_back([5, 5, 5, 5, 5, 5, 5]))
    fake.inject_fault(503, "ServiceUnavailable")
    reading = _read(fake, config)["a"]
    assert reading.status is MetricStatus.OK and reading.calls == 5.0
    assert len(fake.requests) == 2


class _NoAzure:
    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        return {p.name: MetricReading.missing("azure not used here") for p in pools}


def test_log_analytics_is_an_independent_fallback_for_a_pexip_pool(fake: FakeLogs) -> None:
    table = _pool("a", source="pexip", fallback="log-analytics")
    raw = {
        "azure": {"location": "westeurope"},
        "pexip": {"url": "https://pexip.example.com"},
        "pools": [table],
    }
    table["metric"]["log_analytics"] = {"workspace_id": WS, "query": QUERY, "logs_url": fake.url}
    config = parse_config(raw)
    fake.add_rows(WS, "a", _minutes_back([3, 4, 12, 4, 3, 0, 0]))
    logs = _source(fake, config)
    try:
        # The Management Node cannot be read (no Pexip client): the query stands in.
        router = MetricsRouter(config, azure=_NoAzure(), pexip=None, logs=logs)
        reading = router.read(config.pools, NOW.timestamp())["a"]
    finally:
        logs.close()
    assert reading.status is MetricStatus.OK and reading.calls == 12.0
    assert "fallback log-analytics" in reading.detail
    assert "pexip source needs [pexip] settings" in reading.detail


@pytest.mark.parametrize(
    ("metric", "problem"),
    [
        ({"source": "log-analytics"}, "pools[0].metric.log_analytics.workspace_id: required"),
        (
            {"source": "log-analytics", "log_analytics": {"workspace_id": WS}},
            "pools[0].metric.log_analytics.query: required",
        ),
        (
            {
                "source": "log-analytics",
                "fallback": "log-analytics",
                "log_analytics": {"workspace_id": WS, "query": QUERY},
            },
            "pools[0].metric.fallback: must differ from the source",
        ),
        (
            {"source": "azure-monitor", "log_analytics": {"workspace_id": WS, "query": QUERY}},
            "pools[0].metric.log_analytics: read only with source or fallback",
        ),
        (
            {"source": "log-analytics", "log_analytics": {"workspace_id": "x", "query": QUERY}},
            "pools[0].metric.log_analytics.workspace_id: must be the workspace's GUID",
        ),
        (
            {
                "source": "log-analytics",
                "log_analytics": {"workspace_id": WS, "query": QUERY, "logs_url": "http://x"},
            },
            "pools[0].metric.log_analytics.logs_url: must be an https:// URL",
        ),
    ],
)
def test_config_names_what_a_log_analytics_source_lacks(
    metric: dict[str, Any], problem: str
) -> None:
    table = _pool("a")
    table["metric"] = metric
    with pytest.raises(ConfigError) as err:
        parse_config({"azure": {"location": "westeurope"}, "pools": [table]})
    assert any(line.startswith(problem) for line in err.value.problems), err.value.problems


def test_history_is_read_in_week_chunks(fake: FakeLogs) -> None:
    config = _config(fake, _pool("a"))
    since = datetime(2026, 2, 1, tzinfo=UTC)
    until = since + timedelta(days=20)
    fake.add_rows(WS, "a", [(since + timedelta(minutes=i), i % 7) for i in range(0, 20 * 1440, 97)])
    fake.add_rows(WS, "a", [(since + timedelta(minutes=1), None)])
    source = _source(fake, config)
    try:
        got = source.history(config.pools[0], since, until)
    finally:
        source.close()
    assert len(fake.requests) == history_chunks(since, until) == 3
    assert got[since.timestamp()] == 0.0
    assert got[(since + timedelta(minutes=97)).timestamp()] == 97 % 7
    assert got[(since + timedelta(minutes=1)).timestamp()] is None
    assert (since + timedelta(minutes=2)).timestamp() not in got


def test_history_refuses_an_invalid_row(fake: FakeLogs) -> None:
    config = _config(fake, _pool("a"))
    since = datetime(2026, 2, 1, tzinfo=UTC)
    fake.add_rows(WS, "a", [(since, 3), (since + timedelta(minutes=5), "-1")])
    source = _source(fake, config)
    try:
        with pytest.raises(PermanentError, match="invalid calls value"):
            source.history(config.pools[0], since, since + timedelta(hours=1))
    finally:
        source.close()


_cell = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=200),
    st.sampled_from(["-1", "NaN", "x"]),
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(_cell, min_size=1, max_size=12))
def test_a_reading_is_missing_stale_or_the_max_of_known_window_minutes(
    fake: FakeLogs, values: list[Any]
) -> None:
    """Property: whatever the rows, the reading is exactly what the window's valid minutes say."""
    ws = f"99999999-2222-3333-4444-{len(fake.requests):012d}"
    config = _config(fake, _pool("a", log_analytics={"workspace_id": ws, "query": QUERY}))
    fake.add_rows(ws, "a", _minutes_back(values))
    reading = _read(fake, config)["a"]
    # minutes NOW-7 … NOW-3 are the window (index from the end: 8 … 4 back)
    window = [values[len(values) - 1 - back] for back in range(3, 8) if back < len(values)]
    if any(isinstance(v, str) for v in window):
        assert reading.status is MetricStatus.MISSING
    elif not any(isinstance(v, int) for v in window):
        assert reading.status is not MetricStatus.OK and reading.calls is None
    else:
        assert reading.status is MetricStatus.OK
        assert reading.calls == max(v for v in window if isinstance(v, int))
