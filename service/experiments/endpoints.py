from typing import Any

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from service.config import get_settings
from service.datasets.service import uploaded_shape
from service.deps import PageLimit, PageOffset, SessionDep
from service.experiments import service
from service.experiments.checks import builtin_shape, check_runnable
from service.experiments.schemas import (
    ExperimentCreate,
    ExperimentPublic,
    ExperimentsPublic,
    RerunCreate,
)
from service.queue import publish_runs
from service.runs.schemas import RunsPublic
from service.runs.service import list_runs

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No experiment has this id"}
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={422: {"description": "The spec names a field with a bad value"}},
)
def create_experiment(
    experiment_in: ExperimentCreate, session: SessionDep, response: Response
) -> ExperimentPublic:
    """Store an experiment and its runs, then queue the runs for training."""
    return _launch(session, experiment_in, response, parent_id=None)


@router.post(
    "/{experiment_id}/rerun",
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, 422: {"description": "A field has a bad value"}},
)
def rerun_experiment(
    experiment_id: str,
    session: SessionDep,
    response: Response,
    rerun_in: RerunCreate | None = None,
) -> ExperimentPublic:
    """Launch the same spec with fresh seeds (or more repeats) as a linked
    experiment; its summary can pool every rerun's repeats."""
    parent = service.get_experiment(session, experiment_id)
    spec = service.rerun_spec(session, parent, rerun_in or RerunCreate())
    return _launch(session, spec, response, parent_id=parent.id)


def _launch(
    session: Session,
    experiment_in: ExperimentCreate,
    response: Response,
    parent_id: str | None,
) -> ExperimentPublic:
    if experiment_in.dataset.id is not None:
        shape = uploaded_shape(session, experiment_in)
    else:
        shape = builtin_shape(experiment_in)
    check_runnable(experiment_in, get_settings(), shape)
    experiment = service.create_experiment(session, experiment_in, parent_id)
    session.commit()

    run_ids = service.queued_run_ids(session, experiment.id)
    publish_runs(session, experiment.id, experiment.spec, run_ids)
    session.commit()

    response.headers["Location"] = f"/v1/experiments/{experiment.id}"
    return service.read_experiment(session, experiment.id)


@router.get("")
def list_experiments(
    session: SessionDep,
    limit: PageLimit = 20,
    offset: PageOffset = 0,
) -> ExperimentsPublic:
    """Experiments, newest first."""
    data, count = service.list_experiments(session, limit=limit, offset=offset)
    return ExperimentsPublic(data=data, count=count, limit=limit, offset=offset)


@router.get("/{experiment_id}", responses=NOT_FOUND)
def read_experiment(experiment_id: str, session: SessionDep) -> ExperimentPublic:
    """An experiment's status, progress and full normalized spec."""
    return service.read_experiment(session, experiment_id)


@router.post("/{experiment_id}/cancel", responses=NOT_FOUND)
def cancel_experiment(experiment_id: str, session: SessionDep) -> ExperimentPublic:
    """Cancel the runs that have not finished; finished runs keep their results."""
    service.cancel_experiment(session, experiment_id)
    session.commit()
    return service.read_experiment(session, experiment_id)


@router.get("/{experiment_id}/runs", responses=NOT_FOUND)
def read_runs(experiment_id: str, session: SessionDep) -> RunsPublic:
    """Each run: its initializer, repeat, seed, status and final metrics."""
    runs = list_runs(session, experiment_id)
    return RunsPublic(data=runs, count=len(runs))
