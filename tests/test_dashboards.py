"""deploy/grafana-dashboard.json and deploy/prometheus-rules.yml query only what a live daemon
exports: the daemon's HTTP endpoint runs in-process on the simulator, /metrics is scraped and
parsed with prometheus_client's own parser, and every ``cvi_autoscaler_*`` name and every
``reason`` label value used by a query must be there."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from scaler.core.types import Reason
from scaler.daemon import Daemon
from scaler.health import CallMetrics, HttpEndpoint
from tests.test_ops_units import Lease, _config, _sim

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
NAME = re.compile(r"\bcvi_autoscaler_[a-z0-9_]+")
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}


@pytest.fixture
def scraped() -> Iterator[tuple[Daemon, str]]:
    daemon, _, _ = _sim([120.0] * 180, _config(), leader=Lease(True))
    registry = CollectorRegistry()
    CallMetrics(registry)("vmss.get", "ok", 0.12)
    http = HttpEndpoint(daemon, registry=registry, bind="127.0.0.1", port=0)
    http.start()
    try:
        daemon.tick()
        with urllib.request.urlopen(f"http://127.0.0.1:{http.port}/metrics", timeout=5) as r:
            yield daemon, r.read().decode()
    finally:
        http.stop()


def exported(text: str) -> set[str]:
    """Every series name a query may use: sample names, plus the names a counter or histogram
    family has even before its first sample."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(s.name for s in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
    return names


def dashboard_queries() -> list[str]:
    board = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for var in board["templating"]["list"]:
        if var.get("type") == "query":
            exprs.append(var["definition"])
    return exprs


def rule_queries() -> list[str]:
    text = (DEPLOY / "prometheus-rules.yml").read_text()
    alerts = re.findall(r"^\s*- alert: (\S+)$", text, re.M)
    exprs = re.findall(r"^\s*expr: (.+)$", text, re.M)
    assert alerts and len(alerts) == len(exprs), "one single-line expr per alert"
    assert len(set(alerts)) == len(alerts)
    return exprs


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_metric_a_query_uses_is_exported(scraped: tuple[Daemon, str], source: str) -> None:
    _, text = scraped
    queries = dashboard_queries() if source == "dashboard" else rule_queries()
    used = {name for q in queries for name in NAME.findall(q)}
    assert used, "the queries name no metric"
    assert used - exported(text) == set()
    reasons = {
        r for q in queries for m in re.findall(r'reason=~?"([^"]+)"', q) for r in m.split("|")
    }
    assert reasons - {str(r) for r in Reason} == set(), "reason values the daemon never sets"


def test_the_dashboard_covers_what_operators_ask_for() -> None:
    text = "\n".join(dashboard_queries())
    for needed in (
        "pool_desired_instances",  # desired vs current
        "pool_current_instances",
        "pool_observed_calls",  # unserved headroom
        "pool_decision_reason",
        "quota_headroom_vcpus",
        "azure_calls_total",  # Azure errors
        "changes(cvi_autoscaler_leader",  # leader changes
        "scale_actions_total",
    ):
        assert needed in text


def test_build_info_scale_actions_min_max_and_no_created_series(
    scraped: tuple[Daemon, str],
) -> None:
    daemon, text = scraped
    families = {f.name: f for f in text_string_to_metric_families(text)}
    (build,) = families["cvi_autoscaler_build_info"].samples
    assert build.value == 1.0 and build.labels["version"]
    (up,) = families["cvi_autoscaler_scale_actions"].samples
    (o,) = daemon.ticker.last.values()
    assert o.applied and o.desired > o.current  # the tick scaled out, and it was counted
    assert (up.name, up.labels, up.value) == (
        "cvi_autoscaler_scale_actions_total",
        {"pool": "tc", "direction": "up"},
        1.0,
    )
    assert [s.value for s in families["cvi_autoscaler_pool_min_instances"].samples] == [1.0]
    assert [s.value for s in families["cvi_autoscaler_pool_max_instances"].samples] == [20.0]
    assert "_created" not in text
