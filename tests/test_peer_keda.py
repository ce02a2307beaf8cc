"""KEDA's cron scaler cases, replayed through the ``schedule`` policy's ``cron`` form.

Sources: kedacore/keda ``pkg/scalers/cron_scaler_test.go`` (``testCronMetadata``,
``TestIsActive``, ``TestIsActiveRange``, ``TestGetMetrics``) and the cron scaler's page
(https://keda.sh/docs/latest/scalers/cron/: ``start: 30 * * * *``, ``end: 45 * * * *``,
``timezone: Asia/Kolkata``, ``desiredReplicas: "10"``). KEDA's tests read the wall clock
("if today is Thursday…"); here every instant is named. ``desiredReplicas`` is the profile's
``min``; outside the window KEDA's metric asks for 1 replica, the schedule's ``default_min`` here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policies.schedule import Schedule, ScheduleConfig
from scaler.config import parse_config
from scaler.core import MetricReading, PoolLimits, PoolState
from scaler.core.types import PolicyContext
from scaler.errors import ConfigError
from tests.conftest import config_doc, pool_table

POOL = PoolLimits("tc", 1, 30, 15.0, 4, "standardFSv2Family", "westeurope")


def cron(start: str, end: str, timezone: str, desired: int = 10, **more: Any) -> Schedule:
    return Schedule(
        ScheduleConfig.model_validate(
            {
                "default_min": 1,
                "profiles": [
                    {
                        "name": "keda",
                        "cron": {"start": start, "end": end},
                        "timezone": timezone,
                        "min": desired,
                        **more,
                    }
                ],
            }
        )
    )


def replicas(policy: Schedule, when: str) -> int:
    t = datetime.fromisoformat(when).astimezone(UTC).timestamp()
    ctx = PolicyContext(t, 1, 5.0, POOL, MetricReading.ok(5.0), PoolState())
    return policy.recommend(ctx).desired


THURSDAY = cron("0 0 * * Thu", "59 23 * * Thu", "Etc/UTC")
EVEN_HOURS = cron("0 */2 * * *", "0 1-23/2 * * *", "Etc/UTC")


@pytest.mark.parametrize(
    ("when", "want"),
    [
        ("2026-11-19T00:00:00+00:00", 10),  # Thursday, the start itself
        ("2026-11-19T13:07:00+00:00", 10),
        ("2026-11-19T23:58:59+00:00", 10),
        ("2026-11-19T23:59:00+00:00", 1),  # the end itself: no longer active
        ("2026-11-20T12:00:00+00:00", 1),  # Friday
        ("2026-11-18T23:59:59+00:00", 1),  # Wednesday
    ],
)
def test_is_active_and_get_metrics(when: str, want: int) -> None:
    """``TestIsActive``/``TestGetMetrics``: ``0 0 * * Thu`` to ``59 23 * * Thu`` in Etc/UTC is
    10 replicas on a Thursday and 1 on any other day."""
    assert replicas(THURSDAY, when) == want


@pytest.mark.parametrize("hour", range(24))
def test_is_active_range(hour: int) -> None:
    """``TestIsActiveRange``/``TestGetMetricsRange``: ``0 */2 * * *`` to ``0 1-23/2 * * *`` is
    active in the even hours."""
    want = 10 if hour % 2 == 0 else 1
    assert replicas(EVEN_HOURS, f"2026-11-18T{hour:02d}:30:00+00:00") == want


@pytest.mark.parametrize(
    ("when", "want"),
    [
        ("2026-11-18T10:29:59+05:30", 1),
        ("2026-11-18T10:30:00+05:30", 10),
        ("2026-11-18T10:44:59+05:30", 10),
        ("2026-11-18T10:45:00+05:30", 1),
        ("2026-11-18T05:14:00+00:00", 10),  # :30-:45 IST (+05:30) is :00-:15 UTC
        ("2026-11-18T05:15:00+00:00", 1),
    ],
)
def test_the_documented_example_in_asia_kolkata(when: str, want: int) -> None:
    """keda.sh cron scaler page: "start: 30 * * * *", "end: 45 * * * *" in Asia/Kolkata."""
    assert replicas(cron("30 * * * *", "45 * * * *", "Asia/Kolkata"), when) == want


@pytest.mark.parametrize(
    ("start", "end", "valid"),
    [
        ("0 0 * * Thu", "59 23 * * Thu", True),
        ("0 */2 * * *", "0 1-23/2 * * *", True),
        ("30-33 * * * *", "45 * * * *", True),
        ("30 * * * *", "45-50 * * * *", True),
        ("-30 * * * *", "45 * * * *", False),
        ("30 * * * *", "-50 * * * *", False),
        ("30 * * * *", "50 * * -3 *", False),
        ("30 * * * *", "30 * * * *", False),  # start and end the same
    ],
)
def test_cron_parse_metadata(start: str, end: str, valid: bool) -> None:
    """``TestCronParseMetadata`` (``testCronMetadata``): which expressions KEDA accepts. A
    refused one is a config error naming the key path."""
    doc = config_doc(
        pool_table(
            policies=[
                {
                    "type": "schedule",
                    "profiles": [
                        {
                            "cron": {"start": start, "end": end},
                            "timezone": "Asia/Kolkata",
                            "min": 10,
                        }
                    ],
                }
            ]
        )
    )
    if valid:
        parse_config(doc, environ={})
    else:
        with pytest.raises(ConfigError, match=r"pools\[0\]\.policies\[0\]\.profiles\[0\]"):
            parse_config(doc, environ={})


def test_day_of_week_numbers_are_crons_not_apschedulers() -> None:
    """Cron's 1-5 is Monday to Friday (APScheduler 3 alone would read Tuesday to Saturday)."""
    week = cron("0 8 * * 1-5", "0 18 * * 1-5", "Europe/London", desired=4)
    assert replicas(week, "2026-11-16T09:00:00+00:00") == 4  # Monday
    assert replicas(week, "2026-11-20T17:59:00+00:00") == 4  # Friday
    assert replicas(week, "2026-11-21T09:00:00+00:00") == 1  # Saturday
    sunday = cron("0 8 * * 0", "0 18 * * 7", "Europe/London", desired=4)  # 0 and 7: Sunday
    assert replicas(sunday, "2026-11-22T09:00:00+00:00") == 4


