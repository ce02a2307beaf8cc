"""The daemon: the loop that drives the tick, its health, reloads and shutdown.

Three parts, each in its module: ``scaler.tick`` (one observe → decide → act pass over every
pool, and the per-pool state it carries), ``scaler.persistence`` (what survives a restart and
passes from leader to leader) and this loop: a tick every interval on the monotonic clock, one at
a time, health from the age of the last completed tick, SIGHUP reloads validated before they take
effect, and a stop bounded by ``shutdown_deadline_seconds``.

Operations hooks, each optional so the loop reads the same without them: a ``LeaderLease``
(only the leader writes; leadership is re-checked right before every write), a ``StateStore``
(stabilisation history, cooldowns, in-flight resizes and drains survive a restart), a systemd
``Notifier`` (``READY``/``WATCHDOG``/``STOPPING``/``STATUS``) and ``reload_config`` (SIGHUP).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from scaler.config import Config
from scaler.core import PoolState, QuotaUsage
from scaler.core.history import ArrayHistory
from scaler.core.quota import QuotaMemory
from scaler.core.victims import DrainState
from scaler.errors import AdapterError, ConfigError
from scaler.logs import get_logger
from scaler.persistence import Persistence
from scaler.ports import Clock, LeaderLease, MetricsSource, PoolActuator, QuotaReader
from scaler.reads import BoundedReads
from scaler.sdnotify import Notifier
from scaler.state import Snapshot, StateStore
from scaler.tick import HISTORY_MINUTES, PoolOutcome, Ticker, _Backoff, _InFlight

__all__ = ["HISTORY_MINUTES", "Daemon", "PoolOutcome"]


class Daemon:
    """One daemon: its config, its adapters (injected), and the state carried between ticks."""

    def __init__(
        self,
        *,
        config: Config,
        metrics: MetricsSource,
        actuator: PoolActuator,
        quota: QuotaReader,
        clock: Clock,
        dry_run: bool | None = None,
        on_tick: Callable[[float, Sequence[PoolOutcome]], None] | None = None,
        leader: LeaderLease | None = None,
        store: StateStore | None = None,
        notifier: Notifier | None = None,
        reload_config: Callable[[], Config] | None = None,
        identity: str = "",
        monotonic: Callable[[], float] = time.monotonic,
        stretch: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.actuator = actuator
        self._dry_run_arg = dry_run
        self.on_tick = on_tick
        self._tick_lock = threading.Lock()
        self.notifier = notifier
        self.reload_config = reload_config
        self.started_at = clock.now()
        self.monotonic = monotonic
        """Seconds on a clock that never steps (health's tick age); the wall ``clock`` feeds
        decisions only, so a step of the system clock neither stalls nor fakes health."""
        self._started_mono = monotonic()
        self._last_tick_mono: float | None = None
        self.stop_deadline: float | None = None
        """``time.monotonic()`` by which a stop must be complete, once ``run`` is stopping."""
        self.period: float | None = None
        """``run``'s ``period_seconds`` while it runs (the demo's sped-up interval)."""
        self._reload_requested = threading.Event()
        self._pending_config: Config | None = None
        self.stretch = stretch
        self.next_tick_due: float | None = None
        """``time.monotonic()`` at which ``run``'s loop starts the next tick (interval, stretch
        and overrun included); ``None`` until the first tick has ended."""
        self._stretched = 0.0
        """Seconds the next tick should wait beyond its interval (Azure's read or write budget
        running low: the adapters project ``x-ms-ratelimit-remaining-*``); ``None``: never."""
        self.ticker = Ticker(
            config=config,
            metrics=metrics,
            actuator=actuator,
            quota=quota,
            clock=clock,
            monotonic=monotonic,
            period=self._period,
            dry_run=config.daemon.dry_run if dry_run is None else dry_run,
            leader=leader,
        )
        """The tick and the per-pool state it carries (``scaler.tick``)."""
        self.persistence = Persistence(self.ticker, store=store, leader=leader, identity=identity)
        """Saving, restoring and adopting that state (``scaler.persistence``)."""
        self.log = get_logger()

    # -- the state, as the tick and persistence keep it ---------------------------------------

    @property
    def dry_run(self) -> bool:
        return self.ticker.dry_run

    @dry_run.setter
    def dry_run(self, value: bool) -> None:
        self.ticker.dry_run = value

    @property
    def reads(self) -> BoundedReads:
        """The tick's read threads (``busy()``: a read is still stuck in a slow call)."""
        return self.ticker.reads

    @property
    def stopping(self) -> threading.Event:
        return self.ticker.stopping

    @property
    def leader(self) -> LeaderLease | None:
        return self.persistence.leader

    @property
    def store(self) -> StateStore | None:
        return self.persistence.store

    @store.setter
    def store(self, value: StateStore | None) -> None:
        self.persistence.store = value

    @property
    def identity(self) -> str:
        return self.persistence.identity

    @property
    def states(self) -> dict[str, PoolState]:
        return self.ticker.states

    @property
    def inflight(self) -> dict[str, _InFlight]:
        return self.ticker.inflight

    @property
    def pending_drains(self) -> dict[str, DrainState]:
        return self.ticker.pending_drains

    @property
    def last(self) -> dict[str, PoolOutcome]:
        return self.ticker.last

    @property
    def history(self) -> dict[str, ArrayHistory]:
        return self.ticker.history

    @property
    def usage(self) -> dict[str, Mapping[str, QuotaUsage]]:
        return self.ticker.usage

    @property
    def quota_memory(self) -> QuotaMemory:
        return self.ticker.quota_memory

    @property
    def capacity_backoff(self) -> dict[str, _Backoff]:
        return self.ticker.capacity_backoff

    @property
    def read_failures(self) -> list[str]:
        return self.ticker.read_failures

    @property
    def ticks(self) -> int:
        return self.ticker.ticks

    @property
    def last_tick_at(self) -> float | None:
        return self.ticker.last_tick_at

    def wait_for_resizes(self, timeout: float) -> dict[str, str | None]:
        """Wait (``once``) for the resizes started by this process; pool → error or ``None``."""
        return self.ticker.wait_for_resizes(timeout)

    def snapshot(self) -> Snapshot:
        return self.persistence.snapshot()

    def persist(self) -> None:
        self.persistence.persist()

    def restore(self) -> None:
        self.persistence.restore()

    # -- one pass -----------------------------------------------------------------------------

    def tick(self) -> list[PoolOutcome]:
        """Observe, decide and act once for every pool."""
        with self._tick_lock:
            return self._tick()

    def _tick(self) -> list[PoolOutcome]:
        self._apply_pending_config()
        now = self.clock.now()
        self.persistence.check_promotion(now)
        outcomes = self.ticker.tick(now)
        self.persist()
        if self.on_tick is not None:
            self.on_tick(now, outcomes)
        return outcomes

    # -- the loop -----------------------------------------------------------------------------

    def safe_tick(self) -> bool:
        """A tick that never raises: the loop must survive anything one tick meets. Returns
        whether the tick ran to its end."""
        try:
            self.tick()
        except Exception:
            self.log.exception("tick.failed")
            return False
        return True

    # -- operations: role, health, state, reload ------------------------------------------------

    @property
    def role(self) -> str:
        """``leader`` (also without HA: the only replica), ``standby`` or ``unknown``."""
        return self.persistence.role

    def ticking_healthy(self) -> tuple[bool, float]:
        """Whether the loop has completed a tick within 3 intervals; and the age in seconds.
        Gates ``/healthz`` and systemd's ``WATCHDOG=1``. The age is on the monotonic clock:
        after a backward step of the wall clock, a wall-clock age is negative (clamped to 0)
        and a stuck loop looked healthy for as long as the step; a forward step made a
        healthy one look stuck."""
        ref = self._last_tick_mono if self._last_tick_mono is not None else self._started_mono
        age = max(0.0, self.monotonic() - ref)
        return age <= 3 * self._period() + self._stretched, age

    def _stretch(self) -> float:
        """How much later than its interval the next tick starts (0 normally); never raises."""
        if self.stretch is None:
            return 0.0
        try:
            return max(0.0, min(float(self.stretch()), 300.0))
        except Exception:
            self.log.exception("tick.stretch_failed")
            return 0.0

    def _period(self) -> float:
        """Seconds between ticks: ``run``'s ``period_seconds`` (the demo), else the config's
        (so a reloaded ``interval_seconds`` applies to the next wait)."""
        return self.period or self.config.daemon.interval_seconds

    def status_line(self) -> str:
        """A one-line summary for systemd's ``STATUS=``."""
        parts = []
        for name, o in self.last.items():
            move = f"{o.current}" if o.current == o.desired else f"{o.current}->{o.desired}"
            parts.append(f"{name} {move} {o.reason}")
        return f"{self.role}; {len(self.config.pools)} pools; " + "; ".join(parts)

    def request_reload(self) -> None:
        """SIGHUP: re-read the config soon (the signal handler must not do the work)."""
        self._reload_requested.set()

    def check_reload(self) -> None:
        """Validate a requested reload now; a valid config takes effect at the next tick, an
        invalid one is rejected and the running one stays in force."""
        if not self._reload_requested.is_set() or self.reload_config is None:
            return
        self._reload_requested.clear()
        try:
            new = self.reload_config()
        except ConfigError as err:
            self.log.error("config.reload_rejected", problems=err.problems)
            return
        problems = [
            f"{section}: changes need a restart, the running [{section}] stays in force"
            for section in ("azure", "ha", "http")
            if getattr(new, section) != getattr(self.config, section)
        ]
        for pool in new.pools:  # the platform's own refusals (e.g. no Event Hub for pexip-teams)
            try:
                found = self.actuator.preflight(pool)
            except AdapterError as err:
                self.log.warning("pool.preflight_warning", pool=pool.name, warning=str(err))
                continue
            problems.extend(found.errors)
            for warning in found.warnings:
                self.log.warning("pool.preflight_warning", pool=pool.name, warning=warning)
        if problems:
            self.log.error("config.reload_rejected", problems=problems)
            return
        self._pending_config = new

    def _apply_pending_config(self) -> None:
        new, self._pending_config = self._pending_config, None
        if new is None:
            return
        self.config = new
        self.ticker.use_config(new)
        self.dry_run = new.daemon.dry_run if self._dry_run_arg is None else self._dry_run_arg
        self.log.info(
            "config.reloaded",
            pools=[p.name for p in new.pools],
            interval_seconds=new.daemon.interval_seconds,
            dry_run=self.dry_run,
        )

    def run(
        self,
        stop: threading.Event,
        *,
        period_seconds: float | None = None,
        until: Callable[[], bool] | None = None,
    ) -> bool:
        """Tick every ``period_seconds`` (default ``[daemon] interval_seconds``) until ``stop``
        is set (by a signal) or ``until()`` says so. Returns ``False`` if a tick was still
        running when the shutdown deadline passed.

        The cadence is a loop on the monotonic clock in a thread of its own, not APScheduler's
        ``IntervalTrigger``: that trigger computes every next run time from the wall clock,
        so a backward step of the system clock (NTP fixing a drifted clock, a VM restored from
        a snapshot) postponed the next tick by the size of the step (-1 h: no tick for an
        hour) while health, read from the same wall clock, stayed green. The wall clock (the
        ``Clock`` port) feeds decisions only. APScheduler remains the tool for wall-clock,
        cron-like schedules; a fixed interval needs none of it.

        Stopping is bounded by ``[daemon] shutdown_deadline_seconds`` in all: the loop waits
        for a running tick for most of it, then saves what it knows (resizes in flight
        included) and leaves ``stop_deadline`` for the caller to release the lease by. A tick
        stuck in a slow call is left to die with the process (its thread is a daemon thread);
        its writes are fenced by ``stopping``."""
        self.period = period_seconds
        notifier = self.notifier
        self.restore()
        ticker = threading.Thread(
            target=self._tick_loop, args=(stop, until), name="tick", daemon=True
        )
        ticker.start()
        self.log.info(
            "daemon.started",
            pools=[p.name for p in self.config.pools],
            interval_seconds=self.config.daemon.interval_seconds,
            dry_run=self.dry_run,
        )
        watchdog_every = (notifier.watchdog_seconds or 0.0) / 2.0 if notifier else 0.0
        last_ping = time.monotonic()
        try:
            while not stop.wait(0.5):
                self.check_reload()
                if (
                    notifier is not None
                    and watchdog_every
                    and time.monotonic() - last_ping >= watchdog_every
                    and self.ticking_healthy()[0]
                ):
                    notifier.watchdog()
                    last_ping = time.monotonic()
        finally:
            deadline = self.config.daemon.shutdown_deadline_seconds
            self.stop_deadline = time.monotonic() + deadline
            self.stopping.set()
            stop.set()  # also when leaving by an exception: the tick thread ends too
            if notifier is not None:
                notifier.stopping(f"stopping; {self.status_line()}")
        # Most of the deadline waits for the tick; a quarter (at most 4 s) is kept for saving
        # the state and, after ``run`` returns, releasing the lease.
        reserve = min(4.0, deadline / 4.0)
        finished = self._tick_lock.acquire(timeout=max(0.0, deadline - reserve))
        try:
            # Records resizes still in flight, to resume after the restart; bounded, as the
            # shared blob may be as slow as whatever held the tick.
            self._persist_by(self.stop_deadline - reserve / 2.0)
        finally:
            if finished:
                self._tick_lock.release()
        self.log.info(
            "daemon.stopped",
            ticks=self.ticks,
            clean=finished,
            resizes_in_flight=sorted(self.inflight),
        )
        return finished

    def _tick_loop(self, stop: threading.Event, until: Callable[[], bool] | None) -> None:
        """Start a tick every period on the monotonic clock, one at a time: a tick that
        overruns its period delays the next to the next period boundary (``tick.overrun``),
        missed ones are not made up. Waits are short so that a reloaded interval applies at
        once."""
        due = time.monotonic()
        while not stop.is_set():
            period = self._period()
            now = time.monotonic()
            if now < due:
                stop.wait(min(due - now, 0.5))
                continue
            began = now
            self._loop_tick(stop, until)
            period = self._period()
            due = began + period
            extra = self._stretch()
            self._stretched = extra
            if extra > 0:
                due += extra
                self.log.warning("tick.stretched", seconds=round(extra, 1), reason="arm_budget")
            now = time.monotonic()
            if now >= due:
                skipped = int((now - due) // period) + 1
                due += skipped * period
                self.log.warning(
                    "tick.overrun",
                    period_seconds=period,
                    took_seconds=round(now - began, 3),
                    skipped=skipped,
                )
            self.next_tick_due = due

    def _loop_tick(self, stop: threading.Event, until: Callable[[], bool] | None) -> None:
        if stop.is_set():
            return
        if self.safe_tick():
            self._last_tick_mono = self.monotonic()
            notifier = self.notifier
            if notifier is not None:
                status = self.status_line()
                if notifier.ready_sent:
                    notifier.send(WATCHDOG="1", STATUS=status)
                else:
                    notifier.ready(status)
        if until is not None and until():
            stop.set()

    def _persist_by(self, deadline: float) -> None:
        """``persist()``, given up at ``deadline`` (``time.monotonic()``); never raises."""

        def save() -> None:
            try:
                self.persist()
            except Exception:
                self.log.exception("state.save_failed", where="shutdown")

        saver = threading.Thread(target=save, name="persist", daemon=True)
        saver.start()
        saver.join(timeout=max(0.0, deadline - time.monotonic()))
        if saver.is_alive():
            self.log.error("state.save_timed_out", where="shutdown")
