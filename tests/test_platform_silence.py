# ruff: noqa: F811  (the ``env`` fixture of the integration tests is imported for use here)
"""Where Pexip's documentation is silent, the same scenario runs against two fakes that disagree,
and the daemon must be safe on both (issue 19, "lean toward serving calls").

* **names equal / names differ**: nothing documents that a ``teamsnode`` record's ``name`` equals
  a VM name or a computer name (docs.pexip.com/admin/teams_status.htm lists the fields, not their
  form). With the Event Hub off Pexip lists an instance only while it carries a Teams call, so an
  instance is taken as idle only when the reading proves the join: on the fake whose names are
  FQDNs no instance is removed, busy or not, and scale-outs still go ahead.
* **scheduled scaling present / absent**: a Management Node without
  ``configuration/v1/scheduled_scaling/`` (404) or one whose read fails is taken to schedule
  nothing: the whole need is written as the minimum, never a held pool.
* **licences as tenants**: ``teams_total`` counts Teams tenants (1 here, the common case,
  docs.pexip.com/admin/teams_configuration.htm) and never caps a scale-out.

Real Azure SDK and httpx clients against the HTTPS fakes (``tests.fakeazure``,
``tests.fakepexip``).
"""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from scaler.adapters.sim import ManualClock
from scaler.core.victims import InstanceActions
from scaler.health import status
from tests.test_pexip_integration import RG, T0, Env, env, teams_pool  # noqa: F401

NAMES = {
    # how Pexip might name instance i of scale set "tc" (computer names tc000000, tc000001 …)
    "equal": lambda i: f"tc{i:06d}",
    "differ": lambda i: f"tc-teams-{i}.example.net",
}


def hub_off_connector(env: Env, calls: list[int], naming: str) -> str:
    """A Teams Connector scale set without the Event Hub: Pexip lists only busy instances."""
    rid = env.azure.add_vmss(RG, "tc", capacity=len(calls))
    env.pexip.add_teams_proxy(7, "cvi-teams", notifications_enabled=False)
    for i, n in enumerate(calls):
        env.pexip.add_teams_node(NAMES[naming](i), call_count=n, scaleset_id="tc", proxy=7)
    return rid


def deletes(env: Env) -> list[Any]:
    return [w.body for w in env.azure_writes() if w.path.endswith("/delete")]


@pytest.mark.parametrize("naming", sorted(NAMES))
def test_a_scale_in_removes_only_what_the_join_proves_idle(env: Env, naming: str) -> None:
    # 5 calls on instance 0, 4 on instance 2, instance 1 idle: one instance is enough.
    rid = hub_off_connector(env, [5, 0, 4], naming)
    daemon, adapters = env.daemon(env.config(teams_pool(rid)), ManualClock(T0))
    try:
        (o,) = daemon.tick()
        daemon.wait_for_resizes(10)
    finally:
        adapters.close()
    assert o.decision is not None
    if naming == "equal":
        # the busy records name instances 0 and 2: proven; instance 1 is idle and goes
        assert deletes(env) == [{"instanceIds": ["1"]}]
        assert (o.desired, o.reason) == (2, "WaitingForIdle")
        assert "name join this reading proves (2 busy records" in o.decision.detail
    else:
        # the busy records name no instance: nothing can be told idle, nothing is removed
        assert deletes(env) == []
        assert (o.current, o.desired, o.reason) == (3, 3, "ScaleInUnverified")
        assert "not proven" in o.decision.detail and "tc-teams-0.example.net" in o.decision.detail
    assert env.azure.vmss_instance_ids(RG, "tc")[:1] == ["0"]  # a busy instance never goes
    assert "2" in env.azure.vmss_instance_ids(RG, "tc")


@pytest.mark.parametrize("naming", sorted(NAMES))
def test_a_scale_out_goes_ahead_whatever_the_names(env: Env, naming: str) -> None:
    rid = hub_off_connector(env, [15, 14], naming)  # 29 calls want 3 instances at 80 %
    daemon, adapters = env.daemon(env.config(teams_pool(rid)), ManualClock(T0))
    try:
        (o,) = daemon.tick()
        daemon.wait_for_resizes(10)
    finally:
        adapters.close()
    assert (o.current, o.desired, o.applied) == (2, 3, True)
    assert env.azure.vmss_capacity(RG, "tc") == 3
    assert deletes(env) == []


@pytest.mark.parametrize("naming", sorted(NAMES))
def test_the_re_read_before_delete_applies_the_same_join(env: Env, naming: str) -> None:
    # At the tick no call is in progress (Pexip lists nothing), so every instance read idle.
    # Before the delete is sent a call starts on instance 1: where the names equal it is
    # seen on instance 1 and that instance stays; where they differ the record names no
    # instance, so nothing is deleted at all.
    rid = hub_off_connector(env, [0, 0, 0], naming)
    config = env.config(teams_pool(rid))
    _, adapters = env.daemon(config, ManualClock(T0))
    try:
        env.pexip.set_calls(NAMES[naming](1), 1)
        handle = adapters.compute.apply(config.pools[0], InstanceActions(remove=("1", "2")))
        handle.result(10)
    finally:
        adapters.close()
    if naming == "equal":
        assert deletes(env) == [{"instanceIds": ["2"]}]
    else:
        assert deletes(env) == []
    assert "1" in env.azure.vmss_instance_ids(RG, "tc")


