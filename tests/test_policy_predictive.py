"""Predictive policy: pre-warms before a recurring step, never below reactive, falls back."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.predictive import WEEK_SECONDS, Predictive, PredictiveConfig
from policies.target_tracking import TargetTracking
from scaler.core import MetricReading, PoolLimits, PoolState
from scaler.core.history import ArrayHistory
from scaler.core.types import PolicyContext
from tests.conftest import examples

POOL = PoolLimits("tc", 1, 50, 15.0, 4, "standardFSv2Family", "westeurope", boot_minutes=20)
LAG = 3 * 60.0


def at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def office_load(t: float, *, step_utc_hour: float = 9.0, tz_shift: float = 0.0) -> float:
    """10 calls all day; 120 calls from ``step_utc_hour`` to 12:00 (shifted by ``tz_shift``
    hours) on weekdays."""
    local = t + tz_shift * 3600.0
    day = datetime.fromtimestamp(local, UTC)
    hour = day.hour + day.minute / 60.0
    if day.weekday() < 5 and step_utc_hour <= hour < 12.0:
        return 120.0
    return 10.0


def history_of(start: float, end: float, load: Any = office_load) -> ArrayHistory:
    n = int((end - start) // 60)
    return ArrayHistory(start=start, values=[load(start + 60.0 * i) for i in range(n)])


def ask(
    policy: Predictive, now: float, history: ArrayHistory | None, calls: float | None = None
) -> Any:
    if history is not None:
        history.visible_until = now - LAG
    if calls is None and history is not None:
        calls = history.value_at(now - LAG - 60)
    reading = MetricReading.ok(calls) if calls is not None else MetricReading.stale()
    ctx = PolicyContext(now, 2, calls, POOL, reading, PoolState(), history)
    return policy.recommend(ctx)


def old_style(**options: Any) -> PredictiveConfig:
    """The forecaster as it was before time bases, growth, weights and error headroom: these
    tests pin that it is still there for a config that asks for it."""
    legacy: dict[str, Any] = {
        "headroom": "utilization",
        "blend": "max",
        "outlier_ratio": None,
        "day_outlier_ratio": None,
        "growth_min": 1.0,
        "growth_max": 1.0,
        "time_bases": (),
        "margin_minutes": 10.0,
        "recent_minutes": 30,
        "recent_days": 0.0,
        "today_level": False,
        "adjust_min": 1.0,
        "persistence": False,
        "pool_days": 0.0,
    }
    return PredictiveConfig(**{**legacy, **options})


WED = "2026-10-28"  # weeks before it: three ordinary ones


@pytest.mark.parametrize(
    ("clock", "desired", "why"),
    [
        ("08:29", 1, "09:00 is beyond the 30-minute horizon"),
        ("08:31", 10, "09:00 is within boot (20) + margin (10): pre-warm 120 calls / 12"),
        ("08:45", 10, "still ahead of the step"),
        ("12:20", 1, "the step is over in every earlier week"),
    ],
)
def test_prewarms_before_a_recurring_0900_step_seen_in_earlier_weeks(
    clock: str, desired: int, why: str
) -> None:
    now = at(f"{WED}T{clock}Z")
    h = history_of(now - 3 * WEEK_SECONDS, now + 3600)
    rec = ask(Predictive(old_style()), now, h)
    assert rec.desired == desired, why
    reactive = TargetTracking().recommend(
        PolicyContext(now, 2, 10.0, POOL, MetricReading.ok(10.0), PoolState())
    )
    assert reactive is not None and reactive.desired == 1  # what reacting alone would do


@pytest.mark.parametrize(
    ("days_of_history", "min_weeks", "desired"),
    [
        (3, 1, 1),  # shorter than a week: plain target tracking
        (8, 1, 10),
        (8, 2, 1),  # one week is not enough when two are required
        (15, 2, 10),
    ],
)
def test_falls_back_to_reactive_when_history_is_short(
    days_of_history: int, min_weeks: int, desired: int
) -> None:
    now = at(f"{WED}T08:45Z")
    h = history_of(now - days_of_history * 86400.0, now + 3600)
    rec = ask(Predictive(old_style(min_history_weeks=min_weeks)), now, h)
    assert rec.desired == desired
    if desired == 1:
        assert rec.note.startswith("reactive")


def test_without_history_it_is_target_tracking() -> None:
    p = Predictive(old_style(target_utilization=0.5))
    assert ask(p, at(f"{WED}T08:45Z"), None, calls=30.0).desired == 4
    assert ask(p, at(f"{WED}T08:45Z"), None, calls=None) is None


@pytest.mark.parametrize("calls", [0.0, 50.0, 119.0, 300.0, 1000.0])
def test_never_below_the_reactive_answer(calls: float) -> None:
    now = at(f"{WED}T08:45Z")
    h = history_of(now - 3 * WEEK_SECONDS, now + 3600)
    rec = ask(Predictive(old_style()), now, h, calls=calls)
    assert rec.desired == max(10, math.ceil(calls / 12))


def test_forecast_still_raises_when_the_metric_is_unusable() -> None:
    now = at(f"{WED}T08:45Z")
    h = history_of(now - 3 * WEEK_SECONDS, now + 3600)
    h.visible_until = now - LAG
    ctx = PolicyContext(now, 2, None, POOL, MetricReading.stale(), PoolState(), h)
    rec = Predictive(old_style()).recommend(ctx)
    assert rec is not None and rec.desired == 10


def test_recent_level_lifts_the_forecast_within_bounds() -> None:
    now = at(f"{WED}T08:45Z")
    # Today runs at twice last weeks' level: 20 calls instead of 10 before the step.
    start = now - 3 * WEEK_SECONDS

    def busier(t: float) -> float:
        return office_load(t) * (2.0 if t > now - 86400 else 1.0)

    h = history_of(start, now + 3600, busier)
    plain = ask(Predictive(old_style(recent_minutes=0)), now, h).desired
    lifted = ask(Predictive(old_style()), now, h).desired
    capped = ask(Predictive(old_style(adjust_max=1.1)), now, h).desired
    # (20 + 15) / (10 + 15) = 1.4: 120 calls become 168, i.e. 14 instances; capped at 1.1: 11.
    assert (plain, lifted, capped) == (10, 14, 11)


def test_blend_median_ignores_one_odd_week() -> None:
    now = at(f"{WED}T10:15Z")
    start = now - 4 * WEEK_SECONDS

    def spike_two_weeks_ago(t: float) -> float:
        week = int((now - t) // WEEK_SECONDS)
        return 600.0 if week == 2 and 10 <= datetime.fromtimestamp(t, UTC).hour < 11 else 120.0

    h = history_of(start, now + 3600, spike_two_weeks_ago)
    by_max = ask(Predictive(old_style(recent_minutes=0)), now, h, calls=120.0).desired
    by_median = ask(
        Predictive(old_style(blend="median", recent_minutes=0)), now, h, calls=120.0
    ).desired
    assert (by_max, by_median) == (50, 10)


@pytest.mark.parametrize(
    ("odd", "weeks", "outlier_ratio", "desired", "why"),
    [
        (600.0, 4, None, 50, "max covers every week, last week's surge too"),
        (600.0, 4, 1.5, 10, "600 is over 1.5 x (median 120 + 15): left out"),
        (150.0, 4, 1.5, 13, "a busier ordinary week (150) still counts: 150 / 12"),
        (600.0, 2, 1.5, 50, "with two weeks known there is no majority to judge by"),
    ],
)
def test_outlier_ratio_leaves_out_an_unannounced_surge_but_not_a_busy_week(
    odd: float, weeks: int, outlier_ratio: float | None, desired: int, why: str
) -> None:
    now = at(f"{WED}T10:15Z")

    def odd_last_week(t: float) -> float:
        week = int((now - t) // WEEK_SECONDS)
        return odd if week == 0 and 10 <= datetime.fromtimestamp(t, UTC).hour < 11 else 120.0

    h = history_of(now - weeks * WEEK_SECONDS, now + 3600, odd_last_week)
    config = old_style(recent_minutes=0, outlier_ratio=outlier_ratio)
    assert ask(Predictive(config), now, h, calls=120.0).desired == desired, why


@pytest.mark.parametrize(
    ("weeks", "single_week", "desired", "why"),
    [
        (1, 0.6, 14, "one week behind the forecast: 120 calls / (15 x 0.6)"),
        (2, 0.6, 10, "two weeks: the usual 120 / (15 x 0.8)"),
        (1, None, 10, "not set: one week plans like four"),
    ],
)
def test_single_week_utilization_plans_more_room_on_one_week_of_history(
    weeks: int, single_week: float | None, desired: int, why: str
) -> None:
    now = at(f"{WED}T10:15Z")
    h = history_of(now - weeks * WEEK_SECONDS, now + 3600, lambda t: 120.0)
    config = old_style(recent_minutes=0, single_week_utilization=single_week)
    assert ask(Predictive(config), now, h, calls=30.0).desired == desired, why


def test_local_weeks_keep_a_0900_step_at_0900_across_dst() -> None:
    # London: 09:00 local is 08:00Z in summer time, 09:00Z from Sunday 2026-10-25.
    def london(t: float) -> float:
        shift = 1.0 if t < at("2026-10-25T01:00Z") else 0.0
        return office_load(t, tz_shift=shift)

    mon = "2026-10-26"
    h = history_of(at(mon + "T00:00Z") - 3 * WEEK_SECONDS, at(mon + "T12:00Z"), london)
    local = Predictive(old_style(timezone="Europe/London"))
    utc = Predictive(old_style())
    early, on_time = at(mon + "T07:35Z"), at(mon + "T08:35Z")
    assert ask(local, early, h, calls=10.0).desired == 1  # no hour-early pre-warm
    assert ask(local, on_time, h, calls=10.0).desired == 10
    assert ask(utc, early, h, calls=10.0).desired == 10  # UTC weeks: an hour early


def test_cache_gives_the_same_answers_as_a_fresh_instance() -> None:
    now0 = at(f"{WED}T07:00Z")
    h = history_of(now0 - 3 * WEEK_SECONDS, now0 + 6 * 3600)
    kept = Predictive(old_style(timezone="Europe/London"))
    for minute in range(0, 300, 7):
        now = now0 + 60.0 * minute
        fresh = Predictive(old_style(timezone="Europe/London"))
        assert ask(kept, now, h) == ask(fresh, now, h)
    # Going back in time, or to another history, starts over.
    assert ask(kept, now0, h) == ask(Predictive(kept.config), now0, h)


FOUR_WEEKS = history_of(at("2026-10-05T00:00Z"), at("2026-11-09T02:00Z"))


@settings(max_examples=examples(60), deadline=None)
@given(
    calls=st.one_of(st.none(), st.floats(0, 2000)),
    minute=st.integers(0, 7 * 1440 - 1),
    weeks=st.integers(1, 5),
    blend=st.sampled_from(["max", "median", "mean"]),
)
def test_property_never_below_target_tracking(
    calls: float | None, minute: int, weeks: int, blend: str
) -> None:
    now = at("2026-11-02T00:00Z") + 60.0 * minute
    h = FOUR_WEEKS
    cfg = old_style(weeks=weeks, blend=blend)  # type: ignore[arg-type]
    rec = ask(Predictive(cfg), now, h, calls=calls)
    if calls is None:
        assert rec is not None and rec.desired >= 1
    else:
        assert rec.desired >= math.ceil(round(calls / 12, 9))
        assert rec.desired <= max(10, math.ceil(round(calls / 12, 9)))


def test_config_rejects_more_required_weeks_than_blended() -> None:
    with pytest.raises(ValueError, match=r"min_history_weeks \(3\) must be <= weeks \(2\)"):
        PredictiveConfig(weeks=2, min_history_weeks=3)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        PredictiveConfig(timezone="Mars/Base")


# -- the forecaster that finds its own time base, trend and headroom ------------------------------


def users_in(zone: str, *, level: float = 120.0, growth: float = 1.0) -> Any:
    """10 calls all day; ``level`` calls 09:00-12:00 *local to* ``zone`` on weekdays, times
    ``growth`` per week since 2026-01-05."""
    tz = ZoneInfo(zone)

    def load(t: float) -> float:
        local = datetime.fromtimestamp(t, tz)
        weeks = (t - at("2026-01-05T00:00Z")) // WEEK_SECONDS
        if local.weekday() < 5 and 9 <= local.hour < 12:
            return level * growth**weeks
        return 10.0

    return load


def new_style(**options: Any) -> Predictive:
    return Predictive(PredictiveConfig(**options))


@pytest.mark.parametrize(
    ("users", "hint", "day", "quiet", "busy", "why"),
    [
        (
            "America/New_York",
            "Europe/London",
            "2026-11-03",
            "12:41",
            "13:41",
            "US autumn change (1 Nov): 09:00 EST is 14:00Z, an hour later in UTC than last week",
        ),
        (
            "Europe/London",
            None,
            "2026-10-27",
            "07:41",
            "08:41",
            "EU autumn change (25 Oct), no zone configured: 09:00 GMT is 09:00Z",
        ),
        (
            "America/New_York",
            None,
            "2026-03-10",
            "11:41",
            "12:41",
            "US spring change (8 Mar): 09:00 EDT is 13:00Z, an hour earlier than last week",
        ),
        (
            "Europe/Berlin",
            "America/New_York",
            "2026-03-31",
            "05:41",
            "06:41",
            "EU spring change (29 Mar), US zone configured: 09:00 CEST is 07:00Z",
        ),
    ],
)
def test_time_base_found_from_the_data_across_dst(
    users: str, hint: str | None, day: str, quiet: str, busy: str, why: str
) -> None:
    """Users whose clock is not the configured one: the day after a DST change the policy
    pre-warms for the 09:00 step at 09:00 of the users' clock, and not an hour early."""
    load = users_in(users)
    h = history_of(at(f"{day}T00:00Z") - 4 * WEEK_SECONDS, at(f"{day}T23:00Z"), load)
    policy = new_style(timezone=hint, headroom="utilization")
    # Replay the day before (the first working day on the new clock) as the daemon would.
    for minute in range(0, 1440, 15):
        ask(policy, at(f"{day}T00:00Z") - 86400.0 + 60.0 * minute, h, calls=10.0)
    assert ask(policy, at(f"{day}T{quiet}Z"), h, calls=10.0).desired == 1, why
    assert ask(policy, at(f"{day}T{busy}Z"), h, calls=10.0).desired >= 10, why


