"""In-process fake of a Pexip Infinity Management Node's REST API, over HTTPS.

Serves the status and configuration endpoints the autoscaler uses, Tastypie style
(``{"meta": {"limit", "next", "offset", "previous", "total_count"}, "objects": [...]}``, paged
with ``limit``/``offset`` and a relative ``meta.next``), with HTTP basic authentication and a
self-signed certificate made for the test (``ca_file``). Each behaviour below names the Pexip
page it comes from; field names and nullability follow Pexip's own API client models
(github.com/pexip/go-infinity-sdk, ``status/models.go`` and ``config/*_model.go``).

* **Maintenance mode** (https://docs.pexip.com/admin/maintenance_mode.htm): a Conferencing Node
  in maintenance takes no new calls, keeps its calls, and *reports a media load of 100 %* "to
  indicate that there is no current capacity available". Its calls end over time — here over
  the next ``maintenance_polls`` reads of the worker_vm status list — and its media load stays
  100 % throughout and after.
* **Calls per node**: ``status/v1/participant/`` lists one record per participant with the
  address of the node carrying its media (``media_node``), signalling (``signalling_node``) and
  proxying (``proxy_node``) (https://docs.pexip.com/api_manage/api_status.htm; Pexip's client
  examples give node IP addresses). A node's ``address`` is in ``configuration/v1/worker_vm/``.
  ``media_tokens_used``/``max_media_tokens`` are reported in worker_vm status.
* **Teams Connector instances** (https://docs.pexip.com/admin/teams_status.htm): with the Azure
  Event Hub on (the connector's ``notifications_enabled``), every instance is listed with an
  ``instance_status`` of Active, Waiting for termination, Terminating, Maintenance or Failure;
  with it off, an instance is listed *only while a Teams call is in progress*, with no
  ``instance_status`` (null). ``max_calls``, ``instance_status``, ``state`` and ``eventhub_id``
  are nullable. Instances not tied to a connector follow the fake's ``event_hub`` flag.
* **Names**: no Pexip page says what a teamsnode record's ``name`` is — the VM name, the
  computer name or something else (an FQDN) — nor the form of ``scaleset_id``. The fake serves
  whatever a test gives, so tests run the same scenario with names that equal the scale set's
  computer names and with names that do not.
* **Teams Connector configuration** (https://docs.pexip.com/admin/teams_scaling.htm):
  ``min_number_of_instances`` and ``notifications_enabled``; scheduled scaling policies in
  ``configuration/v1/scheduled_scaling/`` (``instances_to_add``, ``minutes_in_advance``,
  ``local_timezone``, ``time_from``/``time_to``, ``mon`` … ``sun``, ``enabled``).
* **Dynamic bursting** (https://docs.pexip.com/admin/bursting.htm, azure_bursting.htm): the
  global configuration (``configuration/v1/global/1/``, the singleton Pexip's client reads)
  has ``bursting_enabled``, ``bursting_threshold`` and ``bursting_min_lifetime``; a node's
  configuration has ``cloud_bursting`` (an overflow node Pexip starts and stops itself) and its
  ``system_location`` as a related URI (field names from go-infinity-sdk
  ``config/global_configuration_model.go`` and ``config/worker_vm_model.go``). "System locations
  are not explicitly configured as primary or overflow": a location is an overflow location
  when it holds bursting nodes.
* **Licences** (https://docs.pexip.com/admin/teams_configuration.htm): ``status/v1/licensing/``
  is a one-object list (fields of go-infinity-sdk ``Licensing``). The Teams licence counts
  Microsoft **tenants**: "The teams license controls how many Azure tenants can be configured;
  there is no limit to … the number of instances within each Teams Connector" — so
  ``teams_total`` is 1 and ``teams_count`` the tenants configured (1), whatever the calls. Each
  gateway call into Teams needs a call licence ("appropriate call licenses are also required for
  each gateway call"): ``port_count`` is the calls in progress (Teams calls and Conferencing Node
  participants), ``port_total`` 100 unless set.
* **Call history** (https://docs.pexip.com/api_manage/api_history.htm):
  ``history/v1/participant/`` lists completed participants (call legs) with ``start_time`` and
  ``end_time`` in UTC without an offset, ``call_direction``, ``conference_name`` and no
  ``protocol`` (field names from go-infinity-sdk ``history/models.go``, whose history
  participant has none; a test may add one to model a version that records it). The VTC leg of
  a Teams meeting is a participant "directly connected to an externally-hosted conference"
  (https://docs.pexip.com/admin/participant_history.htm); the conference's link to the meeting
  is a record of ``history/v1/backplane/`` (``conference_name``, ``protocol`` ``TEAMS``,
  ``type`` ``external-backplane``, as Pexip's client models and tests it). Both are filtered
  with Tastypie's ``<field>__gte`` / ``__gt`` / ``__lte`` / ``__lt`` on the times (the filters
  Pexip's own client sends: ``start_time__gte``, ``end_time__lt``) and ordered by
  ``order_by``; Pexip keeps the calls of the 5,000 most recent conferences only
  (participant_history.htm). ``backplane_history_supported = False`` models a version without
  the backplane resource (404).
* **Schemas**: ``<resource>/schema/`` describes each modelled resource's fields (Tastypie's
  ``fields`` map with ``type`` and ``nullable``), as the status API documents
  (https://docs.pexip.com/api_manage/api_status.htm: "A summary of the schema … via the REST
  API").

Faults: ``inject_fault(path_regex, status=…, body=…)`` answers the next matching requests with
an error or a raw (possibly malformed) body; ``set_raw_field`` puts raw JSON text (``1e400``,
``NaN``) into a record; ``set_meta_next`` makes list answers carry a chosen ``meta.next``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.tls import FakeServer, QuietHandler, serve_tls, write_certificate

STATUS = "/api/admin/status/v1"
CONFIGURATION = "/api/admin/configuration/v1"
DEFAULT_LIMIT = 20
"""Pexip's default page size when ``limit`` is not given."""
INSTANCE_STATUSES = ("Active", "Waiting for termination", "Terminating", "Maintenance", "Failure")
"""https://docs.pexip.com/admin/teams_status.htm"""
TOKENS_PER_HD = 18
"""Media tokens one HD call uses in the fake (only proportions matter)."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: str
    remaining: int
    kind: str = "status"
    """``status`` (``status`` with ``body`` as JSON) or one of ``TRANSPORT_FAULTS``."""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


TRANSPORT_FAULTS = ("raw", "reset", "truncate", "stall", "redirect")
"""What a gateway, proxy or broken connection in front of the Management Node does."""
_ACTION = "x-fake-action"
_DELAY = "x-fake-delay"


@dataclass
class _Node:
    """A Conferencing Node: status and configuration share the id."""

    id: int
    name: str
    system_location: str
    max_hd_calls: int
    media_load: float = 0.0
    """Media load while serving (the status answer reports 100 in maintenance)."""
    calls: int = 0
    """Participants on the node now."""
    maintenance_mode: bool = False
    maintenance_mode_reason: str = ""
    boot_time: str = "2026-11-18T07:00:00.000000"
    last_contacted: str = "2026-11-18T09:00:00.000000"
    address: str = ""
    cloud_bursting: bool = False
    """An overflow node Pexip's dynamic bursting starts and stops."""
    drain_step: float = 0.0
    """Calls ended per status poll while in maintenance."""
    drain_left: float = 0.0
    missing: set[str] = field(default_factory=set)
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def reported_media_load(self) -> float:
        # https://docs.pexip.com/admin/maintenance_mode.htm: 100 % while in maintenance.
        return 100.0 if self.maintenance_mode else self.media_load


