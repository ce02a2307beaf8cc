"""Pexip Infinity Management Node adapter: status reads, configuration writes, a metric source.

Translates only. Tastypie list answers (``{"meta": {"next": …}, "objects": […]}``) become frozen
records, ``httpx`` failures and bad answers become ``scaler.errors`` naming the endpoint (and the
node, when one node's record is incomplete):

* 401/403/404 and other 4xx, malformed JSON, a record missing a field → ``PermanentError``
* 429, 5xx, timeouts and lost connections → ``TransientError``

The client does not retry: a failed read makes the pool hold until the next tick.

Endpoints (DESIGN §1.1): ``status/v1/teamsnode/`` (Teams Connector instances, needs the Event
Hub), ``status/v1/worker_vm/`` (Conferencing Nodes), ``configuration/v1/teams_proxy/<id>/``
(``min_number_of_instances``) and ``configuration/v1/worker_vm/<id>/`` (``maintenance_mode``).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from scaler.config import Config, PexipConfig, PoolConfig
from scaler.core.types import MetricReading, MetricStatus
from scaler.errors import AdapterError, ConfigError, PermanentError, TransientError

STATUS = "/api/admin/status/v1"
CONFIGURATION = "/api/admin/configuration/v1"
_T = TypeVar("_T")

MAINTENANCE_REASON = "cvi-autoscaler: draining for scale-in"
"""``maintenance_mode_reason`` the daemon sets, so it recognises its own drains after a restart
and never lifts an operator's maintenance."""


@dataclass(frozen=True, slots=True)
class TeamsNode:
    """One Teams Connector instance as ``status/v1/teamsnode/`` reports it."""

    name: str
    call_count: int
    max_calls: int
    instance_status: str = ""
    state: str = ""
    scaleset_id: str = ""
    media_load: float | None = None


@dataclass(frozen=True, slots=True)
class WorkerVm:
    """One Conferencing Node as ``status/v1/worker_vm/`` reports it."""

    name: str
    system_location: str
    maintenance_mode: bool
    media_load: float
    """Percent of the node's media capacity in use."""
    max_hd_calls: float
    maintenance_mode_reason: str = ""
    boot_time: float | None = None
    last_contacted: float | None = None
    id: int | None = None

    @property
    def hd_calls(self) -> float:
        """Load in HD-call equivalents."""
        return self.media_load / 100.0 * self.max_hd_calls


@dataclass(frozen=True, slots=True)
class TeamsProxy:
    """A Teams Connector's configuration (``configuration/v1/teams_proxy/``)."""

    id: int
    name: str
    min_number_of_instances: int


@dataclass(frozen=True, slots=True)
class WorkerVmConfig:
    """A Conferencing Node's configuration (``configuration/v1/worker_vm/``)."""

    id: int
    name: str
    maintenance_mode: bool
    maintenance_mode_reason: str = ""


def load_password(cfg: PexipConfig, environ: Mapping[str, str] | None = None) -> str:
    """The Management Node password: first line of ``password_file``, else ``password_env``."""
    if cfg.password_file is not None:
        try:
            text = cfg.password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"pexip.password_file: cannot read ({exc.strerror}), got {str(cfg.password_file)!r}"
            ) from exc
        lines = text.splitlines()
        return lines[0].strip() if lines else ""
    env = os.environ if environ is None else environ
    password = env.get(cfg.password_env, "")
    if not password:
        raise ConfigError(
            f"pexip.password_env: the environment variable {cfg.password_env} is empty "
            "(or set pexip.password_file), got ''"
        )
    return password


