"""Load and validate call-load trace CSVs (``timestamp,pool,calls``).

A trace is the replay input for demos and back-tests: one row per (timestamp, pool) with the
number of concurrent calls. Timestamps are ISO-8601 UTC on a regular step (normally one
minute); an empty ``calls`` cell or a missing row means the metric was unavailable, which
the autoscaler must tolerate, so both load as None rather than as zero.

Validation is strict and every error names the file and 1-based line (the header is
line 1), because traces are hand-edited and a silent misread would skew a back-test.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType

__all__ = ["HEADER", "Trace", "TraceError", "format_timestamp", "load_trace", "write_trace"]

HEADER: tuple[str, str, str] = ("timestamp", "pool", "calls")
"""Required columns of a trace CSV; extra columns are allowed and ignored."""

_DEFAULT_STEP_SECONDS = 60


class TraceError(ValueError):
    """A trace file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Trace:
    """Per-pool call counts on a regular time grid.

    ``calls[pool][i]`` is the number of concurrent calls at ``timestamp(i)``, or None when
    the metric was unavailable. Every pool's sequence has ``length`` entries.
    """

    start: datetime
    step_seconds: int
    pools: tuple[str, ...]
    calls: Mapping[str, Sequence[float | None]] = field(hash=False)
    length: int

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[datetime, str, float | None]],
        *,
        start: datetime,
        step_seconds: int = _DEFAULT_STEP_SECONDS,
    ) -> Trace:
        """A trace of generated load held in memory (``scaler.loadgen.generate``'s rows): every
        timestamp carries one row per pool, in the same pool order, from ``start`` on."""
        columns: dict[str, list[float | None]] = {}
        for _, pool, calls in rows:
            columns.setdefault(pool, []).append(None if calls is None else float(calls))
        lengths = {len(c) for c in columns.values()}
        if len(lengths) > 1:
            raise TraceError(f"generated rows: pools have unequal lengths {sorted(lengths)}")
        return cls(
            start=start,
            step_seconds=step_seconds,
            pools=tuple(columns),
            calls=MappingProxyType({k: tuple(v) for k, v in columns.items()}),
            length=lengths.pop() if lengths else 0,
        )

    @property
    def end(self) -> datetime:
        """The instant just after the last step (``start + length * step``), UTC."""
        return self.start + timedelta(seconds=self.step_seconds * self.length)

    def timestamp(self, index: int) -> datetime:
        """UTC time of step ``index`` (0 <= index < length)."""
        if not 0 <= index < self.length:
            raise IndexError(f"step {index} outside trace of {self.length} steps")
        return self.start + timedelta(seconds=self.step_seconds * index)


