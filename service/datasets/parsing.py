"""One CSV reader for the API and the workers: decode, split, check the shape,
infer column types, and encode columns as numbers for training."""

import codecs
import csv
import io
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

MISSING = frozenset({"", "na", "n/a", "nan", "null"})

ColumnType = Literal["numeric", "text"]


class CsvError(Exception):
    """A file that cannot be taken as a table; `field` is the form field at fault."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    cells: tuple[str | None, ...]

    @property
    def missing(self) -> int:
        return sum(cell is None for cell in self.cells)

    def classes(self) -> list[str]:
        """Distinct values, numbers in numeric order, text in code point order;
        a class's id is its position here."""
        present = {cell for cell in self.cells if cell is not None}
        if self.type == "numeric":
            return sorted({_number_key(cell) for cell in present}, key=float)
        return sorted(present)

    def class_ids(self) -> npt.NDArray[np.float64]:
        """Each row's class id; NaN where the value is missing."""
        ids = {value: index for index, value in enumerate(self.classes())}
        key = _number_key if self.type == "numeric" else str
        return np.array(
            [math.nan if cell is None else ids[key(cell)] for cell in self.cells],
            dtype=np.float64,
        )

    def numbers(self) -> npt.NDArray[np.float64]:
        return np.array(
            [math.nan if cell is None else float(cell) for cell in self.cells],
            dtype=np.float64,
        )


@dataclass(frozen=True)
class ParsedCsv:
    columns: tuple[Column, ...]

    @property
    def rows(self) -> int:
        return len(self.columns[0].cells)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _number_key(cell: str) -> str:
    value = float(cell)
    return str(int(value)) if value.is_integer() else repr(value)


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def decode(content: bytes) -> str:
    """UTF-8 text, with or without a byte order mark; nothing else."""
    if content.startswith(codecs.BOM_UTF8):
        content = content[len(codecs.BOM_UTF8) :]
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CsvError(
            f"the file is not UTF-8 text: byte 0x{content[exc.start]:02x} at offset "
            f"{exc.start} is not valid UTF-8; save it as UTF-8 (a byte order mark "
            "is allowed)"
        ) from exc
    if "\x00" in text:
        raise CsvError(
            f"not a CSV file: it holds a NUL byte at offset {text.index(chr(0))}"
        )
    return text


def parse_csv(content: bytes, *, header: bool = True) -> ParsedCsv:
    reader = csv.reader(io.StringIO(decode(content), newline=""), strict=True)
    lines: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if row:
                lines.append((reader.line_num, [cell.strip() for cell in row]))
    except csv.Error as exc:
        raise CsvError(f"not a CSV file: {exc} (line {reader.line_num})") from exc
    if not lines:
        raise CsvError("the file has no rows")

    if header:
        names = lines[0][1]
        _check_names(names)
        lines = lines[1:]
        if not lines:
            raise CsvError("the file has a header but no data rows")
    else:
        names = [f"c{index}" for index in range(len(lines[0][1]))]

    width = len(names)
    for line, row in lines:
        if len(row) != width:
            raise CsvError(
                f"line {line} has {len(row)} fields, expected {width} "
                f"like the {'header' if header else 'first row'}"
            )

    columns = []
    for index, name in enumerate(names):
        cells = tuple(
            None if row[index].lower() in MISSING else row[index] for _, row in lines
        )
        numeric = all(cell is None or _is_number(cell) for cell in cells)
        columns.append(Column(name, "numeric" if numeric else "text", cells))
    return ParsedCsv(tuple(columns))


def _check_names(names: list[str]) -> None:
    if all(_is_number(name) for name in names):
        raise CsvError(
            "the first row is all numbers, so the file looks like it has no header "
            f"(first row: {', '.join(names[:8])}); send header=false to name the "
            "columns c0, c1, ...",
            field="header",
        )
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name:
            raise CsvError(f"column {position} of the header has no name")
        if name in seen:
            raise CsvError(
                f"the header names {name!r} twice (columns {seen[name]} and {position})"
            )
        seen[name] = position


@dataclass(frozen=True)
class Encoded:
    features: npt.NDArray[np.float64]
    labels: npt.NDArray[np.float64]
    feature_names: tuple[str, ...]
    classes: int


def feature_columns(
    parsed: ParsedCsv, label: str, features: list[str] | None
) -> list[str]:
    if features is not None:
        return features
    return [column.name for column in parsed.columns if column.name != label]


def encode(
    parsed: ParsedCsv,
    *,
    label: str,
    features: list[str] | None,
    one_hot: list[str],
    classification: bool,
) -> Encoded:
    """Features as numbers, missing values as NaN (a one-hot column's missing
    value is NaN in each of its indicator columns); labels as class ids for
    classification, raw numbers otherwise."""
    blocks: list[npt.NDArray[np.float64]] = []
    names: list[str] = []
    for name in feature_columns(parsed, label, features):
        column = parsed.column(name)
        assert column is not None
        if name in one_hot:
            ids = column.class_ids()
            categories = column.classes()
            block = np.zeros((parsed.rows, len(categories)), dtype=np.float64)
            present = ~np.isnan(ids)
            block[np.flatnonzero(present), ids[present].astype(int)] = 1.0
            block[~present] = math.nan
            blocks.append(block)
            names += [f"{name}={category}" for category in categories]
        else:
            blocks.append(column.numbers().reshape(-1, 1))
            names.append(name)
    target = parsed.column(label)
    assert target is not None
    if classification:
        labels, classes = target.class_ids(), len(target.classes())
    else:
        labels, classes = target.numbers(), 0
    return Encoded(np.hstack(blocks), labels, tuple(names), classes)
