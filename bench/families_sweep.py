"""The recommended set on the scenario families' held-out seeds at several ``target_unserved``
settings, beside the ideal online reference (the frontier the issue asks for).

Usage: ``python bench/families_sweep.py [--targets 1e-4 3e-4] [--seeds 101 102 103]
[--family NAME ...] [--no-ideal]``: one line per family and setting (cost × clairvoyant,
unserved outside events as a share of call-minutes, inside against the allowance, × the ideal
online reference at the same unserved share), then the mean over families.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import FAMILY_SEEDS, RECOMMENDED, event_split  # noqa: E402
from scaler.backtest import Options, run_backtest  # noqa: E402
from scaler.backtest.results import ideal_at  # noqa: E402
from scaler.config import parse_config  # noqa: E402
from tools.gen_traces import FAMILIES, scenario  # noqa: E402


def with_predictive(doc: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with ``options`` set on every pool's predictive policy (composites included)."""

    def visit(policies: list[dict[str, Any]]) -> None:
        for p in policies:
            if p.get("type") == "predictive":
                for k, v in options.items():
                    if v is None:
                        p.pop(k, None)
                    else:
                        p[k] = v
            visit(p.get("policies", []))

    for pool in doc.get("pools", []):
        visit(pool.get("policies", []))
    return doc


def _job(job: tuple[str, int, dict[str, Any], bool]) -> dict[str, Any]:
    family, seed, options, ideal = job
    sc = scenario(family, seed)
    trace = sc.trace()
    doc = tomllib.loads(RECOMMENDED.read_text(encoding="utf-8"))
    config = parse_config(with_predictive(doc, dict(options)), environ={})
    models = {p: sc.model(p) for p in trace.pools} if ideal else None
    result = run_backtest(config, trace, options=Options(warmup_days=7, workers=1), models=models)
    split = event_split(result, sc, trace, config)
    total = result.total
    calls = sum(sum(v for v in trace.calls[p] if v is not None) for p in trace.pools)
    at = ideal_at(result.ideal, split["outside"] / calls) if result.ideal else None
    clair = result.clairvoyant.vcpu_hours if result.clairvoyant else float("nan")
    return {
        "family": family,
        "seed": seed,
        "options": options,
        "x_clairvoyant": total.vcpu_hours / clair,
        "outside_share": split["outside"] / calls,
        "inside": split["inside"],
        "allowance": split["allowance"],
        "vs_ideal": total.vcpu_hours / at if at else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=float, nargs="+", default=[1e-4])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(FAMILY_SEEDS))
    parser.add_argument("--family", action="append", choices=list(FAMILIES))
    parser.add_argument(
        "--set", action="append", default=[], help="predictive option k=v (k=: its default)"
    )
    parser.add_argument("--no-ideal", action="store_true")
    args = parser.parse_args()
    extra: dict[str, Any] = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        extra[k] = tomllib.loads(f"v = {v}")["v"] if v else None  # empty: the default
    jobs = [
        (f, s, {**extra, "target_unserved": t}, not args.no_ideal)
        for t in args.targets
        for f in args.family or list(FAMILIES)
        for s in args.seeds
    ]
    workers = min(2, os.cpu_count() or 1)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        rows = pool.map(_job, jobs, chunksize=1)
    for t in args.targets:
        mine = [r for r in rows if r["options"]["target_unserved"] == t]
        print(f"\ntarget_unserved = {t:g} {extra or ''}")
        head = ("family", "× clairv.", "unserved out", "in/allowed", "× ideal")
        print(f"{head[0]:<22} {head[1]:>9} {head[2]:>13} {head[3]:>14} {head[4]:>8}")
        per_family = []
        for f in args.family or list(FAMILIES):
            rs = [r for r in mine if r["family"] == f]
            x = statistics.mean(r["x_clairvoyant"] for r in rs)
            out = statistics.mean(r["outside_share"] for r in rs)
            vi = statistics.mean(r["vs_ideal"] for r in rs)
            inside = sum(r["inside"] for r in rs)
            allowed = sum(r["allowance"] for r in rs)
            per_family.append((x, out, vi))
            print(f"{f:<22} {x:9.3f} {out:12.4%} {inside:6.0f}/{allowed:<7.0f} {vi:8.3f}")
        print(
            f"{'mean':<22} {statistics.mean(p[0] for p in per_family):9.3f} "
            f"{statistics.mean(p[1] for p in per_family):12.4%} {'':>14} "
            f"{statistics.mean(p[2] for p in per_family):8.3f}"
        )


if __name__ == "__main__":
    main()
