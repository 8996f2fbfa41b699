"""From a stored experiment spec to the plain plans that engines take."""

from typing import Any

from service.db.models import Run
from worker.engine.plan import InitializerRef, LayerPlan, RunPlan, TrainingPlan


def training_plan(spec: dict[str, Any]) -> TrainingPlan:
    return TrainingPlan(
        layers=tuple(
            LayerPlan(units=int(layer["units"]), activation=str(layer["activation"]))
            for layer in spec["model"]["layers"]
        ),
        optimizer=str(spec["optimizer"]),
        loss=str(spec["loss"]),
        metrics=tuple(spec["metrics"]),
        batch_size=int(spec["batch_size"]),
        epochs=int(spec["epochs"]),
    )


def run_plan(spec: dict[str, Any], run: Run) -> RunPlan:
    variant = spec["initializers"][run.variant]
    return RunPlan(
        seed=run.seed,
        kernel_initializer=InitializerRef(
            name=str(variant["name"]), config=dict(variant.get("config") or {})
        ),
    )
