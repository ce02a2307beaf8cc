"""Every list the daemon reads from Azure goes through one guarded pager (issue 20).

Real SDK clients against the HTTPS fake. For each list (usages, the scale sets of a resource
group and of a subscription, a scale set's instances, a resource group's VMs, the VMs' status
list, the region's SKUs, the autoscale settings): a ``nextLink`` to another host, port, scheme or
user is not followed (the request never arrives anywhere: the bearer token stays home), a link
back to a page already read stops at once, an endless series of links stops at ``max_pages``, a
slow endless series at ``read_deadline_seconds``, and a relative or same-origin link is followed.
Also here: answers larger than the cap, and every value of a scale set screened before it is
believed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from azure.mgmt.compute.operations import _operations as compute_requests
from azure.mgmt.monitor.operations import _autoscale_settings_operations as monitor_requests

from scaler.adapters import azure_http
from scaler.adapters.azure import (
    COMPUTE_API_VERSION,
    SKUS_API_VERSION,
    AzureCompute,
    make_credential,
)
from scaler.adapters.azure_autoscale import API_VERSION as AUTOSCALE_API_VERSION
from scaler.adapters.azure_autoscale import AutoscaleSettings
from scaler.adapters.azure_instances import AzureScaleSetInstances, AzureVmSet
from scaler.config import Config, PoolConfig, parse_config
from scaler.errors import AdapterError, PermanentError, TransientError
from scaler.kinds.vm_set import vm_set_of
from tests.fakeazure import FakeAzure
from tests.tls import QuietHandler, serve_tls

TIMEOUT = 2.5
"""``[azure] timeout_seconds``: every healthy call here answers well within it."""


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAzure]:
    saved = os.environ.get("CVI_AUTOSCALER_STATIC_TOKEN")
    os.environ["CVI_AUTOSCALER_STATIC_TOKEN"] = "test-token"
    server = FakeAzure(tmp_path_factory.mktemp("pages")).start()
    server.add_vmss("rg-a", "one", capacity=2)
    server.add_vmss("rg-a", "two", capacity=3)
    server.add_vmss("rg-b", "three", capacity=1)
    server.add_vm("rg-vms", "node-1", tags={"role": "burst"})
    server.add_vm("rg-vms", "node-2", tags={"role": "burst"})
    server.add_autoscale_setting(
        "rg-a",
        "one-cpu",
        target_resource_uri=(
            f"/subscriptions/{server.subscription_id}/resourceGroups/rg-a"
            "/providers/Microsoft.Compute/virtualMachineScaleSets/one"
        ),
        enabled=False,
    )
    try:
        yield server
    finally:
        server.stop()
        if saved is None:
            os.environ.pop("CVI_AUTOSCALER_STATIC_TOKEN", None)
        else:
            os.environ["CVI_AUTOSCALER_STATIC_TOKEN"] = saved


class _Capture(QuietHandler):
    """Another HTTPS server on another port with the same certificate: any request that
    reaches it is a token that left."""

    def do_GET(self) -> None:
        self.server.fake.append((self.path, self.headers.get("Authorization")))  # type: ignore[attr-defined]
        body = b'{"value": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def elsewhere(fake: FakeAzure) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler: type[BaseHTTPRequestHandler] = _Capture
    server, thread = serve_tls(handler, seen, fake.ca_file, fake._key_file, name="elsewhere")
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _pool(fake: FakeAzure, rg: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "resource_id": (
            f"/subscriptions/{fake.subscription_id}/resourceGroups/{rg}"
            f"/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
        ),
        "vcpus_per_instance": 4,
        "quota_family": "standardFSv2Family",
        "calls_per_instance": 15,
        "min": 0,
        "max": 20,
        "metric": {"namespace": "Pexip/CVI", "name": "ActiveCalls", "published_elsewhere": True},
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }


def _config(fake: FakeAzure, *pools: dict[str, Any], **azure: Any) -> Config:
    return parse_config(
        {
            "azure": {
                "subscription_id": fake.subscription_id,
                "location": "westeurope",
                "resource_manager_url": fake.url,
                "metrics_url": fake.url,
                "credential": "static-token",
                "ca_bundle": fake.ca_file,
                "polling_interval_seconds": 0,
                "retry_total": 0,
                "timeout_seconds": TIMEOUT,
                "call_deadline_seconds": 10,
                **azure,
            },
            "pexip": {"url": "https://127.0.0.1:9", "username": "admin"},
            "pools": list(pools),
        },
        environ={},
    )


def _vm_set(fake: FakeAzure) -> dict[str, Any]:
    return {
        "name": "burst",
        "kind": "vm-set",
        "vm_set": {"resource_group": "rg-vms", "tag": "role=burst"},
        "vcpus_per_instance": 8,
        "quota_family": "standardFSv2Family",
        "min": 0,
        "max": 2,
        "metric": {"source": "pexip", "locations": ["London"]},
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }


@dataclass(frozen=True)
class Lister:
    """One list the daemon reads: the path the fake serves it at, and how to read it."""

    path: str
    read: Callable[[AzureCompute, Config], object]


def _observe_first(compute: AzureCompute, config: Config) -> object:
    return compute.observe(config.pools[0])


LISTS = {
    "usage.list": Lister(r"/usages$", lambda c, _: c.usage("westeurope")),
    # two pools in one resource group: one list of the group answers both
    "vmss.list": Lister(
        r"/resourceGroups/rg-a/providers/Microsoft\.Compute/virtualMachineScaleSets$",
        _observe_first,
    ),
    # pools in two resource groups: the subscription's list
    "vmss.list_all": Lister(
        r"^/subscriptions/[^/]+/providers/Microsoft\.Compute/virtualMachineScaleSets$",
        _observe_first,
    ),
    "vmss_vms.list": Lister(
        r"/virtualMachineScaleSets/one/virtualMachines$",
        lambda c, cfg: AzureScaleSetInstances(c).list(cfg.pools[0]),
    ),
    "vm.list": Lister(
        r"/resourceGroups/rg-vms/providers/Microsoft\.Compute/virtualMachines$",
        lambda c, cfg: AzureVmSet(c).list(*_group(cfg.pools[-1])),
    ),
    "vm.list_status": Lister(
        r"^/subscriptions/[^/]+/providers/Microsoft\.Compute/virtualMachines$",
        lambda c, cfg: AzureVmSet(c).list(*_group(cfg.pools[-1])),
    ),
    "resource_skus.list": Lister(r"/skus$", lambda c, _: c.vm_sizes("westeurope")),
    "autoscale_settings.list": Lister(r"/autoscalesettings$", lambda c, cfg: _settings(cfg)),
}


def _group(pool: PoolConfig) -> tuple[str, tuple[str, str]]:
    """A vm-set pool's resource group and tag, as the adapter takes them."""
    group = vm_set_of(pool)
    return group.resource_group, group.tag_pair