def test_both_alignments_are_kept_until_the_data_says_which_holds() -> None:
    """On the first working morning after a DST change nothing has told the two alignments
    apart yet: the policy covers both (an hour of extra capacity rather than an hour short)."""
    load = users_in("America/New_York")
    day = "2026-03-09"  # Monday after the US spring change (8 Mar); London changes on 29 Mar
    h = history_of(at(f"{day}T00:00Z") - 4 * WEEK_SECONDS, at(f"{day}T23:00Z"), load)
    policy = new_style(timezone="Europe/London", headroom="utilization")
    assert ask(policy, at(f"{day}T12:41Z"), h, calls=10.0).desired >= 10  # 09:00 EDT = 13:00Z
    assert ask(policy, at(f"{day}T13:41Z"), h, calls=10.0).desired >= 10  # last week's 14:00Z
    # The configured zone alone (the behaviour before): an hour late for these users.
    only_hint = new_style(timezone="Europe/London", time_bases=(), headroom="utilization")
    assert ask(only_hint, at(f"{day}T12:41Z"), h, calls=10.0).desired == 1


@pytest.mark.parametrize(
    ("growth_max", "expected", "why"),
    [
        (1.25, 120.0 * 1.08**4, "8 % a week found and carried to this week"),
        (1.0, None, "growth off: the recency-weighted mean of weeks that were smaller"),
    ],
)
def test_growth_is_extrapolated(growth_max: float, expected: float | None, why: str) -> None:
    load = users_in("UTC", growth=1.08)
    now = at(f"{WED}T08:30Z")
    start = at("2026-10-05T00:00Z")  # weeks 39..42 after 2026-01-05; this is week 43
    h = history_of(start - 7 * 86400.0, now + 3600, load)
    h.visible_until = now - LAG
    # the trend alone: no other days pooled, no level, no carried deviation
    policy = new_style(
        growth_max=growth_max,
        recency_decay=0.75,
        pool_days=0.0,
        today_level=False,
        recent_days=0.0,
        persistence=False,
    )
    got = policy.forecast(history=h, at=at(f"{WED}T10:00Z"), now=now, pool=POOL)
    actual = load(at(f"{WED}T10:00Z"))
    assert got is not None
    if expected is None:
        assert got < 0.9 * actual, why
    else:
        assert got == pytest.approx(actual, rel=0.02), why


