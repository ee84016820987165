"""Performance metrics, one module and one convention for every agent and baseline.

See :mod:`rewts.metrics.core` for the convention (simple daily returns, first test day
included, sample std, annual risk-free rate, max drawdown as a positive fraction).
"""

from rewts.metrics.compare import PairedTest, aggregate_runs, paired_ttest
from rewts.metrics.core import (
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    annual_return,
    annual_volatility,
    calmar_ratio,
    cumulative_return,
    daily_risk_free,
    downside_risk,
    drawdown_series,
    equity_curve,
    exposure,
    hit_rate,
    max_drawdown,
    max_drawdown_duration,
    n_trades,
    sharpe_ratio,
    sortino_ratio,
    summarize,
    turnover,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "METRIC_NAMES",
    "PairedTest",
    "aggregate_runs",
    "annual_return",
    "annual_volatility",
    "calmar_ratio",
    "cumulative_return",
    "daily_risk_free",
    "downside_risk",
    "drawdown_series",
    "equity_curve",
    "exposure",
    "hit_rate",
    "max_drawdown",
    "max_drawdown_duration",
    "n_trades",
    "paired_ttest",
    "sharpe_ratio",
    "sortino_ratio",
    "summarize",
    "turnover",
]
