"""Configuration: every bad value is named with its key path; environment overrides work."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler.config import MAX_CONFIG_BYTES, load_config, parse_config
from scaler.errors import ConfigError
from scaler.policyset import build_policies
from tests.conftest import SUB, config_doc, pool_table, vmss_id


def problems(doc, environ=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, environ=environ or {})
    return info.value.problems


def test_valid_config_builds_policies_and_limits() -> None:
    config = parse_config(config_doc(), environ={})
    pool = config.pools[0]
    assert [p.name for p in build_policies(pool)] == ["target-tracking"]
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
        ({"azure": {"location": "x"}}, "pools: required key is missing"),
    ],
)
def test_bad_values_are_named_with_their_key_path(doc, expected: str) -> None:
    found = problems(doc)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(config_doc(pool_table(min=-1, vcpus_per_instance=0, calls_per_instance=0)))
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
        'got "lots" (from environment variable CVI_AUTOSCALER__POOLS__0__MAX)'
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
    paths = [*sorted((root / "examples").glob("*.toml")), root / "scaler/data/demo.toml"]
    assert len(paths) >= 5
    for path in paths:
        config = load_config(path, environ={})
        # every example configures at least one pool, each with a policy and a sane size range
        assert config.pools, path
        for pool in config.pools:
            assert pool.policies and 0 <= pool.min <= pool.max, (path, pool.name)


# -- reading the file: every failure is a ConfigError (exit 2, SIGHUP reload rejected) ---------


def test_non_utf8_config_names_the_file_offset_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[azure]\nlocation = "westeurope"\n# caf\xe9\n')
    with pytest.raises(ConfigError) as info:
        load_config(bad, environ={})
    assert info.value.problems == [
        f"{bad}: not UTF-8 text: byte 0xe9 at offset 37 (line 3, column 6)"
    ]


def test_only_regular_files_of_bounded_size_are_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="/dev/zero: not a regular file"):
        load_config("/dev/zero", environ={})
    with pytest.raises(ConfigError, match="a directory"):
        load_config(tmp_path, environ={})
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    with pytest.raises(ConfigError, match="larger than the limit of 16777216 bytes"):
        load_config(big, environ={})


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo, environ={})


def test_deeply_nested_toml_is_a_config_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(deep, environ={})


# -- accepted but wrong -----------------------------------------------------------------------


def _pem(tmp_path: Path) -> Path:
    from tests.tls import write_certificate

    return Path(write_certificate(tmp_path, "cfg")[0])


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            config_doc(daemon={"interval_seconds": True}),
            "daemon.interval_seconds: must be a number, not a boolean, got true",
        ),
        (
            config_doc(pool_table(max=True)),
            "pools[0].max: must be a number, not a boolean, got true",
        ),
        (
            config_doc(pool_table(behavior={"scale_up": {"max_percent": False}})),
            "pools[0].behavior.scale_up.max_percent: must be a number, not a boolean",
        ),
        (
            config_doc(
                pool_table(policies=[{"type": "target-tracking", "target_utilization": True}])
            ),
            "pools[0].policies[0].target_utilization: must be a number, not a boolean",
        ),
        (
            config_doc(
                pool_table(
                    policies=[{"type": "schedule", "profiles": [{"days": "all", "min": True}]}]
                )
            ),
            "pools[0].policies[0].profiles[0].min: must be a number, not a boolean",
        ),
        (
            config_doc(
                pool_table(
                    policies=[
                        {
                            "type": "composite",
                            "policies": [{"type": "target-tracking", "target_utilization": True}],
                        }
                    ]
                )
            ),
            "pools[0].policies[0].policies[0].target_utilization: must be a number",
        ),
        (config_doc(http={"port": True}), "http.port: must be a number, not a boolean"),
        (
            config_doc(pool_table(max=2**63 - 1)),
            "pools[0].max: input should be less than or equal to 1000",
        ),
        (
            config_doc(daemon={"once_wait_seconds": float("inf")}),
            "daemon.once_wait_seconds: input should be less than or equal to 86400",
        ),
        (
            config_doc(
                pool_table(
                    max=5,
                    policies=[
                        {
                            "type": "schedule",
                            "profiles": [{"days": "all", "from": "08:00", "to": "18:00", "min": 8}],
                        }
                    ],
                )
            ),
            "pools[0].policies[0].profiles[0].min: above the pool's max (5), got 8",
        ),
        (
            config_doc(
                pool_table(max=5, policies=[{"type": "schedule", "default_min": 6}]),
            ),
            "pools[0].policies[0].default_min: above the pool's max (5), got 6",
        ),
        (
            config_doc(pool_table(max=5, behavior={"missing_data_floor": 9})),
            "pools[0].behavior.missing_data_floor: above the pool's max (5), got 9",
        ),
        (
            config_doc(pool_table("a"), pool_table("b", resource_id=vmss_id("a").upper())),
            "pools[1].resource_id: same scale set as pools[0]",
        ),
        (
            config_doc(azure={"subscription_id": SUB, "location": "x", "ca_bundle": "/etc/passwd"}),
            "azure.ca_bundle: not a PEM certificate bundle (NO_CERTIFICATE_OR_CRL_FOUND), "
            'got "/etc/passwd"',
        ),
        (
            config_doc(pexip={"url": "https://mgr", "ca_bundle": "/etc/hostname"}),
            "pexip.ca_bundle: not a PEM certificate bundle",
        ),
        (
            config_doc(daemon={"state_dir": "/etc/passwd"}),
            'daemon.state_dir: must be a directory; it is a file, got "/etc/passwd"',
        ),
        (
            config_doc(daemon={"state_dir": "/etc/passwd/state"}),
            "daemon.state_dir: must be a directory; it is inside '/etc/passwd', which is a file",
        ),
    ],
)
def test_accepted_but_wrong_values_are_refused(doc, expected: str) -> None:
    found = problems(doc)
    assert any(p.startswith(expected) for p in found), found


def test_ints_still_fill_float_fields_and_real_pem_bundles_pass(tmp_path: Path) -> None:
    pem = _pem(tmp_path)
    config = parse_config(
        config_doc(
            daemon={"interval_seconds": 15, "state_dir": str(tmp_path / "new" / "state")},
            azure={"subscription_id": SUB, "location": "westeurope", "ca_bundle": str(pem)},
        ),
        environ={},
    )
    assert config.daemon.interval_seconds == 15.0
    assert config.azure.ca_bundle == pem


# -- secrets never echoed; unknown keys get a suggestion; env overrides are named --------------

ACCOUNT_KEY = "Zm9vYmFyYmF6cXV4c2VjcmV0a2V5MTIzNDU2Nzg5MA=="
CONN = (
    "DefaultEndpointsProtocol=https;AccountName=acct;"
    f"AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
)


def test_a_misspelt_secret_key_from_the_environment_does_not_echo_its_value() -> None:
    env = {"CVI_AUTOSCALER__HA__CONECTION_STRING": CONN}
    found = problems(config_doc(), env)
    assert found == [
        "ha.conection_string: unknown key (did you mean 'connection_string'?) "
        "(from environment variable CVI_AUTOSCALER__HA__CONECTION_STRING)"
    ]


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (config_doc(pool_table(maxx="s3cr3t-value")), "pools[0].maxx"),
        (config_doc(ha={"connection_string": ["s3cr3t-value"]}), "ha.connection_string"),
        (config_doc(pexip={"password_env": 7, "url": "https://m"}), "pexip.password_env"),
        (config_doc(ha={"account_url": "http://a/?sv=1&sig=s3cr3t-value"}), "ha.account_url"),
        (
            config_doc(
                ha={"enabled": True, "account_url": "https://a.blob/?sv=1&sig=s3cr3t-value"},
                **{"x_api_key": "s3cr3t-value"},
            ),
            "x_api_key",
        ),
        (config_doc(azure={"subscription_id": "AccountKey=s3cr3t-value"}), "azure.subscription_id"),
    ],
)
def test_secret_looking_values_never_appear_in_errors(doc, key: str) -> None:
    found = problems(doc)
    assert any(p.startswith(key) for p in found), found
    assert not any("s3cr3t" in p for p in found), found


def test_unknown_keys_suggest_the_nearest_known_key() -> None:
    found = problems(
        config_doc(
            pool_table(behavior={"scale_down": {"stabilisation_seconds": 60}}),
            daemon={"intervall_seconds": 10},
        )
    )
    assert "daemon.intervall_seconds: unknown key (did you mean 'interval_seconds'?)" in found
    assert (
        "pools[0].behavior.scale_down.stabilisation_seconds: unknown key "
        "(did you mean 'stabilization_seconds'?)" in found
    )
    found = problems(config_doc(pool_table(policies=[{"type": "schedule", "timezon": "UTC"}])))
    assert found == ["pools[0].policies[0].timezon: unknown key (did you mean 'timezone'?)"]
