"""Pexip Infinity Management Node adapter: status reads, configuration writes, a metric source.

Translates only. Tastypie list answers (``{"meta": {"next": …}, "objects": […]}``) become frozen
records, ``httpx`` failures and bad answers become ``scaler.errors`` naming the endpoint:

* 401/403/404 and other 4xx, malformed JSON, a ``meta.next`` pointing away from the Management
  Node, more than ``max_pages`` pages → ``PermanentError``
* 429, 5xx, timeouts, lost connections, a list read past ``read_deadline_seconds`` →
  ``TransientError``

**One bad record never fails a read.** A record with a missing, null (where Pexip does not
document it as nullable), negative, non-finite, fractional (for counts), boolean or string value
is kept with ``problem`` naming the field and value; every consumer treats such a record as
unknown. Nullable fields (``max_calls``, ``instance_status``, ``state``, ``eventhub_id`` of a
teamsnode — Pexip's own client models, github.com/pexip/go-infinity-sdk ``status/models.go``)
read as ``None``/``""`` and never make a record invalid.

The client retries only a request that a kept-alive connection lost before any answer (sent
once more on a fresh connection, ``_stale_connection``); any other failed read makes the pool
hold until the next tick.

Endpoints (https://docs.pexip.com/api_manage/api_status.htm and the configuration API):
``status/v1/teamsnode/`` (Teams Connector instances), ``status/v1/worker_vm/`` (Conferencing
Nodes), ``status/v1/participant/`` (calls, with the node each uses), ``status/v1/licensing/``,
``configuration/v1/teams_proxy/`` (``min_number_of_instances``, ``notifications_enabled``),
``configuration/v1/scheduled_scaling/`` and ``configuration/v1/worker_vm/`` (``maintenance_mode``,
``address``). Each resource describes its fields at ``<resource>/schema/`` (Tastypie).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from scaler.config_model import Config, PexipConfig, PoolConfig
from scaler.core.types import MetricReading, MetricStatus
from scaler.errors import AdapterError, ConfigError, PermanentError, TransientError
from scaler.logs import get_logger
from scaler.redact import show_url, summarise_body

STATUS = "/api/admin/status/v1"
CONFIGURATION = "/api/admin/configuration/v1"
HISTORY = "/api/admin/history/v1"
_T = TypeVar("_T")

MAINTENANCE_REASON = "cvi-autoscaler: draining for scale-in"
"""``maintenance_mode_reason`` the daemon sets, so it recognises its own drains after a restart
and never lifts an operator's maintenance."""

INSTANCE_STATUSES = ("Active", "Waiting for termination", "Terminating", "Maintenance", "Failure")
"""``instance_status`` values Pexip documents; present only with the Azure Event Hub
(https://docs.pexip.com/admin/teams_status.htm)."""

DRAINING_STATUSES = frozenset({"Waiting for termination", "Terminating"})
"""Instances Pexip is removing: they may still carry calls but take no new ones, so they are
load, never serving capacity (https://docs.pexip.com/admin/teams_status.htm)."""

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _late(path: str, budget: float, pages: int) -> TransientError:
    """A list read that ran out of its deadline (``pexip.read_deadline_seconds``)."""
    return TransientError(
        f"pexip {path}: not read within {budget:g} s "
        f"(pexip.read_deadline_seconds) after {pages} pages",
        operation=f"GET {path}",
    )


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TeamsNode:
    """One Teams Connector instance as ``status/v1/teamsnode/`` reports it.

    Without the Azure Event Hub Pexip lists an instance only while a Teams call is in progress
    and gives no ``instance_status`` (https://docs.pexip.com/admin/teams_status.htm).
    """

    name: str
    call_count: int | None
    """Teams calls on the instance now; ``None`` only when ``problem`` says why."""
    max_calls: int | None
    """Calls the instance can take; nullable in Pexip's model (``None``: not reported)."""
    instance_status: str = ""
    """One of ``INSTANCE_STATUSES``; ``""`` when Pexip gives none (Event Hub off)."""
    state: str = ""
    scaleset_id: str = ""
    """The scale set Pexip says the instance belongs to, verbatim ("" when absent)."""
    media_load: float | None = None
    eventhub_id: str = ""
    """The Event Hub the instance reports through ("" when absent or null)."""
    problem: str = ""
    """Why the record is unusable ("" when valid), e.g. ``invalid call_count -5``."""

    @property
    def valid(self) -> bool:
        return not self.problem

    @property
    def draining(self) -> bool:
        """Pexip is removing the instance: it is load, not capacity."""
        return self.instance_status in DRAINING_STATUSES


@dataclass(frozen=True, slots=True)
class WorkerVm:
    """One Conferencing Node as ``status/v1/worker_vm/`` reports it.

    A node in maintenance takes no new calls, keeps its calls, and **reports a media load of
    100 %** "to indicate that there is no current capacity available"
    (https://docs.pexip.com/admin/maintenance_mode.htm): its ``media_load`` is neither load nor
    capacity, and whether it is empty is read from ``calls``, never from ``media_load``.
    """

    name: str
    system_location: str
    maintenance_mode: bool
    media_load: float
    """Percent of the node's media capacity in use (0 when ``problem`` is set)."""
    max_hd_calls: float
    maintenance_mode_reason: str = ""
    boot_time: float | None = None
    last_contacted: float | None = None
    id: int | None = None
    configuration_id: int | None = None
    media_tokens_used: int | None = None
    """Media tokens in use where the version reports them (``None``: not reported)."""
    max_media_tokens: int | None = None
    calls: float | None = None
    """Calls using the node now (participants whose media, signalling or proxying is on it,
    from ``status/v1/participant/``); ``None``: unknown — treat as busy."""
    problem: str = ""
    """Why the record is unusable ("" when valid)."""

    @property
    def valid(self) -> bool:
        return not self.problem

    @property
    def hd_calls(self) -> float:
        """Load in HD-call equivalents from ``media_load`` (a node in maintenance reports its
        full capacity; an invalid record reads as ``inf``, never as empty)."""
        if self.problem:
            return math.inf
        return self.media_load / 100.0 * self.max_hd_calls

    @property
    def serving_hd_calls(self) -> float:
        """HD load that counts for a location: 0 for a node in maintenance (its 100 % is
        neither load nor capacity), ``inf`` for an invalid record."""
        if self.problem:
            return math.inf
        return 0.0 if self.maintenance_mode else self.hd_calls

    @property
    def serving_capacity_hd(self) -> float:
        """HD capacity that counts for a location: 0 for a node in maintenance or invalid."""
        if self.problem or self.maintenance_mode:
            return 0.0
        return self.max_hd_calls

    @property
    def empty(self) -> bool:
        """No call uses the node (known from ``calls``; never from ``media_load``)."""
        return self.valid and self.calls == 0


