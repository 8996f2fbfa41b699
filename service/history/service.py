"""Reading history: whole, or what was written after a cursor."""

import hashlib
import json
from collections import defaultdict
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from service.db.models import EpochRecord, Experiment, Run
from service.errors import NotFoundError, json_safe
from service.history.schemas import HistoryQuery
from service.responses import dumps

Point = dict[str, Any]
"""A history point as served: the shape of `HistoryPoint`."""
Page = dict[str, Any]
"""A history page as served: the shape of `HistoryPage`."""


def head(session: Session, experiment_id: str) -> int:
    """The experiment's latest history sequence number."""
    seq = session.scalar(
        select(Experiment.history_seq).where(Experiment.id == experiment_id)
    )
    if seq is None:
        raise NotFoundError("experiment", experiment_id)
    return int(seq)


def etag(latest: int, query: HistoryQuery, scope: str) -> str:
    digest = hashlib.sha256(f"{scope}|{query.key()}".encode()).hexdigest()[:16]
    return f'W/"{latest}-{digest}"'


def read_page(
    session: Session,
    experiment_id: str,
    query: HistoryQuery,
    *,
    latest: int,
    run_id: str | None = None,
    raw: bool = False,
) -> Page:
    """Points written after `query.since` and up to `latest`, oldest first.

    Plain dicts: a full history is thousands of points. With `raw`, each
    point's metrics stay the JSON text the database holds, for `render_page`
    to pass on without decoding and encoding them again.
    """
    conditions: list[Any] = [
        EpochRecord.experiment_id == experiment_id,
        EpochRecord.seq > query.since,
        EpochRecord.seq <= latest,
    ]
    run_conditions: list[Any] = [Run.experiment_id == experiment_id]
    if run_id is not None:
        run_conditions.append(Run.id == run_id)
    if query.runs is not None:
        run_conditions.append(Run.id.in_(query.runs))
    if query.initializers is not None:
        run_conditions.append(Run.initializer.in_(query.initializers))
    if query.epoch_from is not None:
        conditions.append(EpochRecord.epoch >= query.epoch_from)
    if query.epoch_to is not None:
        conditions.append(EpochRecord.epoch <= query.epoch_to)

    # The runs first, then their records alone: a join would leave the plan
    # to table statistics, which lag behind a history that grows every second.
    runs = session.execute(
        select(Run.id, Run.initializer, Run.repeat, Run.reset_seq, Run.diverged)
        .where(*run_conditions)
        .order_by(Run.position)
    ).all()
    labels = {run: (initializer, repeat) for run, initializer, repeat, _, _ in runs}
    if len(run_conditions) > 1:
        conditions.append(EpochRecord.run_id.in_(list(labels)))

    limit = None if query.max_points else query.limit
    raw = raw and query.metrics is None and not query.max_points
    statement = (
        select(
            EpochRecord.seq,
            EpochRecord.run_id,
            EpochRecord.epoch,
            cast(EpochRecord.metrics, Text) if raw else EpochRecord.metrics,
        )
        .where(*conditions)
        .order_by(EpochRecord.seq)
    )
    if limit is not None:
        statement = statement.limit(limit + 1)
    rows = session.execute(statement).all()

    has_more = limit is not None and len(rows) > limit
    if has_more:
        rows = rows[:limit]
    cursor = rows[-1][0] if has_more else max(latest, query.since)

    names = query.metrics
    points = [
        {
            "run_id": run,
            "initializer": labels[run][0],
            "repeat": labels[run][1],
            "epoch": epoch,
            "metrics": _raw(metrics)
            if raw
            else metrics
            if names is None
            else {name: metrics.get(name) for name in names},
        }
        for _, run, epoch, metrics in rows
    ]
    if query.max_points:
        points = downsample(points, query.max_points)

    return {
        "experiment_id": experiment_id,
        "points": points,
        "cursor": cursor,
        "has_more": has_more,
        "reset_runs": [
            run
            for run, _, _, reset, _ in runs
            if query.since and reset is not None and query.since < reset <= cursor
        ],
        "diverged_runs": [run for run, _, _, _, diverged in runs if diverged],
    }


class RawJSON(str):
    """JSON text to be written into a response as it is."""


def _raw(text: str) -> RawJSON | dict[str, Any]:
    if "NaN" in text or "Infinity" in text:
        # Only a database written by hand holds these; serve them as null.
        decoded: dict[str, Any] = json_safe(json.loads(text))
        return decoded
    return RawJSON(text)


def render_page(page: Page) -> bytes:
    """The page as JSON, with raw metric texts written in as they are."""
    head, tail = dumps({**page, "points": []}).split('"points":[]', 1)
    prefixes: dict[str, str] = {}
    parts = []
    for point in page["points"]:
        run = point["run_id"]
        if run not in prefixes:
            prefixes[run] = (
                f'{{"run_id":{dumps(run)},"initializer":{dumps(point["initializer"])},'
                f'"repeat":{int(point["repeat"])},"epoch":'
            )
        metrics = point["metrics"]
        text = metrics if isinstance(metrics, RawJSON) else dumps(metrics)
        parts.append(f'{prefixes[run]}{int(point["epoch"])},"metrics":{text}}}')
    return f'{head}"points":[{",".join(parts)}]{tail}'.encode()


def _finite(value: Any) -> bool:
    return value is not None and value == value and abs(value) != float("inf")


def downsample(points: list[Point], per_run: int) -> list[Point]:
    """At most `per_run` points a run, spread evenly; its first and last epoch
    and each metric's minimum and maximum always stay, even beyond that."""
    by_run: dict[str, list[Point]] = defaultdict(list)
    for point in points:
        by_run[point["run_id"]].append(point)

    kept: list[Point] = []
    for series in by_run.values():
        series.sort(key=lambda point: point["epoch"])
        if len(series) <= per_run:
            kept += series
            continue
        keep = {0, len(series) - 1}
        for name in {name for point in series for name in point["metrics"]}:
            finite = [
                (point["metrics"][name], index)
                for index, point in enumerate(series)
                if _finite(point["metrics"].get(name))
            ]
            if finite:
                keep |= {min(finite)[1], max(finite)[1]}
        spare = per_run - len(keep)
        if spare > 0:
            step = (len(series) - 1) / (spare + 1)
            keep |= {round(step * (i + 1)) for i in range(spare)}
        kept += [series[index] for index in sorted(keep)]
    return kept
