"""The docs site builds with ``mkdocs build --strict`` from a clean checkout, offline, and the
strict build is what catches a broken link or anchor (as ``make docs`` and ``make test`` run it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    done = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    manifest = (tmp_path / "site" / "operations" / "index.html").read_text(encoding="utf-8")
    assert "azure.workload.identity/client-id" in manifest  # deploy/kubernetes.yaml, included
    reference = (tmp_path / "site" / "reference" / "configuration" / "index.html").read_text(
        encoding="utf-8"
    )
    assert "tick_deadline_seconds" in reference
    assert "fonts.googleapis.com" not in reference  # offline: theme.font is false


def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path) -> None:
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    site.pop("nav")
    for case, text in (
        ("page", "[gone](missing.md)"),
        ("anchor", "[gone](other.md#no-such-heading)"),
    ):
        project = tmp_path / case
        (project / "docs").mkdir(parents=True)
        (project / "docs" / "index.md").write_text(f"# Home\n\n{text}\n", encoding="utf-8")
        (project / "docs" / "other.md").write_text("# Other\n", encoding="utf-8")
        (project / "mkdocs.yml").write_text(yaml.safe_dump(site), encoding="utf-8")
        shutil.rmtree(project / "site", ignore_errors=True)
        done = build(project / "mkdocs.yml", project / "site")
        assert done.returncode != 0, case
        assert "missing.md" in done.stderr or "no-such-heading" in done.stderr, done.stderr
