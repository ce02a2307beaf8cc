"""The bad-input corpus: every file in ``tests/corpus/`` is refused with exit 2 and one line per
problem naming the key path (configs) or the line (traces), and no secret value ever appears.

``configs/NAME.toml`` is validated with ``NAME.env`` (``KEY=VALUE`` lines, if present) as its
environment; ``traces/NAME.csv`` is backtested against ``trace-config.toml``. ``NAME.expect``
holds the fragment the error must contain. Every secret in the corpus is the text ``SECRETVALUE``.
Also here: the HTTP endpoint facing idle and stalled clients.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from scaler.cli import main
from scaler.health import HttpEndpoint

CORPUS = Path(__file__).resolve().parent / "corpus"
CONFIGS = sorted((CORPUS / "configs").glob("*.toml"))
TRACES = sorted((CORPUS / "traces").glob("*.csv"))
SECRET = "SECRETVALUE"
# A key path (``pools[0].max``, ``ha.conection_string``, ``CVI_AUTOSCALER__POOLS__3__MAX``)
# followed by a colon, or a line of the file.
NAMED = re.compile(r"(^|: )[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*|\[\d+\])*: |line \d+")


def _expect(path: Path) -> str:
    return path.with_suffix(".expect").read_text(encoding="utf-8").strip()


def _env(path: Path) -> dict[str, str]:
    env_file = path.with_suffix(".env")
    if not env_file.exists():
        return {}
    pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if line)
    return {k: v for k, v in pairs}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CVI_AUTOSCALER"):
            monkeypatch.delenv(key)


def _check_refusal(code: int, stdout: str, stderr: str, kind: str, expect: str) -> None:
    assert code == 2, (code, stdout, stderr)
    assert "Traceback" not in stderr + stdout
    assert SECRET not in stderr + stdout
    lines = stderr.splitlines()
    assert lines, "no message"
    for line in lines:
        assert line.startswith(f"{kind}: "), line
        assert NAMED.search(line[len(kind) + 2 :]), f"names no key path or line: {line}"
    assert any(expect in line for line in lines), (expect, lines)


def test_the_corpus_is_large_enough_and_every_case_says_what_it_expects() -> None:
    assert len(CONFIGS) >= 40 and len(TRACES) >= 10
    for path in (*CONFIGS, *TRACES):
        assert _expect(path), path


def test_the_base_configs_of_the_corpus_are_valid() -> None:
    for name in ("base.toml", "trace-config.toml"):
        result = CliRunner().invoke(main, ["validate", "--config", str(CORPUS / name)])
        assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_bad_config_is_refused_naming_the_key(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _env(path).items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["validate", "--config", str(path)])
    _check_refusal(result.exit_code, result.stdout, result.stderr, "config error", _expect(path))


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
def test_bad_trace_is_refused_naming_the_line(path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["backtest", "--config", str(CORPUS / "trace-config.toml"), "--trace", str(path)],
    )
    _check_refusal(result.exit_code, result.stdout, result.stderr, "trace error", _expect(path))
    assert all(line.startswith(f"trace error: {path} ") for line in result.stderr.splitlines())


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process (``timeout`` only guards a hang)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CVI_AUTOSCALER")}
    return subprocess.run(
        [sys.executable, "-m", "scaler", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
        check=False,
    )


def test_non_utf8_config_exits_2_without_a_traceback_in_a_real_process() -> None:
    path = CORPUS / "configs" / "non-utf8.toml"
    for command in ("validate", "run"):
        done = _cli(command, "--config", str(path))
        _check_refusal(done.returncode, done.stdout, done.stderr, "config error", _expect(path))


def test_validate_dev_zero_is_refused_instead_of_reading_for_ever() -> None:
    done = _cli("validate", "--config", "/dev/zero")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "config error: /dev/zero: not a regular file; the configuration must be a regular file\n"
    )


def test_a_config_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes((CORPUS / "base.toml").read_bytes() + b"#" * (16 << 20) + b"\n")
    result = CliRunner().invoke(main, ["validate", "--config", str(big)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"config error: {big}: larger than the limit of 16777216 bytes (16 MiB)\n"
    )


def test_a_misspelt_secret_from_the_environment_is_not_echoed_in_a_real_process() -> None:
    path = CORPUS / "configs" / "env-secret-in-misspelt-key.toml"
    done = _cli("validate", "--config", str(path), env=_env(path))
    _check_refusal(done.returncode, done.stdout, done.stderr, "config error", _expect(path))


def test_a_trace_spanning_fifty_years_is_refused_at_once_in_a_real_process() -> None:
    path = CORPUS / "traces" / "fifty-years-apart.csv"
    done = _cli("backtest", "--config", str(CORPUS / "trace-config.toml"), "--trace", str(path))
    _check_refusal(done.returncode, done.stdout, done.stderr, "trace error", _expect(path))


# -- the HTTP endpoint under idle and hostile clients -------------------------------------------


class _Alive:
    """What the endpoint reads of a daemon for /healthz (the endpoint never writes)."""

    ticks = 1

    def ticking_healthy(self) -> tuple[bool, float]:
        return True, 0.0


def _healthz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
        return int(resp.status)


@pytest.fixture
def endpoint() -> Iterator[HttpEndpoint]:
    http = HttpEndpoint(cast(Any, _Alive()), registry=CollectorRegistry(), bind="127.0.0.1", port=0)
    http.start()
    try:
        yield http
    finally:
        http.stop()


def test_400_idle_connections_do_not_make_400_threads(endpoint: HttpEndpoint) -> None:
    assert _healthz(endpoint.port) == 200
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) for _ in range(400)]
    try:
        # Connections are accepted in order, so once this answers all 400 have been accepted.
        assert _healthz(endpoint.port) == 200
        assert threading.active_count() <= before
        # Only the newest few may still wait for a request; the older ones were closed.
        assert endpoint.server.closed_idle >= 400 - endpoint.server.max_waiting
        assert idle[0].recv(1) == b""  # closed by the server, not kept for ever
    finally:
        for sock in idle:
            sock.close()


def test_a_silent_connection_is_closed_after_the_idle_timeout() -> None:
    http = HttpEndpoint(
        cast(Any, _Alive()),
        registry=CollectorRegistry(),
        bind="127.0.0.1",
        port=0,
        idle_timeout=0.2,
    )
    http.start()
    try:
        with socket.create_connection(("127.0.0.1", http.port), timeout=10) as silent:
            assert silent.recv(1) == b""  # the server hung up on its own
        with socket.create_connection(("127.0.0.1", http.port), timeout=10) as slow:
            slow.sendall(b"GET /healthz HTTP/1.0\r\n")  # and never finishes the request
            assert slow.recv(1) == b""
        assert _healthz(http.port) == 200
    finally:
        http.stop()


def test_64_slow_clients_cannot_starve_healthz() -> None:
    """Issue 20 case 6: four connections sending one header line every 2 s held all four
    workers, and ``/healthz`` timed out for as long as they trickled (a watchdog would restart
    a healthy daemon). The whole request head must now arrive within ``idle_timeout`` of
    connecting, and only a complete request reaches a worker: with 64 clients trickling,
    ``/healthz`` answers within a second, and the trickling clients are cut off at the
    deadline however steadily they send."""
    http = HttpEndpoint(
        cast(Any, _Alive()),
        registry=CollectorRegistry(),
        bind="127.0.0.1",
        port=0,
        idle_timeout=3.0,
    )
    http.start()
    slow = [socket.create_connection(("127.0.0.1", http.port), timeout=10) for _ in range(64)]
    stop = threading.Event()

    def trickle() -> None:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        while not stop.wait(0.25):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        for _ in range(4):
            started = time.monotonic()
            assert _healthz(http.port) == 200
            assert time.monotonic() - started < 1.0
        # the whole head is late: each slow client is closed although it never stopped
        deadline = time.monotonic() + 10
        while http.server.closed_idle < 64 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert http.server.closed_idle >= 64
        assert slow[0].recv(1) == b""
    finally:
        stop.set()
        sender.join(timeout=5)
        for sock in slow:
            sock.close()
        http.stop()


def test_an_oversized_request_head_is_closed_without_a_worker(endpoint: HttpEndpoint) -> None:
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as big:
        big.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X-Big: " + b"a" * 40_000)
        assert big.recv(1) == b""
    assert _healthz(endpoint.port) == 200


@pytest.mark.parametrize(
    ("bind", "warned"),
    [("127.0.0.1", False), ("localhost", False), ("0.0.0.0", True)],
)
def test_a_non_loopback_bind_is_warned_about(bind: str, warned: bool) -> None:
    """Issue 20 case 10: ``[http] bind = "0.0.0.0"`` gave no warning on an endpoint without
    authentication. The warning names the risk and the reverse-proxy recipe of
    docs/operations.md."""
    from structlog.testing import capture_logs

    try:
        http = HttpEndpoint(cast(Any, _Alive()), registry=CollectorRegistry(), bind=bind, port=0)
    except OSError:
        pytest.skip(f"cannot bind {bind} here")
    with capture_logs() as events:
        http.start()
    http.stop()
    found = [e for e in events if e["event"] == "http.exposed"]
    assert bool(found) is warned
    if warned:
        assert "no authentication" in found[0]["risk"]
        assert "reverse proxy" in found[0]["fix"] and "docs/operations.md" in found[0]["fix"]


def test_loopback_addresses() -> None:
    from scaler.health import is_loopback

    assert all(is_loopback(a) for a in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(a) for a in ("0.0.0.0", "::", "10.0.0.4", "example.com"))


def test_a_trace_that_is_the_process_environment_is_not_echoed() -> None:
    """Issue 20 case 7: ``backtest --trace /proc/self/environ`` printed the environment in
    its header error. At most the first 80 characters of it are quoted now."""
    done = _cli(
        "backtest",
        "--config",
        str(CORPUS / "trace-config.toml"),
        "--trace",
        "/proc/self/environ",
        env={"CVI_AUTOSCALER_ZZ_SECRET": "Z" * 90 + SECRET},
    )
    assert done.returncode == 2, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "header must contain timestamp,pool,calls" in done.stderr
    assert len(done.stderr.splitlines()) == 1 and len(done.stderr) < 400


@pytest.mark.parametrize("command", ["backtest", "forecast"])
def test_a_fifo_as_trace_is_refused_instead_of_hanging(tmp_path: Path, command: str) -> None:
    """Issue 20 case 8: ``backtest --trace <fifo>`` hung."""
    fifo = tmp_path / "trace.csv"
    os.mkfifo(fifo)
    done = _cli(command, "--config", str(CORPUS / "trace-config.toml"), "--trace", str(fifo))
    assert done.returncode == 2, done.stderr
    assert f"{fifo}: not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_backtest_does_not_demand_the_static_token(tmp_path: Path) -> None:
    """Also seen in issue 20: ``backtest`` demanded ``CVI_AUTOSCALER_STATIC_TOKEN`` although
    it never calls Azure. ``validate`` (for ``run``) still does."""
    text = (
        (CORPUS / "trace-config.toml")
        .read_text()
        .replace(
            'location = "westeurope"\n',
            'location = "westeurope"\ncredential = "static-token"\n'
            'resource_manager_url = "https://127.0.0.1:8443"\nmetrics_url = "https://127.0.0.1:8443"\n',
            1,
        )
    )
    config = tmp_path / "config.toml"
    config.write_text(text)
    trace = tmp_path / "trace.csv"
    rows = [f"2026-11-18T09:{m:02d}:00Z,{p},{10 + m}" for m in range(30) for p in ("a", "b")]
    trace.write_text("timestamp,pool,calls\n" + "\n".join(rows) + "\n")
    done = _cli("backtest", "--config", str(config), "--trace", str(trace), "--warmup-days", "0")
    assert done.returncode == 0, done.stderr
    refused = _cli("validate", "--config", str(config))
    assert refused.returncode == 2
    assert "static-token needs the environment variable CVI_AUTOSCALER_STATIC_TOKEN" in (
        refused.stderr
    )
