import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from service.db.session import get_sessionmaker
from service.deps import SessionDep
from service.errors import SpecError
from service.experiments.service import get_experiment, read_experiment
from service.history import exports, service
from service.history.schemas import MAX_PAGE, HistoryPage, HistoryQuery
from service.responses import dumps
from service.runs.service import get_run

router = APIRouter(tags=["history"])

QueryDep = Annotated[HistoryQuery, Depends()]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    304: {"description": "Nothing changed since the ETag in If-None-Match"},
    404: {"description": "No experiment or run has this id"},
}
TERMINAL = {"succeeded", "failed", "cancelled"}


def _matches(tag: str, if_none_match: str) -> bool:
    """If-None-Match's weak comparison: `*`, or the same tag with or without
    its `W/`."""
    if if_none_match.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(
        value.strip().removeprefix("W/") == opaque for value in if_none_match.split(",")
    )


def _page_or_304(
    page_of: Any, latest: int, tag: str, if_none_match: str | None
) -> Response:
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if if_none_match is not None and _matches(tag, if_none_match):
        if if_none_match.strip() == "*":
            # `*` matches whatever is current, so only a query that has a
            # page: reading it checks the filters. A tag of ours was already
            # checked, as it names this very query.
            page_of(latest)
        return Response(status_code=304, headers=headers)
    body = service.render_page(page_of(latest))
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/v1/experiments/{experiment_id}/history",
    responses=NOT_FOUND,
    response_model=HistoryPage,
)
def experiment_history(
    experiment_id: str,
    query: QueryDep,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Per-epoch points of every run, oldest write first, epochs 0-based as in
    Keras' History. Poll with `since=<cursor>` for what is new; `If-None-Match`
    with the last ETag answers 304 when nothing is."""
    latest = service.head(session, experiment_id)
    tag = service.etag(latest, query, experiment_id)
    return _page_or_304(
        lambda head: service.read_page(
            session, experiment_id, query, latest=head, raw=True
        ),
        latest,
        tag,
        if_none_match,
    )


@router.get(
    "/v1/runs/{run_id}/history", responses=NOT_FOUND, response_model=HistoryPage
)
def run_history(
    run_id: str,
    query: QueryDep,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """One run's per-epoch points, with the same cursor as its experiment's."""
    run = get_run(session, run_id)
    latest = service.head(session, run.experiment_id)
    tag = service.etag(latest, query, run_id)
    return _page_or_304(
        lambda head: service.read_page(
            session, run.experiment_id, query, latest=head, run_id=run_id, raw=True
        ),
        latest,
        tag,
        if_none_match,
    )


def _head(experiment_id: str) -> int:
    with get_sessionmaker()() as session:
        return service.head(session, experiment_id)


def _resume_after(last_event_id: str | None, head: int) -> int:
    """The cursor a reconnecting client last received, checked like `since`."""
    if last_event_id is None or not last_event_id.strip():
        return 0
    text = last_event_id.strip()
    # ASCII digits only ("²" is a digit to Python), and no longer than a cursor.
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > head:
        raise SpecError(
            "Last-Event-ID",
            _as_sent(last_event_id),
            f"must be an event id this stream sent, at most {head}",
            "header",
        )
    return int(text)


def _as_sent(header: str) -> str:
    """A header value as the client most likely wrote it: the server reads
    header bytes as Latin-1, clients mostly send UTF-8."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return header


def _poll(
    experiment_id: str, query: HistoryQuery
) -> tuple[dict[str, Any], service.Page]:
    with get_sessionmaker()() as session:
        progress = read_experiment(session, experiment_id).model_dump(mode="json")
        latest = service.head(session, experiment_id)
        page = service.read_page(session, experiment_id, query, latest=latest)
        return progress, page


def _event(kind: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {dumps(data)}\n\n"


@router.get(
    "/v1/experiments/{experiment_id}/events",
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "example": (
                        'event: progress\\ndata: {"status":"running",...}\\n\\n'
                        'id: 125\\nevent: points\\ndata: {"points":[...],...}\\n\\n'
                    )
                }
            },
            "description": "Server-Sent Events",
        },
        404: {"description": "No experiment has this id"},
    },
)
async def experiment_events(
    experiment_id: str,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
    interval: Annotated[float, Query(ge=0.1, le=10.0)] = 0.5,
) -> StreamingResponse:
    """Progress and new points as Server-Sent Events until the experiment ends;
    a reconnect with `Last-Event-ID` resumes after the last points received."""
    head = await run_in_threadpool(_head, experiment_id)
    since = _resume_after(last_event_id, head)

    async def stream() -> AsyncIterator[str]:
        cursor, last_progress = since, None
        while not await request.is_disconnected():
            query = HistoryQuery(since=cursor)
            progress, page = await run_in_threadpool(_poll, experiment_id, query)
            if progress != last_progress:
                yield _event("progress", progress)
                last_progress = progress
            if page["points"] or page["reset_runs"]:
                yield _event("points", page, page["cursor"])
            cursor = page["cursor"]
            if page["has_more"]:
                continue
            if progress["status"] in TERMINAL:
                yield _event("done", {"status": progress["status"]}, cursor)
                return
            await asyncio.sleep(interval)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _all_points(session: Any, experiment_id: str) -> tuple[Any, list[dict[str, Any]]]:
    experiment = get_experiment(session, experiment_id)
    query = HistoryQuery(limit=MAX_PAGE)
    points: list[dict[str, Any]] = []
    latest = service.head(session, experiment_id)
    while True:
        page = service.read_page(session, experiment_id, query, latest=latest)
        points += page["points"]
        if not page["has_more"]:
            return experiment, points
        query = HistoryQuery(since=page["cursor"], limit=MAX_PAGE)


