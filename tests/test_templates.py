"""Fleets in one file: ``[pool_defaults]`` and ``[templates.NAME]`` fill the keys a pool leaves
unset, and a problem with a shared value is reported once, where it was written."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from scaler.config import MAX_CONFIG_BYTES, load_config, parse_config, read_config_text
from scaler.errors import ConfigError
from tests.conftest import SUB, pool_table, vmss_id

ROOT = Path(__file__).resolve().parent.parent


def _problems(doc: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, environ=environ or {})
    return info.value.problems


def _shared() -> dict[str, Any]:
    return {
        "azure": {"subscription_id": SUB, "location": "westeurope"},
        "pool_defaults": {
            "vcpus_per_instance": 4,
            "calls_per_instance": 15,
            "behavior": {"scale_down": {"stabilization_seconds": 300, "max_percent": 50}},
        },
        "templates": {
            "teams": {
                "min": 1,
                "max": 20,
                # the metric the fakes serve, lag 2 minutes
                "metric": pool_table()["metric"],
                "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
            }
        },
    }


def _pool(name: str, **own: Any) -> dict[str, Any]:
    return {"name": name, "template": "teams", "resource_id": vmss_id(name), **own}


def test_a_pool_takes_defaults_then_its_template_then_its_own_keys() -> None:
    doc = _shared()
    doc["pools"] = [
        _pool("a"),
        _pool(
            "b",
            max=6,
            metric={"lag_minutes": 4},
            behavior={"scale_down": {"max_percent": 100}},
            policies=[{"type": "target-tracking", "target_utilization": 0.6}],
        ),
    ]
    a, b = parse_config(doc, environ={}).pools
    assert (a.template, a.vcpus_per_instance, a.min, a.max) == ("teams", 4, 1, 20)
    assert (a.metric.namespace, a.metric.lag_minutes) == ("Pexip/CVI", 2)
    assert a.behavior.scale_down.stabilization_seconds == 300
    assert a.policies == [{"type": "target-tracking", "target_utilization": 0.8}]
    # tables merge key by key; a list is replaced as a whole
    assert (b.max, b.metric.namespace, b.metric.lag_minutes) == (6, "Pexip/CVI", 4)
    assert (b.behavior.scale_down.stabilization_seconds, b.behavior.scale_down.max_percent) == (
        300,
        100,
    )
    assert b.policies == [{"type": "target-tracking", "target_utilization": 0.6}]
    # a pool's own table never leaks into the template or the other pools
    assert doc["templates"]["teams"]["metric"]["lag_minutes"] == 2


def test_pool_defaults_alone_serve_pools_without_a_template() -> None:
    doc = _shared()
    doc["pools"] = [
        {
            "name": "solo",
            "resource_id": vmss_id("solo"),
            "min": 2,
            "max": 3,
            "policies": [{"type": "target-tracking"}],
        }
    ]
    (pool,) = parse_config(doc, environ={}).pools
    assert (pool.template, pool.vcpus_per_instance, pool.min) == ("", 4, 2)


def test_a_bad_shared_value_is_reported_once_where_it_was_written() -> None:
    doc = _shared()
    doc["templates"]["teams"]["policies"][0]["target_utilization"] = 1.8
    doc["pools"] = [_pool(f"p{i}") for i in range(5)] + [
        _pool("own", policies=[{"type": "target-tracking", "target_utilization": 2.0}])
    ]
    found = _problems(doc)
    assert found == [
        "templates.teams.policies[0].target_utilization: input should be less than or equal "
        "to 1, got 1.8 (in pools[0] p0, pools[1] p1, pools[2] p2 and 2 more)",
        "pools[5].policies[0].target_utilization: input should be less than or equal to 1, got 2.0",
    ]


def test_an_inherited_value_set_from_the_environment_names_the_variable() -> None:
    doc = _shared()
    doc["pools"] = [_pool("a")]
    found = _problems(doc, {"CVI_AUTOSCALER__TEMPLATES__TEAMS__MIN": "-1"})
    assert found == [
        "templates.teams.min: input should be greater than or equal to 0, got -1 "
        "(in pools[0] a) (from environment variable CVI_AUTOSCALER__TEMPLATES__TEAMS__MIN)"
    ]


def test_an_unknown_template_and_misplaced_keys_are_named() -> None:
    doc = _shared()
    doc["pool_defaults"]["vcpus_per_instanse"] = 4
    doc["templates"]["teams"]["name"] = "x"
    doc["pools"] = [_pool("a"), _pool("b", template="team")]
    found = _problems(doc)
    assert (
        "pool_defaults.vcpus_per_instanse: unknown key (did you mean 'vcpus_per_instance'?)"
        in found
    )
    assert (
        "templates.teams.name: a pool's own name is set in [[pools]] only, not in shared "
        "tables" in found
    )
    assert "pools[1].template: must name a [templates.NAME] table (known: teams), got 'team'" in (
        found
    )


def test_shared_tables_must_be_tables() -> None:
    doc = _shared()
    doc["pool_defaults"] = [1]
    doc["templates"] = {"teams": "x"}
    doc["pools"] = [_pool("a")]
    found = _problems(doc)
    assert "pool_defaults: must be a table of [[pools]] keys, got an array" in found
    assert "templates.teams: must be a table of [[pools]] keys, got a string" in found


RECOMMENDED = ROOT / "examples" / "recommended.toml"


def _recommended_fleet(n: int) -> str:
    """``n`` pools of the recommended shape, each written out in full, comments and all."""
    text = RECOMMENDED.read_text(encoding="utf-8")
    head, _, rest = text.partition("[[pools]]")
    pool = "[[pools]]" + rest.split("[[pools]]")[1]
    body = [
        pool.replace("teams-connector-us", f"tc{i:04d}").replace("cvi-teams-us", f"proxy{i:04d}")
        for i in range(n)
    ]
    return head + "".join(body)


def test_five_thousand_pools_of_the_recommended_shape_fit_the_size_limit(tmp_path: Path) -> None:
    text = _recommended_fleet(5000)
    assert len(text.encode()) < MAX_CONFIG_BYTES
    path = tmp_path / "fleet.toml"
    path.write_text(text, encoding="utf-8")
    assert read_config_text(path) == text
    assert len(tomllib.loads(text)["pools"]) == 5000


def test_the_fleet_example_is_the_recommended_set_written_once(tmp_path: Path) -> None:
    fleet = load_config(
        ROOT / "examples" / "fleet.toml", environ={"CVI_AUTOSCALER_PEXIP_PASSWORD": "x"}
    )
    recommended = load_config(RECOMMENDED, environ={"CVI_AUTOSCALER_PEXIP_PASSWORD": "x"})
    shape = recommended.pools[0].model_dump(
        exclude={"name", "teams_proxy", "resource_id", "location", "template"}
    )
    for pool in fleet.pools:
        mine = pool.model_dump(exclude={"name", "teams_proxy", "resource_id", "location"})
        mine.pop("template")
        # the example's pools differ from the recommended one only in their place and zone
        for part in (mine["policies"][0]["policies"], shape["policies"][0]["policies"]):
            for policy in part:
                policy.pop("timezone", None)
        if pool.name == "teams-connector-manchester":  # the example's own override
            assert mine.pop("max") == 30
            mine["max"] = shape["max"]
        assert mine == shape, pool.name


def test_validate_reads_a_templated_fleet_of_a_thousand_pools(tmp_path: Path) -> None:
    fleet_sub = "/subscriptions/00000000-0000-0000-0000-000000000000"  # examples/fleet.toml's
    lines = [
        (ROOT / "examples" / "fleet.toml").read_text(encoding="utf-8").split("\n[[pools]]\n")[0]
    ]
    for i in range(1000):
        lines.append(
            f'\n[[pools]]\nname = "tc{i:04d}"\ntemplate = "teams-uk"\nteams_proxy = "tc{i:04d}"\n'
            f'resource_id = "{fleet_sub}/resourceGroups/rg{i % 10}/providers/'
            f'Microsoft.Compute/virtualMachineScaleSets/tc{i:04d}"\n'
        )
    path = tmp_path / "fleet.toml"
    path.write_text("".join(lines), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "scaler", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        env={"CVI_AUTOSCALER_PEXIP_PASSWORD": "x", "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: valid; 1000 pool(s): tc0000 (1-20), ")
    assert done.stdout.rstrip().endswith("tc0019 (1-20) and 980 more")
