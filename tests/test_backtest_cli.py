"""``cvi-autoscaler backtest`` as a user runs it: a subprocess, its output, exit code and files."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
CONFIG = "tests/golden/backtest-small.toml"
TRACE = "tests/golden/backtest-small.csv"
WARMUP = ("--warmup-days", "0.125")


def backtest(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CVI_AUTOSCALER__DAEMON__INTERVAL_SECONDS", None)
    return subprocess.run(
        [sys.executable, "-m", "scaler", "backtest", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_json_matches_the_golden_file() -> None:
    done = backtest("--config", CONFIG, "--trace", TRACE, "--json", *WARMUP)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    golden = GOLDEN / "backtest-small.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=2) + "\n", encoding="utf-8")
    assert got == json.loads(golden.read_text(encoding="utf-8"))
    assert got["scored_from"] == "2026-11-18T09:00:00Z"
    assert set(got["pools"]) == {"tc-a", "tc-b"}


def test_table_is_readable() -> None:
    done = backtest("--config", CONFIG, "--trace", TRACE, *WARMUP)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for word in ("tc-a", "tc-b", "total", "oracle", "static_peak", "vCPU-h", "unserved"):
        assert word in out
    assert "scored 2026-11-18T09:00:00Z" in out
    assert not done.stderr.strip()  # no progress bar off a terminal


def test_scale_in_modes_trade_cost_against_dropped_calls() -> None:
    def total(mode: str) -> dict[str, float]:
        done = backtest("--config", CONFIG, "--trace", TRACE, "--json", "--scale-in", mode, *WARMUP)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["total"]  # type: ignore[no-any-return]

    drop, drain, idle = total("drop"), total("drain"), total("idle")
    assert drain["dropped_calls"] == idle["dropped_calls"] == 0.0
    # waiting for idle instances keeps capacity longer than Pexip's drain, which bills only
    # the instances it drains
    assert idle["vcpu_hours"] >= drain["vcpu_hours"] >= drop["vcpu_hours"]
    done = backtest("--config", CONFIG, "--trace", TRACE, "--scale-in", "gently", *WARMUP)
    assert done.returncode == 2 and "gently" in done.stderr


def test_compare_scores_several_configs_side_by_side(tmp_path: Path) -> None:
    other = tmp_path / "static.toml"
    text = (ROOT / CONFIG).read_text(encoding="utf-8")
    other.write_text(text.replace("max = 10", "max = 20").replace("min = 1", "min = 7"), "utf-8")
    done = backtest("--config", CONFIG, "--compare", str(other), "--trace", TRACE, *WARMUP)
    assert done.returncode == 0, done.stderr
    assert f"{CONFIG} total" in done.stdout and f"{other} total" in done.stdout
    as_json = backtest(
        "--config", CONFIG, "--compare", str(other), "--trace", TRACE, "--json", *WARMUP
    )
    doc = json.loads(as_json.stdout)
    assert list(doc) == [CONFIG, str(other)]
    a, b = doc[CONFIG], doc[str(other)]
    assert a["baselines"]["oracle"] == b["baselines"]["oracle"]  # the floor is the config's too
    assert b["total"]["vcpu_hours"] > a["total"]["vcpu_hours"]


@pytest.mark.parametrize(
    ("rows", "line", "words"),
    [
        (["2026-11-18T00:00:00Z,elsewhere,3"], 2, "unknown pool 'elsewhere'"),
        (["yesterday,tc-a,3"], 2, "not ISO-8601"),
        (["2026-11-18T00:00:00Z,tc-a,-3"], 2, "non-negative"),
        (["2026-11-18T00:00:00Z,tc-a,nan"], 2, "non-negative"),
        (["2026-11-18T00:01:00Z,tc-a,3", "2026-11-18T00:00:00Z,tc-a,3"], 3, "time order"),
        (["2026-11-18T00:00:00Z,tc-a,3", "2026-11-18T00:00:00Z,tc-a,4"], 3, "duplicate"),
    ],
)
def test_a_bad_trace_names_its_line_and_exits_2(
    tmp_path: Path, rows: list[str], line: int, words: str
) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("timestamp,pool,calls\n" + "\n".join(rows) + "\n", encoding="utf-8")
    done = backtest("--config", CONFIG, "--trace", str(trace))
    assert done.returncode == 2
    assert f"line {line}" in done.stderr and words in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = backtest("--config", CONFIG)
    assert missing.returncode == 2 and "--trace" in missing.stderr
    too_long = backtest("--config", CONFIG, "--trace", TRACE, "--warmup-days", "7")
    assert too_long.returncode == 2 and "nothing to score" in too_long.stderr
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[[pools]]\nname = 'x'\n", encoding="utf-8")
    bad = backtest("--config", str(bad_config), "--trace", TRACE)
    assert bad.returncode == 2 and "pools[0]" in bad.stderr


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_writes_a_png_and_a_self_contained_page(tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = backtest("--config", CONFIG, "--trace", TRACE, "--report", str(out), *WARMUP)
    assert done.returncode == 0, done.stderr
    png = out / "backtest-small.png"
    data = png.read_bytes()
    width, height = _png_size(data)
    assert width >= 1000 and height >= 400
    assert len(data) > 20_000
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page
    assert "<table>" in page and "tc-a" in page and "oracle" in page
    assert 'src="http' not in page and "<script" not in page  # nothing fetched from elsewhere


def test_sweep_replays_a_config_once_per_value_of_a_predictive_option(tmp_path: Path) -> None:
    """``--sweep target_unserved=…`` sets the option on every predictive policy (inside a
    composite too) and shows each setting side by side; a bad sweep is a usage error."""
    config = tmp_path / "predictive.toml"
    text = (ROOT / CONFIG).read_text(encoding="utf-8")
    first = text.index("[[pools.policies]]")
    predictive = (
        '[[pools.policies]]\ntype = "composite"\n[[pools.policies.policies]]\n'
        'type = "predictive"\nmin_history_weeks = 0\n'
        '[[pools.policies.policies]]\ntype = "target-tracking"\n\n'
    )
    config.write_text(text[:first] + predictive + text[first:], encoding="utf-8")
    done = backtest(
        "--config", str(config), "--trace", TRACE, "--json", "--sweep",
        "target_unserved=0.00001,0.001", *WARMUP,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert list(doc) == [
        f"{config} [target_unserved=0.00001]",
        f"{config} [target_unserved=0.001]",
    ]
    from scaler.backtest.command import sweep_configs
    from scaler.policyset import build_policies

    (_, low), (_, high) = sweep_configs(config, "target_unserved=0.00001,0.001")
    parts = [build_policies(c.pools[0])[0].parts[0] for c in (low, high)]  # type: ignore[attr-defined]
    assert [p.config.target_unserved for p in parts] == [0.00001, 0.001]

    for sweep, words in (
        ("target_unserved", "expected KEY=V1,V2"),
        ("tolerance=0.1", "predictive has no option 'tolerance'"),
        ("target_unserved=0.5", "target_unserved"),
    ):
        bad = backtest("--config", str(config), "--trace", TRACE, "--sweep", sweep, *WARMUP)
        assert bad.returncode == 2 and words in bad.stderr, (sweep, bad.stderr)
    plain = backtest("--config", CONFIG, "--trace", TRACE, "--sweep", "target_unserved=1e-4")
    assert plain.returncode == 2 and "no predictive policy" in plain.stderr
