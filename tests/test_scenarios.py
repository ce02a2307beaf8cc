"""Scenario families of ``tools/gen_traces.py``: deterministic per seed, and each one shows the
phenomenon it is named after."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scaler.loadgen import PoolProfile, Region, generate
from scaler.traces import load_trace
from tools.gen_traces import FAMILIES, GROWTH_PER_WEEK, scenario, write_scenario

UK, US = "teams-connector", "teams-connector-us"


def day_total(column: Sequence[float | None], start: datetime, day: date, zone: str) -> float:
    """Calls summed over a local day (minutes)."""
    first = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    a = int((first - start).total_seconds() // 60)
    return sum(v or 0.0 for v in column[a : a + 1440])


def busiest_minute_utc(column: Sequence[float | None], start: datetime, day: date) -> int:
    """Minute of the UTC day at which the 09:00 step lands: the largest one-minute rise."""
    a = int((datetime(day.year, day.month, day.day, tzinfo=UTC) - start).total_seconds() // 60)
    values = [v or 0.0 for v in column[a : a + 1440]]
    rises = [values[i + 10] - values[i] for i in range(len(values) - 10)]
    return max(range(len(rises)), key=rises.__getitem__)


def test_every_family_is_deterministic_per_seed_and_differs_between_seeds() -> None:
    for family in FAMILIES:
        a = scenario(family, 7)
        assert a == scenario(family, 7), family  # profiles, events, gaps: all from the seed
        assert a != scenario(family, 8), family
        assert {p.name for p in a.profiles} == {UK, US}
        assert a.days >= 35
    # and the rows themselves (the load model is seeded per pool and local day)
    for family in ("users-other-zone", "christmas-launch"):
        rows = list(scenario(family, 7).rows())
        assert rows == list(scenario(family, 7).rows())
        assert rows != list(scenario(family, 8).rows())


def test_growth_is_45_percent_over_five_weeks() -> None:
    sc = scenario("growth", 3)
    trace = sc.trace()
    first_week = [sc.start.date() + timedelta(days=d) for d in range(1, 4)]  # Tue-Thu
    last_week = [d + timedelta(days=28) for d in first_week]
    for pool, zone in ((UK, "Europe/London"), (US, "America/New_York")):
        early = sum(day_total(trace.calls[pool], sc.start, d, zone) for d in first_week)
        late = sum(day_total(trace.calls[pool], sc.start, d, zone) for d in last_week)
        expected = (1 + GROWTH_PER_WEEK) ** 4  # four weeks apart
        assert late / early == pytest.approx(expected, rel=0.06)
    assert pytest.approx(1.45) == (1 + GROWTH_PER_WEEK) ** 5


def test_users_in_another_zone_move_in_utc_with_their_own_dst_not_the_pools() -> None:
    sc = scenario("users-other-zone", 1)
    trace = sc.trace()
    # The London pool's users are in New York: their 09:00 step is at 13:00 UTC before the US
    # change (1 Nov) and at 14:00 UTC after it, although London changed on 25 Oct.
    before, between, after = date(2026, 10, 21), date(2026, 10, 28), date(2026, 11, 4)
    step = {d: busiest_minute_utc(trace.calls[UK], sc.start, d) for d in (before, between, after)}
    assert 13 * 60 - 5 <= step[before] <= 13 * 60 + 10
    assert step[between] == pytest.approx(step[before], abs=10)  # London's change: no move
    assert step[after] == pytest.approx(step[before] + 60, abs=10)  # New York's: an hour later
    # and the New York pool's users are in Berlin: 08:00 UTC, then 09:00 UTC from 25 Oct
    us_before = busiest_minute_utc(trace.calls[US], sc.start, before)
    us_between = busiest_minute_utc(trace.calls[US], sc.start, between)
    assert us_between == pytest.approx(us_before + 60, abs=10)


def test_follow_the_sun_keeps_a_global_pool_busy_around_the_clock() -> None:
    sc = scenario("follow-the-sun", 2)
    trace = sc.trace()
    wednesday = datetime(2026, 10, 14, tzinfo=UTC)
    a = int((wednesday - sc.start).total_seconds() // 60)
    hours = [
        sum(v or 0.0 for v in trace.calls[UK][a + h * 60 : a + h * 60 + 60]) / 60 for h in range(24)
    ]
    regional = [
        sum(v or 0.0 for v in trace.calls[US][a + h * 60 : a + h * 60 + 60]) / 60 for h in range(24)
    ]
    # Singapore's morning (01:00-03:00 UTC), London's (09:00-11:00) and New York's (14:00-16:00)
    for h in (2, 10, 15):
        assert hours[h] > 0.3 * max(hours)
    assert regional[2] < 0.05 * max(regional)  # a one-region pool sleeps at 02:00 UTC


def test_late_week_peak_is_busiest_on_thursday_and_light_on_monday() -> None:
    sc = scenario("late-week-peak", 4)
    trace = sc.trace()
    week = [date(2026, 10, 12) + timedelta(days=d) for d in range(5)]
    totals = [day_total(trace.calls[UK], sc.start, d, "Europe/London") for d in week]
    assert max(range(5), key=totals.__getitem__) == 3  # Thursday
    assert min(range(5), key=totals.__getitem__) == 0  # Monday


def test_half_day_holiday_has_a_normal_morning_and_a_holiday_afternoon() -> None:
    sc = scenario("half-day-holiday", 5)
    trace = sc.trace()
    col = trace.calls[US]
    zone = ZoneInfo("America/New_York")

    def local_mean(day: date, hour: int) -> float:
        t = datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)
        a = int((t - sc.start).total_seconds() // 60)
        return sum(v or 0.0 for v in col[a : a + 60]) / 60

    friday, week_before = date(2026, 11, 27), date(2026, 11, 20)
    assert local_mean(friday, 10) > 0.7 * local_mean(week_before, 10)
    assert local_mean(friday, 15) < 0.15 * local_mean(week_before, 15)
    assert day_total(col, sc.start, date(2026, 11, 26), "America/New_York") < 0.1 * day_total(
        col, sc.start, week_before, "America/New_York"
    )


def test_metric_gaps_are_an_hour_long_and_in_business_hours(tmp_path: Path) -> None:
    sc = scenario("metric-gaps", 6)
    assert len(sc.gaps) >= 4 and all(g.minutes == 60 for g in sc.gaps)
    csv_path, side = write_scenario(sc, tmp_path)
    trace = load_trace(csv_path, known_pools={UK, US})
    for g in sc.gaps:
        a = int((g.start - sc.start).total_seconds() // 60)
        assert all(v is None for v in trace.calls[g.pool][a : a + 60])
        assert trace.calls[g.pool][a + 60] is not None
    doc = json.loads(side.read_text(encoding="utf-8"))
    assert len(doc["metric_gaps"]) == len(sc.gaps) and doc["unannounced_events"] == []


def test_new_customer_steps_the_load_up_and_marks_its_first_day_unannounced() -> None:
    sc = scenario("new-customer", 2)
    trace = sc.trace()
    events = {e.pool: e for e in sc.events()}
    assert set(events) == {UK, US} and all(e.kind == "step" for e in events.values())
    uk_day = events[UK].start.date()
    before = day_total(trace.calls[UK], sc.start, uk_day - timedelta(days=7), "Europe/London")
    after = day_total(trace.calls[UK], sc.start, uk_day + timedelta(days=7), "Europe/London")
    assert after / before == pytest.approx(1.35, rel=0.1)


def test_christmas_is_quiet_and_the_launch_surge_is_an_unannounced_event(tmp_path: Path) -> None:
    sc = scenario("christmas-launch", 1)
    trace = sc.trace()
    (surge,) = sc.events()
    assert surge.kind == "surge" and surge.pool == US and surge.start.year == 2027
    normal = day_total(trace.calls[UK], sc.start, date(2026, 12, 9), "Europe/London")
    quiet = day_total(trace.calls[UK], sc.start, date(2026, 12, 30), "Europe/London")
    assert quiet < 0.5 * normal
    assert day_total(trace.calls[UK], sc.start, date(2026, 12, 25), "Europe/London") < 0.1 * normal
    _, side = write_scenario(sc, tmp_path)
    doc = json.loads(side.read_text(encoding="utf-8"))
    assert doc["unannounced_events"][0]["factor"] == surge.factor


def test_regions_split_a_pools_peak_and_bad_knobs_are_refused() -> None:
    start = datetime(2026, 11, 18, tzinfo=UTC)
    one = PoolProfile("p", "Europe/London", 100, seed=1)
    assert list(generate([one], start, 1)) == list(
        generate([PoolProfile("p", "Europe/London", 100, seed=1, regions=())], start, 1)
    )
    with pytest.raises(ValueError, match="weekday_factors"):
        list(generate([PoolProfile("p", "UTC", 1, weekday_factors=(1.0,))], start, 1))
    with pytest.raises(ValueError, match="growth_from"):
        list(generate([PoolProfile("p", "UTC", 1, weekly_growth=0.1)], start, 1))
    with pytest.raises(ValueError, match="region timezone"):
        list(generate([PoolProfile("p", "UTC", 1, regions=(Region("Nowhere/X", 1.0),))], start, 1))
    with pytest.raises(ValueError, match="unknown scenario family"):
        scenario("no-such-family", 1)
