"""Every example config works against a stock Pexip CVI deployment, and the fallback metric is
independent of the Management Node.

On a stock deployment no Pexip component publishes call counts to Azure Monitor: ``Pexip/CVI`` /
``ActiveCalls`` exists only where a cvi-autoscaler publishes it. What exists out of the box is
Pexip's own status API (metric source ``pexip``) and the scale set's platform metrics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scaler.adapters.pexip import PexipMetrics
from scaler.adapters.sim import ManualClock
from scaler.config import Config, MetricConfig, PoolConfig, parse_config
from scaler.core.types import Reason
from scaler.daemon import Daemon
from scaler.errors import ConfigError
from scaler.wiring import MetricsRouter, build_adapters, node_metric, teams_connector
from tests.conftest import config_doc, pool_table, vmss_id
from tests.fakeazure import FakeAzure
from tests.fakepexip import FakePexip

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))

VMSS = "Microsoft.Compute/virtualMachineScaleSets"
# Platform metrics Azure emits for every scale set by itself, as Microsoft lists them
# (https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/
# microsoft-compute-virtualmachinescalesets-metrics): (namespace, name) -> unit.
# "Percentage CPU": "the percentage of allocated compute units that are currently in use by the
# Virtual Machine(s)", unit Percent, aggregation Average, dimension VMName.
PLATFORM_METRICS = {(VMSS.lower(), "percentage cpu"): "Percent"}
UNIT_OF_MEANING = {"percent_of_capacity": "Percent"}


def _exists_out_of_the_box(namespace: str, name: str, meaning: str) -> bool:
    unit = PLATFORM_METRICS.get((namespace.lower(), name.lower()))
    return unit is not None and UNIT_OF_MEANING.get(meaning) == unit


def _metric_tables(path: Path) -> list[tuple[str, dict[str, Any]]]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return [(pool["name"], pool.get("metric", {})) for pool in doc["pools"]]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_validates(path: Path) -> None:
    env = {**os.environ, "CVI_AUTOSCALER_PEXIP_PASSWORD": "x"}
    env = {k: v for k, v in env.items() if not k.startswith("CVI_AUTOSCALER__")}
    done = subprocess.run(
        [sys.executable, "-m", "scaler", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_reads_a_metric_that_exists_on_a_stock_deployment(path: Path) -> None:
    config = parse_config(
        tomllib.loads(path.read_text(encoding="utf-8")),
        environ={"CVI_AUTOSCALER_PEXIP_PASSWORD": "x"},
    )
    for pool in config.pools:
        m = pool.metric
        assert not m.published_elsewhere, pool.name
        if m.source == "pexip":
            assert m.meaning == "calls"
        else:
            assert _exists_out_of_the_box(m.namespace, m.name, m.meaning), (pool.name, m)
        if m.fallback == "azure-monitor":
            fb = m.fallback_metric
            assert _exists_out_of_the_box(fb.namespace, fb.name, fb.meaning), (pool.name, fb)


def test_the_examples_cover_both_out_of_the_box_paths() -> None:
    sources = {
        (path.name, name): table.get("source", "azure-monitor")
        for path in EXAMPLES
        for name, table in _metric_tables(path)
    }
    assert "pexip" in sources.values()
    assert "azure-monitor" in sources.values()
    # The Teams examples that the daemon sizes through Pexip read Pexip's own counts.
    assert sources[("recommended.toml", "teams-connector")] == "pexip"
    assert sources[("pexip-teams.toml", "teams-connector")] == "pexip"
    assert sources[("vm-set.toml", "burst-london")] == "pexip"


def test_no_example_reads_the_published_metric() -> None:
    for path in EXAMPLES:
        text = path.read_text(encoding="utf-8")
        for name, table in _metric_tables(path):
            assert table.get("namespace", "").lower() != "pexip/cvi", (path.name, name)
            fb = table.get("fallback_metric", {})
            assert fb.get("namespace", "").lower() != "pexip/cvi", (path.name, name)
        assert "published_elsewhere" not in text, path.name


# -- the rules behind it -----------------------------------------------------------------------


def _problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(doc, environ={})
    return err.value.problems


def _pexip_section(**over: Any) -> dict[str, Any]:
    return {"url": "https://pexip.example", "username": "u", **over}


def test_the_default_metric_is_the_scale_sets_percentage_cpu() -> None:
    m = MetricConfig()
    assert (m.namespace, m.name, m.aggregation, m.meaning) == (
        VMSS,
        "Percentage CPU",
        "Average",
        "percent_of_capacity",
    )
    fb = m.fallback_metric
    assert (fb.namespace, fb.name, fb.aggregation, fb.meaning) == (
        VMSS,
        "Percentage CPU",
        "Average",
        "percent_of_capacity",
    )
    # A pool that names no metric reads one that exists.
    config = parse_config(config_doc(pool_table(metric={})), environ={})
    assert _exists_out_of_the_box(
        config.pools[0].metric.namespace,
        config.pools[0].metric.name,
        config.pools[0].metric.meaning,
    )


def test_another_named_metric_keeps_calls_and_maximum() -> None:
    m = MetricConfig.model_validate({"namespace": "Contoso/Calls", "name": "Concurrent"})
    assert (m.aggregation, m.meaning) == ("Maximum", "calls")


def test_reading_pexip_cvi_that_nothing_publishes_is_refused_with_its_key_path() -> None:
    doc = config_doc(pool_table(metric={"namespace": "Pexip/CVI", "name": "ActiveCalls"}))
    (problem,) = _problems(doc)
    assert problem.startswith("pools[0].metric.namespace: Pexip/CVI / ActiveCalls exists only")
    assert "published_elsewhere" in problem
    assert problem.endswith("got 'Pexip/CVI'")


def test_reading_pexip_cvi_is_accepted_when_said_or_seen_to_be_published() -> None:
    said = {"namespace": "Pexip/CVI", "name": "ActiveCalls", "published_elsewhere": True}
    parse_config(config_doc(pool_table(metric=said)), environ={})

    publisher = pool_table("tc", metric={"source": "pexip"})
    reader = pool_table(
        "dash",
        resource_id=vmss_id("dash"),
        metric={"namespace": "Pexip/CVI", "name": "ActiveCalls", "resource_id": vmss_id("tc")},
    )
    doc = config_doc(publisher, reader, pexip=_pexip_section(publish_metrics=True))
    parse_config(doc, environ={})
    # Without publish_metrics the same pair is refused: nothing writes the metric.
    doc = config_doc(publisher, reader, pexip=_pexip_section())
    assert [p.split(":")[0] for p in _problems(doc)] == ["pools[1].metric.namespace"]


def test_a_fallback_reading_what_is_published_from_pexip_is_refused() -> None:
    metric = {
        "source": "pexip",
        "fallback": "azure-monitor",
        "fallback_metric": {"namespace": "Pexip/CVI", "name": "ActiveCalls"},
    }
    doc = config_doc(pool_table(metric=metric), pexip=_pexip_section(publish_metrics=True))
    problems = _problems(doc)
    assert [p.split(":")[0] for p in problems] == ["pools[0].metric.fallback_metric.namespace"]
    assert "stops when the Management Node does" in problems[0]


def test_the_old_fallback_spelling_is_refused_not_ignored() -> None:
    metric = {
        "source": "pexip",
        "fallback": "azure-monitor",
        "namespace": "Pexip/CVI",
        "name": "ActiveCalls",
    }
    doc = config_doc(pool_table(metric=metric), pexip=_pexip_section())
    assert [p.split(":")[0] for p in _problems(doc)] == [
        "pools[0].metric.namespace",
        "pools[0].metric.name",
    ]


def test_a_fallback_where_it_cannot_help_is_refused() -> None:
    teams = pool_table(
        kind="pexip-teams",
        teams_proxy="tc",
        metric={"source": "pexip", "fallback": "azure-monitor"},
    )
    problems = _problems(config_doc(teams, pexip=_pexip_section()))
    assert any(p.startswith("pools[0].metric.fallback: kind 'pexip-teams'") for p in problems)
    plain = pool_table(metric={"fallback": "azure-monitor"})
    problems = _problems(config_doc(plain))
    assert [p.split(":")[0] for p in problems] == ["pools[0].metric.fallback"]


def test_a_percentage_read_as_calls_is_refused() -> None:
    doc = config_doc(pool_table(metric={"name": "Percentage CPU", "meaning": "calls"}))
    (problem,) = _problems(doc)
    assert problem.startswith("pools[0].metric.meaning: 'Percentage CPU' is a percentage")


# -- through the real SDK: the Management Node is down -----------------------------------------


@dataclass
class Env:
    azure: FakeAzure
    pexip: FakePexip

    def config(self, pool: dict[str, Any]) -> Config:
        doc = {
            "azure": {
                "subscription_id": self.azure.subscription_id,
                "location": "westeurope",
                "resource_manager_url": self.azure.url,
                "metrics_url": self.azure.url,
                "credential": "static-token",
                "ca_bundle": self.azure.ca_file,
                "polling_interval_seconds": 0,
                "retry_total": 0,
            },
            "pexip": {
                "url": self.pexip.url,
                "username": "admin",
                "ca_bundle": self.pexip.ca_file,
                "timeout_seconds": 2,
            },
            "pools": [pool],
        }
        return parse_config(doc, environ={})


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("CVI_AUTOSCALER_STATIC_TOKEN", "test-token")
    monkeypatch.setenv("CVI_AUTOSCALER_PEXIP_PASSWORD", "s3cret")
    with FakeAzure(tmp_path) as azure, FakePexip(tmp_path) as pexip:
        yield Env(azure, pexip)


def _teams_vmss(rid: str) -> dict[str, Any]:
    """Like examples/vmss-drain.toml: Pexip's counts, Percentage CPU while Pexip is down."""
    return {
        "name": "tc",
        "resource_id": rid,
        "vcpus_per_instance": 4,
        "quota_family": "standardFSv2Family",
        "calls_per_instance": 15,
        "min": 1,
        "max": 10,
        "metric": {"source": "pexip", "fallback": "azure-monitor", "lag_minutes": 2},
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }


