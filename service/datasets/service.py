"""Uploaded datasets: store, read, and check an experiment against one."""

import hashlib
from collections import OrderedDict

import numpy as np
import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.catalog import CLASSIFICATION_LOSSES, DatasetShape
from service.datasets.parsing import CsvError, ParsedCsv, feature_columns, parse_csv
from service.datasets.schemas import (
    ClassBalance,
    ClassCount,
    ColumnPublic,
    DatasetPublic,
)
from service.db.models import Dataset
from service.errors import NotFoundError, SpecError, UploadError
from service.experiments.schemas import ExperimentCreate

log = structlog.get_logger()


def class_balance(parsed: ParsedCsv, label: str) -> ClassBalance:
    column = parsed.column(label)
    assert column is not None
    values = column.classes()
    ids = column.class_ids()
    counts = np.bincount(ids[~np.isnan(ids)].astype(int), minlength=len(values))
    return ClassBalance(
        label=label,
        classes=[
            ClassCount(id=index, value=value, count=int(counts[index]))
            for index, value in enumerate(values)
        ],
    )


def ingest(
    session: Session,
    content: bytes,
    *,
    name: str,
    header: bool,
    label: str | None,
) -> tuple[Dataset, bool]:
    """The stored dataset for these bytes, and whether it was stored just now.
    Bytes stored before keep the name, header flag and label of their first
    upload."""
    digest = hashlib.sha256(content).hexdigest()
    existing = session.get(Dataset, digest)
    if existing is not None:
        return existing, False

    try:
        parsed = parse_csv(content, header=header)
    except CsvError as exc:
        raise UploadError(422, exc.field, None, exc.message) from exc
    balance = None
    if label is not None:
        if parsed.column(label) is None:
            raise UploadError(
                422,
                "label",
                label,
                f"no column has this name; the columns are "
                f"{', '.join(c.name for c in parsed.columns)}. Received: {label!r}",
            )
        balance = class_balance(parsed, label)

    dataset = Dataset(
        id=digest,
        name=name,
        header=header,
        label=label,
        size_bytes=len(content),
        rows=parsed.rows,
        columns=[
            ColumnPublic(name=c.name, type=c.type, missing=c.missing).model_dump()
            for c in parsed.columns
        ],
        class_balance=None if balance is None else balance.model_dump(),
        content=content,
    )
    session.add(dataset)
    try:
        session.commit()
    except IntegrityError:
        # The same bytes arrived twice at once; the other upload stored them.
        session.rollback()
        return get_dataset(session, digest), False
    log.info("dataset.stored", dataset_id=digest, rows=parsed.rows, bytes=len(content))
    return dataset, True


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFoundError("dataset", dataset_id)
    return dataset


def to_public(dataset: Dataset) -> DatasetPublic:
    return DatasetPublic(
        id=dataset.id,
        name=dataset.name,
        header=dataset.header,
        columns=[ColumnPublic.model_validate(c) for c in dataset.columns],
        rows=dataset.rows,
        size_bytes=dataset.size_bytes,
        class_balance=None
        if dataset.class_balance is None
        else ClassBalance.model_validate(dataset.class_balance),
        created_at=dataset.created_at,
    )


