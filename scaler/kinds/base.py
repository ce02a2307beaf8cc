"""What a pool kind is: the one place that knows how a kind of pool is validated, planned,
acted on and replayed.

A kind is a small class registered by name (``scaler.kinds.discover``), like a policy:

* ``Options`` — the model of the kind's own keys of ``[[pools]]`` (``drain`` of ``vmss``,
  ``teams_proxy`` of ``pexip-teams``, the ``[pools.vm_set]`` table of ``vm-set``): the loader
  takes them out of each pool's table, validates them against the pool's kind's model and hands
  the result to the pool (``PoolConfig.kind_options``; the kind reads it with ``options_of``).
  A key of another kind's model is refused naming both kinds; ``PoolConfig`` names none;
* ``problems(at, pool, config)`` — what the kind needs of its config (key paths and values);
* ``plan(...)`` — the **pure** planner that turns the core's ``Decision`` into what will really
  happen and the writes that make it happen (``InstancePlan``); the daemon, the simulator/demo
  and the backtest all call this same method;
* the actuator that observes and changes pools of this kind lives in the composition root
  (``scaler.actuators``, one module per built-in kind), so a kind imports no adapter and the
  backtest and the core never load an SDK; ``actuator(ctx)`` is the hook through which a
  third-party kind brings its own;
* ``replay_mode(pool)`` — how the backtest's minute model treats its scale-in (``drop``,
  ``drain`` or ``idle``; see ``scaler.backtest.engine``);
* ``limits(pool, limits)`` — kind-specific adjustments of what the core is told;
* capabilities the rest of the daemon asks instead of reading a kind's options:
  ``max_drain_seconds(pool)`` (the backtest's idle-only scale-in), ``teams_connector(pool)``
  (the Teams Connector a ``pexip`` reading attributes the pool's instances to).

Adding a kind is its module and its registration (the ``cvi_autoscaler.kinds`` entry-point
group, or ``scaler.kinds.BUILTINS`` and its actuator's factory in ``scaler.actuators``); nothing
in the daemon, the config, the adapters or the backtest switches on a kind's name.

**The one rule every kind follows: uncertainty may hold a scale-in, never a scale-out.** Only
the load reading decides whether there is anything to do. Whatever else a kind reads —
Pexip's scheduled scaling, licences, instance status, power states, the join between Pexip's
records and the instances — may be missing, failed or unproven; then its actuator does not
fail the pool but takes the assumption that gives **more** capacity for a scale-out (Pexip's
schedule adds nothing, an instance of unknown state serves nothing) and **no removal** for a
scale-in: it sets ``PoolStatus.scale_in_unverified`` (the planner holds a scale-in with
``ScaleInUnverified``) and says what it assumed in ``PoolStatus.notes`` (the decision's
detail, so ``/status``). An instance that may carry a call is never chosen for removal. A
read the kind cannot act without (where to write) still fails the pool (``ObserveFailed``).
``guard`` applies the planner's half of the rule; every built-in planner starts with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from scaler.core.types import Decision, MetricReading, PoolLimits, Reason
from scaler.core.victims import DrainState, InstanceActions, InstancePlan, amend, noted
from scaler.ports import Preflight as Preflight

if TYPE_CHECKING:
    from scaler.config_model import Config, PoolConfig
    from scaler.ports import Clock, PoolStatus, ResizeHandle

ScaleIn = Literal["drop", "drain", "idle"]
"""How a kind's scale-in treats busy instances in the backtest (see ``scaler.backtest.engine``)."""


