"""The Pexip Management Node client against the HTTPS fake: paging, auth, writes, bad answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scaler.adapters.pexip import MAINTENANCE_REASON, PexipClient, load_password
from scaler.config import PexipConfig
from scaler.errors import ConfigError, PermanentError, TransientError
from tests.fakepexip import FakePexip


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePexip]:
    with FakePexip(tmp_path) as pexip:
        for i in range(5):
            pexip.add_teams_node(f"tc-{i:06d}", call_count=i, scaleset_id="tc")
        pexip.add_teams_proxy(3, "cvi-teams", min_number_of_instances=1)
        pexip.add_node("burst-1", max_hd_calls=20, media_load=50.0)
        pexip.add_node("always-1", max_hd_calls=40, media_load=25.0)
        yield pexip


def client_for(fake: FakePexip, *, password: str = "s3cret", page_size: int = 2) -> PexipClient:
    cfg = PexipConfig(
        url=fake.url, username="admin", ca_bundle=Path(fake.ca_file), page_size=page_size
    )
    return PexipClient(cfg, password=password)


def test_lists_are_read_page_by_page_through_meta_next(fake: FakePexip) -> None:
    client = client_for(fake)
    nodes = client.teams_nodes()
    assert [n.call_count for n in nodes] == [0, 1, 2, 3, 4]
    assert nodes[2].name == "tc-000002" and nodes[2].max_calls == 16
    pages = [r for r in fake.requests if r.path.endswith("/teamsnode/")]
    assert [r.query.get("offset") for r in pages] == ["0", "2", "4"]
    workers = {w.name: w for w in client.worker_vms()}
    assert workers["burst-1"].hd_calls == 10.0 and workers["always-1"].hd_calls == 10.0
    assert workers["burst-1"].boot_time is not None
    client.close()


def test_writes_min_instances_and_maintenance(fake: FakePexip) -> None:
    client = client_for(fake)
    proxy = client.teams_proxy("cvi-teams")
    assert (proxy.id, proxy.min_number_of_instances) == (3, 1)
    assert client.teams_proxy("3") == proxy
    client.set_min_instances(3, 4)
    assert fake.teams_proxies[3]["min_number_of_instances"] == 4
    (cfg,) = [c for c in client.worker_vm_configs() if c.name == "burst-1"]
    client.set_maintenance(cfg.id, True)
    assert fake.nodes["burst-1"].maintenance_mode
    assert fake.nodes["burst-1"].maintenance_mode_reason == MAINTENANCE_REASON
    loads = []
    for _ in range(3):
        (w,) = [w for w in client.worker_vms() if w.name == "burst-1"]
        loads.append(w.media_load)
    assert loads == [25.0, 0.0, 0.0]  # calls end once no new ones land
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


def test_malformed_json_is_permanent(fake: FakePexip) -> None:
    client = client_for(fake)
    fake.inject_fault("worker_vm", status=200, body='{"meta": {"next": nul')
    with pytest.raises(PermanentError, match="worker_vm/: malformed JSON"):
        client.worker_vms()
    fake.inject_fault("worker_vm", status=200, body='{"objects": "none"}')
    with pytest.raises(PermanentError, match="not a list of objects"):
        client.worker_vms()
    client.close()


def test_a_node_missing_a_field_is_named(fake: FakePexip) -> None:
    client = client_for(fake)
    fake.drop_field("tc-000003", "call_count")
    with pytest.raises(PermanentError, match="teamsnode 'tc-000003': missing field 'call_count'"):
        client.teams_nodes()
    fake.drop_field("always-1", "media_load")
    with pytest.raises(PermanentError, match="worker_vm 'always-1': missing field 'media_load'"):
        client.worker_vms()
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
