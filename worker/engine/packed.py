"""The packed engine: the runs of one plan trained side by side as one model.

Every parameter carries a leading model axis (a kernel is (models, in, out)), so
one batched forward and backward pass per step trains every run of the pack.
The packed objective is the sum of the runs' own mean losses, so each run's
gradient, and its optimizer state, are exactly what they would be alone.
"""

import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import tensorflow as tf

from worker.engine.common import keras_optimizer, layer_initializers
from worker.engine.diagnostics import SUMMARY_WIDTH, layer_metrics, layer_summary
from worker.engine.plan import (
    EpochSink,
    LayerPlan,
    RunPlan,
    SplitData,
    TrainingPlan,
    epoch_order,
)

FLOATX = "float32"
ACCURACY_NAMES = ("accuracy", "acc")
LOSSES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mean_squared_error",
    "mean_absolute_error",
)
OPTIMIZERS = {
    keras.optimizers.SGD: "sgd",
    keras.optimizers.RMSprop: "rmsprop",
    keras.optimizers.Adam: "adam",
}
# Keras options that act on a whole model, or that this engine does not mimic.
UNSUPPORTED_OPTIONS = (
    "weight_decay",
    "use_ema",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)
# Cap on the largest activation tensor of a pack, in elements.
PACK_ELEMENTS = 1 << 26

Tensor = Any
State = tuple[tuple[Tensor, ...], tuple[tuple[Tensor, ...], ...], Tensor]


class UnsupportedPlan(ValueError):
    """The packed engine cannot train this plan; the message says why."""


@dataclass(frozen=True)
class OptimizerConfig:
    """A Keras optimizer's settings, with Keras' defaults filled in."""

    kind: str
    learning_rate: float
    momentum: float = 0.0
    nesterov: bool = False
    rho: float = 0.9
    epsilon: float = 1e-7
    centered: bool = False
    beta_1: float = 0.9
    beta_2: float = 0.999
    amsgrad: bool = False
    clipnorm: float | None = None
    global_clipnorm: float | None = None
    clipvalue: float | None = None

    @property
    def slots(self) -> tuple[str, ...]:
        """The per-parameter state this optimizer keeps, in a fixed order."""
        if self.kind == "sgd":
            return ("momentum",) if self.momentum != 0 else ()
        if self.kind == "rmsprop":
            names = ["velocity"]
            names += ["momentum"] if self.momentum > 0 else []
            names += ["average_gradient"] if self.centered else []
            return tuple(names)
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())


