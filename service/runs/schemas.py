"""Response bodies for runs and their per-epoch history."""

from datetime import datetime

from pydantic import BaseModel

from service.db.models import RunStatus

MetricValues = dict[str, float | None]


class RunPublic(BaseModel):
    id: str
    experiment_id: str
    position: int
    initializer: str
    repeat: int
    seed: int
    status: RunStatus
    attempts: int
    epochs_done: int
    final_metrics: MetricValues | None
    diverged: bool
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int


class HistoryPoint(BaseModel):
    run_id: str
    initializer: str
    repeat: int
    epoch: int
    metrics: MetricValues


class HistoryPage(BaseModel):
    experiment_id: str
    points: list[HistoryPoint]
