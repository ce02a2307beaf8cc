"""Azure adapters: metrics (Azure Monitor), scale set capacity and vCPU quota (Compute).

The only module that imports ``azure.*``. It translates: SDK models become our frozen types and
SDK exceptions become ``scaler.errors`` (``raise … from exc``); it decides nothing.

Retries: the SDK's own retry policy already retries 429 (honouring ``Retry-After``), 5xx and
connection errors for each HTTP call (``[azure] retry_total``). Nothing here wraps those calls in
a second retry loop; a call that still fails becomes a ``TransientError`` and the pool simply
holds until the next tick, which is the daemon's natural backoff.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.polling import LROPoller
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import Sku, VirtualMachineScaleSetUpdate
from azure.monitor.querymetrics import MetricsClient

from scaler.config import STATIC_TOKEN_ENV, AzureConfig, Config, PoolConfig
from scaler.core.metrics import Bucket, merge_series, reduce_window
from scaler.core.quota import VmSize
from scaler.core.types import MetricReading, MetricStatus, QuotaUsage
from scaler.errors import (
    CAPACITY_ERROR_CODES,
    AdapterError,
    CapacityError,
    ConfigError,
    PermanentError,
    TransientError,
)
from scaler.ports import PoolStatus

CallObserver = Callable[[str, str, float], None]
"""Told of every Azure call: (operation, outcome, seconds). Feeds health and Prometheus metrics."""

METRICS_BATCH_LIMIT = 50
"""``metrics:getBatch`` takes at most this many resource ids per call."""


class StaticTokenCredential:
    """A bearer token from ``CVI_AUTOSCALER_STATIC_TOKEN``, for emulators and Azure Stack labs.

    Config validation accepts it only when the endpoints are not public Azure.
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self._token, int(time.time()) + 3600)

    def close(self) -> None:
        """Nothing to release."""


def make_credential(cfg: AzureConfig) -> TokenCredential:
    """The one credential of the process, chosen by ``[azure] credential``."""
    from azure.identity import (
        AzureCliCredential,
        DefaultAzureCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    kind = cfg.credential
    if kind == "static-token":
        token = os.environ.get(STATIC_TOKEN_ENV, "")
        if not token:
            raise ConfigError(f"azure.credential: {STATIC_TOKEN_ENV} is empty, got 'static-token'")
        return StaticTokenCredential(token)
    if kind == "managed-identity":
        if cfg.managed_identity_client_id:
            return ManagedIdentityCredential(client_id=cfg.managed_identity_client_id)
        return ManagedIdentityCredential()
    if kind == "workload-identity":
        return WorkloadIdentityCredential()
    if kind == "azure-cli":
        return AzureCliCredential()
    if cfg.managed_identity_client_id:
        return DefaultAzureCredential(managed_identity_client_id=cfg.managed_identity_client_id)
    return DefaultAzureCredential()


def _client_kwargs(cfg: AzureConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "retry_total": cfg.retry_total,
        "connection_timeout": cfg.timeout_seconds,
        "read_timeout": cfg.timeout_seconds,
    }
    if cfg.ca_bundle is not None:
        kwargs["connection_verify"] = str(cfg.ca_bundle)
    return kwargs


def translate(exc: AzureError, operation: str) -> AdapterError:
    """An SDK exception as our error tree: throttling, 5xx and lost connections are transient."""
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return TransientError(f"{operation}: {exc.message}", operation=operation)
    status = getattr(exc, "status_code", None)
    code = ""
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "code", None):
        code = str(error.code)
    message = getattr(exc, "message", None) or str(exc)
    text = f"{operation}: {code + ': ' if code else ''}{message}".splitlines()[0]
    capacity = _capacity_code(error)
    if capacity:
        return CapacityError(text, operation=operation, code=capacity, status=status)
    if isinstance(exc, (ClientAuthenticationError, ResourceNotFoundError)):
        return PermanentError(text, operation=operation, code=code, status=status)
    if (
        isinstance(exc, HttpResponseError)
        and status is not None
        and (status == 429 or status >= 500)
    ):
        return TransientError(text, operation=operation, code=code, status=status)
    return PermanentError(text, operation=operation, code=code, status=status)


def _capacity_code(error: Any, depth: int = 0) -> str:
    """The capacity error code (``AllocationFailed``…) of an ARM error or of one of its
    ``details`` (a failed operation often wraps it), else ``""``."""
    if error is None or depth > 3:
        return ""
    code = str(getattr(error, "code", "") or "")
    if code in CAPACITY_ERROR_CODES:
        return code
    for detail in getattr(error, "details", None) or []:
        found = _capacity_code(detail, depth + 1)
        if found:
            return found
    return ""


