"""``backtest --pool`` and ``--compare`` across configs that name different pools: the rollout's
comparison of a whole production config with one imported Azure setting."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.test_backtest_cli import CONFIG, ROOT, TRACE, WARMUP, backtest

ONE_POOL = (ROOT / CONFIG).read_text().split("[[pools]]")
"""The golden config cut in two: its header and each pool."""


def only_tc_b(tmp_path: Path) -> Path:
    """The golden config with its second pool alone, as an imported setting has one pool."""
    text = ONE_POOL[0] + "[[pools]]" + ONE_POOL[2]
    assert 'name = "tc-b"' in text
    path = tmp_path / "current.toml"
    path.write_text(text)
    return path


def test_compare_replays_only_the_pools_each_config_names(tmp_path: Path) -> None:
    current = only_tc_b(tmp_path)
    done = backtest(
        "--config", CONFIG, "--compare", str(current), "--trace", TRACE, "--json", *WARMUP
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc[CONFIG]["pools"]) == {"tc-a", "tc-b"}
    assert set(doc[str(current)]["pools"]) == {"tc-b"}
    assert f"note: {current}: replays tc-b; ignores the trace's rows of tc-a" in done.stderr
    assert "the configs replay different pools" in done.stderr
    # the shared pool is replayed the same way by both (same pool table, same trace)
    assert doc[CONFIG]["pools"]["tc-b"] == doc[str(current)]["pools"]["tc-b"]


def test_pool_selects_the_pools_of_every_config(tmp_path: Path) -> None:
    current = only_tc_b(tmp_path)
    done = backtest(
        "--config", CONFIG, "--compare", str(current), "--pool", "tc-b", "--trace", TRACE,
        "--json", *WARMUP,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert {name: set(d["pools"]) for name, d in doc.items()} == {
        CONFIG: {"tc-b"},
        str(current): {"tc-b"},
    }
    assert doc[CONFIG]["total"] == doc[str(current)]["total"]
    assert "different pools" not in done.stderr


def test_pool_alone_on_one_config() -> None:
    done = backtest("--config", CONFIG, "--pool", "tc-a", "--trace", TRACE, "--json", *WARMUP)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["pools"]) == {"tc-a"}
    assert f"note: {CONFIG}: replays tc-a; ignores the trace's rows of tc-b" in done.stderr


def test_a_pool_a_config_lacks_is_exit_2_before_anything_runs(tmp_path: Path) -> None:
    current = only_tc_b(tmp_path)
    done = backtest(
        "--config", CONFIG, "--compare", str(current), "--pool", "tc-a", "--trace", TRACE,
        *WARMUP,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"error: --pool: {current} has no pool 'tc-a' (it has: tc-b)" in done.stderr


def test_a_config_whose_pool_the_trace_lacks_fails_before_the_first_is_replayed(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.toml"
    other.write_text(
        re.sub(r'name = "tc-b"', 'name = "tc-z"', ONE_POOL[0] + "[[pools]]" + ONE_POOL[2])
    )
    done = backtest("--config", CONFIG, "--compare", str(other), "--trace", TRACE, *WARMUP)
    assert done.returncode == 2
    assert done.stdout == ""  # nothing was replayed first
    assert f"error: {other}: trace has no rows for pool(s) 'tc-z'" in done.stderr


def test_one_config_alone_still_refuses_rows_of_pools_it_lacks(tmp_path: Path) -> None:
    """Without ``--pool`` or ``--compare`` a trace row naming no pool of the config is a
    mistake (a misspelt pool), as before."""
    current = only_tc_b(tmp_path)
    done = backtest("--config", str(current), "--trace", TRACE, *WARMUP)
    assert done.returncode == 2
    assert "unknown pool 'tc-a'" in done.stderr
