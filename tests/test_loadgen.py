"""Synthetic call load: shape, determinism, events and DST handling."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from statistics import mean

import pytest

from scaler.loadgen import MEAN_MEETING_MINUTES, Gap, PoolProfile, Spike, generate

LONDON = PoolProfile("teams-connector", "Europe/London", peak_calls=150, seed=1)
NEW_YORK = PoolProfile("teams-connector-us", "America/New_York", peak_calls=90, seed=2)
WEDNESDAY = datetime(2026, 11, 18, tzinfo=UTC)  # London is on UTC in November

Series = dict[datetime, int | None]


def series(profile: PoolProfile, start: datetime, days: int, **kwargs: object) -> Series:
    """One pool's calls keyed by UTC minute."""
    rows = generate([profile], start, days, **kwargs)  # type: ignore[arg-type]
    return {ts: calls for ts, _, calls in rows}


def at(s: Series, day: datetime, hh: int, mm: int) -> int:
    value = s[day.replace(hour=hh, minute=mm)]
    assert value is not None
    return value


def hour_mean(s: Series, day: datetime, hour: int) -> float:
    first = day.replace(hour=hour, minute=0)
    return mean(s[first + timedelta(minutes=m)] or 0 for m in range(60))


def test_same_seed_same_rows_other_seed_differs() -> None:
    a = list(generate([LONDON, NEW_YORK], WEDNESDAY, 1))
    b = list(generate([LONDON, NEW_YORK], WEDNESDAY, 1))
    other = PoolProfile(LONDON.name, LONDON.timezone, LONDON.peak_calls, seed=99)
    c = list(generate([other, NEW_YORK], WEDNESDAY, 1))
    assert a == b
    assert a != c


def test_a_day_is_the_same_whatever_window_it_is_generated_in() -> None:
    alone = series(LONDON, WEDNESDAY, 1)
    within = series(LONDON, WEDNESDAY - timedelta(days=2), 4)
    assert all(within[ts] == calls for ts, calls in alone.items())


def test_rows_are_utc_in_order_with_pools_in_profile_order() -> None:
    rows = list(generate([NEW_YORK, LONDON], WEDNESDAY, 2, step_minutes=5))
    assert len(rows) == 2 * 24 * 12 * 2
    assert [pool for _, pool, _ in rows[:4]] == [NEW_YORK.name, LONDON.name] * 2
    stamps = [ts for ts, _, _ in rows[::2]]
    assert all(ts.utcoffset() == timedelta(0) for ts in stamps)
    assert stamps == [WEDNESDAY + timedelta(minutes=5 * i) for i in range(len(stamps))]
    assert all(isinstance(c, int) and c >= 0 for _, _, c in rows)


def test_naive_start_is_taken_as_utc() -> None:
    naive = list(generate([LONDON], WEDNESDAY.replace(tzinfo=None), 1, step_minutes=60))
    assert naive == list(generate([LONDON], WEDNESDAY, 1, step_minutes=60))


def test_working_hours_are_far_busier_than_night_and_weekend() -> None:
    s = series(LONDON, WEDNESDAY, 4)  # Wednesday to Saturday
    saturday = WEDNESDAY + timedelta(days=3)
    assert hour_mean(s, WEDNESDAY, 10) > 100
    assert hour_mean(s, WEDNESDAY, 3) < 5
    assert hour_mean(s, saturday, 10) < 10


def test_calls_jump_when_meetings_start_at_nine() -> None:
    s = series(LONDON, WEDNESDAY - timedelta(days=1), 3)  # Tuesday to Thursday
    for d in range(3):
        day = WEDNESDAY + timedelta(days=d - 1)
        assert at(s, day, 9, 5) > 1.5 * at(s, day, 8, 50)
        assert at(s, day, 9, 5) - at(s, day, 8, 50) > 30


def test_midweek_busiest_friday_lower_and_peak_matches_profile() -> None:
    monday = datetime(2026, 11, 2, tzinfo=UTC)
    s = series(LONDON, monday, 28)
    by_weekday: dict[int, list[float]] = {}
    wednesday_peaks = []
    for d in range(28):
        day = monday + timedelta(days=d)
        daytime = [s[day + timedelta(minutes=m)] or 0 for m in range(8 * 60, 18 * 60)]
        by_weekday.setdefault(day.weekday(), []).append(mean(daytime))
        if day.weekday() == 2:
            wednesday_peaks.append(max(daytime))
    load = {wd: mean(v) for wd, v in by_weekday.items()}
    midweek = mean(load[wd] for wd in (1, 2, 3))
    assert load[4] < load[0] < midweek
    assert load[4] < 0.85 * midweek
    assert max(load[5], load[6]) < 0.05 * midweek
    assert 0.85 * LONDON.peak_calls < mean(wednesday_peaks) < 1.25 * LONDON.peak_calls


def test_mean_meeting_is_about_53_minutes() -> None:
    assert 50 <= MEAN_MEETING_MINUTES <= 56


