"""History: per-epoch points, read whole or incrementally by cursor."""

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from service.errors import SpecError
from service.runs.schemas import EXPERIMENT_ID, POINT_EXAMPLE, MetricValues


class HistoryPoint(BaseModel):
    run_id: str
    initializer: str
    repeat: int
    epoch: int
    metrics: MetricValues

    model_config = ConfigDict(json_schema_extra={"examples": [POINT_EXAMPLE]})


class HistoryPage(BaseModel):
    experiment_id: str
    points: list[HistoryPoint]
    cursor: int
    """Pass as `since` to get what was written after this page."""
    has_more: bool
    reset_runs: list[str]
    """Runs retrained from scratch since `since`: drop their earlier points."""
    diverged_runs: list[str]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "experiment_id": EXPERIMENT_ID,
                    "points": [POINT_EXAMPLE],
                    "cursor": 125,
                    "has_more": False,
                    "reset_runs": [],
                    "diverged_runs": [],
                }
            ]
        }
    )


def _names(values: list[str] | None) -> list[str] | None:
    """Names from repeated or comma-separated values, each once; none given
    (or only empty ones) means no filter."""
    if values is None:
        return None
    names = [part.strip() for value in values for part in value.split(",")]
    return list(dict.fromkeys(name for name in names if name)) or None


MAX_PAGE = 10_000


class HistoryQuery:
    """The query parameters every history endpoint takes."""

    def __init__(
        self,
        since: Annotated[
            int, Query(ge=0, le=2**62, description="a cursor from an earlier page")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 2000,
        metrics: Annotated[
            list[str] | None,
            Query(description="comma-separated or repeated, e.g. loss,val_loss"),
        ] = None,
        initializers: Annotated[
            list[str] | None,
            Query(
                description=(
                    "initializer labels, comma-separated or the parameter "
                    "repeated; a label that itself holds commas is taken whole"
                )
            ),
        ] = None,
        runs: Annotated[
            list[str] | None, Query(description="run ids, comma-separated or repeated")
        ] = None,
        epoch_from: Annotated[int | None, Query(ge=0, le=2**31)] = None,
        epoch_to: Annotated[int | None, Query(ge=0, le=2**31)] = None,
        max_points: Annotated[
            int | None,
            Query(
                ge=2,
                le=MAX_PAGE,
                description=(
                    "at most this many points per run, keeping its first and last "
                    "epoch and each metric's extremes"
                ),
            ),
        ] = None,
    ) -> None:
        self.since = since
        self.limit = limit
        self.metrics = _names(metrics)
        values = [value for value in initializers or [] if value.strip()]
        self.initializers = values or None
        self.runs = _names(runs)
        if epoch_from is not None and epoch_to is not None and epoch_from > epoch_to:
            raise SpecError(
                "epoch_to", epoch_to, f"is before epoch_from={epoch_from}", "query"
            )
        self.epoch_from = epoch_from
        self.epoch_to = epoch_to
        self.max_points = max_points

    def key(self) -> str:
        """What, besides the data, decides the response (for its ETag)."""
        parts: list[Any] = [
            self.since,
            self.limit,
            self.metrics,
            self.initializers,
            self.runs,
            self.epoch_from,
            self.epoch_to,
            self.max_points,
        ]
        return repr(parts)
