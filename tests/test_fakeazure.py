"""The Azure fake answers the real Azure SDK clients the way Azure does."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import (
    Sku,
    VirtualMachineScaleSetUpdate,
    VirtualMachineScaleSetVMInstanceRequiredIDs,
    VirtualMachineScaleSetVMProtectionPolicy,
)
from azure.monitor.querymetrics import MetricsClient, MetricsQueryResult

from tests.fakeazure import FakeAzure

RG = "rg-cvi"
VMSS = "teams-connector"
NAMESPACE = "Microsoft.Compute/virtualMachineScaleSets"
T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


class StaticCredential:
    """Token credential that hands out a fixed token; the fake only checks that one is sent."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return a token valid for an hour."""
        return AccessToken("fake", int(time.time()) + 3600)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeAzure]:
    """A running fake with one scale set of three instances."""
    with FakeAzure(tmp_path) as azure:
        azure.add_vmss(RG, VMSS, capacity=3)
        yield azure


@pytest.fixture
def compute(fake: FakeAzure) -> Iterator[ComputeManagementClient]:
    """The real compute client pointed at the fake."""
    client = ComputeManagementClient(
        StaticCredential(),
        fake.subscription_id,
        base_url=fake.url,
        credential_scopes=["https://management.azure.com/.default"],
        connection_verify=fake.ca_file,
        polling_interval=0,
    )
    with client:
        yield client


@pytest.fixture
def metrics(fake: FakeAzure) -> Iterator[MetricsClient]:
    """The real metrics client pointed at the fake."""
    client = MetricsClient(fake.url, StaticCredential(), connection_verify=fake.ca_file)
    with client:
        yield client


def minutes(*values: float | None) -> list[tuple[datetime, float | None]]:
    """Points one minute apart starting at T0."""
    return [(T0 + timedelta(minutes=i), v) for i, v in enumerate(values)]