def _settings(config: Config) -> object:
    settings = AutoscaleSettings(config, make_credential(config.azure))
    try:
        return settings.competing(config.pools[0])
    finally:
        settings.close()


def _read(fake: FakeAzure, name: str, **azure: Any) -> object:
    """Read list ``name`` once through fresh adapters, as the daemon reads it."""
    pools = [_pool(fake, "rg-a", "one"), _pool(fake, "rg-a", "two")]
    if name == "vmss.list_all":
        pools.append(_pool(fake, "rg-b", "three"))
    pools.append(_vm_set(fake))
    config = _config(fake, *pools, **azure)
    compute = AzureCompute(config, make_credential(config.azure))
    try:
        return LISTS[name].read(compute, config)
    finally:
        compute.close()


def _arm(fake: FakeAzure, name: str, link: str, times: int = 10_000) -> None:
    fake.inject_transport_fault(
        "GET", LISTS[name].path, "nextlink", body=link.encode(), times=times
    )


def _disarm(fake: FakeAzure) -> None:
    with fake._lock:  # the fake has no public way to disarm unused faults
        fake._faults.clear()


def _requests_to(fake: FakeAzure, name: str, since: int) -> int:
    import re

    pattern = re.compile(LISTS[name].path, re.IGNORECASE)
    return sum(1 for r in fake.requests[since:] if pattern.search(r.path))


