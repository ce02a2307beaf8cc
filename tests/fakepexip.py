"""In-process fake of a Pexip Infinity Management Node's REST API, over HTTPS.

Serves the status and configuration endpoints the autoscaler uses, Tastypie style
(``{"meta": {"limit", "next", "offset", "previous", "total_count"}, "objects": [...]}``, paged
with ``limit``/``offset`` and a relative ``meta.next``), with HTTP basic authentication and a
self-signed certificate made for the test (``ca_file``).

Behaviour worth modelling: a Conferencing Node put into maintenance takes no new calls and its
``media_load`` decays to zero over the next ``maintenance_polls`` reads of the status list, as
its calls end. Faults: ``inject_fault(path_regex, status=…, body=…)`` answers the next matching
requests with an error or a raw (possibly malformed) body.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.tls import FakeServer, QuietHandler, serve_tls, write_certificate

STATUS = "/api/admin/status/v1"
CONFIGURATION = "/api/admin/configuration/v1"
DEFAULT_LIMIT = 20
"""Pexip's default page size when ``limit`` is not given."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: str
    remaining: int


@dataclass
class _Node:
    """A Conferencing Node: status and configuration share the id."""

    id: int
    name: str
    system_location: str
    max_hd_calls: int
    media_load: float = 0.0
    maintenance_mode: bool = False
    maintenance_mode_reason: str = ""
    boot_time: str = "2026-11-18T07:00:00.000000"
    last_contacted: str = "2026-11-18T09:00:00.000000"
    drain_step: float = 0.0
    """Load removed per status poll while in maintenance."""
    missing: set[str] = field(default_factory=set)


