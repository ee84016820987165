"""The trading environment and its accounting.

Public API::

    simulate(close, target_positions, cfg) -> PortfolioPath      # accounting, batched
    trade_step(...)                                              # one close, scalar or batched
    build_env_data(ticker, frame, feature_columns, *, window, train_range, tau=None,
                   price_column="close") -> EnvData              # observation matrix, once
    TradingEnv(data, cfg.trading_env, *, start=None, end=None, random_start=False)
    action_targets(actions) -> np.ndarray                        # action index -> target
"""

from rewts.env.accounting import PortfolioPath, Rules, StepResult, exposure, simulate, trade_step
from rewts.env.features import EnvData, build_env_data
from rewts.env.trading import ACTION_TARGETS, TradingEnv, action_targets

__all__ = [
    "ACTION_TARGETS",
    "EnvData",
    "PortfolioPath",
    "Rules",
    "StepResult",
    "TradingEnv",
    "action_targets",
    "build_env_data",
    "exposure",
    "simulate",
    "trade_step",
]
