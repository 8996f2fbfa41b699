"""Names the API accepts, kept in step with Keras by tests (the API never
imports Keras: TensorFlow lives in worker processes only)."""

from dataclasses import dataclass
from typing import Any

INITIALIZERS = (
    "zeros",
    "ones",
    "constant",
    "random_uniform",
    "random_normal",
    "truncated_normal",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "identity",
    "variance_scaling",
    "uniform",
    "normal",
)

ACTIVATIONS = (
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "sigmoid",
    "hard_sigmoid",
    "log_sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "exponential",
)

OPTIMIZERS = (
    "sgd",
    "rmsprop",
    "adam",
    "adamw",
    "adagrad",
    "adadelta",
    "adamax",
    "nadam",
)

LOSSES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mse",
    "mae",
)

# What the packed engine reproduces exactly; other optimizers run on Keras' fit.
PACKED_OPTIMIZERS = ("sgd", "rmsprop", "adam")

METRICS = ("accuracy", "auc", "mse", "mae")
# The losses each metric makes sense with; accuracy goes with every loss.
METRIC_LOSSES = {
    "auc": ("binary_crossentropy",),
    "mse": ("mse", "mae"),
    "mae": ("mse", "mae"),
}
PACKED_METRICS = ("accuracy",)


def packed_blocker(spec: dict[str, Any]) -> str | None:
    """Why the packed engine cannot train a spec (as stored), or None when it
    can: the same decision as worker.engine.packed.supports."""
    optimizer = spec["optimizer"]
    name = optimizer if isinstance(optimizer, str) else str(optimizer["name"])
    if name not in PACKED_OPTIMIZERS:
        return f"it trains with {', '.join(PACKED_OPTIMIZERS)}, not {name!r}"
    others = [metric for metric in spec["metrics"] if metric not in PACKED_METRICS]
    if others:
        return f"it reports only {', '.join(PACKED_METRICS)}, not {others!r}"
    if not all(layer.get("use_bias", True) for layer in spec["model"]["layers"]):
        return "it trains only layers with a bias (use_bias true)"
    return None


@dataclass(frozen=True)
class DatasetShape:
    """Rows, feature columns and classes of a dataset; 0 classes is regression."""

    rows: int
    features: int
    classes: int


DATASET_SHAPES = {
    "uci:banknote": DatasetShape(rows=1372, features=4, classes=2),
    "sklearn:breast_cancer": DatasetShape(rows=569, features=30, classes=2),
    "sklearn:iris": DatasetShape(rows=150, features=4, classes=3),
    "sklearn:wine": DatasetShape(rows=178, features=13, classes=3),
    "sklearn:digits": DatasetShape(rows=1797, features=64, classes=10),
    "sklearn:diabetes": DatasetShape(rows=442, features=10, classes=0),
}
DATASETS = tuple(DATASET_SHAPES)

CLASSIFICATION_LOSSES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
