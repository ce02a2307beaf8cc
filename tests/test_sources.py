"""A fifth metric source in one file: defined here, registered through a real
``cvi_autoscaler.sources`` entry point (a distribution written to a temporary directory on
``sys.path``), and used by the config, the daemon's read and ``trace export`` with no edit
anywhere else.

The source, ``ledger``, reads the calls another tool writes to a JSON file (a call recorder, a
session border controller's export): ``{"as_of": <epoch>, "calls": {"<pool>": n}, "history":
{"<pool>": [[<epoch>, n | null], ...]}}``. Its options are its own table,
``[pools.metric.ledger]``; as a fallback it is just that table, read in another source's stead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict, Field

from scaler import sources
from scaler.adapters.sim import ManualClock, SimCloud
from scaler.cli import main
from scaler.config import Config, PoolConfig, parse_config
from scaler.core.types import MetricReading, MetricStatus
from scaler.daemon import Daemon, PoolOutcome
from scaler.errors import ConfigError
from scaler.sources import ExportContext, History, MetricSource, ReaderContext
from scaler.trace_export import export
from scaler.traces import load_trace
from scaler.wiring import Adapters
from tests.conftest import config_doc, pool_table
from tests.test_daemon import START, flat_trace

# -- the fifth source, as a third party writes it ----------------------------------------------


class LedgerOptions(BaseModel):
    """``[pools.metric.ledger]``: the JSON file another tool keeps current."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    """The file (required)."""
    max_age_seconds: float = Field(default=180.0, gt=0.0)
    """A file older than this is stale: the pool holds."""


class LedgerReader:
    """``MetricsSource`` over the ledger files: one read per file per tick."""

    def __init__(self) -> None:
        self.reads: list[Path] = []

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        out: dict[str, MetricReading] = {}
        for pool in pools:
            options: LedgerOptions = pool.metric.section(Ledger.section)
            try:
                doc = _load(options.path)
                self.reads.append(options.path)
            except (OSError, ValueError) as err:
                out[pool.name] = MetricReading.missing(f"ledger {options.path}: {err}")
                continue
            calls = doc["calls"].get(pool.name)
            if now - doc["as_of"] > options.max_age_seconds:
                out[pool.name] = MetricReading.stale(f"ledger {options.path} is old")
            elif not isinstance(calls, int | float) or calls < 0 or not math.isfinite(calls):
                out[pool.name] = MetricReading.missing(f"ledger has no calls for {pool.name}")
            else:
                out[pool.name] = MetricReading.ok(float(calls), doc["as_of"])
        return out


class LedgerExporter:
    def steps(self, ctx: ExportContext, pool: PoolConfig) -> int:
        return 1

    def history(self, ctx: ExportContext, pool: PoolConfig) -> History:
        options: LedgerOptions = pool.metric.section(Ledger.section)
        rows = _load(options.path)["history"].get(pool.name, [])
        ctx.update(1)
        return {float(t): v for t, v in rows}, f"ledger {options.path.name}"


class Ledger(MetricSource):
    """Calls per pool from a JSON file another tool keeps current."""

    name: ClassVar[str] = "ledger"
    section: ClassVar[str] = "ledger"
    Options = LedgerOptions

    def options_problems(self, check: Any) -> list[str]:
        options = check.metric.section(self.section)
        if options is not None and not options.path.is_absolute():
            return [f"{check.at}.{self.section}.path: must be absolute, got {options.path}"]
        return []

    def reader(self, ctx: ReaderContext) -> LedgerReader:
        return LEDGER

    def exporter(self) -> LedgerExporter:
        return LedgerExporter()


LEDGER = LedgerReader()


def _load(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("calls"), dict):
        raise ValueError("not a ledger")
    return doc


# -- its registration: an entry point of a distribution on sys.path ----------------------------


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The entry point ``ledger = tests.test_sources:Ledger`` installed for this test; yields
    the path of the ledger file (not written yet)."""
    site = tmp_path / "site"
    info = site / "cvi_autoscaler_ledger-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cvi-autoscaler-ledger\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[cvi_autoscaler.sources]\nledger = tests.test_sources:Ledger\n"
    )
    monkeypatch.syspath_prepend(str(site))
    sources.discover.cache_clear()
    LEDGER.reads.clear()
    yield tmp_path / "ledger.json"
    monkeypatch.undo()
    sources.discover.cache_clear()


def _write(path: Path, as_of: float, calls: dict[str, float], **history: Any) -> None:
    path.write_text(json.dumps({"as_of": as_of, "calls": calls, "history": history}))


def _config(**metric: Any) -> Config:
    return parse_config(config_doc(pool_table(metric=metric)), environ={})


