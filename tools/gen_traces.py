"""Regenerate the bundled synthetic call-load traces.

Writes ``scaler/data/demo-day.csv`` (one Wednesday, used by the daemon's demo) and
``examples/traces/two-regions-5w.csv`` (five weeks for back-tests; the first week is
warm-up history). Output is deterministic, so re-running it leaves the files unchanged
unless the load model or the scenario below changes. See ``examples/traces/README.md``.

Scenario families (``scenario(family, seed)``, ``FAMILIES``): load nobody tuned for, each
deterministic per seed, on the two pools of ``examples/recommended.toml`` (``teams-connector``
configured for Europe/London, ``teams-connector-us`` for America/New_York), so that ``make
bench`` can score the example configs on them:

* ``follow-the-sun``: the London pool is global, serving users in London, New York and
  Singapore (three business days a day);
* ``users-other-zone``: each pool's users live elsewhere than its configured zone (London's in
  New York, New York's in Berlin), through both continents' autumn DST changes (EU 25 Oct,
  US 1 Nov 2026): for a week the offset between the two zones is an hour off;
* ``growth``: +45 % over five weeks (compound weekly growth of 7.7 %);
* ``christmas-launch``: the weeks around Christmas (quieter days, bank holidays, a half-day
  on Christmas Eve), then an unannounced launch surge in January;
* ``late-week-peak``: Monday light, Thursday busiest;
* ``half-day-holiday``: New York's Thanksgiving and its afternoon-off Friday, a London half-day;
* ``metric-gaps``: hour-long metric outages during business hours (demand carries on);
* ``new-customer``: a lasting step of the base load (a new customer onboarded).

Unannounced events (surges, and the first day of a load step) are listed by
``Scenario.events()``, and ``--scenarios DIR`` writes them beside each trace as
``<trace>.events.json`` (the trace CSV itself stays the contract's three columns).

Usage: ``python tools/gen_traces.py`` from the repository root (the bundled traces), or
``python tools/gen_traces.py --scenarios DIR [--seeds 1 2 3] [--family NAME ...]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(ROOT))

from scaler.loadgen import Gap, PoolProfile, Region, Spike, generate  # noqa: E402
from scaler.traces import Trace, format_timestamp, write_trace  # noqa: E402

LONDON = PoolProfile("teams-connector", "Europe/London", peak_calls=150, seed=1)
NEW_YORK = PoolProfile("teams-connector-us", "America/New_York", peak_calls=90, seed=2)

DEMO_START = datetime(2026, 11, 18, tzinfo=UTC)  # a Wednesday

FIVE_WEEKS_START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
FIVE_WEEKS_DAYS = 35
# Week 3: a bank-holiday-like Monday for the London pool only.
UK_HOLIDAY = date(2026, 10, 19)
# Week 4: an unannounced all-hands surge in New York (10:20-11:05 EDT).
SPIKES = (Spike("teams-connector-us", datetime(2026, 10, 29, 14, 20, tzinfo=UTC), 45, 3.0),)
# Weeks 2-5: metric outages (calls empty); demand carries on underneath.
GAPS = (
    Gap("teams-connector", datetime(2026, 10, 14, 10, 12, tzinfo=UTC), 12),
    Gap("teams-connector-us", datetime(2026, 10, 22, 15, 40, tzinfo=UTC), 7),
    Gap("teams-connector-us", datetime(2026, 10, 27, 13, 30, tzinfo=UTC), 5),
    Gap("teams-connector", datetime(2026, 11, 3, 8, 55, tzinfo=UTC), 18),
    Gap("teams-connector", datetime(2026, 11, 5, 16, 0, tzinfo=UTC), 20),
    Gap("teams-connector-us", datetime(2026, 11, 5, 16, 0, tzinfo=UTC), 20),
)


def five_weeks(
    seeds: tuple[int, int] = (LONDON.seed, NEW_YORK.seed),
) -> Iterator[tuple[datetime, str, int | None]]:
    """The five-week scenario's rows; other ``seeds`` (London, New York) give the same weeks,
    holiday, spike and gaps with other meetings (held-out traces for ``make bench``)."""
    london = PoolProfile(
        LONDON.name, LONDON.timezone, LONDON.peak_calls, holidays=(UK_HOLIDAY,), seed=seeds[0]
    )
    new_york = PoolProfile(NEW_YORK.name, NEW_YORK.timezone, NEW_YORK.peak_calls, seed=seeds[1])
    return generate((london, new_york), FIVE_WEEKS_START, FIVE_WEEKS_DAYS, spikes=SPIKES, gaps=GAPS)


# -- scenario families ---------------------------------------------------------------------------

UK, US = LONDON.name, NEW_YORK.name
UK_ZONE, US_ZONE = LONDON.timezone, NEW_YORK.timezone


@dataclass(frozen=True)
class Event:
    """An unannounced event: nobody could plan for it. ``factor`` is how much it multiplies the
    demand of ``pool`` inside [start, start + minutes) (UTC); its excess over the demand without
    it is ``demand - demand / factor``."""

    pool: str
    start: datetime
    minutes: int
    factor: float
    kind: str

    def to_json(self) -> dict[str, object]:
        return {
            "pool": self.pool,
            "start": format_timestamp(self.start),
            "minutes": self.minutes,
            "factor": self.factor,
            "kind": self.kind,
        }


@dataclass(frozen=True)
class Scenario:
    """One family's trace for one seed: its pools, events and metric gaps."""

    family: str
    seed: int
    description: str
    start: datetime
    days: int
    profiles: tuple[PoolProfile, ...]
    spikes: tuple[Spike, ...] = ()
    gaps: tuple[Gap, ...] = ()
    steps: tuple[Event, ...] = ()
    """Unannounced level steps (their first working day), already in the profiles."""

    @property
    def name(self) -> str:
        return f"{self.family}-s{self.seed}"

    def rows(self) -> Iterator[tuple[datetime, str, int | None]]:
        return generate(self.profiles, self.start, self.days, spikes=self.spikes, gaps=self.gaps)

    def trace(self) -> Trace:
        return Trace.from_rows(self.rows(), start=self.start)

    def events(self) -> tuple[Event, ...]:
        """The unannounced events: every surge and the first day of every load step."""
        surges = tuple(
            Event(s.pool, _as_utc(s.start), s.minutes, s.factor, "surge") for s in self.spikes
        )
        return (*surges, *self.steps)


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _local(zone: str, day: date, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock time as UTC."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(
        UTC
    )