def _cpu(env: Env, rid: str, percent: float, now: datetime) -> None:
    env.azure.set_usage("westeurope", "cores", current=8, limit=100)
    env.azure.set_usage("westeurope", "standardFSv2Family", current=8, limit=100)
    points = [(now - timedelta(minutes=9 - i), percent) for i in range(10)]
    env.azure.set_metric(rid, VMSS, "Percentage CPU", points, unit="Percent")
    # What the daemon would have published from Pexip before it went down: stale, and never
    # to be read by the fallback.
    env.azure.set_metric(rid, "Pexip/CVI", "ActiveCalls", [(now, 0.0)])


def _tick(env: Env, config: Config, now: datetime, *, sized: bool) -> Any:
    clock = ManualClock(now.timestamp() + 30)
    adapters = build_adapters(config, clock=clock)
    try:
        compute = adapters.azure.compute
        assert adapters.pexip is not None
        metrics = MetricsRouter(
            config,
            azure=adapters.azure.metrics,
            pexip=PexipMetrics(
                config,
                adapters.pexip,
                members=adapters.compute.member_names,
                node_metric=node_metric,
                teams_connector=teams_connector,
            ),
            sizes=(lambda pool: compute.observe(pool).capacity) if sized else None,
        )
        daemon = Daemon(
            config=config,
            metrics=metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=clock,
        )
        (outcome,) = daemon.tick()
        return outcome
    finally:
        adapters.close()


