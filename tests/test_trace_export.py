"""``cvi-autoscaler trace export`` against the HTTPS fakes, through the real SDK / httpx client.

What an operator notices: a trace the backtest loads, one row per pool and minute, whose calls
come from the pool's Azure Monitor metric (read in one-day chunks; a CPU metric converted as a
proxy and said to be one), from Pexip's call history (Teams legs swept into concurrent calls;
minutes Pexip no longer keeps or cannot place are empty, never 0) or from Log Analytics; no
progress bar noise when not on a terminal.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.adapters.azure import StaticTokenCredential
from scaler.adapters.pexip import HistoryCall
from scaler.cli import main
from scaler.config import load_config, parse_config
from scaler.errors import ScalerError
from scaler.trace_export import Call, concurrent_per_minute, export, teams_calls
from scaler.traces import load_trace
from tests.azure_env import AzureEnv, azure_env
from tests.conftest import examples
from tests.fakelogs import FakeLogs
from tests.fakepexip import FakePexip

DAY = (datetime.now(UTC) - timedelta(days=20)).replace(hour=0, minute=0, second=0, microsecond=0)
"""Within Azure Monitor's 93 days, as real history is (the export asks for nothing older)."""
D, D3 = DAY.date().isoformat(), (DAY + timedelta(days=3)).date().isoformat()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[AzureEnv]:
    with azure_env(tmp_path) as e:
        yield e


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, ["trace", "export", *args], env=env)


def _cells(path: Path) -> dict[tuple[str, str], str]:
    rows = path.read_text().splitlines()
    assert rows[0] == "timestamp,pool,calls"
    out = {}
    for row in rows[1:]:
        ts, pool, calls = row.split(",")
        out[(ts, pool)] = calls
    return out