def test_cron_windows_are_local_time_across_daylight_saving() -> None:
    office = cron("0 8 * * 1-5", "0 18 * * 1-5", "Europe/London", desired=4)
    assert replicas(office, "2026-07-06T07:00:00+00:00") == 4  # 08:00 BST
    assert replicas(office, "2026-07-06T06:59:00+00:00") == 1
    assert replicas(office, "2026-11-16T07:30:00+00:00") == 1  # 07:30 GMT
    assert replicas(office, "2026-11-16T08:00:00+00:00") == 4


def test_cron_profiles_pre_warm_and_sit_below_fixed_profiles() -> None:
    policy = Schedule(
        ScheduleConfig.model_validate(
            {
                "timezone": "Europe/London",
                "profiles": [
                    {
                        "cron": {"start": "0 8 * * 1-5", "end": "0 18 * * 1-5"},
                        "min": 4,
                        "minutes_in_advance": 20,
                    },
                    {"date": "2026-12-25", "max": 1},
                ],
            }
        )
    )
    assert replicas(policy, "2026-11-16T07:40:00+00:00") == 4  # 20 minutes early
    assert replicas(policy, "2026-11-16T07:39:00+00:00") == 0
    assert replicas(policy, "2026-12-25T09:00:00+00:00") == 0  # the holiday wins (no floor)


def test_both_day_fields_restricted_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="restricts both day of month and day of week"):
        cron("0 8 1 * 1", "0 18 1 * 1", "UTC")