def list_datasets(
    session: Session, *, limit: int, offset: int
) -> tuple[list[DatasetPublic], int]:
    total = session.scalar(select(func.count()).select_from(Dataset)) or 0
    datasets = session.scalars(
        select(Dataset)
        .order_by(Dataset.created_at.desc(), Dataset.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [to_public(dataset) for dataset in datasets], total


def load_content(session: Session, dataset_id: str) -> tuple[bytes, bool] | None:
    row = session.execute(
        select(Dataset.content, Dataset.header).where(Dataset.id == dataset_id)
    ).one_or_none()
    return None if row is None else (row.content, row.header)


# Content-addressed, so a parsed file never goes stale.
_parsed: OrderedDict[str, ParsedCsv] = OrderedDict()
PARSED_KEPT = 4


def parsed_dataset(session: Session, dataset_id: str) -> ParsedCsv | None:
    if dataset_id in _parsed:
        _parsed.move_to_end(dataset_id)
        return _parsed[dataset_id]
    stored = load_content(session, dataset_id)
    if stored is None:
        return None
    content, header = stored
    _parsed[dataset_id] = parse_csv(content, header=header)
    while len(_parsed) > PARSED_KEPT:
        _parsed.popitem(last=False)
    return _parsed[dataset_id]


def uploaded_shape(session: Session, spec: ExperimentCreate) -> DatasetShape:
    """Rows, encoded features and classes of the uploaded dataset a spec names,
    after checking that its columns can be used as the spec says."""
    dataset = spec.dataset
    assert dataset.id is not None
    assert dataset.label is not None
    parsed = parsed_dataset(session, dataset.id)
    if parsed is None:
        raise SpecError("dataset.id", dataset.id, "no uploaded dataset has this id")
    names = [column.name for column in parsed.columns]
    label = parsed.column(dataset.label)
    if label is None:
        raise SpecError(
            "dataset.label",
            dataset.label,
            f"no column has this name; the columns are {', '.join(names)}",
        )
    if label.missing:
        raise SpecError(
            "dataset.label",
            dataset.label,
            f"the label column has {label.missing} missing values; every row "
            "needs a label",
        )

    features = feature_columns(parsed, dataset.label, dataset.features)
    field = "dataset.features"
    for index, name in enumerate(features):
        where = f"{field}.{index}" if dataset.features is not None else field
        if parsed.column(name) is None:
            raise SpecError(
                where,
                name,
                f"no column has this name; the columns are {', '.join(names)}",
            )
        if name == dataset.label:
            raise SpecError(where, name, "the label column cannot also be a feature")
    if len(set(features)) != len(features):
        raise SpecError(field, dataset.features, "a feature column is named twice")
    if not features:
        raise SpecError(field, features, "the dataset has no column besides the label")
    one_hot = dataset.one_hot or []
    for index, name in enumerate(one_hot):
        if name not in features:
            raise SpecError(
                f"dataset.one_hot.{index}",
                name,
                "only feature columns can be one-hot encoded; the features are "
                f"{', '.join(features)}",
            )

    width = 0
    missing: list[str] = []
    for index, name in enumerate(features):
        where = f"{field}.{index}" if dataset.features is not None else field
        column = parsed.column(name)
        assert column is not None
        if name in one_hot:
            width += len(column.classes())
        elif column.type == "text":
            raise SpecError(
                where,
                name,
                f"column {name!r} holds text; list it in dataset.one_hot to encode "
                "it, or leave it out of dataset.features",
            )
        else:
            width += 1
        if column.missing:
            if column.missing == parsed.rows:
                raise SpecError(
                    where, name, f"column {name!r} has no values, only missing ones"
                )
            missing.append(f"{name} ({column.missing})")
    if missing and dataset.impute != "mean":
        raise SpecError(
            "dataset.impute",
            dataset.impute,
            f"feature columns have missing values: {', '.join(missing)}; use impute "
            "'mean' to fill them with the training rows' mean, or leave them out",
        )

    classes = 0
    if spec.loss in CLASSIFICATION_LOSSES:
        classes = len(label.classes())
        if classes < 2:
            raise SpecError(
                "dataset.label",
                dataset.label,
                f"the label has {classes} class ({', '.join(label.classes())}); "
                "classification needs at least 2",
            )
        if dataset.stratify:
            counts = class_balance(parsed, dataset.label).classes
            rare = [c.value for c in counts if c.count < 2]
            if rare:
                raise SpecError(
                    "dataset.stratify",
                    dataset.stratify,
                    "a stratified split needs at least 2 rows of each class; "
                    f"these have 1: {', '.join(rare)}",
                )
    elif label.type == "text":
        raise SpecError(
            "dataset.label",
            dataset.label,
            f"the label holds text, and loss {spec.loss!r} needs numbers; use a "
            "classification loss or a numeric label",
        )
    return DatasetShape(rows=parsed.rows, features=width, classes=classes)
