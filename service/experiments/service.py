"""Experiments: create, read, cancel. Plain functions over a session."""

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.models import ACTIVE_STATUSES, Experiment, Run, RunStatus
from service.errors import NotFoundError
from service.experiments.schemas import (
    ExperimentCreate,
    ExperimentPublic,
    ExperimentStatus,
    Progress,
    RerunCreate,
)
from service.seeding import derive_seed

log = structlog.get_logger()

RERUN_STREAM = 7


def create_experiment(
    session: Session, experiment_in: ExperimentCreate, parent_id: str | None = None
) -> Experiment:
    spec = experiment_in.model_dump(mode="json")
    experiment = Experiment(name=experiment_in.name, spec=spec, parent_id=parent_id)
    session.add(experiment)
    session.flush()

    position = 0
    for variant, initializer in enumerate(experiment_in.initializers):
        assert initializer.label is not None
        for repeat in range(experiment_in.repeats):
            session.add(
                Run(
                    experiment_id=experiment.id,
                    position=position,
                    variant=variant,
                    initializer=initializer.label,
                    repeat=repeat,
                    seed=derive_seed(experiment_in.seed, position),
                )
            )
            position += 1
    session.flush()
    log.info("experiment.created", experiment_id=experiment.id, runs=position)
    return experiment


def queued_run_ids(session: Session, experiment_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Run.id)
            .where(Run.experiment_id == experiment_id, Run.status == RunStatus.QUEUED)
            .order_by(Run.position)
        )
    )


def rerun_spec(
    session: Session, parent: Experiment, rerun_in: RerunCreate
) -> ExperimentCreate:
    """The parent's spec with a fresh seed (the n-th rerun's own, unless one is
    given) and, if asked, another number of repeats."""
    reruns = session.scalar(
        select(func.count())
        .select_from(Experiment)
        .where(Experiment.parent_id == parent.id)
    )
    spec = dict(parent.spec)
    spec["seed"] = (
        rerun_in.seed
        if rerun_in.seed is not None
        else derive_seed(int(spec["seed"]), (reruns or 0) + 1, RERUN_STREAM)
    )
    if rerun_in.repeats is not None:
        spec["repeats"] = rerun_in.repeats
    return ExperimentCreate.model_validate(spec)


def lineage(session: Session, experiment_id: str) -> list[str]:
    """The whole family of reruns the experiment belongs to: the original it
    was rerun from (or itself), and every rerun of that, and of those, oldest
    first, whichever member is asked about."""
    root, seen = experiment_id, {experiment_id}
    while (
        parent := session.scalar(
            select(Experiment.parent_id).where(Experiment.id == root)
        )
    ) is not None and parent not in seen:
        root = parent
        seen.add(parent)
    found = [root]
    frontier = [root]
    while frontier:
        children = list(
            session.scalars(
                select(Experiment.id)
                .where(Experiment.parent_id.in_(frontier))
                .order_by(Experiment.created_at)
            )
        )
        found += children
        frontier = children
    return found


def get_experiment(session: Session, experiment_id: str) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFoundError("experiment", experiment_id)
    return experiment


def cancel_experiment(session: Session, experiment_id: str) -> int:
    """Cancel every run not yet finished; a training worker stops at its next epoch."""
    get_experiment(session, experiment_id)
    result = session.execute(
        update(Run)
        .where(Run.experiment_id == experiment_id, Run.status.in_(ACTIVE_STATUSES))
        .values(status=RunStatus.CANCELLED, finished_at=utcnow(), lease_owner=None)
    )
    cancelled = int(getattr(result, "rowcount", 0))
    log.info("experiment.cancelled", experiment_id=experiment_id, runs=cancelled)
    return cancelled


@dataclass(frozen=True)
class RunTally:
    by_status: dict[RunStatus, int]
    epochs_done: int

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def done(self) -> int:
        return self.total - sum(self.by_status.get(s, 0) for s in ACTIVE_STATUSES)

    @property
    def status(self) -> ExperimentStatus:
        count = self.by_status.get
        if count(RunStatus.RUNNING, 0) or (
            count(RunStatus.QUEUED, 0) and self.done + self.epochs_done > 0
        ):
            return "running"
        if count(RunStatus.QUEUED, 0):
            return "queued"
        if count(RunStatus.FAILED, 0):
            return "failed"
        if count(RunStatus.CANCELLED, 0):
            return "cancelled"
        return "succeeded"


def tally_runs(session: Session, experiment_ids: Sequence[str]) -> dict[str, RunTally]:
    rows = session.execute(
        select(
            Run.experiment_id,
            Run.status,
            func.count(),
            func.coalesce(func.sum(Run.epochs_done), 0),
        )
        .where(Run.experiment_id.in_(experiment_ids))
        .group_by(Run.experiment_id, Run.status)
    )
    counts: dict[str, dict[RunStatus, int]] = {key: {} for key in experiment_ids}
    epochs: dict[str, int] = dict.fromkeys(experiment_ids, 0)
    for experiment_id, status, count, epochs_done in rows:
        counts[experiment_id][RunStatus(status)] = int(count)
        epochs[experiment_id] += int(epochs_done)
    return {key: RunTally(counts[key], epochs[key]) for key in experiment_ids}


def to_public(experiment: Experiment, tally: RunTally) -> ExperimentPublic:
    epochs_per_run = int(experiment.spec["epochs"])
    return ExperimentPublic(
        id=experiment.id,
        parent_id=experiment.parent_id,
        name=experiment.name,
        status=tally.status,
        created_at=experiment.created_at,
        runs_total=tally.total,
        progress=Progress(
            runs_total=tally.total,
            runs_done=tally.done,
            epochs_done=tally.epochs_done,
            epochs_total=tally.total * epochs_per_run,
            runs_by_status={
                status: tally.by_status.get(status, 0) for status in RunStatus
            },
        ),
        spec=experiment.spec,
    )


def read_experiment(session: Session, experiment_id: str) -> ExperimentPublic:
    experiment = get_experiment(session, experiment_id)
    return to_public(experiment, tally_runs(session, [experiment_id])[experiment_id])


def list_experiments(
    session: Session, *, limit: int, offset: int
) -> tuple[list[ExperimentPublic], int]:
    total = session.scalar(select(func.count()).select_from(Experiment)) or 0
    experiments = list(
        session.scalars(
            select(Experiment)
            .order_by(Experiment.created_at.desc(), Experiment.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    tallies = tally_runs(session, [e.id for e in experiments])
    return [to_public(e, tallies[e.id]) for e in experiments], total
