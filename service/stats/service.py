"""Aggregates and rankings of an experiment's runs."""

import itertools
import json
import math
from collections import defaultdict
from dataclasses import asdict
from typing import Any

import numpy as np
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from service.db.models import EpochRecord, Run, RunStatus
from service.errors import SpecError
from service.experiments.service import get_experiment, lineage
from service.stats import compute
from service.stats.schemas import (
    ExperimentSummary,
    PairwiseComparison,
    Ranked,
    Stat,
    TargetReached,
)

REGRESSION_LOSSES = {"mse", "mae"}
LOWER_IS_BETTER = ("loss", "mse", "mae")

# label -> run id -> epoch -> metrics
Series = dict[str, dict[str, dict[int, dict[str, Any]]]]


def load_series(
    session: Session,
    experiment_id: str,
    *,
    finished_only: bool = False,
    with_reruns: bool = False,
) -> tuple[dict[str, Any], Series]:
    experiment = get_experiment(session, experiment_id)
    labels = [variant["label"] for variant in experiment.spec["initializers"]]
    series: Series = {label: {} for label in labels}
    ids = lineage(session, experiment_id) if with_reruns else [experiment_id]
    conditions: list[Any] = [Run.experiment_id.in_(ids)]
    if finished_only:
        conditions.append(Run.status == RunStatus.SUCCEEDED)
    # The runs first, then the records alone, as history reads them.
    runs = dict(
        session.execute(
            select(Run.id, Run.initializer).where(*conditions).order_by(Run.position)
        ).all()
    )
    rows = session.execute(
        select(EpochRecord.run_id, EpochRecord.epoch, cast(EpochRecord.metrics, Text))
        .where(EpochRecord.experiment_id.in_(ids))
        .order_by(EpochRecord.seq)
    ).all()
    # One decode of all the texts costs far less than one per row.
    decoded = json.loads(f"[{','.join(text for _, _, text in rows)}]")
    recorded: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for (run_id, epoch, _), metrics in zip(rows, decoded, strict=True):
        recorded[run_id][epoch] = metrics
    for run_id, label in runs.items():
        if run_id in recorded:
            series.setdefault(label, {})[run_id] = recorded[run_id]
    return experiment.spec, series


def _stat(values: list[float | None]) -> Stat:
    return Stat(**asdict(compute.summarize(values)))


def aggregate(session: Session, experiment_id: str) -> dict[str, Any]:
    """The shape of `Aggregate`, as plain dicts: thousands of statistics for a
    long experiment, computed a table at a time."""
    _, series = load_series(session, experiment_id)
    result = []
    for label, runs in series.items():
        recorded: dict[int, set[str]] = defaultdict(set)
        for run_epochs in runs.values():
            for epoch, metrics in run_epochs.items():
                recorded[epoch].update(metrics)
        epochs = sorted(recorded)
        names = sorted(set().union(*recorded.values()))
        cells = {(e, n): i for i, (e, n) in enumerate(itertools.product(epochs, names))}
        table = np.full((len(runs), len(cells)), np.nan)
        for row, by_epoch in enumerate(runs.values()):
            for epoch, metrics in by_epoch.items():
                for name, value in metrics.items():
                    if value is not None:
                        table[row, cells[(epoch, name)]] = value
        stats = compute.summarize_columns(table)
        result.append(
            {
                "initializer": label,
                "runs": len(runs),
                "epochs": [
                    {
                        "epoch": epoch,
                        "metrics": {
                            name: vars(stats[cells[(epoch, name)]])
                            for name in sorted(recorded[epoch])
                        },
                    }
                    for epoch in epochs
                ],
            }
        )
    return {"experiment_id": experiment_id, "confidence": 0.95, "initializers": result}


def default_metric(spec: dict[str, Any]) -> str:
    if spec["loss"] in REGRESSION_LOSSES or "accuracy" not in spec["metrics"]:
        return "val_loss"
    return "val_accuracy"


