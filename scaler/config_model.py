"""The configuration's model: the pydantic models of the TOML file and their cross-checks.

Pure (no registry, no adapter): the loader (``scaler.config``) reads the file, applies the
environment, and hands the model the registries it validates against — the pool kinds and the
metric sources through the validation context (``{"kinds": ..., "sources": ...}``, with the
plug-in sources' own tables as ``"sections"`` and each pool's kind's own keys, validated against
its kind's ``Options``, as ``"options"``), so the model itself never imports a kind or a source,
and ``PoolConfig`` names no key of one kind. Kinds, sources, ports and adapters import their
config types from here; everything above them may keep importing them from ``scaler.config``.
"""

from __future__ import annotations

import json
import math
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from scaler.core.quota import plausible_family
from scaler.core.types import Behavior, DirectionBehavior, PoolLimits
from scaler.errors import ConfigError
from scaler.redact import has_userinfo, show_url

ENV_PREFIX = "CVI_AUTOSCALER__"
STATIC_TOKEN_ENV = "CVI_AUTOSCALER_STATIC_TOKEN"

PUBLIC_ARM_HOSTS = frozenset(
    {"management.azure.com", "management.usgovcloudapi.net", "management.chinacloudapi.cn"}
)
PUBLIC_METRICS_SUFFIXES = (
    ".metrics.monitor.azure.com",
    ".metrics.monitor.azure.us",
    ".metrics.monitor.azure.cn",
)

_VMSS_ID = re.compile(
    r"^/subscriptions/(?P<sub>[0-9a-fA-F-]{36})/resourceGroups/(?P<rg>[-\w._()]+)"
    r"/providers/Microsoft\.Compute/virtualMachineScaleSets/(?P<name>[-\w._]+)$",
    re.IGNORECASE,
)
MAX_INSTANCES = 1000
"""Largest ``min``/``max`` of a pool: a scale set's documented maximum size."""

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
"""What an environment variable's name is made of (POSIX: letters, digits and ``_``, not
starting with a digit)."""


class KindRules(Protocol):
    """What the model asks of a pool kind (``scaler.kinds.base.PoolKind``)."""

    @property
    def Options(self) -> type[BaseModel] | None: ...  # the model of the kind's own keys

    @property
    def needs_pexip(self) -> bool: ...

    @property
    def node_metric(self) -> bool: ...

    def problems(self, at: str, pool: PoolConfig, config: Config) -> list[str]: ...


KindTable = Mapping[str, KindRules] | str
"""The kind registry by name, or why it failed to load (reported on each pool's ``kind``)."""


class SourceRules(Protocol):
    """What the model asks of a metric source (``scaler.sources.base.MetricSource``)."""

    @property
    def name(self) -> str: ...

    @property
    def Options(self) -> type[BaseModel] | None: ...  # a model class, as policies have

    @property
    def reads_calls(self) -> bool: ...

    @property
    def needs_pexip(self) -> bool: ...

    @property
    def section(self) -> str: ...

    def problems(self, check: MetricCheck) -> list[str]: ...

    def fallback_problems(self, check: MetricCheck) -> list[str]: ...

    def section_problems(self, check: MetricCheck) -> list[str]: ...


SourceTable = Mapping[str, SourceRules] | str
"""The metric source registry by name, or why it failed to load (reported on each pool's
``metric.source``)."""

DEFAULT_SOURCE = "azure-monitor"
"""The source of a ``[pools.metric]`` without ``source``: the Azure Monitor metric its own keys
(``namespace``, ``name``…) describe."""


def _no_userinfo(url: str, where: str) -> None:
    """A URL with a user name or password in it puts a secret into every error and log line
    that names the URL: refused, with where the credential belongs instead."""
    if url and has_userinfo(url):
        raise ValueError(f"must not carry a user name or password ({where})")


_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _pem_bundle(v: Path | None) -> Path | None:
    """A ``ca_bundle`` must be a file of PEM certificates, checked the way the clients will
    load it, so that ``validate`` fails rather than the first HTTPS call at run time."""
    if v is None:
        return v
    if not v.is_file():
        raise ValueError("file not found" if not v.exists() else "not a regular file")
    try:
        # a bare client context: the file is parsed as the clients will load it, without the
        # system's trust store (tens of milliseconds to load, and not what is being checked)
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(v))
    except ssl.SSLError as exc:
        raise ValueError(f"not a PEM certificate bundle ({exc.reason or exc})") from exc
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.strerror})") from exc
    return v


