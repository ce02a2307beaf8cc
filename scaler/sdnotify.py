"""A small sd_notify client: tells systemd (``Type=notify``) that the daemon is ready, alive and
stopping, without a compiled dependency.

systemd passes the socket in ``NOTIFY_SOCKET`` (a filesystem path, or an abstract socket written
with a leading ``@``) and the watchdog period in ``WATCHDOG_USEC`` (microseconds, meant for the
process named by ``WATCHDOG_PID`` when set). Without ``NOTIFY_SOCKET`` every call is a no-op, so
the daemon behaves the same under systemd, in a container and in a terminal.

Messages are single datagrams of ``KEY=value`` lines; a failed send is logged once and never
raised: supervision is a courtesy to the service manager, not a reason to stop scaling.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

from scaler.logs import get_logger


class Notifier:
    """Sends ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1`` and ``STATUS=…`` to systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(env)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._warned = False
        self.ready_sent = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """Send one datagram of ``KEY=value`` lines; ``True`` if it was sent."""
        if self.address is None or not fields:
            return False
        payload = "\n".join(f"{key}={_one_line(value)}" for key, value in fields.items())
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                self._sock.sendto(payload.encode("utf-8"), self.address)
            except OSError as err:
                if not self._warned:
                    get_logger().warning("sdnotify.failed", error=str(err))
                    self._warned = True
                return False
        return True

    def ready(self, status: str = "") -> None:
        """``READY=1`` (once): the first tick has completed."""
        if self.ready_sent:
            return
        fields = {"READY": "1"}
        if status:
            fields["STATUS"] = status
        self.ready_sent = self.send(**fields) or not self.enabled

    def watchdog(self) -> None:
        """``WATCHDOG=1``: the loop is ticking. Only called while ticking is healthy."""
        self.send(WATCHDOG="1")

    def status(self, text: str) -> None:
        self.send(STATUS=text)

    def stopping(self, status: str = "stopping") -> None:
        self.send(STOPPING="1", STATUS=status)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode("utf-8")  # abstract namespace socket
    if value.startswith("/"):
        return value
    return None  # vsock and other forms are not used by this daemon


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """The watchdog period in seconds, or ``None`` when systemd wants no keep-alive from us."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


def _one_line(value: str) -> str:
    return " ".join(str(value).split())
