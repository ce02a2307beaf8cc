"""``import azure-autoscale``: an Azure autoscale setting (the JSON of ``az monitor autoscale
show``, i.e. the ``Microsoft.Insights/autoscaleSettings`` resource) as this daemon's config.

The translation follows Microsoft's description of the resource
(https://learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-understanding-settings and
the 2022-10-01 REST reference, https://learn.microsoft.com/rest/api/monitor/autoscale-settings):

* ``targetResourceUri`` → the pool's ``resource_id`` (a scale set); ``location`` → ``[azure]``.
* The profiles' ``capacity``: ``minimum`` / ``maximum`` → the pool's ``min`` / ``max`` (the
  lowest minimum and the highest maximum of all profiles) and a ``schedule`` policy that applies
  each profile's own ``minimum`` (a floor) and ``maximum`` (a cap) while it is active; ``default``
  ("the number of instances that will be set if metrics are not available for evaluation") →
  ``behavior.missing_data_floor``.
* Profiles: a ``fixedDate`` profile → a fixed ``start``/``end`` schedule profile; a
  ``recurrence`` profile ("the repeating times at which this profile begins") is active from
  each of its start times until the next start of any recurring profile, so each becomes the
  weekly windows between consecutive starts. A profile with neither is the default (what
  applies outside the others). Azure's precedence, fixed over recurring over default, is the
  schedule policy's own.
* ``rules`` → a ``step`` policy: ``metricTrigger`` (``Percentage CPU`` of the scale set itself,
  ``statistic`` Average; ``timeAggregation`` Average/Maximum/Minimum over ``timeWindow``;
  ``operator``; ``threshold``) and ``scaleAction`` (``direction``; ``type`` ChangeCount,
  PercentChangeCount or ExactCount with ``value``; ``cooldown``). ``percent`` in the step policy
  is the calls-based percent of capacity, which is what a CPU threshold stands for here. The
  step policy has one rule set for all times, so profiles must share their rules.

What has no equivalent (another metric, another resource, ``Equals``, ``Total``, time zones
without an IANA name…) is refused with the JSON path of the value, so nothing is silently lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scaler.config import VMSS_NAMESPACE
from scaler.errors import ConfigError

_VMSS = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w._()]+/providers/"
    r"Microsoft\.Compute/virtualMachineScaleSets/(?P<name>[-\w._]+)$",
    re.IGNORECASE,
)
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
"""Azure's ``days`` are day names (``Monday``); numbers are .NET ``DayOfWeek`` values (0 =
Sunday), which Microsoft's own example uses (``"days": ["1"]``)."""

WINDOWS_ZONES: Mapping[str, str] = {
    # Windows time zone names Azure autoscale takes → IANA (CLDR windowsZones.xml, territory 001)
    "utc": "UTC",
    "gmt standard time": "Europe/London",
    "greenwich standard time": "Atlantic/Reykjavik",
    "w. europe standard time": "Europe/Berlin",
    "central europe standard time": "Europe/Budapest",
    "romance standard time": "Europe/Paris",
    "central european standard time": "Europe/Warsaw",
    "e. europe standard time": "Europe/Chisinau",
    "fle standard time": "Europe/Kiev",
    "gtb standard time": "Europe/Bucharest",
    "russian standard time": "Europe/Moscow",
    "eastern standard time": "America/New_York",
    "central standard time": "America/Chicago",
    "mountain standard time": "America/Denver",
    "pacific standard time": "America/Los_Angeles",
    "us mountain standard time": "America/Phoenix",
    "alaskan standard time": "America/Anchorage",
    "hawaiian standard time": "Pacific/Honolulu",
    "atlantic standard time": "America/Halifax",
    "e. south america standard time": "America/Sao_Paulo",
    "india standard time": "Asia/Calcutta",
    "china standard time": "Asia/Shanghai",
    "tokyo standard time": "Asia/Tokyo",
    "korea standard time": "Asia/Seoul",
    "singapore standard time": "Asia/Singapore",
    "aus eastern standard time": "Australia/Sydney",
    "new zealand standard time": "Pacific/Auckland",
    "arabian standard time": "Asia/Dubai",
    "south africa standard time": "Africa/Johannesburg",
}

