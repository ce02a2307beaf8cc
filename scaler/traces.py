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
import io
import math
import os
import stat
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any, overload

__all__ = [
    "HEADER",
    "Column",
    "Trace",
    "TraceError",
    "format_timestamp",
    "load_trace",
    "write_trace",
]

HEADER: tuple[str, str, str] = ("timestamp", "pool", "calls")
"""Required columns of a trace CSV; extra columns are allowed and ignored."""

_DEFAULT_STEP_SECONDS = 60


class TraceError(ValueError):
    """A trace file is malformed; the message names the file and line."""


_NAN = math.nan


class Column(Sequence[float | None]):
    """One pool's calls per step, read as ``float`` or ``None`` (metric unavailable).

    Held as one ``array('d')`` with NaN for ``None`` (``values``): 8 bytes a step, where a
    tuple of float objects takes about 32, and a buffer that a forked backtest worker reads
    without touching (no reference counts on its items, so its pages stay shared). It compares
    equal to any sequence of the same items (``trace.calls[p] == (5, None, 8)``).
    """

    __slots__ = ("values",)

    values: array[float]
    """The raw buffer: NaN where the metric was unavailable. Read-only by convention."""

    def __init__(self, values: Iterable[float | None] = ()) -> None:
        if isinstance(values, array) and values.typecode == "d":
            self.values = values
        else:
            self.values = array("d", (_NAN if v is None else float(v) for v in values))

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> float | None: ...

    @overload
    def __getitem__(self, index: slice) -> Column: ...

    def __getitem__(self, index: int | slice) -> float | Column | None:
        if isinstance(index, slice):
            return Column(self.values[index])
        v = self.values[index]
        return None if v != v else v

    def __iter__(self) -> Iterator[float | None]:
        for v in self.values:
            yield None if v != v else v

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Column):
            other = tuple(other)
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(other) == len(self.values) and all(
            a == b for a, b in zip(self, other, strict=True)
        )

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        items = list(self[:8])
        more = ", ..." if len(self.values) > 8 else ""
        return f"Column({items!r}{more}, length={len(self.values)})"