class _Calls:
    """Times each Azure call and tells the observer its outcome."""

    def __init__(self, observer: CallObserver | None) -> None:
        self._observer = observer

    @contextmanager
    def call(self, operation: str) -> Iterator[None]:
        start = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except AzureError as exc:
            err = translate(exc, operation)
            outcome = "transient" if isinstance(err, TransientError) else "error"
            raise err from exc
        except Exception:
            outcome = "error"
            raise
        finally:
            if self._observer is not None:
                self._observer(operation, outcome, time.perf_counter() - start)


class AzureMonitorMetrics:
    """``MetricsSource`` over ``MetricsClient.query_resources`` (``metrics:getBatch``).

    Pools that share a region, namespace, metric, aggregation and filter are read together, up
    to 50 resources per call, so a tick's metric reads are few whatever the number of pools.
    """

    def __init__(
        self,
        config: Config,
        credential: TokenCredential,
        *,
        observer: CallObserver | None = None,
        **client_kwargs: Any,
    ) -> None:
        self._config = config
        self._credential = credential
        self._clients: dict[str, MetricsClient] = {}
        self._calls = _Calls(observer)
        self._client_kwargs = {**_client_kwargs(config.azure), **client_kwargs}

    def _client(self, location: str) -> MetricsClient:
        endpoint = self._config.azure.metrics_endpoint(location)
        client = self._clients.get(endpoint)
        if client is None:
            client = MetricsClient(
                endpoint,
                self._credential,
                audience=self._config.azure.metrics_audience,
                **self._client_kwargs,
            )
            self._clients[endpoint] = client
        return client

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        groups: dict[tuple[str, str, str, str, str, int], list[PoolConfig]] = {}
        for pool in pools:
            m = pool.metric
            span = (m.window_minutes + m.lag_minutes + 1) * 60 + m.history_minutes * 60
            key = (
                self._config.location_of(pool),
                m.namespace,
                m.name,
                m.aggregation,
                m.filter,
                span,
            )
            groups.setdefault(key, []).append(pool)
        out: dict[str, MetricReading] = {}
        for (location, namespace, name, aggregation, filt, span), members in groups.items():
            for start in range(0, len(members), METRICS_BATCH_LIMIT):
                chunk = members[start : start + METRICS_BATCH_LIMIT]
                out.update(
                    self._read_chunk(location, namespace, name, aggregation, filt, span, chunk, now)
                )
        return out

    def _read_chunk(
        self,
        location: str,
        namespace: str,
        name: str,
        aggregation: str,
        filt: str,
        span_seconds: int,
        pools: Sequence[PoolConfig],
        now: float,
    ) -> dict[str, MetricReading]:
        end = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0) + timedelta(
            minutes=1
        )
        start = end - timedelta(seconds=span_seconds)
        ids = list(dict.fromkeys(p.metric_resource_id for p in pools))
        try:
            with self._calls.call("metrics.query_resources"):
                results = self._client(location).query_resources(
                    resource_ids=ids,
                    metric_namespace=namespace,
                    metric_names=[name],
                    timespan=(start, end),
                    granularity=timedelta(minutes=1),
                    aggregations=[aggregation],
                    filter=filt or None,
                )
        except AdapterError as err:
            return {p.name: MetricReading.missing(str(err)) for p in pools}

        series: dict[str, list[list[Bucket]] | None] = {}
        split: dict[str, list[tuple[str, list[Bucket]]]] = {}
        attr = aggregation.lower()
        for index, result in enumerate(results):
            for metric in result.metrics:
                rid = _resource_of(metric.id) or (ids[index] if index < len(ids) else "")
                found: list[list[Bucket]] = []
                for ts in metric.timeseries or []:
                    buckets: list[Bucket] = [
                        (v.timestamp.timestamp(), getattr(v, attr, None)) for v in ts.data or []
                    ]
                    found.append(buckets)
                    vm_name = _vm_name(ts.metadata_values)
                    if vm_name:
                        split.setdefault(rid.lower(), []).append((vm_name, buckets))
                series[rid.lower()] = found or None
        out: dict[str, MetricReading] = {}
        for pool in pools:
            m = pool.metric
            found_series = series.get(pool.metric_resource_id.lower())
            points = merge_series(found_series) if found_series else None
            reading = reduce_window(
                points,
                now=now,
                window_seconds=m.window_minutes * 60,
                lag_seconds=m.lag_minutes * 60,
                reduce=m.reduce,
                history_seconds=m.history_minutes * 60,
            )
            per_vm = split.get(pool.metric_resource_id.lower())
            if per_vm and reading.status is MetricStatus.OK:
                # Each VM's newest complete minute: what a call-safe scale-in chooses from.
                last = []
                for vm_name, vm_points in per_vm:
                    one = reduce_window(
                        vm_points,
                        now=now,
                        window_seconds=m.window_minutes * 60,
                        lag_seconds=m.lag_minutes * 60,
                        reduce="last",
                    )
                    last.append((vm_name, one.calls))
                reading = dataclasses.replace(reading, by_instance=tuple(last))
            out[pool.name] = reading
        return out

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _vm_name(metadata: Mapping[str, str] | None) -> str:
    """The ``VMName`` dimension value of a series (Azure may lower-case the name)."""
    for key, value in (metadata or {}).items():
        if key.lower() == "vmname" and value:
            return str(value)
    return ""


