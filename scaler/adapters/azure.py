"""Azure adapters: metrics (Azure Monitor), scale set capacity and vCPU quota (Compute).

With its siblings ``scaler.adapters.azure_*`` (HTTP screening, instances, autoscale settings,
logs, history, the lease, publishing), the only modules that import ``azure.*``
(``tests/test_layering.py`` checks it). It translates: SDK models become our frozen types and
SDK exceptions become ``scaler.errors`` (``raise … from exc``); it decides nothing.

Retries: the SDK's own retry policy already retries 429 (honouring ``Retry-After``), 5xx and
connection errors for each HTTP call (``[azure] retry_total``). Nothing here wraps those calls in
a second retry loop; a call that still fails becomes a ``TransientError`` and the pool simply
holds until the next tick, which is the daemon's natural backoff. That loop is bounded by
``[azure] call_deadline_seconds`` (``DeadlineRetryPolicy``): no ``Retry-After`` keeps a tick.

Answers that are not what the API documents (an HTML page from a gateway, a cut-off body, JSON
of another shape) are errors like any other: ``TransientError`` unless Azure said 4xx.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from azure.core import MatchConditions
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    StreamClosedError,
)
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import HttpTransport
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import Sku, VirtualMachineScaleSetUpdate
from azure.monitor.querymetrics import MetricsClient

from scaler.adapters import azure_http as screen
from scaler.adapters.azure_http import (
    READ_WITHIN,
    ArmPager,
    capped_transport,
    json_answer,
    segment,
)
from scaler.config_model import STATIC_TOKEN_ENV, AzureConfig, Config, MetricConfig, PoolConfig
from scaler.core.metrics import merge_series, reduce_window, screen_series
from scaler.core.quota import VmSize
from scaler.core.types import MetricReading, MetricStatus, QuotaUsage
from scaler.core.victims import InstanceActions
from scaler.errors import (
    AdapterError,
    CapacityError,
    ConfigError,
    PermanentError,
    TransientError,
    is_capacity_code,
)
from scaler.logs import get_logger
from scaler.ports import PoolStatus, Preflight

CallObserver = Callable[[str, str, float], None]
"""Told of every Azure call: (operation, outcome, seconds). Feeds health and Prometheus metrics."""


@runtime_checkable
class BudgetObserver(Protocol):
    """Told of every ARM rate-limit header read from an answer (``health.CallMetrics`` exports
    them as gauges). A call observer that also has this method is told both."""

    def ratelimit_remaining(self, subscription: str, header: str, remaining: int) -> None: ...


SPLIT_SERIES_LIMIT = 1000
"""``top`` of a metrics query split by a dimension: a scale set holds at most 1,000 VMs
(learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups);
Azure Monitor returns only 10 series when a filter is given and ``top`` is not."""

METRICS_BATCH_LIMIT = 50
"""``metrics:getBatch`` takes at most this many resource ids per call."""

METRICS_API_VERSION = "2024-02-01"
"""The ``metrics:getBatch`` api-version ``azure-monitor-querymetrics`` 1.x sends."""

METRICS_PARALLEL_PER_ENDPOINT = 4
"""``metrics:getBatch`` calls in flight at once to one regional metrics endpoint."""

METRICS_PARALLEL_TOTAL = 16
"""``metrics:getBatch`` calls in flight at once over all endpoints (worker threads)."""


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


class DeadlineRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's own ``RetryPolicy`` (429 and ``Retry-After``, 5xx, lost connections), with a
    deadline per call.

    Unbounded as shipped: ``RetryPolicy`` sleeps whatever ``Retry-After`` says
    (``_sleep_for_retry``; ``retry_backoff_max`` caps only the exponential backoff), and its
    ``timeout`` (total seconds of a call) is checked before the next attempt, after the sleep. So a
    429 with ``Retry-After: 3600`` held a tick for an hour. Here the SDK's loop stays the only retry
    loop, with these bounds:

    - one deadline per call, kept in the pipeline context (so redirect hops share it) and given to
      azure-core as the call's ``timeout``, which also cuts each attempt's connection timeout;
    - a retry whose wait (``Retry-After`` or backoff) would end past the deadline is not taken:
      the 429/503 answer comes back as it is and becomes a ``TransientError`` (hold this tick);
    - no sleep runs past the deadline, and each attempt's read timeout is cut to the time left.
    """

    _KEY = "cvi_autoscaler_deadline"

    def __init__(self, *, deadline_seconds: float, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._deadline_seconds = deadline_seconds
        self._read_timeout = read_timeout

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        options = request.context.options
        within = options.pop(READ_WITHIN, None)  # a list read's own deadline (``ArmPager``)
        deadline = request.context.get(self._KEY)
        if deadline is None:
            deadline = time.monotonic() + self._deadline_seconds
            if within is not None:
                deadline = min(deadline, time.monotonic() + float(within))
            request.context[self._KEY] = deadline
        options[self._KEY] = deadline
        options["timeout"] = max(0.0, deadline - time.monotonic())
        return super().send(request)

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        deadline = options.pop(self._KEY, None)
        settings = super().configure_retries(options)
        if deadline is None:
            deadline = time.monotonic() + float(settings["timeout"])
        settings[self._KEY] = deadline
        return settings

    def _wait(self, settings: dict[str, Any], response: PipelineResponse[Any, Any] | None) -> float:
        wait = self.get_retry_after(response) if response is not None else None
        return wait if wait else self.get_backoff_time(settings)

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        if not super().is_retry(settings, response):
            return False
        deadline: float = settings[self._KEY]
        return time.monotonic() + self._wait(settings, response) < deadline

    def sleep(
        self,
        settings: dict[str, Any],
        transport: HttpTransport[Any, Any],
        response: PipelineResponse[Any, Any] | None = None,
    ) -> None:
        left = settings[self._KEY] - time.monotonic()
        wait = min(self._wait(settings, response), left)
        if wait > 0:
            transport.sleep(wait)

    def _configure_timeout(
        self, request: PipelineRequest[Any], absolute_timeout: float, is_response_error: bool
    ) -> None:
        # azure-core cuts only the connection timeout to the time left; cut the read timeout too.
        super()._configure_timeout(request, absolute_timeout, is_response_error)
        options = request.context.options
        read = options.get("read_timeout", self._read_timeout)
        options["read_timeout"] = min(read, absolute_timeout)


_answers = threading.local()


def _remember_status(response: PipelineResponse[Any, Any]) -> None:
    """``raw_response_hook``: the status of the last answer this thread received, so that a body
    the SDK cannot parse (an HTML error page) is still classed by its status."""
    _answers.status = response.http_response.status_code


RATELIMIT_HEADERS: Mapping[str, tuple[float, int]] = {
    # header: (refill in requests per second, low-water mark in requests)
    "x-ms-ratelimit-remaining-subscription-reads": (25.0, 100),
    "x-ms-ratelimit-remaining-subscription-writes": (10.0, 20),
    "x-ms-ratelimit-remaining-subscription-deletes": (10.0, 20),
    "x-ms-ratelimit-remaining-subscription-global-reads": (25.0, 100),
    "x-ms-ratelimit-remaining-subscription-global-writes": (10.0, 20),
    "x-ms-ratelimit-remaining-subscription-global-deletes": (10.0, 20),
}
"""ARM's remaining-request headers per subscription, with how fast each budget comes back and
the level below which the next tick waits. Since 2024 ARM throttles with a token bucket per
subscription and principal: reads from a bucket of 250 refilled at 25 a second, writes and
deletes from buckets of 200 refilled at 10 a second ("the read bucket size is 250 tokens … it
refills at a rate of 10 tokens per second until it reaches its maximum capacity of 200 tokens"
for writes: https://azure.microsoft.com/updates/azure-resource-manager-throttling/;
https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
"Each request includes values for the number of remaining read and write requests"
(``…-subscription-reads`` / ``-writes`` / ``-deletes``), and the regional and global buckets
answer with ``…-subscription-global-reads`` / ``-writes`` / ``-deletes``. The hourly model
(12,000 reads, 1,200 writes an hour) that came before made a low budget wait 7–30 times longer
than the refill takes.
"""

STRETCH_MAX_SECONDS = 300.0
"""The longest a tick is held back for the ARM budget (the daemon holds pools meanwhile)."""

_SUBSCRIPTION_IN_URL = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)


