"""``make bench-scale``: what one tick costs Azure and this process as the estate grows.

The daemon (``Daemon.tick`` with the adapters ``run`` builds) against the HTTPS fake Azure in a
separate process (so this process's CPU is the daemon's alone), with a fixed latency on every
answer, for fleets of scale-set pools over 5 regions and 2 subscriptions, every pool steady
(its load matches its size, so nothing is written). Per fleet: Azure requests per tick by
operation in steady state, wall time and CPU per tick, and RSS after the ticks.

Scale set bodies (``--bodies``): ``example`` (default) answers each scale set as Microsoft's
published ``VirtualMachineScaleSet_Get_WithUserData`` example does, 2.5 kB, with its own name,
size and state; ``maximum`` as the ``MaximumSet`` update response, 8.4 kB (every property set);
``compact`` 1.1 kB (the fields the examples share). Azure answers with the scale set's whole
model, so the size of a list is what the daemon reads every tick.

Usage: ``python bench/scale.py [--sizes 20,200,1000] [--ticks N] [--latency-ms 20]
[--bodies example|maximum|compact]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running without installing the package
    sys.path.insert(0, str(ROOT))

REGIONS = ("westeurope", "northeurope", "eastus", "westus2", "southeastasia")
SUBSCRIPTIONS = ("00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-0000000000b2")
CAPACITY = 3
CALLS = 36.0
"""Calls per pool: 3 instances × 15 calls × 0.8 target utilisation, so every pool holds."""

TARGET_REQUESTS_PER_POOL = 0.05
TARGET_WALL_SECONDS = 2.0
TARGET_CPU_PER_200 = 0.15
TARGET_RSS_MB = 150.0


def fleet(n: int) -> list[tuple[str, str, str]]:
    """(subscription, resource group, region) of each pool: one group per subscription and
    region, the pools spread round-robin."""
    out = []
    for i in range(n):
        sub = SUBSCRIPTIONS[i % len(SUBSCRIPTIONS)]
        region = REGIONS[(i // len(SUBSCRIPTIONS)) % len(REGIONS)]
        out.append((sub, f"cvi-{sub[-2:]}-{region}", region))
    return out


def _serve(
    n: int,
    latency: float,
    directory: str,
    conn: Connection,
    minutes: int = 120,
    bodies: str = "example",
) -> None:
    """The fake Azure, in its own process, answering commands on ``conn``."""
    from tests.fakeazure import FakeAzure

    fake = FakeAzure(Path(directory), subscription_id=SUBSCRIPTIONS[0])
    for sub in SUBSCRIPTIONS[1:]:
        fake.add_subscription(sub)
    fake.vmss_page_size = 1000
    fake.vmss_body = bodies
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    # the daemon's clock steps a tick interval per tick: load for every minute it will read
    points = [(minute + timedelta(minutes=k), CALLS) for k in range(-60, minutes + 5)]
    ids = []
    for i, (sub, rg, region) in enumerate(fleet(n)):
        rid = fake.add_vmss(
            rg, f"p{i:04d}", capacity=CAPACITY, location=region, subscription_id=sub
        )
        fake.set_metric(rid, "Pexip/CVI", "ActiveCalls", points)
        ids.append(rid)
    fake.latency = latency
    fake.start()
    conn.send((fake.url, fake.ca_file, ids))
    while True:
        command = conn.recv()
        if command == "requests":
            seen = fake.requests
            fake.clear_requests()
            conn.send([(r.method, r.path, r.is_write) for r in seen])
        else:
            fake.stop()
            conn.send("stopped")
            return


def _operation(method: str, path: str) -> str:
    p = path.lower().rstrip("/")
    last = p.rsplit("/", 1)[-1]
    if p.endswith("metrics:getbatch"):
        return "metrics.getBatch"
    if last == "virtualmachinescalesets":
        return "vmss.list" if "/resourcegroups/" in p else "vmss.list_all"
    if "/virtualmachinescalesets/" in p and method == "GET" and p.count("/") == 8:
        return "vmss.get"
    if last == "usages":
        return "usage.list"
    if last == "skus":
        return "resource_skus.list"
    if last == "autoscalesettings":
        return "autoscale.list"
    return f"{method} {last}"


def _config(url: str, ca: str, ids: Sequence[str], n: int) -> Any:
    from scaler.config import parse_config

    pools = []
    for i, ((_, _, region), rid) in enumerate(zip(fleet(n), ids, strict=True)):
        pools.append(
            {
                "name": f"p{i:04d}",
                "resource_id": rid,
                "location": region,
                "vcpus_per_instance": 4,
                "calls_per_instance": 15,
                "min": 1,
                "max": 40,
                "metric": {
                    "namespace": "Pexip/CVI",
                    "name": "ActiveCalls",
                    "window_minutes": 5,
                    "lag_minutes": 2,
                    "published_elsewhere": True,
                },
                "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
            }
        )
    return parse_config(
        {
            "daemon": {"interval_seconds": 60, "tick_deadline_seconds": 50, "read_workers": 8},
            "azure": {
                "subscription_id": SUBSCRIPTIONS[0],
                "subscriptions": list(SUBSCRIPTIONS[1:]),
                "location": REGIONS[0],
                "resource_manager_url": url,
                "metrics_url": url,
                "credential": "static-token",
                "ca_bundle": ca,
                "polling_interval_seconds": 0,
            },
            "pools": pools,
        }
    )


def machine() -> str:
    """The machine a figure was measured on: CPU model, cores, Python, and its load."""
    import platform

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        # the machine may be shared: how busy it was when the figures were taken
        busy = f", load average {os.getloadavg()[0]:.1f} at the start"
    except OSError:
        busy = ""
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}{busy}"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(n: int, *, ticks: int, latency: float, bodies: str = "example") -> dict[str, Any]:
    """One fleet: the daemon's steady-state tick, measured."""
    os.environ.setdefault("CVI_AUTOSCALER_STATIC_TOKEN", "bench-token")
    from scaler.daemon import Daemon
    from scaler.logs import configure
    from scaler.wiring import build_adapters

    # as ``run`` logs under systemd or in a container: JSON lines (here into /dev/null)
    configure(fmt="json", stream=open(os.devnull, "w"))  # noqa: SIM115
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    with tempfile.TemporaryDirectory() as directory:
        server = ctx.Process(
            target=_serve, args=(n, latency, directory, there, ticks + 5, bodies), daemon=True
        )
        server.start()
        url, ca, ids = here.recv()
        cfg = _config(url, ca, ids, n)

        class Clock:
            """Wall time plus one tick interval per tick: the daemon sees the ticks a minute
            apart, as it lives, so what it keeps per time window (stabilisation, cooldowns)
            holds what a minute's cadence holds, not every back-to-back tick of the bench."""

            def __init__(self) -> None:
                self.offset = 0.0

            def now(self) -> float:
                return time.time() + self.offset

        clock = Clock()
        w_start, c_start = time.perf_counter(), time.process_time()
        adapters = build_adapters(cfg, clock=clock)
        daemon = Daemon(
            config=cfg,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=clock,
        )
        try:
            warm = 3
            walls, cpus = [], []
            by_op: Counter[str] = Counter()
            writes = 0
            rss_warm = 0.0
            startup: dict[str, Any] = {}
            for tick in range(ticks):
                if tick == 1:  # preflight and the first tick: what a start or `once` costs
                    here.send("requests")
                    first = Counter(_operation(m, p) for m, p, _ in here.recv())
                    startup = {
                        "wall": time.perf_counter() - w_start,
                        "cpu": time.process_time() - c_start,
                        "by_op": dict(sorted(first.items())),
                    }
                if tick == warm:
                    here.send("requests")
                    here.recv()  # forget the warm-up's requests (SKUs, preflight)
                    rss_warm = _rss_mb()
                w0, c0 = time.perf_counter(), time.process_time()
                outcomes = daemon.tick()
                clock.offset += cfg.daemon.interval_seconds
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
                if tick == warm:
                    assert all(o.error is None for o in outcomes), outcomes[:3]
            here.send("requests")
            seen = here.recv()
            for method, path, is_write in seen:
                by_op[_operation(method, path)] += 1
                writes += bool(is_write)
            steady = max(1, ticks - warm)
            return {
                "pools": n,
                "ticks": ticks,
                "by_op": {k: v / steady for k, v in sorted(by_op.items())},
                "requests_per_tick": sum(by_op.values()) / steady,
                "writes": writes,
                "wall": statistics.median(walls[warm:]),
                "cpu": statistics.median(cpus[warm:]),
                "rss_warm": rss_warm,
                "rss_end": _rss_mb(),
                "startup": startup,
            }
        finally:
            adapters.close()
            here.send("stop")
            here.recv()
            server.join(timeout=10)


