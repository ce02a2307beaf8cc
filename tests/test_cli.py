"""The commands as a user runs them: subprocesses, exit codes, stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.azure_env import TOKEN_ENV, AzureEnv, azure_env

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **TOKEN_ENV, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "scaler", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[AzureEnv]:
    with azure_env(tmp_path) as e:
        yield e


def test_validate_accepts_the_bundled_example() -> None:
    proc = cli("validate", "--config", "examples/azure.toml")
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout and "teams-connector (2-20)" in proc.stdout


def test_validate_names_the_bad_key_and_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = (ROOT / "examples/azure.toml").read_text().replace("max = 20", "max = 1", 1)
    bad.write_text(text)
    proc = cli("validate", "--config", str(bad))
    assert proc.returncode == 2
    assert "pools[0].max: must be >= min (2), got 1" in proc.stderr


def test_validate_usage_errors_exit_2(tmp_path: Path) -> None:
    assert cli("validate").returncode == 2
    proc = cli("validate", "--config", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2 and "file not found" in proc.stderr


def test_once_json_resizes_through_the_real_sdk(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [30.0] * 8 + [None] * 2, "vm1": [30.0] * 8 + [None] * 2})
    proc = cli("once", "--config", str(env.write_config(pool)), "--json")
    assert proc.returncode == 0, proc.stderr
    (record,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {k: record[k] for k in ("pool", "current", "desired", "reason", "applied")} == {
        "pool": "tc",
        "current": 2,
        "desired": 5,
        "reason": "DesiredWithinRange",
        "applied": True,
    }
    assert record["calls"] == 60.0 and record["policy"] == "target-tracking"
    assert env.fake.vmss_capacity("cvi", "tc") == 5
    # logs go to stderr as JSON lines, one decision.made per pool
    events = [
        json.loads(line)["event"] for line in proc.stderr.splitlines() if line.startswith("{")
    ]
    assert events.count("decision.made") == 1 and "scale.applied" in events


def test_once_dry_run_writes_nothing(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [60.0] * 10})
    proc = cli("once", "--config", str(env.write_config(pool)), "--json", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert (record["desired"], record["applied"], record["dry_run"]) == (5, False, True)
    assert env.fake.writes() == []
    assert any('"scale.dry_run"' in line for line in proc.stderr.splitlines())


def test_invalid_config_exits_2_before_any_request(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2, min=5, max=3)
    env.fake.clear_requests()
    proc = cli("once", "--config", str(env.write_config(pool)), "--json")
    assert proc.returncode == 2
    assert "pools[0].max: must be >= min (5), got 3" in proc.stderr
    assert proc.stdout == ""
    assert env.fake.requests == []


def test_refused_resize_exits_1_and_says_why(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [60.0] * 10})
    env.fake.fail_next_operation()
    proc = cli("once", "--config", str(env.write_config(pool)), "--json")
    assert proc.returncode == 1
    record = json.loads(proc.stdout)
    assert record["applied"] is False and "OperationNotAllowed" in record["error"]


def test_example_config_against_a_local_fake_azure(env: AzureEnv) -> None:
    """The README's example, pointed at the fake with endpoint and credential overrides."""
    rg, name = "pexip-tc-westeurope-RG", "pexip-tc-westeurope-vmss"
    rid = env.fake.add_vmss(rg, name, capacity=2)
    # The example reads the scale set's platform metric, as Azure emits it for every scale set:
    # "Percentage CPU", unit Percent, averaged over the instances (learn.microsoft.com/azure/
    # azure-monitor/reference/supported-metrics/microsoft-compute-virtualmachinescalesets-metrics)
    # 100 % of 2 instances of 15 calls = 30 calls → ceil(30 / 10.5) = 3.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    env.fake.set_metric(
        rid,
        "Microsoft.Compute/virtualMachineScaleSets",
        "Percentage CPU",
        [(now - timedelta(minutes=9 - i), 100.0) for i in range(10)],
        unit="Percent",
    )
    env.fake.set_usage("westeurope", "cores", current=10, limit=14)  # 4 vCPUs = 1 more
    env.fake.set_usage("westeurope", "standardFSv2Family", current=8, limit=100)
    sub = env.fake.subscription_id
    overrides = {
        "CVI_AUTOSCALER__AZURE__SUBSCRIPTION_ID": sub,
        "CVI_AUTOSCALER__AZURE__RESOURCE_MANAGER_URL": env.fake.url,
        "CVI_AUTOSCALER__AZURE__METRICS_URL": env.fake.url,
        "CVI_AUTOSCALER__AZURE__CREDENTIAL": "static-token",
        "CVI_AUTOSCALER__AZURE__CA_BUNDLE": env.fake.ca_file,
        "CVI_AUTOSCALER__AZURE__POLLING_INTERVAL_SECONDS": "0",
        "CVI_AUTOSCALER__POOLS__0__RESOURCE_ID": rid,
    }
    proc = cli("once", "--config", "examples/azure.toml", "--json", env=overrides)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert (record["current"], record["desired"]) == (2, 3)
    assert env.fake.vmss_capacity(rg, name) == 3
    # still 100 %: 45 calls want 5, but the 4 vCPUs left went to the third instance
    proc = cli("once", "--config", "examples/azure.toml", "--json", env=overrides)
    record = json.loads(proc.stdout)
    assert (record["current"], record["desired"], record["reason"]) == (3, 3, "QuotaLimited")
    assert env.fake.vmss_capacity(rg, name) == 3