class FakePexip:
    """Fake Management Node. State is plain attributes guarded by one lock."""

    def __init__(
        self,
        directory: Path,
        *,
        username: str = "admin",
        password: str = "s3cret",
        maintenance_polls: int = 2,
        event_hub: bool = True,
    ) -> None:
        self.username = username
        self.password = password
        self.maintenance_polls = maintenance_polls
        self.event_hub = event_hub
        """Event Hub state of instances not tied to a configured Teams Connector."""
        self.teams_nodes: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, _Node] = {}
        self.teams_proxies: dict[int, dict[str, Any]] = {}
        self.scheduled_scaling: dict[int, dict[str, Any]] = {}
        self.bursting: dict[str, Any] = {
            "bursting_enabled": False,
            "bursting_threshold": 5,
            "bursting_min_lifetime": 50,
        }
        """Dynamic bursting fields of the global configuration."""
        self.scheduled_scaling_supported = True
        """``False``: a Management Node from before scheduled scaling (teams_scaling.htm,
        "How scheduled scaling works" names the version that added it):
        ``configuration/v1/scheduled_scaling/`` and its schema answer 404."""
        self.licensing: dict[str, Any] = {}
        """Fields that override the licensing record (e.g. ``{"port_total": 10}``)."""
        self.stray_participants: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.backplanes: list[dict[str, Any]] = []
        self.backplane_history_supported = True
        self._teams_proxy_of: dict[str, int | None] = {}
        self._teams_raw: dict[str, dict[str, str]] = {}
        self._lock = threading.RLock()
        self._requests: list[Request] = []
        self._faults: list[_Fault] = []
        self._next_links: list[tuple[re.Pattern[str], str]] = []
        self._counter = itertools.count(1)
        self._server: FakeServer | None = None
        self.ca_file, self._key_file = write_certificate(directory / "pexip", "fakepexip")

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        self._server, _ = serve_tls(_Handler, self, self.ca_file, self._key_file, name="fakepexip")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    # -- state API: Teams Connector -------------------------------------------------------------

    def add_teams_node(
        self,
        name: str,
        *,
        call_count: int = 0,
        max_calls: int | None = 16,
        scaleset_id: str = "",
        instance_status: str = "Active",
        proxy: int | None = None,
    ) -> None:
        """An instance; ``proxy`` ties it to a Teams Connector (its Event Hub state and id)."""
        with self._lock:
            number = len(self.teams_nodes) + 1
            self.teams_nodes[name] = {
                "id": f"teamsnode-{number}",
                "name": name,
                "call_count": call_count,
                "max_calls": max_calls,
                "media_load": round(100.0 * call_count / max_calls) if max_calls else 0,
                "instance_status": instance_status,
                "state": "Connected",
                "scaleset_id": scaleset_id,
                "eventhub_id": None,
                "ip_address": f"20.0.0.{number}",
                "private_ip_address": f"10.1.0.{number}",
                "heartbeat_time": "2026-11-18T09:00:00.000000",
                "start_time": "2026-11-18T07:00:00.000000",
                "resource_uri": f"{STATUS}/teamsnode/teamsnode-{number}/",
            }
            self._teams_proxy_of[name] = proxy

    def set_calls(self, name: str, calls: int) -> None:
        with self._lock:
            record = self.teams_nodes[name]
            record["call_count"] = calls
            cap = record.get("max_calls")
            if isinstance(cap, int) and cap > 0 and isinstance(calls, int) and calls >= 0:
                record["media_load"] = round(100.0 * calls / cap)

    def set_teams_field(self, name: str, key: str, value: Any) -> None:
        """Set one field of an instance's status record as given (``None`` is JSON null)."""
        with self._lock:
            self.teams_nodes[name][key] = value

    def set_raw_field(self, name: str, key: str, raw_json: str) -> None:
        """Serve ``key`` of a teams node or Conferencing Node's record as raw JSON text
        (e.g. ``1e400``, which Python's JSON reads as inf, or ``NaN``)."""
        with self._lock:
            if name in self.teams_nodes:
                self._teams_raw.setdefault(name, {})[key] = raw_json
            else:
                self.nodes[name].raw[key] = raw_json

    def add_teams_proxy(
        self,
        proxy_id: int,
        name: str,
        *,
        min_number_of_instances: int = 1,
        notifications_enabled: bool = True,
    ) -> None:
        """A Teams Connector. ``notifications_enabled``: its Azure Event Hub is on."""
        with self._lock:
            self.teams_proxies[proxy_id] = {
                "id": proxy_id,
                "name": name,
                "description": "",
                "address": f"{name}.example.com",
                "port": 443,
                "azure_tenant": f"{CONFIGURATION}/azure_tenant/1/",
                "min_number_of_instances": min_number_of_instances,
                "notifications_enabled": notifications_enabled,
                "eventhub_id": f"{name}-eventhub" if notifications_enabled else None,
                "notifications_queue": f"{name}-queue" if notifications_enabled else None,
                "updated": "2026-11-18T07:00:00.000000",
                "resource_uri": f"{CONFIGURATION}/teams_proxy/{proxy_id}/",
            }

    def add_scheduled_scaling(
        self,
        policy_id: int,
        *,
        instances_to_add: int,
        time_from: str = "08:00",
        time_to: str = "17:00",
        local_timezone: str = "UTC",
        minutes_in_advance: int = 20,
        days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri"),
        enabled: bool = True,
        resource_identifier: str = "",
        policy_name: str = "",
    ) -> None:
        """A scheduled scaling policy (https://docs.pexip.com/admin/teams_scaling.htm)."""
        with self._lock:
            self.scheduled_scaling[policy_id] = {
                "id": policy_id,
                "policy_name": policy_name or f"policy-{policy_id}",
                "policy_type": "teams_connector",
                "resource_identifier": resource_identifier,
                "enabled": enabled,
                "instances_to_add": instances_to_add,
                "minutes_in_advance": minutes_in_advance,
                "local_timezone": local_timezone,
                "start_date": "2026-01-01",
                "time_from": time_from,
                "time_to": time_to,
                **{d: d in days for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                "updated": "2026-11-18T07:00:00.000000",
                "resource_uri": f"{CONFIGURATION}/scheduled_scaling/{policy_id}/",
            }

    # -- state API: Conferencing Nodes ------------------------------------------------------------

    def add_node(
        self,
        name: str,
        *,
        system_location: str = "London",
        max_hd_calls: int = 20,
        media_load: float = 0.0,
        maintenance_mode: bool = False,
        boot_time: str = "2026-11-18T07:00:00.000000",
        last_contacted: str = "2026-11-18T09:00:00.000000",
        calls: int | None = None,
        cloud_bursting: bool = False,
    ) -> None:
        """A Conferencing Node; ``calls`` (participants on it) defaults to the HD calls its
        ``media_load`` stands for; ``cloud_bursting``: an overflow node of Pexip's bursting."""
        with self._lock:
            number = len(self.nodes) + 1
            self.nodes[name] = _Node(
                id=number,
                name=name,
                system_location=system_location,
                max_hd_calls=max_hd_calls,
                media_load=media_load,
                calls=_calls_for(media_load, max_hd_calls) if calls is None else calls,
                maintenance_mode=maintenance_mode,
                boot_time=boot_time,
                last_contacted=last_contacted,
                address=f"10.0.{number // 250}.{number % 250 + 1}",
                cloud_bursting=cloud_bursting,
            )

    def set_media_load(self, name: str, media_load: float) -> None:
        """Set a serving node's load; its calls follow (HD-call equivalents)."""
        with self._lock:
            node = self.nodes[name]
            node.media_load = media_load
            node.calls = _calls_for(media_load, node.max_hd_calls)

    def set_node_calls(self, name: str, calls: int) -> None:
        with self._lock:
            self.nodes[name].calls = calls

    def node_calls(self, name: str) -> int:
        with self._lock:
            return self.nodes[name].calls

    def drop_field(self, name: str, key: str) -> None:
        """Make a teams node or Conferencing Node's status record lack a field."""
        with self._lock:
            if name in self.teams_nodes:
                self.teams_nodes[name].pop(key, None)
            else:
                self.nodes[name].missing.add(key)

    def add_stray_participant(self, media_node: str) -> None:
        """A participant whose media is on a node the Management Node does not list."""
        with self._lock:
            self.stray_participants.append(_participant(len(self.stray_participants), media_node))

    def add_history_participant(
        self,
        start: str,
        end: str | None,
        *,
        protocol: str | None = None,
        call_direction: str = "in",
        conference_name: str = "Teams meeting",
        **extra: Any,
    ) -> None:
        """A completed call leg in ``history/v1/participant/`` (times: ISO, UTC, no offset);
        ``protocol`` only when given (Pexip's client models none)."""
        with self._lock:
            number = len(self.history) + 1
            record: dict[str, Any] = {
                "id": number,
                "call_uuid": f"00000000-0000-4000-9000-{number:012d}",
                "conference_name": conference_name,
                "display_name": f"leg {number}",
                "call_direction": call_direction,
                "role": "guest",
                "service_type": "gateway",
                "start_time": start,
                "end_time": end,
                "duration": None,
                "disconnect_reason": "Call disconnected",
                "resource_uri": f"/api/admin/history/v1/participant/{number}/",
            }
            if protocol is not None:
                record["protocol"] = protocol
            record.update(extra)
            self.history.append(record)

    def add_history_backplane(
        self,
        start: str,
        end: str | None,
        *,
        conference_name: str = "Teams meeting",
        protocol: str = "TEAMS",
        type: str = "external-backplane",
    ) -> None:
        """A completed backplane in ``history/v1/backplane/``: by default a conference's link
        into a Teams meeting, as Pexip's client models it."""
        with self._lock:
            number = len(self.backplanes) + 1
            self.backplanes.append(
                {
                    "id": f"backplane-{number}",
                    "conference_name": conference_name,
                    "disconnect_reason": "Call disconnected",
                    "duration": None,
                    "start_time": start,
                    "end_time": end,
                    "media_node": "10.0.0.1",
                    "protocol": protocol,
                    "proxy_node": "",
                    "remote_conference_name": "19:meeting_x@thread.v2",
                    "remote_media_node": "",
                    "remote_node_name": "",
                    "service_tag": "",
                    "system_location": "London",
                    "type": type,
                    "resource_uri": f"/api/admin/history/v1/backplane/backplane-{number}/",
                }
            )

    def clear(self) -> None:
        """Forget every instance, connector, policy, node, participant and fault (requests
        stay recorded)."""
        with self._lock:
            self.teams_nodes.clear()
            self.teams_proxies.clear()
            self.scheduled_scaling.clear()
            self.nodes.clear()
            self.stray_participants.clear()
            self.licensing = {}
            self.bursting["bursting_enabled"] = False
            self.scheduled_scaling_supported = True
            self._teams_proxy_of.clear()
            self._teams_raw.clear()
            self._faults.clear()
            self._next_links.clear()

    # -- faults ---------------------------------------------------------------------------------

    def inject_fault(
        self,
        path_regex: str,
        *,
        status: int = 500,
        body: str = "",
        method: str = "*",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and a raw ``body``."""
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), status, body, times))

    def inject_transport_fault(
        self,
        path_regex: str,
        kind: str,
        *,
        status: int = 200,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        method: str = "*",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with a fault below the API: ``raw``
        (``status``, ``body`` and ``content_type`` as given, e.g. a proxy's HTML page), ``reset``
        (the connection closes without an answer), ``truncate`` (the real answer's length is
        announced, half its body sent), ``stall`` (the real answer after ``delay`` seconds) or
        ``redirect`` (``status``, default 302, to ``body.decode()``)."""
        if kind not in TRANSPORT_FAULTS:
            raise ValueError(f"unknown transport fault {kind!r}; one of {TRANSPORT_FAULTS}")
        extra = dict(headers or {})
        if kind == "redirect":
            status = 302 if status == 200 else status
            extra["Location"] = body.decode()
            body = b""
        with self._lock:
            self._faults.append(
                _Fault(
                    method.upper(),
                    re.compile(path_regex),
                    status,
                    body.decode("latin-1"),
                    times,
                    kind=kind,
                    content_type=content_type,
                    headers=extra,
                    delay=delay,
                )
            )

    def clear_faults(self) -> None:
        """Disarm every injected fault (the state stays)."""
        with self._lock:
            self._faults.clear()

    def set_meta_next(self, path_regex: str, link: str) -> None:
        """List answers on matching paths carry ``meta.next = link`` (``{n}`` in it becomes a
        counter, so every page names a new page: an endless list)."""
        with self._lock:
            self._next_links.append((re.compile(path_regex), link))

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method in ("PATCH", "PUT", "POST", "DELETE")]

    # -- serving ------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return _json(400, {"error": "malformed request body"})
        with self._lock:
            self._requests.append(Request(method, parts.path, query, body, dict(headers)))
            if not self._authorised(headers.get("authorization", "")):
                return 401, {"WWW-Authenticate": 'Basic realm="Pexip"'}, b"Authorization Required"
            for fault in self._faults:
                if fault.method in ("*", method) and fault.pattern.search(parts.path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return self._faulty(fault, method, parts.path, query, body)
            return self._route(method, parts.path, query, body)

    def _faulty(
        self, fault: _Fault, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], bytes]:
        if fault.kind == "status":
            return fault.status, {"Content-Type": "application/json"}, fault.body.encode()
        extra = dict(fault.headers)
        if fault.kind in ("raw", "redirect", "reset"):
            if fault.content_type:
                extra["Content-Type"] = fault.content_type
            extra[_ACTION] = "reset" if fault.kind == "reset" else ""
            return fault.status, extra, fault.body.encode("latin-1")
        status, headers, payload = self._route(method, path, query, body)
        if fault.kind == "truncate":
            headers = {**headers, _ACTION: "truncate"}
        else:
            headers = {**headers, _DELAY: str(fault.delay)}
        return status, headers, payload

    def _authorised(self, header: str) -> bool:
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == (self.username, self.password)

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], bytes]:
        if not self.scheduled_scaling_supported and "/scheduled_scaling/" in path:
            return _json(404, {"error": f"no endpoint {method} {path}"})
        if method == "GET" and path.endswith("/schema/"):
            schema = SCHEMAS.get(path[: -len("schema/")])
            if schema is None:
                return _json(404, {"error": f"no schema for {path}"})
            return _json(200, _schema(schema))
        if method == "GET" and path == f"{STATUS}/teamsnode/":
            return self._page(path, query, self._teams_listing())
        if method == "GET" and path == f"{STATUS}/worker_vm/":
            return self._page(path, query, [self._poll(n) for n in self.nodes.values()])
        if method == "GET" and path == f"{STATUS}/participant/":
            return self._page(path, query, self._participants())
        if method == "GET" and path == "/api/admin/history/v1/participant/":
            return self._page(path, query, _history_select(self.history, query))
        if method == "GET" and path == "/api/admin/history/v1/backplane/":
            if not self.backplane_history_supported:
                return _json(404, {"error": f"no endpoint {method} {path}"})
            return self._page(path, query, _history_select(self.backplanes, query))
        if method == "GET" and path == f"{STATUS}/licensing/":
            return self._page(path, query, [self._licences()])
        if method == "GET" and path == f"{CONFIGURATION}/teams_proxy/":
            return self._page(path, query, [dict(p) for p in self.teams_proxies.values()])
        if method == "GET" and path == f"{CONFIGURATION}/scheduled_scaling/":
            return self._page(path, query, [dict(p) for p in self.scheduled_scaling.values()])
        if method == "GET" and path == f"{CONFIGURATION}/worker_vm/":
            locations = self._location_ids()
            return self._page(
                path, query, [_node_config(n, locations) for n in self.nodes.values()]
            )
        if method == "GET" and path == f"{CONFIGURATION}/global/1/":
            return _json(200, {"id": 1, **self.bursting, "resource_uri": path})
        m = re.fullmatch(rf"{CONFIGURATION}/teams_proxy/(\d+)/", path)
        if m and method == "PATCH":
            proxy = self.teams_proxies.get(int(m[1]))
            if proxy is None:
                return _json(404, {})
            value = body.get("min_number_of_instances") if isinstance(body, dict) else None
            if not isinstance(value, int) or value < 0:
                return _json(400, {"teams_proxy": {"min_number_of_instances": ["invalid"]}})
            proxy["min_number_of_instances"] = value
            return 202, {}, b""
        m = re.fullmatch(rf"{CONFIGURATION}/worker_vm/(\d+)/", path)
        if m and method == "PATCH":
            node = next((n for n in self.nodes.values() if n.id == int(m[1])), None)
            if node is None or not isinstance(body, dict):
                return _json(404, {})
            if "maintenance_mode" in body:
                on = bool(body["maintenance_mode"])
                if on and not node.maintenance_mode:
                    node.drain_left = float(node.calls)
                    node.drain_step = node.calls / max(1, self.maintenance_polls)
                node.maintenance_mode = on
            if "maintenance_mode_reason" in body:
                node.maintenance_mode_reason = str(body["maintenance_mode_reason"])
            return 202, {}, b""
        return _json(404, {"error": f"no endpoint {method} {path}"})

    def _location_ids(self) -> dict[str, int]:
        names = sorted({n.system_location for n in self.nodes.values()})
        return {name: i for i, name in enumerate(names, start=1)}

    def _teams_listing(self) -> list[dict[str, Any]]:
        """https://docs.pexip.com/admin/teams_status.htm: with the Event Hub, every instance
        with its ``instance_status``; without it, only instances with a Teams call in progress
        and no ``instance_status``."""
        out = []
        for name, record in self.teams_nodes.items():
            proxy = self.teams_proxies.get(self._teams_proxy_of.get(name) or -1)
            hub = bool(proxy["notifications_enabled"]) if proxy is not None else self.event_hub
            shown = dict(record)
            if hub:
                if proxy is not None and "eventhub_id" in shown:
                    shown["eventhub_id"] = proxy["eventhub_id"]
            else:
                if record.get("call_count") == 0:
                    continue
                if "instance_status" in shown:
                    shown["instance_status"] = None
            for key, raw in self._teams_raw.get(name, {}).items():
                shown[key] = _Raw(raw)
            out.append(shown)
        return out

    def _poll(self, node: _Node) -> dict[str, Any]:
        """One status read; a node in maintenance keeps reporting 100 % while its calls end
        (https://docs.pexip.com/admin/maintenance_mode.htm)."""
        if node.maintenance_mode and node.calls > 0:
            node.drain_left = max(0.0, node.drain_left - max(node.drain_step, 1e-9))
            node.calls = min(node.calls, round(node.drain_left))
        record: dict[str, Any] = {
            "id": node.id,
            "configuration_id": node.id,
            "name": node.name,
            "node_type": "CONFERENCING",
            "system_location": node.system_location,
            "maintenance_mode": node.maintenance_mode,
            "maintenance_mode_reason": node.maintenance_mode_reason,
            "media_load": round(node.reported_media_load, 6),
            "max_hd_calls": node.max_hd_calls,
            "max_full_hd_calls": node.max_hd_calls // 2,
            "max_sd_calls": node.max_hd_calls * 2,
            "max_audio_calls": node.max_hd_calls * 16,
            "max_media_tokens": node.max_hd_calls * TOKENS_PER_HD,
            "media_tokens_used": node.calls * TOKENS_PER_HD,
            "signaling_count": node.calls,
            "boot_time": node.boot_time,
            "last_contacted": node.last_contacted,
            "resource_uri": f"{STATUS}/worker_vm/{node.id}/",
        }
        for key in node.missing:
            record.pop(key, None)
        for key, raw in node.raw.items():
            record[key] = _Raw(raw)
        return record

    def _participants(self) -> list[dict[str, Any]]:
        out = []
        for node in self.nodes.values():
            for _ in range(max(0, node.calls)):
                record = _participant(len(out), node.address)
                record["system_location"] = node.system_location
                out.append(record)
        out.extend(dict(p) for p in self.stray_participants)
        return out

    def _licences(self) -> dict[str, Any]:
        teams_calls = sum(
            n["call_count"]
            for n in self.teams_nodes.values()
            if isinstance(n.get("call_count"), int) and n["call_count"] > 0
        )
        participants = sum(max(0, n.calls) for n in self.nodes.values())
        record = {
            "audio_count": 0,
            "audio_total": 0,
            "port_count": teams_calls + participants,
            "port_total": 100,
            "system_count": len(self.nodes),
            "system_total": 100,
            "teams_count": 1,  # tenants configured, not calls
            "teams_total": 1,
            "vmr_count": 0,
            "vmr_total": 1000,
            "resource_uri": f"{STATUS}/licensing/1/",
        }
        record.update(self.licensing)
        return record

    def _page(
        self, path: str, query: dict[str, str], objects: list[dict[str, Any]]
    ) -> tuple[int, dict[str, str], bytes]:
        limit = int(query.get("limit", DEFAULT_LIMIT))
        offset = int(query.get("offset", 0))
        chunk = objects[offset : offset + limit] if limit else objects[offset:]
        more = bool(limit) and offset + limit < len(objects)
        # Tastypie's meta.next keeps the request's filters and moves the offset on.
        following = {**query, "limit": limit, "offset": offset + limit}
        nxt: str | None = f"{path}?{urlencode(following)}" if more else None
        for pattern, link in self._next_links:
            if pattern.search(path):
                nxt = link.replace("{n}", str(next(self._counter)))
        meta = {
            "limit": limit,
            "offset": offset,
            "total_count": len(objects),
            "next": nxt,
            "previous": f"{path}?{urlencode({'limit': limit, 'offset': max(0, offset - limit)})}"
            if offset
            else None,
        }
        return _json(200, {"meta": meta, "objects": chunk})


