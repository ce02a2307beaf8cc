"""Azure per-instance operations: scale set instances (protection, deletion by id) and the
stand-alone VMs of a ``vm-set`` pool (list by tag, power state, start, deallocate).

Translates only, like ``scaler.adapters.azure`` whose client, call timing and error translation
it shares: SDK models become ``scaler.core.victims.Instance`` records, SDK errors our error tree.
Which instance to touch is decided in ``scaler.core.victims``, never here.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import (
    VirtualMachine,
    VirtualMachineScaleSetVM,
    VirtualMachineScaleSetVMInstanceRequiredIDs,
    VirtualMachineScaleSetVMProtectionPolicy,
)

from scaler.adapters import azure_http as screen
from scaler.adapters.azure import COMPUTE_API_VERSION as API_VERSION
from scaler.adapters.azure import AzureCompute, AzureResize
from scaler.adapters.azure_http import segment
from scaler.config_model import PoolConfig
from scaler.core.victims import Instance
from scaler.errors import AdapterError


@dataclass(frozen=True, slots=True)
class VmInfo:
    """One stand-alone VM of a ``vm-set`` pool."""

    name: str
    power_state: str
    """``running``, ``starting``, ``deallocated``, ``deallocating``, ``stopped``… (lower case)."""
    provisioning_state: str = "Succeeded"
    time_created: float | None = None


class AzureScaleSetInstances:
    """Instance-level view and writes of a uniform scale set."""

    def __init__(self, compute: AzureCompute) -> None:
        self._compute = compute

    @property
    def _client(self) -> ComputeManagementClient:
        return self._compute.client

    def list(self, pool: PoolConfig) -> list[Instance]:
        """Every instance with the names its load may be reported under and its power state.

        ``GET …/virtualMachineScaleSets/{name}/virtualMachines?$expand=instanceView`` through the
        guarded pager (``AzureCompute.pages``); "Allowed values are 'instanceView'"
        (https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-set-vms/list): each
        item then carries its instance view, whose ``PowerState/…`` status gives ``running``,
        ``starting``, ``stopped``, ``deallocated``… (``unknown`` when none is given). A
        ``Deleting`` instance is ``deleting`` whatever its power state. Each item is read as the
        SDK's model. An ``instanceId`` that is not one (it names the instance to delete), one
        listed twice, a provisioning state that is not a state name or more instances than a
        scale set holds fail the read."""
        out = []
        operation = "vmss_vms.list"
        what = f"scale set {pool.scale_set_name}"
        seen: set[str] = set()
        with self._compute.calls.call(operation):
            items = self._compute.pages.items(
                self._client,
                operation,
                _vmss_vms_path(pool),
                {"api-version": API_VERSION, "$expand": "instanceView"},
            )
            if len(items) > screen.MAX_SCALE_SET_CAPACITY:
                raise screen.unusable(operation, f"{what} lists over 1,000 instances", len(items))
            for item in items:
                if item.get("instanceId") is None:
                    continue
                iid = screen.instance_id(item["instanceId"], operation, what)
                vm = VirtualMachineScaleSetVM(item)
                if iid in seen:
                    raise screen.unusable(operation, f"{what} lists an instance twice", iid)
                seen.add(iid)
                names = [n for n in (vm.name,) if n]
                computer = vm.os_profile.computer_name if vm.os_profile is not None else None
                if computer:
                    names.append(computer)
                state = screen.state_name(vm.provisioning_state, operation, what).lower()
                policy = vm.protection_policy
                protected = bool(
                    policy is not None
                    and (policy.protect_from_scale_in or policy.protect_from_scale_set_actions)
                )
                created = vm.time_created.timestamp() if vm.time_created is not None else None
                view = vm.instance_view
                power, _ = _states(view.statuses if view is not None else None)
                out.append(
                    Instance(
                        id=str(vm.instance_id),
                        names=tuple(names),
                        state="deleting" if state == "deleting" else power,
                        protected=protected,
                        started_at=created,
                    )
                )
        return out

    def set_protection(self, pool: PoolConfig, instance_ids: Sequence[str], on: bool) -> None:
        """Set ``protect_from_scale_in`` on each instance and wait for it to apply."""
        vms = self._client.virtual_machine_scale_set_vms
        pollers = []
        for instance_id in instance_ids:
            with self._compute.calls.call("vmss_vms.get"):
                vm = vms.get(pool.resource_group, pool.scale_set_name, instance_id)
            vm.protection_policy = VirtualMachineScaleSetVMProtectionPolicy(
                protect_from_scale_in=on,
                protect_from_scale_set_actions=(
                    vm.protection_policy.protect_from_scale_set_actions
                    if vm.protection_policy is not None
                    else None
                ),
            )
            with self._compute.calls.call("vmss_vms.begin_update"):
                poller = vms.begin_update(pool.resource_group, pool.scale_set_name, instance_id, vm)
            pollers.append(AzureResize(poller, "vmss_vms.update", self._compute.calls))
        for handle in pollers:
            handle.result()

    def delete(self, pool: PoolConfig, instance_ids: Sequence[str]) -> AzureResize:
        """Remove exactly these instances (``deleteInstances``); returns the running operation."""
        ids = VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=list(instance_ids))
        with self._compute.calls.call("vmss.begin_delete_instances"):
            poller = self._client.virtual_machine_scale_sets.begin_delete_instances(
                pool.resource_group, pool.scale_set_name, ids
            )
        return AzureResize(poller, "vmss.delete_instances", self._compute.calls)


STATUS_LIST_REFUSED_RETRY_SECONDS = 600.0
"""After Azure refuses the subscription's status list (403: a role scoped to the resource
group), power states are read per VM and the list is tried again after this long."""


class AzureVmSet:
    """The stand-alone VMs of a resource group carrying a tag, and their power operations.

    A read costs two list requests whatever the number of VMs: ``virtual_machines.list(rg)``
    (names, tags, ``timeCreated``) and ``virtual_machines.list_all(status_only="true")``, whose
    items carry each VM's ``instanceView`` ("statusOnly=true enables fetching run time status of
    all Virtual Machines in the subscription",
    https://learn.microsoft.com/rest/api/compute/virtual-machines/list-all), joined by id. The
    per-VM ``instanceView`` GET (``list_each``) answers for a VM the status list does not
    cover (created between the two lists, or no power state in its statuses) and for every VM
    while Azure refuses the status list (403). ``list(rg, expand="instanceView")`` is not used:
    Azure takes that expand only with a scale set ``$filter``.
    """

    def __init__(
        self, compute: AzureCompute, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._compute = compute
        self._monotonic = monotonic
        self._refused_until = float("-inf")

    @property
    def _client(self) -> ComputeManagementClient:
        return self._compute.client

    def list(self, rg: str, tag: tuple[str, str]) -> list[VmInfo]:
        """The VMs of resource group ``rg`` carrying tag ``tag`` (key, value), with their
        power states."""
        listed = self._tagged(rg, tag)
        if not listed:
            return []
        states = self._statuses()
        out = []
        for vm in listed:
            state = states.get(str(vm.id or "").lower())
            if state is None:
                state = self._instance_view(rg, str(vm.name))
            out.append(_vm_info(vm, state))
        return out

    def list_each(self, rg: str, tag: tuple[str, str]) -> builtins.list[VmInfo]:
        """``list`` with one ``instanceView`` GET per VM (no status list)."""
        return [_vm_info(vm, self._instance_view(rg, str(vm.name))) for vm in self._tagged(rg, tag)]

    def _tagged(self, rg: str, tag: tuple[str, str]) -> builtins.list[Any]:
        """The resource group's VMs carrying the tag (``GET …/resourceGroups/{rg}
        /providers/Microsoft.Compute/virtualMachines`` through the guarded pager); a VM
        name that is not one fails the read."""
        key, value = tag
        path = (
            f"/subscriptions/{segment(self._compute.subscription)}/resourceGroups/"
            f"{segment(rg)}/providers/Microsoft.Compute/virtualMachines"
        )
        with self._compute.calls.call("vm.list"):
            items = self._compute.pages.items(
                self._client, "vm.list", path, {"api-version": API_VERSION}
            )
            listed = [
                vm
                for vm in map(VirtualMachine, items)
                if vm.name and (vm.tags or {}).get(key) == value
            ]
            for vm in listed:
                screen.name(vm.name, "vm.list", "a tagged VM's name")
        return sorted(listed, key=lambda v: str(v.name))

    def _instance_view(self, rg: str, name: str) -> tuple[str, str]:
        with self._compute.calls.call("vm.instance_view"):
            view = self._client.virtual_machines.instance_view(rg, name)
        return _states(view.statuses)

    def _statuses(self) -> dict[str, tuple[str, str]]:
        """(power state, provisioning state) by lower-cased VM id, for the VMs whose status
        list item names a power state; empty while the list is refused."""
        if self._refused_until > self._monotonic():
            return {}
        out: dict[str, tuple[str, str]] = {}
        try:
            path = (
                f"/subscriptions/{segment(self._compute.subscription)}"
                "/providers/Microsoft.Compute/virtualMachines"
            )
            params = {"api-version": API_VERSION, "statusOnly": "true"}
            with self._compute.calls.call("vm.list_status"):
                items = self._compute.pages.items(self._client, "vm.list_status", path, params)
                for vm in map(VirtualMachine, items):
                    view = vm.instance_view
                    if not vm.id or view is None:
                        continue
                    power, provisioning = _states(view.statuses)
                    if power != "unknown":
                        out[str(vm.id).lower()] = (power, provisioning)
        except AdapterError as err:
            if err.status == 403:
                self._refused_until = self._monotonic() + STATUS_LIST_REFUSED_RETRY_SECONDS
                return {}
            raise
        return out

    def start(self, rg: str, name: str) -> AzureResize:
        with self._compute.calls.call("vm.begin_start"):
            poller = self._client.virtual_machines.begin_start(rg, name)
        return AzureResize(poller, "vm.start", self._compute.calls)

    def deallocate(self, rg: str, name: str) -> AzureResize:
        with self._compute.calls.call("vm.begin_deallocate"):
            poller = self._client.virtual_machines.begin_deallocate(rg, name)
        return AzureResize(poller, "vm.deallocate", self._compute.calls)


def _states(statuses: Any) -> tuple[str, str]:
    """(power state in lower case or ``unknown``, provisioning state) of an instance view's
    ``statuses`` (``PowerState/running``, ``ProvisioningState/succeeded``…)."""
    power = "unknown"
    provisioning = "Succeeded"
    for status in statuses or []:
        code = status.code or ""
        if code.startswith("PowerState/"):
            power = code.split("/", 1)[1].lower()
        elif code.startswith("ProvisioningState/"):
            provisioning = code.split("/", 1)[1]
    return power, provisioning


def _vm_info(vm: Any, state: tuple[str, str]) -> VmInfo:
    created = vm.time_created.timestamp() if vm.time_created is not None else None
    return VmInfo(str(vm.name), state[0], state[1], created)


def _vmss_vms_path(pool: PoolConfig) -> str:
    return (
        f"/subscriptions/{segment(pool.subscription_id)}/resourceGroups/"
        f"{segment(pool.resource_group)}/providers/Microsoft.Compute/virtualMachineScaleSets/"
        f"{segment(pool.scale_set_name)}/virtualMachines"
    )
