"""Command line: ``run``, ``once``, ``validate``, ``demo``, ``backtest`` and ``forecast``.

Exit codes are a contract: 0 ok, 2 bad config or usage, 1 anything else.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, cast

import click

from scaler.backtest.engine import SCALE_IN_MODES, ScaleIn
from scaler.config import Config, load_config
from scaler.errors import ConfigError, ScalerError
from scaler.logs import configure, get_logger
from scaler.redact import show_url
from scaler.traces import TraceError

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


class SourceChoice(click.Choice[str]):
    """``auto`` or a registered metric source (``scaler.sources``), read when first asked, so
    that a source added by an entry point is a choice like the built-ins."""

    def __init__(self) -> None:
        super().__init__([], case_sensitive=True)

    @property
    def choices(self) -> tuple[str, ...]:
        from scaler.sources import discover

        return ("auto", *discover())

    @choices.setter
    def choices(self, value: Any) -> None:
        """The choices are the registry's; what ``click.Choice`` sets is not kept."""


class FiniteRange(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and ``inf`` (a NaN compares false with
    both bounds, so the range alone lets it through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


VALIDATE_LISTS = 20
"""Pools ``validate`` names on its one line (a fleet's thousand names help no one)."""


config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML configuration file.",
)
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Read and decide for real, write nothing to Azure."
)
trace_option = click.option(
    "--trace",
    "trace_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Trace CSV (timestamp,pool,calls).",
)
warmup_option = click.option(
    "--warmup-days",
    type=FiniteRange(min=0.0, max=3650.0),
    default=7.0,
    show_default=True,
    help="Leading days of the trace that are history only (not scored).",
)
allow_competing_option = click.option(
    "--allow-competing",
    is_flag=True,
    help="Start even if another scaler sizes a pool — an enabled Azure autoscale setting on "
    "its scale set, or Pexip's dynamic bursting on a vm-set pool's nodes (a warning instead "
    "of exit 2); both will then resize it.",
)


def _fail_config(err: ConfigError) -> NoReturn:
    for line in err.problems:
        click.echo(f"config error: {line}", err=True)
    sys.exit(EXIT_CONFIG)


def _load(path: Path, dry_run: bool = False) -> Config:
    try:
        return load_config(path, dry_run=dry_run or None)
    except ConfigError as err:
        _fail_config(err)


_BAD_PATH = frozenset(
    {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EROFS}
)
"""``OSError`` numbers that mean the path given on the command line is wrong (exit 2)."""


def error_line(err: BaseException) -> tuple[int, list[str]]:
    """How the command line reports an error that reached its top level: the exit code (2
    for bad input: config, trace, a path that cannot be used; 1 for a call that failed or
    anything else) and the lines to print, one per problem, never a traceback."""
    if isinstance(err, ConfigError):
        return EXIT_CONFIG, [f"config error: {show_url(p)}" for p in err.problems]
    if isinstance(err, TraceError):
        return EXIT_CONFIG, [f"trace error: {err}"]
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        text = f"error: {where}{err.strerror or type(err).__name__}"
        return (EXIT_CONFIG if err.errno in _BAD_PATH else EXIT_FAILURE), [text]
    if isinstance(err, RecursionError):
        return EXIT_CONFIG, ["error: the input is nested too deeply to be read"]
    if isinstance(err, ScalerError):
        first = (str(err).splitlines() or [""])[0]
        return EXIT_FAILURE, [f"error: {show_url(first)[:500]}"]
    first = (str(err).splitlines() or [""])[0]
    return EXIT_FAILURE, [
        f"error: unexpected {type(err).__name__}: {show_url(first)[:300]} (a bug: please "
        "report it; CVI_AUTOSCALER_TRACEBACK=1 shows where it happened)"
    ]