@pytest.fixture(autouse=True)
def _clean(fake: FakeAzure) -> Iterator[None]:
    _disarm(fake)
    yield
    _disarm(fake)


def test_every_list_reads_in_a_healthy_world(fake: FakeAzure) -> None:
    for name in LISTS:
        assert _read(fake, name) is not None, name


def test_the_api_versions_are_the_sdks_own() -> None:
    """The pager sends the requests the SDK's own operations build, at the same api-version."""
    sub, rg, name = "00000000-0000-0000-0000-000000000001", "rg", "vmss"
    built = [
        compute_requests.build_usage_list_request("westeurope", sub),
        compute_requests.build_virtual_machine_scale_sets_list_request(rg, sub),
        compute_requests.build_virtual_machine_scale_sets_list_all_request(sub),
        compute_requests.build_virtual_machine_scale_sets_get_request(rg, name, sub),
        compute_requests.build_virtual_machine_scale_set_vms_list_request(rg, name, sub),
        compute_requests.build_virtual_machines_list_request(rg, sub),
        compute_requests.build_virtual_machines_list_all_request(sub, status_only="true"),
    ]
    for request in built:
        assert f"api-version={COMPUTE_API_VERSION}" in request.url, request.url
    skus = compute_requests.build_resource_skus_list_request(sub)
    assert f"api-version={SKUS_API_VERSION}" in skus.url
    autoscale = monitor_requests.build_list_by_resource_group_request(rg, sub)
    assert f"api-version={AUTOSCALE_API_VERSION}" in autoscale.url


LEAVING = {
    "another port": "{elsewhere}/subscriptions/x/stolen?page={n}",
    "another host": "https://localhost:{port}/elsewhere/{n}",
    "scheme-relative": "//localhost:{port}/elsewhere/{n}",
    "plain http": "http://127.0.0.1:{port}/elsewhere/{n}",
    "user and password": "https://admin:hunter2@127.0.0.1:{port}/elsewhere/{n}",
}


@pytest.mark.parametrize("how", sorted(LEAVING))
@pytest.mark.parametrize("name", sorted(LISTS))
def test_a_next_link_that_leaves_the_endpoint_is_not_followed(
    fake: FakeAzure,
    elsewhere: tuple[str, list[tuple[str, str | None]]],
    name: str,
    how: str,
) -> None:
    """Issue 20 case 1: a ``nextLink`` naming another host received ``Authorization: Bearer``."""
    base, captured = elsewhere
    port = fake.url.rsplit(":", 1)[1]
    link = LEAVING[how].replace("{elsewhere}", base).replace("{port}", port)
    _arm(fake, name, link)
    since, caught_before = len(fake.requests), len(captured)
    with pytest.raises(PermanentError, match=r"nextLink .* leaves .*not followed") as caught:
        _read(fake, name)
    assert "hunter2" not in str(caught.value)
    assert len(captured) == caught_before, "a request reached the other server"
    assert not [r for r in fake.requests[since:] if r.path.startswith("/elsewhere")]
    assert _requests_to(fake, name, since) == 1  # the first page only


