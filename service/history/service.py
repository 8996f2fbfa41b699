"""Reading history: whole, or what was written after a cursor."""

import hashlib
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import EpochRecord, Experiment, Run
from service.errors import NotFoundError, json_safe
from service.history.schemas import HistoryPage, HistoryPoint, HistoryQuery


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
) -> HistoryPage:
    """Points written after `query.since` and up to `latest`, oldest first."""
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

    limit = None if query.max_points else query.limit
    statement = (
        select(
            EpochRecord.seq,
            Run.id,
            Run.initializer,
            Run.repeat,
            EpochRecord.epoch,
            EpochRecord.metrics,
        )
        .join(Run, Run.id == EpochRecord.run_id)
        .where(*conditions, *run_conditions)
        .order_by(EpochRecord.seq)
    )
    if limit is not None:
        statement = statement.limit(limit + 1)
    rows = list(session.execute(statement))

    has_more = limit is not None and len(rows) > limit
    if has_more:
        rows = rows[:limit]
    cursor = rows[-1][0] if has_more else max(latest, query.since)

    points = [
        HistoryPoint(
            run_id=run,
            initializer=initializer,
            repeat=repeat,
            epoch=epoch,
            metrics=_selected(metrics, query.metrics),
        )
        for _, run, initializer, repeat, epoch, metrics in rows
    ]
    if query.max_points:
        points = downsample(points, query.max_points)

    flagged = session.execute(
        select(Run.id, Run.reset_seq, Run.diverged).where(*run_conditions)
    ).all()
    return HistoryPage(
        experiment_id=experiment_id,
        points=points,
        cursor=cursor,
        has_more=has_more,
        reset_runs=[
            run
            for run, reset, _ in flagged
            if query.since and reset is not None and query.since < reset <= cursor
        ],
        diverged_runs=[run for run, _, diverged in flagged if diverged],
    )


def _selected(metrics: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    chosen = metrics if names is None else {n: metrics.get(n) for n in names}
    clean: dict[str, Any] = json_safe(chosen)
    return clean


def downsample(points: list[HistoryPoint], per_run: int) -> list[HistoryPoint]:
    """At most `per_run` points a run, spread evenly; its first and last epoch
    and each metric's minimum and maximum always stay, even beyond that."""
    by_run: dict[str, list[HistoryPoint]] = defaultdict(list)
    for point in points:
        by_run[point.run_id].append(point)

    kept: list[HistoryPoint] = []
    for series in by_run.values():
        series.sort(key=lambda point: point.epoch)
        if len(series) <= per_run:
            kept += series
            continue
        keep = {0, len(series) - 1}
        for name in {name for point in series for name in point.metrics}:
            finite = [
                (point.metrics[name], index)
                for index, point in enumerate(series)
                if point.metrics.get(name) is not None
            ]
            if finite:
                keep |= {min(finite)[1], max(finite)[1]}
        spare = per_run - len(keep)
        if spare > 0:
            step = (len(series) - 1) / (spare + 1)
            keep |= {round(step * (i + 1)) for i in range(spare)}
        kept += [series[index] for index in sorted(keep)]
    return kept