def _resource_of(metric_id: str | None) -> str:
    """``{resourceId}/providers/Microsoft.Insights/metrics/{name}`` → ``{resourceId}``."""
    if not metric_id:
        return ""
    marker = "/providers/microsoft.insights/metrics/"
    cut = metric_id.lower().rfind(marker)
    rid = metric_id[:cut] if cut >= 0 else metric_id
    return rid if rid.startswith("/") else "/" + rid


class AzureResize:
    """A running scale set update (``ResizeHandle``) over the SDK's ``LROPoller``."""

    def __init__(self, poller: LROPoller[Any], operation: str, calls: _Calls) -> None:
        self._poller = poller
        self._operation = operation
        self._calls = calls

    def done(self) -> bool:
        return self._poller.done()

    def result(self, timeout: float | None = None) -> None:
        with self._calls.call(self._operation):
            self._poller.result(timeout=timeout)
        if not self._poller.done():
            raise TimeoutError(f"{self._operation}: still running after {timeout} s")

    def continuation_token(self) -> str | None:
        try:
            return self._poller.continuation_token()
        except Exception:  # a finished poller may have no token left
            return None


class AzureCompute:
    """``PoolActuator`` and ``QuotaReader`` over ``ComputeManagementClient``.

    ``observe`` re-reads the scale set every tick (level-triggered); ``resize`` PATCHes only the
    ``sku`` and returns at once with a handle on the long-running operation.
    """

    def __init__(
        self,
        config: Config,
        credential: TokenCredential,
        *,
        observer: CallObserver | None = None,
        **client_kwargs: Any,
    ) -> None:
        azure = config.azure
        kwargs = {**_client_kwargs(azure), **client_kwargs}
        if azure.polling_interval_seconds is not None:
            kwargs.setdefault("polling_interval", azure.polling_interval_seconds)
        self._client = ComputeManagementClient(
            credential,
            config.subscription_id,
            base_url=azure.resource_manager_url,
            credential_scopes=[azure.arm_audience().rstrip("/") + "/.default"],
            **kwargs,
        )
        self._calls = _Calls(observer)
        self._skus: dict[str, tuple[str | None, str | None]] = {}
        self._vm_sizes: dict[str, dict[str, VmSize]] = {}

    @property
    def client(self) -> ComputeManagementClient:
        """The process's one compute client (shared with the per-instance adapters)."""
        return self._client

    @property
    def calls(self) -> _Calls:
        return self._calls

    def observe(self, pool: PoolConfig) -> PoolStatus:
        with self._calls.call("vmss.get"):
            vmss = self._client.virtual_machine_scale_sets.get(
                pool.resource_group, pool.scale_set_name
            )
        sku = vmss.sku
        if sku is None or sku.capacity is None:
            raise PermanentError(f"vmss.get: {pool.resource_id} has no sku.capacity")
        self._skus[pool.name] = (sku.name, sku.tier)
        state = getattr(vmss, "provisioning_state", None)
        if state is None and getattr(vmss, "properties", None) is not None:
            state = getattr(vmss.properties, "provisioning_state", None)
        return PoolStatus(capacity=int(sku.capacity), provisioning_state=str(state or "Succeeded"))

    def resize(self, pool: PoolConfig, capacity: int) -> AzureResize:
        name, tier = self._skus.get(pool.name, (None, None))
        if name is None:
            self.observe(pool)
            name, tier = self._skus[pool.name]
        update = VirtualMachineScaleSetUpdate(sku=Sku(name=name, tier=tier, capacity=capacity))
        with self._calls.call("vmss.begin_update"):
            poller = self._client.virtual_machine_scale_sets.begin_update(
                pool.resource_group, pool.scale_set_name, update
            )
        return AzureResize(poller, "vmss.update", self._calls)

    def resume(self, pool: PoolConfig, token: str) -> AzureResize:
        """Pick up a resize started before a restart from its continuation token (no write is
        sent: the poller only goes on polling the operation Azure already runs)."""
        try:
            with self._calls.call("vmss.resume_update"):
                poller = self._client.virtual_machine_scale_sets.begin_update(
                    pool.resource_group,
                    pool.scale_set_name,
                    VirtualMachineScaleSetUpdate(),
                    continuation_token=token,
                )
        except (ValueError, TypeError) as exc:  # not a token this SDK can read
            raise PermanentError(
                f"vmss.resume_update: unusable continuation token ({exc})",
                operation="vmss.resume_update",
            ) from exc
        return AzureResize(poller, "vmss.update", self._calls)

    def usage(self, location: str) -> Mapping[str, QuotaUsage]:
        """``usage.list(location)`` by line name. A line without a usable ``currentValue`` or
        ``limit`` is left out (a missing line is unknown quota, never 0 used or no limit)."""
        out: dict[str, QuotaUsage] = {}
        with self._calls.call("usage.list"):
            for item in self._client.usage.list(location):
                if item.name is None or item.name.value is None:
                    continue
                if item.current_value is None or item.limit is None or item.limit < 0:
                    continue
                out[item.name.value] = QuotaUsage(
                    item.name.value, int(item.current_value), int(item.limit)
                )
        return out

    def vm_sizes(self, location: str) -> Mapping[str, VmSize]:
        """The VM sizes Azure offers this subscription in ``location`` (lower-cased name →
        family and vCPUs), from the Resource SKUs API (``GET …/providers/Microsoft.Compute/skus
        ?$filter=location eq '<loc>'``). Read once per location for the process lifetime (SKUs
        rarely change); a failed read is not cached, so the next need tries again."""
        key = location.lower()
        cached = self._vm_sizes.get(key)
        if cached is not None:
            return cached
        found: dict[str, VmSize] = {}
        with self._calls.call("resource_skus.list"):
            for sku in self._client.resource_skus.list(filter=f"location eq '{location}'"):
                if (sku.resource_type or "").lower() != "virtualmachines" or not sku.name:
                    continue
                vcpus: int | None = None
                for cap in sku.capabilities or []:
                    if (cap.name or "") == "vCPUs" and (cap.value or "").isdigit():
                        vcpus = int(cap.value or "0") or None
                found[sku.name.lower()] = VmSize(sku.name, sku.family or "", vcpus)
        self._vm_sizes[key] = found
        return found

    def vm_size(self, location: str, name: str) -> VmSize:
        """One VM size of ``location`` (e.g. a scale set's ``sku.name`` or a VM's
        ``hardwareProfile.vmSize``); ``PermanentError`` when Azure does not list it there."""
        size = self.vm_sizes(location).get(name.lower())
        if size is None or not size.family:
            raise PermanentError(
                f"resource_skus.list: {name} is not offered in {location} (no quota family)",
                operation="resource_skus.list",
                code="SkuNotListed",
            )
        return size

    def scale_set_size(self, pool: PoolConfig, location: str) -> VmSize:
        """The VM size of a ``vmss`` / ``pexip-teams`` pool's scale set (its ``sku.name``)."""
        name, _ = self._skus.get(pool.name, (None, None))
        if name is None:
            self.observe(pool)
            name, _ = self._skus.get(pool.name, (None, None))
        if not name:
            raise PermanentError(f"vmss.get: {pool.resource_id} has no sku.name")
        return self.vm_size(location, name)

    def close(self) -> None:
        self._client.close()


class AzureAdapters:
    """The process's one credential and one client per service, closed in the right order."""

    def __init__(self, config: Config, *, observer: CallObserver | None = None) -> None:
        self.credential = make_credential(config.azure)
        self.metrics = AzureMonitorMetrics(config, self.credential, observer=observer)
        self.compute = AzureCompute(config, self.credential, observer=observer)

    def close(self) -> None:
        self.metrics.close()
        self.compute.close()
        close = getattr(self.credential, "close", None)
        if callable(close):
            close()
