"""``run`` as a service: the daemon with its operations parts wired in.

Start-up order: Azure adapters (one credential, calls counted for Prometheus) → the leader lease
(first attempt made before the first tick, so the replica knows its role) → the state store →
the daemon → the HTTP endpoint → the loop. Shutdown runs the other way: the loop stops within
its deadline and saves the state (in-flight resizes included), then the lease is released so a
standby takes over at once (within what is left of the deadline), then the endpoint and the
clients are closed.

``run --dry-run`` with ``[ha]`` on is an **observer**, safe to start beside production: it never
asks for the lease (no acquire, no renew: production stays leader), never writes state (neither
the local file nor the state blob), and reads the leader's state blob, at start and whenever the
leader publishes a newer one, so its decisions follow production's stabilisation history.

``once`` with ``[ha]`` on (not a dry run) makes one short acquire attempt: if another replica
leads it writes nothing and says so (exit 1); if it gets the lease it releases it at the end.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from scaler.config import Config
from scaler.daemon import Daemon
from scaler.errors import ConfigError
from scaler.health import CallMetrics, HttpEndpoint
from scaler.logs import get_logger
from scaler.ports import SharedState
from scaler.sdnotify import Notifier
from scaler.state import StateFile, StateStore, state_dir

if TYPE_CHECKING:
    from scaler.adapters.azure_lease import BlobLeader


class WallClock:
    def now(self) -> float:
        return time.time()


class Observer:
    """``LeaderLease`` of a dry run with ``[ha]`` on: it never leads and never asks the lease.
    Its role reads ``standby`` (the documented role of a replica that does not write);
    ``/status`` says ``dry_run``."""

    role = "standby"

    def is_leader(self) -> bool:
        return False


def run_service(
    config: Config,
    *,
    stop: threading.Event,
    reload_config: Callable[[], Config],
    on_daemon: Callable[[Daemon], None] | None = None,
    allow_competing: bool = False,
) -> bool:
    """Run until ``stop`` is set; ``False`` if a tick was stuck past the shutdown deadline.
    Raises ``ConfigError`` for settings only found wrong when the clients are built."""
    from scaler.wiring import build_adapters

    registry = CollectorRegistry()
    calls = CallMetrics(registry)
    notifier = Notifier()
    adapters = build_adapters(
        config, clock=WallClock(), observer=calls, allow_competing=allow_competing
    )
    leader = None
    shared: SharedState | None = None
    identity = config.ha.identity or f"{socket.gethostname()}:{os.getpid()}"
    http: HttpEndpoint | None = None
    observer = config.ha.enabled and config.daemon.dry_run
    daemon: Daemon | None = None
    try:
        if config.ha.enabled:
            from scaler.adapters.azure_lease import BlobLeader, BlobSharedState

            ca = str(config.azure.ca_bundle) if config.azure.ca_bundle else None
            leader = BlobLeader(
                config.ha, credential=adapters.credential, ca_bundle=ca, observer=calls
            )
            identity = leader.identity
            shared = BlobSharedState(leader, config.ha.state_blob, read_only=observer)
            if observer:
                _say_observer(config, identity)
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=WallClock(),
            leader=Observer() if observer else leader,
            store=_state_store(config, shared),
            notifier=notifier,
            reload_config=reload_config,
            identity=identity,
            dry_run=True if observer else None,  # a reload cannot turn the observer into a writer
            stretch=adapters.azure.stretch_seconds,  # ARM's read/write budget running low
        )
        if on_daemon is not None:
            on_daemon(daemon)
        if config.http.enabled:
            http = _http_endpoint(config, daemon, registry)
            http.start()
        if leader is not None and not observer:
            leader.start()
        return daemon.run(stop)
    finally:
        if leader is not None:
            deadline = daemon.stop_deadline if daemon is not None else None
            budget = None if deadline is None else deadline - time.monotonic()
            leader.stop(release=True, budget=budget)  # the observer holds nothing: no request
            leader.close()
        if http is not None:
            http.stop()
        notifier.close()
        adapters.close()


def _say_observer(config: Config, identity: str) -> None:
    get_logger(identity=identity).info(
        "leader.observer",
        detail="dry run: the leader lease is never taken and no state is written; "
        "decisions start from the leader's published state",
        container=config.ha.container,
        state_blob=config.ha.state_blob,
    )


def _state_store(config: Config, shared: SharedState | None) -> StateStore | None:
    """The local state file (``daemon.state_dir``) and the shared state blob, either or both."""
    directory = state_dir(config.daemon.state_dir)
    local = StateFile(directory) if directory is not None else None
    return StateStore(local=local, shared=shared) if local or shared else None


def _http_endpoint(config: Config, daemon: Daemon, registry: CollectorRegistry) -> HttpEndpoint:
    """The ``[http]`` endpoint, bound (not yet serving); a port it cannot bind is a config
    error naming it."""
    try:
        return HttpEndpoint(daemon, registry=registry, bind=config.http.bind, port=config.http.port)
    except OSError as err:
        raise ConfigError(
            f"http.port: cannot listen on {config.http.bind}:{config.http.port} "
            f"({err.strerror}), got {config.http.port}"
        ) from err


class OnceRefused(Exception):
    """``once`` may not write: another replica leads, or the lease could not be asked."""


def take_lease_for_once(config: Config, credential: Any) -> BlobLeader:
    """One short, non-blocking attempt at the leader lease for ``once`` (``[ha]`` on, not a
    dry run); raises ``OnceRefused`` with the message to print when ``once`` must write
    nothing. The caller releases the lease at the end (``stop(release=True)``). While
    ``once`` runs, the lease is renewed as the daemon renews it, and every write is fenced by
    ``is_leader()`` as in the daemon."""
    from scaler.adapters.azure_lease import BlobLeader

    ca = str(config.azure.ca_bundle) if config.azure.ca_bundle else None
    leader = BlobLeader(config.ha, credential=credential, ca_bundle=ca)
    try:
        if leader.step():
            leader.start()  # renews in the background until released
            return leader
        if leader.role == "standby":  # the lease is held
            holder = leader.holder() or "unknown"
            raise OnceRefused(f"another replica leads ({holder}); once wrote nothing")
        raise OnceRefused(
            f"cannot take the leader lease ({config.ha.container}/{config.ha.blob}); "
            "once wrote nothing"
        )
    except BaseException:
        leader.stop(release=True)
        leader.close()
        raise
