# ruff: noqa: F811  (the ``env`` fixture of the integration tests is imported for use here)
"""Kind ``pexip-teams`` against the Management Node as Pexip documents it (the platform issue's
finding 5): the Event Hub is required, instances Pexip drains are not capacity, Pexip's own
scheduled scaling comes on top of the minimum, and the Teams licence (tenants) never caps the
size. Real Azure SDK and httpx clients against the HTTPS fakes."""

from __future__ import annotations

import pytest

from scaler.adapters.sim import ManualClock
from scaler.errors import ConfigError
from scaler.wiring import build_adapters
from tests.test_pexip_integration import RG, T0, Env, env, teams_pool  # noqa: F401


def connector(env: Env, *, capacity: int, hub: bool = True) -> str:
    rid = env.azure.add_vmss(RG, "tc", capacity=capacity)
    env.pexip.add_teams_proxy(7, "cvi-teams", min_number_of_instances=1, notifications_enabled=hub)
    return rid


def test_pexip_teams_is_refused_without_the_event_hub(env: Env) -> None:
    # Without the Azure Event Hub Pexip ignores min_number_of_instances
    # (docs.pexip.com/admin/teams_scaling.htm): the daemon refuses to start, naming why.
    rid = connector(env, capacity=2, hub=False)
    env.pexip.add_teams_node("tc000000", call_count=3, proxy=7)
    config = env.config(teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams"))
    with pytest.raises(ConfigError) as err:
        build_adapters(config, clock=ManualClock(T0))
    (problem,) = err.value.problems
    assert "Event Hub" in problem and "'cvi-teams'" in problem and "kind 'vmss'" in problem
    assert [w for w in env.pexip.writes() if "teams_proxy" in w.path] == []


def test_draining_instances_are_not_capacity_and_the_schedule_is_on_top(env: Env) -> None:
    # Five instances, two "Waiting for termination" (teams_status.htm): three serve. A Pexip
    # schedule adds 2 on weekdays 08:00-17:00 (T0 is a Wednesday 09:00 UTC): to reach the six
    # the load needs (72 calls at 80 % of 15 a instance), the minimum written is 6 - 2 = 4.
    rid = connector(env, capacity=5)
    for i in range(5):
        status = "Waiting for termination" if i >= 3 else "Active"
        env.pexip.add_teams_node(
            f"tc00000{i}", call_count=24 if i < 3 else 0, instance_status=status, proxy=7
        )
    env.pexip.add_scheduled_scaling(1, instances_to_add=2)
    daemon, adapters = env.daemon(
        env.config(teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams")), ManualClock(T0)
    )
    try:
        (o,) = daemon.tick()
    finally:
        adapters.close()
    assert (o.current, o.desired, o.applied) == (3, 6, True)
    assert env.pexip.teams_proxies[7]["min_number_of_instances"] == 4
    assert env.azure.writes() == [] or all("teams_proxy" not in w.path for w in env.azure.writes())


def test_a_single_tenant_licence_never_stops_a_scale_out(env: Env) -> None:
    # The fake models Pexip's Teams licence as tenants (teams_total 1, the common case,
    # docs.pexip.com/admin/teams_configuration.htm): 80 calls on 2 instances need 7 of 15 at
    # 80 %; the rate limit allows 6 this tick, and that is written. Fewer free call licences
    # than the new instances could carry are said in the detail, never a cap.
    rid = connector(env, capacity=2)
    env.pexip.licensing = {"port_total": 100}  # 80 in use: 20 free
    for i in range(2):
        env.pexip.add_teams_node(f"tc00000{i}", call_count=40, proxy=7)
    daemon, adapters = env.daemon(
        env.config(teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams")), ManualClock(T0)
    )
    try:
        (o,) = daemon.tick()
    finally:
        adapters.close()
    assert (o.current, o.desired, o.reason, o.applied) == (2, 6, "ScaleUpLimit", True)
    assert env.pexip.teams_proxies[7]["min_number_of_instances"] == 6
    assert o.decision is not None and "only 20 Pexip call licences are free" in o.decision.detail