_OPERATORS = {
    "greaterthan": ">",
    "greaterthanorequal": ">=",
    "lessthan": "<",
    "lessthanorequal": "<=",
}
_WINDOW_STATS = {"average": "average", "maximum": "max", "minimum": "min"}
_ACTIONS = {
    "changecount": "change_count",
    "percentchangecount": "percent_change",
    "exactcount": "exact_count",
}


class ImportProblem(ConfigError):
    """What could not be translated, one line per problem naming the JSON path."""


@dataclass
class _Out:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def bad(self, path: str, what: str, value: Any) -> None:
        self.problems.append(f"{path}: {what}, got {json.dumps(value, default=str)[:80]}")


def load_setting(path: Path) -> dict[str, Any]:
    """The setting from the file: the resource itself (``az monitor autoscale show``), or a
    REST example / answer wrapping it (``responses.200.body``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportProblem(f"{path}: cannot read ({exc.strerror})") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImportProblem(f"{path}: not JSON ({exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("responses"), dict):
        body = (data["responses"].get("200") or {}).get("body")
        if isinstance(body, dict):
            data = body
    if not isinstance(data, dict) or not isinstance(data.get("properties"), dict):
        raise ImportProblem(f"{path}: (top): an autoscale setting has 'properties', got none")
    return data


def translate(
    setting: Mapping[str, Any],
    *,
    pool_name: str = "",
    vcpus_per_instance: int = 4,
    calls_per_instance: float = 15.0,
) -> str:
    """The config TOML for ``setting``; raises ``ImportProblem`` listing what cannot be
    translated."""
    out = _Out()
    props: Mapping[str, Any] = setting.get("properties") or {}
    target = props.get("targetResourceUri")
    m = _VMSS.match(target) if isinstance(target, str) else None
    if m is None:
        out.bad("properties.targetResourceUri", "must be a virtual machine scale set id", target)
    name = pool_name or _pool_name(m["name"] if m else str(setting.get("name") or "pool"))
    location = str(setting.get("location") or "").replace(" ", "").lower()
    if not location:
        out.bad("location", "the setting's region is needed for [azure] location", location)
    profiles = props.get("profiles")
    if not isinstance(profiles, list) or not profiles:
        out.bad("properties.profiles", "needs at least one profile", profiles)
        raise ImportProblem(out.problems)
    caps = [_capacity(p, f"properties.profiles[{i}]", out) for i, p in enumerate(profiles)]
    rules = _rules(profiles, target, out)
    schedule = _schedule(profiles, caps, out)
    if props.get("enabled") is False:
        out.notes.append("the Azure setting is disabled (enabled = false)")
    predictive = (props.get("predictiveAutoscalePolicy") or {}).get("scaleMode")
    if isinstance(predictive, str) and predictive.lower() == "enabled":
        out.notes.append(
            "Azure predictive autoscale (scaleMode Enabled) is not carried over; consider the "
            "'predictive' policy"
        )
    if out.problems:
        raise ImportProblem(out.problems)
    lows = [c[0] for c in caps if c is not None]
    highs = [c[1] for c in caps if c is not None]
    defaults = [c[2] for c in caps if c is not None]
    return _toml(
        setting=setting,
        name=name,
        location=location,
        resource_id=str(target),
        vcpus=vcpus_per_instance,
        cpi=calls_per_instance,
        low=min(lows),
        high=max(highs),
        floor=max(defaults),
        rules=rules,
        schedule=schedule,
        notes=out.notes,
    )


def _pool_name(text: str) -> str:
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", text).strip("-.") or "pool"
    return cleaned[:63]


def _int(value: Any, path: str, out: _Out) -> int | None:
    if isinstance(value, bool):
        out.bad(path, "must be a whole number", value)
        return None
    try:
        number = int(str(value))
    except ValueError:
        out.bad(path, "must be a whole number", value)
        return None
    if number < 0 or number > 1000:
        out.bad(path, "must be between 0 and 1000 (a scale set's largest size)", value)
        return None
    return number


def _capacity(profile: Any, at: str, out: _Out) -> tuple[int, int, int] | None:
    cap = profile.get("capacity") if isinstance(profile, dict) else None
    if not isinstance(cap, dict):
        out.bad(f"{at}.capacity", "needs minimum, maximum and default", cap)
        return None
    low = _int(cap.get("minimum"), f"{at}.capacity.minimum", out)
    high = _int(cap.get("maximum"), f"{at}.capacity.maximum", out)
    default = _int(cap.get("default"), f"{at}.capacity.default", out)
    if low is None or high is None or default is None:
        return None
    if high < low:
        out.bad(f"{at}.capacity.maximum", f"must be >= minimum ({low})", cap.get("maximum"))
        return None
    return low, high, default


def _minutes(value: Any, path: str, out: _Out) -> float | None:
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None or not any(m.groupdict().values()):
        out.bad(path, "must be an ISO 8601 duration such as PT5M", value)
        return None
    d, h, mi, s = (int(m[k] or 0) for k in ("d", "h", "m", "s"))
    return d * 1440 + h * 60 + mi + s / 60


def _rule(rule: Any, at: str, target: Any, out: _Out) -> dict[str, Any] | None:
    trigger = rule.get("metricTrigger") if isinstance(rule, dict) else None
    action = rule.get("scaleAction") if isinstance(rule, dict) else None
    if not isinstance(trigger, dict) or not isinstance(action, dict):
        out.bad(at, "needs metricTrigger and scaleAction", rule)
        return None
    before = len(out.problems)
    t, a = f"{at}.metricTrigger", f"{at}.scaleAction"
    if str(trigger.get("metricName", "")).lower() != "percentage cpu":
        out.bad(
            f"{t}.metricName",
            "only the scale set's Percentage CPU maps onto this daemon's calls-based percent",
            trigger.get("metricName"),
        )
    namespace = trigger.get("metricNamespace")
    if namespace and str(namespace).lower() != VMSS_NAMESPACE.lower():
        out.bad(f"{t}.metricNamespace", f"must be {VMSS_NAMESPACE}", namespace)
    source = trigger.get("metricResourceUri")
    if (
        not isinstance(source, str)
        or not isinstance(target, str)
        or source.lower() != target.lower()
    ):
        out.bad(
            f"{t}.metricResourceUri", "must be the scale set itself (targetResourceUri)", source
        )
    if str(trigger.get("statistic", "Average")).lower() != "average":
        out.bad(
            f"{t}.statistic",
            "only Average over instances has an equivalent",
            trigger.get("statistic"),
        )
    stat = _WINDOW_STATS.get(str(trigger.get("timeAggregation", "")).lower())
    if stat is None:
        out.bad(
            f"{t}.timeAggregation",
            "must be Average, Maximum or Minimum",
            trigger.get("timeAggregation"),
        )
    op = _OPERATORS.get(str(trigger.get("operator", "")).lower())
    if op is None:
        out.bad(
            f"{t}.operator",
            "must be GreaterThan(OrEqual) or LessThan(OrEqual)",
            trigger.get("operator"),
        )
    if trigger.get("dividePerInstance"):
        out.bad(f"{t}.dividePerInstance", "has no equivalent for Percentage CPU", True)
    threshold = trigger.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold < 0:
        out.bad(f"{t}.threshold", "must be a number >= 0", threshold)
    window = _minutes(trigger.get("timeWindow"), f"{t}.timeWindow", out)
    if window is not None and not (1 <= window <= 720 and float(window).is_integer()):
        out.bad(f"{t}.timeWindow", "must be whole minutes from 1 to 720", trigger.get("timeWindow"))
    direction = str(action.get("direction", "")).lower()
    if direction not in ("increase", "decrease"):
        out.bad(f"{a}.direction", "must be Increase or Decrease", action.get("direction"))
    change = _ACTIONS.get(str(action.get("type", "")).lower())
    if change is None:
        out.bad(
            f"{a}.type", "must be ChangeCount, PercentChangeCount or ExactCount", action.get("type")
        )
    cooldown = _minutes(action.get("cooldown"), f"{a}.cooldown", out)
    try:
        amount = float(str(action.get("value")))
    except ValueError:
        amount = -1.0
    if amount < 0 or (change != "percent_change" and not amount.is_integer()):
        out.bad(
            f"{a}.value", "must be a number of instances (or a percentage)", action.get("value")
        )
    if len(out.problems) > before:
        return None
    return {
        "metric": "percent",
        "statistic": stat,
        "time_window_minutes": int(window or 0),
        "operator": op,
        "threshold": float(threshold),  # type: ignore[arg-type]  # checked above
        "direction": direction,
        str(change): amount if change == "percent_change" else int(amount),
        "cooldown_minutes": cooldown,
    }


def _rules(profiles: Sequence[Any], target: Any, out: _Out) -> list[dict[str, Any]]:
    first: list[dict[str, Any]] | None = None
    for i, profile in enumerate(profiles):
        at = f"properties.profiles[{i}].rules"
        raw = profile.get("rules") if isinstance(profile, dict) else None
        if not isinstance(raw, list):
            out.bad(at, "must be a list of rules", raw)
            continue
        rules = [_rule(r, f"{at}[{j}]", target, out) for j, r in enumerate(raw)]
        if any(r is None for r in rules):
            continue
        done = [r for r in rules if r is not None]
        if first is None:
            first = done
        elif done != first:
            out.bad(
                at,
                "differ from properties.profiles[0].rules; the step policy applies one rule set "
                "at all times (profiles may differ in capacity only)",
                f"{len(raw)} rule(s)",
            )
    return first or []


def _zone(name: Any, path: str, out: _Out) -> str | None:
    zone = WINDOWS_ZONES.get(str(name or "UTC").strip().lower())
    if zone is None:
        out.bad(path, "a time zone this importer has no IANA name for (set it by hand)", name)
    return zone


def _schedule(
    profiles: Sequence[Any], caps: Sequence[tuple[int, int, int] | None], out: _Out
) -> dict[str, Any]:
    fixed: list[dict[str, Any]] = []
    starts: list[tuple[int, int, int, int]] = []  # (minute of week, profile index, min, max)
    zones: set[str] = set()
    default: tuple[int, int] | None = None
    for i, (profile, cap) in enumerate(zip(profiles, caps, strict=True)):
        at = f"properties.profiles[{i}]"
        if not isinstance(profile, dict) or cap is None:
            continue
        low, high, _ = cap
        label = str(profile.get("name") or f"profiles[{i}]")[:60]
        if isinstance(profile.get("fixedDate"), dict):
            fd = profile["fixedDate"]
            zone = _zone(fd.get("timeZone"), f"{at}.fixedDate.timeZone", out)
            try:
                start = datetime.fromisoformat(str(fd.get("start")).replace("Z", "+00:00"))
                end = datetime.fromisoformat(str(fd.get("end")).replace("Z", "+00:00"))
            except ValueError:
                out.bad(f"{at}.fixedDate", "needs ISO 8601 start and end", fd)
                continue
            if zone is None:
                continue
            fixed.append(
                {
                    "name": label,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "timezone": zone,
                    "min": low,
                    "max": high,
                }
            )
        elif isinstance(profile.get("recurrence"), dict):
            rec = profile["recurrence"]
            if str(rec.get("frequency", "")).lower() != "week":
                out.bad(f"{at}.recurrence.frequency", "must be Week", rec.get("frequency"))
                continue
            sched = rec.get("schedule") if isinstance(rec.get("schedule"), dict) else {}
            zone = _zone(sched.get("timeZone"), f"{at}.recurrence.schedule.timeZone", out)
            if zone is not None:
                zones.add(zone)
            days = _days(sched.get("days"), f"{at}.recurrence.schedule.days", out)
            hours = _ints(sched.get("hours"), 0, 23, f"{at}.recurrence.schedule.hours", out)
            minutes = _ints(sched.get("minutes"), 0, 59, f"{at}.recurrence.schedule.minutes", out)
            for d in days:
                for h in hours:
                    for mi in minutes:
                        starts.append((d * 1440 + h * 60 + mi, i, low, high))
        elif default is None:
            default = (low, high)
        else:
            out.bad(
                at,
                "a second profile without fixedDate or recurrence (Azure has one default)",
                label,
            )
    if len(zones) > 1:
        out.bad(
            "properties.profiles",
            "recurring profiles in several time zones cannot be ordered into one week",
            sorted(zones),
        )
    recurring = _windows(sorted(set(starts)), profiles)
    lows = [c[0] for c in caps if c is not None]
    highs = [c[1] for c in caps if c is not None]
    schedule: dict[str, Any] = {
        "type": "schedule",
        "timezone": next(iter(zones), "UTC"),
        "default_min": default[0] if default else (min(lows) if lows else 0),
        "profiles": [*recurring, *fixed],
    }
    if default is not None:
        schedule["default_max"] = default[1]
    elif highs:
        schedule["default_max"] = max(highs)
    return schedule


def _days(value: Any, path: str, out: _Out) -> list[int]:
    if not isinstance(value, list) or not value:
        out.bad(path, "must list days (Sunday … Saturday)", value)
        return []
    found = []
    for item in value:
        text = str(item).strip().lower()
        if text.isdigit() and int(text) < 7:
            found.append(int(text))
        elif text[:3] in DAY_NAMES and len(text) >= 3:
            found.append(DAY_NAMES.index(text[:3]))
        else:
            out.bad(path, "must be day names (Sunday … Saturday) or .NET DayOfWeek numbers", item)
    return found


def _ints(value: Any, low: int, high: int, path: str, out: _Out) -> list[int]:
    if not isinstance(value, list) or not value:
        out.bad(path, f"must list whole numbers from {low} to {high}", value)
        return []
    found = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
            out.bad(path, f"must list whole numbers from {low} to {high}", item)
        else:
            found.append(item)
    return found


WEEK = 7 * 1440


def _windows(
    starts: Sequence[tuple[int, int, int, int]], profiles: Sequence[Any]
) -> list[dict[str, Any]]:
    """Weekly windows from consecutive recurrence starts, split at local midnights (the
    schedule policy's recurring profiles are ``days`` + ``from``/``to`` within one day)."""
    out: list[dict[str, Any]] = []
    for k, (begin, index, low, high) in enumerate(starts):
        nxt = starts[(k + 1) % len(starts)][0]
        end = nxt if nxt > begin else nxt + WEEK
        label = str(profiles[index].get("name") or f"profiles[{index}]")[:60]
        t = begin
        while t < end:
            day_end = (t // 1440 + 1) * 1440
            stop = min(end, day_end)
            day = DAY_NAMES[(t // 1440) % 7]
            out.append(
                {
                    "name": label,
                    "days": [day],
                    "from": _clock(t % 1440),
                    "to": _clock(stop - (t // 1440) * 1440),
                    "min": low,
                    "max": high,
                }
            )
            t = stop
    return out


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _toml(
    *,
    setting: Mapping[str, Any],
    name: str,
    location: str,
    resource_id: str,
    vcpus: int,
    cpi: float,
    low: int,
    high: int,
    floor: int,
    rules: list[dict[str, Any]],
    schedule: dict[str, Any],
    notes: list[str],
) -> str:
    lines = [
        f"# Imported from Azure autoscale setting {setting.get('name', '')!s} "
        f"({setting.get('id', 'no id')!s}) by 'cvi-autoscaler import azure-autoscale'.",
        "# Check vcpus_per_instance and calls_per_instance against the scale set's VM size,",
        "# then compare with: cvi-autoscaler backtest --config THIS --compare YOURS --trace T.csv",
        "# (the step rules' 'percent' is the calls-based percent of capacity that Percentage",
        "# CPU stood for, so a backtest on a call trace shows what these rules would do).",
    ]
    lines += [f"# Note: {n}." for n in notes]
    lines += ["", "[azure]", f"location = {_value(location)}", "", "[[pools]]"]
    pool = {
        "name": name,
        "kind": "vmss",
        "resource_id": resource_id,
        "vcpus_per_instance": vcpus,
        "calls_per_instance": cpi,
        "min": low,
        "max": high,
    }
    lines += [f"{k} = {_value(v)}" for k, v in pool.items()]
    lines += ["", "[pools.behavior]", f"missing_data_floor = {floor}"]
    if rules:
        lines += ["", "[[pools.policies]]", 'type = "step"']
        for rule in rules:
            lines += ["", "[[pools.policies.rules]]"]
            lines += [f"{k} = {_value(v)}" for k, v in rule.items()]
    lines += ["", "[[pools.policies]]"]
    lines += [f"{k} = {_value(v)}" for k, v in schedule.items() if k != "profiles"]
    for profile in schedule["profiles"]:
        lines += ["", "[[pools.policies.profiles]]"]
        lines += [f"{k} = {_value(v)}" for k, v in profile.items()]
    return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(str(v))
