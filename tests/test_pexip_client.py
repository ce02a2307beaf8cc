"""The Pexip Management Node client against the HTTPS fake: paging, auth, writes, bad answers,
records that Pexip documents (nullable fields, maintenance mode), and links it must not follow."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scaler.adapters.pexip import (
    MAINTENANCE_REASON,
    PexipClient,
    active_scheduled_instances,
    load_password,
)
from scaler.config import PexipConfig
from scaler.errors import ConfigError, PermanentError, TransientError
from tests.fakepexip import STATUS, FakePexip


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePexip]:
    with FakePexip(tmp_path) as pexip:
        for i in range(5):
            pexip.add_teams_node(f"tc-{i:06d}", call_count=i, scaleset_id="tc")
        pexip.add_teams_proxy(3, "cvi-teams", min_number_of_instances=1)
        pexip.add_node("burst-1", max_hd_calls=20, media_load=50.0)
        pexip.add_node("always-1", max_hd_calls=40, media_load=25.0)
        yield pexip


def client_for(
    fake: FakePexip, *, password: str = "s3cret", page_size: int = 2, **cfg: Any
) -> PexipClient:
    config = PexipConfig(
        url=fake.url, username="admin", ca_bundle=Path(fake.ca_file), page_size=page_size, **cfg
    )
    return PexipClient(config, password=password)


def test_lists_are_read_page_by_page_through_meta_next(fake: FakePexip) -> None:
    client = client_for(fake)
    nodes = client.teams_nodes()
    assert [n.call_count for n in nodes] == [0, 1, 2, 3, 4]
    assert nodes[2].name == "tc-000002" and nodes[2].max_calls == 16
    assert all(n.valid and n.instance_status == "Active" for n in nodes)
    pages = [r for r in fake.requests if r.path.endswith("/teamsnode/")]
    assert [r.query.get("offset") for r in pages] == ["0", "2", "4"]
    workers = {w.name: w for w in client.worker_vms()}
    assert workers["burst-1"].hd_calls == 10.0 and workers["always-1"].hd_calls == 10.0
    assert workers["burst-1"].calls == 10 and workers["always-1"].calls == 10
    assert workers["burst-1"].boot_time is not None
    client.close()


def test_writes_min_instances_and_maintenance(fake: FakePexip) -> None:
    """A node in maintenance reports 100 % media load (docs.pexip.com/admin/maintenance_mode.htm)
    for as long as it is in maintenance; its calls end over time and are what tells it empty."""
    client = client_for(fake)
    proxy = client.teams_proxy("cvi-teams")
    assert (proxy.id, proxy.min_number_of_instances) == (3, 1)
    assert proxy.notifications_enabled is True and proxy.eventhub_id
    assert client.teams_proxy("3") == proxy
    client.set_min_instances(3, 4)
    assert fake.teams_proxies[3]["min_number_of_instances"] == 4
    (cfg,) = [c for c in client.worker_vm_configs() if c.name == "burst-1"]
    assert cfg.address
    client.set_maintenance(cfg.id, True)
    assert fake.nodes["burst-1"].maintenance_mode
    assert fake.nodes["burst-1"].maintenance_mode_reason == MAINTENANCE_REASON
    seen = []
    for _ in range(3):
        (w,) = [w for w in client.worker_vms() if w.name == "burst-1"]
        seen.append((w.media_load, w.calls, w.empty))
    # Media load says "no capacity" throughout; the calls end, and only then is it empty.
    assert seen == [(100.0, 5.0, False), (100.0, 0.0, True), (100.0, 0.0, True)]
    (w,) = [w for w in client.worker_vms() if w.name == "burst-1"]
    assert w.serving_hd_calls == 0.0 and w.serving_capacity_hd == 0.0  # neither load nor room
    with pytest.raises(PermanentError, match="no Teams Connector 'other'"):
        client.teams_proxy("other")
    client.close()


def test_wrong_password_is_permanent_and_names_the_endpoint(fake: FakePexip) -> None:
    client = client_for(fake, password="wrong")
    with pytest.raises(PermanentError, match=r"status/v1/teamsnode/: HTTP 401") as info:
        client.teams_nodes()
    assert info.value.status == 401
    client.close()


def test_server_errors_are_transient(fake: FakePexip) -> None:
    client = client_for(fake)
    fake.inject_fault("teamsnode", status=503, body='{"error": "busy"}')
    with pytest.raises(TransientError, match="HTTP 503"):
        client.teams_nodes()
    assert len(client.teams_nodes()) == 5  # the fault was one-shot
    client.close()


def test_a_connection_closed_without_an_answer_is_sent_once_more(fake: FakePexip) -> None:
    """A kept-alive connection the Management Node (or a proxy) closed answers nothing: the
    request goes once more on a fresh connection, so another pool's failed call does not fail
    the next pool's read; a node that keeps closing is a transient error after two tries."""
    client = client_for(fake)
    fake.inject_transport_fault(r"/teamsnode/$", "reset")
    before = len(fake.requests)
    assert len(client.teams_nodes()) == 5
    assert len(fake.requests) - before == 4  # first page twice, then two more pages
    fake.inject_transport_fault(r"/teamsnode/$", "reset", times=2)
    with pytest.raises(TransientError, match="without sending a response"):
        client.teams_nodes()
    client.close()


