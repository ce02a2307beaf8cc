"""A fourth pool kind in one file: defined here with an option of its own, registered through a
real ``cvi_autoscaler.kinds`` entry point (a distribution written to a temporary directory on
``sys.path``), validated by the config and planned by the daemon, with no edit anywhere else
(``scaler/config_model.py`` names no kind's keys).

The kind, ``blocks``, is a scale set whose capacity comes in whole blocks (an on-demand capacity
reservation bought N instances at a time): its own key ``block_size`` sits in ``[[pools]]``
beside the shared ones, as ``drain`` of ``vmss`` and ``teams_proxy`` of ``pexip-teams`` do.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field

from scaler import kinds
from scaler.actuators import actuator_of
from scaler.adapters.sim import ManualClock, SimCloud
from scaler.config import Config, PoolConfig, parse_config
from scaler.core.victims import DrainState, InstanceActions, InstancePlan, noted
from scaler.daemon import Daemon
from scaler.errors import ConfigError
from scaler.kinds import KindContext, KindOptions, PlanInput, PoolKind, options_of
from scaler.kinds.base import guard
from scaler.ports import PoolStatus, Preflight, ResizeHandle
from scaler.wiring import PoolRouter
from tests.conftest import config_doc, pool_table
from tests.test_daemon import START, flat_trace
from tools import reference

# -- the fourth kind, as a third party writes it -------------------------------------------------


class BlocksOptions(KindOptions):
    """The keys of ``[[pools]]`` only a ``blocks`` pool takes."""

    block_size: int = Field(ge=1, le=100)
    """Instances per block of reserved capacity (required)."""


class BlocksActuator:
    """Sizes the scale set as the compute adapter it is given does, remembering each write."""

    def __init__(self, compute: Any) -> None:
        self.compute = compute
        self.applied: list[InstanceActions] = []

    def observe(self, pool: PoolConfig) -> PoolStatus:
        status: PoolStatus = self.compute.observe(pool)
        return status

    def apply(self, pool: PoolConfig, actions: InstanceActions) -> ResizeHandle:
        self.applied.append(actions)
        handle: ResizeHandle = self.compute.apply(pool, actions)
        return handle

    def preflight(self, pool: PoolConfig) -> Preflight:
        return Preflight()

    def member_names(self, pool: PoolConfig) -> Sequence[str] | None:
        return None


class Blocks(PoolKind):
    """Kind ``blocks``: a scale set sized in whole blocks of reserved instances."""

    name: ClassVar[str] = "blocks"
    Options = BlocksOptions

    def problems(self, at: str, pool: PoolConfig, config: Config) -> list[str]:
        block = options_of(pool, BlocksOptions).block_size
        if pool.max % block:
            return [
                f"{at}.max: a whole number of blocks of {block} for kind 'blocks', got {pool.max}"
            ]
        return []

    def plan(self, given: PlanInput) -> InstancePlan:
        """The decision rounded up to whole blocks (a block is bought or given back whole)."""
        d = guard(given)
        block = options_of(given.pool, BlocksOptions).block_size
        whole = min(given.pool.max, math.ceil(d.desired / block) * block)
        if whole != d.desired:
            d = noted(dataclasses.replace(d, desired=whole), (f"in blocks of {block}",))
        capacity = d.desired if d.desired != d.current else None
        return InstancePlan(d, InstanceActions(capacity=capacity), DrainState())

    def actuator(self, ctx: KindContext) -> BlocksActuator:
        return BlocksActuator(ctx.compute)


# -- its registration: an entry point of a distribution on sys.path ----------------------------


def _install(site: Path, monkeypatch: pytest.MonkeyPatch, line: str) -> None:
    info = site / "cvi_autoscaler_blocks-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cvi-autoscaler-blocks\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(f"[cvi_autoscaler.kinds]\n{line}\n")
    monkeypatch.syspath_prepend(str(site))
    kinds.discover.cache_clear()


@pytest.fixture
def blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The entry point ``blocks = tests.test_kind_plugin:Blocks`` installed for this test."""
    _install(tmp_path / "site", monkeypatch, "blocks = tests.test_kind_plugin:Blocks")
    yield
    monkeypatch.undo()
    kinds.discover.cache_clear()


def _config(*pools: dict[str, Any], **sections: Any) -> Config:
    return parse_config(config_doc(*pools, **sections), environ={})


