"""Statistics across repeats, as plain functions over numbers."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
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
    column = np.array([np.nan if v is None else v for v in values], dtype=float)
    return summarize_columns(column.reshape(-1, 1), level)[0]


def summarize_columns(
    table: npt.NDArray[np.float64], level: float = 0.95
) -> list[Summary]:
    """`summarize` of each column of a (repeats, columns) table at once; NaN
    and infinities are left out, as missing values."""
    finite = np.isfinite(table)
    count = finite.sum(axis=0)
    values = np.where(finite, table, 0.0)
    mean = values.sum(axis=0) / np.maximum(count, 1)
    squares = np.where(finite, (table - mean) ** 2, 0.0).sum(axis=0)
    std = np.sqrt(squares / np.maximum(count - 1, 1))
    low = np.where(finite, table, np.inf).min(axis=0, initial=np.inf)
    high = np.where(finite, table, -np.inf).max(axis=0, initial=-np.inf)
    quantile = stats.t.ppf(0.5 + level / 2, np.maximum(count - 1, 1))
    half = quantile * std / np.sqrt(np.maximum(count, 1))
    return [
        _summary(int(n), float(m), float(s), float(lo), float(hi), float(h))
        for n, m, s, lo, hi, h in zip(
            count.tolist(),
            mean.tolist(),
            std.tolist(),
            low.tolist(),
            high.tolist(),
            half.tolist(),
            strict=True,
        )
    ]


def _summary(
    count: int, mean: float, std: float, low: float, high: float, half: float
) -> Summary:
    if count == 0:
        return Summary(0, None, None, None, None, None, None)
    if count == 1:
        return Summary(1, mean, None, mean, mean, None, None)
    return Summary(count, mean, std, low, high, mean - half, mean + half)


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

    var_x, var_y = float(x.var(ddof=1)), float(y.var(ddof=1))
    pooled = math.sqrt(
        ((len(x) - 1) * var_x + (len(y) - 1) * var_y) / (len(x) + len(y) - 2)
    )
    correction = 1 - 3 / (4 * (len(x) + len(y)) - 9)
    hedges = difference / pooled * correction if pooled > 0 else None
    # Welch's test written out: one side constant (all repeats of zeros alike)
    # is common here, and is a valid case that library versions warn about.
    share_x, share_y = var_x / len(x), var_y / len(y)
    spread = share_x + share_y
    if spread == 0:
        return Comparison(difference, hedges, None, None)
    t = difference / math.sqrt(spread)
    freedom = spread**2 / (share_x**2 / (len(x) - 1) + share_y**2 / (len(y) - 1))
    p_value = float(2 * stats.t.sf(abs(t), freedom))
    return Comparison(difference, hedges, t, p_value)


def first_place_shares(
    finals: Mapping[str, Sequence[float]],
    *,
    higher_is_better: bool,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """How often each initializer ranks first when each one's repeats are
    resampled with replacement (a bootstrap of the ranking)."""
    # Sampled in name order, so that the order given changes nothing.
    labels = sorted(label for label, values in finals.items() if len(values))
    if not labels:
        return {}
    rng = np.random.default_rng(seed)
    samples = [np.asarray(finals[label], dtype=float) for label in labels]
    means = np.stack(
        [rng.choice(values, (resamples, len(values))).mean(1) for values in samples]
    )
    best = means.max(0) if higher_is_better else means.min(0)
    # A tie (accuracies are discrete, so they happen) splits the win.
    tied = means == best
    wins = (tied / tied.sum(0)).sum(1)
    shares = dict.fromkeys(finals, 0.0)
    shares.update(
        {label: float(won) / resamples for label, won in zip(labels, wins, strict=True)}
    )
    return shares