class FakePexip:
    """Fake Management Node. State is plain attributes guarded by one lock."""

    def __init__(
        self,
        directory: Path,
        *,
        username: str = "admin",
        password: str = "s3cret",
        maintenance_polls: int = 2,
    ) -> None:
        self.username = username
        self.password = password
        self.maintenance_polls = maintenance_polls
        self.teams_nodes: dict[str, dict[str, Any]] = {}
        self.nodes: dict[str, _Node] = {}
        self.teams_proxies: dict[int, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._requests: list[Request] = []
        self._faults: list[_Fault] = []
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

    # -- state API ----------------------------------------------------------------------------

    def add_teams_node(
        self,
        name: str,
        *,
        call_count: int = 0,
        max_calls: int = 16,
        scaleset_id: str = "",
        instance_status: str = "Running",
    ) -> None:
        with self._lock:
            self.teams_nodes[name] = {
                "name": name,
                "call_count": call_count,
                "max_calls": max_calls,
                "media_load": round(100.0 * call_count / max_calls) if max_calls else 0,
                "instance_status": instance_status,
                "state": "Connected",
                "scaleset_id": scaleset_id,
                "heartbeat_time": "2026-11-18T09:00:00.000000",
                "start_time": "2026-11-18T07:00:00.000000",
                "id": len(self.teams_nodes) + 1,
                "resource_uri": f"{STATUS}/teamsnode/{len(self.teams_nodes) + 1}/",
            }

    def set_calls(self, name: str, calls: int) -> None:
        with self._lock:
            self.teams_nodes[name]["call_count"] = calls

    def add_teams_proxy(
        self, proxy_id: int, name: str, *, min_number_of_instances: int = 1
    ) -> None:
        with self._lock:
            self.teams_proxies[proxy_id] = {
                "id": proxy_id,
                "name": name,
                "description": "",
                "address": f"{name}.example.com",
                "port": 443,
                "azure_tenant": f"{CONFIGURATION}/azure_tenant/1/",
                "min_number_of_instances": min_number_of_instances,
                "eventhub_id": "Endpoint=sb://example.servicebus.windows.net/",
                "resource_uri": f"{CONFIGURATION}/teams_proxy/{proxy_id}/",
            }

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
    ) -> None:
        with self._lock:
            self.nodes[name] = _Node(
                id=len(self.nodes) + 1,
                name=name,
                system_location=system_location,
                max_hd_calls=max_hd_calls,
                media_load=media_load,
                maintenance_mode=maintenance_mode,
                boot_time=boot_time,
                last_contacted=last_contacted,
            )

    def set_media_load(self, name: str, media_load: float) -> None:
        with self._lock:
            self.nodes[name].media_load = media_load

    def drop_field(self, name: str, key: str) -> None:
        """Make a teams node or Conferencing Node's status record lack a field."""
        with self._lock:
            if name in self.teams_nodes:
                self.teams_nodes[name].pop(key, None)
            else:
                self.nodes[name].missing.add(key)

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
            self._requests.append(Request(method, parts.path, query, body))
            if not self._authorised(headers.get("authorization", "")):
                return 401, {"WWW-Authenticate": 'Basic realm="Pexip"'}, b"Authorization Required"
            for fault in self._faults:
                if fault.method in ("*", method) and fault.pattern.search(parts.path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.status, {"Content-Type": "application/json"}, fault.body.encode()
            return self._route(method, parts.path, query, body)

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
        if method == "GET" and path == f"{STATUS}/teamsnode/":
            return self._page(path, query, [dict(n) for n in self.teams_nodes.values()])
        if method == "GET" and path == f"{STATUS}/worker_vm/":
            return self._page(path, query, [self._poll(n) for n in self.nodes.values()])
        if method == "GET" and path == f"{CONFIGURATION}/teams_proxy/":
            return self._page(path, query, [dict(p) for p in self.teams_proxies.values()])
        if method == "GET" and path == f"{CONFIGURATION}/worker_vm/":
            return self._page(path, query, [_node_config(n) for n in self.nodes.values()])
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
                    node.drain_step = node.media_load / max(1, self.maintenance_polls)
                node.maintenance_mode = on
            if "maintenance_mode_reason" in body:
                node.maintenance_mode_reason = str(body["maintenance_mode_reason"])
            return 202, {}, b""
        return _json(404, {"error": f"no endpoint {method} {path}"})

    def _poll(self, node: _Node) -> dict[str, Any]:
        """One status read; a node in maintenance loses load as its calls end."""
        if node.maintenance_mode and node.media_load > 0:
            node.media_load = max(0.0, node.media_load - max(node.drain_step, 1e-9))
            if node.media_load < 1e-6:
                node.media_load = 0.0
        record = {
            "id": node.id,
            "name": node.name,
            "node_type": "CONFERENCING",
            "system_location": node.system_location,
            "maintenance_mode": node.maintenance_mode,
            "maintenance_mode_reason": node.maintenance_mode_reason,
            "media_load": round(node.media_load, 6),
            "max_hd_calls": node.max_hd_calls,
            "max_full_hd_calls": node.max_hd_calls // 2,
            "max_sd_calls": node.max_hd_calls * 2,
            "max_audio_calls": node.max_hd_calls * 16,
            "max_media_tokens": node.max_hd_calls * 18,
            "media_tokens_used": round(node.media_load / 100 * node.max_hd_calls * 18),
            "boot_time": node.boot_time,
            "last_contacted": node.last_contacted,
            "resource_uri": f"{STATUS}/worker_vm/{node.id}/",
        }
        for key in node.missing:
            record.pop(key, None)
        return record

    def _page(
        self, path: str, query: dict[str, str], objects: list[dict[str, Any]]
    ) -> tuple[int, dict[str, str], bytes]:
        limit = int(query.get("limit", DEFAULT_LIMIT))
        offset = int(query.get("offset", 0))
        chunk = objects[offset : offset + limit] if limit else objects[offset:]
        more = bool(limit) and offset + limit < len(objects)
        meta = {
            "limit": limit,
            "offset": offset,
            "total_count": len(objects),
            "next": f"{path}?{urlencode({'limit': limit, 'offset': offset + limit})}"
            if more
            else None,
            "previous": f"{path}?{urlencode({'limit': limit, 'offset': max(0, offset - limit)})}"
            if offset
            else None,
        }
        return _json(200, {"meta": meta, "objects": chunk})


def _node_config(node: _Node) -> dict[str, Any]:
    return {
        "id": node.id,
        "name": node.name,
        "hostname": node.name,
        "maintenance_mode": node.maintenance_mode,
        "maintenance_mode_reason": node.maintenance_mode_reason,
        "node_type": "CONFERENCING",
        "resource_uri": f"{CONFIGURATION}/worker_vm/{node.id}/",
    }


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


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
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve
