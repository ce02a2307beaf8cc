"""``import azure-autoscale``: an Azure autoscale setting (``Microsoft.Insights/autoscaleSettings``)
as this daemon's config, so that a backtest can set the rules that size a scale set today beside
a new policy on the same load.

Every field of the setting is either mapped so that the daemon does what Azure does, or refused
with its JSON path (exit 2); what does not change any decision (notifications, tags) is named in
a comment. What Azure does is read from Microsoft's description of the resource
(https://learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-understanding-settings,
``autoscale-best-practices``, ``autoscale-flapping``, ``autoscale-multiprofile`` and the
2022-10-01 REST reference):

* **Shapes.** The ARM resource (``properties`` inside, as the REST API and ARM templates have
  it), the ``az monitor autoscale show`` output (the same with ``properties`` flattened to the
  top level, e.g. ``namePropertiesName``), a list of either (``az monitor autoscale list``, a
  REST list's ``value``, an ARM template's ``resources``: ``--name`` picks one), and Microsoft's
  REST examples (``responses.200.body``).
* **Target.** ``targetResourceUri`` → the pool's ``resource_id`` (a scale set). The region is
  the scale set's (``targetResourceLocation``, else a rule's ``metricResourceLocation``, else the
  setting's own ``location``, which "can be different from the location of the resource being
  scaled"), in its programmatic form (``West US`` → ``westus``).
* **Capacity.** The lowest ``minimum`` and highest ``maximum`` of all profiles are the pool's
  ``min``/``max``; each profile's ``minimum``/``maximum`` is a ``schedule`` floor/cap while it
  is active (Azure: "Autoscale then evaluates the minimum and maximum values"), and its
  ``default`` is that profile's ``missing_data_floor`` ("If there's a problem reading the
  resource metric, and the current capacity is below the default, autoscale scales out to the
  default").
* **Profiles.** Fixed date over recurring over the default, as the schedule policy ranks
  them. A recurring profile runs from each of its start times until the next start of any
  recurring profile ("The end of date and time for a recurring profile is set by the start time
  of the following profile"), so it becomes the weekly windows between starts. Windows time zone
  names are mapped to IANA names by CLDR's table (``tzlocal.windows_tz``).
* **Rules** → one ``step`` policy: ``Percentage CPU`` of the scale set itself (``statistic``
  Average: the mean over instances), ``timeGrain`` → ``time_grain_minutes``,
  ``timeAggregation`` Average/Maximum/Minimum over ``timeWindow``, ``operator``, ``threshold``;
  ``scaleAction`` ChangeCount / PercentChangeCount / ExactCount with ``value`` and ``cooldown``.
  The step policy evaluates rules and flapping and holds both directions after a resize as Azure
  does; profiles must share one rule set.
* **Behaviour.** Azure has no stabilisation window, rate limit or tolerance, so the pool's
  ``[pools.behavior]`` switches the daemon's defaults (a 300 s scale-down window, +4/+100 % a
  minute) off: a rule's "Increase by 10" from 2 goes to 12.
* **Metric.** ``[pools.metric]`` reads the newest complete minute each tick (``window_minutes =
  1``) and keeps as many minutes as the longest rule window reads (``history_minutes``), so the
  rules see Percentage CPU minute by minute as Azure's statistic does.

Refused, naming the path: another metric or resource, ``dividePerInstance``, dimensions that
select instances, ``Equals``/``NotEquals``, ``Total``/``Count``/``Last``, a ``statistic`` other
than Average, ``ServiceAllowedNextValue``, profiles with different rules, a recurrence other than
weekly, a time zone without an IANA name, a fixed date that ends before it starts, predictive
autoscale (unless ``--without-predictive``), and any field this importer does not know. The
output is loaded with the same loader as ``validate`` before it is written.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scaler.config import VMSS_NAMESPACE
from scaler.errors import ConfigError
from scaler.regions import canonical as canonical_region
from scaler.regions import problem as region_problem

_VMSS = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w._()]+/providers/"
    r"Microsoft\.Compute/virtualMachineScaleSets/(?P<name>[-\w._]+)$",
    re.IGNORECASE,
)
_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")
_POOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")

MAX_SETTING_BYTES = 4 << 20
"""An autoscale setting is a few kilobytes and a subscription's list of them rarely a megabyte;
a file beyond 4 MiB is not one (and ``/dev/zero`` never ends)."""

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
"""Azure's ``days`` are day names (``Monday``); numbers are .NET ``DayOfWeek`` values (0 =
Sunday), which Microsoft's own example uses (``"days": ["1"]``)."""

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

