"""The configuration's loader: one TOML file, validated once at start-up.

Every problem is reported with its key path and the bad value, e.g.
``pools[1].max: must be >= min (2), got 1``, and the CLI exits 2 before touching Azure.
Any key can be overridden from the environment: ``CVI_AUTOSCALER__AZURE__LOCATION=westeurope``,
``CVI_AUTOSCALER__POOLS__0__MAX=12`` (list items by index). Override values are read as TOML
literals when they parse as one (``12``, ``true``, ``"x"``) and as plain strings otherwise.

The models live in ``scaler.config_model`` (re-exported here); this loader asks each registry to
validate its own part: the policies build their options, the pool kinds check their pools and
the metric sources their pools' metrics (both handed to the model's validation context, with
the plug-in sources' own tables and each pool's kind's own keys validated here against their
models), so the model imports none of them.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
import tomllib
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ValidationError,
)

from policies import RegistryError, build, discover
from scaler.config_model import (
    _HIDDEN,
    _SECRET_PAIR,
    ENV_NAME,
    ENV_PREFIX,
    MAX_INSTANCES,
    PLATFORM_METRICS,
    PUBLIC_ARM_HOSTS,
    PUBLIC_METRICS_SUFFIXES,
    PUBLISHED_NAME,
    PUBLISHED_NAMESPACE,
    STATIC_TOKEN_ENV,
    VMSS_NAMESPACE,
    Aggregation,
    AzureConfig,
    AzureMetricConfig,
    BehaviorConfig,
    Config,
    CostConfig,
    DaemonConfig,
    DirectionConfig,
    FallbackMetricConfig,
    HaConfig,
    HttpConfig,
    KindRules,
    KindTable,
    LogAnalyticsConfig,
    Meaning,
    MetricConfig,
    MetricUnit,
    PexipConfig,
    PoolConfig,
    SkuPriceConfig,
    SourceTable,
    _show,
    cost_problems,
    looks_secret,
    metric_problems,
    unknown_kind,
)
from scaler.core.types import ScalingPolicy
from scaler.errors import ConfigError
from scaler.kinds import KindRegistryError
from scaler.kinds import discover as discover_kinds
from scaler.kinds.vm_set import VmSetConfig
from scaler.redact import show_url
from scaler.regions import problem as region_problem
from scaler.sources import SourceRegistryError
from scaler.sources import discover as discover_sources
from scaler.templates import attribute, expand_pools


def _kinds() -> KindTable:
    """The pool kind registry the model validates each pool against, or why it did not load."""
    try:
        return discover_kinds()
    except KindRegistryError as exc:
        return str(exc)


def _policies() -> dict[str, type[Any]]:
    """The policy registry the pools' policy tables are built with (``ConfigError`` when it
    does not load: no pool could be checked)."""
    try:
        return discover()
    except RegistryError as exc:
        raise ConfigError(f"policies: {exc}") from exc
    except Exception as exc:  # a third-party entry point that fails to import
        raise ConfigError(
            f"policies: a policy entry point failed to load ({type(exc).__name__})"
        ) from exc


def _sources() -> SourceTable:
    """The metric source registry each pool's metric is checked by, or why it did not load."""
    try:
        return discover_sources()
    except SourceRegistryError as exc:
        return str(exc)
    except Exception as exc:  # a third-party entry point that fails to import
        return f"a metric source entry point failed to load ({type(exc).__name__})"


def _source_sections(
    data: Any, sources: SourceTable, registry: Mapping[str, Any]
) -> tuple[dict[int, dict[str, BaseModel]], list[str]]:
    """The plug-in sources' own tables (``[pools.metric.<section>]``), taken out of the raw
    document and validated against each source's ``Options``: present, or absent from a pool
    that reads it (so that its required keys are named). Returns them by pool index, with the
    problems (key paths under ``pools[i].metric.<section>``)."""
    pools = data.get("pools") if isinstance(data, dict) else None
    if not isinstance(pools, list) or isinstance(sources, str):
        return {}, []
    plugins = [
        s
        for s in sources.values()
        if s.section and s.Options is not None and s.section not in MetricConfig.model_fields
    ]
    found: dict[int, dict[str, BaseModel]] = {}
    problems: list[str] = []
    for i, pool in enumerate(pools):
        metric = pool.get("metric") if isinstance(pool, dict) else None
        if not isinstance(metric, dict) or not plugins:
            continue
        metric = pool["metric"] = dict(metric)
        for source in plugins:
            assert source.Options is not None
            raw = metric.pop(source.section, None)
            used = source.name in (metric.get("source"), metric.get("fallback"))
            if raw is None and not used:
                continue
            where = f"pools[{i}].metric.{source.section}"
            problems += _number_problems(source.Options, raw, where, registry)
            try:
                found.setdefault(i, {})[source.section] = source.Options.model_validate(
                    {} if raw is None else raw
                )
            except ValidationError as exc:
                problems += format_validation_error(exc, prefix=where, model=source.Options)
    return found, problems


