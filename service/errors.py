"""Domain errors and their one mapping to JSON responses."""

import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class NotFoundError(Exception):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} not found. Received: id={key!r}")
        self.kind = kind
        self.key = key


class SpecError(Exception):
    """A request that is well formed but cannot be run as it stands.

    `location` is where the field was sent: the body, the query or a header.
    """

    def __init__(
        self, field: str, value: Any, message: str, location: str = "body"
    ) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.message = message
        self.location = location


class UploadError(Exception):
    """An uploaded file that is refused; nothing of it is stored."""

    def __init__(self, status: int, field: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.value = value
        self.message = message


def upload_too_large(limit: int) -> UploadError:
    return UploadError(
        413, "file", None, f"the upload is larger than the limit of {limit} bytes"
    )


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


ECHO_LIMIT = 200


def _printable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {str(_printable(k)): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    return json_safe(value)


def _received(value: Any) -> Any:
    """The offending value as JSON can carry it: non-finite numbers and lone
    surrogates as text, anything long cut to a readable length."""
    printable = _printable(value)
    encoded = json.dumps(printable, ensure_ascii=False)
    if len(encoded) <= ECHO_LIMIT:
        return printable
    if isinstance(printable, str):
        return printable[:ECHO_LIMIT] + "…"
    return encoded[:ECHO_LIMIT] + "…"


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
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        if error.get("type") == "json_invalid":
            position = error.get("loc", ("body", "?"))[-1]
            field, value = "body", None
            message = f"the body is not valid JSON (at character {position})"
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


async def _spec_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpecError)
    error = {
        "field": exc.field,
        "value": _received(exc.value),
        "message": exc.message,
        "type": "spec_error",
        "loc": [exc.location, *exc.field.split(".")],
    }
    return JSONResponse(
        status_code=422, content={"detail": "request is not valid", "errors": [error]}
    )


def upload_error_response(exc: UploadError) -> JSONResponse:
    error = {
        "field": exc.field,
        "value": _received(exc.value),
        "message": exc.message,
        "type": "upload_error",
        "loc": ["body", exc.field],
    }
    return JSONResponse(
        status_code=exc.status,
        content={"detail": "dataset is not valid", "errors": [error]},
    )


async def _upload_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UploadError)
    return upload_error_response(exc)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 413:
        return upload_error_response(UploadError(413, "file", None, str(exc.detail)))
    content: dict[str, Any] = {"detail": exc.detail}
    if exc.status_code == 400:
        # The body could not be read at all (bad encoding, nesting too deep).
        content["errors"] = [
            {"field": "body", "value": None, "message": str(exc.detail)}
        ]
    return JSONResponse(
        status_code=exc.status_code, content=content, headers=exc.headers
    )


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotFoundError)
    return JSONResponse(
        status_code=404,
        content={"detail": str(exc), "kind": exc.kind, "id": exc.key},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(SpecError, _spec_error)
    app.add_exception_handler(UploadError, _upload_error)
