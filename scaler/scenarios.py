"""Scenario families: synthetic call load nobody tuned for, each deterministic per seed.

Built on the bundled traces' two pools (``teams-connector``, configured for Europe/London, and
``teams-connector-us``, America/New_York), so that the example configs can be scored on them:

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
``Scenario.events()``; ``write_scenario`` writes them beside the trace as
``<trace>.events.json`` with the family and seed, which is how ``backtest --ideal`` finds the
model behind a trace (``Scenario.model``: the generator's rates and meetings).
``tools/gen_traces.py --scenarios DIR`` writes them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from scaler.loadgen import Gap, MeetingModel, PoolProfile, Region, Spike, generate, meeting_model
from scaler.traces import Trace, format_timestamp, write_trace

LONDON = PoolProfile("teams-connector", "Europe/London", peak_calls=150, seed=1)
NEW_YORK = PoolProfile("teams-connector-us", "America/New_York", peak_calls=90, seed=2)

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

    def model(self, pool: str) -> MeetingModel:
        """The generator's rates and meetings for ``pool`` over the scenario's days."""
        for p in self.profiles:
            if p.name == pool:
                return meeting_model(p, self.start, self.days * 1440)
        raise KeyError(pool)

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


def sidecar(trace_path: Path) -> Path:
    """Where ``write_scenario`` puts a trace's events (``<name>.events.json`` beside it)."""
    return trace_path.with_name(trace_path.stem + ".events.json")


def scenario_of(trace_path: Path) -> Scenario | None:
    """The scenario a trace was written from, as its sidecar names it (family and seed);
    ``None`` when there is no sidecar or it names no known family."""
    side = sidecar(trace_path)
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    family, seed = doc.get("family"), doc.get("seed")
    if family not in FAMILIES or not isinstance(seed, int):
        return None
    return scenario(family, seed)
