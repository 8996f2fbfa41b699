"""What each initializer takes, as the installed Keras defines it."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from service import initializers

router = APIRouter(prefix="/v1/initializers", tags=["initializers"])

INITIALIZERS_EXAMPLE: Any = {
    "keras_version": "3.15.1",
    "data": [
        {
            "name": "random_normal",
            "class": "RandomNormal",
            "aliases": ["normal"],
            "parameters": [
                {"name": "mean", "type": "float", "default": 0.0},
                {"name": "stddev", "type": "float", "default": 0.05},
            ],
        }
    ],
    "count": 1,
}


class InitializersPublic(BaseModel):
    keras_version: str
    data: list[dict[str, Any]]
    count: int

    model_config = ConfigDict(json_schema_extra={"examples": [INITIALIZERS_EXAMPLE]})


@router.get("")
def list_initializers() -> InitializersPublic:
    """Every initializer: its parameters with their types and defaults, its aliases."""
    data = initializers.public()
    return InitializersPublic(
        keras_version=initializers.MANIFEST["keras_version"],
        data=data,
        count=len(data),
    )