def format_timestamp(ts: datetime) -> str:
    """Render ``ts`` as trace CSV does: ``2026-11-18T09:00:00Z`` (naive means UTC)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if ts.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def write_trace(path: Path | str, rows: Iterable[tuple[datetime, str, float | None]]) -> int:
    """Write ``(timestamp, pool, calls)`` rows as a trace CSV; None becomes an empty cell.

    Integral call counts are written without a decimal point; negative, NaN or infinite
    counts raise ValueError, since the file could not be loaded back. Returns the row count.
    """
    count = 0
    last: datetime | None = None
    stamp = ""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        for ts, pool, calls in rows:
            if ts != last:  # rows come grouped by timestamp; format each once
                last, stamp = ts, format_timestamp(ts)
            if calls is None:
                cell = ""
            elif not 0 <= calls < math.inf:
                raise ValueError(
                    f"{pool} at {stamp}: calls must be a non-negative number, got {calls!r}"
                )
            elif float(calls).is_integer():
                cell = str(int(calls))
            else:
                cell = repr(float(calls))
            writer.writerow((stamp, pool, cell))
            count += 1
    return count


def load_trace(path: Path | str, *, known_pools: Collection[str] | None = None) -> Trace:
    """Read and validate a trace CSV.

    Raises :class:`TraceError` naming the file and line for a bad header, an unknown pool
    (when ``known_pools`` is given), an unparsable or non-UTC timestamp (naive counts as
    UTC), negative/NaN/infinite/non-numeric calls, rows out of time order, a repeated
    (timestamp, pool), a timestamp off the regular step grid, or a file with no data rows.
    The step is the most common gap between successive timestamps; pools keep the order in
    which they first appear.
    """
    name = str(path)
    known = None if known_pools is None else frozenset(known_pools)
    parsed: dict[str, int] = {}  # timestamp text -> microseconds since the epoch
    rows: list[tuple[int, int, str, float | None]] = []  # (line, time_us, pool, calls)
    stamps: list[tuple[int, int]] = []  # distinct (time_us, first line), in order
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise TraceError(f"{name} line 1: file is empty, expected header '{','.join(HEADER)}'")
        columns = [h.strip() for h in header]
        missing = [h for h in HEADER if h not in columns]
        if missing:
            raise TraceError(
                f"{name} line 1: header must contain {','.join(HEADER)}, "
                f"got {','.join(header)!r} (missing {', '.join(missing)})"
            )
        i_ts, i_pool, i_calls = (columns.index(h) for h in HEADER)
        width = max(i_ts, i_pool, i_calls) + 1
        previous = -1 << 80
        seen_here: dict[str, int] = {}  # pools already seen at the current timestamp -> line
        for row in reader:
            line = reader.line_num
            if len(row) < width:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                raise TraceError(
                    f"{name} line {line}: expected at least {width} columns, got {len(row)}"
                )
            text = row[i_ts]
            us = parsed.get(text)
            if us is None:
                us = _parse_timestamp(text.strip(), name, line)
                parsed[text] = us
            pool = row[i_pool].strip()
            if not pool:
                raise TraceError(f"{name} line {line}: pool is empty")
            if known is not None and pool not in known:
                config = ", ".join(sorted(known)) or "no pools"
                raise TraceError(
                    f"{name} line {line}: unknown pool {pool!r} (config has: {config})"
                )
            cell = row[i_calls].strip()
            calls: float | None = None
            if cell:
                try:
                    calls = float(cell) + 0.0  # + 0.0 turns "-0" into 0.0
                except ValueError:
                    calls = math.nan
                if not 0 <= calls < math.inf:  # also false for NaN
                    raise TraceError(
                        f"{name} line {line}: calls must be a non-negative number, got {cell!r}"
                    )
            if us > previous:
                previous = us
                seen_here = {}
                stamps.append((us, line))
            elif us < previous:
                raise TraceError(
                    f"{name} line {line}: timestamp {text.strip()!r} is earlier "
                    f"than the previous row's {_fmt_us(previous)} "
                    f"(rows must be in time order)"
                )
            first = seen_here.get(pool)
            if first is not None:
                raise TraceError(
                    f"{name} line {line}: duplicate row for pool {pool!r} at "
                    f"{_fmt_us(us)} (first on line {first})"
                )
            seen_here[pool] = line
            rows.append((line, us, pool, calls))
    if not rows:
        raise TraceError(f"{name} line 2: no data rows after the header")
    return _build(name, rows, stamps)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = 1_000_000


def _parse_timestamp(text: str, name: str, line: int) -> int:
    """Microseconds since the Unix epoch for an ISO-8601 UTC (or naive) timestamp."""
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(f"{name} line {line}: timestamp is not ISO-8601, got {text!r}") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    elif ts.utcoffset() != timedelta(0):
        raise TraceError(f"{name} line {line}: timestamp must be UTC (Z or +00:00), got {text!r}")
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def _to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _fmt_us(us: int) -> str:
    return format_timestamp(_to_datetime(us))


def _build(
    name: str, rows: list[tuple[int, int, str, float | None]], stamps: list[tuple[int, int]]
) -> Trace:
    """Detect the step, check the grid and lay the rows out per pool (gaps are None)."""
    start = stamps[0][0]
    diffs = Counter(b[0] - a[0] for a, b in pairwise(stamps))
    if diffs:
        # Most common difference; ties go to the smaller step.
        step = min(diffs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    else:
        step = _DEFAULT_STEP_SECONDS * _US
    if step % _US:
        raise TraceError(
            f"{name} line {stamps[1][1]}: the step between timestamps must be a "
            f"whole number of seconds, got {step / _US} s"
        )
    for us, line in stamps:
        if (us - start) % step:
            raise TraceError(
                f"{name} line {line}: timestamp {_fmt_us(us)} is off the "
                f"{step // _US} s step grid starting at {_fmt_us(start)}"
            )
    length = (stamps[-1][0] - start) // step + 1
    series: dict[str, list[float | None]] = {}
    for _, us, pool, calls in rows:
        values = series.get(pool)
        if values is None:
            values = series[pool] = [None] * length
        values[(us - start) // step] = calls
    return Trace(
        start=_to_datetime(start),
        step_seconds=step // _US,
        pools=tuple(series),
        calls=MappingProxyType({pool: tuple(values) for pool, values in series.items()}),
        length=length,
    )