@dataclass(frozen=True, slots=True)
class TeamsProxy:
    """A Teams Connector's configuration (``configuration/v1/teams_proxy/``)."""

    id: int
    name: str
    min_number_of_instances: int
    notifications_enabled: bool | None = None
    """Whether the Azure Event Hub is on (``None``: not reported). Without it Pexip ignores
    ``min_number_of_instances`` and lists instances only while they carry a Teams call
    (https://docs.pexip.com/admin/teams_scaling.htm, teams_status.htm)."""
    eventhub_id: str = ""


@dataclass(frozen=True, slots=True)
class WorkerVmConfig:
    """A Conferencing Node's configuration (``configuration/v1/worker_vm/``)."""

    id: int
    name: str
    maintenance_mode: bool
    maintenance_mode_reason: str = ""
    address: str = ""
    cloud_bursting: bool | None = None
    """Whether the node is an overflow node Pexip's dynamic bursting starts and stops
    (go-infinity-sdk ``config/worker_vm_model.go`` ``cloud_bursting``); ``None``: not reported."""
    system_location: str = ""
    """The node's system location as the configuration gives it (a related resource URI)."""


@dataclass(frozen=True, slots=True)
class Bursting:
    """Pexip's dynamic bursting settings (``configuration/v1/global/1/``; go-infinity-sdk
    ``config/global_configuration_model.go``). With ``bursting_enabled`` "everything is then
    controlled automatically by the Management Node": overflow nodes are started when a
    location's free capacity falls to ``bursting_threshold`` and stopped again
    (https://docs.pexip.com/admin/bursting.htm)."""

    enabled: bool | None
    """``bursting_enabled``; ``None``: not reported."""
    threshold: int | None = None
    min_lifetime: int | None = None


@dataclass(frozen=True, slots=True)
class ScheduledScaling:
    """A scheduled scaling policy (``configuration/v1/scheduled_scaling/``).

    With the Event Hub on, Pexip adds ``instances_to_add`` Teams Connector instances on top of
    ``min_number_of_instances`` from ``minutes_in_advance`` before ``time_from`` until
    ``time_to`` (local time in ``local_timezone``) on the days flagged
    (https://docs.pexip.com/admin/teams_scaling.htm; field names from Pexip's own client,
    go-infinity-sdk ``config/scheduled_scaling_model.go``).
    """

    id: int | None
    policy_name: str
    enabled: bool
    instances_to_add: int
    minutes_in_advance: int
    local_timezone: str
    time_from: str
    time_to: str
    days: tuple[str, ...]
    """Day flags that are on, as ``mon`` … ``sun``."""
    policy_type: str = ""
    resource_identifier: str = ""
    """What the policy applies to, verbatim (Pexip does not document its form)."""
    start_date: str = ""
    problem: str = ""

    def active_at(self, now: float) -> bool | None:
        """Whether the policy adds its instances at ``now`` (epoch seconds); ``None`` when the
        record cannot be evaluated (``problem``, unknown time zone or times)."""
        if self.problem:
            return None
        if not self.enabled:
            return False
        try:
            zone = ZoneInfo(self.local_timezone)
            start = _clock_time(self.time_from)
            end = _clock_time(self.time_to)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        local = datetime.fromtimestamp(now, UTC).astimezone(zone)
        lead = timedelta(minutes=self.minutes_in_advance)
        for day_offset in (0, 1):  # a window that began (with its lead) on the next day
            day = local.date() + timedelta(days=day_offset)
            if _DAYS[day.weekday()] not in self.days:
                continue
            if self.start_date and day < _date_or_min(self.start_date):
                continue
            begin = datetime.combine(day, start, zone) - lead
            finish = datetime.combine(day, end, zone)
            if finish <= begin + lead:  # spans midnight
                finish += timedelta(days=1)
            if begin <= local < finish:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Licensing:
    """Licences (``status/v1/licensing/``), field names from Pexip's client (go-infinity-sdk
    ``status/models.go`` ``Licensing``).

    The Teams licence (``teams_*``) counts Microsoft **tenants**, not calls: "The teams license
    controls how many Azure tenants can be configured; there is no limit to the number of Teams
    Connectors you can install or the number of instances within each Teams Connector"
    (https://docs.pexip.com/admin/teams_configuration.htm). So no instance count is ever derived
    from it. Each gateway call into a Teams meeting needs an ordinary call licence (same page:
    "appropriate call licenses are also required for each gateway call"): ``port_*``.
    """

    teams_count: int | None
    """Teams tenant licences in use (``None``: not reported or invalid)."""
    teams_total: int | None
    """Teams tenant licences installed (``None``: not reported or invalid)."""
    port_count: int | None = None
    """Call licences in use now (``None``: not reported or invalid)."""
    port_total: int | None = None
    """Call licences installed (``None``: not reported or invalid)."""
    problem: str = ""

    @property
    def free_calls(self) -> int | None:
        """Call licences free now (``port_total - port_count``); ``None`` when unknown."""
        if self.port_count is None or self.port_total is None:
            return None
        return max(0, self.port_total - self.port_count)


@dataclass(frozen=True, slots=True)
class NodeCalls:
    """Calls per Conferencing Node from ``status/v1/participant/``.

    A participant counts on every node it uses: ``media_node``, ``signalling_node`` and
    ``proxy_node`` (addresses, as Pexip's client models and examples give them), joined to the
    node by its configured ``address`` (or name). ``unknown`` names participants on a node the
    Management Node does not list: then no node's count can be trusted.
    """

    by_name: Mapping[str, int]
    """Lower-case node name → participants using it (nodes with none are absent)."""
    unknown: str = ""


@dataclass(frozen=True, slots=True)
class SchemaField:
    """One field of a resource's Tastypie schema (``<resource>/schema/``)."""

    name: str
    type: str
    nullable: bool


@dataclass(frozen=True, slots=True)
class HistoryCall:
    """One completed participant (call leg) of Pexip's call history. ``start``/``end`` in
    seconds since the epoch; ``problem`` names what makes the record unusable.

    Pexip's client model of a history participant (go-infinity-sdk ``history/models.go``
    ``Participant``) has no ``protocol``: it is ``""`` unless a version records one. The VTC
    leg of a Teams meeting is a participant "directly connected to an externally-hosted
    conference, such as a Microsoft Teams … meeting"
    (https://docs.pexip.com/admin/participant_history.htm)."""

    id: str
    start: float | None
    end: float | None
    protocol: str
    call_direction: str
    conference_name: str
    problem: str = ""