@dataclass(frozen=True)
class PackSpec:
    """Everything the compiled epoch depends on except the pack size."""

    widths: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    accuracy: str | None
    optimizer: OptimizerConfig
    batch_size: int
    n_train: int
    n_val: int
    y_width: int
    jit_compile: bool
    diagnostics: bool

    @property
    def pack_size(self) -> int:
        # Validation, and diagnostics, pass every row of a split at once.
        rows = max(self.n_val, self.batch_size)
        if self.diagnostics:
            rows = max(rows, self.n_train)
        return max(1, PACK_ELEMENTS // (rows * max(self.widths)))


def supports(plan: TrainingPlan) -> str | None:
    """None when `train_packed` can run the plan, else the reason it cannot."""
    try:
        _check_plan(plan)
    except UnsupportedPlan as exc:
        return str(exc)
    return None


def train_packed(
    plan: TrainingPlan,
    runs: Sequence[RunPlan],
    data: SplitData,
    on_epoch: EpochSink,
    *,
    jit_compile: bool | None = None,
) -> None:
    """Train the runs together, in packs; each learns as it would alone.

    `jit_compile` None compiles the epoch with XLA where a GPU is visible.
    """
    spec = pack_spec(plan, data, jit_compile)
    tensors = _data_tensors(data)
    size = spec.pack_size
    for start in range(0, len(runs), size):
        pack = runs[start : start + size]
        _train_pack(spec, plan, pack, tensors, _offset_sink(on_epoch, start))


def pack_spec(
    plan: TrainingPlan, data: SplitData, jit_compile: bool | None = None
) -> PackSpec:
    _check_plan(plan)
    y_width = 1 if data.y_train.ndim == 1 else int(data.y_train.shape[1])
    _check_labels(plan, y_width)
    if jit_compile is None:
        jit_compile = bool(tf.config.list_logical_devices("GPU"))
    return PackSpec(
        widths=(data.n_features, *(layer.units for layer in plan.layers)),
        activations=tuple(layer.activation for layer in plan.layers),
        loss=_loss_name(plan.loss),
        accuracy=_accuracy_kind(plan, data),
        optimizer=optimizer_config(plan.optimizer),
        batch_size=plan.batch_size,
        n_train=len(data.x_train),
        n_val=len(data.x_val),
        y_width=y_width,
        jit_compile=jit_compile,
        diagnostics=plan.diagnostics,
    )


def _check_plan(plan: TrainingPlan) -> None:
    if not plan.layers:
        raise UnsupportedPlan("the plan has no layers")
    if plan.batch_size < 1:
        raise UnsupportedPlan(f"batch size must be positive, got {plan.batch_size}")
    for layer in plan.layers:
        if layer.units < 1:
            raise UnsupportedPlan(f"a layer needs at least one unit, got {layer}")
        if not layer.use_bias:
            raise UnsupportedPlan("layers without a bias are not supported")
        _activation(layer.activation)
    _loss_name(plan.loss)
    unknown = [name for name in plan.metrics if name not in ACCURACY_NAMES]
    if unknown:
        raise UnsupportedPlan(f"only the accuracy metric is supported, got {unknown}")
    optimizer_config(plan.optimizer)


def _check_labels(plan: TrainingPlan, y_width: int) -> None:
    units = plan.layers[-1].units
    loss = _loss_name(plan.loss)
    if loss == "sparse_categorical_crossentropy" and y_width != 1:
        raise ValueError(f"{loss} needs one integer label per row, got {y_width}")
    if loss == "categorical_crossentropy" and y_width != units:
        raise ValueError(f"{loss} needs {units} one-hot columns, got {y_width}")


def _activation(name: str) -> Callable[[Tensor], Tensor]:
    try:
        function: Callable[[Tensor], Tensor] = keras.activations.get(name)
    except ValueError as exc:
        raise UnsupportedPlan(f"unknown activation {name!r}") from exc
    return function


def _loss_name(loss: str) -> str:
    try:
        function = keras.losses.get(loss)
    except ValueError as exc:
        raise UnsupportedPlan(f"unknown loss {loss!r}") from exc
    name = getattr(function, "__name__", "")
    if name not in LOSSES or getattr(keras.losses, name) is not function:
        raise UnsupportedPlan(f"loss {loss!r} is not one of {', '.join(LOSSES)}")
    return str(name)


def _accuracy_kind(plan: TrainingPlan, data: SplitData) -> str | None:
    """Which accuracy Keras picks for "accuracy", from the shapes it sees."""
    if not plan.metrics:
        return None
    units = plan.layers[-1].units
    y_last = 1 if data.y_train.ndim == 1 else data.y_train.shape[-1]
    if units == 1:
        return "binary"
    if data.y_train.ndim < 2 or y_last == 1:
        return "sparse"
    return "categorical"


def optimizer_config(spec: str | Mapping[str, Any]) -> OptimizerConfig:
    try:
        optimizer = keras_optimizer(spec)
    except (ValueError, TypeError, KeyError) as exc:
        raise UnsupportedPlan(f"cannot make optimizer {spec!r}: {exc}") from exc
    kind = OPTIMIZERS.get(type(optimizer))
    if kind is None:
        supported = ", ".join(OPTIMIZERS.values())
        raise UnsupportedPlan(f"optimizer {spec!r} is not one of {supported}")
    config = optimizer.get_config()
    used = [key for key in UNSUPPORTED_OPTIONS if config.get(key)]
    if used:
        raise UnsupportedPlan(f"optimizer options not supported: {used}")
    if not isinstance(config["learning_rate"], float):
        raise UnsupportedPlan("learning rate schedules are not supported")
    fields = OptimizerConfig.__dataclass_fields__
    return OptimizerConfig(
        kind=kind, **{key: config[key] for key in fields if key in config}
    )


def _offset_sink(on_epoch: EpochSink, offset: int) -> EpochSink:
    def sink(index: int, epoch: int, metrics: dict[str, float]) -> bool:
        return on_epoch(offset + index, epoch, metrics)

    return sink


def _data_tensors(data: SplitData) -> tuple[Tensor, ...]:
    arrays = (data.x_train, data.y_train, data.x_val, data.y_val)
    return tuple(
        tf.constant(array.reshape(len(array), -1), dtype=FLOATX) for array in arrays
    )


def _train_pack(
    spec: PackSpec,
    plan: TrainingPlan,
    runs: Sequence[RunPlan],
    tensors: tuple[Tensor, ...],
    on_epoch: EpochSink,
) -> None:
    epoch_fn = compiled_epoch(spec)
    params, slots, iterations = initial_state(spec, runs, plan.layers)
    columns = _metric_columns(plan)
    active = np.ones(len(runs), dtype=bool)
    with ThreadPoolExecutor(max_workers=1) as pool:
        orders = _orders_later(pool, runs, 0, spec.n_train)
        for epoch in range(plan.epochs):
            order = tf.constant(orders.result())
            if epoch + 1 < plan.epochs:
                orders = _orders_later(pool, runs, epoch + 1, spec.n_train)
            params, slots, iterations, metrics, summaries = epoch_fn(
                params, slots, iterations, order, *tensors
            )
            extra = _diagnostics(plan, params, summaries) if spec.diagnostics else None
            _report(on_epoch, epoch, columns, metrics.numpy(), active, extra)
            if not active.any():
                break


def _orders_later(
    pool: ThreadPoolExecutor, runs: Sequence[RunPlan], epoch: int, n_rows: int
) -> Future[npt.NDArray[np.int32]]:
    """The pack's epoch orders, made while the previous epoch trains."""
    return pool.submit(epoch_orders, runs, epoch, n_rows)


def epoch_orders(
    runs: Sequence[RunPlan], epoch: int, n_rows: int
) -> npt.NDArray[np.int32]:
    orders = np.empty((len(runs), n_rows), dtype=np.int32)
    for index, run in enumerate(runs):
        orders[index] = epoch_order(run.seed, epoch, n_rows)
    return orders


def _metric_columns(plan: TrainingPlan) -> list[tuple[str, int]]:
    """Each reported name and its column in (loss, acc, val_loss, val_acc)."""
    columns = [("loss", 0), ("val_loss", 2)]
    for name in plan.metrics:
        columns += [(name, 1), (f"val_{name}", 3)]
    return columns


def _report(
    on_epoch: EpochSink,
    epoch: int,
    columns: list[tuple[str, int]],
    values: npt.NDArray[np.float32],
    active: npt.NDArray[np.bool_],
    diagnostics: list[dict[str, float]] | None = None,
) -> None:
    """Hand each still active run its metrics; note the runs told to stop."""
    for index in np.flatnonzero(active):
        row = values[index]
        metrics = {name: float(row[column]) for name, column in columns}
        if diagnostics is not None:
            metrics.update(diagnostics[index])
        if not on_epoch(int(index), epoch, metrics):
            active[index] = False


def _diagnostics(
    plan: TrainingPlan, params: tuple[Tensor, ...], summaries: Tensor
) -> list[dict[str, float]]:
    """Each run's per-layer diagnostics from the pack's end-of-epoch state."""
    return layer_metrics(
        [layer.activation for layer in plan.layers],
        [params[2 * layer].numpy() for layer in range(len(plan.layers))],
        [params[2 * layer + 1].numpy() for layer in range(len(plan.layers))],
        summaries.numpy(),
    )


def initial_state(
    spec: PackSpec, runs: Sequence[RunPlan], layers: Sequence[LayerPlan]
) -> State:
    """Each run's initial weights, made exactly as Keras' Dense makes them."""
    shapes = list(zip(spec.widths, spec.widths[1:], strict=False))
    values: list[list[npt.NDArray[np.float32]]] = [[] for _ in range(2 * len(shapes))]
    for run in runs:
        for layer, shape in enumerate(shapes):
            kernel_init, bias_init = layer_initializers(run, layer, layers[layer])
            values[2 * layer].append(np.asarray(kernel_init(shape=shape, dtype=FLOATX)))
            bias = bias_init(shape=(shape[1],), dtype=FLOATX)
            values[2 * layer + 1].append(np.asarray(bias))
    params = tuple(tf.constant(np.stack(stack)) for stack in values)
    slots = tuple(
        tuple(tf.zeros_like(param) for param in params) for _ in spec.optimizer.slots
    )
    return params, slots, tf.constant(0, dtype=tf.int64)


@functools.lru_cache(maxsize=64)
def compiled_epoch(spec: PackSpec) -> Callable[..., Any]:
    """One epoch for a whole pack as one TensorFlow function, any pack size."""
    model = _PackedModel(spec)
    param_specs = tuple(
        tf.TensorSpec([None, *shape], FLOATX) for shape in model.param_shapes
    )
    signature = (
        param_specs,
        tuple(param_specs for _ in spec.optimizer.slots),
        tf.TensorSpec([], tf.int64),
        tf.TensorSpec([None, spec.n_train], tf.int32),
        tf.TensorSpec([spec.n_train, spec.widths[0]], FLOATX),
        tf.TensorSpec([spec.n_train, spec.y_width], FLOATX),
        tf.TensorSpec([spec.n_val, spec.widths[0]], FLOATX),
        tf.TensorSpec([spec.n_val, spec.y_width], FLOATX),
    )
    epoch: Callable[..., Any] = tf.function(
        model.epoch, input_signature=signature, jit_compile=spec.jit_compile
    )
    return epoch


class _PackedModel:
    """A pack's forward pass, training step and validation, as TensorFlow ops."""

    def __init__(self, spec: PackSpec) -> None:
        self.spec = spec
        self.activations = [_activation(name) for name in spec.activations]
        self.loss_fn: Callable[[Tensor, Tensor], Tensor] = getattr(
            keras.losses, spec.loss
        )
        pairs = zip(spec.widths, spec.widths[1:], strict=False)
        self.param_shapes = [
            shape for fan_in, units in pairs for shape in ((fan_in, units), (units,))
        ]

    def epoch(
        self,
        params: tuple[Tensor, ...],
        slots: tuple[tuple[Tensor, ...], ...],
        iterations: Tensor,
        order: Tensor,
        x_train: Tensor,
        y_train: Tensor,
        x_val: Tensor,
        y_val: Tensor,
    ) -> tuple[Tensor, ...]:
        """Train every model of the pack one epoch, each in its own row order.

        Returns the new state; per model, (loss, accuracy, val_loss,
        val_accuracy) as Keras' History reports them; and per model and layer
        the diagnostic summary (no layers when diagnostics are off).
        """
        size, n_train = self.spec.batch_size, self.spec.n_train
        steps = n_train // size
        models = tf.shape(order)[0]
        head = tf.reshape(order[:, : steps * size], [models, steps, size])
        batches = tf.transpose(head, [1, 0, 2])

        def body(step: Tensor, state: State, totals: Tensor) -> tuple[Any, ...]:
            state, stats = self.train_step(state, batches[step], x_train, y_train)
            return step + 1, state, totals + stats

        _, state, totals = tf.while_loop(
            lambda step, *_: step < steps,
            body,
            (tf.constant(0), (params, slots, iterations), tf.zeros([models, 2])),
        )
        if n_train % size:
            tail = order[:, steps * size :]
            state, stats = self.train_step(state, tail, x_train, y_train)
            totals = totals + stats
        params, slots, iterations = state
        train = tf.math.divide_no_nan(totals, float(n_train))
        metrics = tf.concat([train, self.validate(params, x_val, y_val)], axis=1)
        if self.spec.diagnostics:
            summaries = self.diagnose(params, x_train, y_train)
        else:
            summaries = tf.zeros([models, 0, SUMMARY_WIDTH])
        return params, slots, iterations, metrics, summaries

    def train_step(
        self, state: State, rows: Tensor, x_train: Tensor, y_train: Tensor
    ) -> tuple[State, Tensor]:
        """One optimizer step per model on its (models, batch) rows."""
        params, slots, iterations = state
        x = tf.gather(x_train, rows)
        y = tf.gather(y_train, rows)
        with tf.GradientTape() as tape:
            tape.watch(params)
            y_pred = self.forward(params, x)
            losses = self.mean_losses(y, y_pred)
            objective = tf.reduce_sum(losses)
        grads = clip_gradients(self.spec.optimizer, tape.gradient(objective, params))
        params, slots = apply_gradients(
            self.spec.optimizer, params, grads, slots, iterations
        )
        # What Keras' trackers add up: the batch loss weighted by batch size,
        # and the count of correct predictions.
        batch = float(rows.shape[1])
        stats = tf.stack([losses * batch, self.correct(y, y_pred)], axis=1)
        return (params, slots, iterations + 1), stats

    def forward(self, params: tuple[Tensor, ...], x: Tensor) -> Tensor:
        """Dense layers on (models, rows, features), or on shared (1, rows, ...)."""
        return self.layer_outputs(params, x)[-1]

    def layer_outputs(self, params: tuple[Tensor, ...], x: Tensor) -> list[Tensor]:
        """Every layer's output, after its activation."""
        outputs = []
        h = x
        for layer, activation in enumerate(self.activations):
            kernel, bias = params[2 * layer], params[2 * layer + 1]
            h = activation(tf.matmul(h, kernel) + bias[:, None, :])
            outputs.append(h)
        return outputs

    def diagnose(
        self, params: tuple[Tensor, ...], x_train: Tensor, y_train: Tensor
    ) -> Tensor:
        """Per model and layer, the diagnostic summary on the training split:
        one full forward and backward pass with the end-of-epoch weights."""
        kernels = params[::2]
        with tf.GradientTape() as tape:
            tape.watch(kernels)
            outputs = self.layer_outputs(params, x_train[None])
            y_pred = outputs[-1]
            y = tf.broadcast_to(
                y_train[None],
                [tf.shape(y_pred)[0], self.spec.n_train, self.spec.y_width],
            )
            objective = tf.reduce_sum(self.mean_losses(y, y_pred))
        gradients = tape.gradient(objective, kernels)
        summaries = [
            layer_summary(output, gradient)
            for output, gradient in zip(outputs, gradients, strict=True)
        ]
        return tf.stack(summaries, axis=1)

    def mean_losses(self, y: Tensor, y_pred: Tensor) -> Tensor:
        """Each model's loss over its rows, reduced as Keras' sum_over_batch_size."""
        per_row = self.loss_fn(y, y_pred)
        rows = tf.cast(tf.shape(per_row)[1], FLOATX)
        return tf.math.divide_no_nan(tf.reduce_sum(per_row, axis=1), rows)

    def correct(self, y: Tensor, y_pred: Tensor) -> Tensor:
        """Per model, how many rows the accuracy metric counts as right."""
        kind = self.spec.accuracy
        if kind is None:
            return tf.zeros(tf.shape(y_pred)[:1])
        if kind == "binary":
            hits = tf.reduce_mean(keras.metrics.binary_accuracy(y, y_pred), axis=-1)
        elif kind == "sparse":
            hits = keras.metrics.sparse_categorical_accuracy(y, y_pred)
        else:
            hits = keras.metrics.categorical_accuracy(y, y_pred)
        return tf.reduce_sum(hits, axis=1)

    def validate(
        self, params: tuple[Tensor, ...], x_val: Tensor, y_val: Tensor
    ) -> Tensor:
        """(val_loss, val_accuracy) per model on the whole held-out split."""
        n_val = self.spec.n_val
        y_pred = self.forward(params, x_val[None])
        y = tf.broadcast_to(
            y_val[None], [tf.shape(y_pred)[0], n_val, self.spec.y_width]
        )
        loss = self.batched_mean(self.loss_fn(y, y_pred))
        accuracy = tf.math.divide_no_nan(self.correct(y, y_pred), float(n_val))
        return tf.stack([loss, accuracy], axis=1)

    def batched_mean(self, per_row: Tensor) -> Tensor:
        """The mean as Keras' evaluate forms it: batch means weighted by size."""
        size, n_rows = self.spec.batch_size, self.spec.n_val
        full = n_rows // size
        head = tf.reshape(per_row[:, : full * size], [tf.shape(per_row)[0], full, size])
        total = tf.reduce_sum(_weighted_batch_mean(head, size), axis=1)
        if n_rows % size:
            tail = per_row[:, full * size :][:, None, :]
            total = total + _weighted_batch_mean(tail, n_rows % size)[:, 0]
        return tf.math.divide_no_nan(total, float(n_rows))


def _weighted_batch_mean(batches: Tensor, size: int) -> Tensor:
    mean = tf.math.divide_no_nan(tf.reduce_sum(batches, axis=2), float(size))
    return mean * float(size)


def clip_gradients(config: OptimizerConfig, grads: Sequence[Tensor]) -> list[Tensor]:
    """Keras' gradient clipping, with every norm taken per model."""
    if config.clipnorm and config.clipnorm > 0:
        return [tf.clip_by_norm(g, config.clipnorm, axes=_model_axes(g)) for g in grads]
    if config.global_clipnorm and config.global_clipnorm > 0:
        return _clip_by_global_norm(grads, config.global_clipnorm)
    if config.clipvalue and config.clipvalue > 0:
        limit = config.clipvalue
        return [tf.clip_by_value(g, -limit, limit) for g in grads]
    return list(grads)


def _model_axes(tensor: Tensor) -> list[int]:
    return list(range(1, tensor.shape.rank))


def _clip_by_global_norm(grads: Sequence[Tensor], clip_norm: float) -> list[Tensor]:
    squares = [tf.reduce_sum(tf.square(g), axis=_model_axes(g)) for g in grads]
    norm = tf.sqrt(tf.reduce_sum(tf.stack(squares), axis=0))
    scale = clip_norm * tf.minimum(1.0 / norm, 1.0 / clip_norm)
    # As in Keras: a norm that is not finite makes the scale NaN.
    scale = scale + (norm - norm)
    return [g * tf.reshape(scale, [-1] + [1] * (g.shape.rank - 1)) for g in grads]


def apply_gradients(
    config: OptimizerConfig,
    params: tuple[Tensor, ...],
    grads: Sequence[Tensor],
    slots: tuple[tuple[Tensor, ...], ...],
    iterations: Tensor,
) -> tuple[tuple[Tensor, ...], tuple[tuple[Tensor, ...], ...]]:
    """One optimizer step for every parameter; `iterations` counts past steps."""
    update = UPDATES[config.kind]
    new_params = []
    new_slots: list[list[Tensor]] = [[] for _ in config.slots]
    for index, (param, grad) in enumerate(zip(params, grads, strict=True)):
        state = {name: slots[k][index] for k, name in enumerate(config.slots)}
        param, state = update(config, param, grad, state, iterations)
        new_params.append(param)
        for k, name in enumerate(config.slots):
            new_slots[k].append(state[name])
    return tuple(new_params), tuple(tuple(values) for values in new_slots)


Slots = dict[str, Tensor]


def sgd_update(
    config: OptimizerConfig, param: Tensor, grad: Tensor, slots: Slots, _: Tensor
) -> tuple[Tensor, Slots]:
    lr = tf.constant(config.learning_rate, FLOATX)
    if config.momentum == 0:
        return param - grad * lr, slots
    momentum = tf.constant(config.momentum, FLOATX)
    velocity = slots["momentum"] * momentum - grad * lr
    if config.nesterov:
        return param + (velocity * momentum - grad * lr), {"momentum": velocity}
    return param + velocity, {"momentum": velocity}


def rmsprop_update(
    config: OptimizerConfig, param: Tensor, grad: Tensor, slots: Slots, _: Tensor
) -> tuple[Tensor, Slots]:
    lr = tf.constant(config.learning_rate, FLOATX)
    rho = config.rho
    velocity = rho * slots["velocity"] + (1 - rho) * tf.square(grad)
    new_slots = {"velocity": velocity}
    if config.centered:
        average = rho * slots["average_gradient"] + (1 - rho) * grad
        new_slots["average_gradient"] = average
        denominator = velocity - tf.square(average) + config.epsilon
    else:
        denominator = velocity + config.epsilon
    increment = (lr * grad) / tf.sqrt(denominator)
    if config.momentum > 0:
        momentum = config.momentum * slots["momentum"] + increment
        new_slots["momentum"] = momentum
        return param - momentum, new_slots
    return param - increment, new_slots


def adam_update(
    config: OptimizerConfig, param: Tensor, grad: Tensor, slots: Slots, step: Tensor
) -> tuple[Tensor, Slots]:
    lr = tf.constant(config.learning_rate, FLOATX)
    local_step = tf.cast(step + 1, FLOATX)
    beta_1_power = tf.pow(tf.constant(config.beta_1, FLOATX), local_step)
    beta_2_power = tf.pow(tf.constant(config.beta_2, FLOATX), local_step)
    alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m = slots["momentum"] + (grad - slots["momentum"]) * (1 - config.beta_1)
    v = slots["velocity"] + (tf.square(grad) - slots["velocity"]) * (1 - config.beta_2)
    new_slots = {"momentum": m, "velocity": v}
    if config.amsgrad:
        v = tf.maximum(slots["velocity_hat"], v)
        new_slots["velocity_hat"] = v
    return param - (m * alpha) / (tf.sqrt(v) + config.epsilon), new_slots


Update = Callable[
    [OptimizerConfig, Tensor, Tensor, Slots, Tensor], tuple[Tensor, Slots]
]
UPDATES: dict[str, Update] = {
    "sgd": sgd_update,
    "rmsprop": rmsprop_update,
    "adam": adam_update,
}