# The fields of the 2022-10-01 schema (lower-cased: ARM reads JSON names case-insensitively, and
# Microsoft's own examples write "Dimensions"). Anything else is refused, naming its path.
_RESOURCE_KEYS = {"id", "name", "type", "location", "tags", "properties", "systemdata", "etag"}
_PROPERTY_KEYS = {
    "profiles",
    "notifications",
    "enabled",
    "predictiveautoscalepolicy",
    "name",
    "targetresourceuri",
    "targetresourcelocation",
}
_AZ_KEYS = {"resourcegroup", "namepropertiesname"}
"""Keys ``az monitor autoscale show`` adds beside the flattened properties."""
_TEMPLATE_KEYS = {"apiversion", "dependson", "comments", "condition", "scope"}
"""Keys an ARM template's resource entry may carry besides the resource's own."""
_PROFILE_KEYS = {"name", "capacity", "rules", "fixeddate", "recurrence"}
_CAPACITY_KEYS = {"minimum", "maximum", "default"}
_RULE_KEYS = {"metrictrigger", "scaleaction"}
_TRIGGER_KEYS = {
    "metricname",
    "metricnamespace",
    "metricresourceuri",
    "metricresourcelocation",
    "timegrain",
    "statistic",
    "timewindow",
    "timeaggregation",
    "operator",
    "threshold",
    "dimensions",
    "divideperinstance",
}
_ACTION_KEYS = {"direction", "type", "value", "cooldown"}
_FIXED_KEYS = {"timezone", "start", "end"}
_RECURRENCE_KEYS = {"frequency", "schedule"}
_SCHEDULE_KEYS = {"timezone", "days", "hours", "minutes"}
_DIMENSION_KEYS = {"dimensionname", "operator", "values"}
_PREDICTIVE_KEYS = {"scalemode", "scalelookaheadtime"}


class ImportProblem(ConfigError):
    """What could not be translated, one line per problem naming the JSON path."""


@dataclass(frozen=True)
class Found:
    """One autoscale setting in the file, where it was and in which shape."""

    setting: Mapping[str, Any]
    where: str = ""
    """JSON path of the setting in the file (``""``: the whole file), ending in ``.`` if set."""
    flat: bool = False
    """``az`` shape: the properties are at the setting's top level."""

    @property
    def name(self) -> str:
        return str(_get(self.setting, "name") or "")


@dataclass
class _Out:
    found: Found
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def path(self, sub: str) -> str:
        """The JSON path in the user's file of ``sub`` under the setting's properties."""
        base = self.found.where + ("" if self.found.flat else "properties.")
        return f"{base}{sub}" if sub else base.rstrip(".") or "(top)"

    def top(self, sub: str) -> str:
        return f"{self.found.where}{sub}"

    def bad(self, path: str, what: str, value: Any) -> None:
        self.problems.append(f"{path}: {what}, got {_show(value)}")

    def unknown(self, table: Mapping[str, Any], known: set[str], path: str) -> None:
        for key in table:
            if str(key).lower() not in known:
                self.problems.append(
                    f"{path}{'.' if path else ''}{key}: not a field of an autoscale setting "
                    "this importer knows, so it cannot say what it would change"
                )


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, default=str, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _get(table: Any, key: str) -> Any:
    """``table[key]`` matched without regard to case (ARM's JSON names are case-insensitive);
    ``None`` when absent, null, or ``table`` is not an object."""
    if not isinstance(table, Mapping):
        return None
    if key in table:
        return table[key]
    low = key.lower()
    for k, v in table.items():
        if str(k).lower() == low:
            return v
    return None


# -- reading the file ---------------------------------------------------------------------------