def test_malformed_json_is_permanent(fake: FakePexip) -> None:
    client = client_for(fake)
    fake.inject_fault("worker_vm", status=200, body='{"meta": {"next": nul')
    with pytest.raises(PermanentError, match="worker_vm/: malformed JSON"):
        client.worker_vms()
    fake.inject_fault("worker_vm", status=200, body='{"objects": "none"}')
    with pytest.raises(PermanentError, match="not a list of objects"):
        client.worker_vms()
    fake.inject_fault("worker_vm", status=200, body="<html>gateway</html>")
    with pytest.raises(PermanentError, match="malformed JSON"):
        client.worker_vms()
    client.close()


def test_a_record_missing_a_field_is_that_record_unknown_not_the_read(fake: FakePexip) -> None:
    """Was: one record without call_count failed the whole teamsnode read."""
    client = client_for(fake)
    fake.drop_field("tc-000003", "call_count")
    nodes = {n.name: n for n in client.teams_nodes()}
    assert len(nodes) == 5
    assert nodes["tc-000003"].problem == "missing field 'call_count'"
    assert nodes["tc-000003"].call_count is None and not nodes["tc-000003"].valid
    assert all(n.valid for name, n in nodes.items() if name != "tc-000003")
    fake.drop_field("always-1", "media_load")
    workers = {w.name: w for w in client.worker_vms()}
    assert workers["always-1"].problem == "missing field 'media_load'"
    assert workers["always-1"].calls is None and not workers["always-1"].empty
    assert workers["always-1"].hd_calls == float("inf")  # never reads as empty
    assert workers["burst-1"].valid and workers["burst-1"].calls == 10
    client.close()


def test_max_calls_null_is_documented_and_affects_nothing_else(fake: FakePexip) -> None:
    """``max_calls`` is nullable in Pexip's client models (go-infinity-sdk ``*int``)."""
    client = client_for(fake)
    fake.set_teams_field("tc-000002", "max_calls", None)
    fake.set_teams_field("tc-000002", "state", None)
    nodes = {n.name: n for n in client.teams_nodes()}
    assert nodes["tc-000002"].valid and nodes["tc-000002"].max_calls is None
    assert nodes["tc-000002"].call_count == 2
    assert [n.max_calls for n in nodes.values()] == [16, 16, None, 16, 16]
    client.close()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("-5", "-5"),
        ("NaN", "nan"),
        ("1e400", "inf"),
        ("true", "True"),
        ('"7"', "'7'"),
        ("2.5", "2.5"),
    ],
)
def test_invalid_numbers_make_the_record_invalid_without_a_crash(
    fake: FakePexip, raw: str, shown: str
) -> None:
    client = client_for(fake)
    fake.set_raw_field("tc-000004", "call_count", raw)
    fake.set_raw_field("tc-000001", "max_calls", raw)
    fake.set_raw_field("burst-1", "media_load", raw)
    nodes = {n.name: n for n in client.teams_nodes()}
    assert nodes["tc-000004"].problem == f"invalid call_count {shown}"
    assert nodes["tc-000001"].problem == f"invalid max_calls {shown}"
    assert nodes["tc-000003"].valid
    (burst,) = [w for w in client.worker_vms() if w.name == "burst-1"]
    if raw == "2.5":  # a fractional percentage is a valid media load
        assert burst.valid and burst.media_load == 2.5
    else:
        assert burst.problem == f"invalid media_load {shown}" and not burst.empty
    client.close()


