"""From a stored experiment spec to the plain plans that engines take."""

from typing import Any

from service.db.models import Run
from worker.engine.plan import InitializerRef, LayerPlan, RunPlan, TrainingPlan


def initializer_ref(spec: dict[str, Any] | None) -> InitializerRef | None:
    if spec is None:
        return None
    return InitializerRef(name=str(spec["name"]), config=dict(spec.get("config") or {}))


def layer_plan(layer: dict[str, Any]) -> LayerPlan:
    return LayerPlan(
        units=int(layer["units"]),
        activation=str(layer["activation"]),
        use_bias=bool(layer.get("use_bias", True)),
        kernel_initializer=initializer_ref(layer.get("kernel_initializer")),
        bias_initializer=initializer_ref(layer.get("bias_initializer")),
    )


def optimizer_plan(spec: str | dict[str, Any]) -> str | dict[str, Any]:
    return spec if isinstance(spec, str) else dict(spec)


def training_plan(spec: dict[str, Any]) -> TrainingPlan:
    return TrainingPlan(
        layers=tuple(layer_plan(layer) for layer in spec["model"]["layers"]),
        optimizer=optimizer_plan(spec["optimizer"]),
        loss=str(spec["loss"]),
        metrics=tuple(spec["metrics"]),
        batch_size=int(spec["batch_size"]),
        epochs=int(spec["epochs"]),
        diagnostics=bool(spec.get("diagnostics", True)),
    )


def run_plan(spec: dict[str, Any], run: Run) -> RunPlan:
    variant = spec["initializers"][run.variant]
    kernel = initializer_ref(variant)
    assert kernel is not None
    return RunPlan(seed=run.seed, kernel_initializer=kernel)