def raw_request(
    fake: FakeAzure, path: str, *, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    """GET ``path`` with the standard library, optionally with a bearer token."""
    request = urllib.request.Request(fake.url + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=fake.ca_file)
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# ----------------------------------------------------------------------------- scale sets


def test_get_vmss_reports_capacity_and_state(
    fake: FakeAzure, compute: ComputeManagementClient
) -> None:
    vmss = compute.virtual_machine_scale_sets.get(RG, VMSS)

    assert vmss.sku is not None
    assert vmss.sku.capacity == 3
    assert vmss.sku.name == "Standard_F4s_v2"
    assert vmss.provisioning_state == "Succeeded"
    assert vmss.id == (
        f"/subscriptions/{fake.subscription_id}/resourceGroups/{RG}"
        f"/providers/Microsoft.Compute/virtualMachineScaleSets/{VMSS}"
    )
    assert vmss.location == "westeurope"
    assert fake.writes() == []


@pytest.mark.parametrize("shape", ["example", "maximum"])
def test_realistic_scale_set_bodies_are_microsofts_examples_with_its_own_values(
    fake: FakeAzure, compute: ComputeManagementClient, shape: str
) -> None:
    fake.vmss_body = shape
    fake.add_vmss(RG, "other", capacity=5, sku_name="Standard_F8s_v2", location="eastus")
    listed = {v.name: v for v in compute.virtual_machine_scale_sets.list(RG)}
    got = compute.virtual_machine_scale_sets.get(RG, "other")
    for vmss in (listed["other"], got):
        assert vmss.sku is not None
        assert (vmss.sku.name, vmss.sku.capacity, vmss.location) == ("Standard_F8s_v2", 5, "eastus")
        assert vmss.provisioning_state == "Succeeded" and vmss.etag
        assert vmss.virtual_machine_profile is not None
        assert vmss.virtual_machine_profile.network_profile is not None  # the example's own
    assert listed[VMSS].sku is not None and listed[VMSS].sku.capacity == 3
    path = f"/subscriptions/{fake.subscription_id}/resourceGroups/{RG}/providers/" + (
        "Microsoft.Compute/virtualMachineScaleSets/other?api-version=2026-04-01"
    )
    status, body = raw_request(fake, path, token="t")
    assert status == 200 and len(json.dumps(body)) > {"example": 2000, "maximum": 8000}[shape]


def test_paths_are_case_insensitive(fake: FakeAzure, compute: ComputeManagementClient) -> None:
    vmss = compute.virtual_machine_scale_sets.get(RG.upper(), VMSS.upper())

    assert vmss.name == VMSS


def test_unknown_vmss_is_resource_not_found(compute: ComputeManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        compute.virtual_machine_scale_sets.get(RG, "nope")

    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceNotFound"


def test_update_changes_capacity_with_one_patch(
    fake: FakeAzure, compute: ComputeManagementClient
) -> None:
    fake.set_usage("westeurope", "cores", current=12, limit=100)
    fake.set_usage("westeurope", "standardFSv2Family", current=12, limit=100)
    update = VirtualMachineScaleSetUpdate(
        sku=Sku(name="Standard_F4s_v2", tier="Standard", capacity=5)
    )

    result = compute.virtual_machine_scale_sets.begin_update(RG, VMSS, update).result()

    assert result.sku is not None and result.sku.capacity == 5
    assert result.provisioning_state == "Succeeded"
    assert fake.vmss_capacity(RG, VMSS) == 5
    assert fake.vmss_instance_ids(RG, VMSS) == ["0", "1", "2", "3", "4"]
    assert fake.usage("westeurope", "cores") == (20, 100)
    assert fake.usage("westeurope", "standardFSv2Family") == (20, 100)
    writes = fake.writes()
    assert [w.method for w in writes] == ["PATCH"]
    assert writes[0].body == {"sku": {"name": "Standard_F4s_v2", "tier": "Standard", "capacity": 5}}
    assert "api-version" in writes[0].query
    polls = [r for r in fake.requests if "/operations/" in r.path]
    assert len(polls) == 2  # lro_polls=1: one InProgress, then Succeeded


def test_scale_set_is_updating_until_the_operation_completes(
    fake: FakeAzure, compute: ComputeManagementClient
) -> None:
    update = VirtualMachineScaleSetUpdate(sku=Sku(capacity=1))

    compute.virtual_machine_scale_sets.begin_update(RG, VMSS, update, polling=False)
    during = compute.virtual_machine_scale_sets.get(RG, VMSS)
    assert fake.complete_operations() == 1
    after = compute.virtual_machine_scale_sets.get(RG, VMSS)

    assert during.provisioning_state == "Updating"
    assert during.sku is not None and during.sku.capacity == 3
    assert after.provisioning_state == "Succeeded"
    assert after.sku is not None and after.sku.capacity == 1
    assert fake.vmss_instance_ids(RG, VMSS) == ["0"]


def test_failed_operation_raises_and_keeps_capacity(
    fake: FakeAzure, compute: ComputeManagementClient
) -> None:
    fake.fail_next_operation()
    poller = compute.virtual_machine_scale_sets.begin_update(
        RG, VMSS, VirtualMachineScaleSetUpdate(sku=Sku(capacity=6))
    )

    with pytest.raises(HttpResponseError) as caught:
        poller.result()

    assert "OperationNotAllowed" in str(caught.value)
    assert caught.value.error is not None and caught.value.error.code == "OperationNotAllowed"
    assert fake.vmss_capacity(RG, VMSS) == 3
    assert compute.virtual_machine_scale_sets.get(RG, VMSS).provisioning_state == "Failed"


def test_scale_out_beyond_quota_is_rejected_synchronously(
    fake: FakeAzure, compute: ComputeManagementClient
) -> None:
    fake.set_usage("westeurope", "standardFSv2Family", current=12, limit=16)

    with pytest.raises(HttpResponseError) as caught:
        compute.virtual_machine_scale_sets.begin_update(
            RG, VMSS, VirtualMachineScaleSetUpdate(sku=Sku(capacity=5))
        )

    assert caught.value.status_code == 409
    assert caught.value.error is not None and caught.value.error.code == "OperationNotAllowed"
    assert "standardFSv2Family Cores quota" in str(caught.value)
    assert fake.vmss_capacity(RG, VMSS) == 3


def test_throttled_request_is_retried_transparently(
    fake: FakeAzure, compute: ComputeManagementClient
) -> None:
    fake.inject_fault(
        "GET",
        r"/virtualMachineScaleSets/teams-connector$",
        status=429,
        code="TooManyRequests",
        message="Too many requests.",
        headers={"Retry-After": "0"},
    )

    vmss = compute.virtual_machine_scale_sets.get(RG, VMSS)

    assert vmss.sku is not None and vmss.sku.capacity == 3
    assert [r.method for r in fake.requests] == ["GET", "GET"]


def test_usage_paging_follows_next_links(fake: FakeAzure, compute: ComputeManagementClient) -> None:
    fake.set_usage("westeurope", "cores", current=12, limit=40)
    fake.set_usage("westeurope", "standardFSv2Family", current=12, limit=24)
    fake.set_usage("westeurope", "virtualMachines", current=3, limit=25000)
    fake.usage_page_size = 1

    usages = {u.name.value: (u.current_value, u.limit) for u in compute.usage.list("westeurope")}

    assert usages == {
        "cores": (12, 40),
        "standardFSv2Family": (12, 24),
        "virtualMachines": (3, 25000),
    }
    pages = [r for r in fake.requests if r.path.endswith("/usages")]
    assert [r.query.get("$skiptoken") for r in pages] == [None, "1", "2"]


# ----------------------------------------------------------------------------- instances


def test_instances_follow_capacity_and_delete_instances(
    fake: FakeAzure, compute: ComputeManagementClient
) -> None:
    vms = compute.virtual_machine_scale_set_vms
    listed = list(vms.list(RG, VMSS))
    assert [vm.instance_id for vm in listed] == ["0", "1", "2"]
    assert listed[1].name == f"{VMSS}_1"
    assert listed[1].os_profile is not None
    assert listed[1].os_profile.computer_name == f"{VMSS}000001"

    compute.virtual_machine_scale_sets.begin_delete_instances(
        RG, VMSS, VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=["1"])
    ).result()

    assert fake.vmss_instance_ids(RG, VMSS) == ["0", "2"]
    assert fake.vmss_capacity(RG, VMSS) == 2
    compute.virtual_machine_scale_sets.begin_update(
        RG, VMSS, VirtualMachineScaleSetUpdate(sku=Sku(capacity=3))
    ).result()
    assert [vm.instance_id for vm in vms.list(RG, VMSS)] == ["0", "2", "3"]
    assert [w.method for w in fake.writes()] == ["POST", "PATCH"]
    assert fake.writes()[0].body == {"instanceIds": ["1"]}


def test_protection_policy_update_and_scale_in(
    fake: FakeAzure, compute: ComputeManagementClient
) -> None:
    vms = compute.virtual_machine_scale_set_vms
    instance = vms.get(RG, VMSS, "2")
    instance.protection_policy = VirtualMachineScaleSetVMProtectionPolicy(
        protect_from_scale_in=True
    )

    updated = vms.begin_update(RG, VMSS, "2", instance).result()
    assert updated.protection_policy is not None
    assert updated.protection_policy.protect_from_scale_in is True
    assert [w.method for w in fake.writes()] == ["PUT"]

    # protectFromScaleIn "Protects instance from Autoscale initiated scale-in"; a user's
    # capacity PATCH is not promised to skip it, and by default the fake does not.
    compute.virtual_machine_scale_sets.begin_update(
        RG, VMSS, VirtualMachineScaleSetUpdate(sku=Sku(capacity=2))
    ).result()
    assert fake.vmss_instance_ids(RG, VMSS) == ["0", "1"]  # the protected newest went

    fake.set_vmss_capacity(RG, VMSS, 3)
    fake.set_instance_protection(RG, VMSS, "2", from_scale_in=True)
    fake.capacity_patch_skips_protected = True  # the scale-in policy's reading
    compute.virtual_machine_scale_sets.begin_update(
        RG, VMSS, VirtualMachineScaleSetUpdate(sku=Sku(capacity=2))
    ).result()
    assert fake.vmss_instance_ids(RG, VMSS) == ["0", "2"]  # highest unprotected id went

    compute.virtual_machine_scale_sets.begin_delete_instances(
        RG, VMSS, VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=["2"])
    ).result()
    assert fake.vmss_instance_ids(RG, VMSS) == ["0"]  # an explicit delete ignores protection