def test_a_holiday_neither_replays_nor_poisons_the_next_weeks() -> None:
    """Monday 2026-10-19 was a holiday (10 calls all day). The next Mondays are planned from
    normal Mondays, and the holiday itself is planned like a Sunday."""
    holiday = "2026-10-19"

    def load(t: float) -> float:
        if datetime.fromtimestamp(t, UTC).date().isoformat() == holiday:
            return 10.0
        return office_load(t)

    mon = "2026-11-02"
    h = history_of(at(mon + "T00:00Z") - 4 * WEEK_SECONDS, at(mon + "T12:00Z"), load)
    plain = {"day_outlier_ratio": None, "headroom": "utilization", "target_utilization": 1.0}
    known = new_style(holidays={"dates": [holiday]}, **plain)
    unknown = new_style(**plain)
    # Sources of 2 Nov: 26 Oct (w1), 19 Oct (the holiday, w2), 12 Oct, 5 Oct.
    assert ask(known, at(mon + "T08:45Z"), h, calls=10.0).desired == 8  # 120 / 15
    assert ask(unknown, at(mon + "T08:45Z"), h, calls=10.0).desired < 8  # the holiday replayed
    # The day-outlier test catches such a day even without the calendar.
    assert ask(new_style(headroom="utilization", target_utilization=1.0), at(mon + "T08:45Z"), h,
               calls=10.0).desired == 8  # fmt: skip
    # On a holiday: the last Sundays' hours (10 calls), not a Monday's 09:00 step.
    bank = new_style(holidays={"country": "GB", "subdivision": "ENG"}, **plain)
    may = "2026-05-25"  # Spring bank holiday (a Monday)
    h2 = history_of(at(may + "T00:00Z") - 4 * WEEK_SECONDS, at(may + "T12:00Z"))
    assert ask(bank, at(may + "T08:45Z"), h2, calls=10.0).desired == 1
    assert ask(new_style(**plain), at(may + "T08:45Z"), h2, calls=10.0).desired == 8