def _option_owners(kinds: KindTable) -> dict[str, list[str]]:
    """Each key of ``[[pools]]`` that belongs to a kind (a field of its ``Options``), with the
    kinds that take it."""
    owners: dict[str, list[str]] = {}
    if isinstance(kinds, str):
        return owners
    for name, kind in kinds.items():
        model = kind.Options
        for key, field in (model.model_fields if model is not None else {}).items():
            # the registry refuses a kind whose keys clash with the shared ones
            owners.setdefault(field.alias or key, []).append(name)
    return owners


def _kind_options(
    data: Any, kinds: KindTable, owners: Mapping[str, list[str]], registry: Mapping[str, Any]
) -> tuple[dict[int, BaseModel | None], list[str]]:
    """Each pool's kind's own keys (``PoolKind.Options``), taken out of the raw document and
    validated against its kind's model; a key that only other kinds take is refused naming
    them and the pool's kind (``owners``: ``_option_owners(kinds)``, read once per load).
    Returns the options by pool index (``None``: refused, so the kind does not check that
    pool further), with the problems (key paths under ``pools[i]``).
    A pool of an unknown kind has its ``kind`` reported, and its keys of other kinds are left
    at that."""
    pools = data.get("pools") if isinstance(data, dict) else None
    if not isinstance(pools, list) or isinstance(kinds, str):
        return {}, []
    default = PoolConfig.model_fields["kind"].default
    found: dict[int, BaseModel | None] = {}
    problems: list[str] = []
    for i, pool in enumerate(pools):
        if not isinstance(pool, dict):
            continue
        pool = pools[i] = dict(pool)
        taken = {key: pool.pop(key) for key in list(pool) if key in owners}
        name = pool.get("kind", default)
        kind = kinds.get(name) if isinstance(name, str) else None
        if kind is None:
            # said here too: an unknown key of the pool would keep the model's check from it
            if isinstance(name, str):
                problems.append(unknown_kind(f"pools[{i}]", name, kinds))
            continue
        model = kind.Options
        where = f"pools[{i}]"
        for key, value in taken.items():
            if name not in owners[key]:
                only = ", ".join(repr(k) for k in owners[key])
                problems.append(
                    f"{where}.{key}: only for kind {only}, not {name!r}, got {_show(value, key)}"
                )
        if model is None:
            continue
        mine = {k: v for k, v in taken.items() if name in owners[k]}
        problems += _number_problems(model, mine, where, registry)
        try:
            found[i] = model.model_validate(mine)
        except ValidationError as exc:
            problems += format_validation_error(exc, prefix=where, model=model)
            found[i] = None  # said: the kind does not check the pool on what it refused
    return found, problems


