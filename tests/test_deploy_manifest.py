"""``deploy/kubernetes.yaml`` (shown in docs/operations.md) fits the image and the daemon: its
environment makes a valid config out of the example, its probes ask the endpoint's real paths on
the port the daemon listens on, and it runs as the image's user with the config where the image's
command reads it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from scaler.config import HttpConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "deploy" / "kubernetes.yaml"


def _pod() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if d]
    assert {d["kind"] for d in docs} == {"ServiceAccount", "Pod"}
    pod: dict[str, Any] = next(d for d in docs if d["kind"] == "Pod")
    return pod


def test_the_manifests_environment_makes_a_valid_config() -> None:
    (container,) = _pod()["spec"]["containers"]
    environ = {
        e["name"]: e.get("value", "cvi-autoscaler-0")  # a fieldRef: the pod's name
        for e in container["env"]
    }
    environ = {k: re.sub(r"<account>", "cvistate", v) for k, v in environ.items()}
    config = load_config(ROOT / "examples" / "azure.toml", environ=environ, offline=True)
    assert config.azure.credential == "workload-identity"
    assert config.ha.enabled and config.ha.identity == "cvi-autoscaler-0"
    assert config.http.bind == "0.0.0.0"


def test_the_probes_and_user_match_the_daemon_and_the_image() -> None:
    pod = _pod()
    (container,) = pod["spec"]["containers"]
    (port,) = container["ports"]
    assert port["containerPort"] == HttpConfig().port
    health = (ROOT / "scaler" / "health.py").read_text(encoding="utf-8")
    for probe in ("livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert f'"{path}"' in health, path
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    user = re.search(r"^USER (\d+)", dockerfile, re.M)
    assert user and pod["spec"]["securityContext"]["runAsUser"] == int(user.group(1))
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert '"/etc/cvi-autoscaler/cvi-autoscaler.toml"' in dockerfile
    assert {"/etc/cvi-autoscaler", "/var/lib/cvi-autoscaler", "/tmp"} <= mounts