_HISTORY_FILTER = re.compile(r"^(start_time|end_time)__(gte|gt|lte|lt)$")


def _history_select(records: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    """Tastypie's time filters and ``order_by`` over the history records."""

    def moment(text: Any) -> float | None:
        if not isinstance(text, str):
            return None
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()

    ops = {
        "gte": lambda a, b: a >= b,
        "gt": lambda a, b: a > b,
        "lte": lambda a, b: a <= b,
        "lt": lambda a, b: a < b,
    }
    out = list(records)
    for key, value in query.items():
        m = _HISTORY_FILTER.match(key)
        if m is None:
            continue
        bound = moment(value)
        out = [
            r
            for r in out
            if (t := moment(r.get(m[1]))) is not None and bound is not None and ops[m[2]](t, bound)
        ]
    order = query.get("order_by", "")
    if order.lstrip("-") in ("start_time", "end_time"):
        key = order.lstrip("-")
        out.sort(key=lambda r: moment(r.get(key)) or 0.0, reverse=order.startswith("-"))
    return out


def _calls_for(media_load: float, max_hd_calls: int) -> int:
    return round(media_load / 100.0 * max_hd_calls)


def _participant(number: int, node_address: str) -> dict[str, Any]:
    """A participant status record (field names from go-infinity-sdk ``Participant``)."""
    uuid = f"00000000-0000-4000-8000-{number:012d}"
    return {
        "id": uuid,
        "call_uuid": uuid,
        "conference": "meeting",
        "display_name": f"participant {number}",
        "call_direction": "in",
        "has_media": True,
        "media_node": node_address,
        "signalling_node": node_address,
        "proxy_node": None,
        "system_location": "",
        "service_type": "gateway",
        "protocol": "SIP",
        "role": "guest",
        "connect_time": "2026-11-18T08:55:00.000000",
        "resource_uri": f"{STATUS}/participant/{uuid}/",
    }


def _node_config(node: _Node, locations: Mapping[str, int]) -> dict[str, Any]:
    return {
        "id": node.id,
        "name": node.name,
        "hostname": node.name,
        "address": node.address,
        "cloud_bursting": node.cloud_bursting,
        "maintenance_mode": node.maintenance_mode,
        "maintenance_mode_reason": node.maintenance_mode_reason,
        "node_type": "CONFERENCING",
        "system_location": f"{CONFIGURATION}/system_location/{locations[node.system_location]}/",
        "resource_uri": f"{CONFIGURATION}/worker_vm/{node.id}/",
    }


# Field types and nullability of the modelled resources, as Pexip's client models give them
# (pointer types are nullable): go-infinity-sdk status/models.go, config/*_model.go.
SCHEMAS: dict[str, dict[str, tuple[str, bool]]] = {
    f"{STATUS}/teamsnode/": {
        "call_count": ("integer", False),
        "eventhub_id": ("string", True),
        "heartbeat_time": ("datetime", True),
        "id": ("string", False),
        "instance_status": ("string", True),
        "ip_address": ("string", False),
        "max_calls": ("integer", True),
        "media_load": ("integer", False),
        "name": ("string", False),
        "private_ip_address": ("string", False),
        "resource_uri": ("string", False),
        "scaleset_id": ("string", False),
        "start_time": ("datetime", True),
        "state": ("string", True),
    },
    f"{STATUS}/worker_vm/": {
        "boot_time": ("datetime", True),
        "configuration_id": ("integer", False),
        "id": ("integer", False),
        "last_contacted": ("datetime", True),
        "maintenance_mode": ("boolean", False),
        "maintenance_mode_reason": ("string", False),
        "max_audio_calls": ("integer", False),
        "max_full_hd_calls": ("integer", False),
        "max_hd_calls": ("integer", False),
        "max_media_tokens": ("integer", False),
        "max_sd_calls": ("integer", False),
        "media_load": ("integer", False),
        "media_tokens_used": ("integer", False),
        "name": ("string", False),
        "node_type": ("string", False),
        "resource_uri": ("string", False),
        "signaling_count": ("integer", False),
        "system_location": ("string", False),
    },
    f"{STATUS}/participant/": {
        "call_direction": ("string", False),
        "call_uuid": ("string", False),
        "conference": ("string", False),
        "connect_time": ("datetime", True),
        "display_name": ("string", False),
        "has_media": ("boolean", False),
        "id": ("string", False),
        "media_node": ("string", False),
        "protocol": ("string", False),
        "proxy_node": ("string", True),
        "resource_uri": ("string", False),
        "role": ("string", False),
        "service_type": ("string", False),
        "signalling_node": ("string", False),
        "system_location": ("string", False),
    },
    f"{STATUS}/licensing/": {
        "audio_count": ("integer", False),
        "audio_total": ("integer", False),
        "port_count": ("integer", False),
        "port_total": ("integer", False),
        "resource_uri": ("string", False),
        "system_count": ("integer", False),
        "system_total": ("integer", False),
        "teams_count": ("integer", False),
        "teams_total": ("integer", False),
        "vmr_count": ("integer", False),
        "vmr_total": ("integer", False),
    },
    f"{CONFIGURATION}/teams_proxy/": {
        "address": ("string", False),
        "azure_tenant": ("related", False),
        "description": ("string", False),
        "eventhub_id": ("string", True),
        "id": ("integer", False),
        "min_number_of_instances": ("integer", False),
        "name": ("string", False),
        "notifications_enabled": ("boolean", False),
        "notifications_queue": ("string", True),
        "port": ("integer", False),
        "resource_uri": ("string", False),
        "updated": ("datetime", True),
    },
    f"{CONFIGURATION}/scheduled_scaling/": {
        "enabled": ("boolean", False),
        "fri": ("boolean", False),
        "id": ("integer", False),
        "instances_to_add": ("integer", False),
        "local_timezone": ("string", False),
        "minutes_in_advance": ("integer", False),
        "mon": ("boolean", False),
        "policy_name": ("string", False),
        "policy_type": ("string", False),
        "resource_identifier": ("string", False),
        "resource_uri": ("string", False),
        "sat": ("boolean", False),
        "start_date": ("string", False),
        "sun": ("boolean", False),
        "thu": ("boolean", False),
        "time_from": ("string", False),
        "time_to": ("string", False),
        "tue": ("boolean", False),
        "updated": ("datetime", True),
        "wed": ("boolean", False),
    },
    f"{CONFIGURATION}/worker_vm/": {
        "address": ("string", False),
        "cloud_bursting": ("boolean", False),
        "hostname": ("string", False),
        "id": ("integer", False),
        "maintenance_mode": ("boolean", False),
        "maintenance_mode_reason": ("string", False),
        "name": ("string", False),
        "node_type": ("string", False),
        "resource_uri": ("string", False),
        "system_location": ("related", False),
    },
}


def _schema(fields: Mapping[str, tuple[str, bool]]) -> dict[str, Any]:
    """Tastypie's schema answer."""
    return {
        "allowed_detail_http_methods": ["get"],
        "allowed_list_http_methods": ["get"],
        "default_format": "application/json",
        "default_limit": DEFAULT_LIMIT,
        "fields": {
            name: {
                "blank": nullable,
                "default": "No default provided.",
                "help_text": "",
                "nullable": nullable,
                "readonly": True,
                "type": kind,
                "unique": name in ("id", "resource_uri"),
            }
            for name, (kind, nullable) in fields.items()
        },
        "filtering": {},
        "ordering": [],
    }


class _Raw:
    """A value served as raw JSON text."""

    def __init__(self, text: str) -> None:
        self.text = text


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    raws: dict[str, str] = {}

    def encode(value: Any) -> Any:
        if isinstance(value, _Raw):
            token = f"__raw_{len(raws)}__"
            raws[token] = value.text
            return token
        raise TypeError(type(value).__name__)

    text = json.dumps(body, default=encode)
    for token, raw in raws.items():
        text = text.replace(json.dumps(token), raw)
    return status, {"Content-Type": "application/json"}, text.encode()


class _Handler(QuietHandler):
    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        fake = cast(FakeServer, self.server).fake
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, extra, payload = fake.handle(self.command.upper(), self.path, headers, raw)
        except Exception as error:  # a bug in the fake: answer rather than hang
            status, extra, payload = 500, {}, repr(error).encode()
        action = extra.pop(_ACTION, "")
        delay = float(extra.pop(_DELAY, 0.0))
        if action == "reset":
            # SO_LINGER 0: close() sends a TCP RST, as a dropped connection looks to the client.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if delay:
            time.sleep(delay)
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if action == "truncate":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve
