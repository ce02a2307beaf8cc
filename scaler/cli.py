"""Command line: ``run``, ``once``, ``validate``, ``demo``, ``backtest`` and ``forecast``.

Exit codes are a contract: 0 ok, 2 bad config or usage, 1 anything else.
"""

from __future__ import annotations

import json
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

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2

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
    type=click.FloatRange(min=0.0),
    default=7.0,
    show_default=True,
    help="Leading days of the trace that are history only (not scored).",
)
allow_competing_option = click.option(
    "--allow-competing",
    is_flag=True,
    help="Start even if an enabled Azure autoscale setting targets a pool's scale set "
    "(a warning instead of exit 2); both will then resize it.",
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cvi-autoscaler")
def main() -> None:
    """cvi-autoscaler: size Pexip CVI Teams Connector scale sets to their call load."""


@main.command()
@config_option
def validate(config_path: Path) -> None:
    """Check a configuration file; exit 0 when valid, 2 naming each bad key when not."""
    config = _load(config_path)
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
    from scaler.adapters.pools import build_adapters

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
    if code != EXIT_OK or any(d.reads.busy() for d in daemons):
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
    if any(d.reads.busy() for d in ran):  # a read stuck in a slow call: do not wait for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@main.command()
@click.option("--speed", default=1080.0, show_default=True, help="Simulated seconds per second.")
@click.option("--start-hour", default=5, show_default=True, help="First simulated hour (UTC).")
@click.option("--end-hour", default=23, show_default=True, help="Last simulated hour (UTC).")
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
    type=click.FloatRange(min=0.0, max=99.0),
    default=10.0,
    show_default=True,
    help="CPU % of a ready instance without calls (model of percent_of_capacity metrics).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes replaying pools (default: up to 2 for long runs).",
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
@click.option("--days", type=click.FloatRange(min=0.0, min_open=True), help="Instead of --since.")
@click.option(
    "--source",
    type=click.Choice(["auto", "azure-monitor", "pexip", "log-analytics"]),
    default="auto",
    show_default=True,
    help="Where the calls come from; auto: each pool's metric.source.",
)
@click.option("--pool", "pools", multiple=True, help="Only this pool (repeatable).")
@click.option(
    "--teams-protocol",
    default="TEAMS",
    show_default=True,
    help="Pexip history: the protocol of a call's Teams leg.",
)
def trace_export(
    config_path: Path,
    output: Path,
    since: datetime | None,
    until: datetime | None,
    days: float | None,
    source: str,
    pools: tuple[str, ...],
    teams_protocol: str,
) -> None:
    """Write a trace of the configured pools' calls per minute from Azure Monitor, Pexip's
    call history or Log Analytics (times in UTC)."""
    from scaler.trace_export import export, parse_span

    config = _load(config_path)
    configure(config.daemon.log_level, config.daemon.log_format, stream=sys.stderr)
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
    except (ScalerError, OSError) as err:
        click.echo(f"trace export: {err}", err=True)
        sys.exit(EXIT_FAILURE)
    for s in summary:
        note = f" ({s.note})" if s.note else ""
        click.echo(f"{s.pool}: {s.known}/{s.minutes} minutes known from {s.source}{note}")
    click.echo(f"wrote {output}")


@main.group("import")
def import_() -> None:
    """Bring an existing scaler's settings over as a configuration."""


@import_.command("azure-autoscale")
@click.argument("setting_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the configuration here instead of stdout.",
)
@click.option("--pool-name", default="", help="Pool name (default: the scale set's name).")
@click.option("--vcpus-per-instance", type=click.IntRange(1, 1024), default=4, show_default=True)
@click.option(
    "--calls-per-instance",
    type=click.FloatRange(0, 10000, min_open=True),
    default=15.0,
    show_default=True,
)
def import_azure_autoscale(
    setting_file: Path,
    output: Path | None,
    pool_name: str,
    vcpus_per_instance: int,
    calls_per_instance: float,
) -> None:
    """The configuration equivalent to an Azure autoscale setting (the JSON of
    ``az monitor autoscale show``): profiles → schedule, rules → step, capacity → the pool's
    min/max and missing-data floor. Exit 2 naming the JSON path of what cannot be translated."""
    from scaler.importers import load_setting, translate

    try:
        text = translate(
            load_setting(setting_file),
            pool_name=pool_name,
            vcpus_per_instance=vcpus_per_instance,
            calls_per_instance=calls_per_instance,
        )
    except ConfigError as err:
        for line in err.problems:
            click.echo(f"import error: {line}", err=True)
        sys.exit(EXIT_CONFIG)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
