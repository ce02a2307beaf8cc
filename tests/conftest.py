"""Shared fixtures: small configs built in code, so each test shows what it varies."""

from __future__ import annotations

from typing import Any

SUB = "00000000-0000-0000-0000-000000000001"


def vmss_id(name: str, rg: str = "cvi") -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/"
        f"virtualMachineScaleSets/{name}"
    )


def pool_table(name: str = "tc", **over: Any) -> dict[str, Any]:
    """One ``[[pools]]`` table as parsed TOML, with overrides."""
    table: dict[str, Any] = {
        "name": name,
        "resource_id": vmss_id(name),
        "vcpus_per_instance": 4,
        "quota_family": "standardFSv2Family",
        "calls_per_instance": 15,
        "min": 1,
        "max": 20,
        "boot_minutes": 20,
        # The fakes serve this metric as if another cvi-autoscaler published it: nothing else
        # writes Pexip/CVI, so a config must say so (metric.published_elsewhere).
        "metric": {
            "namespace": "Pexip/CVI",
            "name": "ActiveCalls",
            "published_elsewhere": True,
            "lag_minutes": 2,
        },
        "policies": [{"type": "target-tracking", "target_utilization": 0.8}],
    }
    table.update(over)
    return table


def config_doc(*pools: dict[str, Any], **sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "azure": {"subscription_id": SUB, "location": "westeurope"},
        "pools": list(pools) or [pool_table()],
    }
    for key, value in sections.items():
        doc[key] = value
    return doc
