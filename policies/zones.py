"""IANA time zone names in policy settings, checked once where they are read."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator


def zone(name: str) -> ZoneInfo:
    """The zone ``name`` names; ``ValueError`` naming it when the tz database has no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _known(name: str) -> str:
    zone(name)
    return name


TimeZoneName = Annotated[str, AfterValidator(_known)]
"""A setting that holds an IANA time zone name (``Europe/London``): refused when unknown."""
