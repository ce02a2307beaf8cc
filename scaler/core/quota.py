"""What the core may assume about vCPU quota, and what it may not. Pure: the clock is passed in.

Azure caps vCPUs per subscription and region in two tiers: the VM size family (e.g.
``standardFSv2Family``) and the regional total (``cores``); a deployment must fit both, and the
cores of allocated *and* deallocated VMs count against them
(https://learn.microsoft.com/azure/virtual-machines/quotas).

Failing closed: a quota that cannot be read is never "no limit".

* ``usage.list`` answered this tick: its lines are used as read.
* It failed: the last lines read are used while they are younger than ``max_age_seconds``,
  with the vCPUs this daemon has granted since charged against them (``QuotaMemory.charge``);
  the decision's detail says how old they are.
* Nothing usable, or the pool's family (or ``cores``) has no line in the answer (a misspelt or
  unknown family): a scale-up is held to ``unknown_step`` instances per tick and the decision says
  ``QuotaUnknown``, naming the family and the location.

The daemon keeps one ``QuotaMemory`` between ticks::

    memory = QuotaMemory()                                   # at start
    memory = memory.remember(fresh, now=now)                 # each tick, after usage.list
    decisions = plan_tick(pools=..., quota=memory, rules=QuotaRules(...), now=now)
    memory = memory.charge(limits, instances=applied_change) # after each applied scale-up
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from scaler.core.types import PoolLimits, QuotaUsage

REGIONAL_QUOTA = "cores"
"""The ``usage.list`` line that caps all vCPUs of a region, whatever their family."""

FAMILY_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*Family$")
"""What a VM size family looks like in Azure's Resource SKUs and ``usage.list``:
``standardFSv2Family``, ``standardA0_A7Family``, ``standardDSv2PromoFamily``."""


def plausible_family(name: str) -> bool:
    """An offline check of a configured quota family: letters, digits and ``_``, ending in
    ``Family`` (catches ``standardFSv2`` or ``Standard FSv2 Family``; a family that merely does
    not exist is caught at run time by ``QuotaUnknown``)."""
    return bool(FAMILY_PATTERN.match(name))


@dataclass(frozen=True, slots=True)
class VmSize:
    """A VM size as Azure's Resource SKUs API lists it for a location
    (``resource_skus.list(filter="location eq '<loc>'")``, ``resourceType`` ``virtualMachines``):
    its ``family`` is the name of its quota line in ``usage.list``."""

    name: str
    family: str
    vcpus: int | None = None
    """The ``vCPUs`` capability; ``None`` when Azure did not say."""


def pool_quota_family(configured: str, size: VmSize | None) -> tuple[str, str]:
    """The quota family a pool's scale-ups count against, and a warning ("" when none).

    The SKU's family is the truth; a configured ``quota_family`` overrides it (for sizes the
    Resource SKUs API does not list, e.g. on Azure Stack) and is warned about when it differs.
    Neither known: ``""``, which ``plan_tick`` treats as unknown quota (``QuotaUnknown``).
    """
    derived = size.family if size is not None else ""
    if configured and derived and configured.lower() != derived.lower():
        return configured, (
            f"quota_family {configured!r} overrides {derived!r}, the family Azure lists for "
            f"{size.name if size else '?'}"
        )
    return configured or derived, ""


@dataclass(frozen=True, slots=True)
class QuotaRules:
    """``[azure] quota_max_age_seconds`` and ``quota_unknown_step``."""

    max_age_seconds: float = 900.0
    """A remembered ``usage.list`` answer is used for at most this long (seconds)."""
    unknown_step: int = 0
    """Instances a pool may grow per tick while its quota is unknown (0: hold scale-ups)."""


@dataclass(frozen=True, slots=True)
class RegionQuota:
    """One region's ``usage.list`` lines, keyed by lower-cased name, as read at ``as_of``."""

    lines: Mapping[str, QuotaUsage]
    as_of: float

    def line(self, name: str) -> QuotaUsage | None:
        return self.lines.get(name.lower())


@dataclass(frozen=True, slots=True)
class QuotaMemory:
    """The last ``usage.list`` answer of each region, kept between ticks by the daemon."""

    regions: Mapping[str, RegionQuota] = field(default_factory=dict)

    def remember(self, fresh: Mapping[str, Mapping[str, QuotaUsage]], *, now: float) -> QuotaMemory:
        """This tick's successful reads replace what was known of their regions; regions whose
        read failed keep their older answer (its age grows)."""
        if not fresh:
            return self
        regions = dict(self.regions)
        for location, lines in fresh.items():
            regions[location.lower()] = RegionQuota(
                {name.lower(): line for name, line in lines.items()}, now
            )
        return QuotaMemory(regions)

    def region(self, location: str) -> RegionQuota | None:
        return self.regions.get(location.lower())

    def charge(self, limits: PoolLimits, *, instances: int) -> QuotaMemory:
        """Count a scale-up this daemon applied against the remembered lines, so a remembered
        answer never offers the same headroom twice. Pools that start deallocated VMs
        (``scale_up_uses_quota`` false) and scale-ins change nothing: quota counts deallocated
        VMs too."""
        region = self.region(limits.location)
        if region is None or instances <= 0 or not limits.scale_up_uses_quota:
            return self
        vcpus = instances * limits.vcpus_per_instance
        lines = dict(region.lines)
        for name in {limits.quota_family.lower(), REGIONAL_QUOTA}:
            line = lines.get(name)
            if line is not None and not line.problem:
                lines[name] = QuotaUsage(line.name, line.current + vcpus, line.limit)
        regions = dict(self.regions)
        regions[limits.location.lower()] = RegionQuota(lines, region.as_of)
        return QuotaMemory(regions)


