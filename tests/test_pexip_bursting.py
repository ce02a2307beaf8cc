# ruff: noqa: F811  (the ``env`` fixture of the integration tests is imported for use here)
"""Pexip's own dynamic bursting is a competing scaler for a ``vm-set`` pool.

With ``bursting_enabled`` "everything is then controlled automatically by the Management Node":
it starts an overflow Conferencing Node when a location's free capacity falls to the threshold
and stops it again (https://docs.pexip.com/admin/bursting.htm). Overflow nodes are those marked
``cloud_bursting`` in their configuration, and a location is an overflow location when it holds
them (https://docs.pexip.com/admin/azure_bursting.htm; field names from go-infinity-sdk
``config/global_configuration_model.go`` and ``config/worker_vm_model.go``). A ``vm-set`` pool
on those nodes or that location is refused at start-up, like an enabled Azure autoscale setting
on a scale set, unless ``--allow-competing``. Real Azure SDK and httpx clients against the fakes.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from scaler.adapters.sim import ManualClock
from scaler.errors import ConfigError
from scaler.wiring import build_adapters
from tests.test_pexip_integration import RG, T0, Env, burst_pool, env  # noqa: F401


def burst_set(env: Env, *, marked: bool, elsewhere: bool = False) -> None:
    tags = {"pexip-role": "burst"}
    env.azure.add_vm(RG, "burst-1", power_state="running", tags=tags)
    env.azure.add_vm(RG, "burst-2", tags=tags)
    env.pexip.add_node("always-1", max_hd_calls=40, media_load=50.0)
    env.pexip.add_node("burst-1", max_hd_calls=20, cloud_bursting=marked)
    env.pexip.add_node("burst-2", max_hd_calls=20)
    # a bursting node of Pexip's own, in the pool's location or in another one
    env.pexip.add_node(
        "pexip-overflow", system_location="Dublin" if elsewhere else "London", cloud_bursting=True
    )


@pytest.mark.parametrize("marked", [True, False])
def test_bursting_on_the_pools_nodes_or_location_refuses_the_pool(env: Env, marked: bool) -> None:
    burst_set(env, marked=marked)
    env.pexip.bursting["bursting_enabled"] = True
    with pytest.raises(ConfigError) as err:
        build_adapters(env.config(burst_pool()), clock=ManualClock(T0))
    (problem,) = err.value.problems
    assert "pool burst" in problem and "bursting_enabled" in problem
    assert "--allow-competing" in problem
    assert ("burst-1" if marked else "pexip-overflow") in problem
    assert env.azure_writes() == [] and env.pexip.writes() == []


def test_allow_competing_turns_the_refusal_into_a_warning(env: Env) -> None:
    burst_set(env, marked=True)
    env.pexip.bursting["bursting_enabled"] = True
    with capture_logs() as logs:
        adapters = build_adapters(
            env.config(burst_pool()), clock=ManualClock(T0), allow_competing=True
        )
    adapters.close()
    warnings = [e for e in logs if e["event"] == "pool.preflight_warning"]
    assert any("allowed by --allow-competing" in e["warning"] for e in warnings)


@pytest.mark.parametrize(
    ("enabled", "elsewhere"), [(False, False), (True, True)], ids=["bursting-off", "elsewhere"]
)
def test_bursting_off_or_in_another_location_does_not_refuse(
    env: Env, enabled: bool, elsewhere: bool
) -> None:
    burst_set(env, marked=False, elsewhere=elsewhere)
    env.pexip.bursting["bursting_enabled"] = enabled
    adapters = build_adapters(env.config(burst_pool()), clock=ManualClock(T0))
    adapters.close()


def test_a_bursting_setting_that_cannot_be_read_is_a_warning(env: Env) -> None:
    burst_set(env, marked=True)
    env.pexip.inject_fault(r"configuration/v1/global/1/$", status=503)
    with capture_logs() as logs:
        adapters = build_adapters(env.config(burst_pool()), clock=ManualClock(T0))
    adapters.close()
    assert any(
        "cannot check Pexip's dynamic bursting" in e.get("warning", "")
        for e in logs
        if e["event"] == "pool.preflight_warning"
    )
