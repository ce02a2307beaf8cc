"""Reads with a deadline: one stuck call never freezes the tick.

Each pool's observation (and the tick's metrics and quota reads) runs on a small, bounded pool
of worker threads; the tick waits for them until its deadline and then goes on with what it
has. A read still running at the deadline is *timed out*: its pool holds this tick
(``ObserveTimedOut``) while every other pool is decided. The stuck call is not abandoned into a
pile: while it is still running, the next tick does not start another read of the same key and
reports it timed out again at once, so a hung endpoint costs one worker, not one per tick.

Threads cannot be killed; adapters bound their own calls (the Pexip client's read deadline, the
Azure SDK's timeouts and ``[azure] call_deadline_seconds``), and this is the backstop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TimedOut:
    """A read that had not finished by the deadline (``since``: monotonic start)."""

    since: float

    def describe(self, now: float) -> str:
        return f"still running after {now - self.since:.1f} s"


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What one read gave: a value, the exception it raised, or ``TimedOut``."""

    value: T | None = None
    error: BaseException | None = None
    timed_out: TimedOut | None = None


class BoundedReads:
    """Runs keyed reads concurrently on at most ``workers`` threads, each batch until a
    deadline (``time.monotonic()`` seconds)."""

    def __init__(self, workers: int = 8, *, monotonic: Callable[[], float] = time.monotonic):
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="cvi-read"
        )
        self._running: dict[str, tuple[Future[object], float]] = {}
        self._monotonic = monotonic

    def run(
        self, reads: Mapping[str, Callable[[], T]], *, deadline: float
    ) -> dict[str, Outcome[T]]:
        """Each read's outcome by key; returns by ``deadline`` at the latest."""
        futures: dict[str, Future[object]] = {}
        out: dict[str, Outcome[T]] = {}
        for key, read in reads.items():
            earlier = self._running.get(key)
            if earlier is not None and not earlier[0].done():
                out[key] = Outcome(timed_out=TimedOut(earlier[1]))
                continue
            started = self._monotonic()
            future: Future[object] = self._executor.submit(read)
            self._running[key] = (future, started)
            futures[key] = future
        if futures:
            wait(
                list(futures.values()),
                timeout=max(0.0, deadline - self._monotonic()),
                return_when=ALL_COMPLETED,
            )
        for key, future in futures.items():
            if not future.done():
                out[key] = Outcome(timed_out=TimedOut(self._running[key][1]))
                continue
            del self._running[key]
            exc = future.exception()
            if exc is not None:
                out[key] = Outcome(error=exc)
            else:
                out[key] = Outcome(value=future.result())  # type: ignore[arg-type]
        return out

    def busy(self) -> bool:
        """Whether a read is still running (a stuck call the tick gave up waiting for)."""
        return any(not future.done() for future, _ in self._running.values())

    def close(self) -> None:
        """Stop accepting reads; running ones are not waited for (they end with the process)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
