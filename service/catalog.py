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