class _Main(click.Group):
    """The command group whose top level turns every error a command lets out into one line
    per problem and exit 2 or 1 (``error_line``); click's own usage errors stay click's."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:
            if os.environ.get("CVI_AUTOSCALER_TRACEBACK"):
                raise
            code, lines = error_line(err)
            for line in lines:
                click.echo(line, err=True)
            ctx.exit(code)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cvi-autoscaler")
def main() -> None:
    """cvi-autoscaler: size Pexip CVI Teams Connector scale sets to their call load."""


@main.command()
@config_option
@click.option(
    "--offline",
    is_flag=True,
    help="Check the file alone: leave out the secrets start-up would read (the Management "
    "Node's password variable or file).",
)
def validate(config_path: Path, offline: bool) -> None:
    """Check a configuration file as start-up would; exit 0 when valid, 2 naming every bad
    key and value in one report when not."""
    from scaler.preflight import secret_problems

    problems: list[str] = []
    config: Config | None = None
    try:
        config = load_config(config_path)
    except ConfigError as err:
        problems += err.problems
    if not offline:
        problems += secret_problems(config_path, config)
    if problems:
        _fail_config(ConfigError(problems))
    assert config is not None
    shown = config.pools[:VALIDATE_LISTS]
    pools = ", ".join(f"{p.name} ({p.min}-{p.max})" for p in shown)
    if len(config.pools) > len(shown):
        pools += f" and {len(config.pools) - len(shown)} more"
    click.echo(f"{config_path}: valid; {len(config.pools)} pool(s): {pools}")


def _install_stop_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        get_logger().info("daemon.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _with_adapters(
    config: Config, body: Callable[[Any], int], *, allow_competing: bool = False
) -> int:
    from scaler.wiring import build_adapters

    try:
        adapters = build_adapters(config, clock=_clock(), allow_competing=allow_competing)
    except ConfigError as err:
        _fail_config(err)
    try:
        return body(adapters)
    finally:
        adapters.close()


def _clock() -> Any:
    import time

    class WallClock:
        def now(self) -> float:
            return time.time()

    return WallClock()


@main.command()
@config_option
@dry_run_option
@allow_competing_option
def run(config_path: Path, dry_run: bool, allow_competing: bool) -> None:
    """Run the daemon until SIGTERM or SIGINT; SIGHUP re-reads the configuration."""
    from scaler.daemon import Daemon
    from scaler.service import run_service

    config = _load(config_path, dry_run)
    configure(config.daemon.log_level, config.daemon.log_format)
    stop = threading.Event()
    _install_stop_signals(stop)

    daemons: list[Daemon] = []

    def on_daemon(daemon: Daemon) -> None:
        daemons.append(daemon)

        def reload(signum: int, _frame: Any) -> None:
            get_logger().info("daemon.signal", signal=signal.Signals(signum).name)
            daemon.request_reload()

        signal.signal(signal.SIGHUP, reload)

    def reload_config() -> Config:
        return load_config(config_path, dry_run=dry_run or None)

    try:
        clean = run_service(
            config,
            stop=stop,
            reload_config=reload_config,
            on_daemon=on_daemon,
            allow_competing=allow_competing,
        )
    except ConfigError as err:
        _fail_config(err)
    code = EXIT_OK if clean else EXIT_FAILURE
    sys.stdout.flush()
    if code != EXIT_OK or any(d.ticker.reads.busy() for d in daemons):
        # a tick or one of its reads is stuck in a slow call: do not wait for its thread
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@main.command()
@config_option
@dry_run_option
@allow_competing_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pool on stdout.")
def once(config_path: Path, dry_run: bool, allow_competing: bool, as_json: bool) -> None:
    """One observe → decide → act pass, waiting for the resizes it starts. With [ha] on it
    writes only while holding the leader lease: if another replica leads it writes nothing
    and exits 1 (a dry run never touches the lease)."""
    from scaler.daemon import Daemon
    from scaler.service import OnceRefused, take_lease_for_once

    config = _load(config_path, dry_run)
    configure(config.daemon.log_level, config.daemon.log_format, stream=sys.stderr)

    def body(adapters: Any) -> int:
        leader = None
        if config.ha.enabled and not config.daemon.dry_run:
            try:
                leader = take_lease_for_once(config, adapters.credential)
            except OnceRefused as refused:
                click.echo(f"cvi-autoscaler once: {refused}", err=True)
                return EXIT_FAILURE
        try:
            return act(adapters, leader)
        finally:
            if leader is not None:
                leader.stop(release=True)
                leader.close()

    def act(adapters: Any, leader: Any) -> int:
        daemon = Daemon(
            config=config,
            metrics=adapters.metrics,
            actuator=adapters.compute,
            quota=adapters.compute,
            clock=_clock(),
            leader=leader,
        )
        outcomes = daemon.tick()
        ran.append(daemon)
        results = daemon.wait_for_resizes(config.daemon.once_wait_seconds)
        code = EXIT_OK
        for o in outcomes:
            record = o.to_json()
            if o.pool in results and results[o.pool] is not None:
                record["applied"] = False
                record["error"] = results[o.pool]
            if record["error"]:
                code = EXIT_FAILURE
            if as_json:
                click.echo(json.dumps(record))
            else:
                move = f"{o.current} -> {o.desired}" if o.current != o.desired else f"{o.current}"
                state = "applied" if record["applied"] else ("dry-run" if o.dry_run else "")
                extra = f" error: {record['error']}" if record["error"] else ""
                click.echo(f"{o.pool}: {move} {o.reason} {state}{extra}".rstrip())
        return code

    ran: list[Daemon] = []
    code = _with_adapters(config, body, allow_competing=allow_competing)
    if any(d.ticker.reads.busy() for d in ran):  # a read stuck in a slow call: do not wait for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@main.command()
@click.option(
    "--speed",
    type=FiniteRange(min=0.0, max=1e7, min_open=True),
    default=1080.0,
    show_default=True,
    help="Simulated seconds per second.",
)
@click.option(
    "--start-hour",
    type=click.IntRange(0, 23),
    default=5,
    show_default=True,
    help="First simulated hour (UTC).",
)
@click.option(
    "--end-hour",
    type=click.IntRange(1, 24),
    default=23,
    show_default=True,
    help="Last simulated hour (UTC).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Demo configuration (default: the bundled one).",
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Trace CSV of the day (default: the bundled one).",
)
def demo(
    speed: float,
    start_hour: int,
    end_hour: int,
    config_path: Path | None,
    trace_path: Path | None,
) -> None:
    """The daemon on the embedded simulator with a bundled day of call load; no Azure needed."""
    from scaler.demo import run_demo

    if not 0 <= start_hour < end_hour <= 24:
        raise click.UsageError("--start-hour must be before --end-hour, both within 0-24")
    if speed <= 0:
        raise click.UsageError("--speed must be positive")
    configure("error", "console", stream=sys.stderr)
    stop = threading.Event()
    _install_stop_signals(stop)
    try:
        run_demo(
            out=sys.stdout,
            speed=speed,
            start_hour=start_hour,
            end_hour=end_hour,
            config_path=config_path,
            trace_path=trace_path,
            stop=stop,
        )
    except ConfigError as err:
        _fail_config(err)
    except (ScalerError, ValueError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_FAILURE)


@main.command()
@click.option(
    "--config",
    "config_paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML configuration file (repeat to compare several).",
)
@click.option(
    "--compare",
    "compare_paths",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Another configuration scored on the same trace, side by side (repeatable).",
)
@trace_option
@click.option("--json", "as_json", is_flag=True, help="The backtest JSON on stdout.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write charts (PNG) and a self-contained HTML page to this directory.",
)
@warmup_option
@click.option(
    "--scale-in",
    type=click.Choice(SCALE_IN_MODES),
    default=None,
    help="How a scale-in treats busy instances: drop their calls, drain them (no new calls, "
    "billed until empty), or remove only idle ones and wait (drain-aware vmss). Default: by "
    "pool kind.",
)
@click.option(
    "--cpu-idle-percent",
    type=FiniteRange(min=0.0, max=99.0),
    default=10.0,
    show_default=True,
    help="CPU % of a ready instance without calls (model of percent_of_capacity metrics).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=None,
    help="Processes replaying pools (default: up to 2 for long runs).",
)
@click.option(
    "--pool",
    "pools",
    multiple=True,
    help="Replay only this pool of every config (repeatable); the trace's other rows are ignored.",
)
@click.option(
    "--sweep",
    default=None,
    metavar="KEY=V1,V2,…",
    help="Replay each config once per value of a predictive option, side by side (e.g. "
    "target_unserved=0.00001,0.00005,0.0001: the cost of each unserved share you accept).",
)
def backtest(
    config_paths: tuple[Path, ...],
    compare_paths: tuple[Path, ...],
    trace_path: Path,
    as_json: bool,
    report_dir: Path | None,
    warmup_days: float,
    scale_in: str | None,
    cpu_idle_percent: float,
    workers: int | None,
    pools: tuple[str, ...],
    sweep: str | None,
) -> None:
    """Replay a call-load trace through the policies and score cost against unserved calls."""
    from scaler.backtest.command import run_command

    sys.exit(
        run_command(
            config_paths=[*config_paths, *compare_paths],
            trace_path=trace_path,
            as_json=as_json,
            report_dir=report_dir,
            warmup_days=warmup_days,
            scale_in=cast(ScaleIn | None, scale_in),  # one of SCALE_IN_MODES: click checked it
            cpu_idle_percent=cpu_idle_percent,
            workers=workers,
            pools=pools,
            sweep=sweep,
        )
    )


@main.command()
@config_option
@trace_option
@click.option("--json", "as_json", is_flag=True, help="The forecast errors as JSON on stdout.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write a chart per pool (PNG) and an HTML page to this directory.",
)
@warmup_option
@click.option(
    "--hours-in",
    "zone",
    default="UTC",
    show_default=True,
    help="IANA time zone of the hour-of-day table.",
)
def forecast(
    config_path: Path,
    trace_path: Path,
    as_json: bool,
    report_dir: Path | None,
    warmup_days: float,
    zone: str,
) -> None:
    """Forecast vs actual of each pool's predictive policy, with error percentiles per hour."""
    from scaler.backtest.forecast import run_command as run_forecast_command

    sys.exit(
        run_forecast_command(
            config_path=config_path,
            trace_path=trace_path,
            as_json=as_json,
            report_dir=report_dir,
            warmup_days=warmup_days,
            zone=zone,
        )
    )


