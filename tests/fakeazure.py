"""In-process fake of the Azure REST endpoints the autoscaler talks to.

The fake serves HTTPS on 127.0.0.1 with a freshly generated self-signed certificate, so the real
Azure SDK clients work against it unchanged: point ``base_url`` (``ComputeManagementClient``) or
``endpoint`` (``MetricsClient``) at :attr:`FakeAzure.url` and ``connection_verify`` at
:attr:`FakeAzure.ca_file`.  Response bodies, long-running operations and errors are shaped after
Microsoft's published examples in the Azure/azure-rest-api-specs repository.

Tests drive the fake through its state API (``add_vmss``, ``set_usage``, ``set_metric``,
``inject_fault`` ...) and inspect what the code under test sent through :attr:`FakeAzure.requests`
and :meth:`FakeAzure.writes`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.tls import FakeServer, QuietHandler, serve_tls, write_certificate

__all__ = ["DEFAULT_SUBSCRIPTION_ID", "TRANSPORT_FAULTS", "FakeAzure", "Recorded"]

DEFAULT_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000001"
MAX_BATCH_RESOURCES = 50
"""Azure Monitor's limit on resource ids in one ``metrics:getBatch`` request."""
DEFAULT_TOP = 10
"""Azure Monitor returns at most this many dimension timeseries per metric unless ``top`` is set."""

TRANSPORT_FAULTS = ("raw", "reset", "truncate", "stall", "redirect", "nextlink", "huge")
"""Faults below the ARM error contract: what a gateway, proxy or broken connection does, and
list answers whose ``nextLink`` a hostile or broken server chose."""

_AGGREGATIONS = ("average", "count", "maximum", "minimum", "total")
_METRICS_BATCH_SUFFIX = "/metrics:getbatch"
_WRITE_METHODS = frozenset({"PATCH", "PUT", "DELETE"})
_FILTER_CLAUSE = re.compile(r"([^\s()']+)\s+eq\s+'([^']*)'", re.IGNORECASE)
_BEARER = re.compile(r"Bearer\s+\S+", re.IGNORECASE)

JSON = dict[str, Any]
Point = tuple[dt.datetime, float | None]