AUTUMN = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday; 35 days cross EU (25 Oct) and US (1 Nov) DST
AUTUMN_DAYS = 35


def _base(seed: int) -> tuple[PoolProfile, PoolProfile]:
    """The bundled scenario's two pools, users in their configured zones."""
    london = PoolProfile(UK, UK_ZONE, LONDON.peak_calls, seed=seed)
    new_york = PoolProfile(US, US_ZONE, NEW_YORK.peak_calls, seed=seed + 1000)
    return london, new_york


def follow_the_sun(seed: int) -> Scenario:
    london = PoolProfile(
        UK,
        LONDON.timezone,
        200.0,
        seed=seed,
        regions=(
            Region("Europe/London", 0.45),
            Region("America/New_York", 0.35),
            Region("Asia/Singapore", 0.20),
        ),
    )
    _, new_york = _base(seed)
    return Scenario(
        "follow-the-sun",
        seed,
        "one global pool serving London, New York and Singapore users",
        AUTUMN,
        AUTUMN_DAYS,
        (london, new_york),
    )


def users_other_zone(seed: int) -> Scenario:
    london = PoolProfile(UK, "America/New_York", LONDON.peak_calls, seed=seed)
    new_york = PoolProfile(US, "Europe/Berlin", NEW_YORK.peak_calls, seed=seed + 1000)
    return Scenario(
        "users-other-zone",
        seed,
        "users in New York on the London pool and in Berlin on the New York pool, across "
        "EU (25 Oct) and US (1 Nov) DST changes",
        AUTUMN,
        AUTUMN_DAYS,
        (london, new_york),
    )


GROWTH_PER_WEEK = 1.45 ** (1 / 5) - 1
"""+45 % over five weeks, compounded weekly."""


