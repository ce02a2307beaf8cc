"""The call-safe floor (``baselines.clairvoyant``): its exact definition on small cases, where it
sits between the oracle and a policy, and how the backtest reports it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.target_tracking import TargetTracking, TargetTrackingConfig
from scaler.backtest import Options, run_backtest
from scaler.backtest.baselines import (
    IMMEDIATE,
    clairvoyant,
    clairvoyant_sizes,
    need,
    oracle,
    oracle_sizes,
)
from scaler.backtest.engine import Grid, PoolSpec, carry_demand, replay_pool
from scaler.backtest.results import summary_text
from scaler.cli import main
from scaler.config import parse_config
from scaler.core.types import PoolLimits
from scaler.traces import Trace
from tests.conftest import config_doc, examples, pool_table

START = datetime(2026, 11, 18, tzinfo=UTC).timestamp()


def spec(
    *,
    min_: int = 0,
    max_: int = 50,
    boot_minutes: float = 2.0,
    scale_in: str = "drop",
    meaning: str = "calls",
) -> PoolSpec:
    return PoolSpec(
        limits=PoolLimits("p", min_, max_, 10.0, 4, "fam", "loc"),
        behavior=IMMEDIATE,
        policies=(TargetTracking(TargetTrackingConfig(target_utilization=1.0)),),
        boot_seconds=boot_minutes * 60.0,
        window_seconds=60.0,
        lag_seconds=0.0,
        reduce="max",
        meaning=meaning,
        scale_in=scale_in,  # type: ignore[arg-type]
    )


def grid(n: int, scored: int = 0) -> Grid:
    return Grid(START, 60.0, n, scored, 60.0)


DEMAND = [0, 5, 25, 25, 8, 0, 0, 0, 31, 12, 0, 0]


@pytest.mark.parametrize(
    ("min_", "max_", "boot", "expected"),
    [
        # the oracle's size (the largest need over now ... now + boot), nothing else
        (0, 50, 2, [3, 3, 3, 3, 1, 0, 4, 4, 4, 2, 0, 0]),
        # the pool's min holds through every lull
        (2, 50, 2, [3, 3, 3, 3, 2, 2, 4, 4, 4, 2, 2, 2]),
        # and its max caps the foresight (then calls go unserved)
        (1, 3, 2, [3, 3, 3, 3, 1, 1, 3, 3, 3, 2, 1, 1]),
        # a longer boot looks further ahead
        (0, 50, 4, [3, 3, 3, 3, 4, 4, 4, 4, 4, 2, 0, 0]),
    ],
)
def test_it_asks_at_every_minute_for_the_oracles_size_within_min_and_max(
    min_: int, max_: int, boot: float, expected: list[int]
) -> None:
    calls: list[float | None] = [float(d) for d in DEMAND]
    run = clairvoyant(spec(min_=min_, max_=max_, boot_minutes=boot), calls, grid(len(calls)))
    assert list(run.series.requested) == expected
    assert all(r >= min_ for r in run.series.requested)
    # once the first instances have booted, nothing goes unserved unless max caps it
    booted = sum(run.series.unserved[int(boot) :])
    assert booted == 0 if max_ >= 4 else booted > 0


def test_a_metric_gap_holds_it_as_it_holds_every_policy() -> None:
    # the oracle shrinks at minute 5, when the newest metric (minute 4's) is missing: the pool
    # holds until the metric is back
    calls: list[float | None] = [30.0, 30.0, 30.0, None, None, 0.0, 0.0, 0.0]
    run = clairvoyant(spec(boot_minutes=1), calls, grid(len(calls)))
    assert list(run.series.requested) == [3, 3, 3, 3, 3, 3, 0, 0]


def test_hold_and_early_variations() -> None:
    demand = [float(d) for d in DEMAND]
    base = clairvoyant_sizes(demand, calls_per_instance=10.0, hold_steps=2)
    assert base == oracle_sizes(need(demand, calls_per_instance=10.0, minimum=0), boot_steps=2)
    longer = clairvoyant_sizes(demand, calls_per_instance=10.0, hold_steps=5)
    assert all(a >= b for a, b in zip(longer, base, strict=True))
    early = clairvoyant_sizes(demand, calls_per_instance=10.0, hold_steps=2, early_steps=2)
    assert all(a <= b for a, b in zip(early, base, strict=True))
    assert early[-1] == base[-1]


demands = st.lists(
    st.one_of(st.none(), st.integers(min_value=0, max_value=120)), min_size=5, max_size=150
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=demands,
    min_=st.integers(min_value=0, max_value=3),
    boot=st.integers(min_value=0, max_value=6),
    mode=st.sampled_from(["drop", "drain", "idle"]),
    scored=st.integers(min_value=0, max_value=4),
)
def test_never_below_the_oracle_keeps_min_and_skipping_held_ticks_changes_nothing(
    calls: Sequence[int | None], min_: int, boot: int, mode: str, scored: int
) -> None:
    column: list[float | None] = [None if v is None else float(v) for v in calls]
    g = grid(len(column), scored)
    s = spec(min_=min_, max_=200, boot_minutes=boot, scale_in=mode)
    run = clairvoyant(s, column, g)
    o_totals, _ = oracle(
        carry_demand(column), g, calls_per_instance=10.0, minimum=0, boot_minutes=boot
    )
    billed = run.totals.instance_seconds + run.totals.drain_instance_seconds
    assert billed >= o_totals.instance_seconds - 1e-6
    assert min(run.series.requested, default=min_) >= min_
    # the same replay with decide() at every tick (no skipped ticks) gives the same figures
    import scaler.backtest.baselines as baselines

    full = baselines.Foresight(
        clairvoyant_sizes(carry_demand(column), calls_per_instance=10.0, hold_steps=boot), g
    )
    slow = replay_pool(
        dataclasses.replace(s, policies=(full,), meaning="calls", hold_at=None), column, g
    )
    assert slow.totals == run.totals
    assert list(slow.series.requested) == list(run.series.requested)


def two_pool_result(min_: int = 1):  # type: ignore[no-untyped-def]
    doc = config_doc(
        pool_table(name="a", min=min_, max=20, boot_minutes=10),
        pool_table(name="b", min=min_, max=20, boot_minutes=10),
    )
    config = parse_config(doc)
    n = 3 * 1440
    wave: list[float | None] = [
        float(60 if (i // 60) % 24 in range(8, 18) else 2) for i in range(n)
    ]
    trace = Trace(
        start=datetime.fromtimestamp(START, UTC),
        step_seconds=60,
        pools=("a", "b"),
        calls=MappingProxyType({"a": tuple(wave), "b": tuple(wave[::-1])}),
        length=n,
    )
    return run_backtest(config, trace, options=Options(warmup_days=1))


def test_backtest_reports_it_between_the_oracle_and_the_policy() -> None:
    r = two_pool_result()
    assert r.clairvoyant is not None
    assert r.oracle.vcpu_hours <= r.clairvoyant.vcpu_hours
    assert r.clairvoyant.unserved_call_minutes == 0
    assert r.clairvoyant.min_instances >= 2  # both pools keep their min
    doc = r.to_json()
    seer = doc["baselines"]["clairvoyant"]
    for key in ("vcpu_hours", "instance_hours", "call_minutes", "unserved_call_minutes"):
        assert key in seer and key in seer["pools"]["a"]
    assert doc["vs_clairvoyant"]["total"] == pytest.approx(
        r.total.vcpu_hours / r.clairvoyant.vcpu_hours, abs=1e-3
    )
    text = summary_text([r])
    assert "clairvoyant (call-safe floor)" in text and "× clairv." in text


def test_a_higher_min_raises_the_floor_but_not_the_oracle() -> None:
    low, high = two_pool_result(1), two_pool_result(4)
    assert low.clairvoyant is not None and high.clairvoyant is not None
    assert high.oracle == low.oracle
    assert high.clairvoyant.vcpu_hours > low.clairvoyant.vcpu_hours


def test_compare_and_report_show_cost_as_a_multiple_of_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    root = Path(__file__).resolve().parent.parent
    args = [
        "backtest",
        "--config",
        str(root / "tests/golden/backtest-small.toml"),
        "--compare",
        str(root / "tests/golden/backtest-small.toml"),
        "--trace",
        str(root / "tests/golden/backtest-small.csv"),
        "--warmup-days",
        "0.125",
    ]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "× clairv." in done.output and "clairvoyant (call-safe floor)" in done.output
    done = CliRunner().invoke(main, [*args, "--json"])
    doc = json.loads(done.output)
    for one in doc.values():
        assert set(one["baselines"]) == {"oracle", "static_peak", "clairvoyant"}
    pytest.importorskip("matplotlib")
    done = CliRunner().invoke(main, [*args, "--report", str(tmp_path)])
    assert done.exit_code == 0, done.output
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "× clairvoyant" in page and "call-safe floor" in page
