"""structlog set-up: JSON lines when the stream is not a terminal, readable lines when it is.

Events have stable dotted names (``decision.made``, ``scale.applied``, ``scale.dry_run``,
``quota.limited``, ``metrics.stale``…); values go in key/value pairs, never into the message.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from scaler.redact import show_url

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog for the process. ``fmt``: ``auto`` (JSON unless a TTY), ``json``,
    ``console``. Logs go to ``stream`` (default stdout, as containers and journald expect)."""
    out = stream if stream is not None else sys.stdout
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    # APScheduler reports overruns through stdlib logging; the daemon logs them as `tick.overrun`.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    # Libraries (the Azure SDK, urllib3) log through stdlib logging; unconfigured, Python prints
    # their warnings and tracebacks raw into the log stream (an HTML 500 made the SDK print a
    # multi-line JSONDecodeError traceback between the JSON lines). Each becomes one event.
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Library)]:
        root.removeHandler(handler)
    root.addHandler(_Library())
    root.setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(**bind: Any) -> Any:
    """A bound structlog logger."""
    return structlog.get_logger("cvi-autoscaler").bind(**bind)


def scrub(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: no URL in any logged text carries a user name or password."""
    for key, value in event.items():
        if isinstance(value, str) and "@" in value:
            event[key] = show_url(value)
    return event


class _Library(logging.Handler):
    """Records of libraries' stdlib loggers as one ``library.log`` event each: the first line
    of the message only (no traceback: the adapters report the failure itself, translated),
    at most 300 characters, as a warning for ERROR and above, else debug."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lines = record.getMessage().strip().splitlines()
            text = lines[0][:300] if lines else ""
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                first = (str(exc).splitlines() or [""])[0][:200]
                text += f" ({type(exc).__name__}: {first})"
            log = get_logger()
            emit = log.warning if record.levelno >= logging.ERROR else log.debug
            emit("library.log", logger=record.name, level_name=record.levelname, message=text)
        except Exception:  # logging must never fail the caller
            self.handleError(record)
