"""In-process fake of the Log Analytics query API (``POST /v1/workspaces/{id}/query``) over HTTPS.

Shaped after Microsoft's published example (azure-rest-api-specs, operationalinsights data-plane
v1 ``oms-post-example.json``, copied in ../shared/azure-rest-examples/monitor/): the request body
is ``{"query": KQL, "timespan": ISO-8601 interval}``, the answer
``{"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [[...]]}]}`` with
row cells as strings even in ``long``/``real`` columns, and ``null`` where a value is absent.
Errors are ``{"error": {"code", "message"}}`` (https://learn.microsoft.com/azure/azure-monitor/
logs/api/errors); a partial answer (a query that hit a service limit) carries both ``tables``
and ``error``, which ``LogsQueryClient`` returns as ``LogsQueryPartialResult``.

The fake does not run KQL: a test sets the rows the query yields (``add_rows``) and the fake
serves those inside the request's ``timespan`` (the service applies it on top of the query),
recording each query text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from tests.tls import FakeServer, QuietHandler, serve_tls, write_certificate

COLUMNS = (("TimeGenerated", "datetime"), ("pool", "string"), ("calls", "long"))
"""The table the query contract asks for (scaler.adapters.azure_logs)."""


@dataclass(frozen=True)
class LogsRequest:
    workspace: str
    query: str
    timespan: str
    headers: dict[str, str]


TRANSPORT_FAULTS = ("raw", "reset", "truncate", "stall")


@dataclass(frozen=True)
class _Transport:
    """A transport fault (as ``FakeAzure.inject_transport_fault`` has them): ``raw`` answers
    ``status`` with ``body`` as given, ``reset`` drops the connection without an answer,
    ``truncate`` announces the full length and sends half, ``stall`` answers after ``delay``."""

    kind: str
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


@dataclass
class _Workspace:
    rows: list[list[Any]] = field(default_factory=list)
    columns: tuple[tuple[str, str], ...] = COLUMNS
    partial: str = ""


class FakeLogs:
    """Fake Log Analytics query endpoint; ``url`` is the ``logs_url``."""

    def __init__(self, directory: Path) -> None:
        self._lock = threading.RLock()
        self._workspaces: dict[str, _Workspace] = {}
        self._requests: list[LogsRequest] = []
        self._faults: list[tuple[int, str, str]] = []
        self._transport: list[_Transport] = []
        self._server: FakeServer | None = None
        self.ca_file, self._key_file = write_certificate(directory / "logs", "fakelogs")

    def start(self) -> Self:
        self._server, _ = serve_tls(_Handler, self, self.ca_file, self._key_file, name="fakelogs")
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

    # -- state API ------------------------------------------------------------------------

    def add_rows(
        self,
        workspace: str,
        pool: str,
        points: Sequence[tuple[dt.datetime, Any]],
    ) -> None:
        """Rows ``(TimeGenerated, pool, calls)``; a number is served as text (as Microsoft's
        example serves ``long`` cells), ``None`` as ``null``, anything else as given."""
        with self._lock:
            ws = self._workspaces.setdefault(workspace.lower(), _Workspace())
            for moment, calls in points:
                cell = str(calls) if isinstance(calls, int | float) else calls
                ws.rows.append([_time(moment), pool, cell])

    def set_columns(self, workspace: str, columns: Sequence[tuple[str, str]]) -> None:
        """Serve the table with other columns (a query that breaks the contract)."""
        with self._lock:
            ws = self._workspaces.setdefault(workspace.lower(), _Workspace())
            ws.columns = tuple(columns)

    def set_partial(self, workspace: str, message: str) -> None:
        """Answer with the rows and a ``PartialError`` (a query that hit a service limit)."""
        with self._lock:
            self._workspaces.setdefault(workspace.lower(), _Workspace()).partial = message

    def inject_fault(self, status: int, code: str = "InternalServerError", times: int = 1) -> None:
        with self._lock:
            self._faults.extend([(status, code, f"injected {status}")] * times)

    def inject_transport_fault(
        self,
        kind: str,
        *,
        status: int = 200,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Fail the next ``times`` queries at the transport (``TRANSPORT_FAULTS``)."""
        assert kind in TRANSPORT_FAULTS, kind
        fault = _Transport(kind, status, body, content_type, tuple((headers or {}).items()), delay)
        with self._lock:
            self._transport.extend([fault] * times)

    def clear_faults(self) -> None:
        """Disarm every injected fault (the rows stay)."""
        with self._lock:
            self._faults.clear()
            self._transport.clear()

    def _take_transport(self) -> _Transport | None:
        with self._lock:
            return self._transport.pop(0) if self._transport else None

    @property
    def requests(self) -> list[LogsRequest]:
        with self._lock:
            return list(self._requests)

    # -- serving --------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        m = re.fullmatch(r"/v1/workspaces/([^/]+)/query/?", path.split("?")[0])
        if method != "POST" or m is None:
            return 404, _error("PathNotFoundError", f"no endpoint {method} {path}")
        if not headers.get("authorization", "").lower().startswith("bearer "):
            return 403, _error("InvalidTokenError", "The provided authentication is not valid")
        try:
            body = json.loads(raw)
            query, timespan = str(body["query"]), str(body.get("timespan") or "")
        except (ValueError, KeyError, TypeError):
            return 400, _error("BadArgumentError", "The request had some invalid properties")
        with self._lock:
            self._requests.append(LogsRequest(m[1], query, timespan, dict(headers)))
            if self._faults:
                status, code, message = self._faults.pop(0)
                return status, _error(code, message)
            ws = self._workspaces.get(m[1].lower())
            if ws is None:
                return 404, _error("WorkspaceNotFoundError", f"Workspace {m[1]} not found")
            start, end = _span(timespan)
            names = [c[0].lower() for c in ws.columns]
            rows = []
            for row in ws.rows:
                moment = dt.datetime.fromisoformat(str(row[0]).replace("Z", "+00:00"))
                if start <= moment < end:
                    by_name = dict(zip(("timegenerated", "pool", "calls"), row, strict=True))
                    rows.append([by_name.get(n) for n in names])
            answer: dict[str, Any] = {
                "tables": [
                    {
                        "name": "PrimaryResult",
                        "columns": [{"name": n, "type": t} for n, t in ws.columns],
                        "rows": rows,
                    }
                ]
            }
            if ws.partial:
                answer["error"] = {"code": "PartialError", "message": ws.partial}
            return 200, answer


def _time(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(timespan: str) -> tuple[dt.datetime, dt.datetime]:
    """``start/end`` as sent by ``LogsQueryClient`` for a (start, end) timespan."""
    first, _, last = timespan.partition("/")
    start = dt.datetime.fromisoformat(first.replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(last.replace("Z", "+00:00"))
    return start, end


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _Handler(QuietHandler):
    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        fake = cast(FakeServer, self.server).fake
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, body = fake.handle(self.command.upper(), self.path, headers, raw)
        except Exception as error:  # a bug in the fake: answer rather than hang
            status, body = 500, _error("InternalServerError", repr(error))
        payload, content_type, extra = json.dumps(body).encode(), "application/json", ()
        fault = fake._take_transport() if status != 404 else None
        if fault is not None and fault.kind == "reset":
            # SO_LINGER 0: close() sends a TCP RST, as a dropped connection looks to the client.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if fault is not None and fault.kind == "raw":
            status, payload, content_type = fault.status, fault.body, fault.content_type
            extra = fault.headers
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.delay)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if fault is not None and fault.kind == "truncate":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)

    do_GET = do_POST = _serve