class KindOptions(BaseModel):
    """Base of a kind's ``Options``: frozen, and strict about its own keys (a key of no kind
    never reaches it: ``[[pools]]`` refuses it as unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=BaseModel)


def options_of(pool: PoolConfig, model: type[OptionsT]) -> OptionsT:
    """The pool's kind's options as ``model`` (its ``Options``): what the loader validated, or
    the model's defaults for a pool that set none of its keys (or was built without the
    loader)."""
    got = pool.kind_options
    return got if isinstance(got, model) else model()


class KindActuator(Protocol):
    """Observes and changes the pools of one kind."""

    def observe(self, pool: PoolConfig) -> PoolStatus: ...

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle: ...

    def preflight(self, pool: PoolConfig) -> Preflight: ...

    def member_names(self, pool: PoolConfig) -> Sequence[str] | None:
        """Names of the pool's members as last observed (``vm-set``: its VMs, for the node
        metric); ``None`` for kinds whose metric source attributes load itself."""
        ...


@dataclass(frozen=True, slots=True)
class KindContext:
    """What an actuator factory may use: the config, the clock and the process's clients.

    ``compute`` is the Azure compute adapter, ``pexip`` the Management Node client (``None``
    without ``[pexip] url``); typed loosely here so this module imports no adapter.
    """

    config: Config
    clock: Clock
    compute: Any
    pexip: Any = None
    allow_competing: bool = False
    """``--allow-competing``: a competing scaler a kind finds at preflight (Pexip's dynamic
    bursting on a ``vm-set`` pool's nodes) is a warning instead of a refusal."""


@dataclass(frozen=True, slots=True)
class PlanInput:
    """Everything a planner sees of one pool at one tick (all observed, nothing fetched)."""

    pool: PoolConfig
    decision: Decision
    status: PoolStatus
    reading: MetricReading | None
    state: DrainState
    now: float


class PoolKind:
    """Base of the pool kinds: a whole-pool resize unless a kind says otherwise."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel] | None] = None
    """The model of the kind's own keys of ``[[pools]]`` (its fields are keys beside the shared
    ones; a table is a field of a model type, as ``[pools.vm_set]``); ``None``: the kind takes
    none. A field may not share a name with a ``PoolConfig`` key."""
    needs_pexip: ClassVar[bool] = False
    """Whether pools of this kind need ``[pexip] url`` (the Management Node)."""
    node_metric: ClassVar[bool] = False
    """Whether the pool's load is Conferencing Node load (HD calls per node, optionally of
    whole system locations: ``metric.locations``) rather than Teams calls per instance."""

    def problems(self, at: str, pool: PoolConfig, config: Config) -> list[str]:
        """Config problems of one pool (``at`` is its key path, e.g. ``pools[2]``)."""
        return []

    def limits(self, pool: PoolConfig, limits: PoolLimits) -> PoolLimits:
        """What the core is told of the pool (adjusted per kind where the platform says so)."""
        return limits

    def plan(self, given: PlanInput) -> InstancePlan:
        """The decision as it will happen and its writes; by default a capacity write (the
        desired size plus the instances the pool counts that serve nothing)."""
        d = guard(given)
        capacity = d.desired + given.status.unserving if d.desired != d.current else None
        return InstancePlan(d, InstanceActions(capacity=capacity), DrainState())

    def replay_mode(self, pool: PoolConfig) -> ScaleIn:
        return "drop"

    def max_drain_seconds(self, pool: PoolConfig) -> float | None:
        """How long an idle-only scale-in (``replay_mode`` ``idle``) waits for busy instances
        before it removes them anyway; ``None``: for ever."""
        return None

    def teams_connector(self, pool: PoolConfig) -> str:
        """The Teams Connector (name or id in Pexip's configuration) the pool's instances
        belong to, for a reading that attributes Pexip's records to pools; empty: not said
        (the only one Pexip has)."""
        return ""

    def actuator(self, ctx: KindContext) -> KindActuator | None:
        """The adapter for this kind, or ``None`` when its dependencies are not configured."""
        return None


def guard(given: PlanInput) -> Decision:
    """The planner's half of the one rule: a scale-in the pool's observation cannot vouch for
    (``PoolStatus.scale_in_unverified``) holds at the current size (``ScaleInUnverified``),
    and the assumptions the actuator took (``PoolStatus.notes``) join the detail. A scale-out
    and a hold pass unchanged."""
    d = given.decision
    status = given.status
    why = status.scale_in_unverified
    if why and d.desired < d.current and d.reason is not Reason.RESIZE_IN_FLIGHT:
        d = amend(d, d.current, Reason.SCALE_IN_UNVERIFIED, f"scale-in held: {why}")
    elif why:
        d = noted(d, (f"a scale-in would hold: {why}",))
    return noted(d, status.notes)