class ArmBudget:
    """The ARM request budget each subscription has left, from the rate-limit headers of every
    answer (a ``raw_response_hook`` on each client), and how long the next tick should wait.

    Rule (``stretch_seconds``): each header's last value is projected forward at its documented
    refill rate (so a budget that nothing reads any more recovers rather than holding the loop
    for ever); when a projected value is under its low-water mark, the next tick waits the time
    that refill takes to bring it back to the mark — the longest over subscriptions and headers,
    at most ``STRETCH_MAX_SECONDS``. 0 while every budget is above its mark (the normal case:
    a tick costs a handful of reads per subscription). Waiting for the refill instead of sending
    requests that would get 429s keeps the other replicas and tools of the subscription working.
    """

    def __init__(
        self,
        observer: BudgetObserver | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._observer = observer
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[int, float]] = {}
        """(subscription lower-cased, header) → (remaining, monotonic time read)."""

    def hook(self, response: PipelineResponse[Any, Any]) -> None:
        """``raw_response_hook``: remember the answer's status and its rate-limit headers."""
        _remember_status(response)
        headers = response.http_response.headers
        found = [(h, headers.get(h)) for h in RATELIMIT_HEADERS]
        found = [(h, v) for h, v in found if v is not None]
        if not found:
            return
        m = _SUBSCRIPTION_IN_URL.search(str(response.http_request.url))
        if m is None:
            return
        self.record(m.group(1), {h: v for h, v in found if v is not None})

    def record(self, subscription: str, headers: Mapping[str, str]) -> None:
        """Remember the headers' values; one that is not a non-negative integer is ignored."""
        sub = subscription.lower()
        now = self._monotonic()
        for header, raw in headers.items():
            text = str(raw).strip()
            if header not in RATELIMIT_HEADERS or not text.isdigit():
                continue
            remaining = int(text)
            with self._lock:
                self._seen[(sub, header)] = (remaining, now)
            if self._observer is not None:
                self._observer.ratelimit_remaining(sub, header, remaining)

    def remaining(self) -> dict[tuple[str, str], int]:
        """The last value read of each (subscription, header)."""
        with self._lock:
            return {key: value for key, (value, _) in self._seen.items()}

    def stretch_seconds(self) -> float:
        """How much longer than its interval the next tick should wait (seconds, 0 normally)."""
        now = self._monotonic()
        with self._lock:
            seen = list(self._seen.items())
        wait = 0.0
        for (_, header), (remaining, at) in seen:
            rate, low = RATELIMIT_HEADERS[header]
            projected = remaining + rate * max(0.0, now - at)
            if projected < low:
                wait = max(wait, (low - projected) / rate)
        return min(wait, STRETCH_MAX_SECONDS)


REDIRECT_MAX = 3
"""ARM and Azure Monitor answer these calls without redirects; a few hops are tolerated (a
proxy's), a loop is cut short (azure-core follows 30 by default)."""


def _client_kwargs(cfg: AzureConfig, **retry: Any) -> dict[str, Any]:
    """Client options from ``[azure]``; ``retry`` goes to the retry policy (tests pass
    ``retry_backoff_factor=0`` to run the SDK's attempts without its back-off sleeps)."""
    timeout = min(cfg.timeout_seconds, cfg.call_deadline_seconds)
    kwargs: dict[str, Any] = {
        "retry_policy": DeadlineRetryPolicy(
            deadline_seconds=cfg.call_deadline_seconds,
            read_timeout=timeout,
            retry_total=cfg.retry_total,
            **retry,
        ),
        "connection_timeout": timeout,
        "read_timeout": timeout,
        "redirect_max": REDIRECT_MAX,
        "raw_response_hook": _remember_status,
    }
    if cfg.ca_bundle is not None:
        kwargs["connection_verify"] = str(cfg.ca_bundle)
    return kwargs