@dataclass(frozen=True, slots=True)
class HistoryBackplane:
    """One completed backplane of Pexip's history (``history/v1/backplane/``): a conference's
    link to another node or to an externally hosted meeting. Fields from go-infinity-sdk
    ``history/models.go`` ``Backplane``; Pexip's client's own tests show the link into a Teams
    meeting as ``type`` ``external-backplane`` with ``protocol`` ``TEAMS``."""

    id: str
    start: float | None
    end: float | None
    conference_name: str
    protocol: str
    type: str
    problem: str = ""


@dataclass(frozen=True, slots=True)
class ParticipantHistory:
    calls: tuple[HistoryCall, ...]
    retained_from: float | None
    """Start of the oldest participant Pexip still keeps (``None``: the history is empty)."""


@dataclass(frozen=True, slots=True)
class BackplaneHistory:
    backplanes: tuple[HistoryBackplane, ...]
    retained_from: float | None
    """Start of the oldest backplane Pexip still keeps (``None``: none is kept)."""


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
        # The name is shown only when it looks like one (upper case, digits, _): a
        # password written into password_env by mistake is not echoed.
        name = cfg.password_env
        shown = name if _CONVENTIONAL_NAME.fullmatch(name) else "(a name not shown)"
        raise ConfigError(
            f"pexip.password_env: the environment variable {shown} is empty "
            "(or set pexip.password_file), got ''"
        )
    return password


_CONVENTIONAL_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
"""An environment variable's name as people write them: upper case, digits and ``_``."""