class DaemonConfig(_Strict):
    """``[daemon]``: the loop."""

    interval_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    """Seconds between ticks (1–3600)."""
    dry_run: bool = False
    """Decide, never write."""
    shutdown_deadline_seconds: float = Field(default=20.0, gt=0.0, le=600.0)
    """SIGTERM to exit, at most, also when a tick is stuck in a slow call (the state known so far
    is saved and the lease released within it); keep below systemd's ``TimeoutStopSec``."""
    tick_deadline_seconds: float | None = Field(default=None, gt=0.0, le=3600.0)
    """A tick's reads end by then: pools whose state is not read by half of it hold
    (``ObserveTimedOut``), metrics or quota not read by all of it count as missing, and the
    others are decided; a read still running is not started again the next tick. Empty: 80 % of
    the interval."""
    read_workers: int = Field(default=8, ge=1, le=64)
    """Threads that read pools, metrics and quota concurrently within a tick."""
    once_wait_seconds: float = Field(default=900.0, ge=0.0, le=86400.0)
    """``once`` waits this long for its resizes to finish before reporting."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """``debug``, ``info``, ``warning``, ``error``."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """``auto`` (JSON unless a terminal), ``json``, ``console``."""
    log_decisions: Literal["changes", "every-tick"] = "changes"
    """``changes``: a pool's ``decision.made`` is logged when its decision (current, desired,
    reason, winning policy, metric status) differs from the one last logged, and each tick
    logs one ``tick.summary``; ``every-tick``: every pool every tick, as before."""
    state_dir: Path | None = None
    """Where the state file lives; empty: ``$STATE_DIRECTORY`` (systemd's ``StateDirectory``),
    and no local state when neither is set."""

    @field_validator("state_dir")
    @classmethod
    def _directory(cls, v: Path | None) -> Path | None:
        # It may not exist yet (the state file's save creates it), but neither it nor the
        # nearest existing parent may be anything but a directory.
        probe = v
        while probe is not None and not probe.exists():
            probe = None if probe.parent == probe else probe.parent
        if v is not None and probe is not None and not probe.is_dir():
            where = "is" if probe == v else f"is inside {str(probe)!r}, which is"
            raise ValueError(f"must be a directory; it {where} a file")
        return v


class HttpConfig(_Strict):
    """``[http]``: the read-only health, status and Prometheus endpoint."""

    enabled: bool = False
    """Serve ``/healthz``, ``/readyz``, ``/metrics``, ``/status`` (read-only)."""
    bind: str = "127.0.0.1"
    """Address to listen on; anything but a loopback address is logged as a warning
    (``http.exposed``): the endpoint has no authentication (see *Exposing the HTTP endpoint*)."""
    port: int = Field(default=9464, ge=0, le=65535)
    """TCP port; 0 picks a free one (logged as ``http.listening``)."""


class HaConfig(_Strict):
    """``[ha]``: leader election between replicas through an Azure Blob lease."""

    enabled: bool = False
    """Leader election between replicas; only the leader writes."""
    account_url: str = ""
    """``https://<account>.blob.core.windows.net``, reached with the ``[azure]`` credential (role
    *Storage Blob Data Contributor* on the container)."""
    connection_string: str = ""
    """Instead of ``account_url`` (Azurite, shared keys); better set through the environment
    (``CVI_AUTOSCALER__HA__CONNECTION_STRING``) than written in the file."""
    container: str = Field(default="cvi-autoscaler", min_length=3, max_length=63)
    """The leased blob (both are created when missing)."""
    blob: str = Field(default="leader", min_length=1)
    """The leased blob (both are created when missing)."""
    state_blob: str = Field(default="state.json", min_length=1)
    """The shared state the leader writes, in the same container."""
    lease_seconds: int = Field(default=30, ge=15, le=60)
    """Blob lease period (Azure allows 15–60 s); a standby takes over about this long after
    the leader stops renewing."""
    renew_seconds: float | None = Field(default=None, gt=0.0, le=60.0)
    """How often the leader renews (standbys retry twice as often); empty: a third of
    ``lease_seconds``."""
    margin_seconds: float = Field(default=3.0, ge=0.0, le=60.0)
    """Leadership is trusted only until last renewal + lease − margin (clock drift, latency)."""
    identity: str = ""
    """This replica's name in logs and on the lease blob (metadata ``leader``); empty:
    ``hostname:pid``."""

    @field_validator("account_url")
    @classmethod
    def _https_account(cls, v: str) -> str:
        _no_userinfo(
            v,
            "the account is reached with the [azure] credential, or set "
            "ha.connection_string through the environment",
        )
        if v and urlparse(v).scheme != "https":
            raise ValueError("must be an https:// URL")
        return v.rstrip("/")

    @property
    def renew_every(self) -> float:
        return self.renew_seconds or self.lease_seconds / 3.0


class AzureConfig(_Strict):
    """``[azure]``: where and as whom the daemon talks to Azure."""

    subscription_id: str = ""
    """The default subscription of the pools (GUID); with it set, every resource id must be in it or
    in ``subscriptions``."""
    subscriptions: list[str] = []
    """Further subscriptions the pools' resources live in, besides ``subscription_id``: with
    ``subscription_id`` set, a resource id in any other subscription is refused (a typo, or a
    subscription the identity's role was never given)."""
    location: str = ""
    """Default region of the pools, in the form the APIs take (``westeurope``, not ``West Europe``:
    refused with a "did you mean")."""
    resource_manager_url: str = "https://management.azure.com"
    """ARM endpoint (sovereign clouds, Azure Stack, emulators)."""
    resource_manager_audience: str = ""
    """Token audience for ARM; empty: ``https://management.azure.com`` for public Azure, else the
    ``resource_manager_url`` itself."""
    metrics_url: str = ""
    """Metrics data-plane endpoint; may contain ``{location}``. Empty: public Azure's regional
    ``https://{location}.metrics.monitor.azure.com``."""
    metrics_audience: str = "https://metrics.monitor.azure.com"
    """Token audience for metrics."""
    credential: Literal[
        "default", "managed-identity", "workload-identity", "azure-cli", "static-token"
    ] = "default"
    """``default`` (DefaultAzureCredential), ``managed-identity``, ``workload-identity``,
    ``azure-cli``, ``static-token`` (bearer token from ``CVI_AUTOSCALER_STATIC_TOKEN``; accepted
    only with non-public endpoints: emulators, Azure Stack labs)."""
    managed_identity_client_id: str = ""
    """Client id of a user-assigned identity."""
    ca_bundle: Path | None = None
    """Extra trusted CA file (PEM)."""
    timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    """Connect/read timeout per HTTP call."""
    retry_total: int = Field(default=3, ge=0, le=10)
    """The SDK's own retries of 429 (honouring ``Retry-After``), 5xx and connection errors."""
    polling_interval_seconds: float | None = Field(default=None, ge=0.0, le=3600.0)
    """LRO polling interval when Azure sends no ``Retry-After``; empty: the SDK's default."""
    call_deadline_seconds: float = Field(default=15.0, gt=0.0, le=600.0)
    """Longest one Azure call may take, retries included: each attempt's timeouts are cut to
    the time left, and a ``Retry-After`` that would end past it is not waited for (the call fails
    at once as transient and the pool holds this tick)."""
    quota_max_age_seconds: float = Field(default=900.0, ge=0.0, le=86400.0)
    """While ``usage.list`` fails, its last answer is used for at most this long (seconds)."""
    quota_unknown_step: int = Field(default=0, ge=0, le=100)
    """Instances a pool may grow per tick while its vCPU quota is unknown (0: hold,
    ``QuotaUnknown``)."""
    max_pages: int = Field(default=100, ge=1, le=10000)
    """Pages one list read (usages, scale sets, instances, VMs, SKUs, autoscale settings)
    follows at most through ``nextLink``; more is an error (an endless ``nextLink``)."""
    read_deadline_seconds: float = Field(default=60.0, gt=0.0, le=600.0)
    """Total time one list read may take over all its pages (seconds); past it the read fails
    as transient and the pools that needed it hold."""

    @field_validator("subscription_id")
    @classmethod
    def _guid(cls, v: str) -> str:
        if v and not _GUID.match(v):
            raise ValueError("must be a subscription GUID")
        return v

    @field_validator("subscriptions")
    @classmethod
    def _guids(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not _GUID.match(s)]
        if bad:
            raise ValueError(f"must be subscription GUIDs, not {', '.join(map(repr, bad))}")
        return v

    @field_validator("resource_manager_url", "metrics_url")
    @classmethod
    def _https(cls, v: str) -> str:
        _no_userinfo(v, "Azure is reached with azure.credential, never a password in a URL")
        if v and urlparse(v.replace("{location}", "x")).scheme != "https":
            raise ValueError("must be an https:// URL (Azure refuses bearer tokens over http)")
        return v.rstrip("/")

    @field_validator("ca_bundle")
    @classmethod
    def _exists(cls, v: Path | None) -> Path | None:
        return _pem_bundle(v)

    @property
    def is_public_cloud(self) -> bool:
        arm_host = urlparse(self.resource_manager_url).hostname or ""
        metrics_host = urlparse(self.metrics_url.replace("{location}", "x")).hostname or ""
        return (
            arm_host in PUBLIC_ARM_HOSTS
            or not self.metrics_url
            or (metrics_host.endswith(PUBLIC_METRICS_SUFFIXES))
        )

    def metrics_endpoint(self, location: str) -> str:
        template = self.metrics_url or "https://{location}.metrics.monitor.azure.com"
        return template.replace("{location}", location)

    def arm_audience(self) -> str:
        if self.resource_manager_audience:
            return self.resource_manager_audience
        host = urlparse(self.resource_manager_url).hostname or ""
        if host in PUBLIC_ARM_HOSTS:
            return f"https://{host}"
        return self.resource_manager_url


class PexipConfig(_Strict):
    """``[pexip]``: the Pexip Infinity Management Node (status and configuration API)."""

    url: str = ""
    """``https://<management node>``; empty: no Pexip integration. Needed by ``pexip-teams``,
    ``vm-set`` and the ``pexip`` metric source; a user name or password in it is refused (they
    would show in every error and log line)."""
    username: str = ""
    """An account that reads status and edits ``teams_proxy`` / ``worker_vm``."""
    password_file: Path | None = None
    """File holding the password (first line); else the environment variable ``password_env``."""
    password_env: str = "CVI_AUTOSCALER_PEXIP_PASSWORD"
    """Without ``password_file``, the password comes from this environment variable (its *name*:
    letters, digits and ``_``; a value that is not a name, such as the password itself, is refused
    and never shown)."""
    ca_bundle: Path | None = None
    """Extra trusted CA file (PEM) for the Management Node's certificate."""
    timeout_seconds: float = Field(default=10.0, gt=0.0, le=300.0)
    """Connect/read timeout of each request."""
    page_size: int = Field(default=100, ge=1, le=1000)
    """``limit`` of each list request; further pages follow ``meta.next``."""
    max_pages: int = Field(default=50, ge=1, le=10000)
    """Pages one list read follows at most; more is an error (an endless ``meta.next``)."""
    read_deadline_seconds: float = Field(default=60.0, gt=0.0, le=600.0)
    """Total time one list read may take over all its pages (seconds); past it the read fails
    as transient and the pools that needed it hold."""
    publish_metrics: bool = False
    """Republish Pexip's call counts to Azure Monitor (``Pexip/CVI`` ``ActiveCalls`` by
    ``VMName``) on the resource of each pool whose metric source is ``pexip``."""
    publish_url: str = ""
    """Custom-metrics ingestion endpoint; may contain ``{location}``. Empty: public Azure's
    ``https://{location}.monitoring.azure.com``."""
    publish_audience: str = "https://monitoring.azure.com/"
    """Token audience for publishing."""

    @field_validator("url", "publish_url")
    @classmethod
    def _https_pexip(cls, v: str) -> str:
        _no_userinfo(
            v,
            "the user name goes in pexip.username and the password in pexip.password_file or "
            "the environment variable named by pexip.password_env",
        )
        if v and urlparse(v.replace("{location}", "x")).scheme != "https":
            raise ValueError("must be an https:// URL")
        return v.rstrip("/")

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not ENV_NAME.fullmatch(v):
            raise ValueError(
                "must be the name of an environment variable holding the password (letters, "
                "digits and _), not the password itself"
            )
        return v

    @field_validator("password_file")
    @classmethod
    def _file_exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError("file not found")
        return v

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, v: Path | None) -> Path | None:
        return _pem_bundle(v)

    def publish_endpoint(self, location: str) -> str:
        template = self.publish_url or "https://{location}.monitoring.azure.com"
        return template.replace("{location}", location)