def read_setting_text(path: Path) -> str:
    """The file's text (``-``: standard input), at most ``MAX_SETTING_BYTES``, in UTF-8."""
    label = "standard input" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(MAX_SETTING_BYTES + 1)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    raise ImportProblem(f"{label}: a directory, not an autoscale setting")
                chunks: list[bytes] = []
                size = 0
                while size <= MAX_SETTING_BYTES:
                    chunk = os.read(fd, MAX_SETTING_BYTES + 1 - size)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                data = b"".join(chunks)
            finally:
                os.close(fd)
    except FileNotFoundError as exc:
        raise ImportProblem(f"{label}: file not found") from exc
    except OSError as exc:
        raise ImportProblem(f"{label}: cannot read ({exc.strerror})") from exc
    if len(data) > MAX_SETTING_BYTES:
        raise ImportProblem(
            f"{label}: larger than the limit of {MAX_SETTING_BYTES} bytes (4 MiB); "
            "an autoscale setting is a few kilobytes"
        )
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ImportProblem(
            f"{label}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from exc


def load_settings(path: Path) -> list[Found]:
    """Every autoscale setting in the file, in any of the shapes the module docstring names."""
    label = "standard input" if str(path) == "-" else str(path)
    text = read_setting_text(path)
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise ImportProblem(f"{label}: not an autoscale setting (JSON nested too deeply)") from exc
    except ValueError as exc:
        raise ImportProblem(f"{label}: not JSON ({exc})") from exc
    found = _settings_in(data, "")
    if not found:
        raise ImportProblem(
            f"{label}: (top): no autoscale setting found (an object with 'properties' or with "
            "'profiles' and 'targetResourceUri', or a list of them)"
        )
    return found


def _settings_in(data: Any, where: str) -> list[Found]:
    if isinstance(data, list):
        out: list[Found] = []
        for i, item in enumerate(data):
            out += _settings_in(item, f"{where}[{i}].")
        return out
    if not isinstance(data, dict):
        return []
    responses = data.get("responses")
    if isinstance(responses, dict):  # a REST example: the answer's body
        for code in ("200", "201"):
            body = (responses.get(code) or {}).get("body")
            if body is not None:
                return _settings_in(body, f"{where}responses.{code}.body.")
        return []
    if isinstance(data.get("value"), list) and "properties" not in data:  # a REST list
        return _settings_in(data["value"], f"{where}value")
    if isinstance(data.get("resources"), list) and "properties" not in data:  # an ARM template
        out = []
        for i, item in enumerate(data["resources"]):
            kind = str(_get(item, "type") or "").lower()
            if kind == "microsoft.insights/autoscalesettings":
                out += _settings_in(item, f"{where}resources[{i}].")
        return out
    if isinstance(_get(data, "properties"), dict):
        return [Found(data, where, flat=False)]
    if _get(data, "profiles") is not None or _get(data, "targetResourceUri") is not None:
        return [Found(data, where, flat=True)]
    return []


def choose(found: Sequence[Found], name: str, label: str) -> Found:
    """The setting ``--name`` names, or the only one."""
    if name:
        hits = [f for f in found if f.name.lower() == name.lower()]
        if len(hits) == 1:
            return hits[0]
        names = ", ".join(repr(f.name) for f in found) or "none"
        what = "several settings are" if hits else "no setting is"
        raise ImportProblem(f"{label}: --name: {what} named {name!r}; the file has {names}")
    if len(found) > 1:
        names = ", ".join(repr(f.name) for f in found)
        raise ImportProblem(
            f"{label}: the file holds {len(found)} autoscale settings ({names}); "
            "choose one with --name"
        )
    return found[0]


def load_setting(path: Path) -> dict[str, Any]:
    """The one setting of the file in the ARM shape (``properties`` inside)."""
    found = choose(load_settings(path), "", str(path))
    return _arm_shape(found)


def _arm_shape(found: Found) -> dict[str, Any]:
    if not found.flat:
        return dict(found.setting)
    top = {k: v for k, v in found.setting.items() if str(k).lower() in _RESOURCE_KEYS}
    props = {k: v for k, v in found.setting.items() if str(k).lower() in _PROPERTY_KEYS}
    top["properties"] = props
    return top


# -- translating --------------------------------------------------------------------------------


def translate(
    setting: Mapping[str, Any] | Found,
    *,
    pool_name: str = "",
    vcpus_per_instance: int = 4,
    calls_per_instance: float = 15.0,
    without_predictive: bool = False,
) -> str:
    """The config TOML for ``setting``; raises ``ImportProblem`` listing what cannot be
    translated."""
    found = setting if isinstance(setting, Found) else Found(setting)
    out = _Out(found)
    top: Mapping[str, Any] = found.setting
    props: Mapping[str, Any] = top if found.flat else (_get(top, "properties") or {})
    _check_fields(out, top, props)

    if pool_name and not _POOL_NAME.match(pool_name):
        out.problems.append(
            f"--pool-name: must be 1-63 letters, digits, '-', '_' or '.', got {_show(pool_name)}"
        )
    if not (isinstance(calls_per_instance, float | int) and math.isfinite(calls_per_instance)):
        out.problems.append(
            f"--calls-per-instance: must be a finite number, got {_show(calls_per_instance)}"
        )

    target = _get(props, "targetResourceUri")
    m = _VMSS.match(target) if isinstance(target, str) else None
    if m is None:
        out.bad(out.path("targetResourceUri"), "must be a virtual machine scale set id", target)
    name = pool_name or _pool_name(m["name"] if m else str(_get(top, "name") or "pool"))

    profiles = _get(props, "profiles")
    if not isinstance(profiles, list) or not profiles:
        out.bad(out.path("profiles"), "needs at least one profile", profiles)
        raise ImportProblem(out.problems)
    caps = [_capacity(p, out.path(f"profiles[{i}]"), out) for i, p in enumerate(profiles)]
    rules = _rules(profiles, target, out)
    schedule = _schedule(profiles, caps, out)
    location = _location(top, props, profiles, out)
    _predictive(props, out, without_predictive)
    if _get(props, "enabled") is False:
        out.notes.append(
            "the Azure setting is disabled (enabled = false): this config does what it would "
            "do if it were enabled"
        )
    if _get(props, "notifications"):
        out.notes.append("notifications (e-mail, webhooks) are not carried over")
    if out.problems:
        raise ImportProblem(out.problems)
    lows = [c[0] for c in caps if c is not None]
    highs = [c[1] for c in caps if c is not None]
    window = max((r["time_window_minutes"] for r in rules), default=0)
    return _toml(
        setting=top,
        name=name,
        location=location,
        resource_id=str(target),
        vcpus=vcpus_per_instance,
        cpi=float(calls_per_instance),
        low=min(lows),
        high=max(highs),
        history=window,
        rules=rules,
        schedule=schedule,
        notes=out.notes,
    )


def _check_fields(out: _Out, top: Mapping[str, Any], props: Mapping[str, Any]) -> None:
    """Refuse every field the importer does not know (a newer API's, a typo), naming it."""
    if out.found.flat:
        out.unknown(
            top,
            _RESOURCE_KEYS | _PROPERTY_KEYS | _AZ_KEYS | _TEMPLATE_KEYS,
            out.top("").rstrip("."),
        )
    else:
        out.unknown(top, _RESOURCE_KEYS | _TEMPLATE_KEYS, out.top("").rstrip("."))
        out.unknown(props, _PROPERTY_KEYS, out.path("").rstrip("."))


def _pool_name(text: str) -> str:
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", text).strip("-.") or "pool"
    return cleaned[:63]


def _location(
    top: Mapping[str, Any], props: Mapping[str, Any], profiles: Sequence[Any], out: _Out
) -> str:
    """The scale set's region (see the module docstring), in its programmatic form."""
    given = _get(props, "targetResourceLocation")
    where = out.path("targetResourceLocation")
    if not given:
        for i, p in enumerate(profiles):
            for j, r in enumerate(_get(p, "rules") or []):
                loc = _get(_get(r, "metricTrigger"), "metricResourceLocation")
                if loc:
                    given, where = loc, out.path(f"profiles[{i}].rules[{j}].metricTrigger")
                    break
            if given:
                break
    if not given:
        given, where = _get(top, "location"), out.top("location")
        if given:
            out.notes.append(
                f"the scale set's region is taken from the setting's location ({given}); "
                "Azure allows the two to differ: check [azure] location"
            )
    if not isinstance(given, str) or not given.strip():
        out.bad(where, "the scale set's region is needed for [azure] location", given)
        return ""
    region = canonical_region(given)
    why = region_problem(region)
    if why:
        out.bad(where, why, given)
    return region


def _predictive(props: Mapping[str, Any], out: _Out, without: bool) -> None:
    policy = _get(props, "predictiveAutoscalePolicy")
    if policy is None:
        return
    at = out.path("predictiveAutoscalePolicy")
    if not isinstance(policy, Mapping):
        out.bad(at, "must be an object", policy)
        return
    out.unknown(policy, _PREDICTIVE_KEYS, at)
    mode = str(_get(policy, "scaleMode") or "Disabled").lower()
    if mode in ("disabled", "forecastonly"):
        return
    if mode != "enabled":
        out.bad(f"{at}.scaleMode", "must be Disabled, ForecastOnly or Enabled", mode)
    elif without:
        out.notes.append(
            "Azure predictive autoscale (scaleMode Enabled) is left out (--without-predictive): "
            "Azure would scale out earlier than this config; the 'predictive' policy is this "
            "daemon's own forecaster"
        )
    else:
        out.bad(
            f"{at}.scaleMode",
            "predictive autoscale scales out ahead of the rules and has no equivalent; import "
            "with --without-predictive to compare the rules alone",
            _get(policy, "scaleMode"),
        )


def _int(value: Any, path: str, out: _Out) -> int | None:
    if isinstance(value, bool) or value is None:
        out.bad(path, "must be a whole number", value)
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        out.bad(path, "must be a whole number", value)
        return None
    if number < 0 or number > 1000:
        out.bad(path, "must be between 0 and 1000 (a scale set's largest size)", value)
        return None
    return number


def _capacity(profile: Any, at: str, out: _Out) -> tuple[int, int, int] | None:
    if not isinstance(profile, Mapping):
        out.bad(at, "must be a profile object", profile)
        return None
    out.unknown(profile, _PROFILE_KEYS, at)
    cap = _get(profile, "capacity")
    if not isinstance(cap, Mapping):
        out.bad(f"{at}.capacity", "needs minimum, maximum and default", cap)
        return None
    out.unknown(cap, _CAPACITY_KEYS, f"{at}.capacity")
    low = _int(_get(cap, "minimum"), f"{at}.capacity.minimum", out)
    high = _int(_get(cap, "maximum"), f"{at}.capacity.maximum", out)
    default = _int(_get(cap, "default"), f"{at}.capacity.default", out)
    if low is None or high is None or default is None:
        return None
    if high < low:
        out.bad(f"{at}.capacity.maximum", f"must be >= minimum ({low})", _get(cap, "maximum"))
        return None
    if not low <= default <= high:
        out.bad(
            f"{at}.capacity.default",
            f"must be within minimum and maximum ({low}-{high})",
            _get(cap, "default"),
        )
        return None
    return low, high, default


def _minutes(value: Any, path: str, out: _Out) -> float | None:
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None or not any(m.groupdict().values()):
        out.bad(path, "must be an ISO 8601 duration such as PT5M", value)
        return None
    d, h, mi, s = (int(m[k] or 0) for k in ("d", "h", "m", "s"))
    return d * 1440 + h * 60 + mi + s / 60


def _number(value: Any) -> float | None:
    """A JSON number or a numeric string (``az`` prints thresholds as strings: ``"70"``)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _rule(rule: Any, at: str, target: Any, out: _Out) -> dict[str, Any] | None:
    """One autoscale rule as a ``cpu-threshold`` rule table (``None``, with every problem
    said, when it has no faithful equivalent): its trigger, then its action."""
    trigger = _get(rule, "metricTrigger")
    action = _get(rule, "scaleAction")
    if not isinstance(trigger, Mapping) or not isinstance(action, Mapping):
        out.bad(at, "needs metricTrigger and scaleAction", rule)
        return None
    before = len(out.problems)
    t, a = f"{at}.metricTrigger", f"{at}.scaleAction"
    out.unknown(rule, _RULE_KEYS, at)
    out.unknown(trigger, _TRIGGER_KEYS, t)
    out.unknown(action, _ACTION_KEYS, a)
    when = _trigger(trigger, t, target, out)
    then = _action(action, a, out)
    if when is None or then is None or len(out.problems) > before:
        return None
    return {"metric": "percent", **when, **then}


def _trigger(trigger: Mapping[str, Any], t: str, target: Any, out: _Out) -> dict[str, Any] | None:
    """A rule's ``metricTrigger``: the scale set's own Percentage CPU, averaged over its
    instances, against a threshold over a window. ``None`` when it added a problem."""
    before = len(out.problems)
    if str(_get(trigger, "metricName") or "").lower() != "percentage cpu":
        out.bad(
            f"{t}.metricName",
            "only the scale set's Percentage CPU maps onto this daemon's calls-based percent",
            _get(trigger, "metricName"),
        )
    namespace = _get(trigger, "metricNamespace")
    if namespace and str(namespace).lower() != VMSS_NAMESPACE.lower():
        out.bad(f"{t}.metricNamespace", f"must be {VMSS_NAMESPACE}", namespace)
    source = _get(trigger, "metricResourceUri")
    if (
        not isinstance(source, str)
        or not isinstance(target, str)
        or source.lower() != target.lower()
    ):
        out.bad(
            f"{t}.metricResourceUri", "must be the scale set itself (targetResourceUri)", source
        )
    if str(_get(trigger, "statistic") or "Average").lower() != "average":
        out.bad(
            f"{t}.statistic",
            "only Average (the mean over the scale set's instances) has an equivalent",
            _get(trigger, "statistic"),
        )
    _dimensions(_get(trigger, "dimensions"), f"{t}.dimensions", out)
    stat = _WINDOW_STATS.get(str(_get(trigger, "timeAggregation") or "").lower())
    if stat is None:
        out.bad(
            f"{t}.timeAggregation",
            "must be Average, Maximum or Minimum",
            _get(trigger, "timeAggregation"),
        )
    op = _OPERATORS.get(str(_get(trigger, "operator") or "").lower())
    if op is None:
        out.bad(
            f"{t}.operator",
            "must be GreaterThan(OrEqual) or LessThan(OrEqual)",
            _get(trigger, "operator"),
        )
    if _get(trigger, "dividePerInstance"):
        out.bad(f"{t}.dividePerInstance", "has no equivalent for Percentage CPU", True)
    threshold = _number(_get(trigger, "threshold"))
    if threshold is None or threshold < 0:
        out.bad(f"{t}.threshold", "must be a number >= 0", _get(trigger, "threshold"))
    window = _minutes(_get(trigger, "timeWindow"), f"{t}.timeWindow", out)
    if window is not None and not (1 <= window <= 720 and float(window).is_integer()):
        out.bad(
            f"{t}.timeWindow", "must be whole minutes from 1 to 720", _get(trigger, "timeWindow")
        )
    grain_text = _get(trigger, "timeGrain") or "PT1M"
    grain = _minutes(grain_text, f"{t}.timeGrain", out)
    if grain is not None and not (1 <= grain <= 720 and float(grain).is_integer()):
        out.bad(f"{t}.timeGrain", "must be whole minutes from 1 to 720", grain_text)
    elif grain is not None and window is not None and grain > window:
        out.bad(f"{t}.timeGrain", "must not be longer than timeWindow", grain_text)
    if len(out.problems) > before:
        return None
    assert threshold is not None
    return {
        "statistic": stat,
        "time_window_minutes": int(window or 0),
        "time_grain_minutes": int(grain or 1),
        "operator": op,
        "threshold": threshold,
    }


def _action(action: Mapping[str, Any], a: str, out: _Out) -> dict[str, Any] | None:
    """A rule's ``scaleAction``: direction, how much (count, per cent or exact) and its
    cooldown. ``None`` when it added a problem."""
    before = len(out.problems)
    direction = str(_get(action, "direction") or "").lower()
    if direction not in ("increase", "decrease"):
        out.bad(f"{a}.direction", "must be Increase or Decrease", _get(action, "direction"))
    change = _ACTIONS.get(str(_get(action, "type") or "").lower())
    if change is None:
        out.bad(
            f"{a}.type",
            "must be ChangeCount, PercentChangeCount or ExactCount",
            _get(action, "type"),
        )
    cooldown = _minutes(_get(action, "cooldown"), f"{a}.cooldown", out)
    if cooldown is not None and cooldown > 1440:
        out.bad(f"{a}.cooldown", "must be at most a day (P1D)", _get(action, "cooldown"))
    amount = _number(_get(action, "value"))
    limit = {"change_count": 1000, "percent_change": 1000, "exact_count": 1000}.get(str(change))
    if (
        amount is None
        or amount < (0 if change == "exact_count" else 1e-9)
        or (limit is not None and amount > limit)
        or (change != "percent_change" and not amount.is_integer())
    ):
        out.bad(
            f"{a}.value",
            "must be a number of instances from 1 to 1000 (a percentage up to 1000, an exact "
            "count from 0)",
            _get(action, "value"),
        )
    if len(out.problems) > before:
        return None
    assert amount is not None
    return {
        "direction": direction,
        str(change): amount if change == "percent_change" else int(amount),
        "cooldown_minutes": cooldown,
    }


def _dimensions(value: Any, at: str, out: _Out) -> None:
    """Dimensions that keep every instance (none, or ``VMName Equals *``) read the whole scale
    set, as the pool's metric does; any other selection has no equivalent (the rules read the
    pool's whole load), so it is refused rather than dropped."""
    if value is None or value == []:
        return
    if not isinstance(value, list):
        out.bad(at, "must be a list", value)
        return
    for i, dim in enumerate(value):
        out.unknown(dim if isinstance(dim, Mapping) else {}, _DIMENSION_KEYS, f"{at}[{i}]")
        operator = str(_get(dim, "Operator") or "").lower()
        values = _get(dim, "Values")
        if operator == "equals" and values == ["*"]:
            continue
        out.bad(
            f"{at}[{i}]",
            "a rule on some instances only has no equivalent: the rules here read the whole "
            "pool's load (remove the dimension, or compare without this rule)",
            dim,
        )


def _rules(profiles: Sequence[Any], target: Any, out: _Out) -> list[dict[str, Any]]:
    first: list[dict[str, Any]] | None = None
    first_at = ""
    for i, profile in enumerate(profiles):
        at = out.path(f"profiles[{i}].rules")
        raw = _get(profile, "rules")
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            out.bad(at, "must be a list of rules", raw)
            continue
        rules = [_rule(r, f"{at}[{j}]", target, out) for j, r in enumerate(raw)]
        if any(r is None for r in rules):
            continue
        done = [r for r in rules if r is not None]
        if first is None:
            first, first_at = done, at
        elif done != first:
            out.bad(
                at,
                f"differ from {first_at}; the step policy applies one rule set at all times "
                "(profiles may differ in capacity only)",
                f"{len(raw)} rule(s)",
            )
    return first or []


def _zone(name: Any, path: str, out: _Out) -> str | None:
    from tzlocal.windows_tz import win_tz

    text = str(name or "UTC").strip()
    zone = "UTC" if text.upper() == "UTC" else win_tz.get(text)
    if zone is None:
        lower = {k.lower(): v for k, v in win_tz.items()}
        zone = lower.get(text.lower())
    if zone is None:
        out.bad(path, "a Windows time zone name this importer has no IANA name for", name)
    return zone


def _schedule(
    profiles: Sequence[Any], caps: Sequence[tuple[int, int, int] | None], out: _Out
) -> dict[str, Any]:
    fixed: list[dict[str, Any]] = []
    starts: list[tuple[int, int, int, int, int]] = []  # (minute of week, index, min, max, dflt)
    zones: set[str] = set()
    default: tuple[int, int, int] | None = None
    for i, (profile, cap) in enumerate(zip(profiles, caps, strict=True)):
        at = out.path(f"profiles[{i}]")
        if not isinstance(profile, Mapping) or cap is None:
            continue
        low, high, dflt = cap
        label = str(_get(profile, "name") or f"profiles[{i}]")[:60]
        fd, rec = _get(profile, "fixedDate"), _get(profile, "recurrence")
        if fd is not None and rec is not None:
            out.bad(at, "has both fixedDate and recurrence", label)
        elif fd is not None:
            fixed += _fixed(fd, f"{at}.fixedDate", label, cap, out)
        elif rec is not None:
            starts += _recurrence(rec, f"{at}.recurrence", i, cap, zones, out)
        elif default is None:
            default = (low, high, dflt)
        else:
            out.bad(
                at,
                "a second profile without fixedDate or recurrence (Azure has one default)",
                label,
            )
    if len(zones) > 1:
        out.bad(
            out.path("profiles"),
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
        schedule["default_missing_data_floor"] = default[2]
    elif highs:
        schedule["default_max"] = max(highs)
    return schedule


def _fixed(
    fd: Any, at: str, label: str, cap: tuple[int, int, int], out: _Out
) -> list[dict[str, Any]]:
    if not isinstance(fd, Mapping):
        out.bad(at, "must be an object with timeZone, start and end", fd)
        return []
    out.unknown(fd, _FIXED_KEYS, at)
    zone = _zone(_get(fd, "timeZone"), f"{at}.timeZone", out)
    when: dict[str, datetime] = {}
    for key in ("start", "end"):
        text = _get(fd, key)
        try:
            when[key] = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            out.bad(f"{at}.{key}", "must be an ISO 8601 date and time", text)
    if len(when) < 2 or zone is None:
        return []
    start, end = when["start"], when["end"]
    if (start.tzinfo is None) != (end.tzinfo is None):
        out.bad(
            f"{at}.end", "start and end must both have a UTC offset or neither", _get(fd, "end")
        )
        return []
    if end <= start:
        out.bad(f"{at}.end", f"must be after start ({_get(fd, 'start')})", _get(fd, "end"))
        return []
    if start.tzinfo is not None and zone not in ("UTC", "Etc/UTC"):
        out.notes.append(
            f"{at}: start and end carry a UTC offset, which is taken over the time zone "
            f"{_get(fd, 'timeZone')}"
        )
    low, high, dflt = cap
    return [
        {
            "name": label,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "timezone": zone,
            "min": low,
            "max": high,
            "missing_data_floor": dflt,
        }
    ]


def _recurrence(
    rec: Any,
    at: str,
    index: int,
    cap: tuple[int, int, int],
    zones: set[str],
    out: _Out,
) -> list[tuple[int, int, int, int, int]]:
    if not isinstance(rec, Mapping):
        out.bad(at, "must be an object with frequency and schedule", rec)
        return []
    out.unknown(rec, _RECURRENCE_KEYS, at)
    if str(_get(rec, "frequency") or "").lower() != "week":
        out.bad(f"{at}.frequency", "must be Week", _get(rec, "frequency"))
        return []
    sched = _get(rec, "schedule")
    if not isinstance(sched, Mapping):
        out.bad(f"{at}.schedule", "must be an object with timeZone, days, hours, minutes", sched)
        return []
    out.unknown(sched, _SCHEDULE_KEYS, f"{at}.schedule")
    zone = _zone(_get(sched, "timeZone"), f"{at}.schedule.timeZone", out)
    if zone is not None:
        zones.add(zone)
    days = _days(_get(sched, "days"), f"{at}.schedule.days", out)
    hours = _ints(_get(sched, "hours"), 0, 23, f"{at}.schedule.hours", out)
    minutes = _ints(_get(sched, "minutes"), 0, 59, f"{at}.schedule.minutes", out)
    low, high, dflt = cap
    return [
        (d * 1440 + h * 60 + mi, index, low, high, dflt)
        for d in days
        for h in hours
        for mi in minutes
    ]


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
    starts: Sequence[tuple[int, int, int, int, int]], profiles: Sequence[Any]
) -> list[dict[str, Any]]:
    """Weekly windows from consecutive recurrence starts, split at local midnights (the
    schedule policy's recurring profiles are ``days`` + ``from``/``to`` within one day)."""
    out: list[dict[str, Any]] = []
    for k, (begin, index, low, high, dflt) in enumerate(starts):
        nxt = starts[(k + 1) % len(starts)][0]
        end = nxt if nxt > begin else nxt + WEEK
        label = str(_get(profiles[index], "name") or f"profiles[{index}]")[:60]
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
                    "missing_data_floor": dflt,
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
    history: int,
    rules: list[dict[str, Any]],
    schedule: dict[str, Any],
    notes: list[str],
) -> str:
    title = _one_line(str(_get(setting, "name") or ""))
    ident = _one_line(str(_get(setting, "id") or "no id"))
    lines = [
        f"# Imported from Azure autoscale setting {title} ({ident}) by "
        "'cvi-autoscaler import azure-autoscale'.",
        "# Check vcpus_per_instance and calls_per_instance against the scale set's VM size,",
        "# then compare with: cvi-autoscaler backtest --config THIS --compare YOURS --trace T.csv",
        "# (the step rules' 'percent' is the calls-based percent of capacity that Percentage",
        "# CPU stood for, so a backtest on a call trace shows what these rules would do).",
    ]
    lines += [f"# Note: {_one_line(n)}." for n in notes]
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
    lines += [
        "",
        "# Azure autoscale reads each minute of Percentage CPU over the rules' windows.",
        "[pools.metric]",
        "window_minutes = 1",
        'reduce = "mean"',
        f"history_minutes = {history}",
        "",
        "# Azure has no stabilisation window, rate limit or tolerance: the daemon's defaults off.",
        "[pools.behavior]",
        "tolerance = 0.0",
        "[pools.behavior.scale_up]",
        "stabilization_seconds = 0",
        "[pools.behavior.scale_down]",
        "stabilization_seconds = 0",
    ]
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


def _one_line(text: str) -> str:
    """Text safe inside a TOML comment: no line breaks or control characters."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)[:200]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    # a TOML basic string: JSON's escaping less what TOML lacks (lone surrogates, DEL)
    text = str(v).encode("utf-8", "replace").decode("utf-8")
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
