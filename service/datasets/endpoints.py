from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import get_settings
from service.datasets import service
from service.datasets.schemas import DATASET_EXAMPLE, DatasetPublic, DatasetsPublic
from service.deps import PageLimit, PageOffset, SessionDep
from service.errors import upload_error_response, upload_too_large
from service.experiments.schemas import Text

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

UPLOAD_PATH = "/v1/datasets"
# Room for the multipart framing and the small form fields around the file.
MULTIPART_ALLOWANCE = 64 * 1024


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "description": "These bytes were uploaded before: the stored dataset",
            "content": {"application/json": {"example": DATASET_EXAMPLE}},
        },
        201: {"content": {"application/json": {"example": DATASET_EXAMPLE}}},
        413: {"description": "The file is over the upload size limit"},
        422: {"description": "The file is not a table this service can read"},
    },
)
def upload_dataset(
    session: SessionDep,
    response: Response,
    file: Annotated[UploadFile, File(description="A CSV file, UTF-8")],
    label: Annotated[
        str | None, Form(description="A column whose class balance to report")
    ] = None,
    header: Annotated[
        bool, Form(description="false when the first row is data; columns c0, c1...")
    ] = True,
    name: Annotated[Text | None, Form(min_length=1, max_length=200)] = None,
) -> DatasetPublic:
    """Store a CSV file by the SHA-256 of its bytes and describe its columns."""
    limit = get_settings().max_upload_bytes
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise upload_too_large(limit)
    dataset, created = service.ingest(
        session,
        content,
        name=name or default_name(file.filename),
        header=header,
        label=label,
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    if created:
        response.headers["Location"] = f"/v1/datasets/{dataset.id}"
    return service.to_public(dataset)


@router.get("")
def list_datasets(
    session: SessionDep,
    limit: PageLimit = 20,
    offset: PageOffset = 0,
) -> DatasetsPublic:
    """Uploaded datasets, newest first."""
    data, count = service.list_datasets(session, limit=limit, offset=offset)
    return DatasetsPublic(data=data, count=count, limit=limit, offset=offset)


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No dataset has this id"}
}


@router.get("/{dataset_id}", responses=NOT_FOUND)
def read_dataset(dataset_id: str, session: SessionDep) -> DatasetPublic:
    """An uploaded dataset's columns, rows, size and class balance."""
    return service.to_public(service.get_dataset(session, dataset_id))


def default_name(filename: str | None) -> str:
    """The uploaded file's own name, made storable."""
    cleaned = (filename or "").replace("\x00", "").strip()
    return cleaned[:200] or "dataset.csv"


class UploadLimit:
    """Refuses an upload body over the size limit before it is read whole:
    at once when Content-Length says so, else as soon as the stream passes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"].rstrip("/") != UPLOAD_PATH
        ):
            await self.app(scope, receive, send)
            return
        limit = get_settings().max_upload_bytes
        allowed = limit + MULTIPART_ALLOWANCE
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > allowed:
            await upload_error_response(upload_too_large(limit))(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > allowed:
                # FastAPI passes an HTTPException from reading the body through.
                raise HTTPException(413, upload_too_large(limit).message)
            return message

        await self.app(scope, limited, send)