# -- where call load comes from ----------------------------------------------------------------
# No Pexip component sends call counts to Azure Monitor by itself. ``Pexip/CVI`` / ``ActiveCalls``
# exists only where a cvi-autoscaler publishes it (``[pexip] publish_metrics``); what Azure emits
# by itself for every scale set are its platform metrics. The ones whose unit this daemon knows:
VMSS_NAMESPACE = "Microsoft.Compute/virtualMachineScaleSets"
PLATFORM_METRICS: Mapping[tuple[str, str], tuple[str, str]] = {
    # https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-compute-virtualmachinescalesets-metrics
    # "Percentage CPU": "the percentage of allocated compute units that are currently in use by
    # the Virtual Machine(s)", unit Percent, aggregation Average, dimension VMName, grain PT1M.
    (VMSS_NAMESPACE.lower(), "percentage cpu"): ("percent_of_capacity", "Average"),
}
"""(namespace, name), lower case → (``meaning``, default ``aggregation``)."""
PUBLISHED_NAMESPACE = "Pexip/CVI"
PUBLISHED_NAME = "ActiveCalls"
"""The custom metric ``publish_metrics`` writes (``scaler.adapters.azure_publish``)."""

Meaning = Literal["calls", "calls_per_instance", "percent_of_capacity"]
MetricUnit = Literal[
    "",
    "Count",
    "Unspecified",
    "Percent",
    "Bytes",
    "Seconds",
    "CountPerSecond",
    "BytesPerSecond",
    "MilliSeconds",
    "ByteSeconds",
    "Cores",
    "MilliCores",
    "NanoCores",
    "BitsPerSecond",
]
"""Azure Monitor's metric units (``MetricUnit`` of the metrics API, 2024-02-01); ``""``: implied."""
Aggregation = Literal["Average", "Maximum", "Minimum", "Total", "Count"]


