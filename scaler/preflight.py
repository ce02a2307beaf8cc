"""What start-up would find beyond the file itself, for ``cvi-autoscaler validate``.

The loader checks the file (and the environment variables that override its keys); start-up
also reads the secrets the file only names — the Management Node's password from
``[pexip] password_file`` or the variable ``password_env`` — and stops with exit 2 when one is
missing. ``validate`` runs the same reads so that it fails where start-up would, and
``validate --offline`` leaves them out (checking a file on a machine that does not hold the
secrets). The reads are the adapters' own (``scaler.adapters.pexip.load_password``); nothing is
sent anywhere.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from scaler.config import Config, PexipConfig, apply_env_overrides, read_config_text
from scaler.errors import ConfigError


def secret_problems(
    path: Path, config: Config | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """The secrets start-up would read and cannot, one line each naming the key. ``config`` is
    the loaded file, or ``None`` when it did not load (the ``[pexip]`` section is then read on
    its own, so that one report names every problem)."""
    from scaler.adapters.pexip import load_password

    env = os.environ if environ is None else environ
    pexip = config.pexip if config is not None else _raw_pexip(path, env)
    if pexip is None or not pexip.url:
        return []
    try:
        load_password(pexip, env)
    except ConfigError as err:
        return [f"{p} (validate --offline leaves the secrets out)" for p in err.problems]
    return []


def _raw_pexip(path: Path, environ: Mapping[str, str]) -> PexipConfig | None:
    try:
        raw = tomllib.loads(read_config_text(path))
        data = apply_env_overrides(raw, environ)
        section = data.get("pexip", {}) if isinstance(data, dict) else {}
        return PexipConfig.model_validate(section)
    except (ConfigError, ValidationError, tomllib.TOMLDecodeError, RecursionError, TypeError):
        return None
