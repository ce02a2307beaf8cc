"""The benchmark's perfect-foresight reference: between the oracle and any real policy."""

from __future__ import annotations

from pathlib import Path

from bench.clairvoyant import clairvoyant
from scaler.backtest import Options, run_backtest
from scaler.config import load_config
from scaler.traces import load_trace

ROOT = Path(__file__).resolve().parent.parent
DAY = ROOT / "scaler" / "data" / "demo-day.csv"


def test_foresight_serves_everything_at_no_less_than_the_oracle_and_beats_the_policy(
    tmp_path: Path,
) -> None:
    # Two copies of the demo day: the first is warm-up, the second is scored.
    rows = DAY.read_text().splitlines()
    shifted = [line.replace("2026-11-18T", "2026-11-19T") for line in rows[1:]]
    trace_file = tmp_path / "two-days.csv"
    trace_file.write_text("\n".join([rows[0], *rows[1:], *shifted]) + "\n")
    config = load_config(ROOT / "examples" / "recommended.toml")
    trace = load_trace(trace_file, known_pools={p.name for p in config.pools})

    seer = clairvoyant(config, trace, warmup_days=1)
    policy = run_backtest(config, trace, options=Options(warmup_days=1))

    assert seer["unserved"] == 0
    assert policy.oracle.vcpu_hours <= seer["vcpu_hours"] <= policy.total.vcpu_hours
    assert 0 < seer["drain_vcpu_hours"] < seer["vcpu_hours"]

    # holding through the boot time is the oracle's own rule; longer holds only add cost
    assert clairvoyant(config, trace, warmup_days=1, hold_minutes=20) == seer
    held = clairvoyant(config, trace, warmup_days=1, hold_minutes=90)
    assert held["vcpu_hours"] >= seer["vcpu_hours"] and held["unserved"] == 0
    # scaling in ahead of the oracle saves capacity only by leaving calls unserved
    early = clairvoyant(config, trace, warmup_days=1, early_minutes=20)
    assert early["vcpu_hours"] < seer["vcpu_hours"] and early["unserved"] > 0
