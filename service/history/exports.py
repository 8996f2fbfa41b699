"""History as files: CSV, JSON and Parquet in a long or a wide layout, and plots.

Long: a row per run and epoch, a column per metric. Wide: a row per epoch and a
column per (initializer, metric), the mean over repeats; the frame notebook
users build by hand, which pandas reads straight back with both column levels.
"""

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from service.report import METRICS, curves, plot, spread

ID_COLUMNS = ("run_id", "initializer", "repeat", "epoch")
Point = dict[str, Any]


def metric_names(points: list[Point]) -> list[str]:
    return sorted({name for point in points for name in point["metrics"]})


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class WideTable:
    """Means over repeats, a row per epoch and a column per (initializer, metric)."""

    epochs: list[int]
    columns: list[tuple[str, str]]
    rows: list[list[float | None]]

    @classmethod
    def of(cls, points: list[Point], labels: list[str]) -> "WideTable":
        values: dict[tuple[str, str], dict[int, list[float | None]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for point in points:
            for name, value in point["metrics"].items():
                values[(point["initializer"], name)][point["epoch"]].append(value)
        names = sorted({name for _, name in values})
        columns = [(label, name) for label in labels for name in names]
        epochs = sorted({point["epoch"] for point in points})
        rows = [
            [_finite(spread(values[column].get(epoch, [])).mean) for column in columns]
            for epoch in epochs
        ]
        return cls(epochs, columns, rows)

    def tight(self) -> dict[str, Any]:
        """pandas' "tight" dict: `pd.DataFrame.from_dict(body, orient="tight")`."""
        return {
            "index": self.epochs,
            "columns": [list(column) for column in self.columns],
            "data": self.rows,
            "index_names": ["epoch"],
            "column_names": ["initializer", "metric"],
        }

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame.from_dict(self.tight(), orient="tight").astype("float64")


def long_csv(points: list[Point]) -> str:
    names = metric_names(points)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*ID_COLUMNS, *names])
    for point in points:
        metrics = point["metrics"]
        writer.writerow(
            [
                *(_text(point[column]) for column in ID_COLUMNS),
                *(_cell(metrics.get(name)) for name in names),
            ]
        )
    return out.getvalue()


def wide_csv(points: list[Point], labels: list[str]) -> str:
    """Reads back with `pandas.read_csv(f, header=[0, 1], index_col=0)`."""
    table = WideTable.of(points, labels)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["initializer", *(_text(label) for label, _ in table.columns)])
    writer.writerow(["metric", *(name for _, name in table.columns)])
    writer.writerow(["epoch", *([""] * len(table.columns))])
    for epoch, row in zip(table.epochs, table.rows, strict=True):
        writer.writerow([epoch, *(_cell(value) for value in row)])
    return out.getvalue()


def long_frame(points: list[Point]) -> Any:
    import pandas as pd

    names = metric_names(points)
    frame = pd.DataFrame(
        {
            "run_id": pd.Series([p["run_id"] for p in points], dtype="string"),
            "initializer": pd.Series(
                [p["initializer"] for p in points], dtype="string"
            ),
            "repeat": pd.Series([p["repeat"] for p in points], dtype="int32"),
            "epoch": pd.Series([p["epoch"] for p in points], dtype="int32"),
        }
    )
    for name in names:
        frame[name] = pd.Series(
            [_finite(p["metrics"].get(name)) for p in points], dtype="float64"
        )
    return frame


def parquet_bytes(frame: Any) -> bytes:
    """Parquet with pandas' own metadata, so that `pandas.read_parquet` restores
    the index and the column levels."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=frame.index.name is not None)
    return buffer.getvalue()


# A spreadsheet takes a cell starting with one of these for a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: Any) -> Any:
    """A text cell that a spreadsheet shows as text, never runs: labels are
    user input. A label that already starts with the quote gets one too, so
    that dropping one leading quote always gives the label back. Numbers pass
    as they are."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")):
        return "'" + value
    return value


def _cell(value: float | None) -> Any:
    finite = _finite(value)
    return "" if finite is None else finite


def plot_bytes(
    points: list[Point], title: str, metrics: list[str], image_format: str
) -> bytes:
    buffer = io.BytesIO()
    plot(curves(points), buffer, title, metrics, image_format)
    return buffer.getvalue()


PLOT_METRICS = tuple(name for name in METRICS if not name.startswith("val_"))