def _problems(*pools: dict[str, Any], **sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        _config(*pools, **sections)
    return err.value.problems


def _blocks(**over: Any) -> dict[str, Any]:
    return pool_table(**{"kind": "blocks", "block_size": 4, **over})


# -- the config ---------------------------------------------------------------------------------


def test_the_registry_finds_the_fourth_kind_through_its_entry_point(blocks: None) -> None:
    found = kinds.discover()
    assert list(found) == ["vmss", "pexip-teams", "vm-set", "blocks"]
    assert isinstance(found["blocks"], Blocks)


def test_the_config_validates_the_fourth_kind_s_own_key(blocks: None) -> None:
    config = _config(_blocks(), pool_table("plain"))
    pool, plain = config.pools
    assert pool.kind_options == BlocksOptions(block_size=4)
    assert options_of(pool, BlocksOptions).block_size == 4
    assert isinstance(kinds.kind_of(pool), Blocks)
    assert "block_size" not in PoolConfig.model_fields  # the shared model was not edited
    assert plain.kind_options is not None and not hasattr(plain.kind_options, "block_size")


def test_the_fourth_kind_s_key_comes_from_a_template_too(blocks: None) -> None:
    table = _blocks()
    del table["block_size"]
    doc = config_doc(table)
    doc["templates"] = {"reserved": {"block_size": 5, "max": 20}}
    doc["pools"][0]["template"] = "reserved"
    doc["pools"][0].pop("max")
    config = parse_config(doc, environ={})
    assert options_of(config.pools[0], BlocksOptions).block_size == 5


UNSET = object()
"""An override that leaves the key out of the pool's table."""


@pytest.mark.parametrize(
    ("over", "problem"),
    [
        ({"block_size": UNSET}, "pools[0].block_size: required key is missing"),
        (
            {"block_size": "four"},
            "pools[0].block_size: input should be a valid integer, unable to parse string",
        ),
        (
            {"block_size": 0},
            "pools[0].block_size: input should be greater than or equal to 1, got 0",
        ),
        ({"block_size": True}, "pools[0].block_size: must be a number, not a boolean, got true"),
        ({"block_size": 3}, "pools[0].max: a whole number of blocks of 3 for kind 'blocks'"),
        ({"drain": True}, "pools[0].drain: only for kind 'vmss', not 'blocks', got true"),
        (
            {"kind": "vmss"},
            "pools[0].block_size: only for kind 'blocks', not 'vmss', got 4",
        ),
        (
            {"kind": "pexip-teams", "teams_proxy": "t"},
            "pools[0].block_size: only for kind 'blocks', not 'pexip-teams', got 4",
        ),
        (
            {"block_size": UNSET, "block_sise": 4},
            "pools[0].block_sise: unknown key (did you mean 'block_size'?)",
        ),
    ],
)
def test_bad_fourth_kind_config_names_the_key_and_the_kind(
    blocks: None, over: dict[str, Any], problem: str
) -> None:
    pool = {k: v for k, v in {**_blocks(), **over}.items() if v is not UNSET}
    problems = _problems(pool, pexip={"url": "https://pexip.example.com"})
    assert any(p.startswith(problem) for p in problems), problems


def test_without_its_registration_the_fourth_kind_is_refused() -> None:
    kinds.discover.cache_clear()
    problems = _problems(_blocks())
    assert "pools[0].block_size: unknown key" in problems
    assert any(
        p.startswith("pools[0].kind: must be one of pexip-teams, vm-set, vmss, got 'blocks'")
        for p in problems
    ), problems


class Clash(Blocks):
    """A kind whose options take a key every pool has."""

    name: ClassVar[str] = "clash"

    class Options(KindOptions):
        min: int = 0


def test_a_kind_whose_options_take_a_shared_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(tmp_path / "site", monkeypatch, "clash = tests.test_kind_plugin:Clash")
    try:
        problems = _problems(pool_table())
    finally:
        monkeypatch.undo()
        kinds.discover.cache_clear()
    assert any(
        p.startswith(
            "pools[0].kind: pool kind 'clash' (tests.test_kind_plugin): its Options take "
            "keys every pool shares (min)"
        )
        for p in problems
    ), problems


def test_the_reference_lists_the_fourth_kind_s_key(blocks: None) -> None:
    text = reference.config_reference()
    own = text.split("### `blocks`", 1)[1].split("\n## ", 1)[0]
    assert "| `block_size` | integer (≥ 1, ≤ 100) | required | Instances per block" in own


# -- planned by the daemon ----------------------------------------------------------------------


def test_the_daemon_plans_and_writes_whole_blocks(blocks: None) -> None:
    """200 calls at 80 % of 15 per instance want 17 instances; the core's rate limit allows
    fewer this tick, and the kind rounds that up to a whole block; its own actuator (from its
    ``actuator`` hook, through the composition root's ``actuator_of``) writes it."""
    config = _config(_blocks())
    (pool,) = config.pools
    clock = ManualClock(START.timestamp() + 10 * 60)
    cloud = SimCloud(config, flat_trace([200.0] * 60), clock=clock, quota_limits={})
    kind = kinds.kind_of(pool)
    actuator = actuator_of(kind, KindContext(config=config, clock=clock, compute=cloud))
    assert isinstance(actuator, BlocksActuator)
    router = PoolRouter({"blocks": actuator}, cloud)
    daemon = Daemon(config=config, metrics=cloud, actuator=router, quota=cloud, clock=clock)
    (outcome,) = daemon.tick()
    assert outcome.desired % 4 == 0 and outcome.desired > outcome.current, outcome
    assert outcome.decision is not None and "in blocks of 4" in outcome.decision.detail
    assert [a.capacity for a in actuator.applied] == [outcome.desired]
    assert cloud.observe(pool).capacity == outcome.desired


def test_the_planner_gives_back_only_whole_blocks(blocks: None) -> None:
    from tests.test_kinds import decision

    (pool,) = _config(_blocks()).pools
    status = PoolStatus(capacity=12)
    for desired, written in ((12, None), (10, None), (7, 8), (3, 4), (13, 16), (19, 20)):
        plan = Blocks().plan(
            PlanInput(
                pool=pool,
                decision=decision(12, desired),
                status=status,
                reading=None,
                state=DrainState(),
                now=0.0,
            )
        )
        assert plan.actions.capacity == written, (desired, plan)
        assert plan.decision.desired % 4 == 0