@dataclass(frozen=True)
class Recorded:
    """One HTTP request as the fake received it (path percent-decoded, query keys as sent)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]

    @property
    def is_write(self) -> bool:
        """Whether the request asks Azure to change something (a metrics query does not)."""
        if self.method in _WRITE_METHODS:
            return True
        return self.method == "POST" and not self.path.lower().endswith(_METRICS_BATCH_SUFFIX)


@dataclass
class _Request:
    """A parsed incoming request."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    invalid_json: bool = False

    def param(self, name: str) -> str | None:
        """Query parameter looked up case-insensitively, as Azure does."""
        wanted = name.lower()
        return next((v for k, v in self.query.items() if k.lower() == wanted), None)

    def header(self, name: str) -> str | None:
        """Request header looked up case-insensitively."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass
class _Response:
    """What the fake answers: a status, an optional JSON body and extra headers.

    Transport faults (:meth:`FakeAzure.inject_transport_fault`) use the other fields: ``raw`` is
    sent as the body instead of JSON (with ``content_type``), and ``action`` is ``"reset"`` (drop
    the connection without an answer), ``"truncate"`` (announce the full length, send half and
    close) or ``""``; ``delay`` is slept before answering (outside the fake's lock).
    """

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str | None = None
    action: str = ""
    delay: float = 0.0


class _ArmError(Exception):
    """Raised by handlers to answer with an ARM-style error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> _Response:
        """The error as an HTTP response."""
        return _Response(self.status, _error_body(self.code, self.message), self.headers)


@dataclass
class _Fault:
    """An armed fault: answer matching requests with an error ``remaining`` more times."""

    method: str
    pattern: re.Pattern[str]
    status: int
    code: str
    message: str
    headers: dict[str, str]
    remaining: int
    kind: str = "error"
    """``error`` (an ARM error body) or a transport fault kind (see ``TRANSPORT_FAULTS``)."""
    raw: bytes | None = None
    content_type: str | None = None
    delay: float = 0.0
    served: int = 0
    """Answers this fault gave (``nextlink`` numbers its links with it)."""
    content: re.Pattern[str] | None = None
    """When set, the fault also needs this regex to be found in the request's query string
    (``key=value`` pairs, decoded) or its JSON body: e.g. one batch of several concurrent
    ``metrics:getBatch`` calls, by metric name or resource id."""


@dataclass
class _Instance:
    """One instance of a uniform scale set."""

    instance_id: int
    vm_id: str
    time_created: str
    protect_from_scale_in: bool = False
    protect_from_scale_set_actions: bool = False
    provisioning_state: str = "Succeeded"
    etag: int = 1
    power_state: str = "running"
    """``PowerState/<this>`` in the instance's view (``starting``, ``stopped``, ``deallocated``…,
    https://learn.microsoft.com/azure/virtual-machines/states-billing); ``""``: the view names
    no power state."""


@dataclass
class _ScaleSet:
    """A virtual machine scale set and its instances."""

    resource_id: str
    resource_group: str
    name: str
    sku_name: str
    tier: str
    location: str
    vcpus_per_instance: int
    quota_family: str
    provisioning_state: str
    unique_id: str
    time_created: str
    instances: dict[int, _Instance]
    etag: int = 1
    """Bumped on every change of the scale set; served as ``"etag": "\"N\""`` and checked
    against ``If-Match`` on PATCH (see ``_patch_vmss``)."""

    @property
    def capacity(self) -> int:
        """Number of instances; always equal to ``sku.capacity``."""
        return len(self.instances)


@dataclass
class _VirtualMachine:
    """A standalone virtual machine."""

    resource_id: str
    resource_group: str
    name: str
    location: str
    vm_size: str
    vcpus: int
    quota_family: str | None
    power_state: str
    tags: dict[str, str]
    vm_id: str
    time_created: str
    provisioning_state: str = "Succeeded"


@dataclass(frozen=True)
class _VmSku:
    """A VM size of the Resource SKUs list: its quota family and vCPUs."""

    name: str
    family: str
    vcpus: int
    locations: tuple[str, ...] | None = None
    """Lower-cased locations offering it; ``None``: every location the fake knows."""


# Families as Azure's Resource SKUs and usage.list name them (the ``family`` of
# ListAvailableResourceSkusForARegion.json is the ``name.value`` of the usage line).
_DEFAULT_VM_SKUS = (
    _VmSku("Standard_F4s_v2", "standardFSv2Family", 4),
    _VmSku("Standard_F8s_v2", "standardFSv2Family", 8),
    _VmSku("Standard_F16s_v2", "standardFSv2Family", 16),
    _VmSku("Standard_F4s", "standardFSFamily", 4),
    _VmSku("Standard_D4s_v5", "standardDSv5Family", 4),
)


def _sku_json(sku: _VmSku, locations: Sequence[str]) -> JSON:
    """One ``ResourceSku`` as in ``ListAvailableResourceSkusForARegion.json``."""
    size = sku.name.split("_", 1)[1] if "_" in sku.name else sku.name
    return {
        "resourceType": "virtualMachines",
        "locations": list(locations),
        "capabilities": [
            {"name": "vCPUs", "value": str(sku.vcpus)},
            {"name": "HyperVGenerations", "value": "V1,V2"},
            {"name": "MemoryGB", "value": str(sku.vcpus * 2)},
            {"name": "vCPUsAvailable", "value": str(sku.vcpus)},
            {"name": "vCPUsPerCore", "value": "2"},
        ],
        "locationInfo": [{"location": loc, "zones": ["1", "2", "3"]} for loc in locations],
        "name": sku.name,
        "tier": "Standard",
        "size": size,
        "family": sku.family,
        "restrictions": [],
    }


@dataclass
class _Usage:
    """One compute usage (quota) entry of a location."""

    name: str
    current: int
    limit: int


@dataclass
class _Series:
    """Stored points of one metric of one resource, optionally for one dimension value; or a
    ``source`` that gives the value of any minute (a load that never runs out, for long runs)."""

    metric: str
    unit: str
    dimension_name: str | None
    dimension_value: str | None
    points: list[Point]
    source: Callable[[dt.datetime], float | None] | None = None

    def window(self, start: dt.datetime, end: dt.datetime) -> list[Point]:
        """The points with ``start <= t < end``, in time order."""
        if self.source is None:
            return [(t, v) for t, v in self.points if start <= t < end]
        first = start.replace(second=0, microsecond=0)
        if first < start:
            first += dt.timedelta(minutes=1)
        out: list[Point] = []
        moment = first
        while moment < end:
            out.append((moment, self.source(moment)))
            moment += dt.timedelta(minutes=1)
        return out


@dataclass
class _Operation:
    """A long-running operation; it completes after ``polls_left`` more status polls."""

    op_id: str
    location: str
    api_version: str
    start_time: str
    polls_left: int
    on_success: Callable[[], None]
    on_failure: Callable[[], None]
    error: tuple[str, str] | None
    status: str = "InProgress"
    end_time: str | None = None


@dataclass(frozen=True)
class _Route:
    """One endpoint: method, full-path pattern and handler."""

    method: str
    pattern: re.Pattern[str]
    handler: Callable[[_Request, re.Match[str]], _Response]
    arm: bool = True
    api_version: bool = True
    """Whether the endpoint insists on ``api-version`` (custom-metrics ingestion does not)."""


_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourceGroups/(?P<rg>[^/]+)"
_COMPUTE = r"/providers/Microsoft\.Compute"
_VMSS = _RG + _COMPUTE + r"/virtualMachineScaleSets/(?P<vmss>[^/]+)"
_INSTANCE = _VMSS + r"/virtualMachines/(?P<instance>[^/]+)"
_VM = _RG + _COMPUTE + r"/virtualMachines/(?P<vm>[^/]+)"
_LOCATION = _SUB + _COMPUTE + r"/locations/(?P<loc>[^/]+)"
_INSIGHTS_RG = _RG + r"/providers/Microsoft\.Insights"

# Every request the fake serves, as the Azure RBAC operation that authorises it (method, path
# pattern, operation). Sources: Microsoft's resource provider operations,
# https://learn.microsoft.com/azure/role-based-access-control/permissions/compute and
# https://learn.microsoft.com/azure/role-based-access-control/permissions/monitor (an LRO status
# poll is ``locations/operations/read``; the metrics:getBatch data plane has no operation of its
# own in that list and is authorised by ``Metrics/Read`` on each resource, as the ARM metrics
# API; custom-metric ingestion is the *data action* ``Metrics/Write`` of Monitoring Metrics
# Publisher). tests/test_rbac.py holds deploy/azure-role.json to exactly these.
RBAC_OPERATIONS: tuple[tuple[str, str, str], ...] = (
    (
        "GET",
        _SUB + _COMPUTE + r"/virtualMachineScaleSets",
        "Microsoft.Compute/virtualMachineScaleSets/read",
    ),
    (
        "GET",
        _RG + _COMPUTE + r"/virtualMachineScaleSets",
        "Microsoft.Compute/virtualMachineScaleSets/read",
    ),
    (
        "GET",
        _SUB + _COMPUTE + r"/virtualMachineScaleSets",
        "Microsoft.Compute/virtualMachineScaleSets/read",
    ),
    ("GET", _VMSS, "Microsoft.Compute/virtualMachineScaleSets/read"),
    ("PATCH", _VMSS, "Microsoft.Compute/virtualMachineScaleSets/write"),
    ("POST", _VMSS + r"/delete", "Microsoft.Compute/virtualMachineScaleSets/delete/action"),
    (
        "GET",
        _VMSS + r"/virtualMachines",
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
    ),
    ("GET", _INSTANCE, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read"),
    ("PUT", _INSTANCE, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/write"),
    ("PATCH", _INSTANCE, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/write"),
    ("GET", _SUB + _COMPUTE + r"/virtualMachines", "Microsoft.Compute/virtualMachines/read"),
    ("GET", _RG + _COMPUTE + r"/virtualMachines", "Microsoft.Compute/virtualMachines/read"),
    ("GET", _VM, "Microsoft.Compute/virtualMachines/read"),
    ("GET", _VM + r"/instanceView", "Microsoft.Compute/virtualMachines/instanceView/read"),
    ("POST", _VM + r"/start", "Microsoft.Compute/virtualMachines/start/action"),
    ("POST", _VM + r"/deallocate", "Microsoft.Compute/virtualMachines/deallocate/action"),
    ("GET", _LOCATION + r"/usages", "Microsoft.Compute/locations/usages/read"),
    ("GET", _SUB + _COMPUTE + r"/skus", "Microsoft.Compute/skus/read"),
    (
        "GET",
        _LOCATION + r"/operations/(?P<op>[^/]+)",
        "Microsoft.Compute/locations/operations/read",
    ),
    ("POST", _SUB + r"/metrics:getBatch", "Microsoft.Insights/Metrics/Read"),
    ("GET", _INSIGHTS_RG + r"/autoscalesettings", "Microsoft.Insights/AutoscaleSettings/Read"),
    (
        "POST",
        r"/subscriptions/[^/]+/resourceGroups/.+/metrics",
        "data:Microsoft.Insights/Metrics/Write",
    ),
)
"""``data:`` marks a data action (a role's ``DataActions``), the rest are ``Actions``."""

_RBAC_COMPILED = tuple((m, re.compile(p + "/?", re.IGNORECASE), op) for m, p, op in RBAC_OPERATIONS)
OBSERVED_OPERATIONS: set[str] = set()
"""Every RBAC operation any FakeAzure of this process served (successfully routed or not)."""
UNMAPPED_REQUESTS: list[str] = []
"""Requests no entry of ``RBAC_OPERATIONS`` names (a gap in the table: the RBAC test fails)."""


def rbac_operation(method: str, path: str) -> str | None:
    """The RBAC operation that authorises ``method path`` (``data:`` for a data action)."""
    for wanted, pattern, operation in _RBAC_COMPILED:
        if wanted == method.upper() and pattern.fullmatch(path):
            return operation
    return None


class FakeAzure:
    """Fake Azure Resource Manager (compute) and Azure Monitor metrics service over HTTPS.

    All state lives in memory under one lock.  Long-running operations (VMSS PATCH, instance
    updates, deleteInstances, VM start/deallocate) report ``InProgress`` for ``lro_polls`` status
    polls and then finish; their effect is applied at that moment.
    """

    def __init__(
        self,
        directory: Path,
        *,
        subscription_id: str = DEFAULT_SUBSCRIPTION_ID,
        lro_polls: int = 1,
    ) -> None:
        """Generate the certificate into ``directory``; the server starts with :meth:`start`."""
        self.subscription_id = subscription_id
        self.lro_polls = lro_polls
        self.usage_page_size = 50
        self.retry_after = 0
        """Seconds sent as ``Retry-After`` while an operation is in progress."""
        self.enforce_quota = True
        """Reject scale-outs and VM starts that exceed a quota set with :meth:`set_usage`."""
        self.serve_vmss_etag = True
        self.latency = 0.0
        """Seconds every answer waits before it is sent (an ARM round trip; the server sends
        without Nagle's delay, ``tests.tls.QuietHandler``)."""
        self.ratelimit_headers: dict[str, str] = {}
        """Sent on every answer, e.g. ``{"x-ms-ratelimit-remaining-subscription-reads": "3"}``:
        "Each request includes values for the number of remaining read and write requests"
        (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling)."""
        self.vmss_body = "compact"
        """Scale set bodies of lists and GETs: ``compact`` (the fields the examples share, about
        1.1 kB), ``example`` (Microsoft's ``VirtualMachineScaleSet_Get_WithUserData`` example
        body, about 2.5 kB: network profile, gallery applications, host group) or ``maximum``
        (the ``VirtualMachineScaleSet_Update_MaximumSet_Gen`` response, every property set,
        about 8.4 kB), each with this scale set's own name, id, location, sku, state and etag
        (``tests/fixtures/compute/``; Azure/azure-rest-api-specs, MIT licence)."""
        self.vmss_page_size = 100
        """Scale sets per page of a list; more follow through ``nextLink``
        (``VirtualMachineScaleSets_ListAll``: "Use nextLink property in the response to get the
        next page")."""
        self.capacity_patch_skips_protected = False
        """Whether a capacity PATCH that shrinks the scale set leaves instances with
        ``protectFromScaleIn`` alone. Microsoft's pages disagree: instance protection "Protects
        instance from Autoscale initiated scale-in" and "User-initiated instance operations …
        are not blocked" (https://learn.microsoft.com/azure/virtual-machine-scale-sets/
        virtual-machine-scale-sets-instance-protection), while the scale-in policy removes "the
        newest ones that are not protected from scale-in" (``ScaleInPolicy.rules``). Azure does
        not promise it for a user's PATCH, so by default the fake does not skip them (the
        daemon must not rely on it); ``protectFromScaleSetActions`` ("operations initiated on
        the scale set") is always honoured."""
        self.other_subscriptions: set[str] = set()
        """Subscriptions served besides ``subscription_id`` (``add_subscription``)."""
        """``False``: scale set GETs carry no ``etag`` (as from an API or a cloud without one)."""
        self.default_quota_limit: int | None = 10_000
        """``usage.list`` always lists the regional total and the VM families (Microsoft's
        ``az vm list-usage`` output, https://learn.microsoft.com/azure/virtual-machines/quotas):
        lines :meth:`set_usage` did not set are listed for ``cores`` and each family in use, with
        this limit and the cores of every scale set instance and VM of the location, allocated
        or deallocated, as current value. ``None``: list only what :meth:`set_usage` set."""
        self._lock = threading.RLock()
        self._requests: list[Recorded] = []
        self._scale_sets: dict[tuple[str, str], _ScaleSet] = {}
        self._vms: dict[tuple[str, str], _VirtualMachine] = {}
        self._usages: dict[str, dict[str, _Usage]] = {}
        self._vm_skus: dict[str, _VmSku] = {s.name.lower(): s for s in _DEFAULT_VM_SKUS}
        self._series: dict[tuple[str, str, str], dict[str | None, _Series]] = {}
        self._regions: dict[str, str] = {}
        self._operations: dict[str, _Operation] = {}
        self._faults: list[_Fault] = []
        self._autoscale: dict[str, dict[str, JSON]] = {}
        self._next_failure: tuple[str, str] | None = None
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file, self._key_file = write_certificate(directory, "fakeazure")
        self._routes = self._build_routes()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start serving on an ephemeral port (idempotent)."""
        with self._lock:
            if self._server is not None:
                return self
            server, thread = serve_tls(
                _Handler, self, self.ca_file, self._key_file, name="fakeazure"
            )
            self._server, self._thread = server, thread
            return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``https://127.0.0.1:43117``."""
        server = self._server
        if server is None:
            raise RuntimeError("FakeAzure is not started")
        return f"https://127.0.0.1:{server.server_address[1]}"

    # --------------------------------------------------------- recorded requests

    @property
    def requests(self) -> list[Recorded]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def writes(self) -> list[Recorded]:
        """Recorded requests that change something: PATCH/PUT/DELETE and POST except metrics."""
        return [r for r in self.requests if r.is_write]

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------ scale sets

    def add_vmss(
        self,
        resource_group: str,
        name: str,
        *,
        capacity: int,
        sku_name: str = "Standard_F4s_v2",
        tier: str = "Standard",
        location: str = "westeurope",
        vcpus_per_instance: int = 4,
        quota_family: str = "standardFSv2Family",
        subscription_id: str | None = None,
    ) -> str:
        """Create a uniform scale set with instances ``0 .. capacity-1``; return its id.
        ``subscription_id``: one added with :meth:`add_subscription` (resource group names
        stay unique across subscriptions in this fake)."""
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        resource_id = (
            f"/subscriptions/{subscription_id or self.subscription_id}"
            f"/resourceGroups/{resource_group}"
            f"/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
        )
        with self._lock:
            key = (resource_group.lower(), name.lower())
            if key in self._scale_sets:
                raise ValueError(f"scale set {resource_group}/{name} already exists")
            scale_set = _ScaleSet(
                resource_id=resource_id,
                resource_group=resource_group,
                name=name,
                sku_name=sku_name,
                tier=tier,
                location=location,
                vcpus_per_instance=vcpus_per_instance,
                quota_family=quota_family,
                provisioning_state="Succeeded",
                unique_id=str(uuid.uuid4()),
                time_created=_arm_time(),
                instances={},
            )
            _add_instances(scale_set, capacity)
            self._scale_sets[key] = scale_set
        return resource_id

    def vmss_capacity(self, resource_group: str, name: str) -> int:
        """Current ``sku.capacity`` of a scale set."""
        with self._lock:
            return self._known_scale_set(resource_group, name).capacity

    def vmss_instance_ids(self, resource_group: str, name: str) -> list[str]:
        """Instance ids of a scale set, in ascending order."""
        with self._lock:
            return [str(i) for i in sorted(self._known_scale_set(resource_group, name).instances)]

    def set_vmss_provisioning_state(self, resource_group: str, name: str, state: str) -> None:
        """Override ``provisioningState`` (e.g. ``"Updating"`` for someone else's change)."""
        with self._lock:
            self._known_scale_set(resource_group, name).provisioning_state = state

    def set_vmss_capacity(self, resource_group: str, name: str, capacity: int) -> None:
        """Someone else (an operator in the portal, Pexip, Azure autoscale) sets ``sku.capacity``:
        applied at once, and the scale set's etag changes, as for any update of the resource."""
        with self._lock:
            scale_set = self._known_scale_set(resource_group, name)
            self._apply_capacity(scale_set, capacity)

    def vmss_etag(self, resource_group: str, name: str) -> str:
        """The scale set's current etag as served (quoted, e.g. ``'"3"'``)."""
        with self._lock:
            return f'"{self._known_scale_set(resource_group, name).etag}"'

    def set_instance_protection(
        self,
        resource_group: str,
        name: str,
        instance_id: str,
        *,
        from_scale_in: bool = True,
        from_scale_set_actions: bool = False,
    ) -> None:
        """Set an instance's protection policy directly."""
        with self._lock:
            instance = self._known_scale_set(resource_group, name).instances.get(int(instance_id))
            if instance is None:
                raise KeyError(f"{resource_group}/{name} has no instance {instance_id}")
            instance.protect_from_scale_in = from_scale_in
            instance.protect_from_scale_set_actions = from_scale_set_actions

    def set_instance_power_state(
        self, resource_group: str, name: str, instance_id: str, state: str
    ) -> None:
        """Set the power state an instance's view reports (``""``: none reported)."""
        with self._lock:
            instance = self._known_scale_set(resource_group, name).instances.get(int(instance_id))
            if instance is None:
                raise KeyError(f"{resource_group}/{name} has no instance {instance_id}")
            instance.power_state = state

    def _known_scale_set(self, resource_group: str, name: str) -> _ScaleSet:
        """A scale set for the state API, or ``KeyError``."""
        scale_set = self._scale_sets.get((resource_group.lower(), name.lower()))
        if scale_set is None:
            raise KeyError(f"no scale set {resource_group}/{name}")
        return scale_set

    # ------------------------------------------------------------ virtual machines

    def add_vm(
        self,
        resource_group: str,
        name: str,
        *,
        power_state: str = "deallocated",
        vcpus: int = 8,
        location: str = "westeurope",
        tags: dict[str, str] | None = None,
        vm_size: str = "Standard_F8s_v2",
        quota_family: str | None = None,
    ) -> str:
        """Create a standalone VM; return its id."""
        resource_id = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{name}"
        )
        with self._lock:
            key = (resource_group.lower(), name.lower())
            if key in self._vms:
                raise ValueError(f"virtual machine {resource_group}/{name} already exists")
            self._vms[key] = _VirtualMachine(
                resource_id=resource_id,
                resource_group=resource_group,
                name=name,
                location=location,
                vm_size=vm_size,
                vcpus=vcpus,
                quota_family=quota_family,
                power_state=power_state,
                tags=dict(tags or {}),
                vm_id=str(uuid.uuid4()),
                time_created=_arm_time(),
            )
        return resource_id

    def vm_power_state(self, resource_group: str, name: str) -> str:
        """Power state of a VM, e.g. ``"running"``, ``"starting"``, ``"deallocated"``."""
        with self._lock:
            vm = self._vms.get((resource_group.lower(), name.lower()))
            if vm is None:
                raise KeyError(f"no virtual machine {resource_group}/{name}")
            return vm.power_state

    # ------------------------------------------------------------ quota and metrics

    def add_subscription(self, subscription_id: str) -> None:
        """Serve another subscription too (its own scale sets and quota: vCPU quota is per
        subscription and region, https://learn.microsoft.com/azure/virtual-machines/quotas)."""
        with self._lock:
            self.other_subscriptions.add(subscription_id.lower())

    def _subscriptions(self) -> set[str]:
        return {self.subscription_id.lower(), *self.other_subscriptions}

    def _usage_key(self, subscription: str | None, location: str) -> str:
        """Where a subscription's usage lines of a location are kept."""
        if not subscription or subscription.lower() == self.subscription_id.lower():
            return location.lower()
        return f"{subscription.lower()}/{location.lower()}"

    def set_usage(
        self,
        location: str,
        name: str,
        *,
        current: int,
        limit: int,
        subscription_id: str | None = None,
    ) -> None:
        """Set one usage entry of a location, e.g. ``("westeurope", "cores", ...)``."""
        with self._lock:
            entries = self._usages.setdefault(self._usage_key(subscription_id, location), {})
            existing = entries.get(name.lower())
            if existing is None:
                entries[name.lower()] = _Usage(name, current, limit)
            else:
                existing.current, existing.limit = current, limit

    def set_vm_sku(
        self,
        name: str,
        *,
        family: str,
        vcpus: int,
        locations: Sequence[str] | None = None,
    ) -> None:
        """Offer (or replace) a VM size in the Resource SKUs list (``None``: every location)."""
        with self._lock:
            self._vm_skus[name.lower()] = _VmSku(
                name, family, vcpus, tuple(x.lower() for x in locations) if locations else None
            )

    def add_autoscale_setting(
        self,
        resource_group: str,
        name: str,
        *,
        target_resource_uri: str,
        enabled: bool = True,
        location: str = "westeurope",
        minimum: int = 1,
        maximum: int = 10,
        default: int = 1,
    ) -> str:
        """An Azure autoscale setting (``Microsoft.Insights/autoscalesettings``) in a resource
        group, shaped after Microsoft's ``listAutoscaleSetting.json`` example
        (specification/monitor/resource-manager/Microsoft.Insights/stable/2022-10-01/examples):
        one profile scaling on the target's ``Percentage CPU``; returns its id."""
        setting_id = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{resource_group}"
            f"/providers/microsoft.insights/autoscalesettings/{name}"
        )

        def rule(direction: str, operator: str, threshold: float) -> JSON:
            return {
                "metricTrigger": {
                    "metricName": "Percentage CPU",
                    "metricResourceUri": target_resource_uri,
                    "timeGrain": "PT1M",
                    "statistic": "Average",
                    "timeWindow": "PT5M",
                    "timeAggregation": "Average",
                    "operator": operator,
                    "threshold": threshold,
                    "dividePerInstance": False,
                },
                "scaleAction": {
                    "direction": direction,
                    "type": "ChangeCount",
                    "value": "1",
                    "cooldown": "PT5M",
                },
            }

        body: JSON = {
            "id": setting_id,
            "name": name,
            "type": "Microsoft.Insights/autoscaleSettings",
            "location": location,
            "tags": {},
            "properties": {
                "profiles": [
                    {
                        "name": "default",
                        "capacity": {
                            "minimum": str(minimum),
                            "maximum": str(maximum),
                            "default": str(default),
                        },
                        "rules": [
                            rule("Increase", "GreaterThan", 70.0),
                            rule("Decrease", "LessThan", 25.0),
                        ],
                    }
                ],
                "enabled": enabled,
                "name": name,
                "targetResourceUri": target_resource_uri,
                "notifications": [],
            },
        }
        with self._lock:
            self._autoscale.setdefault(resource_group.lower(), {})[name.lower()] = body
        return setting_id

    def usage(self, location: str, name: str) -> tuple[int, int]:
        """``(current, limit)`` of a usage entry set with :meth:`set_usage`."""
        with self._lock:
            entry = self._usages[location.lower()][name.lower()]
            return entry.current, entry.limit

    def set_metric(
        self,
        resource_id: str,
        namespace: str,
        metric: str,
        points: Sequence[tuple[dt.datetime, float | None]],
        *,
        dimension: tuple[str, str] | None = None,
        unit: str = "Count",
    ) -> None:
        """Store one timeseries per (resource, metric, dimension value); ``None`` is a null bucket.

        Naive datetimes are taken as UTC.  Setting the same series again replaces it.
        """
        normalized = sorted(
            ((_as_utc(t), None if v is None else float(v)) for t, v in points),
            key=lambda p: p[0],
        )
        name, value = dimension if dimension is not None else (None, None)
        key = (resource_id.lower(), namespace.lower(), metric.lower())
        with self._lock:
            self._series.setdefault(key, {})[value] = _Series(metric, unit, name, value, normalized)

    def set_metric_source(
        self,
        resource_id: str,
        namespace: str,
        metric: str,
        source: Callable[[dt.datetime], float | None],
        *,
        unit: str = "Count",
    ) -> None:
        """Serve one timeseries whose value at each minute (UTC) is ``source(minute)``
        (``None``: a null bucket), for whatever span is asked: runs of simulated weeks read
        a load that never runs out and costs no memory."""
        key = (resource_id.lower(), namespace.lower(), metric.lower())
        with self._lock:
            self._series.setdefault(key, {})[None] = _Series(
                metric, unit, None, None, [], source=source
            )

    # ------------------------------------------------------------ faults and operations

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        code: str = "InternalServerError",
        message: str = "injected",
        headers: dict[str, str] | None = None,
        times: int = 1,
        content_regex: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests matching method (``"*"`` = any) and path regex.

        The regex is searched case-insensitively in the percent-decoded path (no query);
        ``content_regex``, when given, must also be found in the query or the JSON body.
        """
        with self._lock:
            self._faults.append(
                _Fault(
                    method=method.upper(),
                    pattern=re.compile(path_regex, re.IGNORECASE),
                    status=status,
                    code=code,
                    message=message,
                    headers=dict(headers or {}),
                    remaining=times,
                    content=_content_pattern(content_regex),
                )
            )

    def inject_transport_fault(
        self,
        method: str,
        path_regex: str,
        kind: str,
        *,
        status: int = 200,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
        content_regex: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with a fault that is not an ARM error.

        Requests match as in :meth:`inject_fault` (``content_regex`` included).

        ``kind`` is one of ``TRANSPORT_FAULTS``:

        - ``raw``: ``status`` with ``body`` as given (e.g. a 502 HTML page from a gateway, a 200
          ``text/html`` login page) and ``content_type``;
        - ``reset``: close the connection without answering (TCP RST);
        - ``truncate``: ``status`` and the headers of the real answer, its Content-Length, but
          only half of its body before the connection closes;
        - ``stall``: wait ``delay`` seconds (longer than the client's read timeout), then answer
          normally;
        - ``redirect``: ``status`` (default 302 here) with ``Location: body.decode()``;
        - ``nextlink``: the real answer (a list), its ``nextLink`` set to ``body.decode()``
          with ``{url}`` replaced by the fake's base URL, ``{path}`` by the request's path and
          ``{n}`` by how many times the fault has served (so each link differs);
        - ``huge``: a 200 ``application/json`` answer of ``delay`` MiB (``{"value": [...``
          that never closes), streamed in chunks.
        """
        if kind not in TRANSPORT_FAULTS:
            raise ValueError(f"unknown transport fault {kind!r}; one of {TRANSPORT_FAULTS}")
        if kind == "redirect":
            status = 302 if status == 200 else status
            headers = {**(headers or {}), "Location": body.decode()}
            body = b""
        with self._lock:
            self._faults.append(
                _Fault(
                    method=method.upper(),
                    pattern=re.compile(path_regex, re.IGNORECASE),
                    status=status,
                    code="",
                    message="",
                    headers=dict(headers or {}),
                    remaining=times,
                    kind=kind,
                    raw=body,
                    content_type=content_type,
                    delay=delay,
                    content=_content_pattern(content_regex),
                )
            )

    def fail_next_operation(
        self,
        code: str = "OperationNotAllowed",
        message: str = (
            "Operation could not be completed as it results in exceeding approved "
            "standardFSv2Family Cores quota."
        ),
    ) -> None:
        """Make the next long-running operation end with status ``Failed`` and this error."""
        with self._lock:
            self._next_failure = (code, message)

    def complete_operations(self) -> int:
        """Finish every operation still in progress (for callers that do not poll)."""
        with self._lock:
            pending = [op for op in self._operations.values() if op.status == "InProgress"]
            for op in pending:
                self._finish(op)
            return len(pending)

    # =================================================================== serving

    def _handle(self, request: _Request) -> _Response:
        """Record, authenticate, apply faults and route one request."""
        with self._lock:
            self._requests.append(
                Recorded(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    body=request.body,
                    headers=dict(request.headers),
                )
            )
            operation = rbac_operation(request.method, request.path)
            if operation is None:
                UNMAPPED_REQUESTS.append(f"{request.method} {request.path}")
            else:
                OBSERVED_OPERATIONS.add(operation)
            if not _BEARER.fullmatch((request.header("Authorization") or "").strip()):
                return _unauthorized()
            fault = self._take_fault(request)
            if fault is not None and fault.kind == "error":
                return _Response(
                    fault.status, _error_body(fault.code, fault.message), fault.headers
                )
            if fault is not None and fault.kind == "huge":
                return _Response(200, action="huge", delay=fault.delay)
            if fault is not None and fault.kind in ("raw", "redirect", "reset"):
                return _Response(
                    fault.status,
                    headers=fault.headers,
                    raw=fault.raw,
                    content_type=fault.content_type,
                    action="reset" if fault.kind == "reset" else "",
                )
            try:
                response = self._route(request)
            except _ArmError as error:
                response = error.response()
            if fault is not None and fault.kind == "nextlink" and isinstance(response.body, dict):
                fault.served += 1
                link = (fault.raw or b"").decode()
                response.body["nextLink"] = (
                    link.replace("{url}", self.url)
                    .replace("{path}", request.path)
                    .replace("{n}", str(fault.served))
                )
            if fault is not None and fault.kind == "truncate":
                response.action = "truncate"
            elif fault is not None and fault.kind == "stall":
                response.delay = fault.delay
            return response

    def _take_fault(self, request: _Request) -> _Fault | None:
        """The first armed fault matching the request, consuming one use of it."""
        for fault in self._faults:
            if fault.method not in ("*", request.method):
                continue
            if fault.pattern.search(request.path) is None:
                continue
            if fault.content is not None and fault.content.search(_content_text(request)) is None:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def _route(self, request: _Request) -> _Response:
        """Find the endpoint for a request and run it."""
        path_known = False
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            if route.method != request.method:
                path_known = True
                continue
            if request.invalid_json:
                raise _ArmError(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized.",
                )
            if route.api_version and not request.param("api-version"):
                raise _ArmError(
                    400,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                )
            if route.arm and match["sub"].lower() not in self._subscriptions():
                raise _ArmError(
                    404,
                    "SubscriptionNotFound",
                    f"The subscription '{match['sub']}' could not be found.",
                )
            return route.handler(request, match)
        if path_known:
            raise _ArmError(
                405,
                "MethodNotAllowed",
                f"The requested resource does not support http method '{request.method}'.",
            )
        raise _ArmError(
            404, "NotFound", f"No HTTP resource was found that matches '{request.path}'."
        )

    def _build_routes(self) -> list[_Route]:
        """The endpoint table; paths match case-insensitively like ARM."""
        table: list[tuple[str, str, Callable[[_Request, re.Match[str]], _Response]]] = [
            ("GET", _RG + _COMPUTE + r"/virtualMachineScaleSets", self._list_vmss),
            ("GET", _SUB + _COMPUTE + r"/virtualMachineScaleSets", self._list_all_vmss),
            ("GET", _VMSS, self._get_vmss),
            ("PATCH", _VMSS, self._patch_vmss),
            ("POST", _VMSS + r"/delete", self._delete_instances),
            ("GET", _VMSS + r"/virtualMachines", self._list_instances),
            ("GET", _INSTANCE, self._get_instance),
            ("PUT", _INSTANCE, self._update_instance),
            ("PATCH", _INSTANCE, self._update_instance),
            ("GET", _SUB + _COMPUTE + r"/virtualMachines", self._list_all_vms),
            ("GET", _RG + _COMPUTE + r"/virtualMachines", self._list_vms),
            ("GET", _VM, self._get_vm),
            ("GET", _VM + r"/instanceView", self._vm_instance_view),
            ("POST", _VM + r"/start", self._start_vm),
            ("POST", _VM + r"/deallocate", self._deallocate_vm),
            ("GET", _LOCATION + r"/usages", self._list_usages),
            ("GET", _SUB + _COMPUTE + r"/skus", self._list_skus),
            ("GET", _LOCATION + r"/operations/(?P<op>[^/]+)", self._get_operation),
            ("GET", _INSIGHTS_RG + r"/autoscalesettings", self._list_autoscale),
        ]
        routes = [_Route(m, re.compile(p + "/?", re.IGNORECASE), h) for m, p, h in table]
        routes.append(
            _Route(
                "POST",
                re.compile(_SUB + r"/metrics:getBatch/?", re.IGNORECASE),
                self._metrics_batch,
                arm=False,
            )
        )
        routes.append(
            _Route(
                "POST",
                re.compile(r"(?P<resource>/subscriptions/[^/]+/resourceGroups/.+)/metrics/?", re.I),
                self._ingest_metric,
                arm=False,
                api_version=False,
            )
        )
        return routes

    # ------------------------------------------------------------ lookups

    def _scale_set(self, resource_group: str, name: str) -> _ScaleSet:
        """A scale set, or an ARM ``ResourceNotFound`` error."""
        scale_set = self._scale_sets.get((resource_group.lower(), name.lower()))
        if scale_set is None:
            raise _not_found("virtualMachineScaleSets", name, resource_group)
        return scale_set

    def _vm(self, resource_group: str, name: str) -> _VirtualMachine:
        """A VM, or an ARM ``ResourceNotFound`` error."""
        vm = self._vms.get((resource_group.lower(), name.lower()))
        if vm is None:
            raise _not_found("virtualMachines", name, resource_group)
        return vm

    def _instance(self, scale_set: _ScaleSet, instance_id: str) -> _Instance:
        """A scale set instance, or the ``NotFound`` error compute answers with."""
        instance = scale_set.instances.get(int(instance_id)) if instance_id.isdigit() else None
        if instance is None:
            raise _ArmError(404, "NotFound", "The entity was not found in this Azure location.")
        return instance

    # ------------------------------------------------------------ scale set endpoints

    def _list_vmss(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../virtualMachineScaleSets: scale sets of a resource group."""
        group = match["rg"].lower()
        found = [s for (rg, _), s in self._scale_sets.items() if rg == group]
        return self._vmss_page(request, match, [s for s in found if _in_sub(s, match["sub"])])

    def _list_all_vmss(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET /subscriptions/{sub}/providers/Microsoft.Compute/virtualMachineScaleSets
        (``VirtualMachineScaleSets_ListAll``): every scale set of the subscription."""
        found = [s for s in self._scale_sets.values() if _in_sub(s, match["sub"])]
        return self._vmss_page(request, match, found)

    def _vmss_page(
        self, request: _Request, match: re.Match[str], found: list[_ScaleSet]
    ) -> _Response:
        """One page of ``vmss_page_size`` scale sets; a real ``nextLink`` to the rest."""
        token = request.param("$skiptoken") or "0"
        if not token.isdigit():
            raise _invalid_parameter("$skiptoken", "The value of parameter $skiptoken is invalid.")
        offset, size = int(token), max(1, self.vmss_page_size)
        body: JSON = {"value": [self._vmss_body(s) for s in found[offset : offset + size]]}
        if offset + size < len(found):
            body["nextLink"] = (
                f"{self.url}{request.path}?api-version={request.param('api-version')}"
                f"&$skiptoken={offset + size}"
            )
        return _Response(200, body)

    def _get_vmss(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../virtualMachineScaleSets/{name}."""
        found = self._scale_set(match["rg"], match["vmss"])
        if not _in_sub(found, match["sub"]):
            raise _not_found("virtualMachineScaleSets", match["vmss"], match["rg"])
        body = self._vmss_body(found)
        if not self.serve_vmss_etag:
            del body["etag"]
        return _Response(200, body)

    def _vmss_body(self, scale_set: _ScaleSet) -> JSON:
        """A scale set as ``vmss_body`` shapes it."""
        if self.vmss_body == "compact":
            return _vmss_json(scale_set)
        return _example_vmss_json(scale_set, _VMSS_EXAMPLES[self.vmss_body]())

    def _patch_vmss(self, request: _Request, match: re.Match[str]) -> _Response:
        """PATCH .../virtualMachineScaleSets/{name}: capacity change as an LRO.

        ``If-Match`` is honoured: the scale set's etag is "returned in Create/Update/Get response
        of the VMSS, so that customer can supply it in the header to ensure optimistic updates"
        (https://learn.microsoft.com/dotnet/api/azure.resourcemanager.compute.virtualmachinescalesetdata.etag),
        and a write whose ``If-Match`` no longer matches is refused with ``412 Precondition
        Failed`` (ARM resource provider contract, "ETags for resources":
        https://github.com/Azure/azure-resource-manager-rpc/blob/master/v1.0/resource-api-reference.md).
        """
        scale_set = self._scale_set(match["rg"], match["vmss"])
        if_match = request.header("If-Match")
        if if_match is not None and if_match.strip() not in ("*", f'"{scale_set.etag}"'):
            raise _ArmError(
                412,
                "PreconditionFailed",
                f"The condition specified using HTTP conditional header(s) is not met. "
                f'If-Match: {if_match}, current ETag: "{scale_set.etag}".',
            )
        body = _require_object(request.body)
        sku = body.get("sku") or {}
        if not isinstance(sku, dict):
            raise _invalid_parameter("sku", "The value of parameter sku is invalid.")
        target = sku.get("capacity", scale_set.capacity)
        if not isinstance(target, int) or isinstance(target, bool) or target < 0:
            raise _invalid_parameter("sku.capacity", "The value of parameter capacity is invalid.")
        extra_cores = (target - scale_set.capacity) * scale_set.vcpus_per_instance
        self._check_quota(_quota_place(self, scale_set), scale_set.quota_family, extra_cores)
        sku_name = str(sku.get("name") or scale_set.sku_name)
        tier = str(sku.get("tier") or scale_set.tier)

        def succeed() -> None:
            scale_set.sku_name, scale_set.tier = sku_name, tier
            self._apply_capacity(scale_set, target)
            scale_set.provisioning_state = "Succeeded"

        def fail() -> None:
            scale_set.provisioning_state = "Failed"

        scale_set.provisioning_state = "Updating"
        scale_set.etag += 1
        operation = self._start_operation(scale_set.location, request, succeed, fail)
        echoed = self._vmss_body(scale_set)
        echoed["sku"] = {"name": sku_name, "tier": tier, "capacity": target}
        headers = {"Azure-AsyncOperation": self._operation_url(operation)}
        return _Response(200, echoed, headers)

    def _apply_capacity(self, scale_set: _ScaleSet, target: int) -> None:
        """Grow or shrink a scale set to ``target`` and account the cores in usage.

        Scale-in removes the highest instance ids (the newest), skipping instances protected
        from scale set actions — and from scale-in only with ``capacity_patch_skips_protected``
        — so capacity stays above ``target`` when too few others exist.
        """
        before = scale_set.capacity
        skip_scale_in = self.capacity_patch_skips_protected
        if target > before:
            _add_instances(scale_set, target - before)
        elif target < before:
            victims = sorted(
                (
                    i
                    for i in scale_set.instances.values()
                    if not i.protect_from_scale_set_actions
                    and not (skip_scale_in and i.protect_from_scale_in)
                ),
                key=lambda i: i.instance_id,
                reverse=True,
            )[: before - target]
            for victim in victims:
                del scale_set.instances[victim.instance_id]
        delta = (scale_set.capacity - before) * scale_set.vcpus_per_instance
        if delta:
            scale_set.etag += 1
        self._adjust_usage(_quota_place(self, scale_set), scale_set.quota_family, delta)

    def _delete_instances(self, request: _Request, match: re.Match[str]) -> _Response:
        """POST .../virtualMachineScaleSets/{name}/delete: deleteInstances as an LRO."""
        scale_set = self._scale_set(match["rg"], match["vmss"])
        ids = _require_object(request.body).get("instanceIds")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise _invalid_parameter(
                "instanceIds", "The value of parameter instanceIds is invalid."
            )
        instances = []
        for raw in ids:
            instance = scale_set.instances.get(int(raw)) if raw.isdigit() else None
            if instance is None:
                raise _invalid_parameter(
                    "instanceIds",
                    f"The provided instanceId {raw} is not an active Virtual Machine Scale Set "
                    "VM instanceId.",
                )
            instances.append(instance)

        def succeed() -> None:
            for instance in instances:
                scale_set.instances.pop(instance.instance_id, None)
            scale_set.etag += 1  # sku.capacity changed
            cores = -len(instances) * scale_set.vcpus_per_instance
            self._adjust_usage(_quota_place(self, scale_set), scale_set.quota_family, cores)

        def fail() -> None:
            for instance in instances:
                instance.provisioning_state = "Failed"

        for instance in instances:
            instance.provisioning_state = "Deleting"
        operation = self._start_operation(scale_set.location, request, succeed, fail)
        return _Response(202, None, self._accepted_headers(operation))

    def _list_instances(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../virtualMachineScaleSets/{name}/virtualMachines."""
        scale_set = self._scale_set(match["rg"], match["vmss"])
        # "$expand … Allowed values are 'instanceView'"
        # (https://learn.microsoft.com/rest/api/compute/virtual-machine-scale-set-vms/list)
        view = (request.param("$expand") or "").lower() == "instanceview"
        items = [
            _instance_json(scale_set, scale_set.instances[i], view=view)
            for i in sorted(scale_set.instances)
        ]
        return _Response(200, {"value": items})

    def _get_instance(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../virtualMachineScaleSets/{name}/virtualMachines/{instanceId}."""
        scale_set = self._scale_set(match["rg"], match["vmss"])
        instance = self._instance(scale_set, match["instance"])
        return _Response(200, _instance_json(scale_set, instance))

    def _update_instance(self, request: _Request, match: re.Match[str]) -> _Response:
        """PUT/PATCH .../virtualMachines/{instanceId}: protection policy change as an LRO."""
        scale_set = self._scale_set(match["rg"], match["vmss"])
        instance = self._instance(scale_set, match["instance"])
        properties = _require_object(request.body).get("properties") or {}
        policy = properties.get("protectionPolicy") if isinstance(properties, dict) else None
        scale_in = instance.protect_from_scale_in
        set_actions = instance.protect_from_scale_set_actions
        if isinstance(policy, dict):
            scale_in = bool(policy.get("protectFromScaleIn", scale_in))
            set_actions = bool(policy.get("protectFromScaleSetActions", set_actions))

        def succeed() -> None:
            instance.protect_from_scale_in = scale_in
            instance.protect_from_scale_set_actions = set_actions
            instance.provisioning_state = "Succeeded"
            instance.etag += 1

        def fail() -> None:
            instance.provisioning_state = "Failed"

        instance.provisioning_state = "Updating"
        operation = self._start_operation(scale_set.location, request, succeed, fail)
        echoed = _instance_json(scale_set, instance)
        echoed["properties"]["protectionPolicy"] = {
            "protectFromScaleIn": scale_in,
            "protectFromScaleSetActions": set_actions,
        }
        return _Response(200, echoed, {"Azure-AsyncOperation": self._operation_url(operation)})

    # ------------------------------------------------------------ VM endpoints

    def _list_all_vms(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET /subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines.

        ``statusOnly=true`` "enables fetching run time status of all Virtual Machines in the
        subscription" (https://learn.microsoft.com/rest/api/compute/virtual-machines/list-all):
        each item then carries ``properties.instanceView`` (as ``VirtualMachine_Get_InstanceView``
        shows it) and not the VM's model (no tags, profiles or ``timeCreated``), so callers join
        it with a plain list by id.
        """
        vms = [vm for vm in self._vms.values() if _in_sub(vm, match["sub"])]
        if (request.param("statusOnly") or "").lower() == "true":
            items = [
                {
                    "name": vm.name,
                    "id": vm.resource_id,
                    "type": "Microsoft.Compute/virtualMachines",
                    "location": vm.location,
                    "properties": {"instanceView": _instance_view_json(vm)},
                }
                for vm in vms
            ]
            return _Response(200, {"value": items})
        return _Response(200, {"value": [_vm_json(vm) for vm in vms]})

    def _list_vms(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines."""
        group = match["rg"].lower()
        items = [_vm_json(vm) for (rg, _), vm in self._vms.items() if rg == group]
        return _Response(200, {"value": items})

    def _get_vm(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../virtualMachines/{name}, honouring ``$expand=instanceView``."""
        vm = self._vm(match["rg"], match["vm"])
        body = _vm_json(vm)
        if (request.param("$expand") or "").lower() == "instanceview":
            body["properties"]["instanceView"] = _instance_view_json(vm)
        return _Response(200, body)

    def _vm_instance_view(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../virtualMachines/{name}/instanceView."""
        return _Response(200, _instance_view_json(self._vm(match["rg"], match["vm"])))

    def _start_vm(self, request: _Request, match: re.Match[str]) -> _Response:
        """POST .../virtualMachines/{name}/start."""
        return self._power_operation(request, match, transient="starting", final="running")

    def _deallocate_vm(self, request: _Request, match: re.Match[str]) -> _Response:
        """POST .../virtualMachines/{name}/deallocate."""
        return self._power_operation(request, match, transient="deallocating", final="deallocated")

    def _power_operation(
        self, request: _Request, match: re.Match[str], *, transient: str, final: str
    ) -> _Response:
        """Run a power-state change as an LRO. Quota does not move: "Quota is calculated based
        on the total number of cores in use both allocated and deallocated"
        (https://learn.microsoft.com/azure/virtual-machines/quotas), so a deallocated VM's cores
        are counted already and starting it needs no headroom."""
        vm = self._vm(match["rg"], match["vm"])
        before = vm.power_state

        def succeed() -> None:
            vm.power_state = final
            vm.provisioning_state = "Succeeded"

        def fail() -> None:
            vm.power_state = before
            vm.provisioning_state = "Failed"

        vm.power_state = transient
        vm.provisioning_state = "Updating"
        operation = self._start_operation(vm.location, request, succeed, fail)
        return _Response(202, None, self._accepted_headers(operation))

    # ------------------------------------------------------------ resource SKUs endpoint

    def _list_skus(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET /subscriptions/{sub}/providers/Microsoft.Compute/skus (``ResourceSkus_List``),
        honouring ``$filter=location eq '<loc>'``, shaped after Microsoft's example
        ``Skus/stable/2021-07-01/examples/skus/ListAvailableResourceSkusForARegion.json``."""
        raw = request.param("$filter")
        wanted: str | None = None
        if raw:
            clauses = _FILTER_CLAUSE.findall(raw)
            if len(clauses) != 1 or clauses[0][0].lower() != "location":
                raise _invalid_parameter(
                    "$filter", "The filter is invalid. Only a location filter is supported."
                )
            wanted = clauses[0][1].lower()
        known = sorted(
            {s.location.lower() for s in self._scale_sets.values()}
            | {vm.location.lower() for vm in self._vms.values()}
            | set(self._usages)
        )
        items = []
        for sku in self._vm_skus.values():
            offered = list(sku.locations) if sku.locations is not None else known
            if wanted is not None:
                offered = [loc for loc in offered if loc == wanted]
            if not offered:
                continue
            items.append(_sku_json(sku, offered))
        return _Response(200, {"value": items})

    # ------------------------------------------------------------ autoscale settings endpoint

    def _list_autoscale(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../resourcegroups/{rg}/providers/Microsoft.Insights/autoscalesettings
        (``AutoscaleSettings_ListByResourceGroup``, ``listAutoscaleSetting.json``): every
        setting of the group, enabled or not, whatever it targets; no ``nextLink``."""
        settings = self._autoscale.get(match["rg"].lower(), {})
        return _Response(200, {"value": [json.loads(json.dumps(b)) for b in settings.values()]})

    # ------------------------------------------------------------ usage endpoint

    def _list_usages(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../locations/{loc}/usages, paged by ``usage_page_size`` with a real nextLink."""
        entries = self._usage_lines(match["loc"], match["sub"])
        token = request.param("$skiptoken") or "0"
        if not token.isdigit():
            raise _invalid_parameter("$skiptoken", "The value of parameter $skiptoken is invalid.")
        offset, size = int(token), max(1, self.usage_page_size)
        body: JSON = {
            "value": [
                {
                    "unit": "Count",
                    "currentValue": u.current,
                    "limit": u.limit,
                    "name": {"value": u.name, "localizedValue": _localized_usage_name(u.name)},
                }
                for u in entries[offset : offset + size]
            ]
        }
        if offset + size < len(entries):
            body["nextLink"] = (
                f"{self.url}/subscriptions/{match['sub']}/providers/Microsoft.Compute"
                f"/locations/{match['loc']}/usages?api-version={request.param('api-version')}"
                f"&$skiptoken={offset + size}"
            )
        return _Response(200, body)

    def _usage_lines(self, location: str, subscription: str | None = None) -> list[_Usage]:
        """The lines set with :meth:`set_usage`, then the default ones (``default_quota_limit``)."""
        explicit = self._usages.get(self._usage_key(subscription, location), {})
        lines = list(explicit.values())
        if self.default_quota_limit is None:
            return lines
        sub = subscription or self.subscription_id
        cores: dict[str, int] = {}
        for scale_set in self._scale_sets.values():
            if scale_set.location.lower() == location.lower() and _in_sub(scale_set, sub):
                family = scale_set.quota_family
                used = scale_set.capacity * scale_set.vcpus_per_instance
                cores[family] = cores.get(family, 0) + used
        for vm in self._vms.values():
            sku = self._vm_skus.get(vm.vm_size.lower())
            family = vm.quota_family or (sku.family if sku else None)
            if family and vm.location.lower() == location.lower() and _in_sub(vm, sub):
                cores[family] = cores.get(family, 0) + vm.vcpus
        totals = {"cores": sum(cores.values()), **dict(sorted(cores.items()))}
        for name, used in totals.items():
            if name.lower() not in explicit:
                lines.append(_Usage(name, used, self.default_quota_limit))
        return lines

    # ------------------------------------------------------------ operations

    def _start_operation(
        self,
        location: str,
        request: _Request,
        on_success: Callable[[], None],
        on_failure: Callable[[], None],
    ) -> _Operation:
        """Register a new LRO, consuming an armed :meth:`fail_next_operation`."""
        operation = _Operation(
            op_id=str(uuid.uuid4()),
            location=location,
            api_version=request.param("api-version") or "",
            start_time=_arm_time(),
            polls_left=self.lro_polls,
            on_success=on_success,
            on_failure=on_failure,
            error=self._next_failure,
        )
        self._next_failure = None
        self._operations[operation.op_id] = operation
        return operation

    def _operation_url(self, operation: _Operation, *, monitor: bool = False) -> str:
        """Azure-AsyncOperation URL, or the ``monitor=true`` Location URL of an operation."""
        query = f"api-version={operation.api_version}"
        if monitor:
            query = "monitor=true&" + query
        return (
            f"{self.url}/subscriptions/{self.subscription_id}/providers/Microsoft.Compute"
            f"/locations/{operation.location}/operations/{operation.op_id}?{query}"
        )

    def _accepted_headers(self, operation: _Operation) -> dict[str, str]:
        """Headers of a ``202 Accepted`` answer to an asynchronous POST."""
        return {
            "Location": self._operation_url(operation, monitor=True),
            "Azure-AsyncOperation": self._operation_url(operation),
            "Retry-After": str(self.retry_after),
        }

    def _finish(self, operation: _Operation) -> None:
        """End an operation, applying or abandoning its effect."""
        operation.end_time = _arm_time()
        if operation.error is not None:
            operation.status = "Failed"
            operation.on_failure()
        else:
            operation.status = "Succeeded"
            operation.on_success()

    def _get_operation(self, request: _Request, match: re.Match[str]) -> _Response:
        """GET .../operations/{id}: one status poll (``monitor=true`` is the Location form)."""
        operation = self._operations.get(match["op"].lower())
        if operation is None:
            raise _ArmError(404, "NotFound", "The entity was not found in this Azure location.")
        if operation.status == "InProgress":
            if operation.polls_left > 0:
                operation.polls_left -= 1
            else:
                self._finish(operation)
        in_progress = operation.status == "InProgress"
        retry = {"Retry-After": str(self.retry_after)} if in_progress else {}
        if (request.param("monitor") or "").lower() == "true":
            if in_progress:
                location = {"Location": self._operation_url(operation, monitor=True)}
                return _Response(202, None, {**location, **retry})
            if operation.error is not None:
                raise _ArmError(409, *operation.error)
            return _Response(200, None)
        body: JSON = {"startTime": operation.start_time}
        if operation.end_time is not None:
            body["endTime"] = operation.end_time
        body["status"] = operation.status
        if operation.status == "Failed" and operation.error is not None:
            body["error"] = {"code": operation.error[0], "message": operation.error[1]}
        body["name"] = operation.op_id
        return _Response(200, body, retry)

    # ------------------------------------------------------------ quota accounting

    def _quota_entries(self, location: str, family: str | None) -> Iterable[tuple[str, _Usage]]:
        """The family and regional usage entries that a core change counts against."""
        entries = self._usages.get(location.lower(), {})
        for name, label in ((family, f"{family} Cores"), ("cores", "Total Regional Cores")):
            if name is not None and name.lower() in entries:
                yield label, entries[name.lower()]

    def _check_quota(self, location: str, family: str | None, extra_cores: int) -> None:
        """Reject, like ARM does synchronously, a change that would exceed a quota."""
        if not self.enforce_quota or extra_cores <= 0:
            return
        for label, entry in self._quota_entries(location, family):
            if entry.current + extra_cores > entry.limit:
                raise _ArmError(
                    409,
                    "OperationNotAllowed",
                    f"Operation could not be completed as it results in exceeding approved "
                    f"{label} quota. Additional details - Deployment Model: Resource Manager, "
                    f"Location: {location}, Current Limit: {entry.limit}, Current Usage: "
                    f"{entry.current}, Additional Required: {extra_cores}, (Minimum) New Limit "
                    f"Required: {entry.current + extra_cores}.",
                )

    def _adjust_usage(self, location: str, family: str | None, delta_cores: int) -> None:
        """Move the regional and family core usage by ``delta_cores`` (never below zero)."""
        for _, entry in self._quota_entries(location, family):
            entry.current = max(0, entry.current + delta_cores)

    # ------------------------------------------------------------ metrics endpoint

    def _metrics_batch(self, request: _Request, match: re.Match[str]) -> _Response:
        """POST /subscriptions/{sub}/metrics:getBatch (Azure Monitor metrics data plane)."""
        namespace = request.param("metricnamespace")
        names = [n for n in (request.param("metricnames") or "").split(",") if n]
        if not namespace or not names:
            raise _bad_request("metricnamespace and metricnames are required.")
        start, end = _time_range(request.param("starttime"), request.param("endtime"))
        aggregations = _aggregations(request.param("aggregation"))
        interval = request.param("interval") or "PT1M"
        if interval.upper() == "FULL":
            interval = _iso_duration(end - start)
        top = _top(request.param("top"))
        wanted = _parse_filter(request.param("filter"))
        body = request.body if isinstance(request.body, dict) else {}
        resource_ids = body.get("resourceids")
        if not isinstance(resource_ids, list) or not resource_ids:
            raise _bad_request("The request body must contain a non-empty 'resourceids' list.")
        if len(resource_ids) > MAX_BATCH_RESOURCES:
            raise _bad_request(
                f"The number of resource ids ({len(resource_ids)}) exceeds the maximum of "
                f"{MAX_BATCH_RESOURCES} allowed in a batch request."
            )
        prefix = f"/subscriptions/{match['sub']}/".lower()
        for rid in resource_ids:
            if not isinstance(rid, str) or not rid.lower().startswith(prefix):
                raise _bad_request(f"Resource id '{rid}' is not in subscription {match['sub']}.")
        values = [
            {
                "starttime": request.param("starttime") or _metric_time(start),
                "endtime": request.param("endtime") or _metric_time(end),
                "interval": interval,
                "value": [
                    self._metric_json(rid, namespace, name, start, end, aggregations, wanted, top)
                    for name in names
                ],
                "namespace": namespace.lower(),
                "resourceregion": self._region_of(rid),
                "resourceid": rid,
            }
            for rid in resource_ids
        ]
        return _Response(200, {"values": values})

    def _ingest_metric(self, request: _Request, match: re.Match[str]) -> _Response:
        """POST {resourceId}/metrics: custom-metrics ingestion (``Monitoring Metrics Publisher``).

        Each series' ``max`` is stored at its minute, per dimension value, so the metrics
        endpoint serves back what was published.
        """
        body = _require_object(request.body)
        base = (
            (body.get("data") or {}).get("baseData") if isinstance(body.get("data"), dict) else None
        )
        if not isinstance(base, dict) or not isinstance(body.get("time"), str):
            raise _bad_request("time and data.baseData are required.")
        moment = _parse_time(body["time"]).replace(second=0, microsecond=0)
        namespace, metric = str(base.get("namespace", "")), str(base.get("metric", ""))
        dim_names = base.get("dimNames") or []
        resource = match["resource"]
        key = (resource.lower(), namespace.lower(), metric.lower())
        for series in base.get("series") or []:
            values = series.get("dimValues") or []
            dim = (str(dim_names[0]), str(values[0])) if dim_names and values else None
            table = self._series.setdefault(key, {})
            stored = table.get(dim[1] if dim else None)
            if stored is None:
                stored = _Series(
                    metric, "Count", dim[0] if dim else None, dim[1] if dim else None, []
                )
                table[dim[1] if dim else None] = stored
            stored.points = sorted(
                [p for p in stored.points if p[0] != moment] + [(moment, float(series["max"]))],
                key=lambda p: p[0],
            )
        return _Response(200, None)

    def _metric_json(
        self,
        resource_id: str,
        namespace: str,
        metric: str,
        start: dt.datetime,
        end: dt.datetime,
        aggregations: Sequence[str],
        wanted: Mapping[str, set[str]],
        top: int,
    ) -> JSON:
        """One metric of one resource, split by dimension when the filter names it."""
        table = self._series.get((resource_id.lower(), namespace.lower(), metric.lower()), {})
        stored = next(iter(table.values()), None)
        return {
            "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{metric}",
            "type": "Microsoft.Insights/metrics",
            "name": {
                "value": stored.metric if stored else metric,
                "localizedValue": stored.metric if stored else metric,
            },
            "displayDescription": "",
            "unit": stored.unit if stored else "Count",
            "timeseries": _timeseries(list(table.values()), start, end, aggregations, wanted, top),
            "errorCode": "Success",
        }

    def _region_of(self, resource_id: str) -> str:
        """Location of a known scale set or VM; ``westeurope`` for anything else."""
        resources: list[_ScaleSet | _VirtualMachine] = [
            *self._scale_sets.values(),
            *self._vms.values(),
        ]
        if len(self._regions) != len(resources):  # a dict, not a scan per resource id
            self._regions = {r.resource_id.lower(): r.location for r in resources}
        return self._regions.get(resource_id.lower(), "westeurope")


# ====================================================================== HTTP plumbing


class _Handler(QuietHandler):
    """Turns HTTP requests into :meth:`FakeAzure._handle` calls."""

    def do_GET(self) -> None:
        """Serve GET."""
        self._serve()

    def do_PUT(self) -> None:
        """Serve PUT."""
        self._serve()

    def do_PATCH(self) -> None:
        """Serve PATCH."""
        self._serve()

    def do_POST(self) -> None:
        """Serve POST."""
        self._serve()

    def do_DELETE(self) -> None:
        """Serve DELETE."""
        self._serve()

    def _serve(self) -> None:
        """Parse the request, let the fake answer it and write the response."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        body: Any = None
        invalid_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, invalid_json = raw.decode("utf-8", "replace"), True
        parts = urlsplit(self.path)
        request = _Request(
            method=self.command.upper(),
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            body=body,
            headers=dict(self.headers.items()),
            invalid_json=invalid_json,
        )
        fake = cast(FakeServer, self.server).fake
        try:
            response = fake._handle(request)
        except Exception as error:  # a bug in the fake: answer instead of hanging the client
            response = _Response(500, _error_body("InternalServerError", repr(error)))
        if response.action == "reset":
            # SO_LINGER 0: close() sends a TCP RST, as a dropped connection looks to the client.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if response.action == "huge":
            self._serve_huge(int(response.delay * (1 << 20)))
            return
        if response.delay:
            time.sleep(response.delay)
        if fake.latency:
            time.sleep(fake.latency)
        response.headers = {**fake.ratelimit_headers, **response.headers}
        if response.raw is not None:
            payload, content_type = response.raw, response.content_type
        else:
            payload = b"" if response.body is None else json.dumps(response.body).encode()
            content_type = "application/json; charset=utf-8" if payload else None
        self.send_response(response.status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.action == "truncate":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)

    def _serve_huge(self, size: int) -> None:
        """A JSON list answer of ``size`` bytes without a Content-Length (chunked), as a
        broken gateway or a hostile server streams it; stops when the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b'{"value": [' + b'{"name": {"value": "cores"}}, ' * 2000
        sent = 0
        try:
            while sent < size:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client refused the rest
        self.close_connection = True


# ====================================================================== helpers


def _content_pattern(regex: str | None) -> re.Pattern[str] | None:
    return None if regex is None else re.compile(regex, re.IGNORECASE)


def _content_text(request: _Request) -> str:
    """What ``content_regex`` is searched in: the decoded query, then the JSON body."""
    query = "&".join(f"{k}={v}" for k, v in request.query.items())
    body = json.dumps(request.body) if request.body is not None else ""
    return f"{query}\n{body}"


def _in_sub(resource: _ScaleSet | _VirtualMachine, subscription: str) -> bool:
    """Whether the resource belongs to the subscription (from its id)."""
    return resource.resource_id.lower().startswith(f"/subscriptions/{subscription.lower()}/")


def _quota_place(fake: FakeAzure, scale_set: _ScaleSet) -> str:
    """The key of the usage lines a scale set's cores count against."""
    sub = scale_set.resource_id.split("/")[2]
    return fake._usage_key(sub, scale_set.location)


def _error_body(code: str, message: str) -> JSON:
    """ARM error body."""
    return {"error": {"code": code, "message": message}}


def _unauthorized() -> _Response:
    """ARM's answer to a request without a bearer token."""
    return _Response(
        401,
        _error_body(
            "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
        ),
        {
            "WWW-Authenticate": (
                'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                'error="invalid_token", error_description="The authentication failed because '
                "of missing 'Authorization' header.\""
            )
        },
    )


def _not_found(resource_type: str, name: str, resource_group: str) -> _ArmError:
    """ARM ``ResourceNotFound`` for a compute resource."""
    return _ArmError(
        404,
        "ResourceNotFound",
        f"The Resource 'Microsoft.Compute/{resource_type}/{name}' under resource group "
        f"'{resource_group}' was not found. For more details please go to "
        "https://aka.ms/ARMResourceNotFoundFix",
    )


def _invalid_parameter(target: str, message: str) -> _ArmError:
    """Compute's ``InvalidParameter`` error."""
    return _ArmError(400, "InvalidParameter", f"{message} Target: '{target}'.")


def _bad_request(message: str) -> _ArmError:
    """Azure Monitor's ``BadRequest`` error (it also sets ``x-ms-error-code``)."""
    return _ArmError(400, "BadRequest", message, {"x-ms-error-code": "BadRequest"})


def _require_object(body: Any) -> JSON:
    """The request body as a JSON object, or a 400 error."""
    if not isinstance(body, dict):
        raise _ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def _arm_time(moment: dt.datetime | None = None) -> str:
    """Timestamp as compute writes it, e.g. ``2026-01-05T10:00:00.123456+00:00``."""
    return (moment or dt.datetime.now(dt.UTC)).isoformat()


def _metric_time(moment: dt.datetime) -> str:
    """Timestamp as Azure Monitor writes it, e.g. ``2026-01-05T10:00:00Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_utc(moment: dt.datetime) -> dt.datetime:
    """Aware UTC datetime; naive input is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _parse_time(text: str) -> dt.datetime:
    """Parse an ISO-8601 query timestamp, or raise a 400 error."""
    try:
        return _as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise _bad_request(f"Invalid timestamp '{text}'.") from None


def _time_range(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    """The query window; Azure defaults to the last hour."""
    if (start is None) != (end is None):
        raise _bad_request("Please use both starttime and endtime to specify a time range.")
    if start is None or end is None:
        now = dt.datetime.now(dt.UTC)
        return now - dt.timedelta(hours=1), now
    first, last = _parse_time(start), _parse_time(end)
    if last <= first:
        raise _bad_request("endtime must be after starttime.")
    return first, last


def _aggregations(text: str | None) -> list[str]:
    """Requested aggregations, lower-cased and de-duplicated in order; default average."""
    result: list[str] = []
    for raw in (text or "average").split(","):
        name = raw.strip().lower()
        if name not in _AGGREGATIONS:
            raise _bad_request(f"Invalid aggregation '{raw.strip()}'.")
        if name not in result:
            result.append(name)
    return result


def _top(text: str | None) -> int:
    """The ``top`` parameter (maximum dimension timeseries per metric)."""
    if text is None:
        return DEFAULT_TOP
    if not text.isdigit() or int(text) < 1:
        raise _bad_request(f"Invalid top '{text}'.")
    return int(text)


def _parse_filter(text: str | None) -> dict[str, set[str]]:
    """``Dim eq 'value'`` clauses as {dimension (lower): {values (lower)}}; ``*`` = all."""
    wanted: dict[str, set[str]] = {}
    for name, value in _FILTER_CLAUSE.findall(text or ""):
        wanted.setdefault(name.lower(), set()).add(value.lower())
    return wanted


def _iso_duration(span: dt.timedelta) -> str:
    """Minimal ISO-8601 duration such as ``PT4H`` or ``P1DT30M``."""
    seconds = int(span.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return ("P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")) or "PT0S"


def _data_point(
    moment: dt.datetime, value: float | None, count: int, aggregations: Sequence[str]
) -> JSON:
    """One metric value; a null bucket carries only ``timeStamp``, as Azure sends it."""
    point: JSON = {"timeStamp": _metric_time(moment)}
    if value is not None:
        for aggregation in aggregations:
            point[aggregation] = count if aggregation == "count" else value
    return point


def _timeseries(
    series: Sequence[_Series],
    start: dt.datetime,
    end: dt.datetime,
    aggregations: Sequence[str],
    wanted: Mapping[str, set[str]],
    top: int,
) -> list[JSON]:
    """Timeseries of one metric: one per selected dimension value, else all summed into one."""
    if not series:
        return []
    split = [s for s in series if s.dimension_name and s.dimension_name.lower() in wanted]
    if split:
        result = []
        for s in split:
            values = wanted[cast(str, s.dimension_name).lower()]
            if "*" not in values and cast(str, s.dimension_value).lower() not in values:
                continue
            label = cast(str, s.dimension_name).lower()
            result.append(
                {
                    "metadatavalues": [
                        {
                            "name": {"value": label, "localizedValue": label},
                            "value": s.dimension_value,
                        }
                    ],
                    "data": [_data_point(t, v, 1, aggregations) for t, v in s.window(start, end)],
                }
            )
        return result[:top]
    buckets: dict[dt.datetime, list[float]] = {}
    for s in series:
        for moment, value in s.window(start, end):
            bucket = buckets.setdefault(moment, [])
            if value is not None:
                bucket.append(value)
    data = [
        _data_point(moment, sum(values) if values else None, len(values), aggregations)
        for moment, values in sorted(buckets.items())
    ]
    return [{"metadatavalues": [], "data": data}]


def _localized_usage_name(name: str) -> str:
    """Portal-style display name of a usage entry."""
    if name.lower() == "cores":
        return "Total Regional vCPUs"
    family = re.fullmatch(r"standard(\w+?)Family", name, re.IGNORECASE)
    if family:
        return f"Standard {family[1]} Family vCPUs"
    return name


def _computer_name(prefix: str, instance_id: int) -> str:
    """Uniform scale set computer name: prefix plus the instance id in base 36, six digits."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    encoded = ""
    while True:
        instance_id, rest = divmod(instance_id, 36)
        encoded = digits[rest] + encoded
        if instance_id == 0:
            break
    return prefix + encoded.rjust(6, "0")


def _add_instances(scale_set: _ScaleSet, count: int) -> None:
    """Add ``count`` instances, continuing after the highest id ever present."""
    next_id = max(scale_set.instances, default=-1) + 1
    for instance_id in range(next_id, next_id + count):
        scale_set.instances[instance_id] = _Instance(
            instance_id=instance_id, vm_id=str(uuid.uuid4()), time_created=_arm_time()
        )


def _vmss_json(scale_set: _ScaleSet) -> JSON:
    """Scale set body after ``VirtualMachineScaleSet_Get`` examples."""
    return {
        "name": scale_set.name,
        "id": scale_set.resource_id,
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": scale_set.location,
        "tags": {},
        "sku": {
            "name": scale_set.sku_name,
            "tier": scale_set.tier,
            "capacity": scale_set.capacity,
        },
        "properties": {
            "singlePlacementGroup": False,
            "orchestrationMode": "Uniform",
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "osProfile": {
                    "computerNamePrefix": scale_set.name,
                    "adminUsername": "azureuser",
                    "linuxConfiguration": {"disablePasswordAuthentication": True},
                },
                "storageProfile": {
                    "osDisk": {
                        "createOption": "FromImage",
                        "caching": "ReadWrite",
                        "managedDisk": {"storageAccountType": "Premium_LRS"},
                        "diskSizeGB": 30,
                    },
                    "imageReference": {
                        "publisher": "canonical",
                        "offer": "ubuntu-24_04-lts",
                        "sku": "server",
                        "version": "latest",
                    },
                    "dataDisks": [],
                },
            },
            "provisioningState": scale_set.provisioning_state,
            "overprovision": False,
            "doNotRunExtensionsOnOverprovisionedVMs": False,
            "uniqueId": scale_set.unique_id,
            "platformFaultDomainCount": 1,
            "timeCreated": scale_set.time_created,
        },
        "etag": f'"{scale_set.etag}"',
    }


_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "compute"


@functools.cache
def _example_body(name: str) -> JSON:
    """The ``200`` body of one of Microsoft's scale set examples (read once)."""
    doc = json.loads((_FIXTURES / name).read_text(encoding="utf-8"))
    return cast(JSON, doc["responses"]["200"]["body"])


_VMSS_EXAMPLES: dict[str, Callable[[], JSON]] = {
    "example": lambda: _example_body("VirtualMachineScaleSet_Get_WithUserData.json"),
    "maximum": lambda: _example_body("VirtualMachineScaleSet_Update_MaximumSet_Gen.json"),
}


def _example_vmss_json(scale_set: _ScaleSet, example: JSON) -> JSON:
    """Microsoft's example body with this scale set's own identity, size and state (the rest
    shared with the example, unchanged: it is only serialised)."""
    compact = _vmss_json(scale_set)
    body = dict(example)
    for key in ("name", "id", "type", "location", "sku", "etag"):
        body[key] = compact[key]
    props = dict(example["properties"])
    for key in ("provisioningState", "uniqueId", "timeCreated", "orchestrationMode"):
        props[key] = compact["properties"][key]
    profile = dict(props.get("virtualMachineProfile") or {})
    os_profile = dict(profile.get("osProfile") or {})
    os_profile["computerNamePrefix"] = scale_set.name
    profile["osProfile"] = os_profile
    props["virtualMachineProfile"] = profile
    body["properties"] = props
    return body


def _instance_json(scale_set: _ScaleSet, instance: _Instance, *, view: bool = False) -> JSON:
    """Scale set instance after ``VirtualMachineScaleSetVM_List`` examples; with ``view`` its
    ``properties.instanceView`` (statuses ``ProvisioningState/…`` and ``PowerState/…``)."""
    body = _instance_body(scale_set, instance)
    if view:
        state = instance.provisioning_state
        statuses: list[JSON] = [
            {
                "code": f"ProvisioningState/{state.lower()}",
                "level": "Info" if state != "Failed" else "Error",
                "displayStatus": f"Provisioning {state.lower()}",
                "time": instance.time_created,
            }
        ]
        if instance.power_state:
            statuses.append(
                {
                    "code": f"PowerState/{instance.power_state}",
                    "level": "Info",
                    "displayStatus": f"VM {instance.power_state}",
                }
            )
        body["properties"]["instanceView"] = {
            "computerName": _computer_name(scale_set.name, instance.instance_id),
            "statuses": statuses,
        }
    return body


def _instance_body(scale_set: _ScaleSet, instance: _Instance) -> JSON:
    instance_id = str(instance.instance_id)
    return {
        "name": f"{scale_set.name}_{instance_id}",
        "id": f"{scale_set.resource_id}/virtualMachines/{instance_id}",
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": scale_set.location,
        "instanceId": instance_id,
        "sku": {"name": scale_set.sku_name, "tier": scale_set.tier},
        "properties": {
            "latestModelApplied": True,
            "modelDefinitionApplied": "VirtualMachineScaleSet",
            "provisioningState": instance.provisioning_state,
            "hardwareProfile": {"vmSize": scale_set.sku_name},
            "vmId": instance.vm_id,
            "osProfile": {
                "computerName": _computer_name(scale_set.name, instance.instance_id),
                "adminUsername": "azureuser",
                "linuxConfiguration": {"disablePasswordAuthentication": True},
                "secrets": [],
                "allowExtensionOperations": True,
            },
            "protectionPolicy": {
                "protectFromScaleIn": instance.protect_from_scale_in,
                "protectFromScaleSetActions": instance.protect_from_scale_set_actions,
            },
            "timeCreated": instance.time_created,
        },
        "etag": f'"{instance.etag}"',
    }


def _vm_json(vm: _VirtualMachine) -> JSON:
    """Virtual machine body after ``VirtualMachine_Get`` examples."""
    return {
        "name": vm.name,
        "id": vm.resource_id,
        "type": "Microsoft.Compute/virtualMachines",
        "location": vm.location,
        "tags": dict(vm.tags),
        "properties": {
            "vmId": vm.vm_id,
            "hardwareProfile": {"vmSize": vm.vm_size},
            "storageProfile": {
                "osDisk": {
                    "osType": "Linux",
                    "name": f"{vm.name}_OsDisk_1",
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "managedDisk": {"storageAccountType": "Premium_LRS"},
                    "diskSizeGB": 30,
                },
                "dataDisks": [],
            },
            "osProfile": {"computerName": vm.name, "adminUsername": "azureuser"},
            "provisioningState": vm.provisioning_state,
            "timeCreated": vm.time_created,
        },
    }


def _instance_view_json(vm: _VirtualMachine) -> JSON:
    """Instance view after ``VirtualMachine_Get_InstanceView``: provisioning and power status."""
    state = vm.provisioning_state
    return {
        "computerName": vm.name,
        "osName": "ubuntu",
        "osVersion": "24.04",
        "hyperVGeneration": "V2",
        "statuses": [
            {
                "code": f"ProvisioningState/{state.lower()}",
                "level": "Info" if state != "Failed" else "Error",
                "displayStatus": f"Provisioning {state.lower()}",
                "time": vm.time_created,
            },
            {
                "code": f"PowerState/{vm.power_state}",
                "level": "Info",
                "displayStatus": f"VM {vm.power_state}",
            },
        ],
    }