def test_instance_list_expands_the_instance_view_with_power_state(
    fake: FakeAzure, compute: ComputeManagementClient
) -> None:
    fake.set_instance_power_state(RG, VMSS, "1", "deallocated")
    fake.set_instance_power_state(RG, VMSS, "2", "")
    vms = compute.virtual_machine_scale_set_vms
    plain = list(vms.list(RG, VMSS))
    assert all(vm.instance_view is None for vm in plain)
    codes = {
        vm.instance_id: [s.code for s in vm.instance_view.statuses]
        for vm in vms.list(RG, VMSS, expand="instanceView")
        if vm.instance_view is not None
    }
    assert codes["0"][-1] == "PowerState/running"
    assert codes["1"][-1] == "PowerState/deallocated"
    assert not any(c.startswith("PowerState/") for c in codes["2"])


def test_delete_unknown_instance_is_invalid_parameter(compute: ComputeManagementClient) -> None:
    with pytest.raises(HttpResponseError) as caught:
        compute.virtual_machine_scale_sets.begin_delete_instances(
            RG, VMSS, VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=["7"])
        )

    assert caught.value.status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "InvalidParameter"


# ----------------------------------------------------------------------------- standalone VMs


def test_vm_list_start_and_deallocate(fake: FakeAzure, compute: ComputeManagementClient) -> None:
    fake.add_vm(RG, "spare-1", tags={"role": "spare"})
    fake.set_usage("westeurope", "cores", current=12, limit=40)
    machines = compute.virtual_machines

    listed = list(machines.list(RG))
    assert [(vm.name, vm.tags) for vm in listed] == [("spare-1", {"role": "spare"})]

    machines.begin_start(RG, "spare-1").result()
    assert fake.vm_power_state(RG, "spare-1") == "running"
    view = machines.instance_view(RG, "spare-1")
    assert "PowerState/running" in [s.code for s in view.statuses or []]
    # quota counts allocated and deallocated VMs alike: starting one moves nothing
    # (https://learn.microsoft.com/azure/virtual-machines/quotas)
    assert fake.usage("westeurope", "cores") == (12, 40)

    machines.begin_deallocate(RG, "spare-1").result()
    assert fake.vm_power_state(RG, "spare-1") == "deallocated"
    assert machines.get(RG, "spare-1").tags == {"role": "spare"}
    assert fake.usage("westeurope", "cores") == (12, 40)
    assert [w.path.rsplit("/", 1)[1] for w in fake.writes()] == ["start", "deallocate"]


