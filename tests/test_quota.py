"""Quota that is true to Azure and fails closed.

The family comes from the VM size as Azure's Resource SKUs API lists it; a family that
``usage.list`` does not list, or a ``usage.list`` that fails, never means "no limit"; deallocated
VMs are counted already; capacity errors are told apart from quota. Azure is the HTTPS fake,
driven through the real ``ComputeManagementClient``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.target_tracking import TargetTracking, TargetTrackingConfig
from scaler.adapters.azure import AzureCompute
from scaler.config import Config, parse_config
from scaler.core.decide import plan_tick
from scaler.core.quota import (
    CapacityBackoff,
    QuotaMemory,
    QuotaRules,
    VmSize,
    capacity_backoff_seconds,
    plausible_family,
    pool_quota_family,
)
from scaler.core.types import (
    Behavior,
    Decision,
    DirectionBehavior,
    MetricReading,
    Observation,
    PoolLimits,
    PoolPlan,
    PoolState,
    QuotaUsage,
    Reason,
)
from scaler.errors import AdapterError, CapacityError, ConfigError, PermanentError
from tests.conftest import examples
from tests.fakeazure import FakeAzure

RG = "cvi"
LOC = "westeurope"
FS = "standardFSv2Family"
T0 = 1_800_000_000.0
TT = (TargetTracking(TargetTrackingConfig(target_utilization=0.8)),)
FREE = Behavior(
    tolerance=0.1,
    scale_up=DirectionBehavior(0, None, None, 60),
    scale_down=DirectionBehavior(0, None, None, 60),
)


class StaticToken:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("test", int(time.time()) + 3600)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeAzure]:
    with FakeAzure(tmp_path) as azure:
        yield azure


def _config(fake: FakeAzure, rid: str, **pool: Any) -> Config:
    table = {
        "name": "tc",
        "resource_id": rid,
        "vcpus_per_instance": 4,
        "min": 1,
        "max": 20,
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
        **pool,
    }
    return parse_config(
        {
            "azure": {
                "subscription_id": fake.subscription_id,
                "location": LOC,
                "resource_manager_url": fake.url,
                "ca_bundle": str(fake.ca_file),
                "polling_interval_seconds": 0,
            },
            "pools": [table],
        },
        environ={},
    )


@pytest.fixture
def compute(fake: FakeAzure) -> Iterator[tuple[AzureCompute, Config]]:
    rid = fake.add_vmss(RG, "tc", capacity=6, sku_name="Standard_F4s_v2")
    config = _config(fake, rid)
    # the SDK's own retry (3 retries: 4 attempts), without its back-off sleeps
    adapter = AzureCompute(config, StaticToken(), retry_backoff_factor=0.0)  # type: ignore[arg-type]
    try:
        yield adapter, config
    finally:
        adapter.close()


def _plan(limits: PoolLimits, current: int, calls: float) -> PoolPlan:
    return PoolPlan(
        limits=limits,
        behavior=FREE,
        policies=TT,
        observation=Observation(current, MetricReading.ok(calls)),
        state=PoolState(),
    )


def _limits(family: str = FS, **over: Any) -> PoolLimits:
    base = PoolLimits("tc", 1, 20, 15.0, 4, family, LOC)
    return PoolLimits(**{**{f: getattr(base, f) for f in base.__slots__}, **over})


def _requests(fake: FakeAzure, suffix: str) -> list[str]:
    return [r.path for r in fake.requests if r.path.lower().endswith(suffix.lower())]


# ---------------------------------------------------------------- family from the SKU


def test_the_quota_family_comes_from_the_scale_sets_sku(
    fake: FakeAzure, compute: tuple[AzureCompute, Config]
) -> None:
    adapter, config = compute
    pool = config.pools[0]
    assert pool.quota_family == ""  # nothing typed by hand

    # what the tick is told: the family of the scale set's sku.name, from Resource SKUs
    assert adapter.observe(pool).quota_family == FS
    size = adapter.vm_size(LOC, "Standard_F4s_v2")
    assert size == VmSize("Standard_F4s_v2", FS, 4)
    assert pool_quota_family(pool.quota_family, size) == (FS, "")

    # one Resource SKUs read per location for the process lifetime, filtered by location
    assert adapter.observe(pool).quota_family == FS
    adapter.vm_size(LOC, "standard_f8s_v2")
    skus = [r for r in fake.requests if r.path.lower().endswith("/microsoft.compute/skus")]
    assert len(skus) == 1
    assert skus[0].query.get("$filter") == f"location eq '{LOC}'"


def test_a_size_azure_does_not_offer_there_is_an_error_not_a_guess(
    fake: FakeAzure, compute: tuple[AzureCompute, Config]
) -> None:
    adapter, _ = compute
    fake.set_vm_sku("Standard_F72s_v2", family=FS, vcpus=72, locations=["eastus"])
    with pytest.raises(PermanentError, match="Standard_F72s_v2 is not offered in westeurope"):
        adapter.vm_size(LOC, "Standard_F72s_v2")
    assert adapter.vm_size("eastus", "Standard_F72s_v2").vcpus == 72


def _two_pools(fake: FakeAzure, **pool: Any) -> Config:
    one = _config(fake, fake.add_vmss(RG, "a", capacity=2), **pool).pools[0]
    two = one.model_dump(exclude_unset=True) | {
        "name": "b",
        "resource_id": fake.add_vmss(RG, "b", capacity=3),
    }
    doc = _config(fake, one.resource_id).model_dump(exclude_unset=True)
    doc["pools"] = [one.model_dump(exclude_unset=True), two]
    return parse_config(doc, environ={})


@pytest.mark.parametrize(("status", "retry"), [(403, 600.0), (404, 600.0), (503, 60.0)])
def test_a_failed_sku_read_is_the_answer_until_it_is_retried(
    fake: FakeAzure, status: int, retry: float
) -> None:
    config = _two_pools(fake)
    now = [1000.0]
    adapter = AzureCompute(
        config,
        StaticToken(),  # type: ignore[arg-type]
        monotonic=lambda: now[0],
        retry_backoff_factor=0.0,
    )
    # a 5xx is retried by the SDK itself (retry_total 3: four attempts), a refusal is not
    attempts = 4 if status >= 500 else 1
    fake.inject_fault("GET", r"/providers/Microsoft\.Compute/skus$", status=status, times=attempts)
    try:
        for _ in range(3):  # two pools read 3 times: one SKU read, its failure answers them all
            for pool in config.pools:
                assert adapter.observe(pool).quota_family is None  # QuotaUnknown, not a guess
            now[0] += 15.0
        assert len(_requests(fake, "/skus")) == attempts
        now[0] += retry
        assert {adapter.observe(p).quota_family for p in config.pools} == {FS}
        assert len(_requests(fake, "/skus")) == attempts + 1
    finally:
        adapter.close()


def test_a_configured_family_needs_no_sku_read(fake: FakeAzure) -> None:
    config = _two_pools(fake, quota_family=FS)
    adapter = AzureCompute(config, StaticToken())  # type: ignore[arg-type]
    try:
        for pool in config.pools:
            adapter.observe(pool)
        assert _requests(fake, "/skus") == []
    finally:
        adapter.close()


def test_a_configured_family_overrides_the_sku_and_is_warned_about() -> None:
    size = VmSize("Standard_F4s_v2", FS, 4)
    family, warning = pool_quota_family("standardFSFamily", size)
    assert family == "standardFSFamily" and FS in warning
    assert pool_quota_family("", None) == ("", "")  # unknown: plan_tick says QuotaUnknown


@pytest.mark.parametrize(
    ("family", "ok"),
    [
        ("standardFSv2Family", True),
        ("standardA0_A7Family", True),  # as in Microsoft's Resource SKUs example
        ("standardFSv2", False),
        ("Standard FSv2 Family vCPUs", False),  # the portal's display name, not the line name
        ("cores", False),
        ("", False),
    ],
)
def test_plausible_family_names(family: str, ok: bool) -> None:
    assert plausible_family(family) is ok


def _doc(**pool: Any) -> dict[str, Any]:
    sub = "00000000-0000-0000-0000-000000000001"
    rid = (
        f"/subscriptions/{sub}/resourceGroups/cvi"
        "/providers/Microsoft.Compute/virtualMachineScaleSets/tc"
    )
    table = {
        "name": "tc",
        "resource_id": rid,
        "vcpus_per_instance": 4,
        "min": 1,
        "max": 20,
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
        **pool,
    }
    return {"azure": {"subscription_id": sub, "location": LOC}, "pools": [table]}


def test_validate_names_an_implausible_quota_family_with_its_key_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_doc(quota_family="standardFSv2"), environ={})
    assert any(
        p.startswith("pools[0].quota_family: must be a quota family") for p in info.value.problems
    )
    # empty: taken from the VM size
    parse_config(_doc(quota_family=""), environ={})


def test_azure_quota_settings_have_fail_closed_defaults() -> None:
    azure = parse_config(_doc(), environ={}).azure
    assert (azure.quota_max_age_seconds, azure.quota_unknown_step) == (900.0, 0)


def test_usage_list_lists_the_regional_total_and_the_families_in_use(
    fake: FakeAzure, compute: tuple[AzureCompute, Config]
) -> None:
    adapter, _ = compute
    fake.add_vm(RG, "burst-1", vcpus=8, vm_size="Standard_F8s_v2")  # deallocated: counted too
    lines = adapter.usage(LOC)
    assert (lines["cores"].current, lines[FS].current) == (6 * 4 + 8, 6 * 4 + 8)


# ---------------------------------------------------------------- a family usage.list lacks


def test_a_misspelt_family_holds_the_scale_up_and_names_the_family(
    fake: FakeAzure, compute: tuple[AzureCompute, Config]
) -> None:
    adapter, _ = compute
    fake.set_usage(LOC, "cores", current=24, limit=1000)
    fake.set_usage(LOC, FS, current=24, limit=1000)
    memory = QuotaMemory().remember({LOC: adapter.usage(LOC)}, now=T0)
    misspelt = _limits("standardFv2Family")  # plausible, but Azure lists no such line

    (d,) = plan_tick(pools=[_plan(misspelt, 6, 144)], quota=memory, now=T0)
    assert (d.current, d.desired, d.reason) == (6, 6, Reason.QUOTA_UNKNOWN)
    assert "'standardFv2Family' not in usage.list for westeurope" in d.detail

    (d,) = plan_tick(
        pools=[_plan(misspelt, 6, 144)], quota=memory, now=T0, rules=QuotaRules(unknown_step=1)
    )
    assert (d.desired, d.reason) == (7, Reason.QUOTA_UNKNOWN)

    # spelt as Azure lists it, the same load gets what it needs
    (d,) = plan_tick(pools=[_plan(_limits(), 6, 144)], quota=memory, now=T0)
    assert (d.desired, d.reason) == (12, Reason.DESIRED_WITHIN_RANGE)


def test_a_pool_whose_family_is_not_known_yet_holds() -> None:
    usage = {LOC: {"cores": QuotaUsage("cores", 0, 1000), FS: QuotaUsage(FS, 0, 1000)}}
    (d,) = plan_tick(pools=[_plan(_limits(""), 6, 144)], usage=usage, now=T0)
    assert (d.desired, d.reason) == (6, Reason.QUOTA_UNKNOWN)


# ---------------------------------------------------------------- usage.list failing


def _tick(
    adapter: AzureCompute,
    config: Config,
    memory: QuotaMemory,
    *,
    now: float,
    current: int,
    calls: float,
    rules: QuotaRules,
) -> tuple[Decision, QuotaMemory]:
    """One tick's quota path as the daemon runs it: read usage.list (a failure leaves the
    region out), remember, plan, resize only on a change, charge what was applied."""
    fresh = {}
    with contextlib.suppress(AdapterError):  # a failed read leaves the region out
        fresh[LOC] = adapter.usage(LOC)
    memory = memory.remember(fresh, now=now)
    limits = _limits()
    (d,) = plan_tick(pools=[_plan(limits, current, calls)], quota=memory, rules=rules, now=now)
    if d.desired != d.current:
        adapter.resize(config.pools[0], d.desired).result(timeout=20)
        memory = memory.charge(limits, instances=d.desired - d.current)
    return d, memory


def test_usage_list_failing_uses_the_last_known_quota_with_its_age(
    fake: FakeAzure, compute: tuple[AzureCompute, Config]
) -> None:
    adapter, config = compute
    fake.set_usage(LOC, "cores", current=24, limit=28)  # room for one 4-vCPU instance
    fake.set_usage(LOC, FS, current=24, limit=100)
    rules = QuotaRules(max_age_seconds=900)
    memory = QuotaMemory()

    # a calm tick reads the quota
    d, memory = _tick(adapter, config, memory, now=T0, current=6, calls=72, rules=rules)
    assert d.desired == 6

    # then usage.list answers 500 four times (the SDK's attempts) while load doubles
    fake.clear_requests()
    fake.inject_fault("GET", r"/locations/westeurope/usages", status=500, times=4)
    d, memory = _tick(adapter, config, memory, now=T0 + 60, current=6, calls=144, rules=rules)
    assert len(_requests(fake, "/usages")) == 4
    assert (d.current, d.desired, d.reason) == (6, 7, Reason.QUOTA_LIMITED)
    assert "usage.list of 60 s ago" in d.detail
    patches = [r for r in fake.writes() if r.method == "PATCH"]
    assert [p.body["sku"]["capacity"] for p in patches] == [7]  # never 12
    assert fake.vmss_capacity(RG, "tc") == 7

    # still failing: the remembered answer now counts our own +4 vCPUs: nothing left
    fake.inject_fault("GET", r"/locations/westeurope/usages", status=500, times=4)
    d, memory = _tick(adapter, config, memory, now=T0 + 120, current=7, calls=144, rules=rules)
    assert (d.desired, d.reason) == (7, Reason.QUOTA_LIMITED)

    # older than quota_max_age_seconds: unknown, held to the safe step (0)
    fake.inject_fault("GET", r"/locations/westeurope/usages", status=500, times=4)
    d, memory = _tick(adapter, config, memory, now=T0 + 1000, current=7, calls=144, rules=rules)
    assert (d.desired, d.reason) == (7, Reason.QUOTA_UNKNOWN)
    assert "older than 900 s" in d.detail
    assert [r.body["sku"]["capacity"] for r in fake.writes() if r.method == "PATCH"] == [7]


def test_usage_list_failing_from_the_start_allows_only_the_safe_step(
    fake: FakeAzure, compute: tuple[AzureCompute, Config]
) -> None:
    adapter, config = compute
    fake.set_usage(LOC, "cores", current=24, limit=28)
    fake.set_usage(LOC, FS, current=24, limit=100)
    fake.inject_fault("GET", r"/locations/westeurope/usages", status=500, times=4)
    d, _ = _tick(adapter, config, QuotaMemory(), now=T0, current=6, calls=144, rules=QuotaRules())
    assert (d.current, d.desired, d.reason) == (6, 6, Reason.QUOTA_UNKNOWN)
    assert "usage.list not read yet" in d.detail
    assert fake.writes() == []

    fake.inject_fault("GET", r"/locations/westeurope/usages", status=500, times=4)
    d, _ = _tick(
        adapter,
        config,
        QuotaMemory(),
        now=T0,
        current=6,
        calls=144,
        rules=QuotaRules(unknown_step=1),
    )
    assert (d.desired, d.reason) == (7, Reason.QUOTA_UNKNOWN)
    assert [r.body["sku"]["capacity"] for r in fake.writes() if r.method == "PATCH"] == [7]


# ---------------------------------------------------------------- deallocated VMs


def test_starting_a_deallocated_vm_needs_no_headroom(
    fake: FakeAzure, compute: tuple[AzureCompute, Config]
) -> None:
    adapter, _ = compute
    fake.add_vm(RG, "burst-1", vcpus=8, quota_family=FS)
    fake.set_usage(LOC, "cores", current=40, limit=40)  # full, the deallocated VM included
    fake.set_usage(LOC, FS, current=40, limit=40)
    adapter.client.virtual_machines.begin_start(RG, "burst-1").result()
    assert fake.vm_power_state(RG, "burst-1") == "running"
    assert fake.usage(LOC, "cores") == (40, 40)
    adapter.client.virtual_machines.begin_deallocate(RG, "burst-1").result()
    assert fake.usage(LOC, "cores") == (40, 40)  # and deallocating frees nothing


def test_a_pool_that_starts_deallocated_vms_is_not_charged() -> None:
    usage = {LOC: {"cores": QuotaUsage("cores", 36, 40), FS: QuotaUsage(FS, 0, 100)}}
    burst = PoolLimits("burst", 0, 4, 20.0, 8, FS, LOC, priority=10, scale_up_uses_quota=False)
    teams = _limits()  # 4 vCPUs free: one more instance
    nodes, tc = plan_tick(pools=[_plan(burst, 0, 60), _plan(teams, 6, 144)], usage=usage, now=T0)
    assert (nodes.desired, nodes.reason) == (4, Reason.DESIRED_WITHIN_RANGE)
    assert (tc.desired, tc.reason) == (7, Reason.QUOTA_LIMITED)
    assert "burst" not in tc.detail  # the burst pool took none of the headroom
    memory = QuotaMemory().remember(usage, now=T0)
    assert memory.charge(burst, instances=4) == memory


# ---------------------------------------------------------------- capacity is not quota


@pytest.mark.parametrize(
    "code",
    [
        "AllocationFailed",
        "ZonalAllocationFailed",
        "SkuNotAvailable",
        "OverconstrainedAllocationRequest",
        "OverconstrainedZonalAllocationRequest",
        "ZonalAllocationFailedVMSizeNotAvailable",  # a relative Azure may add: still capacity
    ],
)
def test_capacity_errors_are_told_apart_from_quota(
    fake: FakeAzure, compute: tuple[AzureCompute, Config], code: str
) -> None:
    adapter, config = compute
    pool = config.pools[0]
    # refused at once
    fake.inject_fault("PATCH", r"/virtualMachineScaleSets/tc$", status=409, code=code)
    with pytest.raises(CapacityError) as sync:
        adapter.resize(pool, 8)
    assert sync.value.code == code
    # or failed as an operation
    fake.fail_next_operation(code, "Allocation failed. We do not have sufficient capacity.")
    handle = adapter.resize(pool, 8)
    with pytest.raises(CapacityError) as lro:
        handle.result(timeout=20)
    assert lro.value.code == code


def test_a_quota_refusal_is_not_a_capacity_error(
    fake: FakeAzure, compute: tuple[AzureCompute, Config]
) -> None:
    adapter, config = compute
    fake.set_usage(LOC, "cores", current=24, limit=28)
    with pytest.raises(PermanentError) as info:
        adapter.resize(config.pools[0], 12)
    assert not isinstance(info.value, CapacityError)
    assert info.value.code == "OperationNotAllowed"


def test_a_pool_backing_off_after_a_capacity_error_holds_its_scale_up() -> None:
    usage = {LOC: {"cores": QuotaUsage("cores", 0, 1000), FS: QuotaUsage(FS, 0, 1000)}}
    why = "AllocationFailed: Standard_F4s_v2 in westeurope, retry in 60 s"
    (d,) = plan_tick(
        pools=[_plan(_limits(), 6, 144)], usage=usage, now=T0, capacity_holds={"tc": why}
    )
    assert (d.desired, d.reason, d.detail) == (6, Reason.CAPACITY_UNAVAILABLE, why)
    (d,) = plan_tick(
        pools=[_plan(_limits(), 6, 15)], usage=usage, now=T0, capacity_holds={"tc": why}
    )
    assert d.desired < 6  # a scale-in needs no capacity


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(0, 0.0), (1, 30.0), (2, 60.0), (3, 120.0), (4, 240.0), (5, 480.0), (6, 600.0), (99, 600.0)],
)
def test_capacity_backoff_doubles_from_one_interval_up_to_a_cap(failures: int, wait: float) -> None:
    assert capacity_backoff_seconds(failures, interval=30.0, cap=600.0) == wait


def test_capacity_backoff_holds_until_its_wait_has_passed() -> None:
    b = CapacityBackoff().failed(T0).failed(T0 + 30)  # two failures: wait 60 s from the last
    assert b.holds(now=T0 + 89, interval=30, cap=600)
    assert not b.holds(now=T0 + 90, interval=30, cap=600)
    assert not CapacityBackoff().holds(now=T0, interval=30, cap=600)


# ---------------------------------------------------------------- the allocation, as a property

FAMILIES = ("standardFSv2Family", "standardDSv5Family")
line = st.tuples(st.integers(0, 200), st.integers(0, 200)).map(lambda t: (min(t), max(t)))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[PoolPlan], QuotaMemory, QuotaRules, float]:
    n = draw(st.integers(1, 5))
    pools = []
    for i in range(n):
        vcpus = draw(st.sampled_from((2, 4, 8)))
        limits = PoolLimits(
            f"p{i}",
            draw(st.integers(0, 3)),
            draw(st.integers(3, 30)),
            15.0,
            vcpus,
            draw(st.sampled_from((*FAMILIES, "standardMissingFamily", ""))),
            LOC,
            priority=draw(st.integers(0, 3)),
            scale_up_uses_quota=draw(st.booleans()),
        )
        current = draw(st.integers(0, 20))
        calls = draw(st.floats(0, 600))
        pools.append(_plan(limits, current, calls))
    lines: dict[str, QuotaUsage] = {}
    for name in ("cores", *FAMILIES):
        listed = draw(st.booleans()) or name == "cores"
        if listed and draw(st.integers(0, 9)) > 0:  # now and then even cores is missing
            used, limit = draw(line)
            lines[name] = QuotaUsage(name, used, limit)
    memory = QuotaMemory()
    if draw(st.booleans()):  # sometimes usage.list was never read
        memory = memory.remember({LOC: lines}, now=T0 - draw(st.sampled_from((0, 60, 1200))))
    rules = QuotaRules(max_age_seconds=900, unknown_step=draw(st.integers(0, 2)))
    return pools, memory, rules, T0


@settings(max_examples=examples(300), deadline=None)
@given(scenarios())
def test_a_scale_up_never_exceeds_known_headroom_nor_the_safe_step(
    scenario: tuple[list[PoolPlan], QuotaMemory, QuotaRules, float],
) -> None:
    pools, memory, rules, now = scenario
    decisions = plan_tick(pools=pools, quota=memory, rules=rules, now=now)
    region = memory.region(LOC)
    fresh = region is not None and now - region.as_of <= rules.max_age_seconds
    used: dict[str, int] = {}
    for plan, d in zip(pools, decisions, strict=True):
        lim = plan.limits
        up = d.desired - d.current
        if up <= 0 or not lim.scale_up_uses_quota:
            continue
        family = region.line(lim.quota_family) if (fresh and region and lim.quota_family) else None
        cores = region.line("cores") if (fresh and region) else None
        if family is None or cores is None:
            assert up <= rules.unknown_step, (lim, d)
        for name in {lim.quota_family.lower(), "cores"} - {""}:
            used[name] = used.get(name, 0) + up * lim.vcpus_per_instance
    if region is not None and fresh:
        for name, vcpus in used.items():
            q = region.line(name)
            if q is not None:  # a line Azure listed is never exceeded
                assert vcpus <= q.headroom, (name, vcpus, q)
