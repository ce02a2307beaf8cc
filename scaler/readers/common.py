"""What the readers share: the export's minute grid and the credential its queries use."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from scaler.sources import ExportContext

MINUTE = 60.0


def grid(since: datetime, until: datetime) -> tuple[float, int]:
    """The first minute of ``[since, until)`` (seconds since the epoch) and its minutes."""
    lo = since.timestamp()
    return lo, max(0, math.ceil((until.timestamp() - lo) / MINUTE))


def credential(ctx: ExportContext) -> Any:
    """The export's Azure credential: the one given (tests, emulators), else the configured
    one, closed with the export."""
    if ctx.credential is not None:
        return ctx.credential
    from scaler.adapters.azure import make_credential

    made = make_credential(ctx.config.azure)
    if hasattr(made, "close"):
        ctx.opened.append(made)
    return made
