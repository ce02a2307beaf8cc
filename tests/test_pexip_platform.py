"""The Pexip metric source fails closed, as Pexip documents its platform.

Each test reads through the real ``PexipMetrics`` and ``PexipClient`` (httpx) from the HTTPS
fake Management Node. The findings these guard against (each failed on the earlier code):
a node in maintenance reads 100 % media load (docs.pexip.com/admin/maintenance_mode.htm);
without the Event Hub only instances with a Teams call are listed
(docs.pexip.com/admin/teams_status.htm); a ``scaleset_id`` naming no pool, an empty list with
the Event Hub on, or an invalid ``call_count`` read as an idle pool; one ``max_calls: null``
failed every Teams pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.adapters.pexip import PexipClient, PexipMetrics
from scaler.config import Config, PoolConfig, parse_config
from scaler.core.types import MetricReading, MetricStatus
from scaler.wiring import node_metric, teams_connector
from tests.conftest import config_doc, examples, pool_table, vmss_id
from tests.fakepexip import FakePexip

NOW = 1_790_000_000.0


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakePexip]:
    with FakePexip(tmp_path_factory.mktemp("pexip")) as pexip:
        yield pexip


@pytest.fixture
def pexip(fake: FakePexip) -> FakePexip:
    fake.clear()
    fake.event_hub = True
    return fake


def teams(name: str, rg: str = "cvi", **over: Any) -> dict[str, Any]:
    table = pool_table(name, resource_id=vmss_id(name, rg), metric={"source": "pexip"})
    table.update(over)
    return table


def is_ok(reading: MetricReading) -> bool:
    return reading.status is MetricStatus.OK


def burst(**over: Any) -> dict[str, Any]:
    table = pool_table(
        "burst",
        kind="vm-set",
        resource_id="",
        vm_set={"resource_group": "cvi", "tag": "pexip-role=burst"},
        metric={"source": "pexip", "locations": ["London"], "base_fill": 0.8},
        min=0,
        max=3,
    )
    table.update(over)
    return table


def config(fake: FakePexip, *pools: dict[str, Any]) -> Config:
    pexip = {"url": fake.url, "username": "admin", "ca_bundle": fake.ca_file, "page_size": 3}
    return parse_config(config_doc(*pools, pexip=pexip), environ={})


def read(
    fake: FakePexip, *pools: dict[str, Any], members: Sequence[str] = ()
) -> dict[str, MetricReading]:
    cfg = config(fake, *pools)
    client = PexipClient(cfg.pexip, password="s3cret")

    def member_names(pool: PoolConfig) -> Sequence[str] | None:
        return members

    try:
        return dict(
            PexipMetrics(
                cfg,
                client,
                members=member_names,
                node_metric=node_metric,
                teams_connector=teams_connector,
            ).read(cfg.pools, NOW)
        )
    finally:
        client.close()


# -- Conferencing Nodes -----------------------------------------------------------------------


def test_a_node_in_maintenance_is_busy_while_it_carries_calls_and_empty_after(
    pexip: FakePexip,
) -> None:
    pexip.add_node("always-1", max_hd_calls=40, media_load=100.0)  # 40 HD calls
    pexip.add_node("burst-1", max_hd_calls=20, media_load=50.0)  # 10 HD calls
    before = read(pexip, burst(), members=["burst-1"])["burst"]
    assert is_ok(before) and before.calls == pytest.approx(40 + 10 - 0.8 * 40)
    assert dict(before.by_instance) == {"burst-1": 10.0}

    pexip.nodes["burst-1"].maintenance_mode = True  # e.g. an upgrade or Azure maintenance
    pexip.nodes["burst-1"].drain_left = 10.0
    pexip.nodes["burst-1"].drain_step = 5.0
    during = read(pexip, burst(), members=["burst-1"])["burst"]
    # It reports 100 % (no capacity), still carries calls: busy, and neither load nor room.
    assert is_ok(during) and dict(during.by_instance) == {"burst-1": 5.0}
    assert during.calls == pytest.approx(40 - 0.8 * 40)  # was 40 + 20 (its 100 %) - 32
    after = read(pexip, burst(), members=["burst-1"])["burst"]
    assert dict(after.by_instance) == {"burst-1": 0.0}  # its calls ended: empty
    assert pexip.nodes["burst-1"].reported_media_load == 100.0


def test_node_calls_are_unknown_when_a_participant_is_on_an_unlisted_node(
    pexip: FakePexip,
) -> None:
    pexip.add_node("burst-1", max_hd_calls=20, media_load=0.0)
    pexip.add_stray_participant("10.99.0.1")
    reading = read(pexip, burst(metric={"source": "pexip"}), members=["burst-1"])["burst"]
    assert is_ok(reading) and dict(reading.by_instance) == {"burst-1": None}  # never "empty"


def test_node_calls_are_unknown_when_a_participant_names_no_node(pexip: FakePexip) -> None:
    """A participant whose record names no media, signalling or proxy node (a field renamed or
    null in another Pexip version) may be on any node: no node reads as empty."""
    pexip.add_node("burst-1", max_hd_calls=20, media_load=0.0)
    pexip.add_stray_participant("")
    reading = read(pexip, burst(metric={"source": "pexip"}), members=["burst-1"])["burst"]
    assert is_ok(reading) and dict(reading.by_instance) == {"burst-1": None}


def test_an_invalid_node_record_makes_the_location_reading_missing(pexip: FakePexip) -> None:
    pexip.add_node("always-1", max_hd_calls=40, media_load=50.0)
    pexip.add_node("burst-1", max_hd_calls=20, media_load=0.0)
    pexip.set_raw_field("always-1", "media_load", "-3")
    reading = read(pexip, burst(), members=["burst-1"])["burst"]
    assert reading.status is MetricStatus.MISSING
    assert "worker_vm 'always-1': invalid media_load -3" in reading.detail


# -- Teams Connector: Event Hub on and off ----------------------------------------------------


def test_event_hub_off_lists_only_busy_instances_and_says_unlisted_is_idle(
    pexip: FakePexip,
) -> None:
    pexip.add_teams_proxy(1, "cvi", notifications_enabled=False)
    for i, calls in enumerate([3, 0, 0, 2]):
        pexip.add_teams_node(f"tc00000{i}", call_count=calls, scaleset_id="tc", proxy=1)
    reading = read(pexip, teams("tc"))["tc"]
    assert is_ok(reading) and reading.calls == 5.0
    assert dict(reading.by_instance) == {"tc000000": 3.0, "tc000003": 2.0}
    assert reading.unlisted_is_idle
    # No call anywhere: an empty list, which without the Event Hub means no Teams call now.
    pexip.set_calls("tc000000", 0)
    pexip.set_calls("tc000003", 0)
    idle = read(pexip, teams("tc"))["tc"]
    assert is_ok(idle) and idle.calls == 0.0 and idle.by_instance == () and idle.unlisted_is_idle


def test_event_hub_on_with_an_empty_list_is_missing_never_zero(pexip: FakePexip) -> None:
    """Was: an empty teamsnode list read as 0 calls, OK, and lowered the minimum 6 → 1."""
    pexip.add_teams_proxy(1, "cvi", notifications_enabled=True)
    reading = read(pexip, teams("tc", kind="pexip-teams", teams_proxy="cvi"))["tc"]
    assert reading.status is MetricStatus.MISSING
    assert "Event Hub is on" in reading.detail


def test_event_hub_on_lists_every_instance_and_unlisted_is_unknown(pexip: FakePexip) -> None:
    pexip.add_teams_proxy(1, "cvi", notifications_enabled=True)
    pexip.add_teams_node("tc000000", call_count=4, scaleset_id="tc", proxy=1)
    pexip.add_teams_node(
        "tc000001", call_count=0, scaleset_id="tc", proxy=1, instance_status="Terminating"
    )
    reading = read(pexip, teams("tc", kind="pexip-teams", teams_proxy="cvi"))["tc"]
    assert is_ok(reading) and reading.calls == 4.0 and not reading.unlisted_is_idle
    assert dict(reading.by_instance) == {"tc000000": 4.0, "tc000001": 0.0}


def test_unknown_event_hub_state_with_an_empty_list_is_missing(pexip: FakePexip) -> None:
    pexip.inject_fault("teams_proxy", status=403, body="forbidden")
    reading = read(pexip, teams("tc"))["tc"]
    assert reading.status is MetricStatus.MISSING
    assert "idle cannot be told from missing" in reading.detail and "HTTP 403" in reading.detail


# -- Teams Connector: attribution ---------------------------------------------------------------


def test_a_scaleset_id_naming_no_pool_is_missing_never_an_idle_pool(pexip: FakePexip) -> None:
    """Was: four instances carrying 48 calls under another scaleset_id read as 0 calls, OK."""
    for i in range(4):
        pexip.add_teams_node(f"tc00000{i}", call_count=12, scaleset_id="pexip-tc-vmss")
    reading = read(pexip, teams("tc"))["tc"]
    assert reading.status is MetricStatus.MISSING
    assert "'pexip-tc-vmss'" in reading.detail and "match no configured pool" in reading.detail


def test_instances_are_attributed_by_scale_set_name_or_resource_id(pexip: FakePexip) -> None:
    pexip.add_teams_node("a0", call_count=5, scaleset_id="tc-a")
    pexip.add_teams_node("a1", call_count=1, scaleset_id=vmss_id("tc-a").upper())
    pexip.add_teams_node("b0", call_count=7, scaleset_id="tc-b")
    out = read(pexip, teams("tc-a"), teams("tc-b"))
    assert (out["tc-a"].calls, out["tc-b"].calls) == (6.0, 7.0)


def test_instances_without_a_key_cannot_be_split_between_two_pools(pexip: FakePexip) -> None:
    pexip.add_teams_node("x0", call_count=5)
    pexip.add_teams_node("a0", call_count=1, scaleset_id="tc-a")
    out = read(pexip, teams("tc-a"), teams("tc-b"))
    assert all(r.status is MetricStatus.MISSING for r in out.values())
    assert "carry no scaleset_id or eventhub_id" in out["tc-a"].detail
    # With one Teams pool they can only be its own.
    only = read(pexip, teams("tc-a"))["tc-a"]
    assert is_ok(only) and only.calls == 6.0


def test_a_bare_scale_set_name_shared_by_two_pools_is_ambiguous(pexip: FakePexip) -> None:
    pexip.add_teams_node("x0", call_count=5, scaleset_id="tc")
    out = read(
        pexip, teams("tc", rg="west"), teams("tc2", rg="east", resource_id=vmss_id("tc", "east"))
    )
    assert all(r.status is MetricStatus.MISSING for r in out.values())
    assert "matches several pools" in out["tc"].detail


def test_instances_join_their_connector_by_event_hub_id(pexip: FakePexip) -> None:
    pexip.add_teams_proxy(1, "cvi-a", notifications_enabled=True)
    pexip.add_teams_proxy(2, "cvi-b", notifications_enabled=True)
    pexip.add_teams_node("a0", call_count=3, proxy=1)
    pexip.add_teams_node("b0", call_count=8, proxy=2)
    out = read(
        pexip,
        teams("tc-a", kind="pexip-teams", teams_proxy="cvi-a"),
        teams("tc-b", kind="pexip-teams", teams_proxy="cvi-b"),
    )
    assert (out["tc-a"].calls, out["tc-b"].calls) == (3.0, 8.0)


# -- Teams Connector: records ---------------------------------------------------------------------


def test_max_calls_null_affects_only_that_record(pexip: FakePexip) -> None:
    """Was: one ``max_calls: null`` failed the teamsnode read and every Teams pool."""
    pexip.add_teams_node("tc000000", call_count=4, scaleset_id="tc", max_calls=None)
    pexip.add_teams_node("tc000001", call_count=2, scaleset_id="tc")
    reading = read(pexip, teams("tc"))["tc"]
    assert is_ok(reading) and reading.calls == 6.0


@pytest.mark.parametrize(
    ("raw", "shown"), [("-5", "-5"), ("NaN", "nan"), ("1e400", "inf"), ("null", "'call_count'")]
)
def test_an_invalid_call_count_makes_its_pool_missing_and_no_other(
    pexip: FakePexip, raw: str, shown: str
) -> None:
    """Was: −5 lowered the minimum 6 → 1; NaN and 1e400 crashed with a traceback."""
    for i in range(3):
        pexip.add_teams_node(f"a{i}", call_count=6, scaleset_id="tc-a")
    pexip.add_teams_node("b0", call_count=7, scaleset_id="tc-b")
    pexip.set_raw_field("a1", "call_count", raw)
    out = read(pexip, teams("tc-a"), teams("tc-b"))
    assert out["tc-a"].status is MetricStatus.MISSING and out["tc-a"].calls is None
    assert "teamsnode 'a1'" in out["tc-a"].detail and shown in out["tc-a"].detail
    assert is_ok(out["tc-b"]) and out["tc-b"].calls == 7.0


# -- the invariant --------------------------------------------------------------------------------

BAD = ["-5", "NaN", "1e400", "-1e400", "null", '"3"', "true", "2.5"]
record = st.tuples(
    st.sampled_from(["tc-a", "tc-b", "other", ""]),  # scaleset_id
    st.one_of(st.integers(0, 16).map(str), st.sampled_from(BAD)),  # call_count (raw JSON)
    st.sampled_from(["16", "null", "-1"]),  # max_calls (raw JSON)
)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(records=st.lists(record, max_size=8), hub=st.booleans(), pools=st.sampled_from([1, 2]))
def test_a_reading_is_missing_or_the_exact_sum_of_valid_attributed_records(
    pexip: FakePexip, records: list[tuple[str, str, str]], hub: bool, pools: int
) -> None:
    pexip.clear()
    pexip.add_teams_proxy(1, "cvi", notifications_enabled=hub)
    for i, (sid, calls, cap) in enumerate(records):
        good = calls.isdigit()
        pexip.add_teams_node(
            f"n{i}", call_count=int(calls) if good else 1, scaleset_id=sid, proxy=1
        )
        if not good:
            pexip.set_raw_field(f"n{i}", "call_count", calls)
        pexip.set_raw_field(f"n{i}", "max_calls", cap)
    names = ["tc-a", "tc-b"][:pools]
    out = read(pexip, *(teams(n) for n in names))
    # Without the Event Hub Pexip lists only instances with a call (teams_status.htm).
    listed = [r for r in records if hub or r[1] != "0"]
    keyless = [r for r in listed if r[0] == ""]
    foreign = [r for r in listed if r[0] not in names and r[0] != ""]
    for name in names:
        reading = out[name]
        if reading.status is MetricStatus.MISSING:
            continue
        assert is_ok(reading)
        mine = [r for r in listed if r[0] == name or (r[0] == "" and pools == 1)]
        assert all(c.isdigit() and m in ("16", "null") for _, c, m in mine)  # nothing invalid
        assert reading.calls == sum(int(c) for _, c, _ in mine)  # the exact sum
        assert pools == 1 or not keyless  # never a guess between two pools
        if not mine:  # an empty reading is "no call" only without the Event Hub
            assert not hub and not foreign and reading.unlisted_is_idle
