"""Per-layer training diagnostics, defined once for every engine.

An engine hands over, per Dense layer and with a leading model axis, the
end-of-epoch kernel and bias and a summary of the layer's outputs and kernel
gradient on the whole training split (`output_summary`, `gradient_norm`).
`layer_metrics` turns them into each run's metric keys:

- `layer{i}_weight_norm`, `layer{i}_weight_std`: L2 norm and standard deviation
  of the kernel's entries;
- `layer{i}_grad_norm`: L2 norm of the gradient of the mean training loss with
  respect to the kernel;
- `layer{i}_act_mean`, `layer{i}_act_std`: mean and standard deviation of the
  layer's outputs (after its activation) over every training row and unit;
- `layer{i}_dead_fraction`: the share of units whose output is <= 0 on every
  training row, for activations that clamp to zero;
- `layer{i}_symmetric`: 1.0 when a layer of two or more units has every unit
  alike (the same kernel column and bias), which training cannot undo.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

# Activations whose output is exactly zero, with a zero gradient, on a whole
# region of inputs, so that a unit can stop learning for good.
CLAMPING_ACTIVATIONS = frozenset({"relu", "relu6", "hard_sigmoid"})
SYMMETRY_ATOL = 1e-6
SYMMETRY_RTOL = 1e-5
# Columns of the per-layer summary that engines compute in TensorFlow.
GRAD_NORM, ACT_MEAN, ACT_STD, DEAD_FRACTION = range(4)
SUMMARY_WIDTH = 4

Tensor = Any
Array = npt.NDArray[Any]


def output_summary(outputs: Tensor) -> Tensor:
    """(mean, std, dead fraction) per model of (models, rows, units) outputs."""
    mean = tf.reduce_mean(outputs, axis=[1, 2])
    centered = outputs - mean[:, None, None]
    std = tf.sqrt(tf.reduce_mean(tf.square(centered), axis=[1, 2]))
    dead = tf.cast(tf.reduce_max(outputs, axis=1) <= 0, outputs.dtype)
    return tf.stack([mean, std, tf.reduce_mean(dead, axis=1)], axis=1)


def gradient_norm(gradient: Tensor) -> Tensor:
    """The L2 norm per model of a (models, in, units) kernel gradient."""
    return tf.sqrt(tf.reduce_sum(tf.square(gradient), axis=[1, 2]))


def layer_summary(outputs: Tensor, gradient: Tensor) -> Tensor:
    """A layer's (models, SUMMARY_WIDTH) columns, in the order named above."""
    return tf.concat(
        [gradient_norm(gradient)[:, None], output_summary(outputs)], axis=1
    )


def symmetric(kernel: Array, bias: Array | None) -> npt.NDArray[np.bool_]:
    """Per model: every unit's kernel column and bias equal the first unit's."""
    same = _alike(kernel, kernel[:, :, :1]).all(axis=(1, 2))
    if bias is not None:
        same &= _alike(bias, bias[:, :1]).all(axis=1)
    return np.asarray(same)


def _alike(a: Array, b: Array) -> npt.NDArray[np.bool_]:
    return np.asarray(np.isclose(a, b, rtol=SYMMETRY_RTOL, atol=SYMMETRY_ATOL))


def layer_metrics(
    activations: Sequence[str],
    kernels: Sequence[Array],
    biases: Sequence[Array | None],
    summaries: Array,
) -> list[dict[str, float]]:
    """Each model's diagnostic metrics.

    `kernels[i]` is (models, in, units), `biases[i]` (models, units) or None,
    and `summaries` (models, layers, SUMMARY_WIDTH) from `layer_summary`.
    """
    models = len(summaries)
    metrics: list[dict[str, float]] = [{} for _ in range(models)]
    for index, activation in enumerate(activations):
        kernel = np.asarray(kernels[index], dtype=np.float64)
        columns: dict[str, Array] = {
            "weight_norm": np.sqrt(np.sum(np.square(kernel), axis=(1, 2))),
            "weight_std": np.std(kernel, axis=(1, 2)),
            "grad_norm": summaries[:, index, GRAD_NORM],
            "act_mean": summaries[:, index, ACT_MEAN],
            "act_std": summaries[:, index, ACT_STD],
        }
        # Counts and flags of weights or outputs that are no longer numbers
        # (a diverged run) are unknown, not zero.
        broken = ~np.isfinite(kernel).all(axis=(1, 2)) | ~np.isfinite(
            summaries[:, index, ACT_MEAN]
        )
        if activation in CLAMPING_ACTIVATIONS:
            dead = summaries[:, index, DEAD_FRACTION]
            columns["dead_fraction"] = np.where(broken, np.nan, dead)
        if kernel.shape[2] >= 2:
            bias = biases[index]
            alike = symmetric(
                kernel, None if bias is None else np.asarray(bias, dtype=np.float64)
            )
            columns["symmetric"] = np.where(broken, np.nan, alike.astype(np.float64))
        for name, values in columns.items():
            key = f"layer{index}_{name}"
            for model, value in enumerate(values.tolist()):
                metrics[model][key] = float(value)
    return metrics
