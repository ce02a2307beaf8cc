"""The README is the operator's reference: every configuration key the models accept, every
command and every ``make`` target it names must be there and be real, and its links must lead
somewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from pydantic import BaseModel

from scaler import config as cfg
from scaler.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    """The README's text from the heading line starting with ``heading`` to the next heading of
    the same or a higher level."""
    level = heading.split(" ", 1)[0]
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = len(lines)
    for i in range(start + 1, len(lines)):
        m = re.match(r"^(#+) ", lines[i])
        if m and len(m.group(1)) <= len(level) and not _in_code(lines, i):
            end = i
            break
    return "\n".join(lines[start:end])


def _in_code(lines: list[str], index: int) -> bool:
    return sum(1 for line in lines[:index] if line.startswith("```")) % 2 == 1


def mentioned(key: str, text: str) -> bool:
    """``key`` as the reference writes keys: `` `key` ``, `` `key.sub` ``, `` `.key` ``, a
    ``[pools.key]`` table, or ``key`` in a list of keys (`` `a`, `b` ``)."""
    patterns = (
        f"`{key}`",
        f"`{key}.",
        f"`.{key}`",
        f"[pools.{key}]",
        f"[[pools.{key}]]",
        f".{key}`",
        f".{key}]",
    )
    return any(p in text for p in patterns)


def test_every_top_level_section_has_its_reference() -> None:
    reference = section("## Configuration reference")
    for key, field in cfg.Config.model_fields.items():
        assert f"### `[{key}]`" in README or f"### `[[{key}]]`" in README, key
        assert f"`[{key}]`" in reference or f"`[[{key}]]`" in reference, key
        assert field.annotation is not None


SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("### `[daemon]`", cfg.DaemonConfig),
    ("### `[azure]`", cfg.AzureConfig),
    ("### `[pexip]`", cfg.PexipConfig),
    ("### `[http]`", cfg.HttpConfig),
    ("### `[ha]`", cfg.HaConfig),
    ("### `[cost]`", cfg.CostConfig),
    ("### `[[pools]]`", cfg.PoolConfig),
    ("### `[[pools]]`", cfg.MetricConfig),
    ("### `[[pools]]`", cfg.BehaviorConfig),
    ("### `[[pools]]`", cfg.DirectionConfig),
    ("### `[[pools]]`", cfg.LogAnalyticsConfig),
    ("### `[[pools]]`", cfg.VmSetConfig),
    ("### `[cost]`", cfg.SkuPriceConfig),
]


def _keys(model: type[BaseModel]) -> Iterator[str]:
    for name, field in model.model_fields.items():
        yield field.alias or name


@pytest.mark.parametrize(
    ("heading", "model"), SECTIONS, ids=[f"{h}:{m.__name__}" for h, m in SECTIONS]
)
def test_every_key_of_a_section_is_in_its_reference(heading: str, model: type[BaseModel]) -> None:
    text = section(heading)
    missing = [key for key in _keys(model) if not mentioned(key, text)]
    assert not missing, f"{heading} lacks {missing}"


def _commands(group: click.Command, prefix: str = "") -> Iterator[str]:
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            yield from _commands(sub, f"{prefix} {name}".strip())
    else:
        yield prefix


def test_every_subcommand_is_documented() -> None:
    names = list(_commands(main))
    assert {"run", "once", "validate", "backtest", "demo", "trace export"} <= set(names)
    for name in names:
        assert f"cvi-autoscaler {name}" in README, name
    commands = section("## Commands")
    for name in names:
        assert f"`cvi-autoscaler {name}" in commands, f"{name} missing from the Commands table"


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*)\s*:", makefile, re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)", README)) | set(
        re.findall(r"^make ([a-z][\w-]*)", README, re.M)
    )
    assert {"demo", "test"} <= named
    assert named <= targets, named - targets


def test_relative_links_lead_to_files() -> None:
    for base, text in [(ROOT, README)] + [
        (path.parent, path.read_text(encoding="utf-8")) for path in (ROOT / "docs").glob("*.md")
    ]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            assert (base / target).exists(), f"{base}: broken link {target}"


def test_operator_path_is_in_the_readme_and_benchmarks_in_docs() -> None:
    headings = [line for line in README.splitlines() if line.startswith("## ")]
    for wanted in (
        "## Quick start",
        "## From zero to production: a guided rollout",
        "## Configuration reference",
        "## Operations",
        "## Troubleshooting",
    ):
        assert wanted in headings, wanted
    trouble = section("## Troubleshooting")
    for reason in (
        "MetricsMissing",
        "QuotaUnknown",
        "ObserveTimedOut",
        "WaitingForIdle",
        "DrainTimedOut",
        "LicenseLimited",
        "ScaleInUnverified",
        "PexipScheduledScaling",
        "CapacityUnavailable",
    ):
        assert f"`{reason}`" in trouble, reason
    rollout = section("## From zero to production")
    for step in ("validate", "once --config", "--dry-run", "trace export", "--compare"):
        assert step in rollout, step
    assert "(docs/benchmarks.md)" in README and (ROOT / "docs" / "benchmarks.md").is_file()
    assert "### Scenario families" not in README  # the measured narrative lives in docs/
