"""Configuration: every bad value is named with its key path; environment overrides work."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler.config import load_config, parse_config
from scaler.errors import ConfigError
from tests.conftest import SUB, config_doc, pool_table, vmss_id


def problems(doc, environ=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, environ=environ or {})
    return info.value.problems


def test_valid_config_builds_policies_and_limits() -> None:
    config = parse_config(config_doc(), environ={})
    pool = config.pools[0]
    assert [p.name for p in pool.policies_built] == ["target-tracking"]
    assert pool.resource_group == "cvi" and pool.scale_set_name == "tc"
    assert config.pool_limits()[0].location == "westeurope"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (config_doc(pool_table(min=2, max=1)), "pools[0].max: must be >= min (2), got 1"),
        (
            config_doc(pool_table("a"), pool_table("b", min=2, max=1)),
            "pools[1].max: must be >= min (2), got 1",
        ),
        (config_doc(pool_table(vcpus_per_instance=0)), "pools[0].vcpus_per_instance:"),
        (
            config_doc(pool_table(resource_id="/nope")),
            "pools[0].resource_id: must be a scale set id",
        ),
        (config_doc(pool_table(kind="aks")), "pools[0].kind:"),
        (config_doc(pool_table(maxx=3)), "pools[0].maxx: unknown key"),
        (config_doc(pool_table(policies=[])), "pools[0].policies:"),
        (
            config_doc(pool_table(policies=[{"type": "nope"}])),
            "pools[0].policies[0].type: unknown policy 'nope'",
        ),
        (
            config_doc(pool_table(policies=[{"type": "target-tracking", "target_utilization": 2}])),
            "pools[0].policies[0].target_utilization: input should be less than or equal to 1",
        ),
        (
            config_doc(pool_table(policies=[{"type": "target-tracking"}] * 2)),
            "pools[0].policies: policy 'target-tracking' is listed twice",
        ),
        (config_doc(pool_table("x"), pool_table("x")), "pools[1].name: duplicate of pools[0].name"),
        (
            config_doc(pool_table(metric={"aggregation": "Median"})),
            "pools[0].metric.aggregation:",
        ),
        (config_doc(daemon={"interval_seconds": 0}), "daemon.interval_seconds:"),
        (
            config_doc(azure={"subscription_id": SUB, "location": "x", "metrics_url": "http://a"}),
            "azure.metrics_url: must be an https:// URL",
        ),
        (
            config_doc(
                azure={"subscription_id": SUB, "location": "x", "credential": "static-token"}
            ),
            "azure.credential: static-token is accepted only with non-public",
        ),
        (
            config_doc(azure={"subscription_id": "not-a-guid", "location": "x"}),
            'azure.subscription_id: must be a subscription GUID, got "not-a-guid"',
        ),
        (
            config_doc(
                pool_table(resource_id=vmss_id("tc").replace(SUB, SUB[:-1] + "9")),
            ),
            "pools[0].resource_id: must be in azure.subscription_id",
        ),
        ({"azure": {"location": "x"}}, "pools: required key is missing"),
    ],
)
def test_bad_values_are_named_with_their_key_path(doc, expected: str) -> None:
    found = problems(doc)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(config_doc(pool_table(min=-1, vcpus_per_instance=0, quota_family="")))
    assert len(found) == 3


def test_environment_overrides_any_key(tmp_path: Path) -> None:
    doc = config_doc()
    env = {
        "CVI_AUTOSCALER__AZURE__LOCATION": "northeurope",
        "CVI_AUTOSCALER__POOLS__0__MAX": "7",
        "CVI_AUTOSCALER__DAEMON__DRY_RUN": "true",
        "CVI_AUTOSCALER__POOLS__0__METRIC__NAME": "Percentage CPU",
        "UNRELATED": "1",
    }
    config = parse_config(doc, environ=env)
    assert config.azure.location == "northeurope"
    assert config.pools[0].max == 7
    assert config.daemon.dry_run is True
    assert config.pools[0].metric.name == "Percentage CPU"


def test_bad_environment_override_names_the_variable() -> None:
    found = problems(config_doc(), {"CVI_AUTOSCALER__POOLS__3__MAX": "7"})
    assert found[0].startswith("CVI_AUTOSCALER__POOLS__3__MAX: no list item '3'")
    found = problems(config_doc(), {"CVI_AUTOSCALER__POOLS__0__MAX": "lots"})
    assert found == [
        "pools[0].max: input should be a valid integer, unable to parse string as an integer, "
        'got "lots"'
    ]


def test_static_token_needs_private_endpoints_and_the_variable() -> None:
    azure = {
        "subscription_id": SUB,
        "location": "x",
        "resource_manager_url": "https://127.0.0.1:8443",
        "metrics_url": "https://127.0.0.1:8443",
        "credential": "static-token",
    }
    found = problems(config_doc(azure=azure))
    assert found == [
        "azure.credential: static-token needs the environment variable "
        "CVI_AUTOSCALER_STATIC_TOKEN, got 'static-token'"
    ]
    import os

    os.environ["CVI_AUTOSCALER_STATIC_TOKEN"] = "t"
    try:
        assert parse_config(config_doc(azure=azure), environ={}).azure.credential == "static-token"
    finally:
        del os.environ["CVI_AUTOSCALER_STATIC_TOKEN"]


def test_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[daemon\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_bundled_examples_are_valid() -> None:
    root = Path(__file__).resolve().parent.parent
    for path in [*sorted((root / "examples").glob("*.toml")), root / "scaler/data/demo.toml"]:
        load_config(path, environ={})
