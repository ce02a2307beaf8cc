"""The README is the front door: short, with the two commands, a table of contents, the rollout
in ten lines and links into ``docs/``; the docs site holds the rest. Every configuration key the
models accept and every command is in the *generated* reference (``tools/reference.py``), every
``make`` target named is real, and every link leads somewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from pydantic import BaseModel

from scaler import config as cfg
from scaler.cli import main
from tools import reference

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
CONFIG_REFERENCE = reference.config_reference()
CLI_REFERENCE = reference.cli_reference()
REPO_BLOB = "https://github.com/cvi-autoscaler/cvi-autoscaler/blob/main/"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """``text`` from the heading line ``heading`` to the next heading of any level."""
    lines = text.splitlines()
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^#+ ", lines[i])), len(lines))
    return "\n".join(lines[start:end])


def test_the_readme_is_short_and_has_what_a_newcomer_needs() -> None:
    assert len(README.encode("utf-8")) < 20_000
    for wanted in ("## Quick start", "## Contents", "## The rollout in ten lines", "## Commands"):
        assert wanted in README.splitlines(), wanted
    assert "make demo" in README and "make test" in README
    rollout = section(README, "## The rollout in ten lines")
    steps = re.findall(r"^\d+\. ", rollout, re.M)
    assert 5 <= len(steps) <= 10
    for step in ("validate", "once --config", "--dry-run", "trace export", "--compare"):
        assert step in rollout, step


def _nav_pages(items: list[object]) -> Iterator[str]:
    for item in items:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for value in item.values():
                yield from _nav_pages(value if isinstance(value, list) else [value])


def test_every_docs_page_is_in_the_site_and_in_the_readme() -> None:
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert site["theme"]["font"] is False  # nothing fetched from Google Fonts at build time
    assert "social" not in str(site.get("plugins", []))
    nav = set(_nav_pages(site["nav"]))
    pages = {str(p.relative_to(DOCS)) for p in PAGES}
    assert pages == nav, pages ^ nav
    contents = section(README, "## Contents")
    for name in pages - {"index.md"}:
        assert f"(docs/{name})" in contents, f"README's contents lack docs/{name}"


def test_the_readme_links_every_feature_to_its_page() -> None:
    """Quick start, configuration reference, deployment (systemd, container), policies and
    backtesting: each named in the README and linked to its page."""
    for words, target in (
        ("Getting started", "docs/getting-started.md"),
        ("Configuration reference", "docs/reference/configuration.md"),
        ("systemd", "docs/operations.md"),
        ("container", "docs/operations.md"),
        ("Policies", "docs/policies.md"),
        ("Backtesting", "docs/backtesting.md"),
    ):
        assert words in README and f"({target})" in README, (words, target)


# -- the generated reference --------------------------------------------------------------------


def test_the_committed_reference_is_what_the_code_generates() -> None:
    stale = [str(p.relative_to(ROOT)) for p in reference.stale()]
    assert not stale, f"{stale} differ from the code: run make docs (python tools/reference.py)"


def _models(
    model: type[BaseModel], path: str, seen: set[type[BaseModel]] | None = None
) -> Iterator[tuple[str, type[BaseModel]]]:
    """Every model under ``model`` with the TOML path of its table (``[pools.metric]``)."""
    yield path, model
    for name, field in model.model_fields.items():
        key = field.alias or name
        for sub in reference._models_in(field.annotation):
            inner = f"{path.strip('[]')}.{key}".lstrip(".")
            if reference._is_dict(field.annotation):
                sub_path = f'[{inner}."<name>"]'
            elif reference._is_list(field.annotation):
                sub_path = f"[[{inner}]]"
            else:
                sub_path = f"[{inner}]"
            yield from _models(sub, sub_path)


CONFIG_MODELS = list(_models(cfg.Config, ""))


@pytest.mark.parametrize(
    ("path", "model"), CONFIG_MODELS, ids=[p or "top level" for p, _ in CONFIG_MODELS]
)
def test_every_key_of_a_section_is_in_the_generated_reference(
    path: str, model: type[BaseModel]
) -> None:
    text = (
        section(
            CONFIG_REFERENCE,
            next(line for line in CONFIG_REFERENCE.splitlines() if line.endswith(f" `{path}`")),
        )
        if path
        else CONFIG_REFERENCE
    )
    missing = [
        field.alias or name
        for name, field in model.model_fields.items()
        if f"| `{field.alias or name}` |" not in text
    ]
    assert not missing, f"{path or 'the top level'} lacks {missing}"


def test_the_sections_operators_know_are_there() -> None:
    for heading in ("[daemon]", "[azure]", "[pexip]", "[http]", "[ha]", "[cost]", "[[pools]]"):
        assert f"### `{heading}`" in CONFIG_REFERENCE, heading
    for heading in ("[pools.metric]", "[pools.behavior]", "[pools.metric.log_analytics]"):
        assert f" `{heading}`" in CONFIG_REFERENCE, heading


def test_every_policy_and_kind_has_its_options_in_the_reference() -> None:
    import policies
    from scaler import kinds

    for name, cls in policies.discover().items():
        assert f"### `{name}`" in CONFIG_REFERENCE, name
        text = CONFIG_REFERENCE.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        for key, field in cls.Config.model_fields.items():
            assert f"| `{field.alias or key}` |" in text, f"policy {name}: {key}"
    for name, kind in kinds.discover().items():
        assert f"| `{name}` |" in section(CONFIG_REFERENCE, "## Pool kinds"), name
        options = reference.kind_options(type(kind))
        if options is not None:  # a kind that owns its keys: each is under its heading
            text = CONFIG_REFERENCE.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
            for key, field in options.model_fields.items():
                assert f"| `{field.alias or key}` |" in text, f"kind {name}: {key}"


def _commands(group: click.Command, prefix: str = "") -> Iterator[str]:
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            yield from _commands(sub, f"{prefix} {name}".strip())
    else:
        yield prefix


def test_every_subcommand_and_option_is_in_the_generated_reference() -> None:
    names = list(_commands(main))
    assert {"run", "once", "validate", "backtest", "demo", "trace export"} <= set(names)
    for name in names:
        assert f"### `cvi-autoscaler {name}`" in CLI_REFERENCE, name
        command = main
        for part in name.split():
            assert isinstance(command, click.Group)
            command = command.commands[part]
        text = CLI_REFERENCE.split(f"### `cvi-autoscaler {name}`", 1)[1].split("\n### ", 1)[0]
        for param in command.params:
            if isinstance(param, click.Option):
                assert f"`{param.opts[0]}" in text, f"{name} {param.opts[0]}"
    commands = section(README, "## Commands")
    for name in names:
        assert f"`cvi-autoscaler {name}`" in commands, f"{name} missing from the README's table"


# -- links and make targets ---------------------------------------------------------------------


def test_every_make_target_the_docs_name_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*)\s*:", makefile, re.M))
    text = README + "".join(p.read_text(encoding="utf-8") for p in PAGES)
    named = set(re.findall(r"`make ([a-z][\w-]*)", text)) | set(
        re.findall(r"^\s*make ([a-z][\w-]*)", text, re.M)
    )
    assert {"demo", "test", "docs", "bench"} <= named
    assert named <= targets, named - targets


def test_links_lead_to_files() -> None:
    """Relative links of the README and the pages lead to files; links into this repository's
    files on GitHub (how the site links to code and examples) name files that exist."""
    for base, text in [(ROOT, README)] + [(p.parent, p.read_text(encoding="utf-8")) for p in PAGES]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(REPO_BLOB):
                path = target.removeprefix(REPO_BLOB)
                assert (ROOT / path).exists(), f"{base}: link to a missing file {path}"
            elif not re.match(r"^[a-z]+:", target):
                assert (base / target).exists(), f"{base}: broken link {target}"


def test_the_operators_pages_cover_the_rollout_and_troubleshooting() -> None:
    trouble = page("troubleshooting.md")
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
    rollout = page("rollout.md")
    for step in ("validate", "once --config", "--dry-run", "trace export", "--compare"):
        assert step in rollout, step
    operations = page("operations.md")
    for wanted in ("## Install as a systemd service", "## Run as a container", "### Kubernetes"):
        assert wanted in operations, wanted
    assert '--8<-- "deploy/kubernetes.yaml"' in operations
    assert "(docs/benchmarks.md)" in README
    assert "### Scenario families" not in README  # the measured narrative lives in docs/
