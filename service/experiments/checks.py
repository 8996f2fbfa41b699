"""Checks that need more than one field, the dataset or the settings: what
passes here builds and trains, so that no worker meets a spec it cannot run."""

import itertools
import math

from service.catalog import (
    CLASSIFICATION_LOSSES,
    DATASET_SHAPES,
    DatasetShape,
    packed_blocker,
)
from service.config import Settings
from service.errors import SpecError
from service.experiments.schemas import ExperimentCreate
from service.initializers import fits_rank


def builtin_shape(spec: ExperimentCreate) -> DatasetShape:
    assert spec.dataset.source is not None
    return DATASET_SHAPES[spec.dataset.source]


def check_runnable(
    experiment_in: ExperimentCreate, settings: Settings, shape: DatasetShape
) -> None:
    _check_loss(experiment_in, shape)
    _check_output_layer(experiment_in, shape)
    _check_initializer_shapes(experiment_in)
    _check_engine(experiment_in)
    _check_split(experiment_in, shape)
    _check_device(experiment_in, settings)
    _check_size(experiment_in, settings, shape)


def _dataset_name(spec: ExperimentCreate) -> str:
    return spec.dataset.name


def _check_loss(spec: ExperimentCreate, shape: DatasetShape) -> None:
    name = _dataset_name(spec)
    if shape.classes == 0 and spec.loss in CLASSIFICATION_LOSSES:
        raise SpecError(
            "loss",
            spec.loss,
            f"{name} is a regression dataset; use 'mse' or 'mae' with one unit",
        )
    if shape.classes > 2 and spec.loss == "binary_crossentropy":
        raise SpecError(
            "loss",
            spec.loss,
            f"{name} has {shape.classes} classes; use 'categorical_crossentropy' or "
            "'sparse_categorical_crossentropy' with a softmax unit per class",
        )
    if spec.dataset.stratify and shape.classes == 0:
        raise SpecError(
            "dataset.stratify",
            spec.dataset.stratify,
            f"stratifying needs classes, and {name} is a regression dataset",
        )


def _check_output_layer(spec: ExperimentCreate, shape: DatasetShape) -> None:
    classes = shape.classes
    index = len(spec.model.layers) - 1
    output = spec.model.layers[index]
    if spec.loss == "binary_crossentropy":
        wanted, units, activation = "one sigmoid unit", 1, "sigmoid"
    elif spec.loss in {"categorical_crossentropy", "sparse_categorical_crossentropy"}:
        wanted = f"{classes} softmax units, one per class"
        units, activation = classes, "softmax"
    else:
        wanted, units, activation = "one unit", 1, output.activation
    if (output.units, output.activation) != (units, activation):
        raise SpecError(
            f"model.layers.{index}",
            {"units": output.units, "activation": output.activation},
            f"with loss {spec.loss!r} on {_dataset_name(spec)} the output layer "
            f"must have {wanted}",
        )


def _check_initializer_shapes(spec: ExperimentCreate) -> None:
    """Kernels are (inputs, units) matrices and biases vectors; some initializers
    only fill matrices."""
    for index, layer in enumerate(spec.model.layers):
        bias = layer.bias_initializer
        if layer.use_bias and bias is not None and not fits_rank(bias.name, 1):
            raise SpecError(
                f"model.layers.{index}.bias_initializer.name",
                bias.name,
                f"{bias.name} fills only matrices, and a bias is a vector of "
                f"{layer.units} values; use another bias initializer",
            )


def _check_engine(spec: ExperimentCreate) -> None:
    if spec.engine != "packed":
        return
    blocker = packed_blocker(spec.model_dump(mode="json"))
    if blocker is not None:
        raise SpecError(
            "engine",
            spec.engine,
            f"the packed engine cannot train this spec: {blocker}; use engine "
            "'keras' or 'auto'",
        )


def _check_split(spec: ExperimentCreate, shape: DatasetShape) -> None:
    rows = shape.rows
    validation_rows = math.ceil(spec.test_size * rows)
    training_rows = rows - validation_rows
    if training_rows < 1:
        raise SpecError(
            "test_size",
            spec.test_size,
            f"leaves no training rows out of {rows}; "
            f"use at most {(rows - 1) / rows:.5f}",
        )
    if training_rows < spec.batch_size:
        raise SpecError(
            "batch_size",
            spec.batch_size,
            f"is more than the {training_rows} training rows of {_dataset_name(spec)} "
            f"(test_size {spec.test_size} of {rows} rows); use at most {training_rows}",
        )
    if spec.dataset.stratify and min(training_rows, validation_rows) < shape.classes:
        raise SpecError(
            "dataset.stratify",
            spec.dataset.stratify,
            f"a stratified split needs at least {shape.classes} rows (one per class) "
            f"on each side; test_size {spec.test_size} gives {training_rows} "
            f"training and {validation_rows} validation rows",
        )


def _check_device(spec: ExperimentCreate, settings: Settings) -> None:
    if spec.device == "gpu" and settings.embedded_broker:
        raise SpecError(
            "device",
            spec.device,
            "the embedded server has no GPU worker; use 'auto' or 'cpu', or run "
            "GPU workers with a shared broker",
        )


def _check_size(
    spec: ExperimentCreate, settings: Settings, shape: DatasetShape
) -> None:
    runs = len(spec.initializers) * spec.repeats
    if runs > settings.max_runs:
        raise SpecError(
            "repeats",
            spec.repeats,
            f"{len(spec.initializers)} initializers x {spec.repeats} repeats = {runs} "
            f"runs, over the limit of {settings.max_runs}",
        )
    if runs * spec.epochs > settings.max_run_epochs:
        raise SpecError(
            "epochs",
            spec.epochs,
            f"{runs} runs x {spec.epochs} epochs = {runs * spec.epochs} run-epochs, "
            f"over the limit of {settings.max_run_epochs}",
        )
    widths = [shape.features]
    widths += [layer.units for layer in spec.model.layers]
    parameters = sum((a + 1) * b for a, b in itertools.pairwise(widths))
    if parameters > settings.max_parameters:
        raise SpecError(
            "model.layers",
            [layer.units for layer in spec.model.layers],
            f"the model has {parameters} parameters, over the limit of "
            f"{settings.max_parameters}",
        )
