"""Published benchmark figures come from ``make bench``, never from memory.

``make bench`` (``bench/run.py --write-docs``) saves the decision-quality results as
``bench/results.json`` and rewrites every region of ``README.md``, ``docs/benchmarks.md`` and
``docs/pool-kinds.md`` marked

    <!-- bench:NAME -->…<!-- /bench:NAME -->

from them with the renderers below. ``tests/test_published_figures.py`` checks both ends: each
marked region is what its renderer makes of ``results.json``, and ``results.json`` is what the
shipped configs do on the bundled trace (the headline configs replayed again). A figure outside a
marked region is prose about one of these, or belongs to a table ``make bench`` prints that is
quoted as such.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "pool-kinds.md")
"""Where figures are marked; docs/pool-kinds.md quotes the cost of waiting for idle instances."""

Results = Mapping[str, Any]
"""``{"trace", "scored_days", "configs": {label: row}, "oracle", "static_peak",
"clairvoyant": {...} | None, "allowance", "speed": {...}}``; each row has ``vcpu_hours``,
``ratio``, ``unserved_spike``, ``unserved_outside``, ``dropped``, ``actions``; ``speed`` (the
backtest's speed bench, ``speed_of``) has ``machine``, ``target_s`` and ``sets``."""

_REGION = re.compile(
    r"<!-- bench:(?P<name>[a-z0-9-]+) -->(?P<body>.*?)<!-- /bench:(?P=name) -->", re.S
)


def results_of(rows: list[dict[str, Any]], *, trace: str, scored_days: int) -> dict[str, Any]:
    """The JSON document of ``bench_quality()``'s rows."""
    first = rows[0]
    seer = first.get("clairvoyant")
    return {
        "trace": trace,
        "scored_days": scored_days,
        "oracle": round(first["oracle"], 3),
        "static_peak": round(first["static_peak"], 3),
        "allowance": round(first["allowance"], 3),
        "clairvoyant": None
        if seer is None
        else {
            "vcpu_hours": round(seer["vcpu_hours"], 3),
            "drain_vcpu_hours": round(seer["drain_vcpu_hours"], 3),
            "unserved": round(seer["unserved"], 3),
        },
        "configs": {
            r["config"]: {
                "vcpu_hours": round(r["vcpu_hours"], 3),
                "ratio": round(r["ratio"], 4),
                "unserved_spike": round(r["unserved_spike"], 3),
                "unserved_outside": round(r["unserved_outside"], 3),
                "dropped": round(r["dropped"], 3),
                "actions": r["actions"],
            }
            for r in rows
        },
    }


def speed_of(
    sets: Sequence[tuple[str, Mapping[str, float]]], *, machine: str, target_s: float
) -> dict[str, Any]:
    """The JSON document of ``bench_speed()``'s figures, per policy set (label, figures)."""
    keys = (
        "pool_steps", "runs", "median_s", "min_s", "max_s", "cpu_s", "median_one_process_s",
        "steps_per_s", "rss_mb", "worker_rss_mb",
    )  # fmt: skip
    return {
        "machine": machine,
        "target_s": target_s,
        "sets": [
            {"label": label, **{k: round(float(figures[k]), 3) for k in keys}}
            for label, figures in sets
        ],
    }


def load(path: Path = RESULTS) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _below(r: Results, other: str) -> str:
    rec = r["configs"]["recommended"]["vcpu_hours"]
    return f"{round(100 * (1 - rec / r['configs'][other]['vcpu_hours'])):.0f} %"


def _headline(r: Results) -> str:
    rec = r["configs"]["recommended"]
    seer = r["clairvoyant"]
    outside = rec["unserved_outside"]
    service = (
        "no call-minute" if outside < 0.5 else f"{outside:,.0f} call-minutes"
    ) + " unserved outside an unannounced surge"
    versus = f" ({rec['vcpu_hours'] / seer['vcpu_hours']:.2f}× the clairvoyant call-safe floor)"
    return (
        f"leaves {service}, at {rec['ratio']:.2f}× the oracle{versus if seer else ''}, "
        f"{_below(r, 'baseline-schedule')} below the scheduled baseline and "
        f"{_below(r, 'baseline-cpu-rules')} below the CPU rules"
    )


def _idle_cost(r: Results) -> str:
    rec = r["configs"]["recommended"]["vcpu_hours"]
    idle = r["configs"]["recommended, vmss without Event Hub"]["vcpu_hours"]
    return f"{round(100 * (idle / rec - 1)):.0f} % more"


def _idle_below_schedule(r: Results) -> str:
    idle = r["configs"]["recommended, vmss without Event Hub"]["vcpu_hours"]
    schedule = r["configs"]["baseline-schedule"]["vcpu_hours"]
    return f"{round(100 * (1 - idle / schedule)):.0f} % below"


def _idealisations(r: Results) -> str:
    seer = r["clairvoyant"]
    if seer is None:
        return "–"
    return (
        f"{seer['vcpu_hours'] / r['oracle'] - 1:.2f}× of the oracle, "
        f"{seer['drain_vcpu_hours'] / r['oracle']:.2f}× of it draining"
    )


def _quality_table(r: Results) -> str:
    labels = {
        "recommended": "`recommended`",
        "recommended, vmss without Event Hub": "`recommended`, vmss without Event Hub",
        "baseline-schedule": "`baseline-schedule`",
        "baseline-cpu-rules": "`baseline-cpu-rules`",
        "baseline-static": "`baseline-static`",
    }
    lines = [
        "| config | vCPU-h | × oracle | unserved in spike | unserved elsewhere | dropped calls "
        "| scale actions |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in r["configs"].items():
        lines.append(
            f"| {labels.get(label, label)} | {row['vcpu_hours']:,.0f} | {row['ratio']:.2f} | "
            f"{row['unserved_spike']:,.0f} | {row['unserved_outside']:,.0f} | "
            f"{row['dropped']:,.0f} | {row['actions']:,} |"
        )
    oracle = r["oracle"]
    seer = r["clairvoyant"]
    if seer is not None:
        unserved = "0 | 0" if seer["unserved"] < 0.5 else f"– | {seer['unserved']:,.0f} in all"
        lines.append(
            f"| clairvoyant (same pools, same model) | {seer['vcpu_hours']:,.0f} | "
            f"{seer['vcpu_hours'] / oracle:.2f} | {unserved} | 0 | – |"
        )
    lines.append(f"| oracle (floor) | {oracle:,.0f} | 1.00 | 0 | 0 | 0 | – |")
    lines.append(
        f"| static_peak | {r['static_peak']:,.0f} | {r['static_peak'] / oracle:.2f} | 0 | 0 | 0 "
        "| 0 |"
    )
    return "\n" + "\n".join(lines) + "\n"


def _beats(r: Results) -> str:
    c = r["configs"]
    cpu = c["baseline-cpu-rules"]
    return (
        f"{_below(r, 'baseline-schedule')} below the schedule, "
        f"{_below(r, 'baseline-cpu-rules')} below the CPU rules, "
        f"{_below(r, 'baseline-static')} below static provisioning, with "
        f"{c['recommended']['unserved_outside']:,.0f} unserved call-minutes outside the spike "
        f"(the CPU rules leave {cpu['unserved_outside']:,.0f}) and "
        f"{c['recommended']['dropped']:,.0f} dropped calls (the CPU rules drop "
        f"{cpu['dropped']:,.0f}, Azure removing busy instances)"
    )


def _spike(r: Results) -> str:
    rec = r["configs"]["recommended"]
    return (
        f"{rec['unserved_spike']:,.0f} unserved call-minutes against an allowance of "
        f"{r['allowance']:,.0f}"
    )


def _oracle_target(r: Results) -> str:
    return f"{r['configs']['recommended']['ratio']:.2f}×"


def _foresight(r: Results) -> str:
    seer = r["clairvoyant"]
    return f"{seer['vcpu_hours'] / r['oracle']:.2f}×" if seer else "–"


def _versus_clairvoyant(r: Results) -> str:
    seer = r["clairvoyant"]
    rec = r["configs"]["recommended"]["vcpu_hours"]
    return f"{rec / seer['vcpu_hours']:.2f}×" if seer else "–"


def _speed_table(r: Results) -> str:
    speed = r.get("speed")
    if not speed:
        return "\n(not yet measured: `python bench/run.py --skip-quality --write-docs`)\n"
    target = speed["target_s"]
    lines = [
        f"Measured on {speed['machine']}:",
        "",
        "| policy set | 2 worker processes (default) | CPU-s | pool-steps/s | one process "
        f"| peak RSS, parent / worker | target < {target:g} s |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in speed["sets"]:
        label = s["label"].replace("examples/recommended.toml", "`examples/recommended.toml`")
        lines.append(
            f"| {label} | {s['median_s']:.1f} s (median of {s['runs']:.0f}; "
            f"{s['min_s']:.1f}–{s['max_s']:.1f}) | {s['cpu_s']:.1f} | "
            f"{s['steps_per_s']:,.0f} | {s['median_one_process_s']:.1f} s | "
            f"{s['rss_mb']:.0f} / {s['worker_rss_mb']:.0f} MB | "
            f"{'met' if s['median_s'] < target else 'not met'} |"
        )
    return "\n" + "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Results], str]] = {
    "headline": _headline,
    "idle-cost": _idle_cost,
    "idle-below-schedule": _idle_below_schedule,
    "idealisations": _idealisations,
    "quality-table": _quality_table,
    "beats": _beats,
    "spike": _spike,
    "oracle-target": _oracle_target,
    "foresight": _foresight,
    "versus-clairvoyant": _versus_clairvoyant,
    "speed-table": _speed_table,
}


def rewrite(text: str, results: Results) -> str:
    """``text`` with every marked region rendered from ``results``."""

    def one(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in RENDERERS:
            raise KeyError(f"no renderer for <!-- bench:{name} -->")
        return f"<!-- bench:{name} -->{RENDERERS[name](results)}<!-- /bench:{name} -->"

    return _REGION.sub(one, text)


def regions(text: str) -> dict[str, str]:
    """The marked regions of ``text`` (name → content)."""
    return {m["name"]: m["body"] for m in _REGION.finditer(text)}


def write_documents(results: Results, paths: tuple[Path, ...] = DOCUMENTS) -> list[Path]:
    """Rewrite the marked regions of the documents; returns those that changed."""
    changed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, results)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


# ----------------------------------------------------------------- pasted command output

_OUTPUT = re.compile(
    r"<!-- output:(?P<name>[a-z0-9-]+) -->\n(?P<body>.*?)<!-- /output:(?P=name) -->", re.S
)
BENCHMARKS = ROOT / "docs" / "benchmarks.md"


def output_block(command: str, output: str) -> str:
    """A fenced block of ``output`` headed by the ``command`` that printed it."""
    return f"```text\n$ {command}\n{output.rstrip()}\n```\n"


def output_blocks(text: str) -> dict[str, str]:
    """The pasted outputs of ``text`` (name → block)."""
    return {m["name"]: m["body"] for m in _OUTPUT.finditer(text)}


def paste_output(name: str, command: str, output: str, path: Path = BENCHMARKS) -> bool:
    """Replace the region ``<!-- output:NAME -->…<!-- /output:NAME -->`` of ``path`` with what
    ``command`` printed (the benches' ``--write-docs``); False when the region is missing."""
    text = path.read_text(encoding="utf-8")
    if name not in output_blocks(text):
        return False
    block = output_block(command, output)

    def one(m: re.Match[str]) -> str:
        return (
            f"<!-- output:{name} -->\n{block}<!-- /output:{name} -->" if m["name"] == name else m[0]
        )

    new = _OUTPUT.sub(one, text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return True


class Tee:
    """Standard output, also kept: what a bench printed, for ``paste_output``."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return int(self.stream.write(text))

    def flush(self) -> None:
        self.stream.flush()

    def text(self) -> str:
        return "".join(self.parts)


def write_docs_option(parser: Any) -> None:
    """A bench's ``--write-docs NAME`` (an ``argparse`` parser's), for ``run_pasted``."""
    parser.add_argument(
        "--write-docs",
        metavar="NAME",
        help="paste this command and its output into docs/benchmarks.md's "
        "<!-- output:NAME --> region",
    )


def run_pasted(name: str, script: str, argv: Sequence[str] | None, run: Callable[[], int]) -> int:
    """``run()`` (a bench's ``main``), its standard output also pasted into
    ``docs/benchmarks.md`` under ``<!-- output:NAME -->`` headed by the command line (``script``
    and ``argv`` less ``--write-docs``)."""
    given = list(sys.argv[1:] if argv is None else argv)
    args: list[str] = []
    skip = False
    for arg in given:
        if skip:
            skip = False
        elif arg == "--write-docs":
            skip = True
        elif not arg.startswith("--write-docs="):
            args.append(arg)
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        code = run()
    command = shlex.join(["python", script, *args])
    where = f"{BENCHMARKS.relative_to(ROOT)} <!-- output:{name} -->"
    if not paste_output(name, command, tee.text()):
        print(f"--write-docs: {where} is not there; nothing written", file=sys.stderr)
        return code or 2
    print(f"wrote the output of `{command}` into {where}", file=sys.stderr)
    return code