def test_event_hub_off_lists_only_instances_with_a_call(tmp_path: Path) -> None:
    """docs.pexip.com/admin/teams_status.htm: without the Event Hub, instances are listed
    only while a Teams call is in progress, and carry no instance_status."""
    with FakePexip(tmp_path) as fake:
        fake.add_teams_proxy(1, "cvi", notifications_enabled=False)
        for i, calls in enumerate([3, 0, 0, 2]):
            fake.add_teams_node(f"tc00000{i}", call_count=calls, scaleset_id="tc", proxy=1)
        client = client_for(fake)
        nodes = client.teams_nodes()
        assert [(n.name, n.call_count, n.instance_status) for n in nodes] == [
            ("tc000000", 3, ""),
            ("tc000003", 2, ""),
        ]
        assert client.teams_proxy("cvi").notifications_enabled is False
        fake.set_calls("tc000003", 0)
        assert [n.name for n in client.teams_nodes()] == ["tc000000"]
        client.close()


def test_scheduled_scaling_and_licensing_are_read(fake: FakePexip) -> None:
    client = client_for(fake)
    fake.add_scheduled_scaling(
        1, instances_to_add=3, time_from="08:00", time_to="17:00", minutes_in_advance=30
    )
    fake.add_scheduled_scaling(2, instances_to_add=5, enabled=False)
    fake.add_scheduled_scaling(3, instances_to_add=7, resource_identifier="another-connector")
    policies = client.scheduled_scaling()
    assert [(p.instances_to_add, p.enabled) for p in policies] == [(3, True), (5, False), (7, True)]
    assert policies[0].days == ("mon", "tue", "wed", "thu", "fri")
    wednesday = datetime(2026, 11, 18, tzinfo=UTC)  # a Wednesday
    at = {
        h: (wednesday.replace(hour=h[0], minute=h[1])).timestamp()
        for h in [(7, 29), (7, 31), (16, 59), (17, 0)]
    }
    assert [policies[0].active_at(t) for t in at.values()] == [False, True, True, False]
    saturday = datetime(2026, 11, 21, 12, tzinfo=UTC).timestamp()
    assert policies[0].active_at(saturday) is False
    proxy = client.teams_proxy("cvi-teams")
    assert active_scheduled_instances(client, proxy, at[(7, 31)]) == 3
    assert active_scheduled_instances(client, proxy, saturday) == 0
    licences = client.licensing()
    # the Teams licence counts tenants (teams_configuration.htm); calls use call licences
    assert (licences.teams_count, licences.teams_total) == (1, 1)
    # port_count: the calls in progress (10 Teams calls, 20 node participants)
    assert (licences.port_count, licences.port_total, licences.free_calls) == (30, 100, 70)
    client.close()


def test_schema_endpoints_describe_every_served_field(fake: FakePexip) -> None:
    """The fake is checked against its own schema: every field of every record is declared,
    and null only where the schema says nullable."""
    client = client_for(fake)
    fake.set_teams_field("tc-000001", "max_calls", None)
    fake.add_scheduled_scaling(1, instances_to_add=1)
    http = client._http  # the same authenticated client, for raw records
    for resource in (
        "status/v1/teamsnode",
        "status/v1/worker_vm",
        "status/v1/participant",
        "status/v1/licensing",
        "configuration/v1/teams_proxy",
        "configuration/v1/scheduled_scaling",
        "configuration/v1/worker_vm",
    ):
        schema = client.schema(resource)
        assert schema, resource
        records = http.get(f"/api/admin/{resource}/", params={"limit": 0}).json()["objects"]
        assert records, resource
        for record in records:
            for key, value in record.items():
                assert key in schema, (resource, key)
                assert value is not None or schema[key].nullable, (resource, key)
    assert client.schema("status/v1/teamsnode")["max_calls"].nullable
    client.close()


# -- links the client must not follow -------------------------------------------------------