@dataclass(frozen=True, slots=True)
class QuotaAllowance:
    """What quota allows one pool this tick.

    ``headroom_vcpus`` is the vCPUs the pool may add (``None``: no quota clamp, only for pools
    whose scale-up needs no quota); ``unknown`` (non-empty) says why the quota is not known, and
    then only ``unknown_step`` instances may be added, fewer if a line that is known (``cores``
    when only the family is missing) has less headroom (then ``headroom_vcpus`` is that).
    """

    headroom_vcpus: int | None
    note: str = ""
    unknown: str = ""
    binding: str = ""
    """The quota line (lower-cased) with the least headroom, which the note names."""


def allowance(
    limits: PoolLimits,
    memory: QuotaMemory,
    *,
    granted: Mapping[tuple[str, str], int],
    rules: QuotaRules,
    now: float,
) -> QuotaAllowance:
    """The quota one pool may use, after ``granted`` (vCPUs already given to pools served
    earlier this tick, by (location, lower-cased line name))."""
    if not limits.scale_up_uses_quota:
        return QuotaAllowance(None, note="starts deallocated VMs: already counted in quota")
    loc = limits.location
    family = limits.quota_family
    region = memory.region(loc)
    if region is None:
        what = family or "quota"
        return QuotaAllowance(None, unknown=f"{what} in {loc}: usage.list not read yet")
    age = now - region.as_of
    if age > rules.max_age_seconds:
        what = family or "quota"
        return QuotaAllowance(
            None,
            unknown=(
                f"{what} in {loc}: last usage.list {age:.0f} s ago, older than "
                f"{rules.max_age_seconds:.0f} s"
            ),
        )
    headrooms: list[tuple[int, str]] = []
    missing: list[str] = []
    unusable: list[str] = []
    for name in (family, REGIONAL_QUOTA):
        line = region.line(name) if name else None
        if line is None:
            missing.append(repr(name) if name else "the pool's quota family")
        elif line.problem:
            unusable.append(f"{name!r} ({line.problem})")
        else:
            headrooms.append((line.headroom - granted.get((loc.lower(), name.lower()), 0), name))
    if unusable:
        # Azure lists the line but its numbers cannot be believed: unknown, and said so
        return QuotaAllowance(
            min(headrooms)[0] if headrooms else None,
            unknown=(
                f"usage.list for {loc} lists {' and '.join(unusable)}: not a usable quota line"
            ),
        )
    if missing:
        # a line that is there still binds the safe step
        return QuotaAllowance(
            min(headrooms)[0] if headrooms else None,
            unknown=(
                f"{' and '.join(missing)} not in usage.list for {loc}"
                + (" (misspelt or unknown quota family?)" if family else "")
            ),
        )
    headroom, binding = min(headrooms)
    note = f"{binding} in {loc}"
    if age > 0:
        note += f", usage.list of {age:.0f} s ago"
    return QuotaAllowance(headroom, note=note, binding=binding.lower())


def charged_lines(limits: PoolLimits) -> tuple[str, ...]:
    """The quota lines (lower-cased) a scale-up of the pool counts against: none for a pool
    that starts deallocated VMs, else its family and the regional total."""
    if not limits.scale_up_uses_quota:
        return ()
    return tuple(sorted({limits.quota_family.lower(), REGIONAL_QUOTA}))


def capacity_backoff_seconds(failures: int, *, interval: float, cap: float) -> float:
    """How long a pool's scale-ups wait after ``failures`` consecutive capacity errors
    (``AllocationFailed`` and the like): none before the first, then one interval, doubling per
    further failure, never more than ``cap`` seconds. A success resets ``failures`` to 0."""
    if failures <= 0:
        return 0.0
    return float(min(cap, interval * 2 ** min(failures - 1, 62)))


@dataclass(frozen=True, slots=True)
class CapacityBackoff:
    """A pool's run of capacity errors (kept by the daemon, per pool)."""

    failures: int = 0
    last_failure_at: float | None = None

    def failed(self, now: float) -> CapacityBackoff:
        return CapacityBackoff(self.failures + 1, now)

    def holds(self, *, now: float, interval: float, cap: float) -> bool:
        """Whether scale-ups of the pool still wait at ``now``."""
        if self.last_failure_at is None:
            return False
        wait = capacity_backoff_seconds(self.failures, interval=interval, cap=cap)
        return now < self.last_failure_at + wait