def test_azure_monitor_history_is_read_in_day_chunks_into_a_loadable_trace(
    env: AzureEnv, tmp_path: Path
) -> None:
    pool = env.pool("tc", capacity=3)
    rid = pool["resource_id"]
    minutes = 3 * 1440
    for vm, base in (("tc_0", 4), ("tc_1", 7)):
        points: list[tuple[datetime, float | None]] = [
            (DAY + timedelta(minutes=i), float(base + i % 5)) for i in range(minutes)
        ]
        points[100] = (points[100][0], None)  # a null bucket: unknown
        if vm == "tc_1":
            points[200] = (points[200][0], -4.0)  # not a load: the minute is unknown
        env.fake.set_metric(rid, "Pexip/CVI", "ActiveCalls", points, dimension=("VMName", vm))
    config = env.write_config(pool)
    env.fake.clear_requests()
    out = tmp_path / "trace.csv"
    result = _run(
        "--config", str(config), "--output", str(out),
        "--since", D, "--until", D3,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    batches = [r for r in env.fake.requests if r.path.lower().endswith("/metrics:getbatch")]
    assert len(batches) == 3  # one per day: 1,440 points per series each
    assert all(r.query.get("interval") == "PT1M" for r in batches)
    trace = load_trace(out, known_pools=["tc"])
    assert trace.pools == ("tc",) and trace.length == minutes and trace.step_seconds == 60
    cells = _cells(out)
    assert cells[(f"{D}T00:00:00Z", "tc")] == "11"  # 4 + 7
    assert cells[(f"{D}T00:03:00Z", "tc")] == "17"  # 7 + 10
    assert cells[(f"{D}T01:40:00Z", "tc")] == ""  # a null is unknown, never 0
    assert cells[(f"{D}T03:20:00Z", "tc")] == ""  # an invalid value too
    assert "tc: 4318/4320 minutes known from azure-monitor" in result.stdout
    assert "\r" not in result.output and "query/s" not in result.output  # no bar off a tty


def test_a_cpu_metric_is_exported_as_a_proxy_and_says_so(env: AzureEnv, tmp_path: Path) -> None:
    pool = env.pool("cpu", capacity=2)
    pool["metric"] = {"window_minutes": 5}  # the default: Percentage CPU, percent_of_capacity
    rid = pool["resource_id"]
    ns = "Microsoft.Compute/virtualMachineScaleSets"
    for vm, pct in (("cpu_0", 50.0), ("cpu_1", 20.0)):
        points = [(DAY + timedelta(minutes=i), pct) for i in range(60)]
        env.fake.set_metric(
            rid, ns, "Percentage CPU", points, dimension=("VMName", vm), unit="Percent"
        )
    config = env.write_config(pool)
    out = tmp_path / "cpu.csv"
    result = _run(
        "--config", str(config), "--output", str(out),
        "--since", f"{D}T00:00", "--until", f"{D}T01:00",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _cells(out)[(f"{D}T00:10:00Z", "cpu")] == "10.5"  # (0.5 + 0.2) × 15
    assert "a proxy" in result.stdout and "overstates" in result.stdout
    sent = [r for r in env.fake.requests if r.path.lower().endswith("/metrics:getbatch")][-1]
    assert sent.query.get("filter") == "VMName eq '*'"
    assert int(sent.query.get("top", "0")) >= 1000  # every VM, not Azure's default 10


@pytest.fixture
def pexip(tmp_path: Path) -> Iterator[FakePexip]:
    with FakePexip(tmp_path) as fake:
        yield fake


def _pexip_config(env: AzureEnv, pexip: FakePexip, **pexip_keys: Any) -> Path:
    pool = env.pool("teams", capacity=2)
    path = env.write_config(pool)
    keys = {"url": pexip.url, "username": "admin", "ca_bundle": pexip.ca_file, **pexip_keys}
    lines = [
        "[pexip]",
        *(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in keys.items()),
    ]
    path.write_text("\n".join(lines) + "\n" + path.read_text())
    return path


def _meeting(pexip: FakePexip, name: str, start: str, end: str, *legs: tuple[str, str]) -> None:
    """A conference linked into a Teams meeting (its backplane, protocol TEAMS, as Pexip's client
    models it) with the VTC participants ``legs`` ((start, end) times of day on 2026-03-02)."""
    pexip.add_history_backplane(start, end, conference_name=name)

    def iso(hms: str) -> str:
        return f"2026-03-02T{hms}:00"[:19]

    for a, b in legs:
        pexip.add_history_participant(iso(a), iso(b), conference_name=name)


def test_pexip_history_becomes_concurrent_teams_calls_per_minute(
    env: AzureEnv, pexip: FakePexip, tmp_path: Path
) -> None:
    # Pexip keeps the newest conferences only: the oldest it still has starts 09:00.
    _meeting(pexip, "gw-1", "2026-03-02T09:00:00", "2026-03-02T09:30:00", ("09:00", "09:30"))
    _meeting(
        pexip, "gw-2", "2026-03-02T09:10:30", "2026-03-02T09:20:00",
        ("09:10:30", "09:12:00"), ("09:12:00", "09:20:00"),
    )  # fmt: skip
    # A VMR call without any link to Teams: not a Teams leg.
    pexip.add_history_participant(
        "2026-03-02T09:00:00", "2026-03-02T09:30:00", conference_name="vmr"
    )
    # The Teams side of a conference, where a version records it: counted through its VTC leg.
    pexip.add_history_participant(
        "2026-03-02T09:00:00", "2026-03-02T09:30:00", conference_name="gw-1", protocol="TEAMS"
    )
    # Outside the window.
    _meeting(pexip, "gw-3", "2026-03-02T11:00:00", "2026-03-02T11:30:00", ("11:00", "11:30"))
    config = _pexip_config(env, pexip, page_size=2)
    out = tmp_path / "pexip.csv"
    result = _run(
        "--config", str(config), "--output", str(out), "--source", "pexip",
        "--since", "2026-03-02T08:55", "--until", "2026-03-02T10:00",
        env={"CVI_AUTOSCALER_PEXIP_PASSWORD": pexip.password},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cells = _cells(out)
    at = lambda hm: cells[(f"2026-03-02T{hm}:00Z", "teams")]  # noqa: E731
    assert at("08:55") == ""  # before the oldest record Pexip keeps: unknown, not 0
    assert at("09:00") == "1"
    assert at("09:10") == "2"  # 09:10:30–09:12:00 overlaps the long call
    assert at("09:12") == "2"  # one ends at 09:12:00 as the other starts: never 3
    assert at("09:25") == "1"
    assert at("09:30") == "0"  # the call ended at 09:30:00
    assert at("09:59") == "0"
    history = [r for r in pexip.requests if r.path.endswith("/history/v1/participant/")]
    first = history[0].query
    assert first["end_time__gte"] == "2026-03-02T08:55:00Z"
    assert first["start_time__lt"] == "2026-03-02T10:00:00Z"
    assert len(history) >= 3  # paged two at a time through meta.next, plus the oldest record
    assert any(r.path.endswith("/history/v1/backplane/") for r in pexip.requests)
    assert "Pexip keeps the newest 5,000 conferences" in result.stdout


def test_no_recognisable_teams_leg_leaves_the_minutes_unknown_not_zero(
    env: AzureEnv, pexip: FakePexip, tmp_path: Path
) -> None:
    # Calls in the history but none linked to a Teams meeting (or a version that records the
    # link some other way): a column of zeros would tell the backtest there was no load.
    pexip.add_history_participant("2026-03-02T09:00:00", "2026-03-02T09:30:00")
    config = _pexip_config(env, pexip)
    out = tmp_path / "pexip.csv"
    args = [
        "--config", str(config), "--output", str(out), "--source", "pexip",
        "--since", "2026-03-02T09:00", "--until", "2026-03-02T10:00",
    ]  # fmt: skip
    result = _run(*args, env={"CVI_AUTOSCALER_PEXIP_PASSWORD": pexip.password})
    assert result.exit_code == 0, result.output
    assert set(_cells(out).values()) == {""}
    assert "no Teams leg found" in result.stdout and "--teams-protocol" in result.stdout
    assert "teams: 0/60 minutes known" in result.stdout
    # forced: the participants whose record says SIP are the legs, and zeros are trusted
    forced = _run(*args, "--teams-protocol", "SIP", env={"CVI_AUTOSCALER_PEXIP_PASSWORD": "s3cret"})
    assert forced.exit_code == 0, forced.output
    assert set(_cells(out).values()) == {"0"}  # no participant records protocol SIP


def test_a_node_without_backplane_history_is_an_error_unless_a_protocol_is_forced(
    env: AzureEnv, pexip: FakePexip, tmp_path: Path
) -> None:
    pexip.backplane_history_supported = False
    pexip.add_history_participant("2026-03-02T09:00:00", "2026-03-02T09:30:00", protocol="TEAMS")
    config = _pexip_config(env, pexip)
    out = tmp_path / "pexip.csv"
    args = [
        "--config", str(config), "--output", str(out), "--source", "pexip",
        "--since", "2026-03-02T09:00", "--until", "2026-03-02T10:00",
    ]  # fmt: skip
    result = _run(*args, env={"CVI_AUTOSCALER_PEXIP_PASSWORD": pexip.password})
    assert result.exit_code == 1
    assert "keeps no backplane history" in result.stderr and "--teams-protocol" in result.stderr
    assert not out.exists()
    forced = _run(
        *args, "--teams-protocol", "TEAMS", env={"CVI_AUTOSCALER_PEXIP_PASSWORD": "s3cret"}
    )
    assert forced.exit_code == 0, forced.output
    assert _cells(out)[("2026-03-02T09:15:00Z", "teams")] == "1"


def test_pexip_history_goes_to_one_pool_only(
    env: AzureEnv, pexip: FakePexip, tmp_path: Path
) -> None:
    a, b = env.pool("a", capacity=1), env.pool("b", capacity=1)
    path = env.write_config(a, b)
    path.write_text(f'[pexip]\nurl = "{pexip.url}"\nusername = "admin"\n' + path.read_text())
    result = _run(
        "--config", str(path), "--output", str(tmp_path / "x.csv"), "--source", "pexip",
        "--days", "1",
        env={"CVI_AUTOSCALER_PEXIP_PASSWORD": "x"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "which Teams Connector carried a call" in result.stderr


def _leg(start: str | None, end: str | None, protocol: str = "TEAMS") -> HistoryCall:
    """A leg whose own record says its protocol (selected with a forced protocol)."""

    def t(x: str | None) -> float | None:
        return None if x is None else datetime.fromisoformat(x).replace(tzinfo=UTC).timestamp()

    problem = "" if start and end else f"{'start_time' if not start else 'end_time'} is None"
    return HistoryCall("1", t(start), t(end), protocol, "out", "m", problem)


def test_a_teams_record_without_an_end_leaves_its_minutes_unknown() -> None:
    lo, hi = DAY.timestamp(), (DAY + timedelta(hours=1)).timestamp()
    calls, unknown = teams_calls(
        [_leg(f"{D}T00:10:00", f"{D}T00:20:00"), _leg(f"{D}T00:40:00", None)],
        since=lo,
        until=hi,
        retained_from=lo,
        protocol="teams",
    )
    assert calls == [Call(lo + 600, lo + 1200)]
    assert unknown == [(lo + 2400, hi)]


def test_a_teams_record_with_no_times_at_all_fails_the_export() -> None:
    with pytest.raises(ScalerError, match="no start_time and no end_time"):
        teams_calls([_leg(None, None)], since=0.0, until=60.0, retained_from=None, protocol="TEAMS")


def test_log_analytics_history_exports_with_nulls_kept_unknown(tmp_path: Path) -> None:
    ws = "11111111-2222-3333-4444-555555555555"
    with FakeLogs(tmp_path) as logs:
        config = parse_config(
            {
                "azure": {"location": "westeurope", "retry_total": 0},
                "pools": [
                    {
                        "name": "la",
                        "vcpus_per_instance": 4,
                        "min": 1,
                        "max": 10,
                        "kind": "vmss",
                        "resource_id": "/subscriptions/00000000-0000-0000-0000-000000000001/"
                        "resourceGroups/cvi/providers/Microsoft.Compute/virtualMachineScaleSets/la",
                        "metric": {
                            "source": "log-analytics",
                            "log_analytics": {
                                "workspace_id": ws,
                                "query": "Q",
                                "logs_url": logs.url,
                            },
                        },
                        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
                    }
                ],
            }
        )
        logs.add_rows(
            ws, "la", [(DAY + timedelta(minutes=i), i % 9) for i in range(0, 9 * 1440, 3)]
        )
        logs.add_rows(ws, "la", [(DAY + timedelta(minutes=1), None)])
        out = tmp_path / "la.csv"
        summary = export(
            config,
            since=DAY,
            until=DAY + timedelta(days=9),
            output=out,
            credential=StaticTokenCredential("t"),
            client_kwargs={"connection_verify": logs.ca_file},
        )
        assert len(logs.requests) == 2  # a week per query
    cells = _cells(out)
    assert cells[(f"{D}T00:00:00Z", "la")] == "0"
    assert cells[(f"{D}T00:03:00Z", "la")] == "3"
    assert cells[(f"{D}T00:01:00Z", "la")] == ""  # null: unknown
    assert cells[(f"{D}T00:02:00Z", "la")] == ""  # no row: unknown
    assert summary[0].source == "log-analytics" and summary[0].known == 9 * 1440 // 3


def test_the_progress_bar_shows_on_a_terminal_only(env: AzureEnv, tmp_path: Path) -> None:
    pool = env.pool("tc", capacity=1)
    env.fake.set_metric(
        pool["resource_id"], "Pexip/CVI", "ActiveCalls",
        [(DAY + timedelta(minutes=i), 1.0) for i in range(120)], dimension=("VMName", "tc_0"),
    )  # fmt: skip
    config = load_config(env.write_config(pool))

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, shown in ((Tty(), True), (io.StringIO(), False)):
        export(
            config,
            since=DAY,
            until=DAY + timedelta(days=2),
            output=tmp_path / "p.csv",
            progress=stream,
        )
        assert ("trace export" in stream.getvalue()) is shown
        assert ("2/2" in stream.getvalue()) is shown


def test_span_errors_exit_2(env: AzureEnv, tmp_path: Path) -> None:
    config = env.write_config(env.pool("tc", capacity=1))
    for args, message in (
        (["--since", "2026-03-05", "--until", "2026-03-02"], "--until: must be after"),
        (["--since", "2026-03-01", "--days", "2"], "--days: give --since or --days"),
        ([], "--since: give --since"),
        (["--days", "1", "--pool", "nope"], "--pool: no pool named 'nope'"),
    ):
        result = _run("--config", str(config), "--output", str(tmp_path / "x.csv"), *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr


@settings(max_examples=examples(200), deadline=None)
@given(spans=st.lists(st.tuples(st.integers(0, 600), st.integers(1, 400)), min_size=0, max_size=30))
def test_the_sweep_equals_counting_overlaps_at_every_instant(spans: list[tuple[int, int]]) -> None:
    """Property: each minute's value is the peak number of calls in progress at any second."""
    calls = [Call(float(s), float(s + d)) for s, d in spans]
    got = concurrent_per_minute(calls, since=0.0, minutes=12)
    for n, value in enumerate(got):
        peak = max(
            sum(1 for c in calls if c.start <= t < c.end) for t in range(n * 60, n * 60 + 60)
        )
        assert value == peak


def test_the_span_is_bounded_and_nothing_is_asked_before_azures_retention(
    env: AzureEnv, tmp_path: Path
) -> None:
    """Issue 20: ``--since 0001-01-01`` grew memory ~45 MB/s without bound, ``--days 1e9``
    ended in an OverflowError traceback, and ``--days 400`` sent 400 one-day queries although
    Azure Monitor keeps 93 days."""
    pool = env.pool("tc", capacity=1)
    config = env.write_config(pool)
    for args, message in (
        (["--since", "0001-01-01"], "--since: the span is at most 400 days"),
        (["--days", "1e9"], "--days"),
        (["--days", "nan"], "--days"),
    ):
        result = _run("--config", str(config), "--output", str(tmp_path / "x.csv"), *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output
    env.fake.clear_requests()
    out = tmp_path / "long.csv"
    result = _run("--config", str(config), "--output", str(out), "--days", "400")
    assert result.exit_code == 0, result.output
    batches = [r for r in env.fake.requests if r.path.lower().endswith("/metrics:getbatch")]
    assert 93 <= len(batches) <= 95  # one a day, none before the retention
    assert "93 days" in result.stdout