# ----------------------------------------------------------------------------- metrics


def test_metrics_points_with_null_buckets(fake: FakeAzure, metrics: MetricsClient) -> None:
    vmss_id = fake.add_vmss(RG, "other", capacity=1)
    fake.set_metric(vmss_id, NAMESPACE, "Percentage CPU", minutes(10.0, None, 30.0, 99.0))

    results = metrics.query_resources(
        resource_ids=[vmss_id],
        metric_namespace=NAMESPACE,
        metric_names=["Percentage CPU"],
        timespan=(T0, T0 + timedelta(minutes=3)),
        granularity=timedelta(minutes=1),
        aggregations=["Maximum"],
    )

    [result] = results
    [metric] = result.metrics
    [series] = metric.timeseries
    assert metric.name == "Percentage CPU"
    assert [(p.timestamp, p.maximum) for p in series.data] == minutes(10.0, None, 30.0)
    assert series.data[0].average is None  # only the requested aggregation is sent
    assert result.granularity == timedelta(minutes=1)
    assert result.resource_region == "westeurope"
    [query] = fake.requests
    assert query.query["metricnames"] == "Percentage CPU"
    assert query.query["aggregation"] == "Maximum"
    assert query.query["interval"] == "PT1M"
    assert query.query["starttime"] == "2026-11-18T09:00:00.000Z"
    assert query.body == {"resourceids": [vmss_id]}
    assert fake.writes() == []


