"""What the daemon remembers across a restart, so a restart neither flaps nor forgets a
half-done resize.

Per pool: the stabilisation history and scale events (``PoolState``: windows and cooldowns), the
resize still in flight (its target and the SDK's continuation token, to resume it) and pending
drains. It lives in a local JSON file under the state directory (systemd's ``StateDirectory``,
written atomically: temp file, fsync, rename) and, with ``[ha]`` on, in a state blob next to the
lease blob that only the leader writes, so a standby that takes over knows what its predecessor
was doing.

A document that is missing, unreadable or corrupt is logged and discarded; the daemon then starts
from safe defaults: it holds one down-stabilisation window before any scale-in
(``hold_one_window``). Corrupt includes a document with any number that is not finite (``NaN``,
``Infinity``, ``1e999``: restored, it skipped the safe start and made every later save fail)
and one written in the future (``saved_at``, or any time in it, later than now by more than
``FUTURE_TOLERANCE_SECONDS``: a clock that was ahead; its events would hold scale-outs until
this clock reached them). The state file must be a regular file of at most
``MAX_STATE_BYTES`` (a FIFO or a device put there is refused, not read for ever).
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scaler.core.types import PoolState
from scaler.errors import AdapterError
from scaler.logs import get_logger
from scaler.ports import SharedState

FORMAT_VERSION = 1
STATE_FILE = "state.json"
MAX_STATE_BYTES = 64 << 20
"""A state document holds a few windows of history per pool: far below 64 MiB."""
FUTURE_TOLERANCE_SECONDS = 60.0
"""How far ahead of this replica's clock a snapshot may have been saved (clock skew between
replicas); further is a clock that was wrong, and the snapshot is discarded."""


@dataclass(frozen=True, slots=True)
class InFlightRecord:
    """A resize this daemon started and had not seen finish."""

    target: int
    started: float
    """Epoch seconds."""
    token: str | None = None
    """The SDK's continuation token, to resume polling after a restart."""


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    state: PoolState = field(default_factory=PoolState)
    inflight: InFlightRecord | None = None
    drains: tuple[dict[str, Any], ...] = ()
    """Instances picked for removal and not yet removed (shape owned by the drain logic)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    saved_at: float
    """Epoch seconds of the daemon's clock when saved."""
    writer: str = ""
    pools: Mapping[str, PoolSnapshot] = field(default_factory=dict)


class StateCorrupt(ValueError):
    """A state document that cannot be trusted."""


# -- the JSON shape (validated on the way in) -------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _InFlightDoc(_Model):
    target: int = Field(ge=0)
    started: float
    token: str | None = None


class _PoolDoc(_Model):
    recommendations: list[tuple[float, int]] = []
    scale_events: list[tuple[float, int]] = []
    last_scale_up: float | None = None
    last_scale_down: float | None = None
    since: float | None = None
    inflight: _InFlightDoc | None = None
    drains: list[dict[str, Any]] = []


class _Doc(_Model):
    version: int
    saved_at: float
    writer: str = ""
    pools: dict[str, _PoolDoc]


