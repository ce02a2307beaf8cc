"""``cvi-autoscaler import azure-autoscale``: an Azure autoscale setting becomes a config that
validates, and what has no equivalent is refused naming its JSON path (exit 2).

The fixture ``tests/fixtures/autoscale/getAutoscaleSetting.json`` is Microsoft's published
example, copied verbatim from Azure/azure-rest-api-specs
(specification/monitor/resource-manager/Microsoft.Insights/stable/2022-10-01/examples/
getAutoscaleSetting.json, commit 715e8557c50b11a35e9bfefca0636b3ffbd22697, MIT licence).
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from scaler.cli import main
from scaler.config import load_config

EXAMPLE = Path(__file__).parent / "fixtures" / "autoscale" / "getAutoscaleSetting.json"


def _resource() -> dict[str, Any]:
    """The setting as ``az monitor autoscale show`` prints it: the resource itself."""
    body: dict[str, Any] = json.loads(EXAMPLE.read_text())["responses"]["200"]["body"]
    return body


def _import(tmp_path: Path, setting: dict[str, Any] | Path, *args: str) -> Any:
    if isinstance(setting, dict):
        path = tmp_path / "setting.json"
        path.write_text(json.dumps(setting))
    else:
        path = setting
    return CliRunner().invoke(main, ["import", "azure-autoscale", str(path), *args])


def test_microsofts_example_imports_to_a_valid_config(tmp_path: Path) -> None:
    result = _import(tmp_path, EXAMPLE)
    assert result.exit_code == 0, result.output
    out = tmp_path / "imported.toml"
    out.write_text(result.stdout)
    config = load_config(out)
    pool = config.pools[0]
    assert pool.resource_id.endswith("/virtualMachineScaleSets/testingsc")
    assert (pool.min, pool.max) == (1, 10)
    assert pool.behavior.missing_data_floor == 1
    assert config.azure.location == "westus"
    data = tomllib.loads(result.stdout)
    step, schedule = data["pools"][0]["policies"]
    assert step["type"] == "step"
    up, down = step["rules"]
    assert up == {
        "metric": "percent",
        "statistic": "average",
        "time_window_minutes": 5,
        "operator": ">",
        "threshold": 10.0,
        "direction": "increase",
        "change_count": 1,
        "cooldown_minutes": 5.0,
    }
    assert (down["direction"], down["change_count"], down["cooldown_minutes"]) == (
        "decrease",
        2,
        6.0,
    )
    # The fixed profile keeps its instants; the recurring one (starting Monday 05:15, .NET
    # DayOfWeek 1) runs until it starts again: the whole week, cut at midnights.
    fixed = [p for p in schedule["profiles"] if "start" in p]
    assert fixed == [
        {
            "name": "adios",
            "start": "2015-03-05T14:00:00+00:00",
            "end": "2015-03-05T14:30:00+00:00",
            "timezone": "UTC",
            "min": 1,
            "max": 10,
        }
    ]
    recurring = [p for p in schedule["profiles"] if "days" in p]
    minutes = sum(_span(p["from"], p["to"]) for p in recurring)
    assert minutes == 7 * 1440
    assert recurring[0]["days"] == ["mon"] and recurring[0]["from"] == "05:15"
    assert "predictive autoscale" in result.stdout  # said, not silently dropped


def _span(a: str, b: str) -> int:
    h1, m1 = map(int, a.split(":"))
    h2, m2 = map(int, b.split(":"))
    return (h2 * 60 + m2) - (h1 * 60 + m1)


def test_the_cli_json_of_the_resource_imports_the_same(tmp_path: Path) -> None:
    from_example = _import(tmp_path, EXAMPLE)
    from_resource = _import(tmp_path, _resource())
    assert from_resource.exit_code == 0
    assert from_resource.stdout == from_example.stdout


def _business_hours() -> dict[str, Any]:
    """A portal-style setting: weekday business hours plus the default condition after."""
    setting = _resource()
    profiles = setting["properties"]["profiles"]
    rules = profiles[1]["rules"]
    week = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]

    def recurring(name: str, hour: int, low: str, high: str) -> dict[str, Any]:
        return {
            "name": name,
            "capacity": {"minimum": low, "maximum": high, "default": "2"},
            "rules": copy.deepcopy(rules),
            "recurrence": {
                "frequency": "Week",
                "schedule": {
                    "timeZone": "W. Europe Standard Time",
                    "days": week,
                    "hours": [hour],
                    "minutes": [0],
                },
            },
        }

    setting["properties"]["profiles"] = [
        recurring("business", 8, "4", "12"),
        recurring('{"name":"Auto created default scale condition","for":"business"}', 18, "1", "6"),
    ]
    return setting


def test_recurring_profiles_become_weekly_windows_in_their_time_zone(tmp_path: Path) -> None:
    result = _import(tmp_path, _business_hours(), "--pool-name", "teams")
    assert result.exit_code == 0, result.output
    out = tmp_path / "c.toml"
    out.write_text(result.stdout)
    config = load_config(out)
    assert (config.pools[0].name, config.pools[0].min, config.pools[0].max) == ("teams", 1, 12)
    schedule = tomllib.loads(result.stdout)["pools"][0]["policies"][1]
    assert schedule["timezone"] == "Europe/Berlin"
    monday = [p for p in schedule["profiles"] if p["days"] == ["mon"]]
    # Friday 18:00's condition runs over the weekend until Monday 08:00.
    assert {(p["from"], p["to"], p["min"], p["max"]) for p in monday} == {
        ("00:00", "08:00", 1, 6),
        ("08:00", "18:00", 4, 12),
        ("18:00", "24:00", 1, 6),
    }
    saturday = [p for p in schedule["profiles"] if p["days"] == ["sat"]]
    assert [(p["from"], p["to"], p["min"]) for p in saturday] == [("00:00", "24:00", 1)]


def _edit(path: list[Any], value: Any) -> dict[str, Any]:
    setting = _resource()
    node: Any = setting
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return setting


RULE = ["properties", "profiles", 0, "rules", 0]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            _edit([*RULE, "metricTrigger", "metricName"], "Network In Total"),
            "properties.profiles[0].rules[0].metricTrigger.metricName: only the scale set's "
            "Percentage CPU",
        ),
        (
            _edit([*RULE, "metricTrigger", "operator"], "Equals"),
            "properties.profiles[0].rules[0].metricTrigger.operator: must be",
        ),
        (
            _edit([*RULE, "metricTrigger", "timeAggregation"], "Total"),
            "properties.profiles[0].rules[0].metricTrigger.timeAggregation: must be",
        ),
        (
            _edit([*RULE, "scaleAction", "type"], "ServiceAllowedNextValue"),
            "properties.profiles[0].rules[0].scaleAction.type: must be",
        ),
        (
            _edit(["properties", "targetResourceUri"], "/subscriptions/x/resourceGroups/r"),
            "properties.targetResourceUri: must be a virtual machine scale set id",
        ),
        (
            _edit([*RULE, "metricTrigger", "threshold"], 99.0),
            "properties.profiles[1].rules: differ from properties.profiles[0].rules",
        ),
        (
            _edit(
                ["properties", "profiles", 1, "recurrence", "schedule", "timeZone"],
                "Mars Standard Time",
            ),
            "properties.profiles[1].recurrence.schedule.timeZone: a time zone",
        ),
        (
            _edit(["properties", "profiles", 0, "capacity", "maximum"], "0"),
            "properties.profiles[0].capacity.maximum: must be >= minimum (1)",
        ),
    ],
)
def test_what_cannot_be_translated_exits_2_naming_the_json_path(
    tmp_path: Path, edit: dict[str, Any], problem: str
) -> None:
    result = _import(tmp_path, edit)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert any(line.startswith(f"import error: {problem}") for line in result.stderr.splitlines())


def test_a_file_that_is_not_a_setting_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    result = _import(tmp_path, path)
    assert result.exit_code == 2 and "autoscale setting has 'properties'" in result.stderr


def test_output_file_and_backtest_in_one_go(tmp_path: Path) -> None:
    """The imported setting is a config the backtest accepts next to another one."""
    out = tmp_path / "azure.toml"
    result = _import(tmp_path, EXAMPLE, "--output", str(out))
    assert result.exit_code == 0 and out.is_file()
    trace = tmp_path / "t.csv"
    lines = ["timestamp,pool,calls"]
    for minute in range(0, 3 * 1440, 1):
        day, rest = divmod(minute, 1440)
        calls = 60 if 8 * 60 <= rest < 17 * 60 else 5
        lines.append(f"2026-03-0{day + 2}T{rest // 60:02d}:{rest % 60:02d}:00Z,testingsc,{calls}")
    trace.write_text("\n".join(lines) + "\n")
    ran = CliRunner().invoke(
        main,
        ["backtest", "--config", str(out), "--trace", str(trace), "--json", "--warmup-days", "1"],
    )
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.stdout)
    assert report["pools"]["testingsc"]["call_minutes"] > 0
