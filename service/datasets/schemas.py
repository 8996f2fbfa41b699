"""Response bodies for uploaded datasets."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from service.datasets.parsing import ColumnType


class ColumnPublic(BaseModel):
    name: str
    type: ColumnType
    missing: int


class ClassCount(BaseModel):
    id: int
    value: str
    count: int


class ClassBalance(BaseModel):
    label: str
    classes: list[ClassCount]


DATASET_EXAMPLE: Any = {
    "id": "3f1a6c0e9d2b4a7f8e5c1b0a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e",
    "name": "penguins.csv",
    "header": True,
    "columns": [
        {"name": "bill_length_mm", "type": "numeric", "missing": 2},
        {"name": "island", "type": "text", "missing": 0},
        {"name": "species", "type": "text", "missing": 0},
    ],
    "rows": 344,
    "size_bytes": 9832,
    "class_balance": {
        "label": "species",
        "classes": [
            {"id": 0, "value": "Adelie", "count": 152},
            {"id": 1, "value": "Chinstrap", "count": 68},
            {"id": 2, "value": "Gentoo", "count": 124},
        ],
    },
    "created_at": "2026-12-04T16:20:00Z",
}


class DatasetPublic(BaseModel):
    id: str
    name: str
    header: bool
    columns: list[ColumnPublic]
    rows: int
    size_bytes: int
    class_balance: ClassBalance | None
    created_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [DATASET_EXAMPLE]})


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int
    limit: int
    offset: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"data": [DATASET_EXAMPLE], "count": 1, "limit": 20, "offset": 0}
            ]
        }
    )
