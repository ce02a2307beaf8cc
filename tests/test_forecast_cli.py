"""``cvi-autoscaler forecast``: the predictive policy's forecast against the trace, as an operator
reads it (table, JSON, report), and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scaler.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "examples" / "recommended.toml")
TRACE = str(ROOT / "examples" / "traces" / "two-regions-5w.csv")
POOLS = {"teams-connector", "teams-connector-us"}
LAST_TWO_WEEKS = ("--warmup-days", "21")
"""Score the last two weeks (the unannounced spike is in the first of them)."""
LAST_WEEK = ("--warmup-days", "28")


def forecast(*args: str) -> tuple[int, str, str]:
    done = CliRunner().invoke(main, ["forecast", *args])
    return done.exit_code, done.stdout, done.stderr


@pytest.fixture(scope="module")
def as_json() -> dict[str, object]:
    code, out, err = forecast("--config", CONFIG, "--trace", TRACE, "--json", *LAST_TWO_WEEKS)
    assert code == 0, err
    doc: dict[str, object] = json.loads(out)
    return doc


def test_table_names_each_pool_its_policy_lead_time_and_hours() -> None:
    code, out, _ = forecast(
        "--config", CONFIG, "--trace", TRACE, "--hours-in", "Europe/London", *LAST_WEEK
    )
    assert code == 0
    for pool in POOLS:
        assert f"pool {pool} (composite:predictive, lead 24 min" in out
    for word in ("p50", "p90", "p99", "max", "09 Europe/London", "actual - forecast"):
        assert word in out


def test_json_gives_percentiles_overall_and_per_hour(as_json: dict[str, object]) -> None:
    assert as_json["scored_from"] == "2026-10-26T00:00:00Z"
    pools = as_json["pools"]
    assert isinstance(pools, dict) and set(pools) == POOLS
    for pool in pools.values():
        assert pool["policy"] == "composite:predictive"
        assert pool["lead_minutes"] == 24.0  # boot 20 + lag 3 + one tick
        assert set(pool["error"]) >= {"points", "p50", "p90", "p99", "max"}
        assert sorted(pool["hours"]) == [f"{h:02d}" for h in range(24)]
        e = pool["error"]
        assert e["p50"] <= e["p90"] <= e["p99"] <= e["max"]
        # the metric gaps of the trace are counted, not scored
        assert pool["no_actual"] > 0
        assert e["points"] + pool["no_actual"] + pool["no_forecast"] == pool["minutes"]
    # the unannounced spike in New York (14:20 UTC) is the largest shortfall of the forecast
    us = pools["teams-connector-us"]
    assert us["error"]["max"] == max(h["max"] for h in us["hours"].values() if h["max"] is not None)
    assert us["hours"]["14"]["max"] == us["error"]["max"]


def test_report_writes_a_chart_per_pool_and_a_page(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    code, _, err = forecast(
        "--config", CONFIG, "--trace", TRACE, "--report", str(tmp_path), *LAST_WEEK
    )
    assert code == 0, err
    for pool in POOLS:
        png = tmp_path / f"forecast-{pool}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "teams-connector-us" in page
    assert "report:" in err


def test_a_config_without_a_predictive_policy_is_refused() -> None:
    code, out, err = forecast(
        "--config",
        str(ROOT / "tests/golden/backtest-small.toml"),
        "--trace",
        str(ROOT / "tests/golden/backtest-small.csv"),
    )
    assert code == 2 and not out
    assert "no pool of the config has a predictive policy" in err


def test_bad_zone_and_missing_trace_exit_2(tmp_path: Path) -> None:
    code, _, err = forecast("--config", CONFIG, "--trace", TRACE, "--hours-in", "Mars/Olympus")
    assert code == 2 and "--hours-in" in err
    code, _, err = forecast("--config", CONFIG, "--trace", str(tmp_path / "none.csv"))
    assert code == 2 and "trace error" in err


def test_json_checks_the_planned_quantile_against_what_it_promised(
    as_json: dict[str, object],
) -> None:
    """Per hour, the share of minutes the planned quantile covered beside the promised one, so
    an operator can see whether the one knob (``target_unserved``) is kept hour by hour."""
    pools = as_json["pools"]
    assert isinstance(pools, dict)
    for pool in pools.values():
        c = pool["coverage"]
        assert c["points"] == pool["error"]["points"]
        assert 0.5 <= c["promised"] < 1.0
        assert sorted(pool["hour_coverage"]) == [f"{h:02d}" for h in range(24)]
        hours = [h for h in pool["hour_coverage"].values() if h["points"]]
        assert sum(h["points"] for h in hours) == c["points"]
        # quiet hours and busy ones alike: the plan covers the load at least nine minutes in
        # ten (the spike's minutes in New York are not forecastable and are counted too)
        assert all(h["covered"] >= 0.9 for h in hours), hours
    code, out, _ = forecast("--config", CONFIG, "--trace", TRACE, *LAST_WEEK)
    assert code == 0 and "covered" in out and "promised" in out
