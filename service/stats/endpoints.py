from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from service.deps import SessionDep
from service.responses import FastJSONResponse
from service.stats import service
from service.stats.schemas import Aggregate, ExperimentSummary

router = APIRouter(prefix="/v1/experiments", tags=["statistics"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No experiment has this id"}
}


@router.get("/{experiment_id}/aggregate", responses=NOT_FOUND, response_model=Aggregate)
def read_aggregate(experiment_id: str, session: SessionDep) -> Response:
    """Per initializer and epoch, each metric over the repeats: count, mean,
    std, min, max and a 95% confidence interval of the mean."""
    return FastJSONResponse(service.aggregate(session, experiment_id))


@router.get("/{experiment_id}/summary", responses=NOT_FOUND)
def read_summary(
    experiment_id: str,
    session: SessionDep,
    metric: Annotated[
        str | None,
        Query(max_length=100, description="default val_accuracy, or val_loss"),
    ] = None,
    target: Annotated[
        float | None,
        Query(allow_inf_nan=False, description="report epochs to reach this value"),
    ] = None,
    resamples: Annotated[int, Query(ge=100, le=10_000)] = 1000,
    with_reruns: Annotated[
        bool, Query(description="pool the repeats of every rerun of it")
    ] = False,
) -> ExperimentSummary:
    """Initializers ranked by the final metric of their finished repeats, with
    confidence intervals, pairwise Welch tests and effect sizes, epochs to a
    target, and how often each comes first when repeats are resampled."""
    return service.summary(
        session,
        experiment_id,
        metric=metric,
        target=target,
        resamples=resamples,
        with_reruns=with_reruns,
    )
