"""Response bodies for runs and their per-epoch history."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from service.db.models import RunStatus

MetricValues = dict[str, float | None]

RUN_ID = "6f1c1b1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f"
EXPERIMENT_ID = "0b7e9d2c-5f4a-4e3b-9c1d-2e3f4a5b6c7d"
METRICS_EXAMPLE = {
    "loss": 0.4587,
    "accuracy": 0.899,
    "val_loss": 0.4555,
    "val_accuracy": 0.8762,
}
RUN_EXAMPLE: Any = {
    "id": RUN_ID,
    "experiment_id": EXPERIMENT_ID,
    "position": 4,
    "initializer": "lecun_uniform",
    "repeat": 0,
    "seed": 1838453871,
    "status": "succeeded",
    "attempts": 1,
    "epochs_done": 5,
    "final_metrics": METRICS_EXAMPLE,
    "diverged": False,
    "error": None,
    "started_at": "2026-12-04T15:24:40Z",
    "finished_at": "2026-12-04T15:24:42Z",
}
POINT_EXAMPLE: Any = {
    "run_id": RUN_ID,
    "initializer": "lecun_uniform",
    "repeat": 0,
    "epoch": 4,
    "metrics": METRICS_EXAMPLE,
}


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

    model_config = ConfigDict(json_schema_extra={"examples": [RUN_EXAMPLE]})


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data": [RUN_EXAMPLE], "count": 1}]}
    )
