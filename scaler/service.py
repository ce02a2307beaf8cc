"""``run`` as a service: the daemon with its operations parts wired in.

Start-up order: Azure adapters (one credential, calls counted for Prometheus) → the leader lease
(first attempt made before the first tick, so the replica knows its role) → the state store →
the daemon → the HTTP endpoint → the loop. Shutdown runs the other way: the loop stops within
its deadline and saves the state (in-flight resizes included), then the lease is released so a
standby takes over at once, then the endpoint and the clients are closed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from scaler.config import Config
from scaler.daemon import Daemon
from scaler.errors import ConfigError
from scaler.health import CallMetrics, HttpEndpoint
from scaler.ports import SharedState
from scaler.sdnotify import Notifier
from scaler.state import StateFile, StateStore, state_dir


class WallClock:
    def now(self) -> float:
        return time.time()


def run_service(
    config: Config,
    *,
    stop: threading.Event,
    reload_config: Callable[[], Config],
    on_daemon: Callable[[Daemon], None] | None = None,
) -> bool:
    """Run until ``stop`` is set; ``False`` if a tick was stuck past the shutdown deadline.
    Raises ``ConfigError`` for settings only found wrong when the clients are built."""
    from scaler.adapters.pools import build_adapters

    registry = CollectorRegistry()
    calls = CallMetrics(registry)
    notifier = Notifier()
    adapters = build_adapters(config, clock=WallClock(), observer=calls)
    leader = None
    shared: SharedState | None = None
    identity = config.ha.identity or f"{socket.gethostname()}:{os.getpid()}"
    http: HttpEndpoint | None = None
    try:
        if config.ha.enabled:
            from scaler.adapters.azure_lease import BlobLeader, BlobSharedState

            ca = str(config.azure.ca_bundle) if config.azure.ca_bundle else None
            leader = BlobLeader(
                config.ha, credential=adapters.credential, ca_bundle=ca, observer=calls
            )
            identity = leader.identity
            shared = BlobSharedState(leader, config.ha.state_blob)
        directory = state_dir(config.daemon.state_dir)
        local = StateFile(directory) if directory is not None else None
        store = StateStore(local=local, shared=shared) if local or shared else None
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=WallClock(),
            leader=leader,
            store=store,
            notifier=notifier,
            reload_config=reload_config,
            identity=identity,
        )
        if on_daemon is not None:
            on_daemon(daemon)
        if config.http.enabled:
            try:
                http = HttpEndpoint(
                    daemon, registry=registry, bind=config.http.bind, port=config.http.port
                )
            except OSError as err:
                raise ConfigError(
                    f"http.port: cannot listen on {config.http.bind}:{config.http.port} "
                    f"({err.strerror}), got {config.http.port}"
                ) from err
            http.start()
        if leader is not None:
            leader.start()
        return daemon.run(stop)
    finally:
        if leader is not None:
            leader.stop(release=True)
            leader.close()
        if http is not None:
            http.stop()
        notifier.close()
        adapters.close()