def _problems(**metric: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        _config(**metric)
    return err.value.problems


# -- the config ---------------------------------------------------------------------------------


def test_the_built_in_sources_are_registered_as_plug_ins_would_be() -> None:
    """This distribution registers its own sources through the entry-point group (``make
    install`` writes them), the same classes as the registry's built-ins."""
    found = {ep.name: ep.load() for ep in entry_points(group=sources.ENTRY_POINT_GROUP)}
    assert found == sources.BUILTINS


def test_the_registry_finds_the_fifth_source_through_its_entry_point(ledger: Path) -> None:
    found = sources.discover()
    assert list(found) == ["azure-monitor", "pexip", "log-analytics", "ledger"]
    assert isinstance(found["ledger"], Ledger)


def test_the_config_validates_the_fifth_source_s_own_table(ledger: Path) -> None:
    config = _config(source="ledger", ledger={"path": str(ledger)})
    metric = config.pools[0].metric
    assert metric.section("ledger") == LedgerOptions(path=ledger)
    assert metric.meaning == "calls"  # a source of calls, as it says (reads_calls)
    assert sources.source_of(config.pools[0]).name == "ledger"


@pytest.mark.parametrize(
    ("metric", "problem"),
    [
        ({"source": "ledger"}, "pools[0].metric.ledger.path: required key is missing"),
        (
            {"source": "ledger", "ledger": {"path": "/x", "max_age_seconds": -1}},
            "pools[0].metric.ledger.max_age_seconds: input should be greater than 0, got -1",
        ),
        (
            {"source": "ledger", "ledger": {"path": "/x", "max_age_seconds": True}},
            "pools[0].metric.ledger.max_age_seconds: must be a number, not a boolean, got true",
        ),
        (
            {"source": "ledger", "ledger": {"path": "/x", "paht": "/y"}},
            "pools[0].metric.ledger.paht: unknown key",
        ),
        (
            {"source": "ledger", "ledger": {"path": "relative.json"}},
            "pools[0].metric.ledger.path: must be absolute, got relative.json",
        ),
        (
            {"source": "ledger", "ledger": {"path": "/x"}, "meaning": "percent_of_capacity"},
            "pools[0].metric.meaning: the ledger source reads calls, got 'percent_of_capacity'",
        ),
        (
            {"ledger": {"path": "/x"}},
            "pools[0].metric.ledger: read only with source or fallback = 'ledger', got "
            "source = 'azure-monitor', fallback = 'none'",
        ),
        (
            {"source": "ledgr"},
            "pools[0].metric.source: must be one of azure-monitor, ledger, log-analytics, "
            'pexip, got "ledgr"',
        ),
        (
            {"source": "ledger", "ledger": {"path": "/x"}, "fallback": "pexip"},
            "pools[0].metric.fallback: must be one of none, azure-monitor, ledger, "
            'log-analytics, got "pexip"',
        ),
    ],
)
def test_bad_fifth_source_config_names_the_key(
    ledger: Path, metric: dict[str, Any], problem: str
) -> None:
    problems = _problems(**metric)
    assert any(p.startswith(problem) for p in problems), problems


def test_without_its_registration_the_fifth_source_is_refused() -> None:
    sources.discover.cache_clear()
    problems = _problems(source="ledger", ledger={"path": "/x"})
    assert "pools[0].metric.ledger: unknown key" in problems
    assert any(
        p.startswith("pools[0].metric.source: must be one of azure-monitor, log-analytics, pexip")
        for p in problems
    ), problems


def test_a_malformed_entry_point_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "bad-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bad\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[cvi_autoscaler.sources]\nledger = tests.test_sources:LedgerOptions\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sources.discover.cache_clear()
    try:
        problems = _problems()
    finally:
        monkeypatch.undo()
        sources.discover.cache_clear()
    assert any(
        p.startswith("pools[0].metric.source: entry point 'ledger'") and "MetricSource" in p
        for p in problems
    ), problems


# -- the daemon's read --------------------------------------------------------------------------


NOW = START.timestamp() + 10 * 60


def _tick(config: Config) -> tuple[PoolOutcome, MetricReading]:
    """One tick of the daemon with the real wiring's metrics (``Adapters.metrics``), sizing the
    simulator's pool (so that nothing but the metric is read from outside), and what those
    metrics read just before."""
    clock = ManualClock(NOW)
    cloud = SimCloud(config, flat_trace([0.0] * 60), clock=clock, quota_limits={})
    adapters = Adapters(config, clock=clock)
    try:
        reading = adapters.metrics.read(config.pools, NOW)["tc"]
        daemon = Daemon(
            config=config, metrics=adapters.metrics, actuator=cloud, quota=cloud, clock=clock
        )
        (outcome,) = daemon.tick()
    finally:
        adapters.close()
    return outcome, reading


NOWHERE = "https://127.0.0.1:9"
"""Port 9 (discard) on loopback: nothing answers, every call fails at once."""


def _offline(monkeypatch: pytest.MonkeyPatch, **metric: Any) -> Config:
    """A config whose Azure and Pexip endpoints answer nothing."""
    monkeypatch.setenv("CVI_AUTOSCALER_STATIC_TOKEN", "t")
    monkeypatch.setenv("CVI_AUTOSCALER_PEXIP_PASSWORD", "p")
    azure = {
        "subscription_id": "00000000-0000-0000-0000-000000000001",
        "location": "westeurope",
        "resource_manager_url": NOWHERE,
        "metrics_url": NOWHERE,
        "credential": "static-token",
    }
    doc = config_doc(pool_table(metric=metric), pexip={"url": NOWHERE, "timeout_seconds": 2})
    doc["azure"] = azure
    return parse_config(doc, environ={})


def test_the_daemon_reads_the_fifth_source(ledger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _offline(monkeypatch, source="ledger", ledger={"path": str(ledger)})
    _write(ledger, NOW - 30, {"tc": 30.0})
    outcome, reading = _tick(config)
    assert (reading.status, reading.calls) == (MetricStatus.OK, 30.0)
    # 30 calls at 80 % of 15 per instance: 3 instances
    assert (outcome.current, outcome.desired) == (1, 3), outcome
    assert LEDGER.reads == [ledger, ledger]


def test_the_fifth_source_stands_in_as_a_fallback(
    ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Management Node answers nothing: the pool reads its ``fallback``, which is only the
    ledger's own table."""
    config = _offline(monkeypatch, source="pexip", fallback="ledger", ledger={"path": str(ledger)})
    _write(ledger, NOW - 30, {"tc": 40.0})
    outcome, reading = _tick(config)
    assert (reading.status, reading.calls) == (MetricStatus.OK, 40.0)
    assert reading.detail.startswith("fallback ledger (")
    assert (outcome.current, outcome.desired) == (1, 4), outcome


def test_a_stale_fifth_source_holds(ledger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = {"path": str(ledger), "max_age_seconds": 60}
    config = _offline(monkeypatch, source="ledger", ledger=table)
    _write(ledger, NOW - 3600, {"tc": 100.0})
    outcome, reading = _tick(config)
    assert reading.status is MetricStatus.STALE
    assert (outcome.current, outcome.desired, outcome.reason) == (1, 1, "MetricsStale")


# -- trace export -------------------------------------------------------------------------------


def test_trace_export_reads_the_fifth_source_s_history(ledger: Path, tmp_path: Path) -> None:
    config = _config(source="ledger", ledger={"path": str(ledger)})
    since = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
    rows = [[(since + timedelta(minutes=i)).timestamp(), float(i)] for i in range(5)]
    rows[2][1] = None  # type: ignore[call-overload]
    _write(ledger, since.timestamp(), {}, tc=rows)
    out = tmp_path / "trace.csv"
    (summary,) = export(config, since=since, until=since + timedelta(minutes=6), output=out)
    assert (summary.source, summary.known, summary.minutes) == ("ledger", 4, 6)
    assert summary.note == "ledger ledger.json"
    trace = load_trace(out)
    assert trace.calls["tc"] == [0.0, 1.0, None, 3.0, 4.0, None]


def test_the_cli_offers_the_fifth_source(ledger: Path, tmp_path: Path) -> None:
    since = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
    _write(ledger, since.timestamp(), {}, tc=[[since.timestamp(), 7.0]])
    config = tmp_path / "c.toml"
    config.write_text(
        '[azure]\nlocation = "westeurope"\n\n[[pools]]\nname = "tc"\nvcpus_per_instance = 4\n'
        f'min = 1\nmax = 4\nresource_id = "{pool_table()["resource_id"]}"\n'
        f'[pools.metric]\nsource = "ledger"\n[pools.metric.ledger]\npath = "{ledger}"\n'
        '[[pools.policies]]\ntype = "target-tracking"\n'
    )
    out = tmp_path / "t.csv"
    span = ["--since", "2026-11-18T08:00", "--until", "2026-11-18T08:02"]
    args = ["trace", "export", "--config", str(config), "--output", str(out), *span]
    result = CliRunner().invoke(main, [*args, "--source", "ledger"])
    assert result.exit_code == 0, result.output
    assert "tc: 1/2 minutes known from ledger (ledger ledger.json)" in result.output
    assert load_trace(out).calls["tc"] == [7.0, None]
    result = CliRunner().invoke(main, [*args, "--source", "ledgr"])
    assert result.exit_code == 2
    assert "'ledgr' is not one of 'auto', 'azure-monitor', 'pexip', 'log-analytics', 'ledger'" in (
        result.output
    )