def growth(seed: int) -> Scenario:
    first = AUTUMN.date()
    profiles = tuple(
        PoolProfile(
            p.name,
            p.timezone,
            p.peak_calls,
            seed=p.seed,
            weekly_growth=GROWTH_PER_WEEK,
            growth_from=first,
        )
        for p in _base(seed)
    )
    return Scenario(
        "growth", seed, "steady growth, +45 % over five weeks", AUTUMN, AUTUMN_DAYS, profiles
    )


CHRISTMAS_START = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday
CHRISTMAS_DAYS = 42


def christmas_launch(seed: int) -> Scenario:
    quiet = (
        *((date(2026, 12, d), 0.7) for d in (21, 22, 23)),
        *((date(2026, 12, d), 0.35) for d in (29, 30, 31)),
        (date(2027, 1, 4), 0.85),
    )
    london = PoolProfile(
        UK,
        LONDON.timezone,
        LONDON.peak_calls,
        seed=seed,
        holidays=(date(2026, 12, 25), date(2026, 12, 28), date(2027, 1, 1)),
        half_days=(date(2026, 12, 24),),
        day_factors=quiet,
    )
    new_york = PoolProfile(
        US,
        NEW_YORK.timezone,
        NEW_YORK.peak_calls,
        seed=seed + 1000,
        holidays=(date(2026, 12, 25), date(2027, 1, 1)),
        half_days=(date(2026, 12, 24),),
        day_factors=quiet,
    )
    rng = random.Random(f"christmas-launch/{seed}")
    day = date(2027, 1, rng.choice((6, 7, 8)))  # Wednesday to Friday of the second week back
    launch = Spike(US, _local(US_ZONE, day, 10, rng.choice((0, 15, 30))), 180, 1.7)
    return Scenario(
        "christmas-launch",
        seed,
        "the weeks around Christmas, then an unannounced launch surge in New York (x1.7, 3 h)",
        CHRISTMAS_START,
        CHRISTMAS_DAYS,
        (london, new_york),
        spikes=(launch,),
    )


LATE_WEEK = (0.60, 0.80, 0.90, 1.12, 1.00, 0.04, 0.03)
"""Monday light, Thursday busiest (Monday first)."""


def late_week_peak(seed: int) -> Scenario:
    profiles = tuple(
        PoolProfile(p.name, p.timezone, p.peak_calls, seed=p.seed, weekday_factors=LATE_WEEK)
        for p in _base(seed)
    )
    return Scenario(
        "late-week-peak", seed, "Monday light, Thursday busiest", AUTUMN, AUTUMN_DAYS, profiles
    )


THANKSGIVING_START = datetime(2026, 10, 26, tzinfo=UTC)  # a Monday


def half_day_holiday(seed: int) -> Scenario:
    london = PoolProfile(UK, UK_ZONE, LONDON.peak_calls, seed=seed, half_days=(date(2026, 11, 18),))
    new_york = PoolProfile(
        US,
        US_ZONE,
        NEW_YORK.peak_calls,
        seed=seed + 1000,
        holidays=(date(2026, 11, 26),),
        half_days=(date(2026, 11, 27),),
    )
    return Scenario(
        "half-day-holiday",
        seed,
        "Thanksgiving and its afternoon-off Friday in New York, a half-day Wednesday in London",
        THANKSGIVING_START,
        AUTUMN_DAYS,
        (london, new_york),
    )


def metric_gaps(seed: int) -> Scenario:
    rng = random.Random(f"metric-gaps/{seed}")
    gaps = []
    for week in range(1, 5):
        for pool, zone in ((UK, UK_ZONE), (US, US_ZONE)):
            day = AUTUMN.date() + timedelta(days=7 * week + rng.randrange(5))
            at = _local(zone, day, rng.randrange(8, 16), rng.choice((0, 20, 40)))
            gaps.append(Gap(pool, at, 60))
    return Scenario(
        "metric-gaps",
        seed,
        "hour-long metric outages in business hours, one a week per pool",
        AUTUMN,
        AUTUMN_DAYS,
        _base(seed),
        gaps=tuple(gaps),
    )