class AzureMetricConfig(_Strict):
    """One Azure Monitor metric of a resource and the unit of its value.

    ``aggregation`` and ``meaning`` default to what the named metric is (``PLATFORM_METRICS``:
    ``Percentage CPU`` is ``Average`` / ``percent_of_capacity``); any other metric defaults to
    ``Maximum`` / ``calls``."""

    resource_id: str = ""
    """Resource the metric lives on; empty: the pool's own ``resource_id``."""
    namespace: str = VMSS_NAMESPACE
    """Metric namespace (``azure-monitor`` only)."""
    name: str = "Percentage CPU"
    """Metric name (``azure-monitor`` only)."""
    aggregation: Aggregation = "Average"
    """``Average``, ``Maximum``, ``Minimum``, ``Total``, ``Count``."""
    filter: str = ""
    """Dimension filter, e.g. ``VMName eq '*'`` (series are summed per minute)."""
    meaning: Meaning = "percent_of_capacity"
    """``calls``: the value is the pool's concurrent calls. ``calls_per_instance``: multiply by
    the current instances. ``percent_of_capacity`` (a CPU-style proxy): value/100 × current ×
    calls_per_instance."""
    unit: MetricUnit = ""
    """The unit Azure Monitor must report the metric in (its ``MetricUnit`` names); a reading in
    any other unit is missing (hold). Empty: what ``meaning`` implies, ``Count`` or
    ``Unspecified`` (custom metrics are ingested without a unit) for ``calls`` and
    ``calls_per_instance``, ``Percent`` for ``percent_of_capacity``."""

    @model_validator(mode="before")
    @classmethod
    def _unit_of_the_named_metric(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        if _reads_calls(data.get("source", DEFAULT_SOURCE), info):
            return {"meaning": "calls", **data}
        key = (
            str(data.get("namespace", VMSS_NAMESPACE)).lower(),
            str(data.get("name", "Percentage CPU")).lower(),
        )
        meaning, aggregation = PLATFORM_METRICS.get(key, ("calls", "Maximum"))
        return {"meaning": meaning, "aggregation": aggregation, **data}

    @property
    def is_published(self) -> bool:
        """Whether this is the custom metric only a cvi-autoscaler's publisher writes."""
        return self.namespace.lower() == PUBLISHED_NAMESPACE.lower()


def _reads_calls(source: Any, info: ValidationInfo) -> bool:
    """Whether a ``[pools.metric]`` of ``source`` reads calls whatever its metric keys say (its
    source's ``reads_calls``; without a registry at hand, any source but the default, whose
    keys name an Azure Monitor metric)."""
    sources = (info.context or {}).get("sources")
    rules = sources.get(source) if isinstance(sources, Mapping) else None
    if rules is not None:
        return bool(rules.reads_calls)
    return isinstance(source, str) and source != DEFAULT_SOURCE


class FallbackMetricConfig(AzureMetricConfig):
    """``[pools.metric.fallback_metric]``: read while the Management Node cannot be
    (``fallback = "azure-monitor"``). A platform metric, which Azure emits whatever Pexip does;
    default: the scale set's ``Percentage CPU`` as ``percent_of_capacity``. The window, lag and
    reduction are the pool's ``[pools.metric]`` ones."""


class LogAnalyticsConfig(_Strict):
    """``[pools.metric.log_analytics]``: a KQL query over a Log Analytics workspace that yields
    the pools' concurrent calls per minute (``scaler.adapters.azure_logs`` states the contract:
    columns ``TimeGenerated``, ``pool``, ``calls``)."""

    workspace_id: str = ""
    """The workspace's id (a GUID, "Workspace ID" in the portal); required."""
    query: str = ""
    """KQL yielding one row per pool and minute: ``TimeGenerated`` (the minute's start, UTC),
    ``pool`` (a pool name of this file), ``calls`` (concurrent calls; null: unknown); required."""
    logs_url: str = "https://api.loganalytics.io"
    """Log Analytics query endpoint (sovereign clouds, emulators)."""
    audience: str = ""
    """Token audience; empty: ``logs_url`` (the SDK's default)."""
    server_timeout_seconds: int = Field(default=60, ge=1, le=600)
    """How long the service may run the query (Log Analytics allows up to 10 minutes)."""

    @field_validator("workspace_id")
    @classmethod
    def _workspace_guid(cls, v: str) -> str:
        if v and not _GUID.match(v):
            raise ValueError("must be the workspace's GUID")
        return v

    @field_validator("logs_url")
    @classmethod
    def _https_logs(cls, v: str) -> str:
        _no_userinfo(v, "Log Analytics is reached with azure.credential")
        if urlparse(v).scheme != "https":
            raise ValueError("must be an https:// URL (Azure refuses bearer tokens over http)")
        return v.rstrip("/")


class MetricConfig(AzureMetricConfig):
    """``[pools.metric]``: where a pool's call load is read and how it becomes calls.

    Out of the box: ``source = "pexip"`` (the Management Node's own call counts), or an Azure
    Monitor platform metric (default: the scale set's ``Percentage CPU``). Each source is a
    module of its own (``scaler.sources``): the keys of the built-in ones are fields of this
    table, kept where the file has always had them; a plug-in source reads its own table
    ``[pools.metric.<its section>]``, validated against its own model."""

    source: str = DEFAULT_SOURCE
    """Where the load is read, a registered metric source: ``azure-monitor`` (below),
    ``pexip``: the Management Node's status API (Teams Connector ``call_count`` per instance;
    Conferencing Node media load in HD calls), ``log-analytics``: the KQL query of
    ``log_analytics``."""
    fallback: str = "none"
    """Another source read when ``source`` cannot be, from that source's own table:
    ``azure-monitor`` reads ``fallback_metric`` (only with ``source = "pexip"``),
    ``log-analytics`` runs ``log_analytics``; ``none``: the pool holds."""
    log_analytics: LogAnalyticsConfig = LogAnalyticsConfig()
    """``source`` or ``fallback`` ``log-analytics``: the workspace and the query."""
    fallback_metric: FallbackMetricConfig = FallbackMetricConfig()
    """The platform metric ``fallback = "azure-monitor"`` reads (window, lag and reduction: the
    pool's)."""
    published_elsewhere: bool = False
    """``Pexip/CVI`` read from Azure Monitor is published by another cvi-autoscaler (one whose
    ``[pexip] publish_metrics`` writes this pool's resource); without it, validation refuses a
    ``Pexip/CVI`` metric no pool of this file publishes."""
    locations: list[str] = []
    """``pexip`` source on a ``vm-set`` pool: Pexip system locations whose load counts. The pool
    then sees the load beyond ``base_fill`` of the other nodes' capacity there; empty: only the
    pool's own nodes."""
    base_fill: float = Field(default=0.8, ge=0.0, le=1.0)
    """``vm-set`` with ``pexip`` and ``locations``: the share of the other nodes' capacity in those
    locations that their load must pass before this pool sees it."""
    window_minutes: int = Field(default=5, ge=1, le=60)
    """Complete minutes considered."""
    lag_minutes: int = Field(default=3, ge=0, le=30)
    """Buckets newer than this are still filling and ignored (Azure Monitor is 1–3 min late)."""
    reduce: Literal["last", "max", "mean"] = "max"
    """How the window's complete buckets become one number: ``max``, ``mean`` or ``last`` of the
    window's known minutes."""
    history_minutes: int = Field(default=0, ge=0, le=60 * 24 * 35)
    """Extra history handed to policies that look back (0: none)."""

    @field_validator("source", "fallback")
    @classmethod
    def _registered(cls, v: str, info: ValidationInfo) -> str:
        """A registered source (with a table of its own, for a fallback), when the loader
        hands over the registry (``{"sources": ...}``)."""
        sources = (info.context or {}).get("sources")
        if isinstance(sources, str):
            raise ValueError(sources)
        if not isinstance(sources, Mapping):
            return v
        if info.field_name == "source":
            if v not in sources:
                raise ValueError(f"must be one of {', '.join(sorted(sources))}")
            return v
        able = sorted(name for name, rules in sources.items() if rules.section)
        if v != "none" and v not in able:
            raise ValueError(f"must be one of none, {', '.join(able)}")
        return v

    _sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)
    """Plug-in sources' own tables, validated by the loader against their models."""

    def section(self, key: str) -> Any:
        """A source's own table by its key: a field of this model (``log_analytics``) or a
        plug-in source's (``None`` when the file has none)."""
        if key in type(self).model_fields:
            return getattr(self, key)
        return self._sections.get(key)

    def fallback_view(self, pool_resource_id: str) -> MetricConfig:
        """This metric as Azure Monitor (the default source) reads ``fallback_metric`` in
        another source's stead, with this metric's window, lag and reduction
        (``scaler.sources.azure_monitor.AzureMonitor.view``)."""
        fb = self.fallback_metric
        return self.model_copy(
            update={
                "source": DEFAULT_SOURCE,
                "fallback": "none",
                "resource_id": fb.resource_id or pool_resource_id,
                "namespace": fb.namespace,
                "name": fb.name,
                "aggregation": fb.aggregation,
                "filter": fb.filter,
                "meaning": fb.meaning,
                "unit": fb.unit,
                "published_elsewhere": False,
            }
        )

    def is_set(self, key: str) -> bool:
        """Whether the file sets ``key`` (a field or a plug-in source's table)."""
        return key in self.model_fields_set or key in self._sections