@dataclass(frozen=True)
class Trace:
    """Per-pool call counts on a regular time grid.

    ``calls[pool][i]`` is the number of concurrent calls at ``timestamp(i)``, or None when
    the metric was unavailable. Every pool's sequence has ``length`` entries; ``load_trace``
    and ``from_rows`` give each pool a compact :class:`Column`.
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
        columns: dict[str, array[float]] = {}
        for _, pool, calls in rows:
            column = columns.get(pool)
            if column is None:
                column = columns[pool] = array("d")
            column.append(_NAN if calls is None else float(calls))
        lengths = {len(c) for c in columns.values()}
        if len(lengths) > 1:
            raise TraceError(f"generated rows: pools have unequal lengths {sorted(lengths)}")
        return cls(
            start=start,
            step_seconds=step_seconds,
            pools=tuple(columns),
            calls=MappingProxyType({k: Column(v) for k, v in columns.items()}),
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


MAX_STEPS = 1_100_000
"""Longest grid per pool: two years of one-minute steps (about 12.7 days of one-second steps).
A trace beyond it is almost always two rows far apart (a typo'd year), which would otherwise
allocate gigabytes before anything noticed."""

MAX_CELLS = 20_000_000
"""Most grid cells (steps x pools) a trace may lay out: e.g. 38 pools for a year of minutes."""


def load_trace(path: Path | str, *, known_pools: Collection[str] | None = None) -> Trace:
    """Read and validate a trace CSV.

    Raises :class:`TraceError` naming the file and line for a bad header, an unknown pool
    (when ``known_pools`` is given), an unparsable or non-UTC timestamp (naive counts as
    UTC), negative/NaN/infinite/non-numeric calls, rows out of time order, a repeated
    (timestamp, pool), a timestamp off the regular step grid, a grid larger than
    ``MAX_STEPS``/``MAX_CELLS``, text that is not UTF-8 or not CSV, a file with no data rows
    or whose calls are all empty, and a path that is not a regular file (``/dev/zero``, a FIFO).
    The step is the most common gap between successive timestamps; pools keep the order in
    which they first appear. OS errors (not found, permission) propagate as ``OSError``.
    """
    name = str(path)
    known = None if known_pools is None else frozenset(known_pools)
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as raw:
        if not stat.S_ISREG(os.fstat(raw.fileno()).st_mode):
            raise TraceError(
                f"{name}: not a regular file (a FIFO, a device or a directory); a trace must "
                "be a regular file"
            )
        fh = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(fh)
        try:
            read = _read_rows(reader, name, _header_columns(reader, name), known)
        except UnicodeDecodeError:
            raise TraceError(_decode_problem(name, path)) from None
        except csv.Error as exc:
            raise TraceError(f"{name} line {reader.line_num}: not valid CSV ({exc})") from None
    if not read.columns:
        raise TraceError(f"{name} line 2: no data rows after the header")
    if not any(v == v for values in read.columns.values() for v in values):  # all NaN
        rows = sum(len(values) for values in read.columns.values()) - read.padded
        raise TraceError(
            f"{name} line 2: no data: the calls cell of all {rows} rows is empty "
            f"(an empty cell means the metric was unavailable)"
        )
    return _build(name, read.columns, read.stamp_us, read.stamp_line)


def _header_columns(reader: Iterator[list[str]], name: str) -> tuple[int, int, int]:
    """The positions of ``timestamp``, ``pool`` and ``calls`` in the header line."""
    header = next(reader, None)
    if header is None:
        raise TraceError(f"{name} line 1: file is empty, expected header '{','.join(HEADER)}'")
    cols = [h.strip() for h in header]
    missing = [h for h in HEADER if h not in cols]
    if missing:
        raise TraceError(
            f"{name} line 1: header must contain {','.join(HEADER)}, "
            f"got {_field(','.join(header))} (missing {', '.join(missing)})"
        )
    i_ts, i_pool, i_calls = (cols.index(h) for h in HEADER)
    return i_ts, i_pool, i_calls


@dataclass
class _Read:
    """The rows as read: one compact column per pool, a slot per distinct timestamp (NaN for
    an empty cell or a missing row, a value the parser never lets through): 8 bytes a cell,
    and on a regular grid without missing timestamps these are the trace's columns."""

    stamp_us: array[int] = field(default_factory=lambda: array("q"))
    """Distinct timestamps (microseconds since the epoch), in order."""
    stamp_line: array[int] = field(default_factory=lambda: array("q"))
    """The line each first appears on."""
    columns: dict[str, array[float]] = field(default_factory=dict)
    padded: int = 0
    """Cells of missing rows."""


def _read_rows(
    reader: Any, name: str, at: tuple[int, int, int], known: frozenset[str] | None
) -> _Read:
    """Every data row into ``_Read``, checked as ``load_trace`` says (one pass, no per-row
    call: the rows of a long trace are many)."""
    out = _Read()
    stamp_us, stamp_line, columns = out.stamp_us, out.stamp_line, out.columns
    i_ts, i_pool, i_calls = at
    width = max(at) + 1
    previous = -1 << 80
    last_text: str | None = None
    last_us = 0
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
        if text == last_text:  # rows come grouped by timestamp: parse each once
            us = last_us
        else:
            us = _parse_timestamp(text.strip(), name, line)
            last_text, last_us = text, us
        pool = row[i_pool].strip()
        if not pool:
            raise TraceError(f"{name} line {line}: pool is empty")
        if known is not None and pool not in known:
            config = ", ".join(sorted(known)) or "no pools"
            raise TraceError(
                f"{name} line {line}: unknown pool {_field(pool)} (config has: {config})"
            )
        cell = row[i_calls].strip()
        calls = math.nan
        if cell:
            try:
                calls = float(cell) + 0.0  # + 0.0 turns "-0" into 0.0
            except ValueError:
                calls = math.nan
            if not 0 <= calls < math.inf:  # also false for NaN
                raise TraceError(
                    f"{name} line {line}: calls must be a non-negative number, got {_field(cell)}"
                )
        if us > previous:
            previous = us
            seen_here = {}
            stamp_us.append(us)
            stamp_line.append(line)
        elif us < previous:
            raise TraceError(
                f"{name} line {line}: timestamp {_field(text.strip())} is earlier than the "
                f"previous row's {_fmt_us(previous)} (rows must be in time order)"
            )
        first = seen_here.get(pool)
        if first is not None:
            raise TraceError(
                f"{name} line {line}: duplicate row for pool {_field(pool)} at "
                f"{_fmt_us(us)} (first on line {first})"
            )
        seen_here[pool] = line
        column = columns.get(pool)
        if column is None:
            column = columns[pool] = array("d")
        gap = len(stamp_us) - 1 - len(column)
        if gap:  # this pool had no row at the timestamps since its last one
            column.extend(_nans(gap))
            out.padded += gap
        column.append(calls)
    return out


def _field(text: str) -> str:
    """A field of the file as an error quotes it: quoted with what cannot be printed escaped
    (``'\\x002'``), at most 80 characters (a file that is not a trace,
    ``/proc/self/environ`` say, is never echoed whole)."""
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:79] + "…"


