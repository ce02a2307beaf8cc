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
import subprocess
import sys
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


def _import(tmp_path: Path, setting: Any, *args: str, predictive: bool = False) -> Any:
    """Run the command; Microsoft's example has predictive autoscale enabled, which is refused
    unless ``--without-predictive`` says to leave it out (``predictive=True`` keeps it)."""
    if isinstance(setting, dict | list):
        path = tmp_path / "setting.json"
        path.write_text(json.dumps(setting))
    else:
        path = setting
    extra = () if predictive else ("--without-predictive",)
    return CliRunner().invoke(main, ["import", "azure-autoscale", str(path), *args, *extra])


def test_microsofts_example_imports_to_a_valid_config(tmp_path: Path) -> None:
    result = _import(tmp_path, EXAMPLE)
    assert result.exit_code == 0, result.output
    out = tmp_path / "imported.toml"
    out.write_text(result.stdout)
    config = load_config(out)
    pool = config.pools[0]
    assert pool.resource_id.endswith("/virtualMachineScaleSets/testingsc")
    assert (pool.min, pool.max) == (1, 10)
    assert config.azure.location == "westus"  # "West US", in the form the APIs take
    # Azure has no stabilisation window, rate limit or tolerance
    behavior = pool.behavior.to_core()
    assert behavior.tolerance == 0.0
    for direction in (behavior.scale_up, behavior.scale_down):
        assert direction.stabilization_seconds == 0
        assert direction.max_instances is None and direction.max_percent is None
    assert (pool.metric.window_minutes, pool.metric.reduce, pool.metric.history_minutes) == (
        1,
        "mean",
        5,
    )
    data = tomllib.loads(result.stdout)
    step, schedule = data["pools"][0]["policies"]
    assert step["type"] == "step"
    up, down = step["rules"]
    assert up == {
        "metric": "percent",
        "statistic": "average",
        "time_window_minutes": 5,
        "time_grain_minutes": 1,
        "operator": ">",
        "threshold": 10.0,
        "direction": "increase",
        "change_count": 1,
        "cooldown_minutes": 5.0,
    }
    # the decrease rule's PT2M grain is kept, not dropped
    assert (down["direction"], down["change_count"], down["cooldown_minutes"]) == (
        "decrease",
        2,
        6.0,
    )
    assert down["time_grain_minutes"] == 2
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
            "missing_data_floor": 1,
        }
    ]
    recurring = [p for p in schedule["profiles"] if "days" in p]
    minutes = sum(_span(p["from"], p["to"]) for p in recurring)
    assert minutes == 7 * 1440
    assert recurring[0]["days"] == ["mon"] and recurring[0]["from"] == "05:15"
    assert "predictive autoscale" in result.stdout  # said, not silently dropped
    assert all(p["missing_data_floor"] == 1 for p in recurring)  # each profile's default


def _span(a: str, b: str) -> int:
    h1, m1 = map(int, a.split(":"))
    h2, m2 = map(int, b.split(":"))
    return (h2 * 60 + m2) - (h1 * 60 + m1)


def test_the_cli_json_of_the_resource_imports_the_same(tmp_path: Path) -> None:
    from_example = _import(tmp_path, EXAMPLE)
    from_resource = _import(tmp_path, _resource())
    assert from_resource.exit_code == 0
    assert from_resource.stdout == from_example.stdout


def weekday_profiles(
    rules: list[Any], business: tuple[str, str], night: tuple[str, str]
) -> list[Any]:
    """A portal-style pair (Learn, *Autoscale with multiple profiles*): a weekday profile from
    08:00 and the "Auto created default scale condition" that starts when it ends at 18:00, in
    W. Europe Standard Time; each profile's default is its minimum."""

    def recurring(name: str, hour: int, low: str, high: str) -> dict[str, Any]:
        return {
            "name": name,
            "capacity": {"minimum": low, "maximum": high, "default": low},
            "rules": copy.deepcopy(rules),
            "recurrence": {
                "frequency": "Week",
                "schedule": {
                    "timeZone": "W. Europe Standard Time",
                    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
                    "hours": [hour],
                    "minutes": [0],
                },
            },
        }

    default = '{"name":"Auto created default scale condition","for":"business"}'
    return [recurring("business", 8, *business), recurring(default, 18, *night)]