def higher_is_better(metric: str) -> bool:
    return not metric.removeprefix("val_").endswith(LOWER_IS_BETTER)


def _finals(runs: dict[str, dict[int, dict[str, Any]]], metric: str) -> list[float]:
    """The final `metric` of each run that never diverged. Once the loss of a
    run is non-finite, so are its weights, and an accuracy it still reports
    only counts the class its NaN outputs fall into."""
    finals = []
    for epochs in runs.values():
        if any(None in metrics.values() for metrics in epochs.values()):
            continue
        value = epochs[max(epochs)].get(metric)
        if value is not None and math.isfinite(value):
            finals.append(float(value))
    return finals


def _first_epoch_at(
    epochs: dict[int, dict[str, Any]], metric: str, target: float, higher: bool
) -> int | None:
    for epoch in sorted(epochs):
        value = epochs[epoch].get(metric)
        if value is not None and (value >= target if higher else value <= target):
            return epoch
    return None


def summary(
    session: Session,
    experiment_id: str,
    *,
    metric: str | None,
    target: float | None,
    resamples: int,
    with_reruns: bool = False,
) -> ExperimentSummary:
    """Which initializer is best on the final `metric`, and is that luck?"""
    spec, series = load_series(
        session, experiment_id, finished_only=True, with_reruns=with_reruns
    )
    metric = metric or default_metric(spec)
    known = {
        name
        for runs in series.values()
        for e in runs.values()
        for m in e.values()
        for name in m
    }
    if known and metric not in known:
        raise SpecError(
            "metric", metric, f"not recorded here; one of {sorted(known)}", "query"
        )
    higher = higher_is_better(metric)

    finals = {label: _finals(runs, metric) for label, runs in series.items()}
    stats = {label: _stat(list(values)) for label, values in finals.items()}
    shares = compute.first_place_shares(
        finals, higher_is_better=higher, resamples=resamples
    )
    order = sorted(
        finals,
        key=lambda label: (
            stats[label].mean is None,
            -(stats[label].mean or 0) if higher else (stats[label].mean or 0),
        ),
    )
    means = {label: stats[label].mean for label in order}
    diverged = {label: len(series[label]) - len(finals[label]) for label in order}
    ranked = sum(mean is not None for mean in means.values())

    def rank(label: str) -> int | None:
        """1 + how many do better: equal means share a rank. Diverged through
        and through ranks last; nothing finished, not at all."""
        mine = means[label]
        if mine is None:
            return ranked + 1 if diverged[label] else None
        return 1 + sum(
            1
            for other in means.values()
            if other is not None and (other > mine if higher else other < mine)
        )

    ranking = [
        Ranked(
            rank=rank(label),
            initializer=label,
            final=stats[label],
            diverged=diverged[label],
            first_place_share=shares.get(label, 0.0),
        )
        for label in order
    ]
    comparisons = [
        PairwiseComparison(a=a, b=b, **asdict(compute.compare(finals[a], finals[b])))
        for a, b in itertools.combinations(order, 2)
    ]
    return ExperimentSummary(
        experiment_id=experiment_id,
        metric=metric,
        higher_is_better=higher,
        runs_counted=sum(len(runs) for runs in series.values()),
        ranking=ranking,
        comparisons=comparisons,
        target=target,
        time_to_target=[]
        if target is None
        else _time_to_target(series, metric, target, higher),
    )


def _time_to_target(
    series: Series, metric: str, target: float, higher: bool
) -> list[TargetReached]:
    result = []
    for label, runs in series.items():
        firsts = [
            _first_epoch_at(epochs, metric, target, higher) for epochs in runs.values()
        ]
        reached = [float(epoch) for epoch in firsts if epoch is not None]
        result.append(
            TargetReached(
                initializer=label,
                reached=len(reached),
                repeats=len(runs),
                epochs_to_target=_stat(list(reached)),
            )
        )
    return result