EXPORT_MEDIA = {
    "csv": "text/csv",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}


@router.get(
    "/v1/experiments/{experiment_id}/history.{file_format}",
    responses={
        200: {
            "content": {
                "text/csv": {
                    "example": "run_id,initializer,repeat,epoch,accuracy,loss\n"
                    "6f1c...,zeros,0,0,0.806,0.671\n"
                },
                "application/json": {
                    "example": {
                        "index": [0, 1],
                        "columns": [["zeros", "loss"], ["he_normal", "loss"]],
                        "data": [[0.693, 0.412], [0.688, 0.301]],
                        "index_names": ["epoch"],
                        "column_names": ["initializer", "metric"],
                    }
                },
                "application/vnd.apache.parquet": {"example": "(Parquet bytes)"},
            },
            "description": "The whole history as one file",
        },
        404: {"description": "No experiment has this id"},
    },
)
def history_file(
    experiment_id: str,
    file_format: Literal["csv", "json", "parquet"],
    session: SessionDep,
    layout: Annotated[Literal["long", "wide"], Query()] = "long",
) -> Response:
    """Every point as one file. `long`: a row per run and epoch, a column per
    metric (JSON: the points). `wide`: a row per epoch and a column per
    (initializer, metric) with the mean over repeats, which pandas reads back
    with both column levels: `read_csv(f, header=[0, 1], index_col=0)`,
    `read_parquet(f)`, or `DataFrame.from_dict(body, orient="tight")` for JSON.
    Non-finite values are empty cells, nulls or Parquet nulls."""
    experiment, points = _all_points(session, experiment_id)
    labels = [variant["label"] for variant in experiment.spec["initializers"]]
    body: str | bytes
    if file_format == "csv":
        if layout == "wide":
            body = exports.wide_csv(points, labels)
        else:
            body = exports.long_csv(points)
    elif file_format == "json":
        if layout == "wide":
            content: Any = exports.WideTable.of(points, labels).tight()
        else:
            content = {"experiment_id": experiment_id, "points": points}
        body = dumps(content)
    else:
        if layout == "wide":
            frame = exports.WideTable.of(points, labels).frame()
        else:
            frame = exports.long_frame(points)
        body = exports.parquet_bytes(frame)
    filename = f"{experiment_id}-{layout}.{file_format}"
    return Response(
        body,
        media_type=EXPORT_MEDIA[file_format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/v1/experiments/{experiment_id}/plot.{image_format}",
    responses={
        200: {
            "content": {"image/png": {"example": "(PNG bytes)"}, "image/svg+xml": {}},
            "description": "The curves per initializer",
        },
        404: {"description": "No experiment has this id"},
    },
)
def history_plot(
    experiment_id: str,
    image_format: Literal["png", "svg"],
    session: SessionDep,
    metric: Annotated[
        list[str] | None,
        Query(description="metrics to draw, one panel each (val_ is added)"),
    ] = None,
) -> Response:
    """Loss and accuracy per epoch (or `metric=`), one colour per
    initializer, a mean line with a std band over repeats, validation dashed."""
    experiment, points = _all_points(session, experiment_id)
    known = {name for point in points for name in point["metrics"]}
    chosen = metric or [m for m in exports.PLOT_METRICS if m in known or not known]
    unknown = [name for name in chosen if known and name not in known]
    if unknown:
        raise SpecError(
            "metric",
            unknown,
            f"name recorded metrics; this experiment has {sorted(known)}",
            "query",
        )
    if len(chosen) > 6:
        raise SpecError("metric", metric, "draw at most 6 metrics at once", "query")
    image = exports.plot_bytes(points, experiment.name, chosen, image_format)
    media = "image/png" if image_format == "png" else "image/svg+xml"
    return Response(image, media_type=media)