def trust_store(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system's trust store plus the extra CA (a Management Node often has a private CA).

    Loading the system store costs tens of milliseconds of CPU, so one context per version of
    the bundle file (its path, modification time and size) is shared by the process's clients: a
    reload that keeps the file reuses it, one that replaces the file reads it again. A context
    is only read once built (``httpx`` wraps sockets with it), so sharing it is safe."""
    if ca_bundle is None:
        return _trust(None, None)
    st = ca_bundle.stat()
    return _trust(str(ca_bundle), (st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=8)
def _trust(ca_bundle: str | None, _version: tuple[int, int] | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=ca_bundle)
    return context


class PexipClient:
    """HTTPS client of one Management Node; one ``httpx.Client`` for the process lifetime."""

    def __init__(
        self,
        cfg: PexipConfig,
        *,
        password: str | None = None,
        transport: httpx.BaseTransport | None = None,
        observer: Callable[[str, str, float], None] | None = None,
    ) -> None:
        """``observer(operation, outcome, seconds)`` hears of every request and every answer
        that cannot be used (outcome ``ok``, ``transient`` or ``error``), as the Azure
        adapters' ``CallObserver`` does, so both services' failures are counted alike."""
        if not cfg.url:
            raise ConfigError("pexip.url: required, got ''")
        self._cfg = cfg
        self._observer = observer
        self._warned: dict[str, float] = {}
        base = urlsplit(cfg.url)
        self._origin = (base.scheme.lower(), (base.hostname or "").lower(), _port(base))
        self._http = httpx.Client(
            base_url=cfg.url,
            auth=httpx.BasicAuth(
                cfg.username, password if password is not None else load_password(cfg)
            ),
            verify=trust_store(cfg.ca_bundle),
            timeout=httpx.Timeout(cfg.timeout_seconds),
            headers={"Accept": "application/json"},
            transport=transport,
            follow_redirects=False,
        )

    def warn_once(self, event: str, **fields: Any) -> None:
        """A warning for a read that only refines decisions (calls per node, licences) and
        failed: logged at most once a minute per event, as several pools share one read."""
        now = time.monotonic()
        if now - self._warned.get(event, -math.inf) < 60.0:
            return
        self._warned[event] = now
        get_logger().warning(event, url=show_url(self._cfg.url), **fields)

    def close(self) -> None:
        self._http.close()

    # -- reads --------------------------------------------------------------------------------

    def teams_nodes(self) -> list[TeamsNode]:
        """Every listed Teams Connector instance; an invalid record is kept with ``problem``."""
        return [_teams_node(obj) for obj in self._list(f"{STATUS}/teamsnode/")]

    def worker_vms(self, *, with_calls: bool = True) -> list[WorkerVm]:
        """Every Conferencing Node; with ``with_calls`` also each node's ``calls`` (from
        :meth:`node_calls`; ``None`` for every node when that read fails)."""
        workers = [_worker_vm(obj) for obj in self._list(f"{STATUS}/worker_vm/")]
        if not with_calls:
            return workers
        try:
            calls = self.node_calls()
        except AdapterError as err:
            # the calls on each node stay unknown (busy): no node is stopped on this read
            self.warn_once("pexip.node_calls_unknown", error=str(err))
            return workers
        if calls.unknown:
            return workers
        return [
            replace(w, calls=float(calls.by_name.get(w.name.lower(), 0))) if w.valid else w
            for w in workers
        ]

    def node_calls(self) -> NodeCalls:
        """Participants per Conferencing Node (see ``NodeCalls``)."""
        nodes = self.worker_vm_configs()
        by_key: dict[str, str] = {}
        for node in nodes:
            by_key[node.name.lower()] = node.name.lower()
            if node.address:
                by_key[node.address.lower()] = node.name.lower()
        counts: dict[str, int] = {}
        strays: set[str] = set()
        for obj in self._list(f"{STATUS}/participant/"):
            used: set[str] = set()
            placed = False
            for key in ("media_node", "signalling_node", "proxy_node"):
                value = obj.get(key)
                if not isinstance(value, str) or not value:
                    continue
                placed = True
                name = by_key.get(value.lower())
                if name is None:
                    strays.add(value)
                else:
                    used.add(name)
            if not placed:
                # a call that names no node could be on any of them: none reads as empty
                strays.add(f"participant {obj.get('id', '?')} names no node")
            for name in used:
                counts[name] = counts.get(name, 0) + 1
        unknown = ""
        if strays:
            unknown = "participants on nodes the Management Node does not list: " + ", ".join(
                sorted(strays)
            )
        return NodeCalls(by_name=counts, unknown=unknown)

    def teams_proxies(self) -> list[TeamsProxy]:
        with self._counted(f"GET {CONFIGURATION}/teams_proxy/"):
            return self._teams_proxies()

    def _teams_proxies(self) -> list[TeamsProxy]:
        out = []
        for obj in self._list(f"{CONFIGURATION}/teams_proxy/"):
            name = _name(obj, "teams_proxy")
            notify = obj.get("notifications_enabled")
            out.append(
                TeamsProxy(
                    id=_int(obj, "id", "teams_proxy", name),
                    name=name,
                    min_number_of_instances=_int(
                        obj, "min_number_of_instances", "teams_proxy", name
                    ),
                    notifications_enabled=notify if isinstance(notify, bool) else None,
                    eventhub_id=_str(obj.get("eventhub_id")),
                )
            )
        return out

    def worker_vm_configs(self) -> list[WorkerVmConfig]:
        with self._counted(f"GET {CONFIGURATION}/worker_vm/"):
            return self._worker_vm_configs()

    def _worker_vm_configs(self) -> list[WorkerVmConfig]:
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
                    maintenance_mode_reason=_str(obj.get("maintenance_mode_reason")),
                    address=_str(obj.get("address")),
                    cloud_bursting=_opt_bool(obj.get("cloud_bursting")),
                    system_location=_str(obj.get("system_location")),
                )
            )
        return out

    def bursting(self) -> Bursting:
        """Pexip's dynamic bursting settings (the global configuration, a singleton that
        Pexip's own client reads at ``configuration/v1/global/1/``)."""
        path = f"{CONFIGURATION}/global/1/"
        body = self._request("GET", path, path, timeout=self._cfg.timeout_seconds)
        if not isinstance(body, dict):
            raise PermanentError(f"pexip {path}: answer is not a record", operation=f"GET {path}")
        values: dict[str, int | None] = {}
        for key in ("bursting_threshold", "bursting_min_lifetime"):
            try:
                number = _number(body, key, nullable=True, integral=True)
            except _Bad:
                number = None
            values[key] = None if number is None else int(number)
        return Bursting(
            enabled=_opt_bool(body.get("bursting_enabled")),
            threshold=values["bursting_threshold"],
            min_lifetime=values["bursting_min_lifetime"],
        )

    def scheduled_scaling(self) -> list[ScheduledScaling]:
        """Every scheduled scaling policy; an invalid record is kept with ``problem``."""
        return [_scheduled(obj) for obj in self._list(f"{CONFIGURATION}/scheduled_scaling/")]

    def licensing(self) -> Licensing:
        """Licences installed and in use (one object in a Tastypie list; see ``Licensing``)."""
        objects = self._list(f"{STATUS}/licensing/")
        if not objects:
            return Licensing(None, None, problem="status/v1/licensing/ lists no object")
        obj = objects[0]
        values: dict[str, int | None] = {}
        problems = []
        for key in ("teams_count", "teams_total", "port_count", "port_total"):
            try:
                number = _number(obj, key, nullable=True, integral=True)
            except _Bad as bad:
                problems.append(str(bad))
                number = None
            values[key] = None if number is None else int(number)
        return Licensing(
            values["teams_count"],
            values["teams_total"],
            port_count=values["port_count"],
            port_total=values["port_total"],
            problem="; ".join(problems),
        )

    def participant_history(
        self,
        since: datetime,
        until: datetime,
        *,
        max_pages: int = 5000,
        deadline_seconds: float = 600.0,
    ) -> ParticipantHistory:
        """Completed participants (call legs) whose time overlaps ``[since, until)``, from
        ``history/v1/participant/`` (https://docs.pexip.com/api_manage/api_history.htm; fields
        as Pexip's client models them, github.com/pexip/go-infinity-sdk ``history/models.go``).
        Pexip keeps "all calls made to the 5,000 most recent completed conferences"
        (https://docs.pexip.com/admin/participant_history.htm), so ``retained_from`` is the
        start of the oldest participant it still holds: calls before it are unknown, not
        absent. See ``_history`` for paging and filters."""
        records, retained = self._history("participant", since, until, max_pages, deadline_seconds)
        return ParticipantHistory(
            calls=tuple(_history_call(obj) for obj in records), retained_from=retained
        )

    def backplane_history(
        self,
        since: datetime,
        until: datetime,
        *,
        max_pages: int = 5000,
        deadline_seconds: float = 600.0,
    ) -> BackplaneHistory:
        """Completed backplanes whose time overlaps ``[since, until)``, from
        ``history/v1/backplane/`` (the resource Pexip's client reads; ``HistoryBackplane``).
        A Management Node without it answers 404 (``PermanentError`` with ``status`` 404)."""
        records, retained = self._history("backplane", since, until, max_pages, deadline_seconds)
        return BackplaneHistory(
            backplanes=tuple(_history_backplane(obj) for obj in records), retained_from=retained
        )

    def _history(
        self,
        resource: str,
        since: datetime,
        until: datetime,
        max_pages: int,
        deadline_seconds: float,
    ) -> tuple[list[dict[str, Any]], float | None]:
        """Records of ``history/v1/<resource>/`` overlapping ``[since, until)``, filtered on
        the server with Tastypie's ``end_time__gte`` / ``start_time__lt`` and paged by
        ``limit``/``offset`` through ``meta.next`` (same-origin only, at most ``max_pages``
        pages, within ``deadline_seconds``), and the start of the oldest record kept."""
        path = f"{HISTORY}/{resource}/"
        window = {"end_time__gte": _api_time(since), "start_time__lt": _api_time(until)}
        records = self._list(
            path, query=window, max_pages=max_pages, deadline_seconds=deadline_seconds
        )
        oldest = self._request(
            "GET",
            path,
            path,
            params={"limit": 1, "offset": 0, "order_by": "start_time"},
            timeout=self._cfg.timeout_seconds,
        )
        first = oldest.get("objects") if isinstance(oldest, dict) else None
        retained = None
        if first and isinstance(first[0], dict):
            retained = _time(first[0].get("start_time"))
        return records, retained

    def schema(self, resource: str) -> dict[str, SchemaField]:
        """The fields of ``resource`` (e.g. ``status/v1/teamsnode``) from its ``schema/``."""
        path = f"/api/admin/{resource.strip('/')}/schema/"
        body = self._request("GET", path, path, timeout=self._cfg.timeout_seconds)
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            raise PermanentError(f"pexip {path}: answer has no 'fields'", operation=f"GET {path}")
        return {
            str(k): SchemaField(str(k), str(v.get("type", "")), bool(v.get("nullable")))
            for k, v in fields.items()
            if isinstance(v, dict)
        }

    def teams_proxy(self, ref: str) -> TeamsProxy:
        """A Teams Connector by id (digits) or name."""
        found = find_proxy(self.teams_proxies(), ref)
        if found is None:
            raise PermanentError(
                f"pexip {CONFIGURATION}/teams_proxy/: no Teams Connector {ref!r}",
                operation="pexip.teams_proxy",
            )
        return found

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

    def _list(
        self,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        max_pages: int | None = None,
        deadline_seconds: float | None = None,
    ) -> list[dict[str, Any]]:
        """Every object of a Tastypie list, following ``meta.next`` page by page.

        ``meta.next`` is followed only when it is relative or names the configured scheme, host
        and port (credentials never go elsewhere), for at most ``max_pages`` pages and within
        ``read_deadline_seconds`` in total (``max_pages`` / ``deadline_seconds`` override them
        for reads that are known to be long, such as call history). ``query`` adds filters
        to the first request (``meta.next`` carries them on).
        """
        cap = max_pages or self._cfg.max_pages
        budget = deadline_seconds or self._cfg.read_deadline_seconds
        objects: list[dict[str, Any]] = []
        url: str | None = path
        params: dict[str, Any] | None = {
            "limit": self._cfg.page_size,
            "offset": 0,
            **(query or {}),
        }
        seen: set[str] = set()
        deadline = time.monotonic() + budget
        pages = 0
        while url:
            if url in seen:
                raise PermanentError(
                    f"pexip {path}: meta.next loops back to {url}", operation=f"GET {path}"
                )
            if pages >= cap:
                raise PermanentError(
                    f"pexip {path}: more than {cap} pages (pexip.max_pages); next was {url}",
                    operation=f"GET {path}",
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _late(path, budget, pages)
            seen.add(url)
            timeout = min(self._cfg.timeout_seconds, remaining)
            try:
                body = self._request("GET", url, path, params=params, timeout=timeout)
            except TransientError as err:
                # a request cut short by what was left of the read's deadline: the deadline is
                # what ended the read, and what the operator can change
                if time.monotonic() < deadline:
                    raise
                raise _late(path, budget, pages) from err
            pages += 1
            params = None  # meta.next carries its own query
            if not isinstance(body, dict) or not isinstance(body.get("objects"), list):
                self._observe(f"GET {path}", "error", 0.0)
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
            url = self._same_origin(str(nxt), path) if nxt else None
        return objects

    def _same_origin(self, link: str, path: str) -> str:
        """``link`` if it stays on the configured Management Node, else ``PermanentError``."""
        parts = urlsplit(link)
        if not parts.scheme and not parts.netloc:
            return link
        origin = (parts.scheme.lower(), (parts.hostname or "").lower(), _port(parts))
        if origin != self._origin or self._origin[0] != "https":
            raise PermanentError(
                f"pexip {path}: meta.next {show_url(link)!r} leaves the Management Node "
                f"{show_url(self._cfg.url)} (not followed)",
                operation=f"GET {path}",
            )
        return link

    def _patch(self, path: str, body: Mapping[str, Any]) -> None:
        self._request("PATCH", path, path, json_body=body, timeout=self._cfg.timeout_seconds)

    def _request(
        self,
        method: str,
        url: str,
        endpoint: str,
        *,
        timeout: float,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> Any:
        operation = f"{method} {endpoint}"
        start = time.monotonic()
        outcome = "error"
        try:
            result = self._answer(
                method, url, operation, params=params, json_body=json_body, timeout=timeout
            )
            outcome = "ok"
            return result
        except TransientError:
            outcome = "transient"
            raise
        finally:
            self._observe(operation, outcome, time.monotonic() - start)

    @contextmanager
    def _counted(self, operation: str) -> Iterator[None]:
        """An answer that came but whose records are unusable (``_Invalid``) is a failed call
        too; the request itself was already observed as ``ok``."""
        try:
            yield
        except _Invalid:
            self._observe(operation, "error", 0.0)
            raise

    def _observe(self, operation: str, outcome: str, seconds: float) -> None:
        if self._observer is not None:
            # ids in paths (teams_proxy/7/) become {id}: one series per endpoint
            self._observer("pexip." + _ID_IN_PATH.sub("/{id}/", operation), outcome, seconds)

    def _read(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
        timeout: float,
        where: str,
    ) -> httpx.Response:
        """Send, and read the answer up to ``MAX_ANSWER_BYTES`` within ``timeout_seconds`` in
        all (httpx's read timeout is per chunk: an answer trickling a byte at a time, or
        streaming for ever, would hold the pool's read without end)."""
        request = self._http.build_request(
            method, url, params=params, json=json_body, timeout=timeout
        )
        budget = max(timeout, self._cfg.timeout_seconds)
        deadline = time.monotonic() + budget
        response = self._http.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "").strip()
            if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
                raise _too_large(where, request, f"Content-Length {declared}")
            body = bytearray()
            for chunk in response.iter_bytes():  # decoded: a compressed bomb is capped too
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise _too_large(where, request, f"more than {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(
                        f"the answer did not arrive within {budget:g} s", request=request
                    )
        finally:
            response.close()
        skip = {"content-encoding", "content-length", "transfer-encoding"}
        return httpx.Response(
            response.status_code,
            headers=[(k, v) for k, v in response.headers.items() if k.lower() not in skip],
            content=bytes(body),
            request=request,
        )

    def _answer(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        timeout: float,
        params: Mapping[str, Any] | None,
        json_body: Mapping[str, Any] | None,
    ) -> Any:
        where = f"pexip {show_url(self._cfg.url)}{operation.partition(' ')[2]}"
        try:
            # A kept-alive connection the server had closed fails before any answer: send
            # once more, on a fresh connection (the writes set absolute values, so one that
            # did arrive is not changed by arriving twice).
            for attempt in Retrying(
                stop=stop_after_attempt(2),
                retry=retry_if_exception(_stale_connection),
                reraise=True,
            ):
                with attempt:
                    response = self._read(method, url, params, json_body, timeout, where)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{where}: timed out ({exc})", operation=operation) from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{where}: {exc}", operation=operation) from exc
        status = response.status_code
        if 300 <= status < 400:  # redirects are not followed: credentials stay on this host
            raise PermanentError(
                f"{where}: HTTP {status} redirect to {response.headers.get('location', '')!r}"
                " (not followed)",
                operation=operation,
                status=status,
                code=str(status),
            )
        if status >= 400:
            snippet = summarise_body(response.text)
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


