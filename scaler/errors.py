"""One error hierarchy for the daemon.

::

    ScalerError
    ├── ConfigError          bad config or usage: the CLI exits 2, nothing is written to Azure
    └── AdapterError         an outside system failed; carries the pool (if any) and the operation
        ├── TransientError   worth retrying later (429, 5xx, timeouts, connection errors):
        │                    the pool holds this tick, the loop keeps going
        └── PermanentError   retrying will not help (401/403/404, quota refusals, malformed
                             answers): the pool holds and an alert-level event is logged

Adapters translate their library's exceptions into these (``raise … from exc``); nothing above the
adapters ever sees an ``azure.*`` exception.
"""

from __future__ import annotations


class ScalerError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(ScalerError):
    """The configuration (file, environment override or command line) is invalid.

    ``problems`` holds one line per problem, each naming the key path and the bad value.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class AdapterError(ScalerError):
    """An outside system (Azure, Pexip) failed to answer usefully."""

    def __init__(
        self, message: str, *, operation: str = "", code: str = "", status: int | None = None
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code
        self.status = status


class TransientError(AdapterError):
    """Likely to succeed later: throttling, server errors, timeouts, lost connections."""


class PermanentError(AdapterError):
    """Will not succeed by retrying: authorisation, missing resources, refusals, bad answers."""