def _decode_problem(name: str, path: Path | str) -> str:
    """Where a trace stops being UTF-8: the first bad line, found by decoding line by line
    (a newline byte never occurs inside a UTF-8 sequence, so lines decode independently)."""
    offset = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                at = offset + exc.start
                return (
                    f"{name} line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                    f"offset {at})"
                )
            offset += len(raw)
    return f"{name}: not UTF-8 text"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = 1_000_000


def _parse_timestamp(text: str, name: str, line: int) -> int:
    """Microseconds since the Unix epoch for an ISO-8601 UTC (or naive) timestamp."""
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(
            f"{name} line {line}: timestamp is not ISO-8601, got {_field(text)}"
        ) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    elif ts.utcoffset() != timedelta(0):
        raise TraceError(
            f"{name} line {line}: timestamp must be UTC (Z or +00:00), got {_field(text)}"
        )
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def _to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _fmt_us(us: int) -> str:
    return format_timestamp(_to_datetime(us))


def _nans(count: int) -> array[float]:
    return array("d", (_NAN,)) * count


def _build(
    name: str,
    columns: dict[str, array[float]],
    stamp_us: array[int],
    stamp_line: array[int],
) -> Trace:
    """Detect the step, check the grid and lay the columns out per pool (gaps are NaN).

    ``columns[pool][k]`` is the pool's calls at the ``k``-th distinct timestamp (NaN when
    none); shorter columns end before the last timestamp. The columns are consumed."""
    start = stamp_us[0]
    diffs = Counter(b - a for a, b in pairwise(stamp_us))
    if diffs:
        # Most common difference; ties go to the smaller step.
        step = min(diffs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    else:
        step = _DEFAULT_STEP_SECONDS * _US
    if step % _US:
        raise TraceError(
            f"{name} line {stamp_line[1]}: the step between timestamps must be a "
            f"whole number of seconds, got {step / _US} s"
        )
    for us, line in zip(stamp_us, stamp_line, strict=True):
        if (us - start) % step:
            raise TraceError(
                f"{name} line {line}: timestamp {_fmt_us(us)} is off the "
                f"{step // _US} s step grid starting at {_fmt_us(start)}"
            )
    length = (stamp_us[-1] - start) // step + 1
    if length > MAX_STEPS or length * len(columns) > MAX_CELLS:
        days = (stamp_us[-1] - start) / (86_400 * _US)
        cells = f" x {len(columns)} pools" if len(columns) > 1 else ""
        raise TraceError(
            f"{name} line {stamp_line[-1]}: the trace spans {days:,.1f} days "
            f"({_fmt_us(start)} to {_fmt_us(stamp_us[-1])}); at its {step // _US} s step "
            f"that is {length:,} steps{cells}, more than the limit of {MAX_STEPS:,} steps "
            f"and {MAX_CELLS:,} cells (about {MAX_STEPS * (step // _US) / 86_400:,.0f} days "
            f"at this step)"
        )
    dense = length == len(stamp_us)  # every step of the grid has a timestamp
    slots = None if dense else [(us - start) // step for us in stamp_us]
    calls: dict[str, Column] = {}
    for pool in list(columns):
        values = columns.pop(pool)  # one pool's cells at a time: the old column goes at once
        if slots is None:
            if len(values) < length:
                values.extend(_nans(length - len(values)))
        else:
            laid = _nans(length)
            for k, v in enumerate(values):
                laid[slots[k]] = v
            values = laid
        calls[pool] = Column(values)
    return Trace(
        start=_to_datetime(start),
        step_seconds=step // _US,
        pools=tuple(calls),
        calls=MappingProxyType(calls),
        length=length,
    )
