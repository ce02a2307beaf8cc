"""The forecaster's pure pieces: blend, outliers, growth, quantile headroom, calendar, offsets."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.forecasting import (
    Calendar,
    blend,
    check_country,
    day_outliers,
    day_start,
    growth_per_week,
    local_day,
    plan_instances,
    upper_quantile,
    utc_offset,
    without_outliers,
)
from tests.conftest import examples


@pytest.mark.parametrize(
    ("values", "weights", "how", "expected"),
    [
        ([], [], "weighted", -1.0),
        ([100.0, 50.0], [1.0, 1.0], "weighted", 75.0),
        ([100.0, 50.0], [1.0, 0.25], "weighted", 90.0),  # the newer week counts four times
        ([100.0, 50.0, 10.0], [1.0, 1.0, 1.0], "max", 100.0),
        ([100.0, 50.0, 10.0], [1.0, 1.0, 1.0], "median", 50.0),
        ([100.0, 50.0, 10.0, 0.0], [1.0, 1.0, 1.0, 1.0], "median", 30.0),
        ([100.0, 50.0], [3.0, 1.0], "mean", 75.0),  # mean ignores the weights
    ],
)
def test_blend(values: list[float], weights: list[float], how: str, expected: float) -> None:
    assert blend(values, weights, how) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "kept", "why"),
    [
        ([120.0, 120.0, 600.0], [120.0, 120.0], "600 > 1.5 x (120 + 15): a surge, left out"),
        ([120.0, 150.0, 130.0], [120.0, 150.0, 130.0], "a busier week is no outlier"),
        ([1.0, 2.0, 30.0], [1.0, 2.0], "30 > 1.5 x (2 + 15)"),
        ([1.0, 2.0, 20.0], [1.0, 2.0, 20.0], "quiet minutes: 20 is within one instance"),
        ([120.0, 600.0], [120.0, 600.0], "two weeks: no majority to judge by"),
    ],
)
def test_without_outliers(values: list[float], kept: list[float], why: str) -> None:
    got, weights = without_outliers(values, [1.0] * len(values), 1.5, 15.0)
    assert got == kept, why
    assert len(weights) == len(got)


@pytest.mark.parametrize(
    ("totals", "outliers", "why"),
    [
        ([9000.0, 9500.0, 9200.0, 3000.0], [False, False, False, True], "a Christmas-week day"),
        ([9000.0, 20000.0, 9200.0, 9100.0], [False, True, False, False], "an all-day event"),
        ([9000.0, 11000.0, 9200.0, 10000.0], [False] * 4, "ordinary weeks (growth) stay"),
        ([300.0, 100.0, 200.0], [False] * 3, "Sundays: within an instance-hour"),
        ([9000.0, None, 3000.0], [False, False, False], "two known days: nothing judged"),
    ],
)
def test_day_outliers(totals: list[float | None], outliers: list[bool], why: str) -> None:
    assert day_outliers(totals, 1.5, 900.0) == outliers, why


@pytest.mark.parametrize(
    ("totals", "outliers", "why"),
    [
        ([3500.0, 7000.0, 10000.0, 10000.0], [True, True, False, False], "two quiet weeks of four"),
        ([0.0, 0.0, 10000.0, 10000.0], [True, True, False, False], "two holidays of four"),
        ([10000.0, 9260.0, 8570.0, 7940.0], [False] * 4, "8 % a week of growth stays"),
    ],
)
def test_quiet_days_judged_against_the_busier_weeks(
    totals: list[float | None], outliers: list[bool], why: str
) -> None:
    assert day_outliers(totals, 1.5, 900.0, low_ratio=1.25) == outliers, why


def _weeks(levels: list[float]) -> list[list[float | None]]:
    """Weeks (newest first) of five working days and a quiet weekend at each level."""
    return [[lv] * 5 + [lv / 20.0] * 2 for lv in levels]


@pytest.mark.parametrize(
    ("weeks", "expected", "why"),
    [
        (_weeks([1000.0, 1000.0, 1000.0, 1000.0]), 1.0, "flat"),
        (_weeks([1000.0 * 1.08**-k for k in range(4)]), 1.08, "8 % a week"),
        (_weeks([1000.0 * 1.077**-k for k in range(5)]), 1.077, "+45 % over five weeks"),
        (_weeks([1000.0, 1000.0, 300.0, 1000.0]), 1.0, "one odd week moves the median little"),
        (_weeks([1000.0 * 2.0**-k for k in range(4)]), 1.25, "bounded above"),
        (_weeks([1000.0 * 0.5**-k for k in range(4)]), 0.8, "bounded below"),
        ([[None] * 7, [1000.0] * 7], 1.0, "no comparable pair"),
    ],
)
def test_growth_per_week(weeks: list[list[float | None]], expected: float, why: str) -> None:
    assert growth_per_week(weeks, low=0.8, high=1.25) == pytest.approx(expected, rel=1e-3), why


def test_growth_compares_only_days_known_in_both_weeks() -> None:
    # Last week's Monday was a holiday (None): the comparison leaves out both Mondays.
    newer: list[float | None] = [None, 1100.0, 1100.0, 1100.0, 1100.0, 50.0, 50.0]
    older: list[float | None] = [1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 50.0, 50.0]
    assert growth_per_week([newer, older], low=0.5, high=2.0) == pytest.approx(4500 / 4100)


@pytest.mark.parametrize(
    ("n", "q", "expected"),
    [
        (1000, 0.995, 995.0),  # the 5th largest of 0..999
        (1000, 0.5, 500.0),
        (100, 0.995, 99.0),  # fewer samples than 1 / (1 - q): the largest
        (1, 0.999, 0.0),
    ],
)
def test_upper_quantile(n: int, q: float, expected: float) -> None:
    assert upper_quantile([float(i) for i in range(n)], q) == expected


@pytest.mark.parametrize(
    ("peak", "z", "expected", "why"),
    [
        (120.0, 0.0, 8, "no measured error: the forecast at 15 a node"),
        (120.0, 1.0, 9, "120 + 1 x sqrt(135) = 131.6"),
        (120.0, 3.0, 11, "120 + 3 x sqrt(135) = 154.9"),
        (5.0, 3.0, 2, "a quiet hour gets little: 5 + 3 x sqrt(20) = 18.4 calls"),
        (120.0, -2.0, 8, "a forecast that ran high never plans below itself"),
    ],
)
def test_plan_instances(peak: float, z: float, expected: int, why: str) -> None:
    got = plan_instances(peak, z, calls_per_instance=15.0, utilization=1.0)
    assert got == expected, why


@settings(max_examples=examples(200), deadline=None)
@given(
    peak=st.floats(0, 5000),
    z1=st.floats(-5, 20),
    z2=st.floats(-5, 20),
    utilization=st.floats(0.3, 1.0),
)
def test_property_more_error_more_headroom(
    peak: float, z1: float, z2: float, utilization: float
) -> None:
    lo, hi = sorted((z1, z2))
    a = plan_instances(peak, lo, calls_per_instance=15.0, utilization=utilization)
    b = plan_instances(peak, hi, calls_per_instance=15.0, utilization=utilization)
    assert a <= b
    assert a >= math.ceil(round(peak / (15.0 * utilization), 9))


@pytest.mark.parametrize(
    ("zone", "when", "hours"),
    [
        (None, "2026-07-01T12:00Z", 0.0),
        ("Europe/London", "2026-10-25T00:59Z", 1.0),  # BST until 01:00Z on the last Sunday
        ("Europe/London", "2026-10-25T01:00Z", 0.0),
        ("America/New_York", "2026-11-01T05:59Z", -4.0),  # EDT until 02:00 local
        ("America/New_York", "2026-11-01T06:00Z", -5.0),
        ("Australia/Sydney", "2026-10-04T16:00Z", 11.0),  # AEDT from the first Sunday of October
        ("Asia/Kolkata", "2026-10-04T16:00Z", 5.5),
    ],
)
def test_utc_offset(zone: str | None, when: str, hours: float) -> None:
    t = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
    assert utc_offset(ZoneInfo(zone) if zone else None, t) == hours * 3600.0


def test_local_day_and_day_start_agree_across_a_dst_change() -> None:
    london = ZoneInfo("Europe/London")
    sunday = date(2026, 10, 25).toordinal()  # 25 hours long
    assert day_start(london, sunday + 1) - day_start(london, sunday) == 25 * 3600.0
    assert local_day(london, day_start(london, sunday))[:2] == (sunday, 0)
    assert local_day(None, datetime(2026, 10, 26, 9, tzinfo=UTC).timestamp()) == (
        sunday + 1,
        9,
        0,
    )


@pytest.mark.parametrize(
    ("day", "hour", "off", "why"),
    [
        (date(2026, 12, 25), 9, True, "Christmas Day, a public holiday in England"),
        (date(2026, 12, 28), 9, True, "Boxing Day (substitute day)"),
        (date(2026, 8, 31), 9, True, "Summer bank holiday in England"),
        (date(2026, 8, 3), 9, False, "Scotland's summer bank holiday is not England's"),
        (date(2026, 12, 23), 9, True, "an explicit company day off"),
        (date(2026, 12, 24), 9, False, "a half day's morning is a working morning"),
        (date(2026, 12, 24), 13, True, "its afternoon is off"),
        (date(2026, 12, 22), 13, False, "an ordinary Tuesday"),
    ],
)
def test_calendar(day: date, hour: int, off: bool, why: str) -> None:
    cal = Calendar(
        country="GB",
        subdivision="ENG",
        dates=(date(2026, 12, 23),),
        half_days=(date(2026, 12, 24),),
    )
    assert cal.is_off(day, hour) is off, why


def test_calendar_without_a_country_knows_only_its_dates() -> None:
    cal = Calendar(dates=(date(2026, 12, 25),))
    assert cal.is_off(date(2026, 12, 25), 10)
    assert not cal.is_off(date(2027, 1, 1), 10)


@pytest.mark.parametrize(
    ("country", "subdivision", "message"),
    [("XX", None, "XX"), ("GB", "ZZZ", "ZZZ")],
)
def test_unknown_country_or_region_is_refused(
    country: str, subdivision: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_country(country, subdivision)
