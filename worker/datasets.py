"""Datasets by source name: download or read, verify, split and standardize."""

import hashlib
import io
import os
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.config import Settings
from service.datasets.parsing import encode, parse_csv
from worker.engine.plan import SplitData

BANKNOTE_FILE = "data_banknote_authentication.txt"
BANKNOTE_SHA256 = "d0539aaed2139ba7a587b3e34fb345ce503ff7d5d33dbf9912d8e195ce425cb9"
BANKNOTE_ROWS = 1372
BANKNOTE_COLUMNS = ("variance", "skewness", "curtosis", "entropy", "class")


class DatasetError(Exception):
    """A dataset could not be had, or was not what it should be."""


@dataclass(frozen=True)
class Table:
    features: npt.NDArray[np.float64]
    labels: npt.NDArray[np.float64]
    feature_names: tuple[str, ...]


SKLEARN_LOADERS = ("breast_cancer", "iris", "wine", "digits", "diabetes")


def load_table(source: str, settings: Settings) -> Table:
    if source == "uci:banknote":
        return parse_banknote(banknote_bytes(settings))
    kind, _, name = source.partition(":")
    if kind == "sklearn" and name in SKLEARN_LOADERS:
        return sklearn_table(name)
    raise DatasetError(f"unknown dataset source. Received: source={source!r}")


def uploaded_table(
    content: bytes,
    *,
    header: bool,
    label: str,
    features: list[str] | None,
    one_hot: list[str],
    classification: bool,
) -> tuple[Table, int]:
    """An uploaded CSV file as numbers, parsed as the API parsed it; missing
    feature values stay NaN until split() fills them. Also the class count."""
    encoded = encode(
        parse_csv(content, header=header),
        label=label,
        features=features,
        one_hot=one_hot,
        classification=classification,
    )
    table = Table(encoded.features, encoded.labels, encoded.feature_names)
    return table, encoded.classes


def sklearn_table(name: str) -> Table:
    """One of the small datasets that ship inside scikit-learn (no download)."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    return Table(
        np.asarray(bunch.data, dtype=np.float64),
        np.asarray(bunch.target, dtype=np.float64),
        tuple(str(feature) for feature in bunch.feature_names),
    )


def banknote_bytes(settings: Settings) -> bytes:
    """UCI's file, from the data folder, else the cache, else the network."""
    if settings.data_dir is not None:
        return _from_data_dir(settings.data_dir)

    cached = settings.resolved_cache_dir / BANKNOTE_FILE
    if cached.exists():
        content = cached.read_bytes()
        if _sha256(content) == BANKNOTE_SHA256:
            return content
        cached.unlink()

    content = download(settings.banknote_url, settings.download_timeout_seconds)
    _verify(content, settings.banknote_url)
    _write_atomically(cached, content)
    return content


def _from_data_dir(data_dir: Path) -> bytes:
    uci = data_dir / BANKNOTE_FILE
    if uci.exists():
        content = uci.read_bytes()
        _verify(content, str(uci))
        return content

    # The course copy is UCI's file behind one header line.
    course = data_dir / "banknotes.csv"
    if course.exists():
        _header, _, content = course.read_bytes().partition(b"\n")
        _verify(content, str(course))
        return content

    raise DatasetError(
        f"no banknote data in the data folder: expected {BANKNOTE_FILE} or "
        f"banknotes.csv. Received: data_dir={str(data_dir)!r}"
    )


def download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except OSError as exc:
        raise DatasetError(f"download failed: {exc}. Received: url={url!r}") from exc


def _verify(content: bytes, origin: str) -> None:
    digest = _sha256(content)
    if digest != BANKNOTE_SHA256:
        raise DatasetError(
            f"banknote data failed its SHA-256 check: expected {BANKNOTE_SHA256}, "
            f"got {digest}. Received: {origin}"
        )


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".download-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(tmp, path)


def parse_banknote(content: bytes) -> Table:
    rows = np.loadtxt(io.BytesIO(content), delimiter=",", dtype=np.float64)
    if rows.shape != (BANKNOTE_ROWS, len(BANKNOTE_COLUMNS)):
        raise DatasetError(f"banknote data has shape {rows.shape}")
    return Table(rows[:, :4], rows[:, 4], BANKNOTE_COLUMNS[:4])


def split(
    table: Table,
    *,
    test_size: float,
    split_seed: int,
    standardize: str,
    stratify: bool = False,
) -> SplitData:
    """A train/validation split the way scikit-learn's train_test_split does it.

    `standardize` is "train" (scaler fitted on the training rows), "all" (fitted
    on every row, as the classic lesson did) or "none". With `stratify` each
    class keeps its share of rows on both sides.
    """
    from sklearn.model_selection import train_test_split

    x = table.features
    if standardize == "all":
        x = _imputed(x, x)
        x = _standardized(x, x)
    x_train, x_val, y_train, y_val = train_test_split(
        x,
        table.labels,
        test_size=test_size,
        random_state=split_seed,
        stratify=table.labels if stratify else None,
    )
    x_train, x_val = _imputed(x_train, x_train), _imputed(x_val, x_train)
    if standardize == "train":
        x_train, x_val = _standardized(x_train, x_train), _standardized(x_val, x_train)
    return SplitData(
        x_train=x_train.astype(np.float32),
        y_train=y_train.astype(np.float32).reshape(-1, 1),
        x_val=x_val.astype(np.float32),
        y_val=y_val.astype(np.float32).reshape(-1, 1),
    )


def _imputed(
    x: npt.NDArray[np.float64], fitted_on: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Missing values (NaN) replaced by the column means of `fitted_on`."""
    gaps = np.isnan(x)
    if not gaps.any():
        return x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(fitted_on, axis=0)
    mean = np.where(np.isnan(mean), 0.0, mean)
    return np.where(gaps, mean, x)


def _standardized(
    x: npt.NDArray[np.float64], fitted_on: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    mean = fitted_on.mean(axis=0)
    std = fitted_on.std(axis=0)
    std[std == 0] = 1.0
    result: npt.NDArray[np.float64] = (x - mean) / std
    return result


def labels_for_loss(data: SplitData, loss: str, classes: int) -> SplitData:
    """Class labels as the loss reads them: one-hot for categorical
    cross-entropy, a single column of class ids or targets otherwise."""
    if loss != "categorical_crossentropy":
        return data
    eye = np.eye(classes, dtype=np.float32)
    return SplitData(
        x_train=data.x_train,
        y_train=eye[data.y_train.ravel().astype(int)],
        x_val=data.x_val,
        y_val=eye[data.y_val.ravel().astype(int)],
    )