def encode(snapshot: Snapshot) -> bytes:
    pools: dict[str, Any] = {}
    for name, snap in snapshot.pools.items():
        s = snap.state
        pools[name] = {
            "recommendations": [list(r) for r in s.recommendations],
            "scale_events": [list(e) for e in s.scale_events],
            "last_scale_up": s.last_scale_up,
            "last_scale_down": s.last_scale_down,
            "since": s.since,
            "inflight": (
                {
                    "target": snap.inflight.target,
                    "started": snap.inflight.started,
                    "token": snap.inflight.token,
                }
                if snap.inflight
                else None
            ),
            "drains": list(snap.drains),
        }
    doc = {
        "version": FORMAT_VERSION,
        "saved_at": snapshot.saved_at,
        "writer": snapshot.writer,
        "pools": pools,
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StateCorrupt(f"a number is not finite, got {text}")
    return value


def _no_constant(text: str) -> Any:
    raise StateCorrupt(f"a number is not finite, got {text}")


def decode(data: bytes, *, now: float | None = None) -> Snapshot:
    """Parse a state document; raises ``StateCorrupt`` saying why it cannot be used. With
    ``now`` (this clock), a document saved in the future, or holding a time after its own
    ``saved_at``, is corrupt too."""
    try:
        raw = json.loads(data, parse_float=_finite, parse_constant=_no_constant)
    except StateCorrupt:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise StateCorrupt(f"(top): Invalid JSON, not JSON ({type(exc).__name__})") from exc
    if not isinstance(raw, dict):
        raise StateCorrupt(f"(top): Input should be an object, got {type(raw).__name__}")
    try:
        doc = _Doc.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise StateCorrupt(f"{where}: {first['msg']}") from exc
    if doc.version != FORMAT_VERSION:
        raise StateCorrupt(f"version: unsupported, got {doc.version}")
    if now is not None and doc.saved_at > now + FUTURE_TOLERANCE_SECONDS:
        raise StateCorrupt(
            f"saved_at: {doc.saved_at - now:.0f} s in the future (a clock that was ahead), "
            f"got {doc.saved_at}"
        )
    latest = doc.saved_at + FUTURE_TOLERANCE_SECONDS
    for name, p in doc.pools.items():
        times = [t for t, _ in (*p.recommendations, *p.scale_events)]
        times += [t for t in (p.last_scale_up, p.last_scale_down) if t is not None]
        if p.inflight is not None:
            times.append(p.inflight.started)
        if times and max(times) > latest:
            raise StateCorrupt(
                f"pools.{name}: a time {max(times) - doc.saved_at:.0f} s after saved_at, "
                f"got {max(times)}"
            )
    pools = {}
    for name, p in doc.pools.items():
        pools[name] = PoolSnapshot(
            state=PoolState(
                recommendations=tuple((float(t), int(v)) for t, v in p.recommendations),
                scale_events=tuple((float(t), int(v)) for t, v in p.scale_events),
                last_scale_up=p.last_scale_up,
                last_scale_down=p.last_scale_down,
                # a document from before ``since`` existed still knows the pool
                since=p.since if "since" in p.model_fields_set else doc.saved_at,
            ),
            inflight=(
                InFlightRecord(p.inflight.target, p.inflight.started, p.inflight.token)
                if p.inflight
                else None
            ),
            drains=tuple(p.drains),
        )
    return Snapshot(saved_at=doc.saved_at, writer=doc.writer, pools=pools)


def hold_one_window(*, max_instances: int, now: float) -> PoolState:
    """Safe defaults without trustworthy state: a recommendation of the pool's ``max`` at ``now``
    keeps the down-stabilisation window from allowing any scale-in until it has passed (scale-up
    is unaffected: the up-window takes the lowest recommendation)."""
    return PoolState(recommendations=((now, max_instances),), since=now)


# -- where it is kept -------------------------------------------------------------------------


def state_dir(configured: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """``[daemon] state_dir``, else the first of systemd's ``$STATE_DIRECTORY``, else none."""
    if configured is not None:
        return configured
    env = os.environ if environ is None else environ
    first = env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(first) if first else None


class StateFile:
    """The local state file, replaced atomically so a crash leaves the old or the new one."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE

    def load(self) -> bytes | None:
        """The file's bytes; ``None`` when there is none. ``OSError`` naming the problem when
        it is not a regular file (a FIFO would block the start for ever, a device never end)
        or is larger than ``MAX_STATE_BYTES``."""
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; no effect on a file.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(
                    f"{self.path}: not a regular file; the state file must be a regular file"
                )
            if info.st_size > MAX_STATE_BYTES:
                raise OSError(f"{self.path}: larger than {MAX_STATE_BYTES >> 20} MiB")
            chunks = []
            size = 0
            while chunk := os.read(fd, 1 << 20):
                size += len(chunk)
                if size > MAX_STATE_BYTES:
                    raise OSError(f"{self.path}: larger than {MAX_STATE_BYTES >> 20} MiB")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def save(self, data: bytes) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class StateStore:
    """The local file and, with HA, the shared state blob; either may be absent."""

    def __init__(self, *, local: StateFile | None = None, shared: SharedState | None = None):
        self.local = local
        self.shared = shared
        self.log = get_logger()

    def load(self, *, now: float | None = None) -> Snapshot | None:
        """The newest usable snapshot of the two places, or ``None`` (after logging why);
        with ``now``, one saved in the future is not usable (``decode``)."""
        found: list[Snapshot] = []
        if self.local is not None:
            found += self._read("file", self.local.load, str(self.local.path), now=now)
        if self.shared is not None:
            found += self._read("blob", self.shared.load, "shared", now=now)
        if not found:
            return None
        return max(found, key=lambda s: s.saved_at)

    def load_shared(self, *, quiet: bool = False, now: float | None = None) -> Snapshot | None:
        """The leader's published snapshot; ``quiet`` leaves "there is none" unlogged (a
        dry-run observer asks every tick)."""
        if self.shared is None:
            return None
        found = self._read("blob", self.shared.load, "shared", quiet=quiet, now=now)
        return found[0] if found else None

    def _read(
        self,
        where: str,
        read: Any,
        name: str,
        *,
        quiet: bool = False,
        now: float | None = None,
    ) -> list[Snapshot]:
        try:
            data = read()
        except (OSError, AdapterError) as err:
            self.log.warning("state.unreadable", where=where, location=name, error=str(err))
            return []
        if data is None:
            if not quiet:
                self.log.info("state.none", where=where, location=name)
            return []
        try:
            return [decode(data, now=now)]
        except StateCorrupt as err:
            self.log.warning("state.discarded", where=where, location=name, error=str(err))
            return []

    def save(self, snapshot: Snapshot, *, shared: bool) -> None:
        """Write the local file, and the shared blob when ``shared`` (the leader). A state
        that cannot be written (a number that is not finite) is a warning, never a failed
        tick."""
        try:
            data = encode(snapshot)
        except ValueError as err:
            self.log.warning("state.save_failed", where="encode", error=str(err))
            return
        if self.local is not None:
            try:
                self.local.save(data)
            except OSError as err:
                self.log.warning("state.save_failed", where="file", error=str(err))
        if shared and self.shared is not None:
            try:
                self.shared.save(data)
            except AdapterError as err:
                self.log.warning("state.save_failed", where="blob", error=str(err))
