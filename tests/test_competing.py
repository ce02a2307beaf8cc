"""Competing scalers: an enabled Azure autoscale setting on a pool's scale set refuses ``once``
and ``run`` (exit 2, naming the setting and the pool) unless ``--allow-competing``; a reload that
finds one is rejected. Real ``azure-mgmt-monitor`` client against the HTTPS fake, whose settings
are shaped after Microsoft's ``listAutoscaleSetting.json`` example."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from scaler.cli import main
from scaler.config import Config, load_config
from scaler.daemon import Daemon
from scaler.errors import ConfigError
from scaler.wiring import build_adapters
from tests.azure_env import AzureEnv, azure_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[AzureEnv]:
    with azure_env(tmp_path) as e:
        yield e


class WallClock:
    def now(self) -> float:
        import time

        return time.time()


def _busy(env: AzureEnv, rid: str) -> None:
    env.calls(rid, {"vm0": [40.0] * 8, "vm1": [40.0] * 8})


def _once(config: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["once", "--config", str(config), "--json", *extra])
    return result.exit_code, result.stdout, result.stderr


def test_an_enabled_autoscale_setting_on_the_scale_set_refuses_once(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    _busy(env, pool["resource_id"])
    env.fake.add_autoscale_setting("cvi", "cpu-autoscale", target_resource_uri=pool["resource_id"])
    code, out, err = _once(env.write_config(pool))
    assert code == 2
    assert "cpu-autoscale" in err and "pool tc" in err and "--allow-competing" in err
    assert out == ""
    assert env.fake.writes() == []  # refused before any decision


def test_allow_competing_turns_the_refusal_into_a_warning(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    _busy(env, pool["resource_id"])
    env.fake.add_autoscale_setting("cvi", "cpu-autoscale", target_resource_uri=pool["resource_id"])
    code, out, err = _once(env.write_config(pool), "--allow-competing")
    assert code == 0, err
    assert "cpu-autoscale" in err  # still said, as a warning
    assert '"pool": "tc"' in out and '"applied": true' in out


@pytest.mark.parametrize("case", ["disabled", "other scale set", "none"])
def test_settings_that_do_not_size_the_pool_let_it_run(env: AzureEnv, case: str) -> None:
    pool = env.pool("tc", capacity=2)
    other = env.fake.add_vmss("cvi", "web", capacity=1)
    _busy(env, pool["resource_id"])
    if case == "disabled":
        env.fake.add_autoscale_setting(
            "cvi", "off", target_resource_uri=pool["resource_id"], enabled=False
        )
    elif case == "other scale set":
        env.fake.add_autoscale_setting("cvi", "web-autoscale", target_resource_uri=other)
    code, _, err = _once(env.write_config(pool))
    assert code == 0, err
    if case == "disabled":
        assert "disabled" in err  # told: enabling it would fight the daemon


def test_the_refusal_names_every_pool_with_a_competitor(env: AzureEnv) -> None:
    a, b = env.pool("a", capacity=1), env.pool("b", capacity=1)
    env.fake.add_autoscale_setting("cvi", "scale-a", target_resource_uri=a["resource_id"])
    env.fake.add_autoscale_setting("cvi", "scale-b", target_resource_uri=b["resource_id"].upper())
    config = load_config(env.write_config(a, b), dry_run=True)
    with pytest.raises(ConfigError) as caught:
        build_adapters(config, clock=WallClock())
    text = "\n".join(caught.value.problems)
    assert "scale-a" in text and "pool a:" in text
    assert "scale-b" in text and "pool b:" in text  # ARM ids compare case-insensitively
    lists = [r for r in env.fake.requests if r.path.lower().endswith("/autoscalesettings")]
    assert len(lists) == 1  # one list per resource group for the whole check


def test_a_reload_that_finds_a_competitor_is_rejected(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [1.0] * 8})
    path = env.write_config(pool)
    config = load_config(path, dry_run=True)
    wanted_max = [7, 9]

    def reload() -> Config:
        new_max = wanted_max.pop(0)
        return config.model_copy(
            update={"pools": [p.model_copy(update={"max": new_max}) for p in config.pools]}
        )

    adapters = build_adapters(config, clock=WallClock())
    try:
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=WallClock(),
            reload_config=reload,
        )
        daemon.request_reload()
        daemon.check_reload()
        daemon.tick()
        assert daemon.config.pools[0].max == 7  # no competitor: the reload takes effect
        env.fake.add_autoscale_setting("cvi", "late", target_resource_uri=pool["resource_id"])
        daemon.request_reload()
        daemon.check_reload()
        daemon.tick()
        assert daemon.config.pools[0].max == 7  # rejected: the running config stays in force
    finally:
        adapters.close()


def test_an_unreadable_autoscale_list_is_a_warning_not_a_refusal(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    env.fake.inject_fault("GET", "autoscalesettings", status=403, code="AuthorizationFailed")
    config = load_config(env.write_config(pool), dry_run=True)
    build_adapters(config, clock=WallClock()).close()  # no ConfigError
    assert any(r.path.lower().endswith("/autoscalesettings") for r in env.fake.requests)


def test_a_refused_autoscale_list_answers_its_group_until_it_is_retried(env: AzureEnv) -> None:
    from scaler.adapters.azure import StaticTokenCredential
    from scaler.adapters.azure_autoscale import REFUSED_RETRY_SECONDS, AutoscaleSettings

    pools = [env.pool(f"p{i}", capacity=1) for i in range(3)]  # one resource group
    env.fake.inject_fault("GET", "autoscalesettings", status=403, code="AuthorizationFailed")
    config = load_config(env.write_config(*pools), dry_run=True)
    now = [0.0]
    settings = AutoscaleSettings(
        config, StaticTokenCredential("test-token"), monotonic=lambda: now[0]
    )

    def a_pass() -> list[str]:
        return [w for p in config.pools for w in settings.check(p).warnings]

    def lists() -> int:
        return sum(1 for r in env.fake.requests if r.path.lower().endswith("/autoscalesettings"))

    try:
        warnings = a_pass()
        assert len(warnings) == 3 and all("AuthorizationFailed" in w for w in warnings)
        assert lists() == 1  # the refusal answers the group's other pools
        now[0] += REFUSED_RETRY_SECONDS / 2
        assert len(a_pass()) == 3 and lists() == 1  # a reload minutes later: still the answer
        now[0] += REFUSED_RETRY_SECONDS
        assert a_pass() == [] and lists() == 2  # asked again: now readable, nothing competes
        assert a_pass() == [] and lists() == 3  # each pass reads a readable group afresh
    finally:
        settings.close()
