"""Step rules: any rule scales out, all rules scale in, cooldowns and Azure's flapping check."""

from __future__ import annotations

from typing import Any

import pytest

from policies.step import StepConfig, StepRules
from scaler.config import parse_config
from scaler.core import MetricReading, PoolLimits, PoolState
from scaler.core.history import ArrayHistory
from scaler.core.types import PolicyContext
from scaler.errors import ConfigError
from tests.conftest import config_doc, pool_table

POOL = PoolLimits("tc", 1, 30, 15.0, 4, "standardFSv2Family", "westeurope")
NOW = 1_800_000_000.0
NO_STATE = PoolState()


def rule(direction: str, operator: str, threshold: float, **over: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "metric": "percent",
        "statistic": "average",
        "time_window_minutes": 5,
        "operator": operator,
        "threshold": threshold,
        "direction": direction,
        "cooldown_minutes": 0,
    }
    if not {"change_count", "percent_change", "exact_count"} & over.keys():
        table["change_count"] = 1
    table.update(over)
    return table


def policy(*rules: dict[str, Any]) -> StepRules:
    return StepRules(StepConfig.model_validate({"rules": list(rules)}))


def ask(
    p: StepRules,
    current: int,
    calls: float | None,
    *,
    state: PoolState = NO_STATE,
    history: ArrayHistory | None = None,
) -> int | None:
    reading = MetricReading.ok(calls) if calls is not None else MetricReading.stale()
    rec = p.recommend(PolicyContext(NOW, current, calls, POOL, reading, state, history))
    return None if rec is None else rec.desired


# Four instances of 15 calls: 60 calls is 100 %, 6 calls 10 %.
OUT_CPU = rule("increase", ">", 70, change_count=1)
OUT_BUSY = rule("increase", ">=", 14, metric="calls_per_instance", change_count=3)
IN_CPU = rule("decrease", "<", 30, change_count=1)
IN_CALLS = rule("decrease", "<", 10, metric="calls", change_count=2)


@pytest.mark.parametrize(
    ("calls", "desired", "why"),
    [
        (40.0, 4, "66 %: nothing fires"),
        (45.0, 5, "75 %: the CPU rule fires (+1)"),
        (56.0, 7, "93 % and 14 per instance: both fire, the largest (+3) wins"),
        (15.0, 4, "25 % but 15 calls: only one decrease rule fires, so no scale-in"),
        (9.0, 3, "15 % and 9 calls: both decrease rules fire, the smaller change (-1) wins"),
    ],
)
def test_any_rule_scales_out_all_rules_scale_in(calls: float, desired: int, why: str) -> None:
    assert ask(policy(OUT_CPU, OUT_BUSY, IN_CPU, IN_CALLS), 4, calls) == desired, why


@pytest.mark.parametrize(
    ("change", "current", "direction", "desired"),
    [
        ({"percent_change": 50}, 5, "increase", 8),  # 2.5 rounds up for a scale-out
        ({"percent_change": 50}, 5, "decrease", 3),  # ...and down for a scale-in
        ({"percent_change": 10}, 4, "increase", 5),  # at least one instance
        ({"percent_change": 10}, 4, "decrease", 3),
        ({"exact_count": 9}, 4, "increase", 9),
        ({"exact_count": 2}, 4, "increase", 4),  # an "increase" never lowers
        ({"exact_count": 2}, 6, "decrease", 2),
        ({"change_count": 10}, 4, "decrease", 0),  # the core's min applies afterwards
    ],
)
def test_change_kinds(change: dict[str, Any], current: int, direction: str, desired: int) -> None:
    op, threshold = (">=", 0) if direction == "increase" else ("<=", 1000)
    p = policy(rule(direction, op, threshold, metric="calls", **change))
    assert ask(p, current, 0.0) == desired


@pytest.mark.parametrize(
    ("state", "desired"),
    [
        (PoolState(), 5),
        (PoolState(last_scale_up=NOW - 240), 4),  # within the 5-minute cooldown
        (PoolState(last_scale_up=NOW - 300), 5),
        # a scale-in's cooldown holds a scale-out too (Azure: "applies to both")
        (PoolState(last_scale_down=NOW - 60), 4),
        (PoolState(last_scale_down=NOW - 300), 5),
    ],
)
def test_the_cooldown_after_any_resize_holds_a_scale_out(state: PoolState, desired: int) -> None:
    p = policy(rule("increase", ">", 70, cooldown_minutes=5))
    assert ask(p, 4, 50.0, state=state) == desired


@pytest.mark.parametrize(
    ("state", "desired"),
    [
        (PoolState(), 3),
        # the scale-out's rule has no cooldown: a scale-in may follow it at once
        (PoolState(last_scale_up=NOW - 600), 3),
        (PoolState(last_scale_down=NOW - 600), 4),  # within 15 minutes of the scale-in
        (PoolState(last_scale_up=NOW - 900, last_scale_down=NOW - 1000), 3),
    ],
)
def test_the_cooldown_is_the_one_of_the_last_resize_direction(
    state: PoolState, desired: int
) -> None:
    p = policy(OUT_CPU, rule("decrease", "<", 30, cooldown_minutes=15))
    assert ask(p, 4, 6.0, state=state) == desired


