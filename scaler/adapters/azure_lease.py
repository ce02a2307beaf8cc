"""Leader election over an Azure Blob lease, and the state blob the leader writes.

Replicas race to lease one well-known blob (``[ha] container``/``blob``); the holder is the
leader and the only one that actuates. A background thread renews the lease every
``renew_every`` seconds (a third of the lease by default) and standbys retry acquiring it twice
as often, so a standby takes over about one lease period after the leader stops renewing.

Fencing: ``is_leader()`` is a clock comparison, never a network call. It is true only while the
monotonic time is before *start of the last successful acquire/renew request* + lease − margin,
so a leader whose renewals hang or fail stops writing before Azure could hand the lease to
another replica; a failed renewal ends leadership at once.

Works with a connection string (Azurite, shared keys) or an account URL reached with the
process's one Azure credential.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobLeaseClient, BlobServiceClient

from scaler.adapters.azure import CallObserver, translate
from scaler.config_model import HaConfig
from scaler.errors import AdapterError
from scaler.logs import get_logger


def default_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class BlobLeader:
    """``LeaderLease`` over ``BlobLeaseClient``; ``start()`` runs the renewal thread."""

    def __init__(
        self,
        cfg: HaConfig,
        *,
        credential: TokenCredential | None = None,
        ca_bundle: str | None = None,
        observer: CallObserver | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.identity = cfg.identity or default_identity()
        self._observer = observer
        self._monotonic = monotonic
        timeout = min(5.0, cfg.lease_seconds / 5.0)  # a renewal must not outlast the lease
        kwargs: dict[str, Any] = {
            "retry_total": 1,
            "connection_timeout": timeout,
            "read_timeout": timeout,
        }
        if ca_bundle:
            kwargs["connection_verify"] = ca_bundle
        if cfg.connection_string:
            self.service = BlobServiceClient.from_connection_string(cfg.connection_string, **kwargs)
        else:
            self.service = BlobServiceClient(cfg.account_url, credential=credential, **kwargs)
        self.container = self.service.get_container_client(cfg.container)
        self.blob = self.container.get_blob_client(cfg.blob)
        self.lease = BlobLeaseClient(self.blob, lease_id=str(uuid.uuid4()))
        self._valid_until = 0.0
        self._role = "unknown"
        self._prepared = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.log = get_logger(identity=self.identity)

    # -- LeaderLease ----------------------------------------------------------------------------

    def is_leader(self) -> bool:
        return self._monotonic() < self._valid_until

    @property
    def role(self) -> str:
        return "leader" if self.is_leader() else self._role

    # -- the renewal loop -----------------------------------------------------------------------

    def start(self) -> None:
        """Try once now (so the first tick knows its role), then keep trying in a thread."""
        self.step()
        self._thread = threading.Thread(target=self._loop, name="leader-lease", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._next_wait()):
            try:
                self.step()
            except Exception:  # never let the thread die: leadership would just lapse
                self._valid_until = 0.0
                self.log.exception("leader.step_failed")

    def _next_wait(self) -> float:
        every = self.cfg.renew_every
        return every if self.is_leader() else every / 2.0

    def step(self) -> bool:
        """One acquire (standby) or renew (leader) attempt; returns whether we lead after it."""
        with self._lock:
            if self._stop.is_set():
                return False
            was = self.is_leader()
            began = self._monotonic()
            try:
                if not self._prepared:
                    self._prepare()
                if was:
                    self._call("lease.renew", self.lease.renew)
                else:
                    self._call(
                        "lease.acquire",
                        lambda: self.lease.acquire(lease_duration=self.cfg.lease_seconds),
                    )
            except AdapterError as err:
                self._valid_until = 0.0
                contended = err.status == 409  # someone else holds the lease
                if contended and self._role != "standby":
                    self.log.info("leader.standby", error=str(err))
                if contended or self._role == "leader":
                    self._role = "standby"
                if was:
                    self.log.error("leader.lost", error=str(err))
                elif not contended:
                    self.log.warning("leader.acquire_failed", error=str(err))
                return False
            self._valid_until = began + self.cfg.lease_seconds - self.cfg.margin_seconds
            self._role = "leader"
            if not was:
                self.log.info("leader.acquired", lease_seconds=self.cfg.lease_seconds)
                self._label()
            return True

    def _prepare(self) -> None:
        """Create the container and the (empty) lease blob if they are missing."""
        try:
            self._call("lease.create_container", self.container.create_container)
        except AdapterError as err:
            if err.status != 409:
                raise
        try:
            self._call("lease.create_blob", lambda: self.blob.upload_blob(b"", overwrite=False))
        except AdapterError as err:
            if err.status not in (409, 412):  # exists, or exists and leased
                raise
        self._prepared = True

    def holder(self) -> str | None:
        """Who holds the lease, as the leader named itself on the lease blob (``_label``);
        ``None`` when that cannot be read. For messages only: leadership is the lease."""
        try:
            props = self._call("lease.holder", self.blob.get_blob_properties)
        except AdapterError:
            return None
        return (props.metadata or {}).get("leader") or None

    def _label(self) -> None:
        """Name the leader on the lease blob, for operators looking at the storage account."""
        try:
            self._call(
                "lease.label",
                lambda: self.blob.set_blob_metadata({"leader": self.identity}, lease=self.lease),
            )
        except AdapterError as err:
            self.log.warning("leader.label_failed", error=str(err))

    def _call(self, operation: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        outcome = "ok"
        try:
            return fn()
        except AzureError as exc:
            outcome = "error"
            err = translate(exc, operation)
            if isinstance(exc, ResourceExistsError) or (
                isinstance(exc, HttpResponseError) and exc.status_code == 409
            ):
                err.status = 409
            raise err from exc
        finally:
            if self._observer is not None:
                self._observer(operation, outcome, time.perf_counter() - start)

    def stop(self, *, release: bool = True, budget: float | None = None) -> None:
        """Stop renewing; with ``release`` hand the lease back so a standby takes over at once.
        ``release=False`` is what a crash looks like: the lease runs out on its own. Bounded to
        a few seconds, or to ``budget`` seconds (what is left of the shutdown deadline), as it
        runs inside systemd's stop timeout: if an attempt is still hanging, or the budget is
        spent, the lease is left to run out."""
        self._stop.set()
        end = time.monotonic() + (7.0 if budget is None else max(0.0, budget))

        def left(most: float) -> float:
            return max(0.0, min(most, end - time.monotonic()))

        if self._thread is not None:
            self._thread.join(timeout=left(2.0))
        if not self._lock.acquire(timeout=left(3.0)):
            self._valid_until = 0.0
            return
        try:
            held = self.is_leader()
            self._valid_until = 0.0
            self._role = "standby"
            wait = left(2.0)
            if release and held and wait > 0.1:
                try:
                    self._call(
                        "lease.release",
                        lambda: self.lease.release(
                            connection_timeout=wait, read_timeout=wait, retry_total=0
                        ),
                    )
                    self.log.info("leader.released")
                except AdapterError as err:
                    self.log.warning("leader.release_failed", error=str(err))
        finally:
            self._lock.release()

    def close(self) -> None:
        self.service.close()


class BlobSharedState:
    """``SharedState``: the daemon's state document as a blob next to the lease blob. Only the
    current leader writes it (checked right before the write)."""

    def __init__(self, leader: BlobLeader, name: str, *, read_only: bool = False) -> None:
        self._leader = leader
        self._blob = leader.container.get_blob_client(name)
        self.read_only = read_only
        """A dry-run observer's view: it reads the leader's state and never writes."""

    def load(self) -> bytes | None:
        try:
            data = self._leader._call("state.download", lambda: self._blob.download_blob())
            return bytes(data.readall())
        except AdapterError as err:
            if isinstance(err.__cause__, ResourceNotFoundError):
                return None
            raise

    def save(self, data: bytes) -> None:
        if self.read_only or not self._leader.is_leader():
            return
        self._leader._call("state.upload", lambda: self._blob.upload_blob(data, overwrite=True))
