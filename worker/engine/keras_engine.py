"""The reference engine: one Keras model per run, trained with `model.fit`."""

from collections.abc import Sequence

from worker.engine.common import build_model
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
            if not on_epoch(index, epoch, metrics):
                break
