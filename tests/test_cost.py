"""``[cost]``: prices validated with their key paths, and money where an operator looks —
the backtest's JSON, table and report, and ``/status``."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from scaler.adapters.sim import ManualClock, SimCloud
from scaler.config import Config, SkuPriceConfig, parse_config
from scaler.daemon import Daemon
from scaler.errors import ConfigError
from scaler.health import HttpEndpoint
from scaler.traces import Trace
from tests.conftest import config_doc, pool_table

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
TRACE = "tests/golden/backtest-small.csv"
WARMUP = ("--warmup-days", "0.125")
PRICED = """
[cost]
currency = "EUR"
per_vcpu_hour = 0.05
[cost.sku."Standard_F4s_v2"]
windows_per_hour = 0.40
linux_per_hour = 0.17
"""


def _parse(cost: dict[str, Any] | None, **pool: Any) -> Config:
    doc = config_doc(pool_table(**pool))
    if cost is not None:
        doc["cost"] = cost
    return parse_config(doc, environ={})


def _problems(
    cost: dict[str, Any] | None, env: dict[str, str] | None = None, **pool: Any
) -> list[str]:
    doc = config_doc(pool_table(**pool))
    if cost is not None:
        doc["cost"] = cost
    with pytest.raises(ConfigError) as info:
        parse_config(doc, environ=env or {})
    return list(info.value.problems)


# -- configuration ------------------------------------------------------------------------------


def test_a_pool_is_priced_by_its_vm_size_and_os_else_by_its_vcpus() -> None:
    sku = {"Standard_F4s_v2": {"windows_per_hour": 0.40, "linux_per_hour": 0.17}}
    cost = {"currency": "EUR", "per_vcpu_hour": 0.05, "sku": sku}
    windows = _parse(cost, vm_size="standard_f4s_v2", os="windows")  # sizes ignore case
    assert windows.cost is not None and windows.cost.currency == "EUR"
    assert windows.cost.per_instance_hour(windows.pools[0]) == pytest.approx(0.40)
    linux = _parse(cost, vm_size="Standard_F4s_v2", os="linux")
    assert linux.cost is not None
    assert linux.cost.per_instance_hour(linux.pools[0]) == pytest.approx(0.17)
    by_vcpu = _parse(cost, vcpus_per_instance=8)
    assert by_vcpu.cost is not None
    assert by_vcpu.cost.per_instance_hour(by_vcpu.pools[0]) == pytest.approx(0.40)
    other_size = _parse(cost, vm_size="Standard_D2s_v5")  # not in the table: by vCPUs
    assert other_size.cost is not None
    assert other_size.cost.per_instance_hour(other_size.pools[0]) == pytest.approx(0.20)
    assert _parse(None).cost is None


def test_without_a_price_for_every_pool_validation_names_the_key() -> None:
    assert _problems({"currency": "EUR"}) == [
        "cost.per_vcpu_hour: required to price pools[0] ('tc'), which names no vm_size, got None"
    ]
    two_prices = {"sku": {"Standard_F4s_v2": {"windows_per_hour": 0.4, "linux_per_hour": 0.17}}}
    (line,) = _problems(two_prices, vm_size="Standard_F4s_v2")
    assert line.startswith("pools[0].os: ") and "windows" in line and "linux" in line
    (line,) = _problems({"sku": two_prices["sku"]}, vm_size="Standard_D2s_v5")
    assert line == (
        "pools[0].vm_size: no cost.sku entry prices it and cost.per_vcpu_hour is not set, "
        "got 'Standard_D2s_v5'"
    )


@pytest.mark.parametrize(
    ("cost", "pool", "expected"),
    [
        ({"currency": "eur", "per_vcpu_hour": 0.05}, {}, "cost.currency: must be a three-letter"),
        ({"per_vcpu_hour": -0.05}, {}, "cost.per_vcpu_hour: input should be greater than"),
        ({"per_vcpu_hour": True}, {}, "cost.per_vcpu_hour: must be a number, not a boolean"),
        (
            {"sku": {"Standard_F4s_v2": {"per_hour": True}}},
            {"vm_size": "Standard_F4s_v2"},
            "cost.sku.Standard_F4s_v2.per_hour: must be a number, not a boolean",
        ),
        (
            {"sku": {"Standard_F4s_v2": {}}},
            {"vm_size": "Standard_F4s_v2"},
            "cost.sku.Standard_F4s_v2: needs per_hour, windows_per_hour or linux_per_hour",
        ),
        ({"per_vcpu_hours": 0.05}, {}, "cost.per_vcpu_hours: unknown key (did you mean"),
        ({"per_vcpu_hour": 0.05}, {"os": "macos"}, "pools[0].os: input should be 'windows'"),
        ({"per_vcpu_hour": 0.05}, {"vm_size": "F4 s"}, "pools[0].vm_size: must be a VM size"),
    ],
)
def test_bad_prices_are_named_by_key_path(
    cost: dict[str, Any], pool: dict[str, Any], expected: str
) -> None:
    problems = _problems(cost, **pool)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_price_from_the_environment_says_where_it_came_from() -> None:
    env = {"CVI_AUTOSCALER__COST__PER_VCPU_HOUR": "-1"}
    problems = _problems({"currency": "EUR", "per_vcpu_hour": 0.05}, env=env)
    assert any(
        p.startswith("cost.per_vcpu_hour:")
        and p.endswith("(from environment variable CVI_AUTOSCALER__COST__PER_VCPU_HOUR)")
        for p in problems
    ), problems
    ok = parse_config(
        config_doc(pool_table(), cost={"per_vcpu_hour": 0.05}),
        environ={"CVI_AUTOSCALER__COST__PER_VCPU_HOUR": "0.07"},
    )
    assert ok.cost is not None and ok.cost.per_vcpu_hour == pytest.approx(0.07)


prices = st.none() | st.floats(min_value=0, max_value=1000, allow_nan=False)


@given(
    per_hour=prices,
    windows=prices,
    linux=prices,
    os_name=st.sampled_from([None, "windows", "linux"]),
)
def test_an_os_price_wins_over_the_common_one_and_nothing_is_guessed(
    per_hour: float | None, windows: float | None, linux: float | None, os_name: str | None
) -> None:
    if per_hour is None and windows is None and linux is None:
        return
    sku = SkuPriceConfig(per_hour=per_hour, windows_per_hour=windows, linux_per_hour=linux)
    got = sku.price(os_name)
    own = {"windows": windows, "linux": linux}.get(os_name or "")
    if own is not None:
        assert got == own
    elif per_hour is not None:
        assert got == per_hour
    elif os_name is None and windows is not None and linux is not None and windows != linux:
        assert got is None  # two prices and no OS: not guessed
    elif os_name is not None:
        assert got is None  # this OS has no price of its own and there is no common one


# -- backtest -----------------------------------------------------------------------------------


def backtest(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CVI_AUTOSCALER__DAEMON__INTERVAL_SECONDS", None)
    return subprocess.run(
        [sys.executable, "-m", "scaler", "backtest", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def priced_config(tmp_path: Path) -> Path:
    """The golden config with ``[cost]``: tc-a a Windows Standard_F4s_v2, tc-b by vCPUs."""
    text = (GOLDEN / "backtest-small.toml").read_text(encoding="utf-8")
    text = text.replace(
        'name = "tc-a"\n', 'name = "tc-a"\nvm_size = "Standard_F4s_v2"\nos = "windows"\n', 1
    )
    path = tmp_path / "priced.toml"
    path.write_text(text + PRICED, encoding="utf-8")
    return path


def _without_cost(doc: Any) -> Any:
    if isinstance(doc, dict):
        drop = {"cost", "currency", "price_per_instance_hour"}
        return {k: _without_cost(v) for k, v in doc.items() if k not in drop}
    return doc


def test_backtest_json_gains_cost_keys_and_changes_nothing_else(priced_config: Path) -> None:
    done = backtest("--config", str(priced_config), "--trace", TRACE, "--json", *WARMUP)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    golden = json.loads((GOLDEN / "backtest-small.json").read_text(encoding="utf-8"))
    golden["config"] = got["config"]
    assert _without_cost(got) == golden  # keys added only (DESIGN §3), no figure changed
    assert got["currency"] == "EUR"
    assert got["price_per_instance_hour"] == {"tc-a": 0.40, "tc-b": pytest.approx(0.40)}
    for name, m in got["pools"].items():
        price = got["price_per_instance_hour"][name]
        assert m["cost"] == pytest.approx(m["instance_hours"] * price, abs=0.01)
    assert got["total"]["cost"] == pytest.approx(
        sum(m["cost"] for m in got["pools"].values()), abs=0.02
    )
    for key in ("oracle", "static_peak", "clairvoyant"):
        base = got["baselines"][key]
        assert base["cost"] == pytest.approx(
            sum(p["cost"] for p in base["pools"].values()), abs=0.02
        )
    # the call-safe floor costs less than what the policy spent here
    assert got["baselines"]["clairvoyant"]["cost"] < got["total"]["cost"]


def test_backtest_table_shows_money_only_with_cost(priced_config: Path) -> None:
    priced = backtest("--config", str(priced_config), "--trace", TRACE, *WARMUP)
    assert priced.returncode == 0, priced.stderr
    assert "cost (per instance-hour: tc-a 0.4 EUR, tc-b 0.4 EUR)" in priced.stdout
    lines = {line.split()[0]: line for line in priced.stdout.splitlines() if "EUR" in line}
    assert "total" in lines and "static_peak" in lines and "clairvoyant" in lines
    plain = backtest("--config", "tests/golden/backtest-small.toml", "--trace", TRACE, *WARMUP)
    assert plain.returncode == 0, plain.stderr
    assert "EUR" not in plain.stdout and "cost (" not in plain.stdout


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_draws_instances_and_compares_configs(priced_config: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    done = backtest(
        "--config",
        str(priced_config),
        "--compare",
        "tests/golden/backtest-small.toml",
        "--trace",
        TRACE,
        "--report",
        str(out),
        *WARMUP,
    )
    assert done.returncode == 0, done.stderr
    names = {p.name for p in out.iterdir()}
    assert names == {
        "priced.png",
        "priced-instances.png",
        "backtest-small.png",
        "backtest-small-instances.png",
        "compare.png",
        "index.html",
    }
    for png in out.glob("*.png"):
        width, height = _png_size(png.read_bytes())
        assert width > 400 and height > 200 and png.stat().st_size > 5000
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 5
    assert "<h2>Cost</h2>" in page and "EUR" in page
    assert "instances requested, ready and clairvoyant" in page


def test_a_single_report_has_no_comparison_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    done = backtest(
        "--config",
        "tests/golden/backtest-small.toml",
        "--trace",
        TRACE,
        "--report",
        str(out),
        *WARMUP,
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == {
        "backtest-small.png",
        "backtest-small-instances.png",
        "index.html",
    }
    assert "<h2>Cost</h2>" not in (out / "index.html").read_text(encoding="utf-8")


# -- /status ------------------------------------------------------------------------------------

START = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)


def _served(config: Config) -> Iterator[tuple[Daemon, str]]:
    clock = ManualClock(START.timestamp() + 10 * 60)
    trace = Trace(
        start=START, step_seconds=60, pools=("tc",), calls={"tc": [120.0] * 180}, length=180
    )
    cloud = SimCloud(config, trace, clock=clock)
    daemon = Daemon(
        config=config, metrics=cloud, actuator=cloud, quota=cloud, clock=clock, monotonic=clock.now
    )
    http = HttpEndpoint(daemon, registry=CollectorRegistry(), bind="127.0.0.1", port=0)
    http.start()
    try:
        yield daemon, f"http://127.0.0.1:{http.port}"
    finally:
        http.stop()


def _status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/status", timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read().decode())
        return body


def test_status_prices_the_current_and_desired_sizes() -> None:
    config = _parse(
        {
            "currency": "EUR",
            "sku": {"Standard_F4s_v2": {"windows_per_hour": 0.4, "linux_per_hour": 0.17}},
        },
        vm_size="Standard_F4s_v2",
        os="windows",
    )
    for daemon, url in _served(config):
        before = _status(url)
        assert before["pools"][0]["cost"]["current_per_hour"] is None  # nothing read yet
        assert before["cost"]["current_per_hour"] is None  # never a partial sum
        (o,) = daemon.tick()
        status = _status(url)
        pool = status["pools"][0]
        assert pool["cost"] == {
            "currency": "EUR",
            "per_instance_hour": 0.4,
            "current_vcpus": o.current * 4,
            "current_per_hour": pytest.approx(o.current * 0.4),
            "desired_per_hour": pytest.approx(o.desired * 0.4),
        }
        assert status["cost"]["currency"] == "EUR"
        assert status["cost"]["current_per_hour"] == pytest.approx(o.current * 0.4)
        assert status["cost"]["desired_per_hour"] == pytest.approx(o.desired * 0.4)


def test_status_without_cost_has_no_money() -> None:
    for daemon, url in _served(_parse(None)):
        daemon.tick()
        status = _status(url)
        assert "cost" not in status and "cost" not in status["pools"][0]
