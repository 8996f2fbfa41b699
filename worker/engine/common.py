"""Keras building blocks that every engine shares, so that runs start alike."""

import inspect
from collections.abc import Mapping
from typing import Any

import keras

from worker.engine.plan import (
    InitializerRef,
    LayerPlan,
    RunPlan,
    TrainingPlan,
    derive_seed,
)

KERNEL, BIAS = 0, 1

# Names the classic Keras 2 lessons use for what Keras 3 calls random_*.
LEGACY_ALIASES = {"uniform": "random_uniform", "normal": "random_normal"}


def initializer_class(name: str) -> Any:
    cls = getattr(keras.initializers, LEGACY_ALIASES.get(name, name), None)
    if not inspect.isclass(cls) or not issubclass(cls, keras.initializers.Initializer):
        raise ValueError(f"not a Keras initializer. Received: name={name!r}")
    return cls


def make_initializer(ref: InitializerRef, seed: int) -> Any:
    """A fresh initializer instance; seeded when its class takes a seed."""
    cls = initializer_class(ref.name)
    config = dict(ref.config)
    if "seed" in inspect.signature(cls.__init__).parameters:
        config["seed"] = seed
    return cls(**config)


def layer_initializers(
    run: RunPlan, layer_index: int, layer: LayerPlan
) -> tuple[Any, Any]:
    """The layer's own initializers where it has them, else the run's."""
    kernel_ref = layer.kernel_initializer or run.kernel_initializer
    bias_ref = layer.bias_initializer or run.bias_initializer
    kernel = make_initializer(kernel_ref, derive_seed(run.seed, layer_index, KERNEL))
    bias = make_initializer(bias_ref, derive_seed(run.seed, layer_index, BIAS))
    return kernel, bias


def keras_optimizer(spec: str | Mapping[str, Any]) -> Any:
    """A Keras optimizer from a name, Keras' own config, or {"name": ..., **params}."""
    if isinstance(spec, Mapping) and "name" in spec and "class_name" not in spec:
        params = {key: value for key, value in spec.items() if key != "name"}
        return type(keras.optimizers.get(spec["name"]))(**params)
    return keras.optimizers.get(spec if isinstance(spec, str) else dict(spec))


def build_model(plan: TrainingPlan, run: RunPlan, n_features: int) -> Any:
    """The run's Keras model, compiled, with its own initial weights."""
    keras.utils.set_random_seed(run.seed)
    layers: list[Any] = [keras.Input(shape=(n_features,))]
    for index, layer in enumerate(plan.layers):
        kernel, bias = layer_initializers(run, index, layer)
        layers.append(
            keras.layers.Dense(
                layer.units,
                activation=layer.activation,
                use_bias=layer.use_bias,
                kernel_initializer=kernel,
                bias_initializer=bias,
            )
        )
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras_optimizer(plan.optimizer),
        loss=plan.loss,
        metrics=list(plan.metrics),
    )
    return model
