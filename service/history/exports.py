"""History as files: CSV in a long or a wide layout, and plots."""

import csv
import io
from collections import defaultdict
from typing import Any

from service.report import METRICS, curves, plot, spread


def long_csv(points: list[dict[str, Any]]) -> str:
    """A row per run and epoch, a column per metric."""
    names = sorted({name for point in points for name in point["metrics"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", "initializer", "repeat", "epoch", *names])
    for point in points:
        metrics = point["metrics"]
        writer.writerow(
            [
                point["run_id"],
                point["initializer"],
                point["repeat"],
                point["epoch"],
                *(_cell(metrics.get(name)) for name in names),
            ]
        )
    return out.getvalue()


def wide_csv(points: list[dict[str, Any]], labels: list[str]) -> str:
    """A row per epoch and a column per (initializer, metric), the mean over
    repeats: the frame notebook users build by hand, which
    `pandas.read_csv(f, header=[0, 1], index_col=0)` reads straight back."""
    values: dict[tuple[str, str], dict[int, list[float | None]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for point in points:
        for name, value in point["metrics"].items():
            values[(point["initializer"], name)][point["epoch"]].append(value)
    names = sorted({name for _, name in values})
    columns = [(label, name) for label in labels for name in names]
    epochs = sorted({point["epoch"] for point in points})

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["initializer", *(label for label, _ in columns)])
    writer.writerow(["metric", *(name for _, name in columns)])
    writer.writerow(["epoch", *([""] * len(columns))])
    for epoch in epochs:
        row = [epoch]
        for column in columns:
            mean = spread(values[column].get(epoch, [])).mean
            row.append(_cell(mean))
        writer.writerow(row)
    return out.getvalue()


def _cell(value: float | None) -> Any:
    return "" if value is None or value != value else value


def plot_bytes(
    points: list[dict[str, Any]], title: str, metrics: list[str], image_format: str
) -> bytes:
    buffer = io.BytesIO()
    plot(curves(points), buffer, title, metrics, image_format)
    return buffer.getvalue()


PLOT_METRICS = tuple(name for name in METRICS if not name.startswith("val_"))