def test_management_node_down_falls_back_to_percentage_cpu(env: Env) -> None:
    rid = env.azure.add_vmss("cvi", "tc", capacity=2)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    _cpu(env, rid, 90.0, now)
    config = env.config(_teams_vmss(rid))
    env.pexip.stop()  # the Management Node is down

    outcome = _tick(env, config, now, sized=True)

    # 90 % of 2 instances of 15 calls = 27 calls; at 80 % of 15 per instance that is 3.
    assert outcome.reason != str(Reason.METRICS_MISSING), outcome
    assert (outcome.current, outcome.desired) == (2, 3)
    asked = [
        r.query.get("metricnames", "")
        for r in env.azure.requests
        if r.path.lower().endswith("/metrics:getbatch")
    ]
    assert asked and all(name == "Percentage CPU" for name in asked)
    assert [w for w in env.azure.writes() if w.method == "PATCH"]


def test_fallback_reading_that_cannot_become_calls_holds_instead_of_guessing(env: Env) -> None:
    rid = env.azure.add_vmss("cvi", "tc", capacity=2)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    _cpu(env, rid, 90.0, now)
    config = env.config(_teams_vmss(rid))
    env.pexip.stop()

    outcome = _tick(env, config, now, sized=False)

    assert outcome.reason == str(Reason.METRICS_MISSING)
    assert outcome.desired == 2
    assert not [w for w in env.azure.writes() if w.method == "PATCH"]


def test_the_fallback_names_no_instance(env: Env) -> None:
    """CPU cannot tell an idle instance: nothing is removed on it, whatever the percentages."""
    rid = env.azure.add_vmss("cvi", "tc", capacity=3)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    _cpu(env, rid, 0.0, now)
    for vm in ("tc000000", "tc000001", "tc000002"):  # the instances' computer names
        points = [(now - timedelta(minutes=9 - i), 0.0) for i in range(10)]
        env.azure.set_metric(
            rid, VMSS, "Percentage CPU", points, dimension=("VMName", vm), unit="Percent"
        )
    pool = _teams_vmss(rid)
    pool["metric"]["fallback_metric"] = {"filter": "VMName eq '*'"}
    pool["behavior"] = {"scale_down": {"stabilization_seconds": 0, "max_percent": 100}}
    config = env.config(pool)
    env.pexip.stop()

    outcome = _tick(env, config, now, sized=True)

    assert outcome.reason == str(Reason.WAITING_FOR_IDLE)
    assert not [w for w in env.azure.writes() if "deleteInstances" in w.path]


def test_pool_config_copy_keeps_the_policies(env: Env) -> None:
    """The fallback reads a derived copy of the pool; it is still the same pool to the daemon."""
    rid = env.azure.add_vmss("cvi", "tc", capacity=2)
    config = env.config(_teams_vmss(rid))
    pool: PoolConfig = config.pools[0]
    view = pool.model_copy(update={"metric": pool.metric.fallback_view(pool.resource_id)})
    assert view.name == pool.name
    assert view.metric_resource_id == rid
    assert (view.metric.namespace, view.metric.name) == (VMSS, "Percentage CPU")
    assert view.metric.window_minutes == pool.metric.window_minutes
    assert view.policies == pool.policies
