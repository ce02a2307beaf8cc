"""Competing scalers: Azure autoscale settings that target the pools' scale sets.

An enabled ``Microsoft.Insights/autoscalesettings`` resource whose ``targetResourceUri`` is a
pool's scale set changes ``sku.capacity`` on its own rules, so it and the daemon would undo each
other's work. Azure autoscale "is a service that allows you to automatically add and remove
resources" of the target named by the setting's ``targetResourceUri``
(https://learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-understanding-settings);
a setting with ``enabled: false`` changes nothing.

The settings are read at start-up and on every reload (through the pool router's preflight),
with ``AutoscaleSettings_ListByResourceGroup`` (``GET
/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Insights/autoscalesettings``,
RBAC ``Microsoft.Insights/AutoscaleSettings/Read``) as plain JSON through the guarded pager
(``ArmPager``: the bearer token follows no ``nextLink`` to another host), once per resource
group per check of all the pools (a pass): 1,000 pools in ten resource groups cost ten reads.
A failed read is an answer for the rest of the pass (the group's other pools are not read
again), and a refusal
(4xx: the role lacks the read, the group is gone) stays the answer for
``REFUSED_RETRY_SECONDS``, across reloads, before it is asked again. A
setting lives in any resource group, but the portal and ``az monitor autoscale create`` put it
beside its target by default, so the pool's own resource group is the one read.

An enabled setting on a pool's scale set is an error (``run``/``once`` exit 2 naming the
setting and the pool; a reload is rejected) unless ``--allow-competing`` makes it a warning.
A read that fails is a warning: nothing is known either way, and refusing to start because
Azure Monitor's control plane hiccups would be worse than the fight it guards against.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.rest import HttpRequest, HttpResponse
from azure.mgmt.monitor import MonitorManagementClient

from scaler.adapters.azure import CallObserver, _Calls, _client_kwargs, with_transport
from scaler.adapters.azure_http import ArmPager, segment
from scaler.config_model import Config, PoolConfig
from scaler.errors import AdapterError, PermanentError
from scaler.ports import Preflight

API_VERSION = "2022-10-01"
"""The api-version ``azure-mgmt-monitor`` 7 sends for ``AutoscaleSettings_ListByResourceGroup``."""

REFUSED_RETRY_SECONDS = 600.0
"""How long a resource group's refused list (4xx) stands as its answer before it is read again.
A pass (start-up or a reload) checks each pool once, so everything else is dropped as soon as a
pool is checked again: a reload reads the settings afresh."""


@dataclass(frozen=True)
class CompetingSetting:
    """An Azure autoscale setting that targets a pool's scale set."""

    pool: str
    name: str
    setting_id: str
    enabled: bool
    target: str


