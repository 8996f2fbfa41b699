"""The reference engine: one Keras model per run, trained with `model.fit`."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from worker.engine.common import build_model
from worker.engine.diagnostics import layer_metrics, layer_summary
from worker.engine.plan import EpochSink, RunPlan, SplitData, TrainingPlan, epoch_order


def train_keras(
    plan: TrainingPlan, runs: Sequence[RunPlan], data: SplitData, on_epoch: EpochSink
) -> None:
    """Train each run in turn; its epochs visit rows in `epoch_order`."""
    for index, run in enumerate(runs):
        model = build_model(plan, run, data.n_features)
        for epoch in range(plan.epochs):
            order = epoch_order(run.seed, epoch, len(data.x_train))
            history = model.fit(
                data.x_train[order],
                data.y_train[order],
                batch_size=plan.batch_size,
                epochs=epoch + 1,
                initial_epoch=epoch,
                shuffle=False,
                validation_data=(data.x_val, data.y_val),
                verbose=0,
            )
            metrics = {
                name: float(values[-1]) for name, values in history.history.items()
            }
            if plan.diagnostics:
                metrics.update(diagnostics(model, plan, data))
            if not on_epoch(index, epoch, metrics):
                break


def diagnostics(model: Any, plan: TrainingPlan, data: SplitData) -> dict[str, float]:
    """The model's per-layer diagnostics on the whole training split, with the
    gradient of the loss as Keras computes it in `fit`."""
    x_train = tf.constant(data.x_train)
    kernels = [layer.kernel for layer in model.layers]
    with tf.GradientTape() as tape:
        outputs = []
        h = x_train
        for layer in model.layers:
            h = layer(h)
            outputs.append(h)
        loss = model.compute_loss(y=tf.constant(data.y_train), y_pred=h)
    gradients = tape.gradient(loss, kernels)
    summaries = [
        layer_summary(output[None], gradient[None])
        for output, gradient in zip(outputs, gradients, strict=True)
    ]
    (metrics,) = layer_metrics(
        [layer.activation for layer in plan.layers],
        [np.asarray(layer.kernel)[None] for layer in model.layers],
        [
            np.asarray(layer.bias)[None] if layer.use_bias else None
            for layer in model.layers
        ],
        np.stack([summary.numpy() for summary in summaries], axis=1),
    )
    return metrics