@main.group()
def trace() -> None:
    """Backtest traces from your own recorded load."""


@trace.command("export")
@config_option
@click.option(
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Trace CSV to write (timestamp,pool,calls).",
)
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]))
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="End (exclusive, UTC); default: now.",
)
@click.option(
    "--days",
    type=FiniteRange(min=0.0, max=400.0, min_open=True),
    help="Instead of --since (at most 400: a trace export covers at most 400 days).",
)
@click.option(
    "--source",
    type=SourceChoice(),
    default="auto",
    show_default=True,
    help="Where the calls come from; auto: each pool's metric.source.",
)
@click.option("--pool", "pools", multiple=True, help="Only this pool (repeatable).")
@click.option(
    "--teams-protocol",
    default=None,
    help="Pexip history: count the participants whose protocol is this as Teams legs (and "
    "trust minutes without one as 0). Default: the participants of conferences linked to a "
    "Teams meeting (history/v1/backplane/, protocol TEAMS); none found leaves the minutes "
    "unknown.",
)
def trace_export(
    config_path: Path,
    output: Path,
    since: datetime | None,
    until: datetime | None,
    days: float | None,
    source: str,
    pools: tuple[str, ...],
    teams_protocol: str | None,
) -> None:
    """Write a trace of the configured pools' calls per minute from Azure Monitor, Pexip's
    call history or Log Analytics (times in UTC)."""
    from scaler.trace_export import export, parse_span

    config = _load(config_path)
    configure(config.daemon.log_level, config.daemon.log_format, stream=sys.stderr)
    if not output.parent.is_dir():  # before any query: not after an hour of them
        click.echo(f"trace export: --output: {output.parent} is not a directory", err=True)
        sys.exit(EXIT_CONFIG)
    try:
        start, end = parse_span(since, until, days, datetime.now(UTC))
        summary = export(
            config,
            since=start,
            until=end,
            output=output,
            source=cast(Any, source),
            pools=pools,
            teams_protocol=teams_protocol,
        )
    except ConfigError as err:
        _fail_config(err)
    except OSError as err:  # the output cannot be written: a path that is wrong is exit 2
        code, lines = error_line(err)
        click.echo(f"trace export: {lines[0].removeprefix('error: ')}", err=True)
        sys.exit(code)
    except ScalerError as err:
        click.echo(f"trace export: {(str(err).splitlines() or [''])[0]}", err=True)
        sys.exit(EXIT_FAILURE)
    for s in summary:
        note = f" ({s.note})" if s.note else ""
        click.echo(f"{s.pool}: {s.known}/{s.minutes} minutes known from {s.source}{note}")
    click.echo(f"wrote {output}")


