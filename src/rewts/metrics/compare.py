"""Statistics across runs: mean and spread per metric, and the paired test between agents.

Runs are paired by (ticker, seed): the LLM+RL and RL-only agents of one seed are trained with
the same seed on the same data, so their difference is what the paired t-test looks at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rewts.errors import DataError


def aggregate_runs(
    table: pd.DataFrame, *, by: tuple[str, ...] = ("ticker", "agent"), metrics: list[str]
) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN with one run) and count of each metric over runs.

    ``table`` has one row per (ticker, agent, run); the result has one row per group and
    columns ``<metric>_mean``, ``<metric>_std`` and ``runs``. NaN metrics (undefined ratios)
    are left out of the mean, and ``<metric>_n`` says how many runs had a value.
    """
    missing = [c for c in (*by, *metrics) if c not in table.columns]
    if missing:
        raise DataError(f"metrics table lacks column(s) {missing}")
    grouped = table.groupby(list(by), sort=False)[metrics]
    mean = grouped.mean().add_suffix("_mean")
    std = grouped.std(ddof=1).add_suffix("_std")
    count = grouped.count().add_suffix("_n")
    out = pd.concat([mean, std, count], axis=1)
    out["runs"] = table.groupby(list(by), sort=False).size()
    ordered = [f"{m}_{s}" for m in metrics for s in ("mean", "std", "n")]
    return out[[*ordered, "runs"]].reset_index()


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Result of a paired t-test of ``a`` against ``b`` on one metric."""

    metric: str
    a: str
    b: str
    n_pairs: int
    mean_a: float
    mean_b: float
    mean_diff: float
    t_statistic: float
    p_value: float
    a_wins: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        verdict = "significant" if self.p_value < 0.05 else "not significant"
        return (
            f"{self.a} vs {self.b} on {self.metric}: mean {self.mean_a:.3f} vs {self.mean_b:.3f} "
            f"(diff {self.mean_diff:+.3f}) over {self.n_pairs} paired runs, "
            f"{self.a} better in {self.a_wins}; t = {self.t_statistic:.3f}, "
            f"p = {self.p_value:.3g} ({verdict} at 5 %)"
        )


def paired_ttest(
    table: pd.DataFrame,
    a: str,
    b: str,
    *,
    metric: str = "sharpe",
    pair_on: tuple[str, ...] = ("ticker", "run"),
) -> PairedTest:
    """``scipy.stats.ttest_rel`` of agent ``a`` against agent ``b`` on pairs sharing ``pair_on``.

    Pairs where either side is NaN are dropped. With fewer than 2 pairs the statistic and
    p-value are NaN (a test on one pair means nothing).
    """
    need = {"agent", metric, *pair_on}
    if not need <= set(table.columns):
        raise DataError(f"metrics table lacks column(s) {sorted(need - set(table.columns))}")
    wide = table[table["agent"].isin([a, b])].pivot_table(
        index=list(pair_on), columns="agent", values=metric, aggfunc="first"
    )
    if a not in wide.columns or b not in wide.columns:
        raise DataError(f"paired test needs both agents {a!r} and {b!r} in the metrics table")
    wide = wide[[a, b]].dropna()
    x, y = wide[a].to_numpy(float), wide[b].to_numpy(float)
    nan = float("nan")
    if len(x) >= 2 and not np.allclose(x - y, (x - y)[0]):
        res = stats.ttest_rel(x, y)
        t, p = float(res.statistic), float(res.pvalue)
    else:
        t, p = nan, nan
    return PairedTest(
        metric=metric,
        a=a,
        b=b,
        n_pairs=len(x),
        mean_a=float(x.mean()) if len(x) else nan,
        mean_b=float(y.mean()) if len(y) else nan,
        mean_diff=float((x - y).mean()) if len(x) else nan,
        t_statistic=t,
        p_value=p,
        a_wins=int((x > y).sum()),
    )
