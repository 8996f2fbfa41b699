"""Tables and plots of a finished experiment, from its history points."""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class Spread:
    mean: float
    std: float
    count: int

    def __str__(self) -> str:
        if self.count == 0:
            return "n/a"
        return f"{self.mean:.3f} ± {self.std:.3f}"


def spread(values: Iterable[float | None]) -> Spread:
    """Mean and sample standard deviation of the finite values."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return Spread(math.nan, math.nan, 0)
    mean = sum(finite) / len(finite)
    if len(finite) < 2:
        return Spread(mean, 0.0, len(finite))
    variance = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return Spread(mean, math.sqrt(variance), len(finite))


Curves = dict[str, dict[str, list[list[float | None]]]]
"""initializer -> metric -> one list per repeat, indexed by epoch."""


def curves(points: Iterable[Mapping[str, Any]]) -> Curves:
    by_run: dict[str, dict[int, Mapping[str, Any]]] = defaultdict(dict)
    label: dict[str, str] = {}
    for point in points:
        by_run[point["run_id"]][point["epoch"]] = point["metrics"]
        label[point["run_id"]] = point["initializer"]

    result: Curves = {}
    for run_id, epochs in by_run.items():
        series = result.setdefault(label[run_id], {})
        ordered = [epochs[e] for e in sorted(epochs)]
        for metric in {name for m in ordered for name in m}:
            series.setdefault(metric, []).append([m.get(metric) for m in ordered])
    return result


def final_table(data: Curves) -> list[dict[str, Any]]:
    """Per initializer: the last epoch's metrics, mean ± std over repeats."""
    rows = []
    for initializer, series in data.items():
        row: dict[str, Any] = {"initializer": initializer}
        row["repeats"] = max((len(runs) for runs in series.values()), default=0)
        for metric in METRICS:
            row[metric] = spread(run[-1] for run in series.get(metric, []) if run)
        rows.append(row)
    return rows


def _band(runs: list[list[float | None]]) -> tuple[list[float], list[float]]:
    length = max(len(run) for run in runs)
    means, stds = [], []
    for epoch in range(length):
        s = spread(run[epoch] for run in runs if epoch < len(run))
        means.append(s.mean)
        stds.append(s.std)
    return means, stds


def plot(
    data: Curves,
    target: Path | IO[bytes],
    title: str,
    metrics: Sequence[str] = ("loss", "accuracy"),
    image_format: str = "png",
) -> None:
    """A panel per metric, by epoch: per initializer a mean line with a ±1 std
    band over repeats; validation dashed. Uses no pyplot state, so a server
    may draw from several threads."""
    from matplotlib import rcParams
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6 * len(metrics), 4.8), layout="constrained")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    colours = rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (initializer, series) in enumerate(data.items()):
        colour = colours[index % len(colours)]
        for axis, metric in zip(axes, metrics, strict=True):
            _draw(axis, series, metric, initializer, colour)
    for axis, metric in zip(axes, metrics, strict=True):
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if not axis.lines:
            axis.text(
                0.5,
                0.5,
                "no finite values yet\n(nothing recorded, or every repeat diverged)",
                ha="center",
                va="center",
                transform=axis.transAxes,
            )
    if any(axis.lines for axis in axes):
        axes[-1].legend(fontsize=7, loc="best")
    figure.suptitle(title)
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=120, format=image_format)


def _draw(
    axis: Any,
    series: dict[str, list[list[float | None]]],
    metric: str,
    initializer: str,
    colour: str,
) -> None:
    names = [metric] if metric.startswith("val_") else [metric, f"val_{metric}"]
    for name in names:
        if name not in series:
            continue
        means, stds = _band(series[name])
        if not any(map(math.isfinite, means)):
            continue
        epochs = list(range(len(means)))
        validation = name.startswith("val_")
        style, kind = ("--", "val") if validation else ("-", "train")
        axis.plot(epochs, means, style, color=colour, label=f"{initializer} ({kind})")
        if name == metric:
            axis.fill_between(
                epochs,
                [m - s for m, s in zip(means, stds, strict=True)],
                [m + s for m, s in zip(means, stds, strict=True)],
                color=colour,
                alpha=0.15,
                linewidth=0,
            )