# ----------------------------------------------------------------------------- pexip-teams


def teams_connector(env: Env, calls: list[int], *, statuses: list[str] | None = None) -> str:
    rid = env.azure.add_vmss(RG, "tc", capacity=len(calls))
    env.pexip.add_teams_proxy(7, "cvi-teams", min_number_of_instances=1)
    for i, n in enumerate(calls):
        status = statuses[i] if statuses else "Active"
        env.pexip.add_teams_node(f"tc{i:06d}", call_count=n, instance_status=status, proxy=7)
    return rid


@pytest.mark.parametrize("schedule", ["present", "absent", "failing"])
def test_scheduled_scaling_present_absent_or_failing_never_holds_a_scale_out(
    env: Env,
    schedule: str,
) -> None:
    # 72 calls on 3 instances want 6 of 15 at 80 %. With the schedule present (it adds 2 on
    # weekdays 08:00-17:00; T0 is a Wednesday 09:00) the minimum is 6 - 2 = 4; absent (a
    # Management Node without the endpoint) or failing, it is taken to add nothing: 6.
    rid = teams_connector(env, [24, 24, 24])
    env.pexip.add_scheduled_scaling(1, instances_to_add=2)
    if schedule == "absent":
        env.pexip.scheduled_scaling_supported = False
    if schedule == "failing":
        env.pexip.inject_fault(r"scheduled_scaling/$", status=503, times=100)
    pool = teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams")
    clock = ManualClock(T0)
    daemon, adapters = env.daemon(env.config(pool), clock)
    try:
        with capture_logs() as logs:
            (o,) = daemon.tick()
            written = env.pexip.teams_proxies[7]["min_number_of_instances"]
            shown = status(daemon)["pools"][0]
            clock.advance(20)
            daemon.tick()
    finally:
        adapters.close()
    assert (o.current, o.desired, o.applied) == (3, 6, True)
    assert written == (4 if schedule == "present" else 6)
    assert o.decision is not None
    warned = [e for e in logs if e["event"].startswith("pexip.scheduled_scaling")]
    if schedule == "present":
        assert warned == []
    else:
        # said in /status, and warned once a minute, not once a tick
        assert "taken to add nothing" in shown["detail"]
        assert len(warned) == 1 and warned[0]["log_level"] == "warning"


def test_instances_in_maintenance_or_failure_are_not_capacity(env: Env) -> None:
    # teams_status.htm: "Maintenance: the instance is not currently operational"; "Failure":
    # it kept failing to restart. Of five instances two serve; 40 calls want 4 at 80 %; the
    # minimum written counts the two that do not serve in (Pexip may count them): 4 + 2 = 6.
    statuses = ["Active", "Active", "Maintenance", "Failure", "Waiting for termination"]
    rid = teams_connector(env, [20, 20, 0, 0, 0], statuses=statuses)
    pool = teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams")
    daemon, adapters = env.daemon(env.config(pool), ManualClock(T0))
    try:
        (o,) = daemon.tick()
    finally:
        adapters.close()
    assert (o.current, o.desired, o.applied) == (2, 4, True)
    assert env.pexip.teams_proxies[7]["min_number_of_instances"] == 6
    assert (
        o.decision is not None
        and "Maintenance, Failure or another state (failure, maintenance)" in o.decision.detail
    )


def test_a_failed_instance_status_read_holds_a_scale_in_only(env: Env) -> None:
    # The teamsnode list answers 503 to the pool's own read: the scale set's capacity is taken
    # as is, and a scale-in is not trusted (ScaleInUnverified) — the load read then fails too,
    # so the pool holds; nothing is written, and the pool is not ObserveFailed.
    rid = teams_connector(env, [1, 0, 0, 0])
    pool = teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams")
    daemon, adapters = env.daemon(env.config(pool), ManualClock(T0))
    try:
        env.pexip.inject_fault(r"status/v1/teamsnode/$", status=503, times=100)
        (o,) = daemon.tick()
    finally:
        adapters.close()
    assert o.reason != "ObserveFailed" and o.current == 4 and o.desired == 4
    assert [w for w in env.pexip.writes() if "teams_proxy" in w.path] == []


@pytest.mark.parametrize("tenants", [1, 3])
def test_licences_are_tenants_and_never_cap(env: Env, tenants: int) -> None:
    rid = teams_connector(env, [40, 40])
    env.pexip.licensing = {"teams_total": tenants, "teams_count": 1}
    pool = teams_pool(rid, kind="pexip-teams", teams_proxy="cvi-teams")
    daemon, adapters = env.daemon(env.config(pool), ManualClock(T0))
    try:
        (o,) = daemon.tick()
    finally:
        adapters.close()
    assert (o.current, o.desired, o.reason) == (2, 6, "ScaleUpLimit")
    assert env.pexip.teams_proxies[7]["min_number_of_instances"] == 6
