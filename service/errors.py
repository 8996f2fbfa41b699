"""Domain errors and their one mapping to JSON responses."""

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class NotFoundError(Exception):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} not found. Received: id={key!r}")
        self.kind = kind
        self.key = key


class ConflictError(Exception):
    pass


def json_safe(value: Any) -> Any:
    """Values as JSON can carry them: non-finite floats become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return repr(value)


def _received(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return json_safe(value)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        field = _field_path(tuple(error.get("loc", ())))
        value = _received(error.get("input"))
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append(
            {
                "field": field,
                "value": value,
                "message": message,
                "type": error.get("type"),
                "loc": list(error.get("loc", ())),
            }
        )
    return JSONResponse(
        status_code=422,
        content={"detail": "request is not valid", "errors": errors},
    )


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotFoundError)
    return JSONResponse(
        status_code=404,
        content={"detail": str(exc), "kind": exc.kind, "id": exc.key},
    )


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(ConflictError, _conflict)