def test_public_holiday_is_near_zero_and_leaves_other_days_alone() -> None:
    holiday = PoolProfile(
        LONDON.name,
        LONDON.timezone,
        LONDON.peak_calls,
        holidays=(date(2026, 11, 18),),
        seed=LONDON.seed,
    )
    tuesday = WEDNESDAY - timedelta(days=1)
    normal = series(LONDON, tuesday, 2)
    off = series(holiday, tuesday, 2)
    assert max(v or 0 for ts, v in off.items() if ts >= WEDNESDAY) < 0.1 * LONDON.peak_calls
    before = [ts for ts in normal if ts < tuesday.replace(hour=23)]
    assert [normal[ts] for ts in before] == [off[ts] for ts in before]


def test_spike_multiplies_demand_only_inside_its_window() -> None:
    spike = Spike(LONDON.name, WEDNESDAY.replace(hour=10, minute=20), minutes=45, factor=3.0)
    base = series(LONDON, WEDNESDAY, 1)
    surged = series(LONDON, WEDNESDAY, 1, spikes=[spike])
    inside = {spike.start + timedelta(minutes=m) for m in range(45)}
    for ts, calls in base.items():
        assert calls is not None
        assert surged[ts] == (round(calls * 3.0) if ts in inside else calls)
    assert min(surged[ts] or 0 for ts in inside) > 200


def test_gap_hides_the_metric_but_not_the_demand() -> None:
    gap = Gap(LONDON.name, WEDNESDAY.replace(hour=10, minute=12), minutes=12)
    base = series(LONDON, WEDNESDAY, 1)
    gapped = series(LONDON, WEDNESDAY, 1, gaps=[gap])
    missing = {ts for ts, calls in gapped.items() if calls is None}
    assert missing == {gap.start + timedelta(minutes=m) for m in range(12)}
    assert all(gapped[ts] == calls for ts, calls in base.items() if ts not in missing)


def test_events_for_another_pool_or_outside_the_window_change_nothing() -> None:
    base = list(generate([LONDON, NEW_YORK], WEDNESDAY, 1))
    events = list(
        generate(
            [LONDON, NEW_YORK],
            WEDNESDAY,
            1,
            spikes=[Spike(NEW_YORK.name, WEDNESDAY - timedelta(hours=2), 60)],
            gaps=[Gap(NEW_YORK.name, WEDNESDAY + timedelta(days=1), 30)],
        )
    )
    assert events == base


def rise_hour(s: Series, day: datetime) -> int:
    """First UTC hour whose mean load exceeds half of the day's busiest hour."""
    hours = [hour_mean(s, day, h) for h in range(24)]
    return next(h for h, v in enumerate(hours) if v > 0.5 * max(hours))


@pytest.mark.parametrize(
    ("profile", "summer", "winter", "summer_hour", "winter_hour"),
    [
        # Europe leaves BST on 2026-10-25: 09:00 local is 08:00Z before, 09:00Z after.
        (LONDON, datetime(2026, 10, 21, tzinfo=UTC), datetime(2026, 10, 28, tzinfo=UTC), 8, 9),
        # The US leaves EDT on 2026-11-01: 09:00 local is 13:00Z before, 14:00Z after.
        (NEW_YORK, datetime(2026, 10, 28, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC), 13, 14),
    ],
)
def test_morning_rise_follows_daylight_saving_time(
    profile: PoolProfile, summer: datetime, winter: datetime, summer_hour: int, winter_hour: int
) -> None:
    s = series(profile, summer, (winter - summer).days + 1)
    assert rise_hour(s, summer) == summer_hour
    assert rise_hour(s, winter) == winter_hour


@pytest.mark.parametrize(
    ("profiles", "kwargs", "phrase"),
    [
        ([LONDON], {"step_minutes": 0}, "step_minutes"),
        ([LONDON], {"days": -1}, "days"),
        ([LONDON, LONDON], {}, "unique"),
        ([PoolProfile("x", "Mars/Olympus", 10)], {}, "unknown timezone"),
        ([PoolProfile("x", "UTC", -1)], {}, "peak_calls"),
        ([LONDON], {"spikes": [Spike("nope", WEDNESDAY, 10)]}, "unknown pool 'nope'"),
        ([LONDON], {"gaps": [Gap("nope", WEDNESDAY, 10)]}, "unknown pool 'nope'"),
        ([LONDON], {"spikes": [Spike(LONDON.name, WEDNESDAY, 10, -2)]}, "factor"),
        ([LONDON], {"start": WEDNESDAY.replace(second=30)}, "whole minute"),
    ],
)
def test_bad_arguments_are_rejected_before_any_row(
    profiles: list[PoolProfile], kwargs: dict[str, object], phrase: str
) -> None:
    args: dict[str, object] = {"start": WEDNESDAY, "days": 1, **kwargs}
    with pytest.raises(ValueError, match=phrase):
        generate(profiles, **args)  # type: ignore[arg-type]