def with_transport(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` (from ``_client_kwargs``) with a transport of the client's own that reads
    each answer up to ``MAX_ANSWER_BYTES`` (``azure_http.CappedSession``); one given by the
    caller (a test) is kept. A client closes its transport, so each client needs its own."""
    out = dict(kwargs)
    if "transport" not in out:
        out["transport"] = capped_transport(
            verify=out.pop("connection_verify", True),
            connection_timeout=out.pop("connection_timeout", 300),
            read_timeout=out.pop("read_timeout", 300),
        )
    return out


def translate(exc: AzureError, operation: str) -> AdapterError:
    """An SDK exception as our error tree: throttling, 5xx, timeouts, lost connections, answers
    that could not be read and writes refused because the resource changed (412) are transient."""
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, StreamClosedError)):
        return TransientError(f"{operation}: {exc.message}", operation=operation)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, DecodeError):  # also IncompleteReadError: a body cut short or not JSON
        return TransientError(
            f"{operation}: the answer could not be read ({exc.message})".splitlines()[0],
            operation=operation,
            code="DecodeError",
            status=status,
        )
    if isinstance(exc, ResourceModifiedError) or status == 412:
        what = "the scale set" if operation.startswith("vmss.") else "the resource"
        return TransientError(
            f"{operation}: {what} changed since it was read; holding until it is read again",
            operation=operation,
            code="PreconditionFailed",
            status=412,
        )
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
        and (status in (408, 429) or status >= 500)
    ):
        return TransientError(text, operation=operation, code=code, status=status)
    return PermanentError(text, operation=operation, code=code, status=status)


def _capacity_code(error: Any, depth: int = 0) -> str:
    """The capacity error code (``AllocationFailed``…) of an ARM error or of one of its
    ``details`` (a failed operation often wraps it), else ``""``."""
    if error is None or depth > 3:
        return ""
    code = str(getattr(error, "code", "") or "")
    if is_capacity_code(code):
        return code
    for detail in getattr(error, "details", None) or []:
        found = _capacity_code(detail, depth + 1)
        if found:
            return found
    return ""


_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError)
"""What the SDK raises, unwrapped, on an answer it cannot parse: ``JSONDecodeError`` (a
``ValueError``) from ``response.json()`` on an HTML page, ``TypeError``/``AttributeError``/
``KeyError`` on JSON of another shape."""


def unreadable(exc: Exception, operation: str, status: int | None) -> AdapterError:
    """An answer that is not the documented JSON, classed by its HTTP status: 4xx is
    permanent (a 403 page from a proxy will not change by itself), anything else transient."""
    shown = f"HTTP {status}" if status is not None else "the answer"
    text = f"{operation}: {shown} could not be read ({type(exc).__name__}: {exc})"
    text = text.splitlines()[0][:300]
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return PermanentError(text, operation=operation, code="UnreadableAnswer", status=status)
    return TransientError(text, operation=operation, code="UnreadableAnswer", status=status)


class _Calls:
    """Times each Azure call and tells the observer its outcome."""

    def __init__(self, observer: CallObserver | None) -> None:
        self._observer = observer

    @contextmanager
    def call(self, operation: str) -> Iterator[None]:
        start = time.perf_counter()
        outcome = "ok"
        _answers.status = None
        try:
            yield
        except AzureError as exc:
            err = translate(exc, operation)
            outcome = "transient" if isinstance(err, TransientError) else "error"
            raise err from exc
        except _UNREADABLE as exc:
            status: int | None = getattr(_answers, "status", None)
            if status is None:  # no answer came: not Azure's doing (e.g. a bad argument)
                outcome = "error"
                raise
            err = unreadable(exc, operation, status)
            outcome = "transient" if isinstance(err, TransientError) else "error"
            raise err from exc
        except AdapterError as err:  # already translated inside the block
            outcome = "transient" if isinstance(err, TransientError) else "error"
            raise
        except Exception:
            outcome = "error"
            raise
        finally:
            if self._observer is not None:
                self._observer(operation, outcome, time.perf_counter() - start)

    def unusable(self, operation: str) -> None:
        """An answer that came but could not be used (in part): a failed call for the count."""
        if self._observer is not None:
            self._observer(operation, "invalid", 0.0)


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
        budget: ArmBudget | None = None,
        **client_kwargs: Any,
    ) -> None:
        self._config = config
        self._credential = credential
        self._clients: dict[str, MetricsClient] = {}
        self._calls = _Calls(observer)
        self._budget = budget or ArmBudget(
            observer if isinstance(observer, BudgetObserver) else None
        )
        self._client_kwargs = {
            **_client_kwargs(config.azure),
            "raw_response_hook": self._budget.hook,
            **client_kwargs,
        }
        self._clients_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._gates: dict[str, threading.BoundedSemaphore] = {}

    def stretch_seconds(self) -> float:
        """How much longer than its interval the next tick should wait (``ArmBudget``; the
        metrics data plane sends no ARM budget headers, so this is the compute budget when
        both share one, else 0)."""
        return self._budget.stretch_seconds()

    def _client(self, location: str) -> MetricsClient:
        endpoint = self._config.azure.metrics_endpoint(location)
        with self._clients_lock:  # batches run on several threads: one client per endpoint
            client = self._clients.get(endpoint)
            if client is None:
                client = MetricsClient(
                    endpoint,
                    self._credential,
                    audience=self._config.azure.metrics_audience,
                    **with_transport(self._client_kwargs),
                )
                self._clients[endpoint] = client
            return client

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        # metrics:getBatch reads one subscription and one region per call (the SDK takes the
        # subscription from the first id), so those are part of the group key.
        groups: dict[tuple[str, str, str, str, str, str, int], list[PoolConfig]] = {}
        for pool in pools:
            m = pool.metric
            span = (m.window_minutes + m.lag_minutes + 1) * 60 + m.history_minutes * 60
            key = (
                _subscription_of(pool.metric_resource_id),
                self._config.location_of(pool),
                m.namespace,
                m.name,
                m.aggregation,
                m.filter,
                span,
            )
            groups.setdefault(key, []).append(pool)
        batches: list[_Batch] = []
        for (sub, location, namespace, name, aggregation, filt, span), members in groups.items():
            for start in range(0, len(members), METRICS_BATCH_LIMIT):
                chunk = members[start : start + METRICS_BATCH_LIMIT]
                batches.append(
                    _Batch(sub, location, namespace, name, aggregation, filt, span, tuple(chunk))
                )
        out: dict[str, MetricReading] = {}
        if len(batches) <= 1:
            for batch in batches:
                out.update(self._read_guarded(batch, now))
            return out
        # The batches of a tick go out together, at most METRICS_PARALLEL_PER_ENDPOINT at once
        # to each regional endpoint: wall time is about one answer per endpoint, not one per
        # batch (20 batches at 50 ms were a second of the tick).
        futures = [self._executor().submit(self._read_guarded, batch, now) for batch in batches]
        for future, batch in zip(futures, batches, strict=True):
            try:
                out.update(future.result())
            except Exception as exc:  # e.g. the executor shut down under us: still MISSING
                detail = f"metrics.query_resources: unexpected {type(exc).__name__}: {exc}"
                out.update({p.name: MetricReading.missing(detail) for p in batch.pools})
        return out

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=METRICS_PARALLEL_TOTAL, thread_name_prefix="cvi-metrics"
                )
            return self._pool

    def _read_guarded(self, batch: _Batch, now: float) -> dict[str, MetricReading]:
        """One batch, at most ``METRICS_PARALLEL_PER_ENDPOINT`` at once per endpoint; never
        raises (the port's contract: MISSING, never an exception)."""
        endpoint = self._config.azure.metrics_endpoint(batch.location)
        with self._pool_lock:
            gate = self._gates.get(endpoint)
            if gate is None:
                gate = self._gates[endpoint] = threading.BoundedSemaphore(
                    METRICS_PARALLEL_PER_ENDPOINT
                )
        try:
            with gate:
                return self._read_chunk(batch, now)
        except Exception as exc:
            detail = f"metrics.query_resources: unexpected {type(exc).__name__}: {exc}"
            return {p.name: MetricReading.missing(detail) for p in batch.pools}

    def _read_chunk(self, batch: _Batch, now: float) -> dict[str, MetricReading]:
        """One ``metrics:getBatch`` call through the SDK client's own pipeline (credential,
        ``DeadlineRetryPolicy``, redirects, rate-limit hook) with the answer's JSON read here.

        ``MetricsClient.query_resources`` builds a model object per data point (about 2.5 ms of
        CPU per pool per tick); the daemon needs only each series' dimension value and the one
        aggregation it asked for. The request is the one the SDK sends
        (``build_metrics_query_resources_request``: ``POST /subscriptions/{sub}/metrics:getBatch``
        with ``starttime``, ``endtime``, ``interval``, ``metricnamespace``, ``metricnames``,
        ``aggregation``, ``top``, ``filter`` and the body ``{"resourceids": [...]}``), after
        https://learn.microsoft.com/rest/api/monitor/metrics-batch/batch. A status other than
        200 raises what the SDK raises (``map_error``, else ``HttpResponseError``)."""
        pools = batch.pools
        end = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0) + timedelta(
            minutes=1
        )
        start = end - timedelta(seconds=batch.span_seconds)
        ids = list(dict.fromkeys(p.metric_resource_id for p in pools))
        sub = _subscription_of(ids[0]) or batch.subscription
        params: dict[str, str] = {
            "api-version": METRICS_API_VERSION,
            "starttime": _iso_utc(start),
            "endtime": _iso_utc(end),
            "interval": "PT1M",
            "metricnamespace": batch.namespace,
            # the SDK escapes a comma inside a metric name so; one name per query here
            "metricnames": batch.name.replace(",", "%2"),
            "aggregation": batch.aggregation,
        }
        if batch.filter:
            params["filter"] = batch.filter
            # a split (VMName) answer holds at most ``top`` series, 10 unless set: a scale set
            # of more VMs would read low, and shrink on that
            params["top"] = str(SPLIT_SERIES_LIMIT)
        request = HttpRequest(
            "POST",
            f"/subscriptions/{sub}/metrics:getBatch",
            params=params,
            json={"resourceids": ids},
            headers={"Accept": "application/json"},
        )
        try:
            with self._calls.call("metrics.query_resources"):
                response = self._client(batch.location).send_request(request)
                body = json_answer(response, obj=False)
                # An answer of another shape fails here, still as this call's answer.
                found = _batch_series(body, ids, batch.aggregation.lower())
        except AdapterError as err:
            return {p.name: MetricReading.missing(str(err)) for p in pools}
        return {p.name: _reading(p, found.get(p.metric_resource_id.lower()), now) for p in pools}

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for client in self._clients.values():
            client.close()
        self._clients.clear()


@dataclasses.dataclass(frozen=True, slots=True)
class _Batch:
    """Pools read by one ``metrics:getBatch`` call (one subscription, region and query)."""

    subscription: str
    location: str
    namespace: str
    name: str
    aggregation: str
    filter: str
    span_seconds: int
    pools: tuple[PoolConfig, ...]


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


RawSeries = tuple[str, list[tuple[float, object]]]
"""(VM name or ``""`` when not split by VM; buckets as Azure sent them, values unchecked)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Found:
    """One metric of one resource as ``metrics:getBatch`` answered it."""

    unit: str | None
    series: list[RawSeries]


def _metric_series(results: Any, ids: Sequence[str], attr: str) -> dict[str, _Found]:
    """The answer by resource id (lower-cased). Raises ``TypeError``/``AttributeError``/... on an
    answer of another shape, which the caller reports as unreadable."""
    out: dict[str, _Found] = {}
    for index, result in enumerate(results):
        for metric in result.metrics:
            rid = _resource_of(metric.id) or (ids[index] if index < len(ids) else "")
            series: list[RawSeries] = []
            for ts in metric.timeseries or []:
                buckets = [(v.timestamp.timestamp(), getattr(v, attr, None)) for v in ts.data or []]
                series.append((_vm_name(ts.metadata_values), buckets))
            out[rid.lower()] = _Found(metric.unit, series)
    return out


def _batch_series(body: object, ids: Sequence[str], attr: str) -> dict[str, _Found]:
    """``_metric_series`` over the JSON of a ``metrics:getBatch`` answer, without the SDK's
    models: ``{"values": [{"resourceid", "value": [{"id", "unit", "timeseries": [
    {"metadatavalues": [{"name": {"value"}, "value"}], "data": [{"timeStamp", <attr>}]}]}]}]}``
    (https://learn.microsoft.com/rest/api/monitor/metrics-batch/batch, and
    ../shared/azure-rest-examples/monitor/MetricBatchExample.json). Values stay as sent
    (``screen_series`` judges them). Raises ``TypeError``/``KeyError``/``ValueError`` on JSON
    of another shape, which the caller reports as an unreadable answer."""
    if not isinstance(body, dict):
        raise TypeError(f"the answer is {type(body).__name__}, not an object")
    out: dict[str, _Found] = {}
    stamps: dict[str, float] = {}  # every series of an answer shares its minutes
    for index, result in enumerate(_list_of(body.get("values"), "values")):
        if not isinstance(result, dict):
            raise TypeError("values[] is not an object")
        for metric in _list_of(result.get("value"), "value"):
            if not isinstance(metric, dict):
                raise TypeError("value[] is not an object")
            rid = (
                _resource_of(_str_or_none(metric.get("id")))
                or _str_or_none(result.get("resourceid"))
                or (ids[index] if index < len(ids) else "")
            )
            series: list[RawSeries] = []
            for ts in _list_of(metric.get("timeseries") or [], "timeseries"):
                if not isinstance(ts, dict):
                    raise TypeError("timeseries[] is not an object")
                buckets: list[tuple[float, object]] = []
                for point in _list_of(ts.get("data") or [], "data"):
                    stamp = point["timeStamp"]
                    at = stamps.get(stamp)
                    if at is None:
                        if not isinstance(stamp, str):
                            raise TypeError(f"timeStamp {stamp!r} is not a string")
                        parsed = datetime.fromisoformat(stamp)
                        if parsed.tzinfo is None:
                            parsed = parsed.replace(tzinfo=UTC)
                        at = stamps[stamp] = parsed.timestamp()
                    buckets.append((at, point.get(attr)))
                series.append((_vm_name_raw(ts.get("metadatavalues")), buckets))
            unit = metric.get("unit")
            out[rid.lower()] = _Found(None if unit is None else str(unit), series)
    return out


def _list_of(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{what} is {type(value).__name__}, not a list")
    return value


def _str_or_none(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _vm_name_raw(metadata: object) -> str:
    """``_vm_name`` over the JSON ``metadatavalues`` list."""
    for item in _list_of(metadata or [], "metadatavalues"):
        name = item.get("name") if isinstance(item, dict) else None
        key = name.get("value") if isinstance(name, dict) else name
        if isinstance(key, str) and key.lower() == "vmname" and item.get("value"):
            return str(item["value"])
    return ""


def _units_for(metric: MetricConfig) -> tuple[str, ...]:
    """Units (``MetricUnit`` names) a reading may be in for what the pool's metric means.

    Custom metrics carry no unit when ingested (the REST payload has none:
    https://learn.microsoft.com/azure/azure-monitor/essentials/metrics-store-custom-rest-api),
    so a calls metric may come back ``Unspecified`` ("No specified unit", the SDK's
    ``MetricUnit``) as well as ``Count``. A percentage is ``Percent``.
    """
    if metric.unit:
        return (metric.unit,)
    if metric.meaning == "percent_of_capacity":
        return ("Percent",)
    return ("Count", "Unspecified")


def _reading(pool: PoolConfig, found: _Found | None, now: float) -> MetricReading:
    """One pool's reading from its resource's series: ``MISSING`` when there are none, when
    their unit is not what the pool's metric means, or when any value in the window is invalid
    (negative, NaN, absurd); else the reduced window, with each VM's newest minute."""
    m = pool.metric
    if found is None or not found.series:
        return MetricReading.missing("no time series")
    what = f"{m.namespace}/{m.name} on {pool.metric_resource_id}"
    units = _units_for(m)
    if (found.unit or "").lower() not in {u.lower() for u in units}:
        return MetricReading.missing(
            f"{what} is in unit {found.unit!r}, but metric.meaning = {m.meaning!r} needs "
            f"{' or '.join(units)} (set metric.unit if this unit is meant)"
        )
    window, lag = m.window_minutes * 60, m.lag_minutes * 60
    clean, invalid = screen_series(found.series, now=now, window_seconds=window, lag_seconds=lag)
    if invalid:
        return MetricReading.missing(f"{what}: {invalid}")
    reading = reduce_window(
        merge_series(clean),
        now=now,
        window_seconds=window,
        lag_seconds=lag,
        reduce=m.reduce,
        history_seconds=m.history_minutes * 60,
    )
    per_vm = [(name, points) for (name, _), points in zip(found.series, clean, strict=True) if name]
    if per_vm and reading.status is MetricStatus.OK:
        # Each VM's newest complete minute: what a call-safe scale-in chooses from.
        last = []
        for vm_name, vm_points in per_vm:
            one = reduce_window(
                vm_points, now=now, window_seconds=window, lag_seconds=lag, reduce="last"
            )
            last.append((vm_name, one.calls))
        reading = dataclasses.replace(reading, by_instance=tuple(last))
    return reading


_SIZE_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,127}$")
"""A VM size or quota family name as Azure spells them (``Standard_F4s_v2``,
``standardFSv2Family``)."""


def _vcpu_count(value: object) -> bool:
    """Whether a ``usage.list`` count can be one: a whole number of vCPUs, not negative, not
    absurd (Azure's vCPU quotas are thousands, at most millions)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**8


def _vm_name(metadata: Mapping[str, str] | None) -> str:
    """The ``VMName`` dimension value of a series (Azure may lower-case the name)."""
    for key, value in (metadata or {}).items():
        if key.lower() == "vmname" and value:
            return str(value)
    return ""


def _subscription_of(resource_id: str) -> str:
    m = _SUBSCRIPTION_IN_URL.search(resource_id)
    return m.group(1).lower() if m else ""


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

    changed = True
    """A write was sent (``ResizeHandle.changed``)."""

    def __init__(self, poller: LROPoller[Any], operation: str, calls: _Calls) -> None:
        self._poller = poller
        self._operation = operation
        self._calls = calls

    def done(self) -> bool:
        return self._poller.done()

    def result(self, timeout: float | None = None) -> None:
        with self._calls.call(self._operation):
            try:
                self._poller.result(timeout=timeout)
            except _UNREADABLE as exc:  # raised in the poller's thread, on a status it polled
                raise unreadable(exc, self._operation, None) from exc
        if not self._poller.done():
            raise TimeoutError(f"{self._operation}: still running after {timeout} s")

    def continuation_token(self) -> str | None:
        try:
            return self._poller.continuation_token()
        except Exception:  # a finished poller may have no token left
            return None


SKUS_REFUSED_RETRY_SECONDS = 600.0
"""A Resource SKUs read Azure refused (403, 404, an unreadable 4xx answer) stands as the answer
for this long before it is asked again (``AzureCompute.vm_sizes``)."""

SKUS_FAILED_RETRY_SECONDS = 60.0
"""A Resource SKUs read that failed transiently (5xx, 429, timeout) is asked again after this."""

LIST_REFUSED_RETRY_SECONDS = 600.0
"""After Azure refuses a subscription's scale set list (403), its pools are read by GET and the
list is tried again after this long."""


@dataclasses.dataclass(slots=True)
class _Listing:
    """One list of a subscription's scale sets (by lower-cased id) and the pools it served."""

    at: float
    items: dict[str, dict[str, Any]]
    error: AdapterError | None = None
    refused: bool = False
    served: set[str] = dataclasses.field(default_factory=set)


def _provisioning_state(vmss: Mapping[str, Any]) -> object:
    """``properties.provisioningState`` of a resource's JSON body as sent (unchecked)."""
    props = vmss.get("properties")
    return props.get("provisioningState") if isinstance(props, dict) else None


COMPUTE_API_VERSION = "2026-04-01"
"""The api-version ``azure-mgmt-compute`` 39 sends for the scale set, VM and usage reads
(``tests/test_azure_pages.py`` checks it against the SDK's request builders)."""

SKUS_API_VERSION = "2021-07-01"
"""The api-version of ``ResourceSkus_List`` in ``azure-mgmt-compute`` 39."""


def _vmss_path(pool: PoolConfig) -> str:
    return (
        f"/subscriptions/{segment(pool.subscription_id)}/resourceGroups/"
        f"{segment(pool.resource_group)}/providers/Microsoft.Compute/virtualMachineScaleSets/"
        f"{segment(pool.scale_set_name)}"
    )


def _arm_get(base_url: str, path: str, api_version: str = COMPUTE_API_VERSION) -> HttpRequest:
    return HttpRequest(
        "GET",
        base_url.rstrip("/") + path,
        params={"api-version": api_version},
        headers={"Accept": "application/json"},
    )


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
        budget: ArmBudget | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        **client_kwargs: Any,
    ) -> None:
        azure = config.azure
        self._budget = budget or ArmBudget(
            observer if isinstance(observer, BudgetObserver) else None
        )
        retry = {k: client_kwargs.pop(k) for k in ("retry_backoff_factor",) if k in client_kwargs}
        kwargs = {
            **_client_kwargs(azure, **retry),
            "raw_response_hook": self._budget.hook,
            **client_kwargs,
        }
        if azure.polling_interval_seconds is not None:
            kwargs.setdefault("polling_interval", azure.polling_interval_seconds)
        self._credential = credential
        self._azure = azure
        self._kwargs = kwargs
        self.pages = ArmPager(
            base_url=azure.resource_manager_url,
            max_pages=azure.max_pages,
            deadline_seconds=azure.read_deadline_seconds,
            monotonic=monotonic,
        )
        """The one reader of every ARM list (``azure_http.ArmPager``)."""
        self._subscription = config.subscription_id
        self._clients: dict[str, ComputeManagementClient] = {}
        self._clients_lock = threading.Lock()
        self._client = self.client_for(self._subscription)
        self._calls = _Calls(observer)
        self._monotonic = monotonic
        self._default_location = azure.location
        self._skus: dict[str, tuple[str | None, str | None]] = {}
        self._read: dict[str, tuple[int, str | None]] = {}
        """Per pool, the last ``observe``: (``sku.capacity``, etag)."""
        self._vm_sizes: dict[tuple[str, str], dict[str, VmSize]] = {}
        self._sizes_failed: dict[tuple[str, str], tuple[AdapterError, float]] = {}
        """(subscription, region) → the error of its last Resource SKUs read and until when
        (monotonic) it stands as the answer."""
        self._sizes_locks: dict[tuple[str, str], threading.Lock] = {}
        self._sizes_lock = threading.Lock()
        self._list_max_age = min(30.0, config.daemon.interval_seconds / 2.0)
        self._scopes: dict[str, set[str]] = {}
        """Per subscription, the resource groups of its scale-set pools (lower-cased)."""
        for pool in config.pools:
            if pool.resource_id:
                self._scopes.setdefault(pool.subscription_id.lower(), set()).add(
                    pool.resource_group.lower()
                )
        self._pools_per_subscription = {
            sub: sum(1 for p in config.pools if p.resource_id and p.subscription_id.lower() == sub)
            for sub in self._scopes
        }
        self._listings: dict[str, _Listing] = {}
        self._listing_locks: dict[str, threading.Lock] = {}
        self._list_refused_until: dict[str, float] = {}

    @property
    def subscription(self) -> str:
        """``[azure] subscription_id`` (else the first pool's): where ``vm-set`` pools live."""
        return self._subscription

    @property
    def client(self) -> ComputeManagementClient:
        """The compute client of ``[azure] subscription_id`` (the per-instance adapters' and
        ``vm-set`` pools')."""
        return self._client

    def client_for(self, subscription: str) -> ComputeManagementClient:
        """One client per subscription for the process lifetime, built when first needed."""
        key = subscription.lower()
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                client = ComputeManagementClient(
                    self._credential,
                    subscription,
                    base_url=self._azure.resource_manager_url,
                    credential_scopes=[self._azure.arm_audience().rstrip("/") + "/.default"],
                    **with_transport(self._kwargs),
                )
                self._clients[key] = client
            return client

    def _client_of(self, pool: PoolConfig) -> ComputeManagementClient:
        sub = pool.subscription_id
        if not sub or sub.lower() == self._subscription.lower():
            return self._client
        return self.client_for(sub)

    @property
    def calls(self) -> _Calls:
        return self._calls

    @property
    def budget(self) -> ArmBudget:
        return self._budget

    def stretch_seconds(self) -> float:
        """How much longer than its interval the next tick should wait for the ARM request
        budget to refill (``ArmBudget.stretch_seconds``; 0 normally)."""
        return self._budget.stretch_seconds()

    def observe(self, pool: PoolConfig) -> PoolStatus:
        """The scale set as Azure has it now.

        Bulk read: where a subscription holds two scale-set pools or more, one paged list per
        subscription answers every pool of the tick (``list(rg)`` when they all sit in one
        resource group, else ``list_all()``; the list items are the same body a GET returns,
        read as plain JSON through ``ArmPager``). A listing serves each pool once and for at
        most ``min(30 s, interval / 2)``: the next ``observe`` of a pool already served (the
        next tick) lists again, so nothing is decided on an older read than a GET would give.
        Concurrent ``observe`` calls share one list request series behind a lock; a failed
        list fails the subscription's pools of this tick alike (no GET storm). A GET answers
        where the list cannot: a scale set absent from it (404 or list lag), one whose
        ``provisioningState`` is not ``Succeeded`` (an operation in flight), and every pool of
        a subscription whose list Azure refuses (403: a role scoped to the scale sets
        themselves; the list is tried again after ``LIST_REFUSED_RETRY_SECONDS``). A listed
        body whose values are unusable (``_status``) fails its own pool only.
        """
        vmss = self._listed(pool)
        if vmss is None or str(_provisioning_state(vmss) or "").lower() != "succeeded":
            return self.get(pool)
        try:
            return self._status(pool, vmss, "vmss.list")
        except AdapterError:
            self._calls.unusable("vmss.list")
            raise

    def get(self, pool: PoolConfig) -> PoolStatus:
        """The scale set by its own GET (``observe`` without the bulk list), read as plain
        JSON like the list (``GET …/virtualMachineScaleSets/{name}``, the request the SDK's
        ``virtual_machine_scale_sets.get`` sends)."""
        with self._calls.call("vmss.get"):
            request = _arm_get(self._azure.resource_manager_url, _vmss_path(pool))
            body = json_answer(self._client_of(pool).send_request(request))
            return self._status(pool, body, "vmss.get")

    def _status(self, pool: PoolConfig, vmss: Mapping[str, Any], operation: str) -> PoolStatus:
        """The scale set's state from its JSON body, every value screened first
        (``azure_http``): ``sku.capacity`` an integer 0–1,000, ``sku.name`` a size name, the
        etag an entity tag, ``provisioningState`` a state name. An unusable value fails this
        pool's read (``PermanentError``, code ``UnusableAnswer``); nothing is remembered."""
        what = f"scale set {pool.scale_set_name}"
        sku = vmss.get("sku")
        if not isinstance(sku, dict):
            raise screen.unusable(operation, f"{what} has no sku", sku)
        count = screen.capacity(sku.get("capacity"), operation, what)
        size = screen.name(sku.get("name"), operation, f"{what} sku.name")
        tier = sku.get("tier")
        if tier is not None:
            tier = screen.name(tier, operation, f"{what} sku.tier")
        etag = screen.etag(vmss.get("etag"), operation, what)
        state = screen.state_name(_provisioning_state(vmss), operation, what)
        self._skus[pool.name] = (size, tier)
        self._read[pool.name] = (count, etag)
        return PoolStatus(
            capacity=count,
            provisioning_state=state,
            etag=etag,
            quota_family=self._family_of(pool, size),
        )

    def _listed(self, pool: PoolConfig) -> dict[str, Any] | None:
        """The pool's scale set from this tick's listing of its subscription; ``None`` where a
        GET must answer instead."""
        sub = pool.subscription_id.lower()
        if self._pools_per_subscription.get(sub, 0) < 2:
            return None  # one scale set: its GET costs the same request and answers exactly
        if self._list_refused_until.get(sub, float("-inf")) > self._monotonic():
            return None
        key = pool.resource_id.lower()
        with self._listing_locks.setdefault(sub, threading.Lock()):
            listing = self._listings.get(sub)
            now = self._monotonic()
            if listing is None or key in listing.served or now - listing.at > self._list_max_age:
                listing = self._list(pool, now)
                self._listings[sub] = listing
            listing.served.add(key)
        if listing.refused:
            return None
        if listing.error is not None:
            raise type(listing.error)(
                str(listing.error),
                operation=listing.error.operation,
                code=listing.error.code,
                status=listing.error.status,
            )
        return listing.items.get(key)

    def _list(self, pool: PoolConfig, now: float) -> _Listing:
        sub = pool.subscription_id.lower()
        groups = self._scopes.setdefault(sub, set())
        groups.add(pool.resource_group.lower())
        operation = "vmss.list" if len(groups) == 1 else "vmss.list_all"
        where = f"/subscriptions/{segment(pool.subscription_id or self._subscription)}"
        if len(groups) == 1:
            where += f"/resourceGroups/{segment(pool.resource_group)}"
        items: dict[str, dict[str, Any]] = {}
        try:
            with self._calls.call(operation):
                for vmss in self.pages.items(
                    self._client_of(pool),
                    operation,
                    f"{where}/providers/Microsoft.Compute/virtualMachineScaleSets",
                    {"api-version": COMPUTE_API_VERSION},
                ):
                    rid = vmss.get("id")
                    if isinstance(rid, str) and rid:
                        items[rid.lower()] = vmss
        except AdapterError as err:
            if err.status == 403:  # a role on the scale sets only: read each by its GET
                self._list_refused_until[sub] = now + LIST_REFUSED_RETRY_SECONDS
                return _Listing(now, {}, refused=True)
            return _Listing(now, {}, error=err)
        return _Listing(now, items)

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> AzureResize:
        """The ``PoolActuator`` port for a scale set sized as a whole: a capacity write."""
        if actions.capacity is None or not actions.changes_capacity:
            raise PermanentError(f"pool {pool.name}: a scale set is sized by capacity here")
        return self.resize(pool, actions.capacity)

    def preflight(self, pool: PoolConfig) -> Preflight:
        return Preflight()

    def _family_of(self, pool: PoolConfig, size: str | None) -> str | None:
        """The quota family of the scale set's VM size (Resource SKUs, cached per location);
        ``None`` when the pool names its own (``quota_family``: no Resource SKUs read at all,
        the tick uses the configured family) or when it cannot be known now (the pool then says
        ``QuotaUnknown``, and a failed read is said in a ``quota.family_unknown`` warning)."""
        if not size or pool.quota_family:
            return None
        try:
            location = pool.location or self._default_location
            return self.vm_size(location, size, subscription=pool.subscription_id).family
        except AdapterError as err:
            get_logger().warning("quota.family_unknown", pool=pool.name, error=str(err))
            return None

    def resize(self, pool: PoolConfig, capacity: int, *, etag: str | None = None) -> AzureResize:
        """PATCH ``sku.capacity`` only if the scale set is still as last read.

        A capacity computed from a stale read would undo someone else's change (an operator
        set 16 after we read 6; our 12 would remove 4 instances). So the PATCH carries
        ``If-Match`` with the etag of the read the decision came from (``etag``, else the one
        ``observe`` recorded): VMSS "Etag is property returned in Create/Update/Get response of
        the VMSS, so that customer can supply it in the header to ensure optimistic updates"
        (https://learn.microsoft.com/dotnet/api/azure.resourcemanager.compute.virtualmachinescalesetdata.etag);
        a mismatch is ``412`` → ``TransientError`` and the next tick reads again. Where Azure
        sent no etag, the capacity is read again right before the PATCH and a change refuses it.
        """
        name, tier = self._skus.get(pool.name, (None, None))
        if name is None:
            self.get(pool)
            name, tier = self._skus[pool.name]
        seen, seen_etag = self._read.get(pool.name, (None, None))
        etag = etag or seen_etag
        if etag is None and seen is not None:
            now = self.get(pool)
            if now.capacity != seen:
                raise TransientError(
                    f"vmss.begin_update: the scale set changed since it was read (capacity "
                    f"{seen} → {now.capacity}); holding until it is read again",
                    operation="vmss.begin_update",
                    code="CapacityChanged",
                )
            etag = now.etag
        conditional: dict[str, Any] = {}
        if etag:
            conditional = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        update = VirtualMachineScaleSetUpdate(sku=Sku(name=name, tier=tier, capacity=capacity))
        with self._calls.call("vmss.begin_update"):
            poller = self._client_of(pool).virtual_machine_scale_sets.begin_update(
                pool.resource_group, pool.scale_set_name, update, **conditional
            )
        return AzureResize(poller, "vmss.update", self._calls)

    def resume(self, pool: PoolConfig, token: str) -> AzureResize:
        """Pick up a resize started before a restart from its continuation token (no write is
        sent: the poller only goes on polling the operation Azure already runs)."""
        try:
            with self._calls.call("vmss.resume_update"):
                poller = self._client_of(pool).virtual_machine_scale_sets.begin_update(
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
        """``usage.list(location)`` by line name (``GET …/locations/{location}/usages``, read
        through ``ArmPager``). A line whose ``currentValue`` or ``limit`` is not a whole number
        of vCPUs within 0–10^8 is kept with its ``problem`` (unknown quota, named as such: the
        pools it concerns hold their scale-ups), never as 0 used or no limit; a line without a
        name is left out.

        vCPU quota is per subscription and region: ``location`` is a quota scope as
        ``Config.quota_scope_of`` names it, a bare region for ``[azure] subscription_id`` or
        ``<subscription>/<region>`` for another subscription."""
        sub, _, region = location.rpartition("/")
        client = self.client_for(sub) if sub else self._client
        out: dict[str, QuotaUsage] = {}
        invalid: list[str] = []
        path = (
            f"/subscriptions/{segment(sub or self._subscription)}/providers/Microsoft.Compute"
            f"/locations/{segment(region)}/usages"
        )
        with self._calls.call("usage.list"):
            items = self.pages.items(
                client, "usage.list", path, {"api-version": COMPUTE_API_VERSION}
            )
        for item in items:
            named = item.get("name")
            name = named.get("value") if isinstance(named, dict) else None
            used, limit = item.get("currentValue"), item.get("limit")
            if not isinstance(name, str) or not name or not name.isprintable() or len(name) > 128:
                invalid.append(f"a line without a usable name ({screen.short(named)})")
                continue
            if not (_vcpu_count(used) and _vcpu_count(limit)):
                problem = f"currentValue={screen.short(used, 40)} limit={screen.short(limit, 40)}"
                invalid.append(f"{name} {problem}")
                out[name] = QuotaUsage(name, 0, 0, problem=problem)
                continue
            assert isinstance(used, int) and isinstance(limit, int)
            out[name] = QuotaUsage(name, used, limit)
        if invalid:
            # the pools they concern hold their scale-ups (QuotaUnknown, naming the line)
            self._calls.unusable("usage.list")
            get_logger().warning("quota.lines_invalid", location=location, lines=invalid)
        return out

    def vm_sizes(self, location: str, *, subscription: str = "") -> Mapping[str, VmSize]:
        """The VM sizes Azure offers this subscription in ``location`` (lower-cased name →
        family and vCPUs), from the Resource SKUs API (``GET …/providers/Microsoft.Compute/skus
        ?$filter=location eq '<loc>'``, through ``ArmPager``). Offers are per subscription:
        ``subscription`` (empty: ``[azure] subscription_id``). A SKU whose name, family or vCPUs
        are unusable is left out (its pools then have no known family: ``QuotaUnknown``).

        Read once per (subscription, region) for the process lifetime (SKUs rarely change, and
        a region's list is megabytes in real Azure); the pools of a pair wait for its one read,
        other pairs are read meanwhile. A failed read is an answer too, raised again to every
        pool of the pair until it is retried: after ``SKUS_REFUSED_RETRY_SECONDS`` for a
        refusal (403, 404: the role lacks ``Microsoft.Compute/skus/read``, the region is
        unknown), after ``SKUS_FAILED_RETRY_SECONDS`` for a transient failure, so that a
        failing read costs one request per pair every few minutes, not one per pool per tick."""
        sub = (subscription or self._subscription).lower()
        key = (sub, location.lower())
        with self._sizes_lock:
            cached = self._vm_sizes.get(key)
            if cached is not None:
                return cached
            lock = self._sizes_locks.setdefault(key, threading.Lock())
        with lock:  # pools are observed concurrently: one read per (subscription, region)
            return self._read_vm_sizes(location, key)

    def _read_vm_sizes(self, location: str, key: tuple[str, str]) -> Mapping[str, VmSize]:
        cached = self._vm_sizes.get(key)
        if cached is not None:
            return cached
        failed = self._sizes_failed.get(key)
        if failed is not None and self._monotonic() < failed[1]:
            err = failed[0]
            raise type(err)(str(err), operation=err.operation, code=err.code, status=err.status)
        try:
            found = self._read_vm_sizes_now(location, key)
        except AdapterError as err:
            wait = (
                SKUS_FAILED_RETRY_SECONDS
                if isinstance(err, TransientError)
                else SKUS_REFUSED_RETRY_SECONDS
            )
            self._sizes_failed[key] = (err, self._monotonic() + wait)
            get_logger().warning(
                "resource_skus.read_failed",
                subscription=key[0],
                location=location,
                error=str(err),
                retry_in_seconds=wait,
            )
            raise
        with self._sizes_lock:
            self._vm_sizes[key] = found
            self._sizes_failed.pop(key, None)
        return found

    def _read_vm_sizes_now(self, location: str, key: tuple[str, str]) -> dict[str, VmSize]:
        found: dict[str, VmSize] = {}
        client = self.client_for(key[0]) if key[0] else self._client
        sub = segment(key[0] or self._subscription)
        path = f"/subscriptions/{sub}/providers/Microsoft.Compute/skus"
        params = {"api-version": SKUS_API_VERSION, "$filter": f"location eq '{location}'"}
        with self._calls.call("resource_skus.list"):
            items = self.pages.items(client, "resource_skus.list", path, params)
        for sku in items:
            name, family = sku.get("name"), sku.get("family")
            kind = sku.get("resourceType")
            if not isinstance(kind, str) or kind.lower() != "virtualmachines":
                continue
            if not isinstance(name, str) or not _SIZE_NAME.fullmatch(name):
                continue
            vcpus: int | None = None
            caps = sku.get("capabilities")
            for cap in caps if isinstance(caps, list) else []:
                if not isinstance(cap, dict) or cap.get("name") != "vCPUs":
                    continue
                value = cap.get("value")
                if isinstance(value, str) and value.isdigit() and 0 < int(value) <= 4096:
                    vcpus = int(value)
            fam = family if isinstance(family, str) and _SIZE_NAME.fullmatch(family) else ""
            found[name.lower()] = VmSize(name, fam, vcpus)
        return found

    def vm_size(self, location: str, name: str, *, subscription: str = "") -> VmSize:
        """One VM size of ``location`` (e.g. a scale set's ``sku.name`` or a VM's
        ``hardwareProfile.vmSize``); ``PermanentError`` when Azure does not list it there."""
        size = self.vm_sizes(location, subscription=subscription).get(name.lower())
        if size is None or not size.family:
            raise PermanentError(
                f"resource_skus.list: {name} is not offered in {location} (no quota family)",
                operation="resource_skus.list",
                code="SkuNotListed",
            )
        return size

    def close(self) -> None:
        with self._clients_lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()


class AzureAdapters:
    """The process's one credential and one client per service, closed in the right order.

    Metrics and compute share one ``ArmBudget``; a call ``observer`` that is also a
    ``BudgetObserver`` (``health.CallMetrics``) is told every rate-limit header."""

    def __init__(self, config: Config, *, observer: CallObserver | None = None) -> None:
        self.credential = make_credential(config.azure)
        self.budget = ArmBudget(observer if isinstance(observer, BudgetObserver) else None)
        self.metrics = AzureMonitorMetrics(
            config, self.credential, observer=observer, budget=self.budget
        )
        self.compute = AzureCompute(config, self.credential, observer=observer, budget=self.budget)

    def stretch_seconds(self) -> float:
        """How much longer than its interval the next tick should wait (``ArmBudget``)."""
        return self.budget.stretch_seconds()

    def close(self) -> None:
        self.metrics.close()
        self.compute.close()
        close = getattr(self.credential, "close", None)
        if callable(close):
            close()