def _business_hours() -> dict[str, Any]:
    """A portal-style setting: weekday business hours plus the default condition after."""
    setting = _resource()
    rules = setting["properties"]["profiles"][1]["rules"]
    setting["properties"]["profiles"] = weekday_profiles(rules, ("4", "12"), ("1", "6"))
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
            "properties.profiles[1].recurrence.schedule.timeZone: a Windows time zone name",
        ),
        (
            _edit(["properties", "profiles", 0, "capacity", "maximum"], "0"),
            "properties.profiles[0].capacity.maximum: must be >= minimum (1)",
        ),
        (
            _edit(
                [*RULE, "metricTrigger", "dimensions"],
                [{"DimensionName": "VMName", "Operator": "Equals", "Values": ["vm1"]}],
            ),
            "properties.profiles[0].rules[0].metricTrigger.dimensions[0]: a rule on some "
            "instances only has no equivalent",
        ),
        (
            _edit([*RULE, "metricTrigger", "timeGrain"], "PT10M"),
            "properties.profiles[0].rules[0].metricTrigger.timeGrain: must not be longer than "
            "timeWindow",
        ),
        (
            _edit([*RULE, "metricTrigger", "statistic"], "Max"),
            "properties.profiles[0].rules[0].metricTrigger.statistic: only Average",
        ),
        (
            _edit([*RULE, "metricTrigger", "aggregationType"], "Sum"),
            "properties.profiles[0].rules[0].metricTrigger.aggregationType: not a field",
        ),
        (
            _edit(["properties", "profiles", 0, "fixedDate", "end"], "2015-03-05T13:00:00Z"),
            "properties.profiles[0].fixedDate.end: must be after start",
        ),
        (
            _edit(["properties", "profiles", 0, "capacity", "default"], "11"),
            "properties.profiles[0].capacity.default: must be within minimum and maximum",
        ),
        (
            _edit(["properties", "profiles", 1, "recurrence", "frequency"], "Day"),
            "properties.profiles[1].recurrence.frequency: must be Week",
        ),
        (
            _edit([*RULE, "scaleAction", "value"], "2000"),
            "properties.profiles[0].rules[0].scaleAction.value: must be a number of instances",
        ),
        (
            _edit(["location"], "West Eurpoe"),
            "location: is not an Azure region (did you mean 'westeurope'?)",
        ),
    ],
)
def test_what_cannot_be_translated_exits_2_naming_the_json_path(
    tmp_path: Path, edit: dict[str, Any], problem: str
) -> None:
    result = _import(tmp_path, edit)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"import error: {problem}") for line in lines), lines


def test_a_file_that_is_not_a_setting_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    result = _import(tmp_path, path)
    assert result.exit_code == 2 and "no autoscale setting found" in result.stderr


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


# -- the shapes a setting comes in --------------------------------------------------------------


def _az_shape(resource: dict[str, Any]) -> dict[str, Any]:
    """``az monitor autoscale show`` prints the setting with ``properties`` flattened to the top
    level, ``namePropertiesName`` and ``resourceGroup`` beside them, nulls for what is unset and
    thresholds as strings (Microsoft's tutorial "Automatically scale a Virtual Machine Scale Set
    with the Azure CLI", az output of ``autoscale create`` / ``autoscale rule create``)."""
    props = copy.deepcopy(resource["properties"])
    flat: dict[str, Any] = {k: v for k, v in resource.items() if k != "properties"}
    flat.update(props)
    flat["namePropertiesName"] = flat.pop("name", resource["name"])
    flat["name"] = resource["name"]
    flat["resourceGroup"] = "TestingMetricsScaleSet"
    flat["systemData"] = None
    flat["targetResourceLocation"] = None
    for profile in flat["profiles"]:
        profile.setdefault("fixedDate", None)
        profile.setdefault("recurrence", None)
        for rule in profile["rules"]:
            trigger = rule["metricTrigger"]
            trigger["threshold"] = str(int(trigger["threshold"]))
            trigger.update({"dimensions": [], "metricNamespace": None})
            trigger.update({"metricResourceLocation": None, "dividePerInstance": None})
    return flat


def _config_part(text: str) -> str:
    return text[text.index("[azure]") :]


def test_the_az_cli_shape_imports_like_the_arm_resource(tmp_path: Path) -> None:
    arm = _import(tmp_path, _resource())
    az = _import(tmp_path, _az_shape(_resource()))
    assert az.exit_code == 0, az.output
    assert _config_part(az.stdout) == _config_part(arm.stdout)


def test_errors_in_the_az_shape_name_its_own_paths(tmp_path: Path) -> None:
    setting = _az_shape(_resource())
    setting["profiles"][0]["rules"][0]["metricTrigger"]["operator"] = "Equals"
    result = _import(tmp_path, setting)
    assert result.exit_code == 2
    assert "import error: profiles[0].rules[0].metricTrigger.operator: must be" in result.stderr


