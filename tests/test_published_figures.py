"""The benchmark figures in the README and ``docs/benchmarks.md`` come from ``make bench``:
every marked figure is what ``bench/figures.py`` renders from ``bench/results.json``, and
``results.json`` is what the shipped example configs do on the bundled trace — so a change to
``examples/*.toml`` or to the engine that moves a figure fails here until ``make bench`` is run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import figures
from bench.run import QUALITY_RUNS, TRACE, spike_split
from scaler.backtest import Options, run_backtest
from scaler.backtest.engine import ScaleIn
from scaler.config import load_config
from scaler.traces import load_trace

RESULTS = figures.load()


@pytest.mark.parametrize("document", figures.DOCUMENTS, ids=lambda p: p.name)
def test_every_marked_figure_is_rendered_from_the_results(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    found = figures.regions(text)
    assert found, f"{document}: no <!-- bench:… --> figures"
    for name, body in found.items():
        assert body == figures.RENDERERS[name](RESULTS), (
            f"{document}: <!-- bench:{name} --> says {body!r}; make bench writes "
            f"{figures.RENDERERS[name](RESULTS)!r}"
        )


def test_every_renderer_is_used_and_the_headline_is_there() -> None:
    used = set()
    for document in figures.DOCUMENTS:
        used |= set(figures.regions(document.read_text(encoding="utf-8")))
    assert used == set(figures.RENDERERS)
    readme = figures.regions(figures.DOCUMENTS[0].read_text(encoding="utf-8"))
    assert "headline" in readme


HEADLINE = (
    "recommended",
    "recommended, vmss without Event Hub",
    "baseline-schedule",
    "baseline-cpu-rules",
)
"""The configs whose figures the README's sentences use (static provisioning is only in the
docs' table and costs what its fixed size does)."""
RUNS = [r for r in QUALITY_RUNS if r[0] in HEADLINE]


@pytest.mark.long
@pytest.mark.parametrize(("label", "path", "mode"), RUNS, ids=[r[0] for r in RUNS])
def test_the_results_are_what_the_shipped_configs_do(
    label: str, path: Path, mode: ScaleIn | None
) -> None:
    """Replayed as ``make bench`` replays them (7 warm-up days, one process)."""
    config = load_config(path)
    trace = load_trace(TRACE, known_pools=[p.name for p in config.pools])
    result = run_backtest(
        config,
        trace,
        options=Options(warmup_days=7, scale_in=mode, workers=1),
    )
    inside, outside = spike_split(result)
    want = RESULTS["configs"][label]
    got = {
        "vcpu_hours": round(result.total.vcpu_hours, 3),
        "unserved_spike": round(inside, 3),
        "unserved_outside": round(outside, 3),
        "dropped": round(result.total.dropped_calls, 3),
        "actions": result.total.scale_actions,
    }
    assert got == {k: want[k] for k in got}, (
        f"{label}: the shipped config now gives {got}, bench/results.json says "
        f"{ {k: want[k] for k in got} }: run make bench"
    )
    assert round(result.oracle.vcpu_hours, 3) == RESULTS["oracle"]


def test_every_pasted_output_is_a_bench_command_and_what_it_printed() -> None:
    """The fleet-scale figures of ``docs/benchmarks.md`` are pasted by the benches'
    ``--write-docs NAME``: a fenced block headed by the command line, its first line naming the
    machine (or, before the bench has run, saying so)."""
    blocks = figures.output_blocks(figures.BENCHMARKS.read_text(encoding="utf-8"))
    assert {
        "scale",
        "endurance-target-tracking",
        "endurance-target-tracking-1000",
        "endurance-recommended",
    } <= set(blocks)
    for name, block in blocks.items():
        lines = block.splitlines()
        assert lines[0] == "```text" and lines[-1] == "```", f"output:{name}: {lines[:1]}"
        if lines[1].startswith("(not yet run"):
            continue
        command = lines[1].split()
        assert command[:2] == ["$", "python"], f"output:{name}: {lines[1]!r}"
        assert (figures.ROOT / command[2]).is_file(), f"output:{name}: {command[2]} missing"
        assert "cores, Python" in lines[2], f"output:{name}: no machine named in {lines[2]!r}"


def test_paste_output_replaces_only_its_region(tmp_path: Path) -> None:
    doc = tmp_path / "b.md"
    doc.write_text(
        "a\n<!-- output:one -->\nold\n<!-- /output:one -->\n"
        "<!-- output:two -->\nkeep\n<!-- /output:two -->\n",
        encoding="utf-8",
    )
    assert figures.paste_output("one", "python bench/x.py --n 1", "line 1\nline 2\n", doc)
    assert figures.output_blocks(doc.read_text(encoding="utf-8")) == {
        "one": "```text\n$ python bench/x.py --n 1\nline 1\nline 2\n```\n",
        "two": "keep\n",
    }
    assert not figures.paste_output("three", "python bench/x.py", "x", doc)