class AutoscaleSettings:
    """Reads the autoscale settings beside each pool's scale set; ``check`` judges one pool.

    ``allow_competing`` turns the refusal of an enabled setting into a warning."""

    def __init__(
        self,
        config: Config,
        credential: TokenCredential,
        *,
        observer: CallObserver | None = None,
        allow_competing: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._credential = credential
        self._observer = observer
        self.allow_competing = allow_competing
        self._calls = _Calls(observer)
        self._clients: dict[str, MonitorManagementClient] = {}
        self._cache: dict[tuple[str, str], list[dict[str, Any]] | AdapterError] = {}
        """This pass's answer per (subscription, resource group): the settings or the error."""
        self._refused: dict[tuple[str, str], tuple[AdapterError, float]] = {}
        """Refusals kept across passes, with when (monotonic) they are asked again."""
        azure = config.azure
        self._pages = ArmPager(
            base_url=azure.resource_manager_url,
            max_pages=azure.max_pages,
            deadline_seconds=azure.read_deadline_seconds,
        )
        self._checked: set[str] = set()
        self._lock = threading.Lock()
        self._monotonic = monotonic

    def _client(self, subscription_id: str) -> MonitorManagementClient:
        client = self._clients.get(subscription_id)
        if client is None:
            azure = self._config.azure
            client = MonitorManagementClient(
                self._credential,
                subscription_id,
                base_url=azure.resource_manager_url,
                credential_scopes=[azure.arm_audience().rstrip("/") + "/.default"],
                **with_transport(_client_kwargs(azure)),
            )
            self._clients[subscription_id] = client
        return client

    def _settings(self, subscription_id: str, resource_group: str) -> list[dict[str, Any]]:
        """The resource group's settings as plain JSON, read through the guarded pager."""
        key = (subscription_id.lower(), resource_group.lower())
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                refused = self._refused.get(key)
                if refused is not None and self._monotonic() < refused[1]:
                    cached = refused[0]
                else:
                    cached = self._read(subscription_id, resource_group, key)
                self._cache[key] = cached
        if isinstance(cached, AdapterError):
            raise type(cached)(
                str(cached), operation=cached.operation, code=cached.code, status=cached.status
            )
        return cached

    def _read(
        self, subscription_id: str, resource_group: str, key: tuple[str, str]
    ) -> list[dict[str, Any]] | AdapterError:
        client = self._client(subscription_id)
        path = (
            f"/subscriptions/{segment(subscription_id)}/resourcegroups/"
            f"{segment(resource_group)}/providers/Microsoft.Insights/autoscalesettings"
        )
        try:
            with self._calls.call("autoscale_settings.list"):
                return self._pages.items(
                    _Sender(client), "autoscale_settings.list", path, {"api-version": API_VERSION}
                )
        except AdapterError as err:
            if isinstance(err, PermanentError):
                self._refused[key] = (err, self._monotonic() + REFUSED_RETRY_SECONDS)
            return err

    def competing(self, pool: PoolConfig) -> list[CompetingSetting]:
        """The settings (enabled or not) whose target is the pool's scale set; raises
        ``AdapterError`` when they cannot be read."""
        if not pool.scale_set_name:
            return []  # a vm-set pool: Azure autoscale targets scale sets, not loose VMs
        subscription = pool.subscription_id or self._config.azure.subscription_id
        target = pool.resource_id.rstrip("/").lower()
        out: list[CompetingSetting] = []
        for setting in self._settings(subscription, pool.resource_group):
            props = setting.get("properties")
            props = props if isinstance(props, dict) else {}
            raw = props.get("targetResourceUri")
            uri = raw.rstrip("/") if isinstance(raw, str) else ""
            if uri.lower() != target:
                continue
            name, sid = setting.get("name"), setting.get("id")
            enabled = props.get("enabled", True)
            out.append(
                CompetingSetting(
                    pool=pool.name,
                    name=_text(name) or _text(sid) or "?",
                    setting_id=_text(sid),
                    # anything but an explicit false may resize the scale set: enabled
                    enabled=enabled is not False,
                    target=uri,
                )
            )
        return out

    def check(self, pool: PoolConfig) -> Preflight:
        """An enabled setting on the pool's scale set refuses the pool (a warning with
        ``allow_competing``); a disabled one and a failed read are warnings."""
        with self._lock:
            if pool.name in self._checked:  # a new pass: read again
                self._checked.clear()
                self._cache.clear()
            self._checked.add(pool.name)
        try:
            found = self.competing(pool)
        except AdapterError as err:
            return Preflight(
                warnings=(f"Azure autoscale settings of {pool.resource_group} not read: {err}",)
            )
        errors: list[str] = []
        warnings: list[str] = []
        for s in found:
            if not s.enabled:
                warnings.append(
                    f"Azure autoscale setting {s.name!r} targets this scale set but is disabled; "
                    "enabling it would fight this daemon"
                )
                continue
            text = (
                f"pool {pool.name}: the enabled Azure autoscale setting {s.name!r} "
                f"({s.setting_id}) also sizes scale set {pool.scale_set_name}"
            )
            if self.allow_competing:
                warnings.append(f"{text}; allowed by --allow-competing, both will resize it")
            else:
                errors.append(
                    f"{text}; disable it (az monitor autoscale update --enabled false) or "
                    "start with --allow-competing"
                )
        return Preflight(errors=tuple(errors), warnings=tuple(warnings))

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _text(value: object) -> str:
    """A name or id from the answer, shown short and printable (``""`` when not a string)."""
    if not isinstance(value, str):
        return ""
    return "".join(c for c in value if c.isprintable())[:200]


class _Sender:
    """``MonitorManagementClient`` as the pager's ``SendsRequests``: this generation of the
    client names its "run the request through the client's chained policies" method
    ``_send_request`` (the compute client's is ``send_request``)."""

    def __init__(self, client: MonitorManagementClient) -> None:
        self._client = client

    def send_request(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        return self._client._send_request(request, **kwargs)