@pytest.mark.parametrize("name", sorted(LISTS))
def test_a_next_link_back_to_a_page_already_read_stops_at_once(fake: FakeAzure, name: str) -> None:
    """Issue 20 case 5: a ``usage.list`` ``nextLink`` pointing at itself made 10,401 requests
    in 40 s. Now the loop is seen on the link and no request is sent for it (the SKU, status
    and instance lists' first page carries a query the link drops, ``$expand`` or a filter:
    that link is one new page, then a loop)."""
    _arm(fake, name, "{url}{path}")
    since = len(fake.requests)
    with pytest.raises(PermanentError, match="nextLink loops back"):
        _read(fake, name)
    queried = name in ("resource_skus.list", "vm.list_status", "vmss_vms.list")
    assert _requests_to(fake, name, since) == (2 if queried else 1)


@pytest.mark.parametrize("name", ["usage.list", "vmss_vms.list", "autoscale_settings.list"])
def test_an_endless_series_of_next_links_stops_at_max_pages(fake: FakeAzure, name: str) -> None:
    _arm(fake, name, "{url}{path}?page={n}")
    since = len(fake.requests)
    with pytest.raises(PermanentError, match=r"more than 5 pages \(\[azure\] max_pages\)"):
        _read(fake, name, max_pages=5)
    assert _requests_to(fake, name, since) == 5


def test_a_slow_endless_series_stops_at_the_read_deadline(fake: FakeAzure) -> None:
    """Each page answers in time (0.4 s, the timeout is 2.5 s), but the list never ends: the
    read stops once ``read_deadline_seconds`` has passed, as a transient failure."""
    fake.latency = 0.4
    try:
        _arm(fake, "usage.list", "{url}{path}?page={n}")
        started = time.monotonic()
        with pytest.raises(
            TransientError, match=r"usage.list: (not read within 2 s|.*timed out)"
        ) as caught:
            _read(fake, "usage.list", read_deadline_seconds=2)
        elapsed = time.monotonic() - started
    finally:
        fake.latency = 0.0
    assert elapsed < 2 + TIMEOUT + 2, elapsed
    assert "read_deadline_seconds" in str(caught.value) or "timed out" in str(caught.value)


def test_a_same_origin_next_link_is_followed_with_the_api_version(fake: FakeAzure) -> None:
    """The legitimate case: ARM's absolute ``nextLink`` on the same endpoint (the fake pages
    usages by ``usage_page_size``), and a relative one."""
    fake.usage_page_size = 1
    try:
        since = len(fake.requests)
        lines = _read(fake, "usage.list")
        assert isinstance(lines, dict) and len(lines) >= 2
        pages = [r for r in fake.requests[since:] if r.path.endswith("/usages")]
        assert len(pages) == len(lines)
        assert all(r.query.get("api-version") == COMPUTE_API_VERSION for r in pages)
    finally:
        fake.usage_page_size = 50
    _arm(fake, "vm.list", "{path}?page=2", times=1)  # relative: same origin
    since = len(fake.requests)
    vms = _read(fake, "vm.list")
    assert isinstance(vms, list) and len(vms) == 4  # both pages list the two VMs
    pages = [
        r
        for r in fake.requests[since:]
        if r.path.endswith("rg-vms/providers/Microsoft.Compute/virtualMachines")
    ]
    assert [r.query.get("page") for r in pages] == [None, "2"]
    assert all(r.query.get("api-version") == COMPUTE_API_VERSION for r in pages)


def test_a_next_link_that_is_not_a_string_is_refused(fake: FakeAzure) -> None:
    fake.inject_transport_fault(
        "GET",
        LISTS["usage.list"].path,
        "raw",
        body=b'{"value": [], "nextLink": {"href": "https://127.0.0.1:9/"}}',
        content_type="application/json",
    )
    with pytest.raises(PermanentError, match="nextLink is not a URL"):
        _read(fake, "usage.list")