def test_a_list_needs_name_to_choose(tmp_path: Path) -> None:
    """``az monitor autoscale list`` prints a list; ``--name`` picks the setting."""
    first, second = _az_shape(_resource()), _az_shape(_resource())
    second["name"] = "Other"
    second["profiles"][0]["capacity"]["maximum"] = "12"
    second["profiles"][1]["capacity"]["maximum"] = "12"
    many = _import(tmp_path, [first, second])
    assert many.exit_code == 2
    assert "holds 2 autoscale settings ('MySetting', 'Other'); choose one with --name" in (
        many.stderr
    )
    chosen = _import(tmp_path, [first, second], "--name", "other")
    assert chosen.exit_code == 0, chosen.output
    assert "max = 12" in chosen.stdout
    missing = _import(tmp_path, [first, second], "--name", "nope")
    assert missing.exit_code == 2 and "no setting is named 'nope'" in missing.stderr


def test_the_rest_list_example_and_an_arm_template(tmp_path: Path) -> None:
    """The REST example ``listAutoscaleSetting.json`` (``responses.200.body.value``, with a
    ``nextLink``) and an ARM template's ``resources`` (Learn, *Autoscale with multiple
    profiles*: ``Microsoft.Insights/autoscaleSettings`` among other resources)."""
    listed = {
        "parameters": {"api-version": "2022-10-01"},
        "responses": {"200": {"body": {"value": [_resource()], "nextLink": "https://x"}}},
    }
    result = _import(tmp_path, listed)
    assert result.exit_code == 0, result.output
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "resources": [
            {"type": "Microsoft.Compute/virtualMachineScaleSets", "name": "testingsc"},
            {**_resource(), "apiVersion": "2015-04-01"},
        ],
    }
    from_template = _import(tmp_path, template)
    assert from_template.exit_code == 0, from_template.output
    assert _config_part(from_template.stdout) == _config_part(result.stdout)


def test_the_region_is_the_scale_sets(tmp_path: Path) -> None:
    """The setting's own location "can be different from the location of the resource being
    scaled" (Learn, *Understand autoscale settings*): ``targetResourceLocation`` wins."""
    setting = _resource()
    setting["properties"]["targetResourceLocation"] = "North Europe"
    result = _import(tmp_path, setting)
    assert result.exit_code == 0, result.output
    assert 'location = "northeurope"' in result.stdout
    assert "taken from the setting's location" not in result.stdout


def test_predictive_autoscale_is_refused_unless_left_out_on_purpose(tmp_path: Path) -> None:
    result = _import(tmp_path, EXAMPLE, predictive=True)
    assert result.exit_code == 2
    assert (
        "import error: responses.200.body.properties.predictiveAutoscalePolicy.scaleMode: "
        "predictive autoscale scales out ahead of the rules" in result.stderr
    )


def test_dimensions_that_keep_every_instance_read_the_whole_scale_set(tmp_path: Path) -> None:
    every = [{"DimensionName": "VMName", "Operator": "Equals", "Values": ["*"]}]
    result = _import(tmp_path, _edit([*RULE, "metricTrigger", "dimensions"], every))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--pool-name", 'x"]\n[daemon]'), "import error: --pool-name: must be 1-63 letters"),
        # click's own check of every numeric option (a float that is not finite)
        (("--calls-per-instance", "nan"), "'--calls-per-instance': 'nan' is not a finite number"),
    ],
)
def test_hostile_options_exit_2(tmp_path: Path, args: tuple[str, ...], problem: str) -> None:
    result = _import(tmp_path, EXAMPLE, *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert problem in result.stderr


def test_what_the_loader_would_refuse_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output goes through the loader ``validate`` uses before it is written: a
    translation the loader refuses (here one made so on purpose) exits 2 and writes nothing."""
    import scaler.importers

    real = scaler.importers.translate

    def broken(*args: Any, **kwargs: Any) -> str:
        return real(*args, **kwargs).replace("min = 1\n", "min = 11\n", 1)

    monkeypatch.setattr(scaler.importers, "translate", broken)
    out = tmp_path / "out.toml"
    result = _import(tmp_path, EXAMPLE, "--output", str(out))
    assert result.exit_code == 2
    assert "import error: the imported config would be refused: pools[0].max" in result.stderr
    assert not out.exists()


# -- hardening: the command as a process, no traceback -------------------------------------------


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaler", "import", "azure-autoscale", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def test_dev_zero_is_refused_by_its_size() -> None:
    proc = _run("/dev/zero")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "import error: /dev/zero: larger than the limit of 4194304 bytes (4 MiB); an autoscale "
        "setting is a few kilobytes"
    )


def test_deeply_nested_json_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    proc = _run(str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("not an autoscale setting (JSON nested too deeply)")


def test_an_unwritable_output_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = _run(str(EXAMPLE), "--without-predictive", "--output", str(tmp_path / "no" / "x.toml"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("import error: --output: ")
    assert lines[0].endswith("No such file or directory")


def test_standard_input(tmp_path: Path) -> None:
    proc = _run("-", "--without-predictive", stdin=json.dumps(_az_shape(_resource())))
    assert proc.returncode == 0, proc.stderr
    assert 'name = "testingsc"' in proc.stdout