@main.group("import")
def import_() -> None:
    """Bring an existing scaler's settings over as a configuration."""


@import_.command("azure-autoscale")
@click.argument("setting_file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the configuration here instead of stdout.",
)
@click.option(
    "--name",
    "setting_name",
    default="",
    help="The setting to import when the file holds several (a list).",
)
@click.option("--pool-name", default="", help="Pool name (default: the scale set's name).")
@click.option("--vcpus-per-instance", type=click.IntRange(1, 1024), default=4, show_default=True)
@click.option(
    "--calls-per-instance",
    type=FiniteRange(0, 10000, min_open=True),
    default=15.0,
    show_default=True,
)
@click.option(
    "--without-predictive",
    is_flag=True,
    help="Import a setting with predictive autoscale enabled, leaving the prediction out.",
)
def import_azure_autoscale(
    setting_file: Path,
    output: Path | None,
    setting_name: str,
    pool_name: str,
    vcpus_per_instance: int,
    calls_per_instance: float,
    without_predictive: bool,
) -> None:
    """The configuration equivalent to an Azure autoscale setting (the JSON of
    ``az monitor autoscale show`` or ``list``, an ARM resource or template; ``-`` reads
    standard input): profiles → schedule, rules → step, capacity → the pool's min/max and each
    profile's floor, cap and missing-data floor. Exit 2 naming the JSON path of what cannot be
    translated; the result is checked as ``validate`` checks a file before it is written."""
    import tomllib

    from scaler.config import parse_config
    from scaler.importers import choose, load_settings, translate

    label = "standard input" if str(setting_file) == "-" else str(setting_file)
    try:
        found = choose(load_settings(setting_file), setting_name, label)
        text = translate(
            found,
            pool_name=pool_name,
            vcpus_per_instance=vcpus_per_instance,
            calls_per_instance=calls_per_instance,
            without_predictive=without_predictive,
        )
    except ConfigError as err:
        for line in err.problems:
            click.echo(f"import error: {line}", err=True)
        sys.exit(EXIT_CONFIG)
    try:  # the same checks as `validate`, so nothing is written that would be refused
        parse_config(tomllib.loads(text), environ={})
    except (tomllib.TOMLDecodeError, ConfigError) as err:
        problems = err.problems if isinstance(err, ConfigError) else [f"not valid TOML ({err})"]
        for line in problems:
            click.echo(f"import error: the imported config would be refused: {line}", err=True)
        sys.exit(EXIT_CONFIG)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        _write_atomically(output, text)
    except OSError as err:  # a path that cannot be used is bad input, as for every command
        click.echo(f"import error: --output: {output}: {err.strerror}", err=True)
        sys.exit(EXIT_CONFIG if err.errno in _BAD_PATH else EXIT_FAILURE)
    click.echo(f"wrote {output}", err=True)


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory, so a failure
    leaves the old file (or none) rather than half a config."""
    import tempfile

    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