@dataclass(frozen=True, slots=True)
class MetricCheck:
    """What a metric source is shown to check one pool's ``[pools.metric]``."""

    at: str
    """The metric's key path, ``pools[i].metric``."""
    pool: PoolConfig
    config: Config
    kind: KindRules | None
    """The pool's kind (``None``: unknown, reported on ``kind``)."""
    published: frozenset[str]
    """Resource ids (lower case) a pool of this file republishes its calls on to Azure Monitor
    (``[pexip] publish_metrics``)."""

    @property
    def metric(self) -> MetricConfig:
        return self.pool.metric


def published_resources(config: Config, sources: SourceTable) -> frozenset[str]:
    """The resources ``[pexip] publish_metrics`` writes ``Pexip/CVI`` to: the metric resource of
    each pool read from a source whose readings are republished (``needs_pexip``)."""
    if not config.pexip.publish_metrics or isinstance(sources, str):
        return frozenset()
    return frozenset(
        p.metric_resource_id.lower()
        for p in config.pools
        if p.metric.source in sources and sources[p.metric.source].needs_pexip
    )


def metric_problems(
    i: int,
    pool: PoolConfig,
    config: Config,
    kinds: KindTable = "",
    sources: SourceTable = "",
    published: frozenset[str] = frozenset(),
) -> list[str]:
    """A pool's metric, checked by its source (``sources``: the registry
    ``scaler.sources.discover`` as the loader hands it over, or why it failed to load) and by
    its fallback's; every source also checks that its own table is set only where it is read.
    Problems with their key paths."""
    at = f"pools[{i}].metric"
    m = pool.metric
    if isinstance(sources, str):
        return [f"{at}.source: {sources}"]
    source = sources.get(m.source)
    if source is None:  # a model built without the registry at hand
        return [f"{at}.source: must be one of {', '.join(sorted(sources))}, got {m.source!r}"]
    kind = kinds.get(pool.kind) if isinstance(kinds, Mapping) else None
    check = MetricCheck(at, pool, config, kind, published)
    out = list(source.problems(check))
    out += _fallback_problems(check, sources)
    for other in sources.values():
        out += other.section_problems(check)
    return out


def _fallback_problems(check: MetricCheck, sources: Mapping[str, SourceRules]) -> list[str]:
    """A fallback is another registered source that has a table of its own to be read from."""
    m, at = check.metric, check.at
    if m.fallback == "none":
        return []
    fallback = sources.get(m.fallback)
    if fallback is None or not fallback.section:  # a model built without the registry
        able = sorted(name for name, s in sources.items() if s.section)
        return [f"{at}.fallback: must be one of none, {', '.join(able)}, got {m.fallback!r}"]
    if m.fallback == m.source:
        return [f"{at}.fallback: must differ from the source, got {m.fallback!r}"]
    return fallback.fallback_problems(check)


class DirectionConfig(_Strict):
    stabilization_seconds: float = Field(default=0.0, ge=0.0, le=86400.0)
    """The window: a scale-up goes only to the lowest recommendation of the up-window, a scale-down
    only to the highest of the down-window."""
    max_instances: int | None = Field(default=None, ge=0)
    """At most this many instances per period (HPA's ``type: Pods`` policy). Default: 4 up, none
    down."""
    max_percent: float | None = Field(default=None, ge=0.0)
    """At most this percentage of the current size per period (HPA's ``type: Percent`` policy).
    Default: 100."""
    period_seconds: float = Field(default=60.0, gt=0.0, le=86400.0)
    """The period of both limits, unless one has its own."""
    select: Literal["max", "min"] = "max"
    """``max``: whichever limit allows more; ``min``: whichever allows less (HPA's
    ``selectPolicy``)."""
    max_instances_period_seconds: float | None = Field(default=None, gt=0.0, le=86400.0)
    """Period of ``max_instances`` alone (HPA: each policy's ``periodSeconds``)."""
    max_percent_period_seconds: float | None = Field(default=None, gt=0.0, le=86400.0)
    """Period of ``max_percent`` alone."""

    def to_core(self) -> DirectionBehavior:
        return DirectionBehavior(
            self.stabilization_seconds,
            self.max_instances,
            self.max_percent,
            self.period_seconds,
            self.select,
            self.max_instances_period_seconds,
            self.max_percent_period_seconds,
        )


class BehaviorConfig(_Strict):
    """``[pools.behavior]``: HPA-style tolerance, stabilisation and rate limits."""

    tolerance: float = Field(default=0.1, ge=0.0, lt=1.0)
    """Hold while utilisation ÷ target is within 1 ± tolerance."""
    scale_up: DirectionConfig = DirectionConfig(
        stabilization_seconds=0, max_instances=4, max_percent=100, period_seconds=60
    )
    """``[pools.behavior.scale_up]``: the up-window and rate limits (defaults: window 0, +4
    instances or +100 % a minute)."""
    scale_down: DirectionConfig = DirectionConfig(
        stabilization_seconds=300, max_percent=100, period_seconds=60
    )
    """``[pools.behavior.scale_down]``: the down-window and rate limits (defaults: window 300 s,
    −100 % a minute)."""
    missing_data_floor: int | None = Field(default=None, ge=0)
    """With stale/missing metrics, rise to at least this."""

    def to_core(self) -> Behavior:
        return Behavior(
            tolerance=self.tolerance,
            scale_up=self.scale_up.to_core(),
            scale_down=self.scale_down.to_core(),
            missing_data_floor=self.missing_data_floor,
        )