def load_config(
    path: Path | str,
    *,
    environ: Mapping[str, str] | None = None,
    dry_run: bool | None = None,
    offline: bool = False,
) -> Config:
    """Read, override from the environment, validate and build the policies. Raises
    ``ConfigError`` listing every problem found. ``offline`` (``backtest``, ``forecast``:
    nothing is sent to Azure) leaves out what only a call to Azure needs, such as the
    ``CVI_AUTOSCALER_STATIC_TOKEN`` variable of ``credential = "static-token"``."""
    path = Path(path)
    text = read_config_text(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    except RecursionError as exc:
        raise ConfigError(
            f"{path}: not valid TOML (arrays or tables nested too deeply, at line "
            f"{_deep_line(text)})"
        ) from exc
    return parse_config(raw, environ=environ, dry_run=dry_run, offline=offline)


def _deep_line(text: str, limit: int = 100) -> int:
    """The line where brackets first nest ``limit`` deep (strings not told apart: a hint)."""
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        for char in line:
            depth += (char in "[{") - (char in "]}")
            if depth >= limit:
                return number
    return 1


MAX_CONFIG_BYTES = 16 << 20
"""The largest configuration file read (16 MiB). A pool of the recommended shape written out in
full, comments and all, is about 2 kB (``examples/recommended.toml``), so 5,000 such pools fit
with room to spare (and far fewer bytes with ``[pool_defaults]`` and ``[templates]``); a file
beyond this is not a configuration (and ``/dev/zero`` never ends)."""


def read_config_text(path: Path) -> str:
    """The text of a configuration file: a regular file of at most ``MAX_CONFIG_BYTES``, in
    UTF-8. Every failure is a ``ConfigError`` naming the file, so start-up exits 2 and a SIGHUP
    reload is rejected rather than crashing the daemon."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; no effect on regular files.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise ConfigError(f"{path}: {what}; the configuration must be a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    finally:
        os.close(fd)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: larger than the limit of {MAX_CONFIG_BYTES} bytes "
            f"({MAX_CONFIG_BYTES >> 20} MiB)"
        )
    data = b"".join(chunks)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(line {line}, column {column})"
        ) from exc
    return text.removeprefix("\ufeff")


def parse_config(
    raw: dict[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    dry_run: bool | None = None,
    offline: bool = False,
) -> Config:
    """Validate an already-parsed TOML document (see ``load_config``).

    Problems name the key path, the environment variable that set it (when one did) and the
    bad value, except for unknown keys and keys that look secret, whose values never appear."""
    sources: dict[tuple[str | int, ...], str] = {}
    data = apply_env_overrides(raw, os.environ if environ is None else environ, sources=sources)
    if dry_run:
        data.setdefault("daemon", {})
        if isinstance(data["daemon"], dict):
            data["daemon"]["dry_run"] = True
    kind_table = _kinds()
    owners = _option_owners(kind_table)
    pool_keys = [f.alias or name for name, f in PoolConfig.model_fields.items()]
    data, origins, shared = expand_pools(data, [*pool_keys, *owners])
    pool_names = {
        i: str(p.get("name", "?"))[:63]
        for i, p in enumerate(data.get("pools") or [])
        if isinstance(p, dict)
    }

    def finish(found: list[str]) -> list[str]:
        return _finish(attribute(found, origins, pool_names), sources)

    registry = _policies()
    source_table = _sources()
    sections, problems = _source_sections(data, source_table, registry)
    own_keys, kind_problems = _kind_options(data, kind_table, owners, registry)
    problems = shared + _number_problems(Config, data, "", registry) + problems + kind_problems
    problems += _place_problems(data)
    context: dict[str, Any] = {"offline": offline, "kinds": kind_table, "sources": source_table}
    context["sections"] = sections
    context["options"] = own_keys
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as exc:
        kind_keys: dict[type[BaseModel], Sequence[str]] = {PoolConfig: list(owners)}
        problems.extend(format_validation_error(exc, model=Config, also=kind_keys))
        problems += _raw_policy_problems(data, registry, problems)
        raise ConfigError(finish(problems)) from exc
    except ConfigError as exc:
        problems += [p for p in exc.problems if p not in problems]
        problems += _raw_policy_problems(data, registry, problems)
        raise ConfigError(finish(problems)) from exc

    for i, pool in enumerate(config.pools):
        built: list[ScalingPolicy] = []
        for j, entry in enumerate(pool.policies):
            options = {k: v for k, v in entry.items() if k != "type"}
            where = f"pools[{i}].policies[{j}]"
            try:
                built.append(build(entry["type"], options, registry))
            except RegistryError as exc:
                problems.append(f"{where}.type: {exc}, got {_show(entry['type'])}")
            except ValidationError as exc:
                model = getattr(registry.get(entry["type"]), "Config", None)
                problems.extend(format_validation_error(exc, prefix=where, model=model))
            except (ValueError, TypeError) as exc:
                problems.append(f"{where}: {exc}")
            else:
                problems.extend(_floor_problems(options, where, pool.max))
        names = [p.name for p in built]
        for name in {n for n in names if names.count(n) > 1}:
            problems.append(f"pools[{i}].policies: policy {name!r} is listed twice")
    if problems:
        raise ConfigError(finish(problems))
    return config


_SUBSCRIPTION_OF = re.compile(r"^/subscriptions/([^/]+)/", re.IGNORECASE)


def _place_problems(data: Any) -> list[str]:
    """Where the resources are, checked on the raw document so that these problems are
    reported beside every other one (a model validator would not run once a field failed):

    * region names in the form the APIs take (``westeurope``: a ``West Europe`` becomes the
      endpoint ``https://West Europe.metrics.monitor.azure.com``), with a "did you mean";
    * with ``[azure] subscription_id`` set, every resource id (a pool's scale set, its metric's
      and its fallback metric's resource) in that subscription or one of ``[azure]
      subscriptions``."""
    if not isinstance(data, dict):
        return []
    out: list[str] = []
    azure_raw, pools_raw = data.get("azure"), data.get("pools")
    azure: dict[str, Any] = azure_raw if isinstance(azure_raw, dict) else {}
    pools: list[Any] = pools_raw if isinstance(pools_raw, list) else []
    places = [("azure.location", azure.get("location"))]
    places += [
        (f"pools[{i}].location", p.get("location"))
        for i, p in enumerate(pools)
        if isinstance(p, dict)
    ]
    for where, name in places:
        why = region_problem(name) if isinstance(name, str) else ""
        if why:
            out.append(f"{where}: {why}, got {_show(name)}")
    main = azure.get("subscription_id")
    more = azure.get("subscriptions")
    if not isinstance(main, str) or not main:
        return out
    known = {main.lower()} | {
        s.lower() for s in (more if isinstance(more, list) else []) if isinstance(s, str)
    }
    for i, pool in enumerate(pools):
        if not isinstance(pool, dict):
            continue
        metric_raw = pool.get("metric")
        metric: dict[str, Any] = metric_raw if isinstance(metric_raw, dict) else {}
        fallback = metric.get("fallback_metric")
        ids = [
            (f"pools[{i}].resource_id", pool.get("resource_id")),
            (f"pools[{i}].metric.resource_id", metric.get("resource_id")),
            (
                f"pools[{i}].metric.fallback_metric.resource_id",
                fallback.get("resource_id") if isinstance(fallback, dict) else None,
            ),
        ]
        for where, rid in ids:
            m = _SUBSCRIPTION_OF.match(rid) if isinstance(rid, str) else None
            if m and m[1].lower() not in known:
                out.append(
                    f"{where}: in subscription {m[1]}, which is neither azure.subscription_id "
                    f"({main}) nor in azure.subscriptions (list it there if the pool really "
                    f"lives in it), got {_show(rid)}"
                )
    return out


def _raw_policy_problems(data: Any, registry: dict[str, Any], seen: list[str]) -> list[str]:
    """The policy tables' problems when the rest of the file did not validate (so that one
    report names them too): each ``pools[i].policies[j]`` built from the raw document."""
    pools = data.get("pools") if isinstance(data, dict) else None
    if not isinstance(pools, list):
        return []
    out: list[str] = []
    for i, pool in enumerate(pools):
        entries = pool.get("policies") if isinstance(pool, dict) else None
        if not isinstance(entries, list):
            continue
        for j, entry in enumerate(entries):
            where = f"pools[{i}].policies[{j}]"
            if not isinstance(entry, dict) or any(p.startswith(where) for p in seen):
                continue
            kind = entry.get("type")
            if not isinstance(kind, str) or kind not in registry:
                continue  # the model's own errors name it
            options = {k: v for k, v in entry.items() if k != "type"}
            try:
                build(kind, options, registry)
            except ValidationError as exc:
                model = getattr(registry.get(kind), "Config", None)
                out.extend(format_validation_error(exc, prefix=where, model=model))
            except (RegistryError, ValueError, TypeError) as exc:
                out.append(f"{where}: {exc}")
    return out


_FLOOR_KEYS = frozenset({"min", "default_min"})
"""Policy options that are instance floors (``schedule``'s ``default_min`` and profile
``min``, also inside a ``composite``): one above the pool's ``max`` can never be met."""


def _floor_problems(options: Any, where: str, pool_max: int) -> list[str]:
    out: list[str] = []
    if isinstance(options, dict):
        for key, value in options.items():
            at = f"{where}.{key}"
            if key in _FLOOR_KEYS and type(value) is int and value > pool_max:
                out.append(f"{at}: above the pool's max ({pool_max}), got {value}")
            else:
                out.extend(_floor_problems(value, at, pool_max))
    elif isinstance(options, list):
        for k, value in enumerate(options):
            out.extend(_floor_problems(value, f"{where}[{k}]", pool_max))
    return out


# -- no booleans where numbers belong -------------------------------------------------------
# pydantic (lax mode) reads ``true`` as 1 for int and float fields, so ``interval_seconds = true``
# would mean one second. Strict mode is no cure (it refuses a TOML string for a Path and a TOML
# array for a tuple), so the document is walked against the models instead: the config's own and
# every policy's ``Config``, so third-party policies are covered as well.


def _members(ann: Any) -> tuple[Any, ...]:
    """The alternatives of an annotation, ``Annotated`` and unions flattened."""
    origin = get_origin(ann)
    if origin is Annotated:
        return _members(get_args(ann)[0])
    if origin is Union or origin is types.UnionType:
        return tuple(m for a in get_args(ann) for m in _members(a))
    return (ann,)


def _model_in(ann: Any) -> type[BaseModel] | None:
    for m in _members(ann):
        if isinstance(m, type) and issubclass(m, BaseModel):
            return m
    return None


def _item_of(ann: Any) -> Any:
    """The element annotation of a list or tuple annotation (None when not one)."""
    for m in _members(ann):
        if get_origin(m) in (list, tuple, Sequence) and get_args(m):
            return get_args(m)[0]
    return None


def _field_of(model: type[BaseModel], key: str) -> Any:
    field = model.model_fields.get(key)
    if field is None:
        field = next((f for f in model.model_fields.values() if f.alias == key), None)
    return field


def _number_problems(
    model: type[BaseModel], data: Any, path: str, registry: Mapping[str, Any]
) -> list[str]:
    if not isinstance(data, dict):
        return []
    out: list[str] = []
    for key, value in data.items():
        field = _field_of(model, str(key))
        if field is not None:
            out.extend(_number_check(field.annotation, value, _join(path, key), registry))
    return out


def _number_check(ann: Any, value: Any, path: str, registry: Mapping[str, Any]) -> list[str]:
    if isinstance(value, bool):
        members = _members(ann)
        wants_bool = any(m is bool or m is Any for m in members)
        if not wants_bool and any(m is int or m is float for m in members):
            return [f"{path}: must be a number, not a boolean, got {_show(value)}"]
        return []
    if isinstance(value, dict):
        sub = _model_in(ann)
        if sub is None and isinstance(value.get("type"), str):  # a policy table
            sub = getattr(registry.get(value["type"]), "Config", None)
        return _number_problems(sub, value, path, registry) if sub else []
    item = _item_of(ann)
    if isinstance(value, list) and item is not None:
        return [
            p for k, v in enumerate(value) for p in _number_check(item, v, f"{path}[{k}]", registry)
        ]
    return []


def _join(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def apply_env_overrides(
    raw: dict[str, Any],
    environ: Mapping[str, str],
    *,
    sources: dict[tuple[str | int, ...], str] | None = None,
) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``CVI_AUTOSCALER__A__B=v`` set at ``a.b``; ``sources``,
    when given, receives the key path each variable set (so errors can name the variable)."""
    data: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        node: Any = data
        loc: list[str | int] = []
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            value: Any = _env_value(environ[key]) if last else {}
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"{key}: no list item {part!r} at {'.'.join(parts[:depth]) or 'top'}"
                    )
                loc.append(int(part))
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                loc.append(part)
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, value)
            else:
                raise ConfigError(f"{key}: {'.'.join(parts[:depth])} is not a table")
        if sources is not None:
            sources[tuple(loc)] = key
    return data


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def format_validation_error(
    exc: ValidationError,
    *,
    prefix: str = "",
    model: type[BaseModel] | None = None,
    also: Mapping[type[BaseModel], Sequence[str]] | None = None,
) -> list[str]:
    """pydantic's errors as ``key.path[i].name: message, got value`` lines.

    The value is left out for unknown keys (a misspelt secret key must not echo its secret) and
    for keys that look secret; an unknown key gets the nearest known key of ``model`` (the model
    validated) as a suggestion, or of the keys ``also`` adds to a nested model's (``[[pools]]``:
    the kinds' own)."""
    lines = []
    for err in exc.errors():
        path = prefix
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        where = path or "(top)"
        msg = str(err["msg"])
        for lead in ("Value error, ", "Assertion failed, "):
            if msg.startswith(lead):
                msg = msg[len(lead) :]
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key{_suggest(model, err['loc'], also or {})}")
            continue
        if err["type"] == "missing":
            lines.append(f"{where}: required key is missing")
            continue
        msg = msg[:1].lower() + msg[1:]
        names = [p for p in err["loc"] if isinstance(p, str)]
        value = err.get("input")
        if _secret_bearing(model, err["loc"]) and not isinstance(value, dict):
            # a section that holds a secret given as one value (CVI_AUTOSCALER__HA=<the
            # connection string>): described, never quoted
            shown = _describe(value)
        else:
            shown = _show(value, names[-1] if names else "")
        lines.append(f"{where}: {msg}, got {shown}")
    return lines


def _secret_bearing(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> bool:
    """Whether the key at ``loc`` of ``model`` is a table with a key that looks secret (at
    any depth): ``ha`` (``connection_string``), ``pexip`` (``password_env``)…"""
    for part in loc:
        if model is None:
            return False
        if isinstance(part, int):
            continue
        field = _field_of(model, part)
        if field is None:
            return False
        model = _model_in(field.annotation) or _model_in(_item_of(field.annotation))
    return model is not None and _has_secret_key(model)


def _has_secret_key(model: type[BaseModel], depth: int = 0) -> bool:
    for name, field in model.model_fields.items():
        if looks_secret(field.alias or name):
            return True
        sub = _model_in(field.annotation) or _model_in(_item_of(field.annotation))
        if sub is not None and depth < 5 and _has_secret_key(sub, depth + 1):
            return True
    return False


def _describe(value: Any) -> str:
    """What a value is, without what it says: ``a string of 42 characters``."""
    if isinstance(value, str):
        return f"a string of {len(value)} characters (not shown)"
    return f"a value of type {type(value).__name__} (not shown)"


def _suggest(
    model: type[BaseModel] | None,
    loc: tuple[int | str, ...],
    also: Mapping[type[BaseModel], Sequence[str]],
) -> str:
    """`` (did you mean 'x'?)`` for an unknown key at ``loc`` of ``model``, or nothing."""
    for part in loc[:-1]:
        if model is None:
            return ""
        if isinstance(part, int):
            continue  # list items: the model was found from the list's annotation already
        field = _field_of(model, part)
        if field is None:
            return ""
        ann = field.annotation
        model = _model_in(ann) or _model_in(_item_of(ann))
    if model is None or not isinstance(loc[-1], str):
        return ""
    known = [f.alias or name for name, f in model.model_fields.items()]
    known += also.get(model, ())
    close = difflib.get_close_matches(loc[-1].lower(), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_PATH = re.compile(r"^([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*):")


def _finish(problems: list[str], sources: Mapping[tuple[str | int, ...], str]) -> list[str]:
    """Name the environment variable behind each problem it caused, and scrub anything that
    still looks like a credential (a cross-check quoting a URL with a SAS token)."""
    out = []
    for line in problems:
        m = _PATH.match(line)
        if m and sources:
            loc = tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", m.group(1)))
            hits = [src for src in sources if loc[: len(src)] == src]
            if hits:
                line += f" (from environment variable {sources[max(hits, key=len)]})"
        out.append(show_url(_SECRET_PAIR.sub(lambda p: f"{p.group(1)}={_HIDDEN}", line)))
    return out


__all__ = [
    "ENV_NAME",
    "ENV_PREFIX",
    "MAX_CONFIG_BYTES",
    "MAX_INSTANCES",
    "PLATFORM_METRICS",
    "PUBLIC_ARM_HOSTS",
    "PUBLIC_METRICS_SUFFIXES",
    "PUBLISHED_NAME",
    "PUBLISHED_NAMESPACE",
    "STATIC_TOKEN_ENV",
    "VMSS_NAMESPACE",
    "Aggregation",
    "AzureConfig",
    "AzureMetricConfig",
    "BehaviorConfig",
    "Config",
    "CostConfig",
    "DaemonConfig",
    "DirectionConfig",
    "FallbackMetricConfig",
    "HaConfig",
    "HttpConfig",
    "KindRules",
    "KindTable",
    "LogAnalyticsConfig",
    "Meaning",
    "MetricConfig",
    "MetricUnit",
    "PexipConfig",
    "PoolConfig",
    "SkuPriceConfig",
    "VmSetConfig",
    "apply_env_overrides",
    "cost_problems",
    "format_validation_error",
    "load_config",
    "looks_secret",
    "metric_problems",
    "parse_config",
    "read_config_text",
]
