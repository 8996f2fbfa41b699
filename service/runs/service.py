"""Runs and their per-epoch history, read side."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Run
from service.errors import NotFoundError, json_safe
from service.experiments.service import get_experiment
from service.runs.schemas import RunPublic


def to_public(run: Run) -> RunPublic:
    return RunPublic(
        id=run.id,
        experiment_id=run.experiment_id,
        position=run.position,
        initializer=run.initializer,
        repeat=run.repeat,
        seed=run.seed,
        status=run.status,
        attempts=run.attempts,
        epochs_done=run.epochs_done,
        final_metrics=json_safe(run.final_metrics),
        diverged=run.diverged,
        error=run.error,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def get_run(session: Session, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError("run", run_id)
    return run


def list_runs(session: Session, experiment_id: str) -> list[RunPublic]:
    get_experiment(session, experiment_id)
    runs = session.scalars(
        select(Run).where(Run.experiment_id == experiment_id).order_by(Run.position)
    )
    return [to_public(run) for run in runs]
