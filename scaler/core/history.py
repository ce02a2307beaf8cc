"""Load history on a regular minute grid, for policies that look back (forecasts, step rules).

``decide()`` stays pure: the history is an input like any other. ``LoadHistory`` is the read-only
view a policy gets; ``ArrayHistory`` is the one implementation, used by the daemon (a rolling
store fed by each tick's readings) and by backtests (a trace, cut at what would be visible).
Unknown buckets are ``None``, never zero.

**Memory.** The daemon keeps up to five weeks of minutes per pool for the predictive policy
(``scaler.tick.HISTORY_MINUTES``), so the bytes a bucket costs are the fleet's memory: a rolling
store holds float32 (``array('f')``, 4 bytes a bucket, NaN for unknown) as long as every value
put is exactly a float32 — every whole call count below 2**24, and halves, quarters and the
like — and widens itself to doubles (``array('d')``, 8 bytes) the first time one is not (a
fractional average, a CPU proxy), once and for good. Either way a policy reads back exactly the
value put; ``docs/benchmarks.md`` ("Memory per pool", ``bench/memory.py``) has the bytes a pool
costs at five weeks.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

_NAN = float("nan")


@runtime_checkable
class LoadHistory(Protocol):
    """Calls per bucket, oldest first; lookups past ``visible_until`` are unknown."""

    @property
    def step_seconds(self) -> float: ...

    @property
    def visible_until(self) -> float:
        """End (exclusive, epoch seconds) of the newest bucket a policy may see."""
        ...

    def value_at(self, t: float) -> float | None:
        """Calls in the bucket holding ``t``; ``None`` when unknown, not yet visible or not kept."""
        ...

    def values(self, start: float, end: float) -> Sequence[float | None]:
        """Buckets from the one holding ``start`` up to (not including) the one holding ``end``."""
        ...


def _compact(values: Sequence[float | None]) -> array[float]:
    """``values`` as float32 when each is exactly one (NaN for ``None``), else as doubles."""
    doubles = array("d", (_NAN if v is None else float(v) for v in values))
    floats = array("f", doubles)
    if all(a == b or a != a for a, b in zip(doubles, floats, strict=True)):
        return floats
    return doubles


class ArrayHistory:
    """A fixed-step series in a compact ``array('f')`` or ``array('d')`` (NaN = unknown).

    ``capacity`` buckets are kept; appending beyond drops the oldest (a rolling store). A
    backtest wraps a whole trace and moves ``visible_until`` forward instead of copying. Values
    are float32 while each is exactly one and doubles from the first that is not (module
    docstring): what is read back is what was put.
    """

    __slots__ = ("_capacity", "_start", "_step", "_values", "visible_until")

    def __init__(
        self,
        *,
        start: float,
        step_seconds: float = 60.0,
        values: Sequence[float | None] = (),
        capacity: int | None = None,
        visible_until: float | None = None,
    ) -> None:
        self._step = float(step_seconds)
        self._start = float(start)
        # A buffer of doubles or floats (a trace column's: NaN for a gap) is adopted, not
        # copied, so a backtest reads its trace in place; anything else is converted once.
        self._values: array[float] = (
            values
            if isinstance(values, array) and values.typecode in ("d", "f")
            else _compact(values)
        )
        self._capacity = capacity
        self.visible_until = (
            visible_until
            if visible_until is not None
            else self._start + len(self._values) * self._step
        )

    @property
    def step_seconds(self) -> float:
        return self._step

    @property
    def start(self) -> float:
        return self._start

    def __len__(self) -> int:
        return len(self._values)

    def _index(self, t: float) -> int:
        return int((t - self._start) // self._step)

    def value_at(self, t: float) -> float | None:
        if t >= self.visible_until:
            return None
        i = self._index(t)
        if i < 0 or i >= len(self._values):
            return None
        v = self._values[i]
        return None if math.isnan(v) else v

    def values(self, start: float, end: float) -> list[float | None]:
        out: list[float | None] = []
        t = self._start + self._index(start) * self._step
        while t < end:
            out.append(self.value_at(t))
            t += self._step
        return out

    def buffer(self) -> tuple[float, array[float]]:
        """(start, the buckets as stored, NaN for unknown): for a reader that scans in place
        instead of calling ``value_at`` per bucket. Read-only; buckets at or after
        ``visible_until`` must not be read."""
        return self._start, self._values

    @property
    def bytes_per_bucket(self) -> int:
        """4 while every value is a float32 (``array('f')``), 8 once one was not."""
        return self._values.itemsize

    @property
    def capacity(self) -> int | None:
        """Buckets kept (``None``: all)."""
        return self._capacity

    def set_capacity(self, capacity: int | None) -> None:
        """Keep this many buckets from now on (a reload may change what the policies read);
        a smaller capacity takes effect as buckets are added."""
        self._capacity = capacity

    def put(self, t: float, value: float | None) -> None:
        """Record the bucket holding ``t`` (a later value for the same bucket wins); gaps up to
        it become unknown. Buckets older than ``capacity`` are dropped (in chunks, so a few
        more may stay a while)."""
        # Once per pool per minute in the daemon and in a replay: inlined arithmetic, no calls
        # beyond the array's own.
        step = self._step
        i = int((t - self._start) // step)
        if i < 0:
            return
        values = self._values
        n = len(values)
        v = _NAN if value is None else float(value)
        if i < n:
            values[i] = v
        else:  # the next bucket, or a gap up to it
            if i > n:
                values.extend([_NAN] * (i - n))
            values.append(v)
            n = i + 1
        if values[i] != v and v == v:  # not exactly a float32: doubles from now on
            values = self._values = array("d", values)
            values[i] = v
        # Old buckets go a chunk at a time (1/16 of the capacity, at least an hour's worth):
        # dropping one a minute moved the whole array every tick (30 ms at 1,000 full pools).
        cap = self._capacity
        if cap is not None and n > cap + max(60, cap // 16):
            drop = n - cap
            del values[:drop]
            self._start += drop * step
            n = cap
        start = self._start
        seen = start + (i + 1) * step
        end = start + n * step
        if end < seen:
            seen = end
        if seen > self.visible_until:
            self.visible_until = seen
