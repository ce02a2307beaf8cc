"""Configuration of the Pexip integration: kinds, key paths of mistakes, the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scaler.backtest.runner import scale_in_mode
from scaler.config import load_config, parse_config
from scaler.errors import ConfigError
from scaler.kinds.vm_set import vm_set_of
from scaler.kinds.vmss import drain_enabled
from tests.conftest import config_doc, pool_table

ROOT = Path(__file__).resolve().parent.parent
PEXIP = {"url": "https://pexip.example.com", "username": "admin"}


def problems(*pools: dict[str, Any], **sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(config_doc(*pools, **sections), environ={})
    return info.value.problems


@pytest.mark.parametrize("name", ["pexip-teams", "vmss-drain", "vm-set"])
def test_examples_are_valid(name: str) -> None:
    config = load_config(ROOT / "examples" / f"{name}.toml", environ={})
    assert config.pexip.url == "https://pexip-mgr.example.com"


def test_each_kind_names_what_it_misses() -> None:
    teams = pool_table("tc", kind="pexip-teams")
    burst = pool_table("burst", kind="vm-set", resource_id="")
    assert problems(teams, burst, pexip=PEXIP) == [
        "pools[0].teams_proxy: required for kind 'pexip-teams', got ''",
        "pools[1].vm_set.resource_group: required for kind 'vm-set', got ''",
        "pools[1].vm_set.tag: required for kind 'vm-set', got ''",
    ]


def test_pexip_source_needs_the_management_node() -> None:
    pool = pool_table("tc", metric={"source": "pexip"})
    assert problems(pool) == ["pexip.url: required by pools[0] (kind 'vmss'), got ''"]


def test_bad_values_name_their_key() -> None:
    burst = pool_table(
        "burst",
        kind="vm-set",
        resource_id="",
        vm_set={"resource_group": "rg", "tag": "no-equals-sign"},
    )
    lines = problems(burst, pexip={"url": "http://pexip.example.com"})
    assert any(line.startswith("pexip.url: must be an https:// URL") for line in lines)
    assert any(line.startswith("pools[0].vm_set.tag: must be key=value") for line in lines)


def test_drain_defaults_on_with_per_instance_counts() -> None:
    doc = config_doc(
        pool_table("a", metric={"source": "pexip"}),
        pool_table("b"),
        pool_table("c", drain=True),
        pexip=PEXIP,
    )
    config = parse_config(doc, environ={})
    assert [drain_enabled(p) for p in config.pools] == [True, False, True]
    assert [scale_in_mode(p) for p in config.pools] == ["idle", "drop", "idle"]


def test_vm_set_capacity_comes_from_nodes_unless_configured() -> None:
    vm_set = {"resource_group": "rg", "tag": "role=burst"}
    doc = config_doc(
        pool_table("a", kind="vm-set", resource_id="", vm_set=vm_set),
        pexip=PEXIP,
    )
    del doc["pools"][0]["calls_per_instance"]
    config = parse_config(doc, environ={})
    assert not config.pools[0].calls_per_instance_set
    assert scale_in_mode(config.pools[0]) == "drain"
    assert vm_set_of(config.pools[0]).resource_group == "rg"
