"""Money beside vCPU-hours: a backtest's figures priced with the config's ``[cost]``.

An instance is billed for every hour the backtest bills it (from its request until it is gone,
drains included: ``Metrics.instance_hours``), at its pool's price per instance-hour
(``CostConfig.per_instance_hour``: the VM size's price for its OS, else vCPUs × the vCPU price).
Without ``[cost]`` nothing here is used and the backtest's output is unchanged to the byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scaler.backtest.results import BacktestResult, Metrics
from scaler.config import Config

DAYS_PER_MONTH = 30.0
"""The table's "per 30 days" column: a month, for budgets."""


@dataclass(frozen=True, slots=True)
class Pricing:
    """A config's prices: ``currency`` and each pool's price of one instance for one hour."""

    currency: str
    per_instance_hour: Mapping[str, float]

    @staticmethod
    def of(config: Config) -> Pricing | None:
        """The config's pricing, None without ``[cost]`` (validation made sure every pool has
        a price when it is there)."""
        cost = config.cost
        if cost is None:
            return None
        prices: dict[str, float] = {}
        for pool in config.pools:
            price = cost.per_instance_hour(pool)
            if price is not None:
                prices[pool.name] = price
        return Pricing(currency=cost.currency, per_instance_hour=prices)

    def pool_cost(self, pool: str, m: Metrics) -> float:
        """What ``m``'s instance-hours of ``pool`` cost."""
        return m.instance_hours * self.per_instance_hour.get(pool, 0.0)

    def total_cost(self, parts: Mapping[str, Metrics | None]) -> float | None:
        """All pools together (None when one of them has no figures)."""
        if any(m is None for m in parts.values()):
            return None
        return sum(self.pool_cost(name, m) for name, m in parts.items() if m is not None)

    def text(self, amount: float | None) -> str:
        return "-" if amount is None else f"{amount:,.2f} {self.currency}"


@dataclass(frozen=True, slots=True)
class CostRow:
    """One row of the cost table: what a pool (or all) cost in the scored window."""

    label: str
    cost: float | None
    days: float
    pricing: Pricing

    @property
    def per_month(self) -> float | None:
        if self.cost is None or self.days <= 0:
            return None
        return self.cost / self.days * DAYS_PER_MONTH


def scored_days(result: BacktestResult) -> float:
    return (result.scored_until - result.scored_from).total_seconds() / 86400.0


def cost_rows(result: BacktestResult, pricing: Pricing, *, label: str = "") -> list[CostRow]:
    """The pools and their total, priced."""
    days = scored_days(result)
    prefix = f"{label} " if label else ""
    rows = [
        CostRow(f"{prefix}{name}", pricing.pool_cost(name, p.metrics), days, pricing)
        for name, p in result.pools.items()
    ]
    total = pricing.total_cost({n: p.metrics for n, p in result.pools.items()})
    rows.append(CostRow(f"{prefix}total", total, days, pricing))
    return rows


def baseline_cost_rows(result: BacktestResult, pricing: Pricing) -> list[CostRow]:
    """The baselines (all pools together), priced."""
    days = scored_days(result)
    pools = result.pools.items()
    rows = []
    if result.clairvoyant is not None:
        seer = pricing.total_cost({n: p.clairvoyant for n, p in pools})
        rows.append(CostRow("clairvoyant (call-safe floor)", seer, days, pricing))
    oracle = pricing.total_cost({n: p.oracle for n, p in pools})
    rows.append(CostRow("oracle (cost floor)", oracle, days, pricing))
    peak = pricing.total_cost({n: p.static_peak for n, p in pools})
    rows.append(CostRow("static_peak", peak, days, pricing))
    return rows


def cost_text(results: list[BacktestResult], pricings: list[Pricing | None]) -> str:
    """The cost table printed under the backtest's table ("" when no config has ``[cost]``)."""
    rows: list[CostRow] = []
    many = len(results) > 1
    for r, pricing in zip(results, pricings, strict=True):
        if pricing is not None:
            rows += cost_rows(r, pricing, label=r.config if many else "")
    priced = [(r, p) for r, p in zip(results, pricings, strict=True) if p is not None]
    if not priced:
        return ""
    rows += baseline_cost_rows(*priced[0])
    header = ["", "cost", f"per {DAYS_PER_MONTH:g} days"]
    body = [
        [row.label, row.pricing.text(row.cost), row.pricing.text(row.per_month)] for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(3)]

    def fmt(line: list[str]) -> str:
        rest = "  ".join(v.rjust(w) for v, w in zip(line[1:], widths[1:], strict=True))
        return f"{line[0].ljust(widths[0])}  {rest}".rstrip()

    prices = "; ".join(
        f"{r.config}: " * many
        + ", ".join(f"{n} {v:,.4g} {p.currency}" for n, v in p.per_instance_hour.items())
        for r, p in priced
    )
    lines = [f"cost (per instance-hour: {prices})", fmt(header), "-" * len(fmt(header))]
    lines += [fmt(line) for line in body]
    return "\n".join(lines)


def _money(amount: float | None) -> float | None:
    return None if amount is None else round(amount, 2)


def add_cost_json(doc: dict[str, Any], result: BacktestResult, pricing: Pricing) -> dict[str, Any]:
    """``result.to_json()`` with money added, keys only (DESIGN §3: nothing renamed):
    ``currency`` and ``price_per_instance_hour`` at the top, ``cost`` in every ``M``."""
    pools = result.pools
    doc["currency"] = pricing.currency
    doc["price_per_instance_hour"] = {
        name: pricing.per_instance_hour.get(name, 0.0) for name in pools
    }
    for name, p in pools.items():
        doc["pools"][name]["cost"] = _money(pricing.pool_cost(name, p.metrics))
    doc["total"]["cost"] = _money(pricing.total_cost({n: p.metrics for n, p in pools.items()}))
    for key in ("oracle", "static_peak", "clairvoyant"):
        base = doc["baselines"].get(key)
        if base is None:
            continue
        per: dict[str, Metrics | None] = {n: getattr(p, key) for n, p in pools.items()}
        base["cost"] = _money(pricing.total_cost(per))
        for name, m in per.items():
            if m is not None and name in base.get("pools", {}):
                base["pools"][name]["cost"] = _money(pricing.pool_cost(name, m))
    return doc