_VM_SIZE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,63}$")
_PRICE = Field(default=None, ge=0.0, le=100000.0)


class SkuPriceConfig(_Strict):
    """``[cost.sku."<VM size>"]``: what one VM of this size costs an hour, in ``currency``.

    Azure prices a Windows VM above the same size running Linux (the Windows Server licence is
    included: https://azure.microsoft.com/pricing/details/virtual-machines/windows/ and
    .../linux/); a Teams Connector runs Windows, Conferencing Nodes do not."""

    per_hour: float | None = _PRICE
    """Whatever the OS (e.g. a negotiated or reserved price)."""
    windows_per_hour: float | None = _PRICE
    """One Windows VM of that size for one hour (Azure's Windows prices include the licence; a Teams
    Connector runs Windows)."""
    linux_per_hour: float | None = _PRICE
    """One Linux VM of that size for one hour (with ``windows_per_hour``: the size priced per
    OS)."""

    @field_validator("per_hour", "windows_per_hour", "linux_per_hour", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        # inside a table of tables, so the document walk for booleans does not reach it
        if isinstance(v, bool):
            raise ValueError("must be a number, not a boolean")
        return v

    @model_validator(mode="after")
    def _some_price(self) -> SkuPriceConfig:
        if self.per_hour is None and self.windows_per_hour is None and self.linux_per_hour is None:
            raise ValueError("needs per_hour, windows_per_hour or linux_per_hour")
        return self

    def price(self, os_name: str | None) -> float | None:
        """Per hour for ``os_name`` (``windows``/``linux``; None: not said), None when the
        table cannot tell."""
        by_os = {"windows": self.windows_per_hour, "linux": self.linux_per_hour}
        if os_name is not None and by_os[os_name] is not None:
            return by_os[os_name]
        if self.per_hour is not None:
            return self.per_hour
        if os_name is None:
            prices = {v for v in by_os.values() if v is not None}
            return prices.pop() if len(prices) == 1 else None
        return None


class CostConfig(_Strict):
    """``[cost]``: prices, so backtests, ``/status`` and reports show money beside vCPU-hours.

    A pool's hourly price per instance is its ``vm_size``'s ``[cost.sku]`` price for its ``os``,
    else ``vcpus_per_instance × per_vcpu_hour``. Prices are the operator's (list, negotiated or
    reserved); nothing is fetched."""

    currency: str = "USD"
    """ISO 4217 code, only shown (``EUR``, ``USD``…)."""
    per_vcpu_hour: float | None = _PRICE
    """Price of one vCPU for one hour: pools without a priced ``vm_size``."""
    sku: dict[str, SkuPriceConfig] = {}
    """VM size (``Standard_F4s_v2``, any case) → its hourly prices."""

    @field_validator("currency", mode="before")
    @classmethod
    def _iso_4217(cls, v: Any) -> Any:
        if not (isinstance(v, str) and re.fullmatch(r"[A-Z]{3}", v)):
            raise ValueError("must be a three-letter ISO 4217 code such as 'EUR'")
        return v

    @field_validator("sku")
    @classmethod
    def _sizes(cls, v: dict[str, SkuPriceConfig]) -> dict[str, SkuPriceConfig]:
        seen: set[str] = set()
        for name in v:
            if not _VM_SIZE.match(name):
                raise ValueError(f"{name!r} is not a VM size name (e.g. 'Standard_F4s_v2')")
            if name.lower() in seen:
                raise ValueError(f"{name!r} is listed twice (VM size names ignore case)")
            seen.add(name.lower())
        return v

    def sku_price(self, vm_size: str) -> SkuPriceConfig | None:
        return next((p for k, p in self.sku.items() if k.lower() == vm_size.lower()), None)

    def per_instance_hour(self, pool: PoolConfig) -> float | None:
        """What one instance of ``pool`` costs an hour (None: no price applies)."""
        entry = self.sku_price(pool.vm_size) if pool.vm_size else None
        price = entry.price(pool.os) if entry is not None else None
        if price is not None:
            return price
        if self.per_vcpu_hour is not None:
            return self.per_vcpu_hour * pool.vcpus_per_instance
        return None


def cost_problems(i: int, pool: PoolConfig, cost: CostConfig | None) -> list[str]:
    """With ``[cost]``, every pool must have a price; without it, nothing is checked."""
    if cost is None or cost.per_instance_hour(pool) is not None:
        return []
    at = f"pools[{i}]"
    entry = cost.sku_price(pool.vm_size) if pool.vm_size else None
    if entry is not None:
        return [
            f"{at}.os: cost.sku.{pool.vm_size} prices windows and linux apart and has no "
            f"per_hour, so the pool must say which ('windows' or 'linux'), or set "
            f"cost.per_vcpu_hour, got {_show(pool.os or '')}"
        ]
    if pool.vm_size:
        return [
            f"{at}.vm_size: no cost.sku entry prices it and cost.per_vcpu_hour is not set, "
            f"got {pool.vm_size!r}"
        ]
    return [
        f"cost.per_vcpu_hour: required to price pools[{i}] ({pool.name!r}), which names no "
        f"vm_size, got None"
    ]


class PoolConfig(_Strict):
    """``[[pools]]``: one pool the daemon sizes (see ``kind``). Besides these shared keys, a
    pool takes the keys of its kind (``drain`` of ``vmss``, ``teams_proxy`` of ``pexip-teams``,
    ``[pools.vm_set]`` of ``vm-set``): each kind's own are listed under Pool kinds below."""

    name: str
    """Unique name (letters, digits, ``-_.``)."""
    kind: str = "vmss"
    """``vmss``: a scale set resized through ``sku.capacity`` (call-safe with ``drain``);
    ``pexip-teams``: a Teams Connector sized through Pexip's ``min_number_of_instances``;
    ``vm-set``: pre-provisioned Conferencing Node VMs started and deallocated."""
    resource_id: str = ""
    """``/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/virtualMachineScaleSets/…``
    (required for ``vmss``, optional for ``pexip-teams``, not used by ``vm-set``)."""
    location: str = ""
    """Region of the pool, for quota and the metrics endpoint; empty: ``[azure] location``."""
    vcpus_per_instance: int = Field(ge=1, le=1024)
    """vCPUs of one instance (Standard_F4s_v2: 4)."""
    quota_family: str = ""
    """Override of the quota family (``usage.list`` line) of the pool's VM size; empty: the
    family Azure's Resource SKUs API lists for the scale set's / VMs' size."""
    calls_per_instance: float = Field(default=15.0, gt=0.0, le=10000.0)
    """Pexip's planning figure for a Teams Connector instance."""
    # A scale set holds at most 1,000 VMs ("you can create Azure virtual machine scale sets
    # with a capacity of up to 1,000 VMs", https://learn.microsoft.com/en-us/azure/
    # virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups).
    min: int = Field(ge=0, le=MAX_INSTANCES)
    """Fewest instances the pool is sized to."""
    max: int = Field(ge=0, le=MAX_INSTANCES)
    """Most instances the pool is sized to (``max >= min``)."""
    boot_minutes: float = Field(default=20.0, ge=0.0, le=240.0)
    """Minutes before a new instance takes calls."""
    priority: int = 0
    """Higher wins scarce quota; ties go by name."""
    metric: MetricConfig = MetricConfig()
    """``[pools.metric]``: where the call load comes from."""
    behavior: BehaviorConfig = BehaviorConfig()
    """``[pools.behavior]``: how eagerly the pool follows its policies (Kubernetes HPA
    semantics)."""
    policies: list[dict[str, Any]] = Field(min_length=1)
    """``[[pools.policies]]``: one table per policy, ``type`` naming it (see Policies below)."""
    template: str = ""
    """The ``[templates.NAME]`` whose keys this pool takes where it sets none
    (``scaler.templates``)."""
    vm_size: str = ""
    """The instances' VM size (``Standard_F4s_v2``), for pricing with ``[cost.sku]``; empty:
    priced by ``vcpus_per_instance × [cost] per_vcpu_hour``."""
    os: Literal["windows", "linux"] | None = None
    """The instances' OS, for a ``[cost.sku]`` entry that prices Windows and Linux apart."""

    _quota_subscription: str = PrivateAttr(default="")
    """The pool's subscription when it is not the config's default one (set by ``Config``)."""
    _kind_options: BaseModel | None = PrivateAttr(default=None)
    """The keys only the pool's kind takes, validated by the loader against the kind's
    ``Options`` (set by ``Config`` from the validation context's ``"options"``)."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must be 1-63 letters, digits, '-', '_' or '.'")
        return v

    @field_validator("vm_size")
    @classmethod
    def _vm_size(cls, v: str) -> str:
        if v and not _VM_SIZE.match(v):
            raise ValueError("must be a VM size name such as 'Standard_F4s_v2'")
        return v

    @field_validator("quota_family")
    @classmethod
    def _quota_family(cls, v: str) -> str:
        if v and not plausible_family(v):
            raise ValueError(
                "must be a quota family as Azure lists it in usage.list, letters, digits and "
                "'_' ending in 'Family' (e.g. 'standardFSv2Family'), or empty to take it from "
                "the VM size"
            )
        return v

    @field_validator("resource_id")
    @classmethod
    def _vmss_id(cls, v: str) -> str:
        if v and not _VMSS_ID.match(v):
            raise ValueError(
                "must be a scale set id /subscriptions/<guid>/resourceGroups/<rg>/providers/"
                "Microsoft.Compute/virtualMachineScaleSets/<name>"
            )
        return v

    @field_validator("max")
    @classmethod
    def _max_ge_min(cls, v: int, info: ValidationInfo) -> int:
        lo = info.data.get("min")
        if lo is not None and v < lo:
            raise ValueError(f"must be >= min ({lo})")
        return v

    @field_validator("policies")
    @classmethod
    def _policy_types(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, entry in enumerate(v):
            if not isinstance(entry.get("type"), str):
                raise ValueError(f"policies[{i}] needs a 'type' naming the policy")
        return v

    @property
    def subscription_id(self) -> str:
        m = _VMSS_ID.match(self.resource_id)
        return m.group("sub") if m else ""

    @property
    def kind_options(self) -> BaseModel | None:
        """The keys of ``[[pools]]`` that belong to the pool's kind (``PoolKind.Options``), as
        the loader validated them; ``None`` when its kind takes none or the pool was built
        without the loader. Only the kind reads them (``scaler.kinds.base.options_of``)."""
        return self._kind_options

    @property
    def resource_group(self) -> str:
        """The scale set's resource group (empty without ``resource_id``)."""
        m = _VMSS_ID.match(self.resource_id)
        return m.group("rg") if m else ""

    @property
    def calls_per_instance_set(self) -> bool:
        """Whether ``calls_per_instance`` was configured (a ``vm-set`` pool without it takes
        its nodes' ``max_hd_calls``)."""
        return "calls_per_instance" in self.model_fields_set

    @property
    def scale_set_name(self) -> str:
        m = _VMSS_ID.match(self.resource_id)
        return m.group("name") if m else ""

    @property
    def metric_resource_id(self) -> str:
        return self.metric.resource_id or self.resource_id

    def limits(self, default_location: str) -> PoolLimits:
        return PoolLimits(
            name=self.name,
            min=self.min,
            max=self.max,
            calls_per_instance=self.calls_per_instance,
            vcpus_per_instance=self.vcpus_per_instance,
            quota_family=self.quota_family,
            location=(
                f"{self._quota_subscription}/{self.location or default_location}"
                if self._quota_subscription
                else self.location or default_location
            ),
            priority=self.priority,
            boot_minutes=self.boot_minutes,
        )


class Config(_Strict):
    """The whole file."""

    daemon: DaemonConfig = DaemonConfig()
    """``[daemon]``: the loop, logs and state."""
    azure: AzureConfig = AzureConfig()
    """``[azure]``: where and as whom the daemon talks to Azure."""
    pexip: PexipConfig = PexipConfig()
    """``[pexip]``: the Management Node (needed by ``pexip-teams``, ``vm-set`` and the ``pexip``
    metric source)."""
    http: HttpConfig = HttpConfig()
    """``[http]``: the read-only health, metrics and status endpoint."""
    ha: HaConfig = HaConfig()
    """``[ha]``: leader election between replicas (only the leader writes)."""
    cost: CostConfig | None = None
    """``[cost]``: prices; without it, cost is shown in vCPU-hours only."""
    pool_defaults: dict[str, Any] = {}
    """``[pool_defaults]``: ``[[pools]]`` keys every pool takes unless it sets them (merged
    into the pools before they are validated: ``scaler.templates``)."""
    templates: dict[str, dict[str, Any]] = {}
    """``[templates.NAME]``: ``[[pools]]`` keys a pool with ``template = "NAME"`` takes unless
    it sets them (over ``[pool_defaults]``)."""
    pools: Annotated[list[PoolConfig], Field(min_length=1)]
    """``[[pools]]``: one table per pool the daemon sizes."""

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Config:
        problems: list[str] = []
        seen: dict[str, int] = {}
        scale_sets: dict[str, int] = {}
        context = info.context or {}
        kinds: KindTable = context.get("kinds", _NO_REGISTRY.format("kind"))
        sources: SourceTable = context.get("sources", _NO_REGISTRY.format("metric source"))
        sections: Mapping[int, dict[str, BaseModel]] = context.get("sections", {})
        options: Mapping[int, BaseModel | None] = context.get("options", {})
        for i, pool in enumerate(self.pools):
            pool.metric._sections = dict(sections.get(i, {}))
            pool._kind_options = options.get(i)
        published = published_resources(self, sources)
        for i, pool in enumerate(self.pools):
            if pool.name in seen:
                problems.append(
                    f"pools[{i}].name: duplicate of pools[{seen[pool.name]}].name, "
                    f"got {pool.name!r}"
                )
            seen.setdefault(pool.name, i)
            if pool.resource_id:
                # Two pools on one scale set would fight over its capacity.
                first = scale_sets.setdefault(pool.resource_id.lower(), i)
                if first != i:
                    problems.append(
                        f"pools[{i}].resource_id: same scale set as pools[{first}], "
                        f"got {pool.resource_id!r}"
                    )
            floor = pool.behavior.missing_data_floor
            if floor is not None and floor > pool.max:
                problems.append(
                    f"pools[{i}].behavior.missing_data_floor: above the pool's max "
                    f"({pool.max}), got {floor}"
                )
            if not (pool.location or self.azure.location):
                problems.append(f"pools[{i}].location: required when azure.location is empty")
            # a pool whose kind's own keys were refused (``None``) is not checked on them
            checked = i not in options or options[i] is not None
            problems.extend(_kind_problems(i, pool, self, kinds, sources, checked=checked))
            problems.extend(metric_problems(i, pool, self, kinds, sources, published))
            problems.extend(cost_problems(i, pool, self.cost))
            # A pool's scale set names its own subscription; azure.subscription_id is the
            # default (vm-set pools name none). Quota is per subscription and region.
            other = pool.subscription_id.lower() != (self.subscription_id or "").lower()
            pool._quota_subscription = (
                pool.subscription_id if pool.subscription_id and other else ""
            )
        ha = self.ha
        if ha.enabled and bool(ha.account_url) == bool(ha.connection_string):
            problems.append(
                "ha.account_url: exactly one of ha.account_url and ha.connection_string is "
                f"needed when ha.enabled, got {ha.account_url!r}"
            )
        if ha.enabled and ha.renew_every + ha.margin_seconds >= ha.lease_seconds:
            problems.append(
                f"ha.renew_seconds: renew + margin must be well inside lease_seconds "
                f"({ha.lease_seconds}), got {ha.renew_every}"
            )
        if self.azure.credential == "static-token":
            if self.azure.is_public_cloud:
                problems.append(
                    "azure.credential: static-token is accepted only with non-public "
                    "resource_manager_url and metrics_url, got 'static-token'"
                )
            elif not (info.context or {}).get("offline") and not os.environ.get(STATIC_TOKEN_ENV):
                problems.append(
                    f"azure.credential: static-token needs the environment variable "
                    f"{STATIC_TOKEN_ENV}, got 'static-token'"
                )
        if problems:
            raise ConfigError(problems)
        return self

    @property
    def subscription_id(self) -> str:
        return self.azure.subscription_id or next(
            (p.subscription_id for p in self.pools if p.subscription_id), ""
        )

    def location_of(self, pool: PoolConfig) -> str:
        return pool.location or self.azure.location

    def quota_scope_of(self, pool: PoolConfig) -> str:
        """Where the pool's vCPU quota lines live: quota is per subscription and region
        (https://learn.microsoft.com/azure/virtual-machines/quotas), so a bare region for the
        default subscription (``[azure] subscription_id``, else the first pool's) and
        ``<subscription>/<region>`` for a pool in another one. Equal to ``PoolLimits.location``;
        ``usage.list`` is read once per scope."""
        return pool.limits(self.azure.location).location

    def pool_limits(self) -> list[PoolLimits]:
        return [p.limits(self.azure.location) for p in self.pools]


_NO_REGISTRY = "no {} registry given (load the file with scaler.config.parse_config)"


def unknown_kind(at: str, name: str, kinds: Mapping[str, KindRules]) -> str:
    """The problem of a pool (key path ``at``) whose ``kind`` names no registered kind."""
    return f"{at}.kind: must be one of {', '.join(sorted(kinds))}, got {name!r}"


def _kind_problems(
    i: int,
    pool: PoolConfig,
    config: Config,
    kinds: KindTable,
    sources: SourceTable = "",
    *,
    checked: bool = True,
) -> list[str]:
    """What the pool's kind needs (``kinds``: the registry ``scaler.kinds.discover`` as the
    loader hands it over, or why it failed to load), plus what every kind shares, with the key
    path of what is missing or wrong; ``checked``: false when the kind's own keys were refused
    already (its checks would read their defaults)."""
    at = f"pools[{i}]"
    if isinstance(kinds, str):
        return [f"{at}.kind: {kinds}"]
    kind = kinds.get(pool.kind)
    if kind is None:
        return [unknown_kind(at, pool.kind, kinds)]
    out = list(kind.problems(at, pool, config)) if checked else []
    if not kind.node_metric and pool.metric.locations:
        out.append(
            f"{at}.metric.locations: only for kinds of Conferencing Nodes "
            f"({', '.join(sorted(k for k, v in kinds.items() if v.node_metric))}), "
            f"got {pool.metric.locations}"
        )
    source = sources.get(pool.metric.source) if isinstance(sources, Mapping) else None
    needs_pexip = kind.needs_pexip or (source is not None and source.needs_pexip)
    if needs_pexip and not config.pexip.url:
        out.append(f"pexip.url: required by pools[{i}] (kind {pool.kind!r}), got ''")
    return out


_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|(^|_)keys?($|_)|connection_?string|conn_?str"
    r"|(^|_)sas($|_)|signature|credentials?_value|private",
    re.IGNORECASE,
)
"""Key names whose values are never shown (``password``, ``api_key``, ``connection_string``…)."""

_SECRET_VALUE = re.compile(
    r"AccountKey=|SharedAccessKey|SharedAccessSignature|(^|[?&;])sig=|password=|pwd="
    r"|Bearer\s|-----BEGIN|eyJ[\w-]{8,}\.",
    re.IGNORECASE,
)
"""Values that look like a credential whatever their key (a connection string, a SAS, a JWT)."""

_SECRET_PAIR = re.compile(
    r"(AccountKey|SharedAccessKey|SharedAccessSignature|sig|password|pwd)=[^;&\s'\"]+",
    re.IGNORECASE,
)
_HIDDEN = "(hidden)"


def looks_secret(key: str) -> bool:
    """Whether a key's name says its value is a credential."""
    return bool(_SECRET_KEY.search(key))


def _redact(value: Any, key: str = "") -> Any:
    if key and looks_secret(key):
        return _HIDDEN
    if isinstance(value, str) and _SECRET_VALUE.search(value):
        return _HIDDEN
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def _show(value: Any, key: str = "") -> str:
    value = _redact(value, key)
    if value == _HIDDEN:
        return _HIDDEN
    if isinstance(value, str):
        value = show_url(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
