"""Names the API accepts, kept in step with Keras by tests (the API never
imports Keras: TensorFlow lives in worker processes only)."""

from dataclasses import dataclass

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

METRICS = ("accuracy",)


@dataclass(frozen=True)
class DatasetShape:
    rows: int
    features: int
    classes: int


DATASET_SHAPES = {"uci:banknote": DatasetShape(rows=1372, features=4, classes=2)}
DATASETS = tuple(DATASET_SHAPES)