def test_half_day_plans_a_working_morning_and_a_sunday_afternoon() -> None:
    day = "2026-12-24"  # a Thursday

    def load(t: float) -> float:
        when = datetime.fromtimestamp(t, UTC)
        if when.weekday() >= 5 or (when.date().isoformat() == day and when.hour >= 13):
            return 10.0
        return 120.0

    h = history_of(at(day + "T00:00Z") - 4 * WEEK_SECONDS, at(day + "T18:00Z"), load)
    policy = new_style(
        holidays={"half_days": [day], "half_day_from": 13},
        headroom="utilization",
        target_utilization=1.0,
    )
    assert ask(policy, at(day + "T10:00Z"), h, calls=10.0).desired == 8
    assert ask(policy, at(day + "T13:15Z"), h, calls=10.0).desired == 1


def test_headroom_from_measured_error() -> None:
    """Every other day the 09:00-12:00 level is ``noise`` higher, otherwise ``noise`` lower;
    the planned headroom follows the error the policy measured on its own forecasts: more
    error, more instances; a quiet hour little headroom whatever the ramp's error."""

    def plan(noise: float, when: str = "08:45") -> Any:
        def load(t: float) -> float:
            base = office_load(t)
            if base < 100.0:
                return base
            odd = int(t // 86400.0) % 2
            return base + (noise if odd else -noise)

        now = at(f"{WED}T{when}Z")
        h = history_of(now - 4 * WEEK_SECONDS, now + 3600, load)
        policy = new_style(outlier_ratio=None, day_outlier_ratio=None)
        # learn the errors as the daemon would, a tick a minute over the last three weeks
        for minute in range(3 * 7 * 1440, 0, -1):
            ask(policy, now - 60.0 * minute, h)
        return ask(policy, now, h, calls=10.0)

    def headroom(rec: Any) -> float:
        forecast = float(rec.note.split(" ")[1])
        return float(rec.note.rsplit(" ", 1)[1]) - forecast

    quiet, some, more = plan(0.0), plan(20.0), plan(40.0)
    assert 8 <= quiet.desired < some.desired < more.desired, (quiet, some, more)
    # identical weeks: the forecast is 120 calls and what headroom is left is the prior's
    assert quiet.desired <= 10, quiet.note
    night = plan(40.0, "02:00")  # 10 calls, as every night
    assert night.desired <= 2 and headroom(night) < headroom(more) / 4, (night, more)


@pytest.mark.parametrize(
    ("target", "quantile"), [(1e-3, None), (1e-4, None), (1e-5, None), (None, 0.999)]
)
def test_one_knob_the_unserved_share_sets_the_quantile(
    target: float | None, quantile: float | None
) -> None:
    """A smaller ``target_unserved`` plans a higher quantile and more instances; the note says
    which quantile; ``error_quantile`` fixes it instead."""
    now = at(f"{WED}T08:45Z")

    def load(t: float) -> float:
        base = office_load(t)
        return base + (20.0 if base > 100.0 and int(t // 86400.0) % 2 else 0.0)

    h = history_of(now - 4 * WEEK_SECONDS, now + 3600, load)
    options: dict[str, Any] = {"outlier_ratio": None, "day_outlier_ratio": None}
    if target is not None:
        options["target_unserved"] = target
    else:
        options["error_quantile"] = quantile
    policy = new_style(**options)
    for minute in range(2 * 7 * 1440, 0, -1):
        ask(policy, now - 60.0 * minute, h)
    rec = ask(policy, now, h, calls=10.0)
    q = float(rec.note.split(", q")[1].split(" ")[0])
    if quantile is not None:
        assert q == pytest.approx(quantile)
    PLANS[target or 0.0] = (q, rec.desired)
    if len(PLANS) == 4:
        loose, mid, tight = PLANS[1e-3], PLANS[1e-4], PLANS[1e-5]
        assert loose[0] < mid[0] < tight[0]
        assert loose[1] <= mid[1] <= tight[1] and loose[1] < tight[1]


PLANS: dict[float, tuple[float, int]] = {}


def test_forecast_method_matches_what_the_policy_plans() -> None:
    now = at(f"{WED}T08:45Z")
    h = history_of(now - 3 * WEEK_SECONDS, now + 3600)
    h.visible_until = now - LAG
    policy = new_style()
    assert policy.forecast(history=h, at=at(f"{WED}T09:05Z"), now=now, pool=POOL) == pytest.approx(
        120.0
    )
    plan = policy.outlook(history=h, at=at(f"{WED}T09:05Z"), now=now, pool=POOL)
    assert plan is not None and plan.upper > plan.forecast == pytest.approx(120.0)
    rec = ask(policy, now, h, calls=10.0)
    assert rec.desired == plan.instances, (rec.note, plan)  # what it plans for that minute
    # A deviation now is meetings in progress: it carries into the next minutes' forecast.
    busy = history_of(
        now - 3 * WEEK_SECONDS,
        now + 3600,
        lambda t: office_load(t) + (30.0 if now - 3600 <= t else 0.0),
    )
    busy.visible_until = now - LAG
    ahead = new_style(today_level=False, recent_days=0.0)
    lifted = ahead.forecast(history=busy, at=now + 300.0, now=now, pool=POOL)
    assert lifted is not None and 10.0 + 30.0 * 0.8 < lifted < 40.0
    short = history_of(now - 86400.0, now)
    short.visible_until = now - LAG
    assert new_style().forecast(history=short, at=now + 600, now=now) is None


@settings(max_examples=examples(40), deadline=None)
@given(
    calls=st.one_of(st.none(), st.floats(0, 2000)),
    minute=st.integers(0, 7 * 1440 - 1),
    quantile=st.sampled_from([0.9, 0.995]),
    hint=st.sampled_from([None, "Europe/London", "America/New_York"]),
    margin=st.sampled_from([0.0, 3.0, 10.0]),
    boot=st.sampled_from([None, 0.0, 5.0]),
)
def test_property_new_forecaster_never_below_target_tracking(
    calls: float | None,
    minute: int,
    quantile: float,
    hint: str | None,
    margin: float,
    boot: float | None,
) -> None:
    now = at("2026-11-02T00:00Z") + 60.0 * minute
    cfg = PredictiveConfig(
        error_quantile=quantile,
        timezone=hint,
        error_days=3,
        min_error_days=1,
        margin_minutes=margin,
        boot_minutes=boot,
        recent_days=1.0,
    )
    rec = ask(Predictive(cfg), now, FOUR_WEEKS, calls=calls)
    if calls is None:
        assert rec is not None and rec.desired >= 1
    else:
        assert rec.desired >= math.ceil(round(calls / 12, 9))


def test_config_rejects_bad_calendars_and_zones() -> None:
    with pytest.raises(ValueError, match="unknown holiday country"):
        PredictiveConfig(holidays={"country": "XX"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        PredictiveConfig(time_bases=("UTC", "Mars/Base"))
    with pytest.raises(ValueError, match=r"min_error_days \(9.0\) must be <= error_days \(7\)"):
        PredictiveConfig(error_days=7, min_error_days=9)


@pytest.mark.parametrize(
    ("recent_days", "expected", "why"),
    [
        (0.0, 8, "the weeks behind the forecast still say 120 calls"),
        (1.0, 10, "yesterday ran 1.3x its forecast: 1.3 shrunk by 20,000 call-minutes is 1.24"),
    ],
)
def test_recent_days_lift_the_forecast_after_a_step_in_the_base_load(
    recent_days: float, expected: int, why: str
) -> None:
    """A new customer from Monday: everything 1.3x. On Wednesday the weeks behind the forecast
    do not show it yet; the last day against its own forecast does."""
    step = at("2026-10-26T00:00Z")

    def load(t: float) -> float:
        return office_load(t) * (1.3 if t >= step else 1.0)

    now = at(f"{WED}T08:45Z")
    h = history_of(now - 4 * WEEK_SECONDS, now + 3600, load)
    policy = new_style(
        recent_days=recent_days,
        recent_minutes=0,
        headroom="utilization",
        target_utilization=1.0,
        growth_max=1.0,
        today_level=False,
        persistence=False,
    )
    assert ask(policy, now, h, calls=13.0).desired == expected, why


def test_single_week_utilization_bounds_the_error_plan_too() -> None:
    """On one week of history the plan is made at ``single_week_utilization`` of an instance,
    whatever the (few) errors say; with two weeks it is not."""
    now = at(f"{WED}T10:15Z")

    def plan(days: float, single_week: float | None) -> Any:
        h = history_of(now - days * 86400.0, now + 3600, lambda t: 120.0)
        policy = new_style(single_week_utilization=single_week)
        return ask(policy, now, h, calls=30.0)

    one, bounded = plan(10, None), plan(10, 0.6)
    assert "plan" in one.note and "plan" in bounded.note
    upper = float(one.note.rsplit(" ", 1)[1])
    assert one.desired == math.ceil(upper / 15 - 1e-9)
    assert bounded.desired == math.ceil(upper / 9 - 1e-9)
    assert plan(17, 0.6).desired < bounded.desired  # two weeks behind it: not bounded


# -- a memory budget, and learning from the history that exists ----------------------------------


def noisy_office(t: float) -> float:
    """office_load with a day-to-day level and some minute noise (deterministic)."""
    day = int(t // 86400.0)
    minute = int(t // 60.0)
    level = 1.0 + 0.08 * math.sin(day * 1.7)
    return max(0.0, office_load(t) * level + 3.0 * math.sin(minute * 0.37))


def test_state_stays_within_its_budget_over_weeks() -> None:
    """What a pool's policy keeps does not grow with the weeks it runs: compact arrays over the
    horizon, fixed error records, caches bounded by what the next plans read. (Six weeks
    without a daylight-saving change in any time base: around one, the sources of the plan's
    minutes differ per base for the weeks blended, a bounded but larger set.)"""
    start = at("2026-01-05T00:00Z")
    h = history_of(start, start + 6 * WEEK_SECONDS, noisy_office)
    policy = new_style(timezone="Europe/London")
    sizes = []
    for minute in range(0, 6 * 7 * 1440, 1):
        ask(policy, start + 60.0 * minute + 60.0, h)
        if minute % (7 * 1440) == 0:
            sizes.append(policy.state_bytes())
    assert max(sizes) < 48_000, sizes
    assert sizes[-1] <= sizes[2] * 1.1, sizes  # weeks 3 to 6: flat


class Eager(Predictive):
    CATCH_UP_MINUTES = 10**9  # the whole error record at once, for a test


def test_a_restart_learns_from_the_history_that_exists() -> None:
    """A policy built on a pool whose history is already there (a start with backfill, a
    reload) plans from it at once, and once its error record is replayed it plans as the
    policy that ran all along."""
    start = at("2026-09-07T00:00Z")
    h = history_of(start, start + 5 * WEEK_SECONDS, noisy_office)
    kept = new_style(timezone="Europe/London")
    cut = start + 4 * WEEK_SECONDS + 7 * 3600.0  # a Monday, 07:00
    for minute in range(1, int((cut - start) // 60)):
        ask(kept, start + 60.0 * minute, h)
    fresh = Eager(kept.config)
    slow = new_style(timezone="Europe/London")
    first = ask(slow, cut, h)
    assert slow.forecaster._replay is not None
    assert first.desired >= 1
    differ = 0
    for minute in range(0, 4 * 60, 5):  # the morning: ramp and busy hours
        now = cut + 60.0 * minute
        a, b = ask(kept, now, h), ask(fresh, now, h)
        assert abs(a.desired - b.desired) <= 1, (minute, a, b)
        differ += a.desired != b.desired
    assert differ <= 8