class PexipClient:
    """HTTPS client of one Management Node; one ``httpx.Client`` for the process lifetime."""

    def __init__(
        self,
        cfg: PexipConfig,
        *,
        password: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not cfg.url:
            raise ConfigError("pexip.url: required, got ''")
        self._cfg = cfg
        # The system's trust store plus the extra CA (a Management Node often has a private CA).
        verify = ssl.create_default_context()
        if cfg.ca_bundle is not None:
            verify.load_verify_locations(cafile=str(cfg.ca_bundle))
        self._http = httpx.Client(
            base_url=cfg.url,
            auth=httpx.BasicAuth(
                cfg.username, password if password is not None else load_password(cfg)
            ),
            verify=verify,
            timeout=httpx.Timeout(cfg.timeout_seconds),
            headers={"Accept": "application/json"},
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    # -- reads --------------------------------------------------------------------------------

    def teams_nodes(self) -> list[TeamsNode]:
        out = []
        for obj in self._list(f"{STATUS}/teamsnode/"):
            name = _name(obj, "teamsnode")
            out.append(
                TeamsNode(
                    name=name,
                    call_count=_int(obj, "call_count", "teamsnode", name),
                    max_calls=_int(obj, "max_calls", "teamsnode", name),
                    instance_status=str(obj.get("instance_status") or ""),
                    state=str(obj.get("state") or ""),
                    scaleset_id=str(obj.get("scaleset_id") or ""),
                    media_load=_opt_float(obj.get("media_load")),
                )
            )
        return out

    def worker_vms(self) -> list[WorkerVm]:
        out = []
        for obj in self._list(f"{STATUS}/worker_vm/"):
            name = _name(obj, "worker_vm")
            out.append(
                WorkerVm(
                    name=name,
                    system_location=str(obj.get("system_location") or ""),
                    maintenance_mode=_bool(obj, "maintenance_mode", "worker_vm", name),
                    media_load=_float(obj, "media_load", "worker_vm", name),
                    max_hd_calls=_float(obj, "max_hd_calls", "worker_vm", name),
                    maintenance_mode_reason=str(obj.get("maintenance_mode_reason") or ""),
                    boot_time=_time(obj.get("boot_time")),
                    last_contacted=_time(obj.get("last_contacted")),
                    id=obj.get("id") if isinstance(obj.get("id"), int) else None,
                )
            )
        return out

    def teams_proxies(self) -> list[TeamsProxy]:
        out = []
        for obj in self._list(f"{CONFIGURATION}/teams_proxy/"):
            name = _name(obj, "teams_proxy")
            out.append(
                TeamsProxy(
                    id=_int(obj, "id", "teams_proxy", name),
                    name=name,
                    min_number_of_instances=_int(
                        obj, "min_number_of_instances", "teams_proxy", name
                    ),
                )
            )
        return out

    def worker_vm_configs(self) -> list[WorkerVmConfig]:
        out = []
        for obj in self._list(f"{CONFIGURATION}/worker_vm/"):
            name = _name(obj, "worker_vm configuration")
            out.append(
                WorkerVmConfig(
                    id=_int(obj, "id", "worker_vm configuration", name),
                    name=name,
                    maintenance_mode=_bool(
                        obj, "maintenance_mode", "worker_vm configuration", name
                    ),
                    maintenance_mode_reason=str(obj.get("maintenance_mode_reason") or ""),
                )
            )
        return out

    def teams_proxy(self, ref: str) -> TeamsProxy:
        """A Teams Connector by id (digits) or name."""
        for proxy in self.teams_proxies():
            if (ref.isdigit() and proxy.id == int(ref)) or proxy.name == ref:
                return proxy
        raise PermanentError(
            f"pexip {CONFIGURATION}/teams_proxy/: no Teams Connector {ref!r}",
            operation="pexip.teams_proxy",
        )

    # -- writes -------------------------------------------------------------------------------

    def set_min_instances(self, proxy_id: int, count: int) -> None:
        self._patch(
            f"{CONFIGURATION}/teams_proxy/{proxy_id}/", {"min_number_of_instances": int(count)}
        )

    def set_maintenance(self, vm_id: int, on: bool, reason: str = MAINTENANCE_REASON) -> None:
        self._patch(
            f"{CONFIGURATION}/worker_vm/{vm_id}/",
            {"maintenance_mode": on, "maintenance_mode_reason": reason if on else ""},
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _list(self, path: str) -> list[dict[str, Any]]:
        """Every object of a Tastypie list, following ``meta.next`` page by page."""
        objects: list[dict[str, Any]] = []
        url: str | None = path
        params: dict[str, Any] | None = {"limit": self._cfg.page_size, "offset": 0}
        seen: set[str] = set()
        while url:
            if url in seen:
                raise PermanentError(f"pexip {path}: meta.next loops back to {url}")
            seen.add(url)
            body = self._request("GET", url, path, params=params)
            params = None  # meta.next carries its own query
            if not isinstance(body, dict) or not isinstance(body.get("objects"), list):
                raise PermanentError(
                    f"pexip {path}: answer is not a list of objects", operation=f"GET {path}"
                )
            for obj in body["objects"]:
                if not isinstance(obj, dict):
                    raise PermanentError(
                        f"pexip {path}: an object is not a record", operation=f"GET {path}"
                    )
                objects.append(obj)
            meta = body.get("meta")
            nxt = meta.get("next") if isinstance(meta, dict) else None
            url = str(nxt) if nxt else None
        return objects

    def _patch(self, path: str, body: Mapping[str, Any]) -> None:
        self._request("PATCH", path, path, json_body=body)

    def _request(
        self,
        method: str,
        url: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> Any:
        operation = f"{method} {endpoint}"
        where = f"pexip {self._cfg.url}{endpoint}"
        try:
            response = self._http.request(method, url, params=params, json=json_body)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{where}: timed out ({exc})", operation=operation) from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{where}: {exc}", operation=operation) from exc
        status = response.status_code
        if status >= 400:
            snippet = response.text.strip().replace("\n", " ")[:200]
            text = f"{where}: HTTP {status}{' ' + snippet if snippet else ''}"
            cls: type[AdapterError] = (
                TransientError if status == 429 or status >= 500 else PermanentError
            )
            raise cls(text, operation=operation, status=status, code=str(status))
        if method != "GET" or not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PermanentError(
                f"{where}: malformed JSON ({exc})", operation=operation, status=status
            ) from exc


def _name(obj: Mapping[str, Any], kind: str) -> str:
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        ident = obj.get("id", obj.get("resource_uri", "?"))
        raise PermanentError(f"pexip {kind} {ident!s}: missing field 'name'")
    return name


def _missing(kind: str, name: str, key: str, value: Any) -> PermanentError:
    what = "missing field" if value is None else f"bad field ({value!r})"
    return PermanentError(f"pexip {kind} {name!r}: {what} {key!r}", operation=kind)


def _int(obj: Mapping[str, Any], key: str, kind: str, name: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _missing(kind, name, key, value)
    return int(value)


def _float(obj: Mapping[str, Any], key: str, kind: str, name: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _missing(kind, name, key, value)
    return float(value)


def _bool(obj: Mapping[str, Any], key: str, kind: str, name: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise _missing(kind, name, key, value)
    return value


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _time(value: Any) -> float | None:
    """Pexip's timestamps are ISO-8601 in UTC, usually without an offset."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def scale_set_matches(node: TeamsNode, pool: PoolConfig) -> bool:
    """Whether a Teams Connector instance belongs to a pool's scale set.

    ``scaleset_id`` may be the scale set's name or resource id; a pool without a scale set id,
    or nodes without ``scaleset_id``, match everything (one Teams Connector).
    """
    if not pool.resource_id or not node.scaleset_id:
        return True
    sid = node.scaleset_id.rstrip("/").lower()
    return sid in (pool.resource_id.lower(), pool.scale_set_name.lower()) or sid.endswith(
        "/" + pool.scale_set_name.lower()
    )


Members = Callable[[PoolConfig], Sequence[str] | None]
"""The VM names of a ``vm-set`` pool as last observed (``None``: not yet known)."""


class PexipMetrics:
    """``MetricsSource`` over the status API: calls now, per pool and per instance.

    * ``vmss`` / ``pexip-teams`` pools: Σ ``call_count`` of the pool's Teams Connector instances,
      with each instance's count (for drain-aware scale-in and publishing).
    * ``vm-set`` pools: HD-call load of the pool's nodes; with ``metric.locations``, the load of
      those system locations beyond ``base_fill`` of the other nodes' capacity there.

    The status API is read at most once per source per ``read``; a failure makes every pool
    that needed it ``MISSING`` with the error (naming the endpoint or node) as detail.
    """

    def __init__(self, config: Config, client: PexipClient, *, members: Members) -> None:
        self._config = config
        self._client = client
        self._members = members

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        out: dict[str, MetricReading] = {}
        teams: list[TeamsNode] | AdapterError | None = None
        workers: list[WorkerVm] | AdapterError | None = None
        for pool in pools:
            if pool.kind == "vm-set":
                if workers is None:
                    workers = _attempt(self._client.worker_vms)
                if isinstance(workers, AdapterError):
                    out[pool.name] = MetricReading.missing(str(workers))
                    continue
                out[pool.name] = self._node_load(pool, workers, now)
            else:
                if teams is None:
                    teams = _attempt(self._client.teams_nodes)
                if isinstance(teams, AdapterError):
                    out[pool.name] = MetricReading.missing(str(teams))
                    continue
                mine = [n for n in teams if scale_set_matches(n, pool)]
                out[pool.name] = MetricReading(
                    status=MetricStatus.OK,
                    calls=float(sum(n.call_count for n in mine)),
                    as_of=now,
                    by_instance=tuple((n.name, float(n.call_count)) for n in mine),
                )
        return out

    def _node_load(
        self, pool: PoolConfig, workers: Sequence[WorkerVm], now: float
    ) -> MetricReading:
        members = self._members(pool)
        if members is None:
            return MetricReading.missing("the pool's VMs have not been listed yet")
        names = {m.lower() for m in members}
        mine = [w for w in workers if w.name.lower() in names]
        load = sum(w.hd_calls for w in mine)
        locations = {loc.lower() for loc in pool.metric.locations}
        if locations:
            here = [w for w in workers if w.system_location.lower() in locations]
            others = [w for w in here if w.name.lower() not in names]
            total = sum(w.hd_calls for w in here)
            load = max(0.0, total - pool.metric.base_fill * sum(w.max_hd_calls for w in others))
        return MetricReading(
            status=MetricStatus.OK,
            calls=load,
            as_of=now,
            by_instance=tuple((w.name, w.hd_calls) for w in mine),
        )


def _attempt(read: Callable[[], _T]) -> _T | AdapterError:
    try:
        return read()
    except AdapterError as err:
        return err