def test_a_metric_source_answers_any_span(fake: FakeAzure, metrics: MetricsClient) -> None:
    rid = fake.add_vmss(RG, "generated", capacity=1)
    fake.set_metric_source(rid, "Pexip/CVI", "ActiveCalls", lambda t: float(t.minute % 7) or None)
    start = T0 + timedelta(days=40)
    result = metrics.query_resources(
        resource_ids=[rid],
        metric_namespace="Pexip/CVI",
        metric_names=["ActiveCalls"],
        timespan=(start, start + timedelta(minutes=10)),
        granularity=timedelta(minutes=1),
        aggregations=["Maximum"],
    )
    data = result[0].metrics[0].timeseries[0].data
    assert [(p.timestamp, p.maximum) for p in data] == [
        (start + timedelta(minutes=i), float(i % 7) or None) for i in range(10)
    ]


def test_metrics_dimension_split_and_sum(fake: FakeAzure, metrics: MetricsClient) -> None:
    vmss_id = fake.add_vmss(RG, "split", capacity=2)
    fake.set_metric(vmss_id, NAMESPACE, "calls", minutes(1.0, 2.0), dimension=("VMName", "vm0"))
    fake.set_metric(vmss_id, NAMESPACE, "calls", minutes(3.0, None), dimension=("VMName", "vm1"))

    def query(filter: str | None = None) -> list[MetricsQueryResult]:
        return metrics.query_resources(
            resource_ids=[vmss_id],
            metric_namespace=NAMESPACE,
            metric_names=["calls"],
            timespan=(T0, T0 + timedelta(minutes=5)),
            aggregations=["Maximum"],
            filter=filter,
        )

    [split] = query("VMName eq '*'")
    [summed] = query()

    by_vm = {
        s.metadata_values["vmname"]: [p.maximum for p in s.data]
        for s in split.metrics[0].timeseries
    }
    assert by_vm == {"vm0": [1.0, 2.0], "vm1": [3.0, None]}
    [total] = summed.metrics[0].timeseries
    assert total.metadata_values == {}
    assert [p.maximum for p in total.data] == [4.0, 2.0]


def test_metrics_without_series_and_batch_limit(fake: FakeAzure, metrics: MetricsClient) -> None:
    vmss_id = fake.add_vmss(RG, "quiet", capacity=1)

    [result] = metrics.query_resources(
        resource_ids=[vmss_id], metric_namespace=NAMESPACE, metric_names=["calls"]
    )
    assert result.metrics[0].timeseries == []

    with pytest.raises(HttpResponseError) as caught:
        metrics.query_resources(
            resource_ids=[f"{vmss_id}{i}" for i in range(51)],
            metric_namespace=NAMESPACE,
            metric_names=["calls"],
        )
    assert caught.value.status_code == 400


# ----------------------------------------------------------------------------- plumbing


def test_request_without_bearer_token_is_401(fake: FakeAzure) -> None:
    path = (
        f"/subscriptions/{fake.subscription_id}/resourceGroups/{RG}"
        f"/providers/Microsoft.Compute/virtualMachineScaleSets/{VMSS}?api-version=2026-04-01"
    )

    status, body = raw_request(fake, path)

    assert status == 401
    assert body["error"]["code"] == "AuthenticationFailed"
    assert raw_request(fake, path, token="t")[0] == 200


def test_unknown_path_is_arm_not_found(fake: FakeAzure) -> None:
    status, body = raw_request(fake, "/nothing/here?api-version=1", token="t")

    assert status == 404
    assert body["error"]["code"] == "NotFound"
