"""Reads with a deadline: one stuck call never freezes the tick.

Each pool's observation (and the tick's metrics and quota reads) runs on a small, bounded pool
of worker threads; the tick waits for them until its deadline and then goes on with what it
has. A read still running at the deadline is *timed out*: its pool holds this tick
(``ObserveTimedOut``) while every other pool is decided. The stuck call is not abandoned into a
pile: while it is still running, the next tick does not start another read of the same key and
reports it timed out again at once, so a hung endpoint costs one worker, not one per tick.

Threads cannot be killed; adapters bound their own calls (the Pexip client's read deadline, the
Azure SDK's timeouts and ``[azure] call_deadline_seconds``), and this is the backstop.

Two shapes: ``submit``/``run`` give each read a task of its own (the tick's few metrics and
quota reads, started first so that they overlap the pools' reads); ``each`` runs one read per
pool on at most ``workers`` tasks that take the pools from one queue, so 1,000 pools cost a
handful of tasks instead of 1,000 futures, while a pool whose read is stuck still holds only its
own task: the others go on taking pools.
"""

from __future__ import annotations

import threading
import time
from collections import deque
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
        self._workers = max(1, workers)
        self._executor = ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="cvi-read"
        )
        self._running: dict[str, tuple[Future[object], float]] = {}
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._items: dict[str, float] = {}
        """Reads of ``each`` still running (key → monotonic start), also after their batch."""

    def run(
        self, reads: Mapping[str, Callable[[], T]], *, deadline: float
    ) -> dict[str, Outcome[T]]:
        """Each read's outcome by key; returns by ``deadline`` at the latest."""
        return self.submit(reads).wait(deadline)

    def submit(self, reads: Mapping[str, Callable[[], T]]) -> Pending[T]:
        """Start each read on a task of its own; ``Pending.wait`` collects them."""
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
        return Pending(self, futures, out)

    def _collect(
        self, futures: Mapping[str, Future[object]], out: dict[str, Outcome[T]], deadline: float
    ) -> dict[str, Outcome[T]]:
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

    def each(
        self, reads: Mapping[str, Callable[[], T]], *, deadline: float
    ) -> dict[str, Outcome[T]]:
        """Each read's outcome by key, by ``deadline`` at the latest, the reads taken from one
        queue by at most ``workers`` tasks. A read not started by the deadline is not started
        later (timed out since the batch began); one still running is timed out, and while it
        runs a later batch reports its key timed out at once instead of starting it again."""
        began = self._monotonic()
        out: dict[str, Outcome[T]] = {}
        queue: deque[tuple[str, Callable[[], T]]] = deque()
        with self._lock:
            for key, read in reads.items():
                earlier = self._items.get(key)
                if earlier is not None:
                    out[key] = Outcome(timed_out=TimedOut(earlier))
                else:
                    queue.append((key, read))
        results: dict[str, Outcome[T]] = {}
        left = [len(queue)]
        finished = threading.Event()
        if not queue:
            finished.set()

        def drain() -> None:
            while True:
                with self._lock:
                    if not queue:
                        return
                    key, read = queue.popleft()
                    self._items[key] = self._monotonic()
                try:
                    outcome: Outcome[T] = Outcome(value=read())
                except BaseException as exc:  # the read's own failure: its pool's outcome
                    outcome = Outcome(error=exc)
                with self._lock:
                    del self._items[key]
                    results[key] = outcome
                    left[0] -= 1
                    if left[0] == 0:
                        finished.set()

        for _ in range(min(self._workers, len(queue))):
            self._executor.submit(drain)
        finished.wait(timeout=max(0.0, deadline - self._monotonic()))
        with self._lock:
            queue.clear()  # what no task has started by now is not started later
            for key in reads:
                if key in out:
                    continue
                got = results.get(key)
                if got is not None:
                    out[key] = got
                else:
                    out[key] = Outcome(timed_out=TimedOut(self._items.get(key, began)))
        return out

    def busy(self) -> bool:
        """Whether a read is still running (a stuck call the tick gave up waiting for)."""
        with self._lock:
            if self._items:
                return True
        return any(not future.done() for future, _ in self._running.values())

    def close(self) -> None:
        """Stop accepting reads; running ones are not waited for (they end with the process)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Pending(Generic[T]):
    """Reads started by ``BoundedReads.submit``; ``wait`` collects them (once)."""

    def __init__(
        self,
        owner: BoundedReads,
        futures: Mapping[str, Future[object]],
        out: dict[str, Outcome[T]],
    ) -> None:
        self._owner = owner
        self._futures = futures
        self._out = out

    def wait(self, deadline: float) -> dict[str, Outcome[T]]:
        """Each read's outcome by key; returns by ``deadline`` (monotonic) at the latest."""
        return self._owner._collect(self._futures, self._out, deadline)
