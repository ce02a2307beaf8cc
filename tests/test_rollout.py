"""The guided rollout (docs/rollout.md, *From zero to production*), step by step as a new user
types it, against the HTTPS fake of Azure: validate, one dry pass, the week's load exported, the
current Azure autoscale setting (as ``az monitor autoscale show`` prints it) imported, and both
configs scored side by side. Each command is the page's, run as a process; only the placeholders
(``<pool>``, ``<rg>``) are filled in.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.azure_env import TOKEN_ENV, AzureEnv, azure_env

ROOT = Path(__file__).resolve().parent.parent
ROLLOUT = (ROOT / "docs" / "rollout.md").read_text(encoding="utf-8")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[AzureEnv]:
    with azure_env(tmp_path) as e:
        yield e


def rollout_commands() -> list[str]:
    """The ``cvi-autoscaler``/``az`` commands of the guided rollout, in order, joined across
    their backslash continuations."""
    assert ROLLOUT.startswith("# From zero to production: a guided rollout")
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", ROLLOUT, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith(("cvi-autoscaler ", "az ")):
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = command.split()
    assert args[0] == "cvi-autoscaler", command
    return subprocess.run(
        [sys.executable, "-m", "scaler", *args[1:]],
        cwd=cwd,
        env={**os.environ, **TOKEN_ENV, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def az_autoscale_show(env: AzureEnv, rg: str, name: str) -> dict[str, Any]:
    """What ``az monitor autoscale show -g <rg> -n <setting>`` prints: the setting read from
    ARM (here the fake's ``AutoscaleSettings_ListByResourceGroup``), with ``properties``
    flattened to the top level, ``namePropertiesName`` and ``resourceGroup`` beside them and
    nulls for what is unset (the az output in Microsoft's tutorial "Automatically scale a
    Virtual Machine Scale Set with the Azure CLI")."""
    url = (
        f"{env.fake.url}/subscriptions/{env.fake.subscription_id}/resourceGroups/{rg}/providers/"
        "Microsoft.Insights/autoscalesettings?api-version=2022-10-01"
    )
    trust = ssl.create_default_context(cafile=str(env.fake.ca_file))
    answer = httpx.get(url, headers={"Authorization": "Bearer test-token"}, verify=trust)
    answer.raise_for_status()
    (resource,) = [s for s in answer.json()["value"] if s["name"] == name]
    props = resource.pop("properties")
    flat = {**resource, **props}
    flat["namePropertiesName"] = props.get("name", name)
    flat["name"] = name
    flat["resourceGroup"] = rg
    flat.setdefault("systemData", None)
    flat.setdefault("targetResourceLocation", None)
    flat.setdefault(
        "predictiveAutoscalePolicy", {"scaleLookAheadTime": None, "scaleMode": "Disabled"}
    )
    for profile in flat["profiles"]:
        profile.setdefault("fixedDate", None)
        profile.setdefault("recurrence", None)
        for rule in profile["rules"]:
            trigger = rule["metricTrigger"]
            trigger["threshold"] = str(trigger["threshold"])
            for key in ("dimensions", "metricNamespace", "metricResourceLocation"):
                trigger.setdefault(key, [] if key == "dimensions" else None)
    return flat


def business_day(minute_of_day: int, scale: float) -> float:
    """Calls on one Teams Connector instance's share of a working day."""
    hour = minute_of_day / 60.0
    if hour < 7 or hour >= 19:
        return 0.5 * scale
    return scale * (1.0 + 5.0 * min(1.0, (hour - 7) / 2) * min(1.0, (19 - hour) / 2))


@pytest.mark.long
def test_the_guided_rollout_as_the_docs_write_it(env: AzureEnv, tmp_path: Path) -> None:
    commands = rollout_commands()
    names = [
        " ".join(c.split()[1:3]) if c.split()[1] in ("trace", "import", "monitor") else c.split()[1]
        for c in commands
    ]
    assert names == [
        "validate",
        "once",
        "run",
        "trace export",
        "monitor autoscale",
        "import azure-autoscale",
        "backtest",
    ], commands

    # Production: two Teams Connector pools with five weeks of calls in Azure Monitor, and an
    # enabled Azure autoscale setting still sizing the first (it is disabled only at step 5).
    pools = []
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = 35 * 1440
    for name, scale in (("teams-eu", 6.0), ("teams-us", 4.0)):
        table = env.pool(name, capacity=3, min=1, max=12)
        pools.append(table)
        start = now - timedelta(minutes=minutes - 1)
        for vm in (f"{name}_0", f"{name}_1"):
            stamps = [start + timedelta(minutes=i) for i in range(minutes)]
            points = [(t, business_day(t.hour * 60 + t.minute, scale)) for t in stamps]
            env.fake.set_metric(
                table["resource_id"], "Pexip/CVI", "ActiveCalls", points, dimension=("VMName", vm)
            )
    env.fake.add_autoscale_setting(
        "cvi", "teams-autoscale", target_resource_uri=pools[0]["resource_id"], maximum=12
    )
    prod = env.write_config(*pools)
    (tmp_path / "prod.toml").write_text(prod.read_text())
    env.fake.clear_requests()

    fill = {"<pool>": "teams-eu", "<rg>": "cvi", "<setting>": "teams-autoscale"}
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    for command in commands:
        for key, value in fill.items():
            command = command.replace(key, value)
        if command.startswith("cvi-autoscaler run "):
            continue  # a week beside the current scaler: the daemon itself, tested elsewhere
        if command.startswith("az "):
            # az monitor autoscale show -g cvi -n teams-autoscale > current.json
            target = command.split(">")[-1].strip()
            rg, setting = command.split(" -g ")[1].split()[0], command.split(" -n ")[1].split()[0]
            (tmp_path / target).write_text(json.dumps(az_autoscale_show(env, rg, setting)))
            continue
        done = run(command, tmp_path)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs[command.split()[1]] = done

    # 2. validate
    assert "valid; 2 pool(s)" in outputs["validate"].stdout
    # 3. one dry pass: a JSON object per pool, every one a dry run, nothing written to Azure
    records = [json.loads(line) for line in outputs["once"].stdout.splitlines()]
    assert [r["pool"] for r in records] == ["teams-eu", "teams-us"]
    assert all(r["dry_run"] and not r["applied"] for r in records), records
    writes = [r for r in env.fake.requests if r.method in ("PUT", "PATCH", "POST")]
    assert all(r.path.lower().endswith(("/metrics:getbatch", "/token")) for r in writes), writes
    # 4. the export holds five weeks of both pools; the import is the pool's setting
    trace = (tmp_path / "last-5-weeks.csv").read_text().splitlines()
    assert trace[0] == "timestamp,pool,calls" and len(trace) > 2 * 34 * 1440
    current = (tmp_path / "current.toml").read_text()
    assert 'name = "teams-eu"' in current and 'type = "step"' in current
    # ... and the comparison scores both on the last week, the import on its one pool
    backtest = outputs["backtest"]
    assert "note: current.toml: replays teams-eu; ignores the trace's rows of teams-us" in (
        backtest.stderr
    )
    assert "prod.toml" in backtest.stdout and "current.toml" in backtest.stdout
    report = tmp_path / "report" / "index.html"
    assert report.is_file() and report.stat().st_size > 10_000