def test_several_cooldowns_of_a_direction_take_the_safe_one_for_each_direction() -> None:
    """Two increase rules with 5 and 30 minutes: after a scale-out, increase rules wait 5
    minutes (the shortest: more capacity sooner) and decrease rules 30 (the longest)."""
    p = policy(
        rule("increase", ">", 70, cooldown_minutes=5),
        rule("increase", ">", 95, cooldown_minutes=30),
        rule("decrease", "<", 30, cooldown_minutes=0),
    )
    after = PoolState(last_scale_up=NOW - 600)
    assert ask(p, 4, 50.0, state=after) == 5  # 10 minutes on: a scale-out again
    assert ask(p, 4, 6.0, state=after) == 4  # but no scale-in before 30
    assert ask(p, 4, 6.0, state=PoolState(last_scale_up=NOW - 1800)) == 3


@pytest.mark.parametrize(
    ("out_threshold", "desired", "why"),
    [
        (70, 2, "12 calls on 2 instances is 40 %: no flapping, the full scale-in"),
        (35, 3, "2 instances would be 40 % > 35 %: shrunk to 3 (27 %)"),
        (25, 4, "even 3 instances would be 27 % > 25 %: skipped"),
    ],
)
def test_flapping_check_shrinks_or_skips_a_scale_in(
    out_threshold: float, desired: int, why: str
) -> None:
    p = policy(rule("increase", ">", out_threshold), rule("decrease", "<", 30, change_count=2))
    assert ask(p, 4, 12.0) == desired, why


def test_flapping_projection_ignores_total_call_rules() -> None:
    # A rule on the pool's total calls is the same whatever the instance count.
    p = policy(
        rule("increase", ">", 100, metric="calls"),
        rule("decrease", "<", 20, metric="calls", change_count=3),
    )
    assert ask(p, 4, 12.0) == 1


def history(values: list[float | None]) -> ArrayHistory:
    start = NOW - 60.0 * len(values)
    return ArrayHistory(start=start, values=values)


@pytest.mark.parametrize(
    ("statistic", "window", "desired"),
    [
        ("average", 4, 4),  # (10+10+10+40)/4 = 17.5 calls = 29 % of 60: not > 50
        ("max", 4, 5),  # 40 calls = 67 %
        ("min", 4, 4),
        ("average", 1, 5),  # only the newest minute
        ("max", 2, 5),  # unknown minutes are skipped, never zero
    ],
)
def test_statistic_over_the_time_window_reads_the_history(
    statistic: str, window: int, desired: int
) -> None:
    p = policy(rule("increase", ">", 50, statistic=statistic, time_window_minutes=window))
    h = history([90.0, 10.0, 10.0, None, 10.0, 40.0])
    h2 = history([90.0, 10.0, 10.0, 10.0, 40.0])
    assert ask(p, 4, 20.0, history=h if window == 2 else h2) == desired


def test_without_history_the_current_reading_stands_for_the_window() -> None:
    p = policy(rule("increase", ">", 50, statistic="max", time_window_minutes=30))
    assert ask(p, 4, 40.0) == 5
    assert ask(p, 4, 20.0) == 4


def test_no_opinion_on_unusable_metrics_and_hold_without_decrease_rules() -> None:
    assert ask(policy(OUT_CPU, IN_CPU), 4, None) is None
    assert ask(policy(OUT_CPU), 4, 0.0) == 4


def test_from_zero_instances_any_load_is_above_a_percent_threshold() -> None:
    assert ask(policy(OUT_CPU, IN_CPU), 0, 3.0) == 1
    assert ask(policy(OUT_CPU, IN_CPU), 0, 0.0) == 0


def problems(rules: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        doc = config_doc(pool_table(policies=[{"type": "step", "rules": rules}]))
        parse_config(doc, environ={})
    return info.value.problems


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([rule("increase", ">", 70, percent_change=10, change_count=1)], "pools[0].policies[0]"
         ".rules[0]: needs exactly one of change_count, percent_change, exact_count; has "
         "change_count, percent_change"),
        ([rule("increase", "=>", 70)], "pools[0].policies[0].rules[0].operator: input should be"),
        ([rule("sideways", ">", 70)], "pools[0].policies[0].rules[0].direction:"),
        ([OUT_CPU, rule("decrease", "<", 30, metric="cpu")], "pools[0].policies[0].rules[1]"
         ".metric: input should be 'calls', 'calls_per_instance' or 'percent', got \"cpu\""),
        ([], "pools[0].policies[0].rules: "),
    ],
)  # fmt: skip
def test_config_errors_name_the_key_path(rules: list[dict[str, Any]], expected: str) -> None:
    found = problems(rules)
    assert any(p.startswith(expected) for p in found), found
