"""The forecaster's pure pieces: blend, outliers, growth, quantile headroom, calendar, offsets."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.forecasting import (
    TAIL_BINS,
    TAIL_WIDTH,
    Calendar,
    Tail,
    blend,
    check_country,
    day_outliers,
    day_start,
    growth_per_week,
    local_day,
    persistence,
    tail_bin,
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


@settings(max_examples=examples(100), deadline=None)
@given(
    counts=st.lists(st.floats(0, 100), min_size=TAIL_BINS, max_size=TAIL_BINS),
    prior=st.floats(0, 1000),
    z1=st.floats(-3, 12),
    z2=st.floats(-3, 12),
    slack=st.floats(0, 5),
)
def test_property_a_higher_plan_leaves_less_unserved(
    counts: list[float], prior: float, z1: float, z2: float, slack: float
) -> None:
    """Planning further out (or rounding up more) never expects more of the load unserved,
    and the promised quantile never falls."""
    tail = Tail(counts, prior)
    lo, hi = sorted((z1, z2))
    assert tail.shortfall(hi) <= tail.shortfall(lo) + 1e-9
    assert tail.rounded_shortfall(lo, slack) <= tail.shortfall(lo) + 1e-9
    assert tail.exceedance(hi) <= tail.exceedance(lo) + 1e-12


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


# -- the predictive distribution ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "share"),
    [(0.0, 1.0), (23.0, 31.0 / 54.0), (60.0, 4.5 / 54.0), (120.0, 0.0), (200.0, 0.0)],
)
def test_persistence_is_the_residual_life_of_meetings(minutes: float, share: float) -> None:
    assert persistence(minutes) == pytest.approx(share)


def test_tail_without_measurements_is_the_normal() -> None:
    tail = Tail([0.0] * TAIL_BINS, prior=1.0)
    assert tail.exceedance(1.96) == pytest.approx(0.025, abs=1e-4)
    assert tail.quantile(0.975) == pytest.approx(1.96, abs=1e-3)
    assert tail.shortfall(0.0) == pytest.approx(0.39894, abs=1e-4)  # φ(0)
    # rounding up by a slack only lowers the shortfall, and for_shortfall inverts it
    assert tail.rounded_shortfall(2.0, 1.0) < tail.shortfall(2.0)
    z = tail.for_shortfall(1e-3, slack=0.5)
    assert tail.rounded_shortfall(z, 0.5) == pytest.approx(1e-3, rel=1e-3)


def test_tail_follows_what_was_measured_once_it_outweighs_the_prior() -> None:
    """A heavier tail than the normal's (1 % of errors at 4 σ) moves the 99.5 % quantile out
    as measurements outweigh the prior, and the shortfall with it."""
    counts = [0.0] * TAIL_BINS
    counts[tail_bin(0.0)] = 99.0
    counts[tail_bin(4.0)] = 1.0
    light = Tail(counts, prior=1e6)
    heavy = Tail(counts, prior=0.0)
    assert light.quantile(0.995) == pytest.approx(2.576, abs=0.01)  # the normal prior's
    assert heavy.quantile(0.995) == pytest.approx(4.0, abs=TAIL_WIDTH)
    assert heavy.shortfall(3.0) == pytest.approx(0.01 * 1.0, abs=TAIL_WIDTH / 100)
    assert heavy.measured == pytest.approx(100.0)
