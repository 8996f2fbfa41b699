"""Reading history: whole, or what was written after a cursor."""

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Text, cast, select
from sqlalchemy.orm import Session

from service.db.models import EpochRecord, Experiment, Run
from service.errors import NotFoundError, SpecError, json_safe
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
    if query.since > latest:
        raise SpecError(
            "since",
            query.since,
            f"is past this experiment's latest cursor {latest}: "
            "a cursor from another experiment, or from a database since reset",
            "query",
        )
    conditions: list[Any] = [
        EpochRecord.experiment_id == experiment_id,
        EpochRecord.seq > query.since,
        EpochRecord.seq <= latest,
    ]
    if query.epoch_from is not None:
        conditions.append(EpochRecord.epoch >= query.epoch_from)
    if query.epoch_to is not None:
        conditions.append(EpochRecord.epoch <= query.epoch_to)

    # The runs first, then their records alone: a join would leave the plan
    # to table statistics, which lag behind a history that grows every second.
    every_run = session.execute(
        select(Run.id, Run.initializer, Run.repeat, Run.reset_seq, Run.diverged)
        .where(Run.experiment_id == experiment_id)
        .order_by(Run.position)
    ).all()
    runs = _selected_runs(every_run, query, run_id)
    labels = {run: (initializer, repeat) for run, initializer, repeat, _, _ in runs}
    if len(runs) < len(every_run):
        conditions.append(EpochRecord.run_id.in_(list(labels)))
    if query.metrics is not None:
        _check_metrics(session, experiment_id, query.metrics)

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
    # Nothing can lie past the head: a poll that is up to date reads no records.
    rows = session.execute(statement).all() if query.since < latest else []

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


RunRow = Row[str, str, int, int | None, bool]
"""A run as history reads it: id, initializer label, repeat, reset_seq, diverged."""


def _selected_runs(
    every_run: Sequence[RunRow], query: HistoryQuery, run_id: str | None
) -> list[RunRow]:
    """The runs the filters name; a name that matches nothing is an error."""
    runs = [row for row in every_run if run_id is None or row[0] == run_id]
    if query.runs is not None:
        ids = {row[0] for row in runs}
        unknown = [run for run in query.runs if run not in ids]
        if unknown:
            message = (
                "no such run in this experiment"
                if run_id is None
                else f"this history is of run {run_id} alone"
            )
            raise SpecError("runs", unknown, message, "query")
        runs = [row for row in runs if row[0] in query.runs]
    if query.initializers is not None:
        wanted = _labels(query.initializers, {row[1] for row in every_run})
        runs = [row for row in runs if row[1] in wanted]
    return runs


def _labels(values: list[str], known: set[str]) -> set[str]:
    """Labels from repeated or comma-separated values; labels may hold commas,
    so the longest run of comma-separated parts that is a label is one. Empty
    parts name nothing: only empty parts is no filter at all."""
    # Labels of several parts, by their first one: a part is tried only
    # against the labels it could begin.
    several: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for label in known:
        pieces = label.split(",")
        if len(pieces) > 1:
            several[pieces[0]].append((len(pieces), label))
    for candidates in several.values():
        candidates.sort(reverse=True)
    wanted: set[str] = set()
    for value in values:
        parts = value.split(",")
        start = 0
        while start < len(parts):
            width = next(
                (
                    width
                    for width, label in several.get(parts[start].lstrip(), [])
                    if ",".join(parts[start : start + width]).strip() == label
                ),
                1,
            )
            wanted.add(",".join(parts[start : start + width]).strip())
            start += width
    wanted.discard("")
    unknown = sorted(wanted - known)
    if unknown:
        raise SpecError(
            "initializers",
            unknown,
            f"no such initializer label here; one of {sorted(known)}",
            "query",
        )
    return wanted or known


def _check_metrics(session: Session, experiment_id: str, names: list[str]) -> None:
    """Every record of an experiment holds the same metrics: one tells them."""
    sample = session.scalar(
        select(EpochRecord.metrics)
        .where(EpochRecord.experiment_id == experiment_id)
        .limit(1)
    )
    if sample is None:
        return
    unknown = [name for name in names if name not in sample]
    if unknown:
        raise SpecError(
            "metrics", unknown, f"not recorded here; one of {sorted(sample)}", "query"
        )


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


def _is_number(value: Any) -> bool:
    return value is not None and math.isfinite(value)


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
                if _is_number(point["metrics"].get(name))
            ]
            if finite:
                keep |= {min(finite)[1], max(finite)[1]}
        spare = per_run - len(keep)
        if spare > 0:
            step = (len(series) - 1) / (spare + 1)
            keep |= {round(step * (i + 1)) for i in range(spare)}
        kept += [series[index] for index in sorted(keep)]
    return kept
