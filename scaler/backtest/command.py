"""The body of ``cvi-autoscaler backtest`` (the click command itself lives in ``scaler.cli``).

Exit codes: 0 done; 2 a bad config, trace or option (the message names the key path or the
trace's line); 1 anything else (e.g. the report could not be written).
"""

from __future__ import annotations

import copy
import json
import sys
import tomllib
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TextIO

from scaler.backtest.cost import Pricing, add_cost_json, cost_text
from scaler.backtest.engine import ScaleIn
from scaler.backtest.results import BacktestResult, summary_text
from scaler.backtest.runner import BacktestError, Options, check_pools, run_backtest
from scaler.config import Config, load_config, parse_config, read_config_text
from scaler.errors import ConfigError
from scaler.traces import Trace, TraceError, load_trace

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

PROGRESS_MIN_STEPS = 50_000
"""Runs shorter than this (pool-buckets) show no progress bar."""


def run_command(
    *,
    config_paths: Sequence[Path],
    trace_path: Path,
    as_json: bool,
    report_dir: Path | None,
    warmup_days: float,
    scale_in: ScaleIn | None,
    cpu_idle_percent: float,
    workers: int | None,
    pools: Sequence[str] = (),
    sweep: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the backtests and print them; returns the exit code.

    ``pools`` (``--pool``, repeatable) replays only those pools of every config. With several
    configs (``--compare``) or ``--pool``, each config replays the pools it names and the trace's
    rows of other pools are ignored, said on stderr; a single config without ``--pool`` keeps
    the strict rule that every row of the trace names one of its pools. Every config and the
    trace are checked before anything is replayed. ``sweep`` (``KEY=V1,V2,…``) replays each
    config once per value, with ``KEY`` set on every ``predictive`` policy it has."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        configs = _load_configs(config_paths, sweep)
        if pools:
            configs = _choose_pools(configs, list(dict.fromkeys(pools)))
        lenient = bool(pools) or len(config_paths) > 1
        traces = _load_traces(trace_path, configs, lenient=lenient)
        if lenient:
            _say_what_is_replayed(configs, traces, err)
        options = Options(
            warmup_days=warmup_days,
            scale_in=scale_in,
            cpu_idle_percent=cpu_idle_percent,
            workers=workers,
        )
        results = _replay(configs, traces, options, str(trace_path), err)
        pricings = [Pricing.of(config) for _, config in configs]
        _print_results(results, pricings, as_json=as_json, out=out)
        if report_dir is not None:
            _write_report(results, pricings, report_dir, err)
    except _Stop as stop:
        for line in stop.lines:
            print(f"{stop.kind}: {line}", file=err)
        return stop.code
    return EXIT_OK


class _Stop(Exception):
    """A phase of ``run_command`` ends the command: exit ``code`` after printing each of
    ``lines`` on stderr as ``kind: line``."""

    def __init__(self, code: int, lines: Sequence[str], kind: str) -> None:
        super().__init__(*lines)
        self.code, self.lines, self.kind = code, lines, kind


def _load_configs(paths: Sequence[Path], sweep: str | None) -> list[tuple[str, Config]]:
    """Every config (each once per swept value), named; all their problems at once."""
    configs: list[tuple[str, Config]] = []
    problems: list[str] = []
    for path in paths:
        try:
            if sweep is None:
                configs.append((str(path), load_config(path, offline=True)))
            else:
                configs += sweep_configs(path, sweep)
        except ConfigError as exc:
            problems += [f"{path}: {p}" for p in exc.problems]
    if problems:
        raise _Stop(EXIT_USAGE, problems, "config error")
    return configs


def _choose_pools(
    configs: Sequence[tuple[str, Config]], chosen: Sequence[str]
) -> list[tuple[str, Config]]:
    """Each config with only the pools ``--pool`` names; every config must have all of them."""
    problems: list[str] = []
    for name, config in configs:
        names = [p.name for p in config.pools]
        lacking = [p for p in chosen if p not in names]
        if lacking:
            problems.append(
                f"--pool: {name} has no pool {', '.join(map(repr, lacking))} "
                f"(it has: {', '.join(names)})"
            )
    if problems:
        raise _Stop(EXIT_USAGE, problems, "error")
    return [(name, _only(config, chosen)) for name, config in configs]


def _load_traces(
    path: Path, configs: Sequence[tuple[str, Config]], *, lenient: bool
) -> dict[str, Trace]:
    """The trace each config replays, checked to fit every config before any is replayed.
    ``lenient``: rows of pools a config lacks are ignored (said later); otherwise (one file, or
    a sweep whose variants share its pools) every row must name one of its pools."""
    try:
        if lenient:
            whole = load_trace(path)
            traces = {name: whole for name, _ in configs}
        else:
            known = [p.name for p in configs[0][1].pools]
            one = load_trace(path, known_pools=known)
            traces = {name: one for name, _ in configs}
    except TraceError as exc:
        raise _Stop(EXIT_USAGE, [str(exc)], "trace error") from exc
    except OSError as exc:
        raise _Stop(EXIT_USAGE, [f"{path}: {exc.strerror}"], "trace error") from exc
    problems: list[str] = []
    for name, config in configs:
        try:
            check_pools(config, traces[name])
        except BacktestError as exc:
            problems += [f"{name}: {p}" for p in exc.problems]
    if problems:
        raise _Stop(EXIT_USAGE, problems, "error")
    return traces


def _replay(
    configs: Sequence[tuple[str, Config]],
    traces: dict[str, Trace],
    options: Options,
    trace_name: str,
    err: TextIO,
) -> list[BacktestResult]:
    """Each config's backtest in turn (with a progress bar on a terminal)."""
    results: list[BacktestResult] = []
    for name, config in configs:
        trace = traces[name]
        try:
            with _progress_bar(config, trace, name, err) as bar:
                results.append(
                    run_backtest(
                        config,
                        trace,
                        options=options,
                        config_name=name,
                        trace_name=trace_name,
                        progress=bar,
                    )
                )
        except BacktestError as exc:
            raise _Stop(EXIT_USAGE, [f"{name}: {p}" for p in exc.problems], "error") from exc
    return results


def _print_results(
    results: list[BacktestResult],
    pricings: list[Pricing | None],
    *,
    as_json: bool,
    out: TextIO,
) -> None:
    """The results on stdout: one JSON document (keyed by config when there are several), or
    the summary table and, where the configs price their VMs, what they cost."""
    if as_json:
        docs = [
            r.to_json() if pricing is None else add_cost_json(r.to_json(), r, pricing)
            for r, pricing in zip(results, pricings, strict=True)
        ]
        doc: dict[str, Any]
        if len(results) == 1:
            doc = docs[0]
        else:
            doc = {r.config: d for r, d in zip(results, docs, strict=True)}
        print(json.dumps(doc, indent=2), file=out)
    else:
        print(summary_text(results), file=out)
        money = cost_text(results, pricings)
        if money:
            print(f"\n{money}", file=out)


def _write_report(
    results: Sequence[BacktestResult],
    pricings: Sequence[Pricing | None],
    report_dir: Path,
    err: TextIO,
) -> None:
    """``--report DIR``: the HTML report and its charts; which files, on stderr."""
    from scaler.backtest.report import ReportError, write_report

    try:
        written = write_report(results, report_dir, pricings=pricings)
    except ReportError as exc:
        raise _Stop(EXIT_FAILURE, [str(exc)], "error") from exc
    print(f"report: {', '.join(str(p) for p in written)}", file=err)


SWEEPABLE = "predictive"
"""The policy type ``--sweep`` sets its key on."""


def sweep_configs(path: Path, sweep: str) -> list[tuple[str, Config]]:
    """``path``'s config once per value of ``sweep`` (``KEY=V1,V2,…``), named ``path
    [KEY=V]``: every ``predictive`` table of the file (in a composite, a template or the pool
    defaults too) gets ``KEY = V``. A malformed sweep, a key the policy does not have or a file
    without such a policy is a ``ConfigError``."""
    from policies.predictive import PredictiveConfig

    key, sep, values = sweep.partition("=")
    key = key.strip()
    texts = [v.strip() for v in values.split(",")] if sep else []
    if not key or not texts or not all(texts):
        raise ConfigError(f"--sweep {sweep!r}: expected KEY=V1,V2,… (e.g. target_unserved=1e-4)")
    if key not in PredictiveConfig.model_fields:
        raise ConfigError(f"--sweep: {SWEEPABLE} has no option {key!r}")
    text = read_config_text(path)
    try:
        raw = tomllib.loads(text)
        parsed = [tomllib.loads(f"v = {v}")["v"] for v in texts]
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    out = []
    for text_value, value in zip(texts, parsed, strict=True):
        doc = copy.deepcopy(raw)
        if not _set_on_policies(doc, key, value):
            raise ConfigError(f"--sweep: {path} has no {SWEEPABLE} policy to set {key} on")
        name = f"{path} [{key}={text_value}]"
        try:
            out.append((name, parse_config(doc, offline=True)))
        except ConfigError as exc:
            raise ConfigError([f"[{key}={text_value}] {p}" for p in exc.problems]) from exc
    return out


def _set_on_policies(node: Any, key: str, value: Any) -> int:
    """Set ``key`` on every table of ``node`` whose ``type`` is the sweepable policy's;
    how many."""
    found = 0
    if isinstance(node, dict):
        if node.get("type") == SWEEPABLE:
            node[key] = value
            found += 1
        for child in node.values():
            found += _set_on_policies(child, key, value)
    elif isinstance(node, list):
        for child in node:
            found += _set_on_policies(child, key, value)
    return found


def _only(config: Config, names: Sequence[str]) -> Config:
    """``config`` with only the pools ``names`` (in the config's order)."""
    kept = [p for p in config.pools if p.name in names]
    return config.model_copy(update={"pools": kept})


def _say_what_is_replayed(
    configs: Sequence[tuple[str, Config]], traces: dict[str, Trace], err: TextIO
) -> None:
    """Which pools each config replays and which of the trace's rows it leaves out."""
    sets = set()
    for name, config in configs:
        mine = [p.name for p in config.pools]
        sets.add(frozenset(mine))
        ignored = [p for p in traces[name].pools if p not in mine]
        if ignored:
            print(
                f"note: {name}: replays {', '.join(mine)}; ignores the trace's rows of "
                f"{', '.join(ignored)}",
                file=err,
            )
    if len(sets) > 1:
        print(
            "note: the configs replay different pools, so only the rows of a pool they share "
            "compare (choose them with --pool)",
            file=err,
        )


class _Bar:
    """A tqdm bar fed by the runner's progress callback (pool-buckets done)."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def __call__(self, n: int) -> None:
        self._bar.update(n)


def _progress_bar(config: Config, trace: Trace, name: str, err: TextIO) -> Any:
    steps = trace.length * len(config.pools)
    if steps < PROGRESS_MIN_STEPS or not _is_terminal(err):
        return nullcontext(None)
    from tqdm import tqdm

    class _Context:
        def __enter__(self) -> Callable[[int], None]:
            self.bar = tqdm(
                total=steps,
                desc=Path(name).stem,
                unit=" pool-min",
                unit_scale=True,
                file=err,
                leave=False,
                dynamic_ncols=True,
            )
            return _Bar(self.bar)

        def __exit__(self, *exc: object) -> None:
            self.bar.close()

    return _Context()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
