"""``validate`` finds what start-up would: region names in the form the APIs take, resources in
the configured subscriptions, the secrets the file names, and every problem in one report."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from scaler.cli import main
from tests.conftest import SUB, config_doc, pool_table, vmss_id

OTHER = "11111111-2222-3333-4444-555555555555"


def toml_of(doc: dict[str, Any]) -> str:
    """A small TOML writer for the test documents (tables, arrays of tables, scalars)."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return json.dumps(v)

    lines: list[str] = []
    for key, section in doc.items():
        if isinstance(section, list):
            for table in section:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {value(v)}" for k, v in table.items()]
        else:
            lines.append(f"[{key}]")
            lines += [f"{k} = {value(v)}" for k, v in section.items()]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)
    return text


def validate(tmp_path: Path, doc: dict[str, Any], *args: str, env: dict[str, str] | None = None):
    path = tmp_path / "c.toml"
    path.write_text(toml_of(doc))
    environ = {"CVI_AUTOSCALER_PEXIP_PASSWORD": ""} | (env or {})
    return CliRunner().invoke(main, ["validate", "--config", str(path), *args], env=environ)


def errors(result: Any) -> list[str]:
    return [line.removeprefix("config error: ") for line in result.stderr.splitlines()]


def test_a_display_name_region_is_refused_with_the_name_to_use(tmp_path: Path) -> None:
    doc = config_doc(pool_table())
    doc["azure"]["location"] = "West Europe"
    result = validate(tmp_path, doc)
    assert result.exit_code == 2
    assert errors(result) == [
        "azure.location: must be the region's programmatic name (lower case, no spaces) "
        "(did you mean 'westeurope'?), got \"West Europe\""
    ]


def test_a_misspelt_region_gets_a_did_you_mean(tmp_path: Path) -> None:
    result = validate(tmp_path, config_doc(pool_table(location="westeurpoe")))
    assert result.exit_code == 2
    assert errors(result) == [
        "pools[0].location: is not an Azure region (did you mean 'westeurope'?), got \"westeurpoe\""
    ]


def test_a_region_this_release_does_not_know_is_accepted(tmp_path: Path) -> None:
    """New regions open every year and Azure Stack Hub names its own: a well-formed name far
    from every known one passes."""
    result = validate(tmp_path, config_doc(pool_table(location="redmondlab")))
    assert result.exit_code == 0, result.output


def test_a_resource_in_another_subscription_must_be_named(tmp_path: Path) -> None:
    rid = vmss_id("tc").replace(SUB, OTHER)
    result = validate(tmp_path, config_doc(pool_table(resource_id=rid)))
    assert result.exit_code == 2
    (line,) = errors(result)
    assert line.startswith(
        f"pools[0].resource_id: in subscription {OTHER}, which is neither "
        f"azure.subscription_id ({SUB}) nor in azure.subscriptions"
    )
    doc = config_doc(pool_table(resource_id=rid))
    doc["azure"]["subscriptions"] = [OTHER]
    assert validate(tmp_path, doc).exit_code == 0


def test_a_metric_resource_in_another_subscription_is_found_too(tmp_path: Path) -> None:
    metric = dict(pool_table()["metric"], resource_id=vmss_id("x").replace(SUB, OTHER))
    result = validate(tmp_path, config_doc(pool_table(metric=metric)))
    assert result.exit_code == 2
    assert errors(result)[0].startswith("pools[0].metric.resource_id: in subscription")


PEXIP = {"url": "https://mgr.example.com", "username": "admin"}


def test_the_management_node_password_must_be_there_unless_offline(tmp_path: Path) -> None:
    doc = config_doc(pool_table(), pexip=dict(PEXIP))
    missing = validate(tmp_path, doc)
    assert missing.exit_code == 2
    assert errors(missing) == [
        "pexip.password_env: the environment variable CVI_AUTOSCALER_PEXIP_PASSWORD is empty "
        "(or set pexip.password_file), got '' (validate --offline leaves the secrets out)"
    ]
    assert validate(tmp_path, doc, "--offline").exit_code == 0
    there = validate(tmp_path, doc, env={"CVI_AUTOSCALER_PEXIP_PASSWORD": "s3cret"})
    assert there.exit_code == 0, there.output
    assert "s3cret" not in there.output


def test_every_problem_in_one_report(tmp_path: Path) -> None:
    """Four problems of four kinds — a region's display name, a resource in a subscription
    not configured, a missing password variable and a bad policy option — all in one run."""
    rid = vmss_id("tc").replace(SUB, OTHER)
    pool = pool_table(
        resource_id=rid, policies=[{"type": "target-tracking", "target_utilization": 2.0}]
    )
    doc = config_doc(pool, pexip=dict(PEXIP))
    doc["azure"]["location"] = "West Europe"
    result = validate(tmp_path, doc)
    assert result.exit_code == 2
    found = errors(result)
    for start in (
        "azure.location: must be the region's programmatic name",
        "pools[0].resource_id: in subscription",
        "pools[0].policies[0].target_utilization:",
        "pexip.password_env: the environment variable",
    ):
        assert any(line.startswith(start) for line in found), (start, found)
    assert len(found) == 4, found


@pytest.mark.parametrize("where", ["azure", "pool"])
def test_start_up_refuses_what_validate_refuses(tmp_path: Path, where: str) -> None:
    """The region and subscription checks are the loader's: ``run`` and ``once`` exit 2 on
    them before anything is sent to Azure."""
    doc = config_doc(pool_table())
    if where == "azure":
        doc["azure"]["location"] = "West Europe"
    else:
        doc["pools"][0]["resource_id"] = vmss_id("tc").replace(SUB, OTHER)
    path = tmp_path / "c.toml"
    path.write_text(toml_of(doc))
    result = CliRunner().invoke(main, ["once", "--config", str(path), "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr.startswith("config error: ")
