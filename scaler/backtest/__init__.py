"""Backtesting: replay a call-load trace through a config's pools and policies, and score it.

``run_backtest(config, trace)`` gives a ``BacktestResult`` (the contract's JSON via
``to_json()``); ``engine`` documents the model, ``baselines`` the oracle and static-peak
references, ``report`` draws the charts.
"""

from scaler.backtest.engine import Grid, PoolSpec, replay_pool
from scaler.backtest.results import BacktestResult, Metrics, PoolResult
from scaler.backtest.runner import BacktestError, Options, run_backtest

__all__ = [
    "BacktestError",
    "BacktestResult",
    "Grid",
    "Metrics",
    "Options",
    "PoolResult",
    "PoolSpec",
    "replay_pool",
    "run_backtest",
]