class _Counter(BaseHTTPRequestHandler):
    hits: list[dict[str, str]]

    def do_GET(self) -> None:
        type(self).hits.append({k.lower(): v for k, v in self.headers.items()})
        body = b'{"meta": {"next": null}, "objects": []}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def thief() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A plain-http server on another loopback port that records what it receives."""
    hits: list[dict[str, str]] = []
    handler = type("Thief", (_Counter,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "link",
    [
        "http://{thief}/steal",  # other scheme and port
        "https://{thief}/steal",  # other port
        "//{thief}/steal",  # scheme-relative
        "https://example.invalid/api/admin/status/v1/teamsnode/?offset=2",  # other host
        "http://{fake}/api/admin/status/v1/teamsnode/?offset=2",  # same host:port, plain http
    ],
)
def test_meta_next_elsewhere_is_not_followed_and_gets_no_credentials(
    fake: FakePexip, thief: tuple[str, list[dict[str, str]]], link: str
) -> None:
    """Was: a meta.next of http://127.0.0.1:18777/steal received the Basic Authorization."""
    address, hits = thief
    target = link.format(thief=address, fake=fake.url.removeprefix("https://"))
    fake.set_meta_next("teamsnode", target)
    client = client_for(fake)
    with pytest.raises(PermanentError, match="leaves the Management Node") as info:
        client.teams_nodes()
    assert target in str(info.value)
    assert hits == []
    assert len([r for r in fake.requests if r.path.endswith("/teamsnode/")]) == 1
    client.close()


def test_a_same_origin_absolute_next_is_followed(fake: FakePexip) -> None:
    fake.set_meta_next("teamsnode", f"{fake.url}{STATUS}/teamsnode/?limit=2&offset={{n}}0")
    client = client_for(fake, max_pages=3)
    with pytest.raises(PermanentError, match=r"more than 3 pages \(pexip.max_pages\)"):
        client.teams_nodes()
    assert len([r for r in fake.requests if r.path.endswith("/teamsnode/")]) == 3
    client.close()


def test_an_endless_meta_next_ends_at_the_page_cap(fake: FakePexip) -> None:
    """Was: an endless meta.next made thousands of GETs and the tick never finished."""
    fake.set_meta_next("teamsnode", f"{STATUS}/teamsnode/?limit=2&offset=2&page={{n}}")
    client = client_for(fake, max_pages=7)
    with pytest.raises(PermanentError, match="more than 7 pages"):
        client.teams_nodes()
    assert len([r for r in fake.requests if r.path.endswith("/teamsnode/")]) == 7
    client.close()


def test_an_endless_meta_next_ends_at_the_read_deadline(fake: FakePexip) -> None:
    """The deadline bounds one list read over all its pages, not only each request."""
    fake.set_meta_next("teamsnode", f"{STATUS}/teamsnode/?limit=2&offset=2&page={{n}}")
    client = client_for(fake, max_pages=10000, read_deadline_seconds=0.3)
    with pytest.raises(TransientError, match=r"not read within 0.3 s \(pexip.read_deadline"):
        client.teams_nodes()
    pages = len([r for r in fake.requests if r.path.endswith("/teamsnode/")])
    assert 1 <= pages < 10000
    client.close()


def test_unreachable_node_is_transient(tmp_path: Path) -> None:
    cfg = PexipConfig(url="https://127.0.0.1:9", username="admin", timeout_seconds=2)
    client = PexipClient(cfg, password="x")
    with pytest.raises(TransientError, match=r"127\.0\.0\.1:9"):
        client.teams_nodes()
    client.close()


def test_password_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    assert load_password(PexipConfig(password_file=secret)) == "hunter2"
    assert load_password(PexipConfig(), {"CVI_AUTOSCALER_PEXIP_PASSWORD": "pw"}) == "pw"
    with pytest.raises(ConfigError, match=r"pexip\.password_env"):
        load_password(PexipConfig(), {})


def test_an_answer_over_32_mib_is_refused_unread(fake: FakePexip) -> None:
    """Issue 20: a 100 MB answer took the daemon to 943 MB. An answer over the cap is refused
    (transient: the pools that needed it hold). The Azure side, whose fake can also stream an
    answer of unannounced length, is tested in ``tests/test_azure_pages.py``."""
    body = b'{"meta": {"next": null}, "objects": [' + b'{"name": "x"}, ' * (3 << 20) + b"{}]}"
    fake.inject_transport_fault(r"teamsnode/$", "raw", body=body, content_type="application/json")
    client = client_for(fake)
    with pytest.raises(TransientError, match=r"teamsnode/: the answer is too large .*32 MiB"):
        client.teams_nodes()
    client.close()


def test_a_password_env_that_looks_like_a_password_is_not_echoed() -> None:
    """Issue 20 case 7: ``password_env = "<the password itself>"`` was echoed in "the
    environment variable … is empty"."""
    with pytest.raises(ConfigError, match=r"variable \(a name not shown\) is empty") as caught:
        load_password(PexipConfig(password_env="Hunter2isMySecret"), {})
    assert "Hunter2" not in str(caught.value)
    with pytest.raises(ConfigError, match="variable MY_PEXIP_PASSWORD is empty"):
        load_password(PexipConfig(password_env="MY_PEXIP_PASSWORD"), {})