def _measure_into(conn: Connection, n: int, ticks: int, latency: float, bodies: str) -> None:
    conn.send(measure(n, ticks=ticks, latency=latency, bodies=bodies))


def _in_process(n: int, *, ticks: int, latency: float, bodies: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_measure_into, args=(there, n, ticks, latency, bodies))
    proc.start()
    result: dict[str, Any] = here.recv()
    proc.join()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,200,1000")
    ap.add_argument("--ticks", type=int, default=500)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--bodies", choices=("example", "maximum", "compact"), default="example")
    ap.add_argument(
        "--write-docs",
        metavar="NAME",
        help="paste this command and its output into docs/benchmarks.md's "
        "<!-- output:NAME --> region",
    )
    args = ap.parse_args(argv)
    if args.write_docs:
        from bench.figures import run_pasted

        return run_pasted(args.write_docs, "bench/scale.py", argv, lambda: run(args))
    return run(args)


def run(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"scale: {len(REGIONS)} regions, {len(SUBSCRIPTIONS)} subscriptions, "
        f"{args.latency_ms:.0f} ms per answer, {args.ticks} ticks per fleet, steady load, "
        f"{args.bodies} scale set bodies; {machine()}"
    )
    rows = []
    for n in sizes:
        # each fleet in a fresh process, so one's RSS does not carry into the next
        rows.append(
            _in_process(n, ticks=args.ticks, latency=args.latency_ms / 1000.0, bodies=args.bodies)
        )
    ops = sorted({op for r in rows for op in r["by_op"]})
    head = ["pools", *ops, "req/tick", "req/pool", "wall s", "CPU s", "CPU/200", "RSS MB", "writes"]
    print(" | ".join(head))
    ok = True
    for r in rows:
        per_pool = r["requests_per_tick"] / r["pools"]
        cpu200 = r["cpu"] * 200.0 / r["pools"]
        cells = [str(r["pools"])]
        cells += [f"{r['by_op'].get(op, 0.0):.1f}" for op in ops]
        cells += [
            f"{r['requests_per_tick']:.1f}",
            f"{per_pool:.3f}",
            f"{r['wall']:.2f}",
            f"{r['cpu']:.3f}",
            f"{cpu200:.3f}",
            f"{r['rss_warm']:.0f}→{r['rss_end']:.0f}",
            str(r["writes"]),
        ]
        print(" | ".join(cells))
    for r in rows:
        st = r["startup"]
        ops = ", ".join(f"{k} {v}" for k, v in st["by_op"].items())
        print(
            f"{r['pools']} pools, start-up (adapters, preflight, first tick; after imports and "
            f"config): {st['wall']:.2f} s wall, {st['cpu']:.2f} CPU-s; requests: {ops}"
        )
    big = rows[-1]
    checks = [
        (
            f"{big['pools']} pools: ≤ {TARGET_REQUESTS_PER_POOL} requests per pool per tick",
            big["requests_per_tick"] / big["pools"] <= TARGET_REQUESTS_PER_POOL,
        ),
        (f"tick wall time < {TARGET_WALL_SECONDS} s", big["wall"] < TARGET_WALL_SECONDS),
        (
            f"< {TARGET_CPU_PER_200} CPU-s per tick per 200 pools",
            all(r["cpu"] < TARGET_CPU_PER_200 * max(1.0, r["pools"] / 200.0) for r in rows),
        ),
        (
            f"RSS < {TARGET_RSS_MB:.0f} MB after warm-up",
            all(r["rss_end"] < TARGET_RSS_MB for r in rows),
        ),
        ("no write in steady state", all(r["writes"] == 0 for r in rows)),
    ]
    for label, passed in checks:
        ok &= passed
        print(f"  {'ok  ' if passed else 'MISS'} {label}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