def test_once_human_output(env: AzureEnv) -> None:
    pool = env.pool("tc", capacity=3)
    env.calls(pool["resource_id"], {"vm0": [36.0] * 10})
    proc = cli("once", "--config", str(env.write_config(pool)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "tc: 3 DesiredWithinRange"


# -- no traceback reaches a user (issue 20) ------------------------------------------------


def _real(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CVI_AUTOSCALER")}
    return subprocess.run(
        [sys.executable, "-m", "scaler", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean,
        check=False,
    )


SETTING = Path(__file__).resolve().parent / "fixtures" / "autoscale" / "getAutoscaleSetting.json"
BASE = Path(__file__).resolve().parent / "corpus" / "base.toml"


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            [
                "import",
                "azure-autoscale",
                str(SETTING),
                "--without-predictive",
                "--output",
                "/proc/nope.toml",
            ],
            2,
            "import error: --output: /proc/nope.toml: No such file or directory",
        ),
        (
            ["trace", "export", "--config", str(BASE), "--output", "/proc/nope/x.csv"],
            2,
            "trace export: --output: /proc/nope is not a directory",
        ),
        (
            ["trace", "export", "--config", str(BASE), "--output", "x.csv", "--days", "1e9"],
            2,
            "Invalid value for '--days'",
        ),
        (["demo", "--speed", "nan"], 2, "'nan' is not a finite number"),
        (["demo", "--start-hour", "99999999999999999999"], 2, "not in the range 0<=x<=23"),
        (["backtest", "--config", str(BASE), "--trace", "x", "--workers", "10000"], 2, "1<=x<=64"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_in_a_real_process(
    args: list[str], code: int, line: str
) -> None:
    done = _real(*args)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert line in done.stderr


def test_every_error_reaching_the_top_level_is_one_line() -> None:
    from scaler.cli import error_line
    from scaler.errors import ConfigError, PermanentError
    from scaler.traces import TraceError

    assert error_line(ConfigError(["a.b: bad", "c: worse"])) == (
        2,
        ["config error: a.b: bad", "config error: c: worse"],
    )
    assert error_line(TraceError("t.csv line 2: no"))[0] == 2
    assert error_line(FileNotFoundError(2, "No such file or directory", "/x")) == (
        2,
        ["error: /x: No such file or directory"],
    )
    code, lines = error_line(PermanentError("vmss.get: HTTP 403\n<html>\n</html>"))
    assert code == 1 and lines == ["error: vmss.get: HTTP 403"]
    code, lines = error_line(RecursionError())
    assert code == 2 and "nested too deeply" in lines[0]
    code, lines = error_line(KeyError("https://admin:pw@host"))
    assert code == 1 and len(lines) == 1 and "pw@" not in lines[0] and "a bug" in lines[0]


@pytest.mark.parametrize(
    ("method", "path"), [("PATCH", r"virtualMachineScaleSets/tc$"), ("GET", r"/operations/")]
)
def test_an_html_500_leaves_only_one_line_json_events_in_the_log(
    env: AzureEnv, method: str, path: str
) -> None:
    """Issue 20 case 9: an HTML body on an ARM 500 put the SDK's multi-line traceback
    (``Ran into a deserialization error…``) between the JSON log lines."""
    pool = env.pool("tc", capacity=2)
    env.calls(pool["resource_id"], {"vm0": [60.0] * 8, "vm1": [60.0] * 8})
    page = (
        b"<html>\n<head><title>500 Internal Server Error</title></head>\n<body>oops</body>\n</html>"
    )
    env.fake.inject_transport_fault(
        method, path, "raw", status=500, body=page, content_type="text/html", times=100
    )
    proc = cli("once", "--config", str(env.write_config(pool)))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "<html>" not in proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is an event
    assert all("\n" not in str(e.get("error", "")) for e in events)
    (line,) = proc.stdout.splitlines()  # the pool's outcome, its error on the same line
    assert line.startswith("tc: 2 -> 6 ") and "Internal Server Error" in line