# -- answer size ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["usage.list", "vmss.list"])
def test_an_answer_over_the_size_cap_is_refused_unread(fake: FakeAzure, name: str) -> None:
    """A server streaming 40 MiB of a list (issue 20: a 100 MB answer took the daemon to
    943 MB) is cut off at the 32 MiB cap and the read fails as transient."""
    fake.inject_transport_fault("GET", LISTS[name].path, "huge", delay=40, times=10)
    with pytest.raises(TransientError, match=r"too large .*the limit is 32 MiB"):
        _read(fake, name)


# -- values screened before they are believed ---------------------------------------------


def _body(fake: FakeAzure, **sku: Any) -> bytes:
    import json

    doc = {
        "id": f"/subscriptions/{fake.subscription_id}/resourceGroups/rg-a/providers/"
        "Microsoft.Compute/virtualMachineScaleSets/one",
        "name": "one",
        "sku": {"name": "Standard_F4s_v2", "tier": "Standard", "capacity": 6, **sku},
        "properties": {"provisioningState": "Succeeded"},
        "etag": '"3"',
    }
    return json.dumps(doc).encode()


UNUSABLE = {
    "capacity -3": {"capacity": -3},
    "capacity true": {"capacity": True},
    "capacity 5000": {"capacity": 5000},
    "capacity 1e9": {"capacity": 1e9},
    "capacity 6.0": {"capacity": 6.0},
    "capacity '6'": {"capacity": "6"},
    "capacity null": {"capacity": None},
    "size a path": {"name": "../../x"},
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_an_unusable_scale_set_value_fails_the_read(fake: FakeAzure, case: str) -> None:
    """Issue 20 case 2: ``sku.capacity`` read as -3, true, 5000 or 1e9 led to wrong writes."""
    config = _config(fake, _pool(fake, "rg-a", "one"))
    compute = AzureCompute(config, make_credential(config.azure))
    fake.inject_transport_fault(
        "GET",
        r"/virtualMachineScaleSets/one$",
        "raw",
        body=_body(fake, **UNUSABLE[case]),
        content_type="application/json",
    )
    try:
        with pytest.raises(PermanentError, match=r"vmss.get: scale set one sku\.") as caught:
            compute.observe(config.pools[0])
        assert caught.value.code == "UnusableAnswer"
    finally:
        compute.close()


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("etag", 42, "etag is not an entity tag"),
        ("etag", '"1"\r\nX-Injected: 1', "etag is not an entity tag"),
        ("provisioningState", {"state": "Succeeded"}, "provisioningState is not a state name"),
        ("provisioningState", "Succeeded\n", "provisioningState is not a state name"),
    ],
)
def test_an_unusable_etag_or_state_fails_the_read(
    fake: FakeAzure, field: str, value: Any, match: str
) -> None:
    import json

    doc = json.loads(_body(fake))
    if field == "etag":
        doc["etag"] = value
    else:
        doc["properties"][field] = value
    config = _config(fake, _pool(fake, "rg-a", "one"))
    compute = AzureCompute(config, make_credential(config.azure))
    fake.inject_transport_fault(
        "GET",
        r"/virtualMachineScaleSets/one$",
        "raw",
        body=json.dumps(doc).encode(),
        content_type="application/json",
    )
    try:
        with pytest.raises(PermanentError, match=match):
            compute.observe(config.pools[0])
    finally:
        compute.close()


def test_an_unusable_item_of_the_scale_set_list_fails_only_its_own_pool(fake: FakeAzure) -> None:
    """One listing answers both pools of rg-a: pool ``one``'s absurd capacity fails ``one``,
    and ``two`` is read as Azure has it."""
    import json

    good = json.loads(_body(fake))
    good.update(name="two", id=good["id"].replace("/one", "/two"))
    good["sku"]["capacity"] = 3
    bad = json.loads(_body(fake, capacity=5000))
    fake.inject_transport_fault(
        "GET",
        LISTS["vmss.list"].path,
        "raw",
        body=json.dumps({"value": [bad, good]}).encode(),
        content_type="application/json",
    )
    config = _config(fake, _pool(fake, "rg-a", "one"), _pool(fake, "rg-a", "two"))
    compute = AzureCompute(config, make_credential(config.azure))
    try:
        with pytest.raises(PermanentError, match=r"sku\.capacity is not an integer within 0-1000"):
            compute.observe(config.pools[0])
        assert compute.observe(config.pools[1]).capacity == 3
    finally:
        compute.close()


