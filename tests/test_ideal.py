"""The ideal online reference: the generator's model, and the best an online policy could do."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scaler.backtest import Options, run_backtest
from scaler.backtest.ideal import QUANTILES
from scaler.backtest.results import ideal_at
from scaler.config import parse_config
from scaler.loadgen import PoolProfile, Region, generate, meeting_model
from scaler.scenarios import scenario, scenario_of, write_scenario
from scaler.traces import Trace

START = datetime(2026, 10, 5, tzinfo=UTC)
SUB = "00000000-0000-0000-0000-000000000000"


def concurrency(profile: PoolProfile, days: int) -> list[int]:
    model = meeting_model(profile, START, days * 1440)
    total = len(model.rates)
    diff = [0] * (total + 1)
    for begin, length in zip(model.starts, model.lengths, strict=True):
        a, b = max(begin, 0), min(begin + length, total)
        if a < b:
            diff[a] += 1
            diff[b] -= 1
    out, running = [], 0
    for d in diff[:total]:
        running += d
        out.append(running)
    return out[1440:]


@pytest.mark.parametrize(
    "profile",
    [
        PoolProfile("p", "Europe/London", 120.0, seed=3),
        PoolProfile(
            "p",
            "Europe/London",
            200.0,
            seed=4,
            regions=(Region("Europe/London", 0.6), Region("Asia/Singapore", 0.4)),
            weekly_growth=0.05,
            growth_from=START.date(),
        ),
    ],
)
def test_the_model_holds_the_very_meetings_of_the_trace(profile: PoolProfile) -> None:
    """The meetings the ideal reference knows are the ones the trace counts, and the rates
    expect about as many calls as connected."""
    calls = [c for _, _, c in generate([profile], START, 3)]
    assert concurrency(profile, 3) == calls
    model = meeting_model(profile, START, 3 * 1440)
    connected = sum(1 for b in model.starts if b >= 1440)
    assert sum(model.rates[1440:]) == pytest.approx(connected, rel=0.05)


def config() -> dict[str, object]:
    return {
        "daemon": {"interval_seconds": 60},
        "azure": {"subscription_id": SUB, "location": "uksouth"},
        "pools": [
            {
                "name": "p",
                "resource_id": f"/subscriptions/{SUB}/resourceGroups/r/providers/"
                "Microsoft.Compute/virtualMachineScaleSets/p",
                "vcpus_per_instance": 4,
                "quota_family": "standardFSv2Family",
                "min": 1,
                "max": 40,
                "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
            }
        ],
    }


def test_a_higher_quantile_costs_more_and_leaves_less_unserved() -> None:
    profile = PoolProfile("p", "Europe/London", 150.0, seed=7)
    start = datetime(2026, 10, 6, tzinfo=UTC)  # a Tuesday: two working days scored
    trace = Trace.from_rows(generate([profile], start, 3), start=start)
    model = meeting_model(profile, start, 3 * 1440)
    result = run_backtest(
        parse_config(config()),
        trace,
        options=Options(warmup_days=1, workers=1),
        models={"p": model},
    )
    assert tuple(result.ideal) == QUANTILES
    costs = [m.vcpu_hours for m in result.ideal.values()]
    unserved = [m.unserved_call_minutes for m in result.ideal.values()]
    assert costs == sorted(costs) and costs[0] < costs[-1]
    assert unserved == sorted(unserved, reverse=True)
    # It knows the rates and the meetings in progress but not the future: it costs more than
    # perfect foresight under the same rules, and far less than holding the peak.
    assert result.clairvoyant is not None
    assert result.clairvoyant.vcpu_hours < costs[0] < result.static_peak.vcpu_hours
    doc = result.to_json()
    assert set(doc["baselines"]["ideal_online"]) == {"0.99", "0.995", "0.998", "0.9995"}
    assert doc["vs_ideal"] == pytest.approx(
        result.total.vcpu_hours / ideal_at(result.ideal, 0.0), abs=1e-4
    )


def test_ideal_at_reads_the_frontier_between_quantiles() -> None:
    from scaler.backtest.results import Metrics

    def m(cost: float, unserved: float) -> Metrics:
        return Metrics(cost, cost / 4, 1e6, 1e6 - unserved, unserved, 0.0, 0.0, 0, 0, 0)

    frontier = {0.99: m(100.0, 100.0), 0.999: m(120.0, 1.0), 0.9999: m(130.0, 0.0)}
    assert ideal_at(frontier, 1e-4) == pytest.approx(100.0)  # the cheapest point's own share
    assert ideal_at(frontier, 1e-5) == pytest.approx(110.0)  # halfway on a log scale
    assert ideal_at(frontier, 1e-3) == pytest.approx(100.0)  # beyond: held
    assert ideal_at(frontier, 0.0) == pytest.approx(130.0)  # nothing unserved: the dearest
    assert ideal_at({}, 0.0) is None


def test_a_scenario_trace_names_its_model(tmp_path: Path) -> None:
    sc = scenario("growth", 5)
    csv, _ = write_scenario(sc, tmp_path)
    found = scenario_of(csv)
    assert found is not None and (found.family, found.seed) == ("growth", 5)
    assert scenario_of(tmp_path / "other.csv") is None
