"""Checking the parameters of a Keras object given as JSON, each bad key
reported at its own place."""

import math
from typing import Any

from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38

Problem = tuple[str, Any, str]
"""A key, the value received and what is wrong with it."""


def type_problem(kind: str, value: Any) -> str | None:
    """What is wrong with the value's type; JSON numbers are strict: no strings,
    no booleans, nothing infinite or NaN."""
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        # An integer is compared as it is: one past float range has no float.
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        if abs(value) > FLOAT32_MAX:
            # Training runs in 32-bit floats, where this would be infinite.
            return f"must be at most {FLOAT32_MAX:.4g} in magnitude"
        if value and abs(value) < FLOAT32_TINY:
            # Where it would be subnormal, or flushed to zero.
            return f"must be 0 or at least {FLOAT32_TINY:.4g} in magnitude"
        return None
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    return None if isinstance(value, str) else "must be a string"


def normalized(kind: str, value: Any) -> Any:
    return float(value) if kind == "float" else value


def validation_error(title: str, problems: list[Problem]) -> ValidationError:
    """Raised inside a field validator, each problem lands at field.key."""
    details: list[InitErrorDetails] = [
        {
            "type": PydanticCustomError(
                "value_error",
                "{message}. Received: {received}",
                {"message": message, "received": repr(value)},
            ),
            "loc": (key,),
            "input": value,
        }
        for key, value, message in problems
    ]
    return ValidationError.from_exception_data(title, details)