@pytest.mark.parametrize(
    ("instance", "match"),
    [
        ({"instanceId": "../../delete"}, "instanceId is not an instance id"),
        ({"instanceId": 7}, "instanceId is not an instance id"),
        ({"instanceId": "0"}, "lists an instance twice"),
    ],
)
def test_an_unusable_instance_list_fails_the_read(
    fake: FakeAzure, instance: dict[str, Any], match: str
) -> None:
    import json

    items = [{"instanceId": "0", "name": "one_0"}, {"name": "one_x", **instance}]
    fake.inject_transport_fault(
        "GET",
        LISTS["vmss_vms.list"].path,
        "raw",
        body=json.dumps({"value": items}).encode(),
        content_type="application/json",
    )
    config = _config(fake, _pool(fake, "rg-a", "one"))
    compute = AzureCompute(config, make_credential(config.azure))
    try:
        with pytest.raises(AdapterError, match=match):
            AzureScaleSetInstances(compute).list(config.pools[0])
    finally:
        compute.close()


def test_an_absurd_quota_line_is_named_not_called_misspelt(fake: FakeAzure) -> None:
    """Also seen in issue 20: an absurd ``usage.list`` limit read as a line that is not there
    ("misspelt or unknown quota family?"). Now the line is kept, marked unusable."""
    fake.inject_transport_fault(
        "GET",
        LISTS["usage.list"].path,
        "raw",
        body=(
            b'{"value": [{"currentValue": 4, "limit": 1e300, "name": {"value": "cores"}},'
            b' {"currentValue": 8, "limit": 100, "name": {"value": "standardFSv2Family"}}]}'
        ),
        content_type="application/json",
    )
    lines = _read(fake, "usage.list")
    assert isinstance(lines, dict)
    assert lines["cores"].problem == "currentValue=4 limit=1e+300"
    assert lines["standardFSv2Family"].headroom == 92


def test_concurrent_reads_share_nothing_but_the_rules(fake: FakeAzure) -> None:
    """The pager keeps no state between reads: eight threads listing at once all succeed."""
    config = _config(fake, _pool(fake, "rg-a", "one"))
    compute = AzureCompute(config, make_credential(config.azure))
    errors: list[BaseException] = []

    def read() -> None:
        try:
            compute.usage("westeurope")
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=read) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        compute.close()
    assert not errors


def test_show_url_leaves_out_user_and_password() -> None:
    text = "pexip https://admin:S3CRET@pexip.example.com/api and http://u@h:1/x"
    assert azure_http.show_url(text) == "pexip https://pexip.example.com/api and http://h:1/x"


def test_a_path_segment_can_never_add_a_segment() -> None:
    assert azure_http.segment("a/../b") == "a%2F..%2Fb"


def test_a_hostile_autoscale_settings_list_is_a_start_up_warning(fake: FakeAzure) -> None:
    """The autoscale settings are read at start-up and on reload (not in the ticks the fault
    matrix drives): a ``nextLink`` that leaves is not followed and the check says so as a
    warning (nothing is known either way), never as a refusal to start."""
    _arm(fake, "autoscale_settings.list", "https://localhost:1/elsewhere")
    config = _config(fake, _pool(fake, "rg-a", "one"))
    settings = AutoscaleSettings(config, make_credential(config.azure))
    try:
        found = settings.check(config.pools[0])
    finally:
        settings.close()
    assert not found.errors
    assert any("nextLink" in w and "not followed" in w for w in found.warnings), found.warnings
