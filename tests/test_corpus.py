"""The bad-input corpus: every file in ``tests/corpus/`` is refused with exit 2 and one line per
problem naming the key path (configs) or the line (traces), and no secret value ever appears.

``configs/NAME.toml`` is validated with ``NAME.env`` (``KEY=VALUE`` lines, if present) as its
environment; ``traces/NAME.csv`` is backtested against ``trace-config.toml``. ``NAME.expect``
holds the fragment the error must contain. Every secret in the corpus is the text ``SECRETVALUE``.
Also here: the HTTP endpoint facing idle and stalled clients.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
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
