"""Shared fixtures: small configs built in code, so each test shows what it varies; the
hypothesis profiles; Azurite, one per pytest process; the session-wide RBAC check.

The suite runs in parallel (``make unit``: two pytest-xdist workers per core): every test starts
its own fake servers on free loopback ports and writes only below its own temporary directory.
What a process shares is shared by design: one Azurite per process (each test uses a container
of its own), and the RBAC operations each process's fakes served, checked together at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests import rbac

SUB = "00000000-0000-0000-0000-000000000001"
ROOT = Path(__file__).resolve().parent.parent
HEALTHY_WAIT = 60.0
"""Seconds a test waits for something that happens when all is well (a process started and
ready, an event logged, a resize done): polled, so it costs nothing when it comes at once, and
generous, so a loaded machine (a process starting in 30 s under load 15) does not fail a
healthy run. What a test measures (a takeover within a lease period) keeps its own bound."""

# -- hypothesis: a fast profile for local runs, the thorough one in CI -------------------------
#
# ``ci`` (chosen by ``HYPOTHESIS_PROFILE=ci`` or by ``CI`` being set, as ``.ci/run`` does) runs
# every property with the example count its test asks for, derandomized so that CI is green or
# red for the code, never for the draw. ``dev`` runs a fifth of them (at least 10), randomly, for
# quick local runs. Neither has a per-example deadline: on a loaded machine a slow example is
# not a failure.
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow]
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)


def examples(thorough: int) -> int:
    """``max_examples`` for a property: ``thorough`` in CI, a fifth (at least 10) locally."""
    return thorough if PROFILE == "ci" else max(10, thorough // 5)


def vmss_id(name: str, rg: str = "cvi") -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/"
        f"virtualMachineScaleSets/{name}"
    )


def pool_table(name: str = "tc", **over: Any) -> dict[str, Any]:
    """One ``[[pools]]`` table as parsed TOML, with overrides."""
    table: dict[str, Any] = {
        "name": name,
        "resource_id": vmss_id(name),
        "vcpus_per_instance": 4,
        "quota_family": "standardFSv2Family",
        "calls_per_instance": 15,
        "min": 1,
        "max": 20,
        "boot_minutes": 20,
        # The fakes serve this metric as if another cvi-autoscaler published it: nothing else
        # writes Pexip/CVI, so a config must say so (metric.published_elsewhere).
        "metric": {
            "namespace": "Pexip/CVI",
            "name": "ActiveCalls",
            "published_elsewhere": True,
            "lag_minutes": 2,
        },
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }
    table.update(over)
    return table


def config_doc(*pools: dict[str, Any], **sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "azure": {"subscription_id": SUB, "location": "westeurope"},
        "pools": list(pools) or [pool_table()],
    }
    for key, value in sections.items():
        doc[key] = value
    return doc


# -- Azurite: one per pytest process -----------------------------------------------------------

AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
"""Azurite's well-known development key (public, emulator only)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Azurite blob service for this process (each xdist worker has its own, on a
    free port); yields its connection string. Tests share it through containers of their
    own, named with a random suffix."""
    if not AZURITE.exists() or shutil.which("node") is None:
        pytest.skip("Azurite is not installed: run `npm ci` (make test does)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    log = (workdir / "azurite.log").open("wb")
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = (workdir / "azurite.log").read_text(errors="replace")
                    pytest.fail(f"Azurite did not start: {err[-2000:]}")
                time.sleep(0.1)
        yield (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- the longest tests first ------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` run first (otherwise in collection order): pytest-xdist hands the
    first tests out one per worker, so each long one starts at once beside the short ones
    rather than being reached late and running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


# -- the session-wide RBAC check, over every worker -------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or the only process
        config.stash[_RBAC_DIR] = Path(tempfile.mkdtemp(prefix="cvi-rbac-"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: tell each worker where to leave what its fakes served."""
    node.workerinput["cvi_rbac_dir"] = str(node.config.stash[_RBAC_DIR])


def _rbac_dir(config: pytest.Config) -> Path:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return Path(workerinput["cvi_rbac_dir"])
    return config.stash[_RBAC_DIR]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    workerinput = getattr(config, "workerinput", None)
    directory = _rbac_dir(config)
    rbac.dump_observed(directory, workerinput["workerid"] if workerinput else "main")
    if workerinput is not None:
        return  # the controller checks what every worker saw
    try:
        problems = rbac.session_problems(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if problems:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("=", "RBAC check over every request the suite sent to FakeAzure")
            for line in problems:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_RBAC_DIR = pytest.StashKey[Path]()
