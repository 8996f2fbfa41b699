"""Statistics across repeats, as plain functions over numbers."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    ci_low: float | None
    ci_high: float | None


def summarize(values: Sequence[float | None], level: float = 0.95) -> Summary:
    """Mean, sample std, range and a t-based confidence interval of the mean,
    over the finite values."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)])
    count = len(finite)
    if count == 0:
        return Summary(0, None, None, None, None, None, None)
    mean = float(finite.mean())
    if count == 1:
        return Summary(1, mean, None, mean, mean, None, None)
    std = float(finite.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, count - 1)) * std / math.sqrt(count)
    return Summary(
        count,
        mean,
        std,
        float(finite.min()),
        float(finite.max()),
        mean - half,
        mean + half,
    )


@dataclass(frozen=True)
class Comparison:
    difference: float | None
    hedges_g: float | None
    welch_t: float | None
    p_value: float | None


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """a minus b: Hedges' g (pooled std, small-sample corrected) and Welch's
    t-test, which does not assume equal variances."""
    x = np.array([v for v in a if math.isfinite(v)])
    y = np.array([v for v in b if math.isfinite(v)])
    if len(x) == 0 or len(y) == 0:
        return Comparison(None, None, None, None)
    difference = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return Comparison(difference, None, None, None)

    pooled = math.sqrt(
        ((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1))
        / (len(x) + len(y) - 2)
    )
    correction = 1 - 3 / (4 * (len(x) + len(y)) - 9)
    hedges = difference / pooled * correction if pooled > 0 else None
    if x.var(ddof=1) == 0 and y.var(ddof=1) == 0:
        return Comparison(difference, hedges, None, None)
    test = stats.ttest_ind(x, y, equal_var=False)
    return Comparison(difference, hedges, float(test.statistic), float(test.pvalue))


def first_place_shares(
    finals: Mapping[str, Sequence[float]],
    *,
    higher_is_better: bool,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """How often each initializer ranks first when each one's repeats are
    resampled with replacement (a bootstrap of the ranking)."""
    labels = [label for label, values in finals.items() if len(values)]
    if not labels:
        return {}
    rng = np.random.default_rng(seed)
    wins = dict.fromkeys(finals, 0)
    arrays = {label: np.asarray(finals[label], dtype=float) for label in labels}
    for _ in range(resamples):
        means = {
            label: float(rng.choice(values, size=len(values)).mean())
            for label, values in arrays.items()
        }
        pick = max if higher_is_better else min
        wins[pick(means, key=lambda label: means[label])] += 1
    return {label: wins[label] / resamples for label in finals}
