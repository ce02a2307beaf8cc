"""What survives a restart and what passes from leader to leader.

The daemon's state (stabilisation history, cooldowns, resizes in flight, drains) is saved after
every tick — locally, and to the shared blob while this replica leads — and taken back at start
(``restore``), when this replica becomes leader (the predecessor's scale events, cooldowns,
in-flight resizes and drains), and, for a dry-run observer, from every newer snapshot the leader
publishes. A dry run never saves: beside production it is an observer, and the state file and
blob are production's.
"""

from __future__ import annotations

from scaler.config import PoolConfig
from scaler.core import PoolState
from scaler.core.victims import DrainState
from scaler.errors import AdapterError
from scaler.logs import get_logger
from scaler.ports import LeaderLease
from scaler.state import InFlightRecord, PoolSnapshot, Snapshot, StateStore, hold_one_window
from scaler.tick import Ticker, _InFlight


class Persistence:
    """Saves and adopts a ``Ticker``'s state through a ``StateStore``."""

    def __init__(
        self,
        ticker: Ticker,
        *,
        store: StateStore | None,
        leader: LeaderLease | None,
        identity: str = "",
    ) -> None:
        self.ticker = ticker
        self.store = store
        self.leader = leader
        self.identity = identity
        self._was_leader = False
        self._followed_at = float("-inf")
        self.log = get_logger()

    @property
    def role(self) -> str:
        """``leader`` (also without HA: the only replica), ``standby`` or ``unknown``."""
        return "leader" if self.leader is None else self.leader.role

    def snapshot(self) -> Snapshot:
        pools = {}
        for pool in self.ticker.config.pools:
            op = self.ticker.inflight.get(pool.name)
            record = None
            if op is not None:
                record = InFlightRecord(op.target, op.started, op.handle.continuation_token())
            pools[pool.name] = PoolSnapshot(
                state=self.ticker.states.get(pool.name, PoolState()),
                inflight=record,
                drains=(drain.to_doc(),)
                if (drain := self.ticker.pending_drains.get(pool.name))
                else (),
            )
        return Snapshot(saved_at=self.ticker.clock.now(), writer=self.identity, pools=pools)

    def persist(self) -> None:
        """Save the state locally, and to the shared blob when this replica leads. A dry run
        saves nothing: run beside production it is an observer, and the state file (same
        ``StateDirectory``) and the state blob are production's."""
        if self.store is None or self.ticker.dry_run:
            return
        self.store.save(self.snapshot(), shared=self.leader is not None and self.role == "leader")

    def restore(self) -> None:
        """Load the saved state; without a usable one, hold one down-stabilisation window."""
        if self.store is None:
            return
        now = self.ticker.clock.now()
        snap = self.store.load(now=now)
        if snap is None:
            for pool in self.ticker.config.pools:
                self.ticker.states[pool.name] = hold_one_window(max_instances=pool.max, now=now)
            self.log.info("state.safe_defaults", hold="one scale-down stabilisation window")
            return
        self._adopt(snap, full=True, now=now)

    def _adopt(self, snap: Snapshot, *, full: bool, now: float, following: bool = False) -> None:
        """Take a snapshot's state: all of it at start-up (``full``), or, on becoming leader,
        the predecessor's scale events, cooldowns, in-flight resizes and drains; a dry-run
        observer takes the same from the leader's every new snapshot (``following``)."""
        resumed = []
        for pool in self.ticker.config.pools:
            saved = snap.pools.get(pool.name)
            if saved is None:
                if full:
                    self.ticker.states[pool.name] = hold_one_window(max_instances=pool.max, now=now)
                continue
            mine = self.ticker.states.get(pool.name, PoolState())
            self.ticker.states[pool.name] = (
                saved.state
                if full
                else PoolState(
                    recommendations=mine.recommendations,
                    scale_events=saved.state.scale_events,
                    last_scale_up=_latest(mine.last_scale_up, saved.state.last_scale_up),
                    last_scale_down=_latest(mine.last_scale_down, saved.state.last_scale_down),
                    since=mine.since,
                )
            )
            if saved.drains:
                self.ticker.pending_drains[pool.name] = DrainState.from_doc(saved.drains[0])
            inflight = saved.inflight
            if (
                inflight
                and not self.ticker.dry_run  # an observer does not poll the leader's operations
                and pool.name not in self.ticker.inflight
                and self._resume(pool, inflight)
            ):
                resumed.append(pool.name)
        (self.log.debug if following else self.log.info)(
            "state.followed" if following else "state.restored",
            saved_at=snap.saved_at,
            writer=snap.writer or None,
            age_seconds=round(now - snap.saved_at, 1),
            resumed=resumed,
            adopted_from_leader=not full,
        )

    def _resume(self, pool: PoolConfig, rec: InFlightRecord) -> bool:
        if rec.token is None:
            self.log.info("scale.not_resumable", pool=pool.name, desired=rec.target)
            return False
        try:
            handle = self.ticker.actuator.resume(pool, rec.token)
        except AdapterError as err:
            self.log.warning("scale.resume_failed", pool=pool.name, error=str(err))
            return False
        self.ticker.inflight[pool.name] = _InFlight(handle, rec.target, rec.started)
        self.log.info("scale.resumed", pool=pool.name, desired=rec.target)
        return True

    def check_promotion(self, now: float) -> None:
        if self.ticker.dry_run:
            self._follow_leader(now)
            return
        if self.leader is None:
            return
        leading = self.leader.is_leader()
        if leading and not self._was_leader and self.store is not None and self.ticker.ticks > 0:
            snap = self.store.load_shared(now=now)
            if snap is not None:
                self._adopt(snap, full=False, now=now)
        self._was_leader = leading

    def _follow_leader(self, now: float) -> None:
        """A dry run never records scale events of its own (it writes nothing), so it takes
        the leader's scale events and cooldowns from the state blob whenever the leader has
        published a newer one: its decisions then follow the production history."""
        if self.store is None:
            return
        snap = self.store.load_shared(quiet=True, now=now)
        if snap is None or snap.saved_at <= self._followed_at:
            return
        self._followed_at = snap.saved_at
        self._adopt(snap, full=False, now=now, following=True)


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
