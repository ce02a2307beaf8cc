"""A fake Azure plus a config file pointing the daemon at it, as the contract tests share it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fakeazure import FakeAzure

TOKEN_ENV = {"CVI_AUTOSCALER_STATIC_TOKEN": "test-token"}


@dataclass
class AzureEnv:
    fake: FakeAzure
    tmp: Path

    def pool(self, name: str, *, capacity: int, rg: str = "cvi", **over: Any) -> dict[str, Any]:
        """Create a scale set in the fake and return its ``[[pools]]`` table."""
        rid = self.fake.add_vmss(rg, name, capacity=capacity)
        table: dict[str, Any] = {
            "name": name,
            "resource_id": rid,
            "vcpus_per_instance": 4,
            "quota_family": "standardFSv2Family",
            "calls_per_instance": 15,
            "min": 1,
            "max": 20,
            "metric": {
                "namespace": "Pexip/CVI",
                "name": "ActiveCalls",
                "published_elsewhere": True,  # served by the fake as another daemon would
                "filter": "VMName eq '*'",
                "window_minutes": 5,
                "lag_minutes": 2,
            },
            "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
        }
        table.update(over)
        return table

    def calls(self, rid: str, per_vm: dict[str, list[float | None]]) -> None:
        """Per-VM concurrent calls for the last minutes (the list ends at the current minute)."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        for vm, values in per_vm.items():
            points = [
                (now - timedelta(minutes=len(values) - 1 - i), v) for i, v in enumerate(values)
            ]
            self.fake.set_metric(rid, "Pexip/CVI", "ActiveCalls", points, dimension=("VMName", vm))

    def write_config(self, *pools: dict[str, Any], daemon: str = "") -> Path:
        lines = [
            "[daemon]",
            "once_wait_seconds = 30",
            daemon,
            "[azure]",
            f'subscription_id = "{self.fake.subscription_id}"',
            'location = "westeurope"',
            f'resource_manager_url = "{self.fake.url}"',
            f'metrics_url = "{self.fake.url}"',
            'credential = "static-token"',
            f'ca_bundle = "{self.fake.ca_file}"',
            "polling_interval_seconds = 0",
            "retry_total = 2",
        ]
        for pool in pools:
            lines.append("[[pools]]")
            lines.extend(_toml_items(pool, prefix="pools"))
        path = self.tmp / "config.toml"
        path.write_text("\n".join(lines) + "\n")
        return path


def _toml_items(table: dict[str, Any], prefix: str) -> list[str]:
    scalars, tables, arrays = [], [], []
    for key, value in table.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            arrays.append((key, value))
        else:
            scalars.append(f"{key} = {_toml_value(value)}")
    out = scalars
    for key, value in tables:
        out.append(f"[{prefix}.{key}]")
        out.extend(_toml_items(value, f"{prefix}.{key}"))
    for key, items in arrays:
        for item in items:
            out.append(f"[[{prefix}.{key}]]")
            out.extend(_toml_items(item, f"{prefix}.{key}"))
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextmanager
def azure_env(tmp: Path) -> Iterator[AzureEnv]:
    saved = {k: os.environ.get(k) for k in TOKEN_ENV}
    os.environ.update(TOKEN_ENV)
    fake = FakeAzure(tmp).start()
    try:
        yield AzureEnv(fake, tmp)
    finally:
        fake.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