def new_customer(seed: int) -> Scenario:
    rng = random.Random(f"new-customer/{seed}")
    uk_day = date(2026, 10, 26) + timedelta(days=rng.randrange(3))  # week 4, Mon-Wed
    us_day = date(2026, 10, 19) + timedelta(days=rng.randrange(3))  # week 3, Mon-Wed
    uk_factor, us_factor = 1.35, 1.25
    london = PoolProfile(
        UK, UK_ZONE, LONDON.peak_calls, seed=seed, level_steps=((uk_day, uk_factor),)
    )
    new_york = PoolProfile(
        US, US_ZONE, NEW_YORK.peak_calls, seed=seed + 1000, level_steps=((us_day, us_factor),)
    )
    # The step's first working day is the unannounced event (from 08:00 local, when the new
    # customer's meetings begin); from the next day on its load is history.
    steps = (
        Event(UK, _local(UK_ZONE, uk_day, 8), 11 * 60, uk_factor, "step"),
        Event(US, _local(US_ZONE, us_day, 8), 11 * 60, us_factor, "step"),
    )
    return Scenario(
        "new-customer",
        seed,
        f"base load steps up (x{uk_factor} London, x{us_factor} New York): a new customer",
        AUTUMN,
        AUTUMN_DAYS,
        (london, new_york),
        steps=steps,
    )


FAMILIES: dict[str, Callable[[int], Scenario]] = {
    "follow-the-sun": follow_the_sun,
    "users-other-zone": users_other_zone,
    "growth": growth,
    "christmas-launch": christmas_launch,
    "late-week-peak": late_week_peak,
    "half-day-holiday": half_day_holiday,
    "metric-gaps": metric_gaps,
    "new-customer": new_customer,
}
"""Scenario families by name: each builds its ``Scenario`` for a seed."""


def scenario(family: str, seed: int) -> Scenario:
    """``family``'s trace for ``seed`` (deterministic)."""
    try:
        build = FAMILIES[family]
    except KeyError:
        raise ValueError(
            f"unknown scenario family {family!r} (known: {', '.join(FAMILIES)})"
        ) from None
    return build(seed)


def write_scenario(sc: Scenario, directory: Path) -> tuple[Path, Path]:
    """Write ``<name>.csv`` and ``<name>.events.json`` (unannounced events, metric gaps)."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / f"{sc.name}.csv"
    write_trace(csv_path, sc.rows())
    side = directory / f"{sc.name}.events.json"
    doc = {
        "family": sc.family,
        "seed": sc.seed,
        "description": sc.description,
        "unannounced_events": [e.to_json() for e in sc.events()],
        "metric_gaps": [
            {"pool": g.pool, "start": format_timestamp(_as_utc(g.start)), "minutes": g.minutes}
            for g in sc.gaps
        ],
    }
    side.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return csv_path, side


def main() -> None:
    """Write the bundled traces (or, with ``--scenarios``, the scenario families)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=Path, help="write scenario traces to this directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--family", action="append", choices=list(FAMILIES))
    args = parser.parse_args()
    if args.scenarios is not None:
        for family in args.family or FAMILIES:
            for seed in args.seeds:
                began = time.perf_counter()
                path, _ = write_scenario(scenario(family, seed), args.scenarios)
                took = time.perf_counter() - began
                print(f"{path}: {path.stat().st_size / 1e6:.2f} MB in {took:.2f} s")
        return
    bundled()


def bundled() -> None:
    """Write both bundled traces and print their row counts and sizes."""
    demo = ROOT / "scaler" / "data" / "demo-day.csv"
    five = ROOT / "examples" / "traces" / "two-regions-5w.csv"
    jobs = (
        (demo, generate((LONDON, NEW_YORK), DEMO_START, 1)),
        (five, five_weeks()),
    )
    for path, rows in jobs:
        began = time.perf_counter()
        path.parent.mkdir(parents=True, exist_ok=True)
        count = write_trace(path, rows)
        took = time.perf_counter() - began
        size = path.stat().st_size
        print(f"{path.relative_to(ROOT)}: {count} rows, {size / 1e6:.2f} MB in {took:.2f} s")


if __name__ == "__main__":
    main()