_ID_IN_PATH = re.compile(r"/\d+/")

MAX_ANSWER_BYTES = 32 << 20
"""Most bytes of one Management Node answer (32 MiB; a page of 1,000 records is about 1 MB).
A longer answer is refused unread: a 100 MB answer took the daemon to 943 MB."""


def _too_large(where: str, request: httpx.Request, what: str) -> TransientError:
    return TransientError(
        f"{where}: the answer is too large ({what}; the limit is "
        f"{MAX_ANSWER_BYTES >> 20} MiB): not read",
        operation=f"{request.method} {request.url.path}",
        code="AnswerTooLarge",
    )


def _stale_connection(exc: BaseException) -> bool:
    """httpx's error for a pooled connection the server had closed: nothing was answered."""
    return isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc)


def find_proxy(proxies: Iterable[TeamsProxy], ref: str) -> TeamsProxy | None:
    """A Teams Connector by id (digits) or name."""
    for proxy in proxies:
        if (ref.isdigit() and proxy.id == int(ref)) or proxy.name == ref:
            return proxy
    return None


# -- record translation ------------------------------------------------------------------------


class _Bad(Exception):
    """One field of one record is unusable (the message names field and value)."""


def _number(
    obj: Mapping[str, Any], key: str, *, nullable: bool = False, integral: bool = False
) -> float | None:
    """A finite, non-negative number (an integer when ``integral``); ``None`` only if null is
    allowed. Booleans, strings, NaN, ±inf (``1e400`` parses to inf) and negatives are invalid."""
    if key not in obj:
        if nullable:
            return None
        raise _Bad(f"missing field {key!r}")
    value = obj[key]
    if value is None:
        if nullable:
            return None
        raise _Bad(f"missing field {key!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"invalid {key} {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise _Bad(f"invalid {key} {value!r}") from None
    if not math.isfinite(number) or number < 0 or (integral and not number.is_integer()):
        raise _Bad(f"invalid {key} {value!r}")
    return number


def _teams_node(obj: Mapping[str, Any]) -> TeamsNode:
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        ident = obj.get("id", obj.get("resource_uri", "?"))
        return TeamsNode(
            name=f"#{ident}",
            call_count=None,
            max_calls=None,
            scaleset_id=_str(obj.get("scaleset_id")),
            eventhub_id=_str(obj.get("eventhub_id")),
            problem="missing field 'name'",
        )
    problems: list[str] = []
    values: dict[str, float | None] = {}
    for key, nullable, integral in (
        ("call_count", False, True),
        ("max_calls", True, True),
        ("media_load", True, False),
    ):
        try:
            values[key] = _number(obj, key, nullable=nullable, integral=integral)
        except _Bad as bad:
            problems.append(str(bad))
            values[key] = None
    status = obj.get("instance_status")
    if status is not None and not isinstance(status, str):
        problems.append(f"invalid instance_status {status!r}")
    count, cap = values["call_count"], values["max_calls"]
    return TeamsNode(
        name=name,
        call_count=None if count is None else int(count),
        max_calls=None if cap is None else int(cap),
        instance_status=_str(status),
        state=_str(obj.get("state")),
        scaleset_id=_str(obj.get("scaleset_id")),
        media_load=values["media_load"],
        eventhub_id=_str(obj.get("eventhub_id")),
        problem="; ".join(problems),
    )


def _worker_vm(obj: Mapping[str, Any]) -> WorkerVm:
    name = obj.get("name")
    problems: list[str] = []
    if not isinstance(name, str) or not name:
        problems.append("missing field 'name'")
        name = f"#{obj.get('id', obj.get('resource_uri', '?'))}"
    values: dict[str, float | None] = {}
    for key, nullable, integral in (
        ("media_load", False, False),
        ("max_hd_calls", False, False),
        ("media_tokens_used", True, True),
        ("max_media_tokens", True, True),
    ):
        try:
            values[key] = _number(obj, key, nullable=nullable, integral=integral)
        except _Bad as bad:
            problems.append(str(bad))
            values[key] = None
    maintenance = obj.get("maintenance_mode")
    if not isinstance(maintenance, bool):
        problems.append(
            "missing field 'maintenance_mode'"
            if maintenance is None
            else f"invalid maintenance_mode {maintenance!r}"
        )
    tokens, max_tokens = values["media_tokens_used"], values["max_media_tokens"]
    ident, conf = obj.get("id"), obj.get("configuration_id")
    return WorkerVm(
        name=name,
        system_location=_str(obj.get("system_location")),
        maintenance_mode=maintenance if isinstance(maintenance, bool) else True,
        media_load=values["media_load"] or 0.0,
        max_hd_calls=values["max_hd_calls"] or 0.0,
        maintenance_mode_reason=_str(obj.get("maintenance_mode_reason")),
        boot_time=_time(obj.get("boot_time")),
        last_contacted=_time(obj.get("last_contacted") or obj.get("last_attempted_contact")),
        id=ident if isinstance(ident, int) and not isinstance(ident, bool) else None,
        configuration_id=conf if isinstance(conf, int) and not isinstance(conf, bool) else None,
        media_tokens_used=None if tokens is None else int(tokens),
        max_media_tokens=None if max_tokens is None else int(max_tokens),
        problem="; ".join(problems),
    )


def _scheduled(obj: Mapping[str, Any]) -> ScheduledScaling:
    problems: list[str] = []
    numbers: dict[str, int] = {}
    for key in ("instances_to_add", "minutes_in_advance"):
        try:
            value = _number(obj, key, integral=True)
            numbers[key] = int(value or 0)
        except _Bad as bad:
            problems.append(str(bad))
            numbers[key] = 0
    enabled = obj.get("enabled")
    if not isinstance(enabled, bool):
        problems.append(f"invalid enabled {enabled!r}")
    days = tuple(d for d in _DAYS if obj.get(d) is True)
    ident = obj.get("id")
    return ScheduledScaling(
        id=ident if isinstance(ident, int) and not isinstance(ident, bool) else None,
        policy_name=_str(obj.get("policy_name")) or _str(obj.get("name")),
        enabled=enabled if isinstance(enabled, bool) else True,
        instances_to_add=numbers["instances_to_add"],
        minutes_in_advance=numbers["minutes_in_advance"],
        local_timezone=_str(obj.get("local_timezone")),
        time_from=_str(obj.get("time_from")),
        time_to=_str(obj.get("time_to")),
        days=days,
        policy_type=_str(obj.get("policy_type")),
        resource_identifier=_str(obj.get("resource_identifier")),
        start_date=_str(obj.get("start_date")),
        problem="; ".join(problems),
    )


def _clock_time(text: str) -> Any:
    parts = text.split(":")
    if len(parts) < 2:
        raise ValueError(text)
    return datetime.strptime(":".join(parts[:2]), "%H:%M").time()


def _date_or_min(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return date.min


def _port(parts: Any) -> int:
    try:
        port = parts.port
    except ValueError:
        return -1
    if port is not None:
        return int(port)
    return {"https": 443, "http": 80}.get(str(parts.scheme).lower(), -1)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _name(obj: Mapping[str, Any], kind: str) -> str:
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        ident = obj.get("id", obj.get("resource_uri", "?"))
        raise _Invalid(f"pexip {kind} {ident!s}: missing field 'name'")
    return name


class _Invalid(PermanentError):
    """A record of an answer that cannot be used (a field missing or of the wrong type)."""


def _missing(kind: str, name: str, key: str, value: Any) -> PermanentError:
    what = "missing field" if value is None else f"bad field ({value!r})"
    return _Invalid(f"pexip {kind} {name!r}: {what} {key!r}", operation=kind)


def _int(obj: Mapping[str, Any], key: str, kind: str, name: str) -> int:
    value = obj.get(key)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise _missing(kind, name, key, value)
    return int(value)


def _bool(obj: Mapping[str, Any], key: str, kind: str, name: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise _missing(kind, name, key, value)
    return value


def _api_time(moment: datetime) -> str:
    """A filter value as Pexip's own client sends it (RFC 3339, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(obj: Mapping[str, Any]) -> tuple[float | None, float | None, str]:
    """A history record's ``start_time`` and ``end_time``, and what makes them unusable."""
    start, end = _time(obj.get("start_time")), _time(obj.get("end_time"))
    problem = ""
    if start is None or end is None:
        which = "start_time" if start is None else "end_time"
        problem = f"{which} is {obj.get(which)!r}"
    elif end < start:
        problem = "end_time is before start_time"
    return start, end, problem


def _history_call(obj: Mapping[str, Any]) -> HistoryCall:
    start, end, problem = _span(obj)
    return HistoryCall(
        id=str(obj.get("id") if obj.get("id") is not None else obj.get("call_uuid", "")),
        start=start,
        end=end,
        protocol=_str(obj.get("protocol")),
        call_direction=_str(obj.get("call_direction")),
        conference_name=_str(obj.get("conference_name")),
        problem=problem,
    )


def _history_backplane(obj: Mapping[str, Any]) -> HistoryBackplane:
    start, end, problem = _span(obj)
    return HistoryBackplane(
        id=str(obj.get("id") if obj.get("id") is not None else ""),
        start=start,
        end=end,
        conference_name=_str(obj.get("conference_name")),
        protocol=_str(obj.get("protocol")),
        type=_str(obj.get("type")),
        problem=problem,
    )


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


# -- the metric source -------------------------------------------------------------------------


def scale_set_named(node: TeamsNode, pool: PoolConfig) -> bool:
    """Whether an instance's ``scaleset_id`` names the pool's scale set (strict: attribution).

    Pexip does not document the form of ``scaleset_id``; it is accepted as the scale set's
    ARM resource id or its name (case-insensitive). An empty ``scaleset_id`` or a pool without
    a scale set names nothing: such an instance is attributed by other means or not at all.
    """
    if not pool.resource_id or not node.scaleset_id:
        return False
    sid = node.scaleset_id.rstrip("/").lower()
    if "/" in sid:
        return sid == pool.resource_id.rstrip("/").lower()
    return sid == pool.scale_set_name.lower()


def scale_set_matches(node: TeamsNode, pool: PoolConfig) -> bool:
    """Whether an instance *may* belong to the pool (permissive: for "is anything busy here?"
    checks, where including too much is the safe side): ``True`` unless its ``scaleset_id``
    names a different scale set. Never use it to attribute load — see ``scale_set_named``."""
    if not pool.resource_id or not node.scaleset_id:
        return True
    return scale_set_named(node, pool)


def active_scheduled_instances(client: PexipClient, proxy: TeamsProxy, now: float) -> int:
    """Instances Pexip's scheduled scaling adds on top of ``proxy``'s minimum at ``now``.

    Σ ``instances_to_add`` of the enabled policies active now (``ScheduledScaling.active_at``,
    including ``minutes_in_advance``) that apply to the connector: ``resource_identifier``
    empty or naming it (name, id or ``eventhub_id``). A policy that cannot be evaluated counts
    0, so the daemon errs towards writing a higher minimum (more capacity), never a lower one.
    A failed read raises (``AdapterError``): the pool holds.
    """
    keys = {proxy.name.lower(), str(proxy.id)}
    if proxy.eventhub_id:
        keys.add(proxy.eventhub_id.lower())
    extra = 0
    for policy in client.scheduled_scaling():
        ident = policy.resource_identifier.strip().lower()
        if ident and ident not in keys:
            continue
        if policy.active_at(now) is True:
            extra += policy.instances_to_add
    return extra


Members = Callable[[PoolConfig], Sequence[str] | None]
"""The VM names of a ``vm-set`` pool as last observed (``None``: not yet known)."""


@dataclass
class _TeamsRead:
    """One tick's teamsnode records split over the Teams pools (fail-closed attribution)."""

    mine: dict[str, list[TeamsNode]] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)
    foreign: list[TeamsNode] = field(default_factory=list)


class PexipMetrics:
    """``MetricsSource`` over the status API: calls now, per pool and per instance.

    Which pools read Conferencing Node load is the pool's kind's to say (``node_metric``, handed
    over by the wiring: ``PoolKind.node_metric``); this adapter names no kind.

    * Teams Connector pools (``vmss``, ``pexip-teams``): Σ ``call_count`` of the pool's Teams
      Connector instances, with each instance's count. An instance belongs to a pool by its
      ``scaleset_id`` (the pool's scale set) or, without one, its ``eventhub_id`` (the pool's Teams
      Connector's); one without either belongs to the only Teams pool, and is unattributable when
      there are several. A reading is ``MISSING`` — never 0 — when any record it could contain is
      unattributable, ambiguous or invalid, when no record names the pool while others name an
      unknown scale set, or when the list is empty while the Event Hub is on (Pexip then lists every
      instance) or its state is unknown. With the Event Hub off Pexip lists instances only while a
      Teams call is in progress (https://docs.pexip.com/admin/teams_status.htm): the reading is
      ``OK`` with ``unlisted_is_idle`` set, so an instance the scale set lists as running but the
      reading does not name carries no call.
    * Conferencing Node pools (``vm-set``): HD-call load of the pool's nodes (``media_load`` ×
      ``max_hd_calls``); with ``metric.locations``, the load of those system locations beyond
      ``base_fill`` of the other nodes' capacity there. Nodes in maintenance count neither as load
      nor as capacity (they report 100 %, https://docs.pexip.com/admin/maintenance_mode.htm);
      ``by_instance`` gives each node's calls from participant status (``None``: unknown).

    Each endpoint is read at most once per ``read`` (the Teams Connector configuration for
    ``notifications_enabled`` too); a failure makes every pool that needed it ``MISSING`` with
    the error (naming the endpoint) as detail.
    """

    def __init__(
        self,
        config: Config,
        client: PexipClient,
        *,
        members: Members,
        node_metric: Callable[[PoolConfig], bool],
    ) -> None:
        self._config = config
        self._client = client
        self._members = members
        self._node_metric = node_metric

    def read(self, pools: Sequence[PoolConfig], now: float) -> Mapping[str, MetricReading]:
        out: dict[str, MetricReading] = {}
        teams_pools = [p for p in pools if not self._node_metric(p)]
        if teams_pools:
            out.update(self._teams(teams_pools, now))
        node_pools = [p for p in pools if self._node_metric(p)]
        if node_pools:
            workers = _attempt(lambda: self._client.worker_vms(with_calls=True))
            for pool in node_pools:
                if isinstance(workers, AdapterError):
                    out[pool.name] = MetricReading.missing(str(workers))
                else:
                    out[pool.name] = self._node_load(pool, workers, now)
        return {p.name: out[p.name] for p in pools}

    # -- Teams Connector ----------------------------------------------------------------------

    def _teams(self, pools: Sequence[PoolConfig], now: float) -> dict[str, MetricReading]:
        nodes = _attempt(self._client.teams_nodes)
        if isinstance(nodes, AdapterError):
            return {p.name: MetricReading.missing(str(nodes)) for p in pools}
        proxies = _attempt(self._client.teams_proxies)
        proxy_of = {p.name: _proxy_for(p, proxies) for p in pools}
        split = _attribute(nodes, pools, proxy_of)
        out: dict[str, MetricReading] = {}
        for pool in pools:
            out[pool.name] = self._teams_reading(pool, split, proxy_of[pool.name], proxies, now)
        return out

    def _teams_reading(
        self,
        pool: PoolConfig,
        split: _TeamsRead,
        proxy: TeamsProxy | None,
        proxies: list[TeamsProxy] | AdapterError,
        now: float,
    ) -> MetricReading:
        if pool.name in split.blocked:
            return MetricReading.missing(split.blocked[pool.name])
        mine = split.mine.get(pool.name, [])
        bad = [n for n in mine if not n.valid]
        if bad:
            return MetricReading.missing(
                "; ".join(f"teamsnode {n.name!r}: {n.problem}" for n in bad[:5])
                + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
            )
        hub: bool | None = True if any(n.instance_status for n in mine) else None
        if hub is None and proxy is not None:
            hub = proxy.notifications_enabled
        if not mine:
            where = pool.scale_set_name or pool.teams_proxy or pool.name
            if split.foreign:
                ids = sorted({n.scaleset_id or n.eventhub_id for n in split.foreign})
                return MetricReading.missing(
                    f"no teamsnode record names scale set {where!r}; listed instances carry "
                    f"scaleset_id/eventhub_id {', '.join(repr(i) for i in ids[:5])}, which "
                    "match no configured pool"
                )
            if hub is None:
                why = str(proxies) if isinstance(proxies, AdapterError) else "no Teams Connector"
                return MetricReading.missing(
                    "teamsnode lists no instance of this pool and whether the Event Hub is on "
                    f"is unknown ({why}): idle cannot be told from missing"
                )
            if hub:
                return MetricReading.missing(
                    "teamsnode lists no instance of this pool although the Event Hub is on "
                    "(Pexip then lists every instance)"
                )
        return MetricReading(
            status=MetricStatus.OK,
            calls=float(sum(n.call_count or 0 for n in mine)),
            as_of=now,
            detail="" if hub is not False else "Event Hub off: unlisted instances carry no call",
            by_instance=tuple((n.name, float(n.call_count or 0)) for n in mine),
            unlisted_is_idle=hub is False,
        )

    # -- Conferencing Nodes -------------------------------------------------------------------

    def _node_load(
        self, pool: PoolConfig, workers: Sequence[WorkerVm], now: float
    ) -> MetricReading:
        members = self._members(pool)
        if members is None:
            return MetricReading.missing("the pool's VMs have not been listed yet")
        names = {m.lower() for m in members}
        mine = [w for w in workers if w.name.lower() in names]
        locations = {loc.lower() for loc in pool.metric.locations}
        here = [w for w in workers if w.system_location.lower() in locations] if locations else []
        bad = [w for w in {id(w): w for w in (*mine, *here)}.values() if not w.valid]
        if bad:
            return MetricReading.missing(
                "; ".join(f"worker_vm {w.name!r}: {w.problem}" for w in bad[:5])
            )
        load = sum(w.serving_hd_calls for w in mine)
        if locations:
            others = [w for w in here if w.name.lower() not in names]
            total = sum(w.serving_hd_calls for w in here)
            spare = pool.metric.base_fill * sum(w.serving_capacity_hd for w in others)
            load = max(0.0, total - spare)
        return MetricReading(
            status=MetricStatus.OK,
            calls=load,
            as_of=now,
            by_instance=tuple((w.name, w.calls) for w in mine),
        )


def _proxy_for(pool: PoolConfig, proxies: list[TeamsProxy] | AdapterError) -> TeamsProxy | None:
    """The pool's Teams Connector: the one it names, else the only one Pexip has."""
    if isinstance(proxies, AdapterError):
        return None
    if pool.teams_proxy:
        return find_proxy(proxies, pool.teams_proxy)
    return proxies[0] if len(proxies) == 1 else None


def _attribute(
    nodes: Sequence[TeamsNode],
    pools: Sequence[PoolConfig],
    proxy_of: Mapping[str, TeamsProxy | None],
) -> _TeamsRead:
    split = _TeamsRead(mine={p.name: [] for p in pools})
    keyless: list[TeamsNode] = []
    for node in nodes:
        owners = [p for p in pools if scale_set_named(node, p)]
        # The Event Hub id joins an instance to its connector only when it names no scale set
        # itself: a scaleset_id naming another scale set is never overridden.
        if not owners and not node.scaleset_id and node.eventhub_id:
            owners = [
                p
                for p in pools
                if (proxy := proxy_of.get(p.name)) is not None
                and proxy.eventhub_id
                and proxy.eventhub_id == node.eventhub_id
            ]
        if len(owners) == 1:
            split.mine[owners[0].name].append(node)
        elif len(owners) > 1:
            for p in owners:
                split.blocked.setdefault(
                    p.name,
                    f"teamsnode {node.name!r} (scaleset_id {node.scaleset_id!r}) matches "
                    f"several pools: {', '.join(o.name for o in owners)}",
                )
        elif node.scaleset_id or node.eventhub_id:
            split.foreign.append(node)
        else:
            keyless.append(node)
    if keyless:
        if len(pools) == 1:
            split.mine[pools[0].name].extend(keyless)
        else:
            for p in pools:
                split.blocked.setdefault(
                    p.name,
                    f"{len(keyless)} teamsnode records (e.g. {keyless[0].name!r}) carry no "
                    "scaleset_id or eventhub_id to tell which of the Teams pools "
                    f"{', '.join(q.name for q in pools)} owns them",
                )
    return split


def _attempt(read: Callable[[], _T]) -> _T | AdapterError:
    try:
        return read()
    except AdapterError as err:
        return err
