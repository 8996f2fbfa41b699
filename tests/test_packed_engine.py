"""The packed engine trains each run exactly as the Keras engine does."""

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.config import Settings
from worker.datasets import load_table, split
from worker.engine import packed
from worker.engine.common import build_model
from worker.engine.keras_engine import train_keras
from worker.engine.packed import supports, train_packed
from worker.engine.plan import (
    InitializerRef,
    LayerPlan,
    RunPlan,
    SplitData,
    TrainingPlan,
)

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TOLERANCE = 1e-5
INITIALIZERS = (
    "zeros",
    "uniform",
    "normal",
    "he_normal",
    "lecun_uniform",
    "glorot_uniform",
)
REFERENCE = TrainingPlan(
    layers=(LayerPlan(1, "sigmoid"),),
    optimizer="rmsprop",
    loss="binary_crossentropy",
    metrics=("accuracy",),
    batch_size=16,
    epochs=2,
)
MLP = dataclasses.replace(
    REFERENCE,
    layers=(LayerPlan(8, "relu"), LayerPlan(8, "relu"), LayerPlan(1, "sigmoid")),
    batch_size=50,
)
LAYERED = dataclasses.replace(
    MLP,
    layers=(
        LayerPlan(
            8,
            "relu",
            kernel_initializer=InitializerRef("orthogonal", {"gain": 2.0}),
            bias_initializer=InitializerRef("random_normal", {"stddev": 0.5}),
        ),
        LayerPlan(8, "relu"),
        LayerPlan(
            1,
            "sigmoid",
            kernel_initializer=InitializerRef(
                "variance_scaling", {"mode": "fan_avg", "distribution": "uniform"}
            ),
            bias_initializer=InitializerRef("constant", {"value": 0.25}),
        ),
    ),
)

Engine = Callable[[TrainingPlan, Sequence[RunPlan], SplitData, Any], None]
History = dict[tuple[int, int], dict[str, float]]


@pytest.fixture(scope="module")
def banknote() -> SplitData:
    table = load_table("uci:banknote", Settings(data_dir=DATA_DIR))
    return split(table, test_size=0.3, split_seed=42, standardize="all")


def iris(one_hot: bool) -> SplitData:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    labels = np.eye(3)[y] if one_hot else y.reshape(-1, 1)
    order = np.random.default_rng(7).permutation(len(x))
    train, val = order[:105], order[105:]
    return SplitData(
        x_train=x[train].astype(np.float32),
        y_train=labels[train].astype(np.float32),
        x_val=x[val].astype(np.float32),
        y_val=labels[val].astype(np.float32),
    )


def runs_for(names: Sequence[str], first_seed: int = 11) -> list[RunPlan]:
    return [
        RunPlan(seed=first_seed + index, kernel_initializer=InitializerRef(name))
        for index, name in enumerate(names)
    ]


def history(
    engine: Engine, plan: TrainingPlan, runs: Sequence[RunPlan], data: SplitData
) -> History:
    reported: History = {}

    def sink(run: int, epoch: int, metrics: dict[str, float]) -> bool:
        assert (run, epoch) not in reported
        reported[(run, epoch)] = metrics
        return True

    engine(plan, runs, data, sink)
    return reported


def assert_close(expected: History, actual: History) -> None:
    assert expected.keys() == actual.keys()
    for key, metrics in expected.items():
        assert metrics.keys() == actual[key].keys(), key
        for name, value in metrics.items():
            assert abs(actual[key][name] - value) <= TOLERANCE, (key, name)


def assert_matches_keras(
    plan: TrainingPlan, runs: Sequence[RunPlan], data: SplitData
) -> None:
    expected = history(train_keras, plan, runs, data)
    assert len(expected) == len(runs) * plan.epochs
    assert_close(expected, history(train_packed, plan, runs, data))


def test_reference_model_matches_keras_for_each_initializer(
    banknote: SplitData,
) -> None:
    assert_matches_keras(REFERENCE, runs_for(INITIALIZERS), banknote)


@pytest.mark.parametrize(
    "optimizer",
    [
        "sgd",
        {"class_name": "SGD", "config": {"learning_rate": 0.05, "momentum": 0.9}},
        {"class_name": "SGD", "config": {"momentum": 0.8, "nesterov": True}},
        {"class_name": "RMSprop", "config": {"momentum": 0.5, "centered": True}},
        "adam",
        {"class_name": "Adam", "config": {"learning_rate": 0.01, "amsgrad": True}},
        {"class_name": "SGD", "config": {"learning_rate": 0.5, "clipnorm": 0.05}},
        {"class_name": "Adam", "config": {"global_clipnorm": 0.01}},
    ],
    ids=[
        "sgd",
        "momentum",
        "nesterov",
        "rmsprop-centered",
        "adam",
        "amsgrad",
        "clipnorm",
        "global-clipnorm",
    ],
)
def test_reference_model_matches_keras_for_each_optimizer(
    banknote: SplitData, optimizer: Any
) -> None:
    # A batch of 50 leaves a partial last batch in training and validation.
    plan = dataclasses.replace(REFERENCE, optimizer=optimizer, batch_size=50)
    assert_matches_keras(plan, runs_for(("he_normal", "glorot_uniform")), banknote)


@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "adam", "learning_rate": 0.01, "beta_1": 0.8, "clipnorm": 1.0},
        {"name": "rmsprop", "rho": 0.8, "momentum": 0.5, "centered": True},
        {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    ],
    ids=["adam", "rmsprop", "sgd"],
)
def test_per_layer_initializers_and_optimizer_parameters_match_keras(
    banknote: SplitData, optimizer: dict[str, Any]
) -> None:
    plan = dataclasses.replace(LAYERED, optimizer=optimizer)
    assert_matches_keras(plan, runs_for(("he_normal", "uniform", "zeros")), banknote)


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam", "sgd"])
def test_mlp_matches_keras(banknote: SplitData, optimizer: str) -> None:
    plan = dataclasses.replace(MLP, optimizer=optimizer)
    assert_matches_keras(plan, runs_for(("he_normal", "lecun_uniform")), banknote)


@pytest.mark.parametrize(
    ("loss", "one_hot"),
    [
        ("categorical_crossentropy", True),
        ("sparse_categorical_crossentropy", False),
        ("mse", True),
    ],
)
def test_multiclass_matches_keras(loss: str, one_hot: bool) -> None:
    plan = TrainingPlan(
        layers=(LayerPlan(8, "tanh"), LayerPlan(3, "softmax")),
        optimizer="adam",
        loss=loss,
        metrics=("accuracy",),
        batch_size=16,
        epochs=3,
    )
    assert_matches_keras(plan, runs_for(("glorot_uniform", "normal")), iris(one_hot))


@pytest.mark.parametrize("loss", ["mean_squared_error", "mae"])
def test_regression_losses_on_a_binary_target(banknote: SplitData, loss: str) -> None:
    plan = dataclasses.replace(REFERENCE, loss=loss, optimizer="adam")
    assert_matches_keras(plan, runs_for(("uniform", "he_normal")), banknote)


def test_without_metrics_only_losses_are_reported(banknote: SplitData) -> None:
    plan = dataclasses.replace(REFERENCE, metrics=(), epochs=1, diagnostics=False)
    reported = history(train_packed, plan, runs_for(("normal",)), banknote)
    assert set(reported[(0, 0)]) == {"loss", "val_loss"}


@pytest.mark.parametrize(
    "plan", [REFERENCE, MLP, LAYERED], ids=["reference", "mlp", "layered"]
)
def test_initial_weights_are_the_keras_models_weights(
    banknote: SplitData, plan: TrainingPlan
) -> None:
    runs = runs_for(INITIALIZERS)
    spec = packed.pack_spec(plan, banknote)
    params, _, _ = packed.initial_state(spec, runs, plan.layers)
    for index, run in enumerate(runs):
        model = build_model(plan, run, banknote.n_features)
        for expected, stacked in zip(model.get_weights(), params, strict=True):
            np.testing.assert_array_equal(stacked.numpy()[index], expected)


def test_layers_without_a_bias_are_left_to_keras() -> None:
    plan = dataclasses.replace(
        MLP, layers=(LayerPlan(8, "relu", use_bias=False), LayerPlan(1, "sigmoid"))
    )
    assert supports(plan) == "layers without a bias are not supported"


def test_runs_of_one_pack_start_and_shuffle_differently(banknote: SplitData) -> None:
    runs = runs_for(("he_normal", "he_normal"))
    spec = packed.pack_spec(REFERENCE, banknote)
    params, _, _ = packed.initial_state(spec, runs, REFERENCE.layers)
    kernels = params[0].numpy()
    assert not np.array_equal(kernels[0], kernels[1])
    orders = packed.epoch_orders(runs, 0, len(banknote.x_train))
    assert not np.array_equal(orders[0], orders[1])
    assert sorted(orders[0]) == list(range(len(banknote.x_train)))
    reported = history(train_packed, REFERENCE, runs, banknote)
    assert reported[(0, 1)] != reported[(1, 1)]


def assert_same_history(expected: History, actual: History) -> None:
    """Metrics equal; diagnostics within tolerance, since the pack's batched
    matrix products may round a weight's last bit differently."""
    assert without_layers(actual) == without_layers(expected)
    assert_close(expected, actual)


def without_layers(reported: History) -> History:
    return {
        key: {
            name: value
            for name, value in metrics.items()
            if not name.startswith("layer")
        }
        for key, metrics in reported.items()
    }


def test_a_runs_history_does_not_depend_on_its_pack(banknote: SplitData) -> None:
    runs = runs_for(("uniform", "he_normal", "zeros", "lecun_uniform"))
    together = history(train_packed, MLP, runs, banknote)
    alone = history(train_packed, MLP, runs[2:3], banknote)
    expected = {(0, epoch): together[(2, epoch)] for epoch in range(MLP.epochs)}
    assert_same_history(expected, alone)


def test_packs_split_by_size_report_the_callers_run_index(
    banknote: SplitData, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = runs_for(("uniform", "he_normal", "zeros"))
    whole = history(train_packed, REFERENCE, runs, banknote)
    one_per_pack = len(banknote.x_val) * banknote.n_features
    monkeypatch.setattr(packed, "PACK_ELEMENTS", one_per_pack)
    assert packed.pack_spec(REFERENCE, banknote).pack_size == 1
    assert_same_history(whole, history(train_packed, REFERENCE, runs, banknote))


def test_a_stopped_run_is_no_longer_reported(banknote: SplitData) -> None:
    plan = dataclasses.replace(REFERENCE, epochs=3)
    calls: list[tuple[int, int]] = []

    def sink(run: int, epoch: int, metrics: dict[str, float]) -> bool:
        calls.append((run, epoch))
        return not (run == 0 and epoch == 0)

    train_packed(plan, runs_for(("normal", "uniform")), banknote, sink)
    assert calls == [(0, 0), (1, 0), (1, 1), (1, 2)]


def test_training_ends_when_every_run_is_stopped(banknote: SplitData) -> None:
    plan = dataclasses.replace(REFERENCE, epochs=50)
    calls: list[tuple[int, int]] = []

    def sink(run: int, epoch: int, metrics: dict[str, float]) -> bool:
        calls.append((run, epoch))
        return epoch < 1

    train_packed(plan, runs_for(("normal", "uniform")), banknote, sink)
    assert calls == [(0, 0), (1, 0), (0, 1), (1, 1)]


def test_one_trace_serves_every_pack_size(banknote: SplitData) -> None:
    plan = dataclasses.replace(REFERENCE, epochs=1, batch_size=24)
    for count in (1, 3, 5):
        history(train_packed, plan, runs_for(("normal",) * count), banknote)
    epoch: Any = packed.compiled_epoch(packed.pack_spec(plan, banknote))
    assert epoch.experimental_get_tracing_count() == 1


def test_xla_compiled_epochs_agree(banknote: SplitData) -> None:
    runs = runs_for(("he_normal", "uniform"))
    graph = history(train_packed, MLP, runs, banknote)

    def xla(*args: Any) -> None:
        train_packed(*args, jit_compile=True)

    assert_close(graph, history(xla, MLP, runs, banknote))


def test_the_name_form_of_an_optimizer_means_what_keras_config_does() -> None:
    named = packed.optimizer_config({"name": "sgd", "momentum": 0.9, "nesterov": True})
    keras_form = packed.optimizer_config(
        {"class_name": "SGD", "config": {"momentum": 0.9, "nesterov": True}}
    )
    assert named == keras_form
    assert named.learning_rate == pytest.approx(0.01)
    assert packed.optimizer_config("rmsprop").slots == ("velocity",)


def test_supports_the_reference_plan() -> None:
    assert supports(REFERENCE) is None
    assert supports(MLP) is None
    clipped: Any = {"name": "adam", "global_clipnorm": 1.0}
    assert supports(dataclasses.replace(REFERENCE, optimizer=clipped)) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"layers": ()}, "no layers"),
        ({"layers": (LayerPlan(1, "no_such_activation"),)}, "activation"),
        ({"loss": "hinge"}, "loss"),
        ({"loss": "no_such_loss"}, "loss"),
        ({"metrics": ("accuracy", "auc")}, "metric"),
        ({"optimizer": "nadam"}, "optimizer"),
        ({"optimizer": "adamw"}, "optimizer"),
        ({"optimizer": {"name": "sgd", "weight_decay": 0.01}}, "weight_decay"),
        ({"optimizer": {"name": "adam", "use_ema": True}}, "use_ema"),
        ({"batch_size": 0}, "batch size"),
    ],
)
def test_supports_gives_a_reason_for_what_it_cannot_train(
    banknote: SplitData, change: dict[str, Any], reason: str
) -> None:
    plan = dataclasses.replace(REFERENCE, **change)
    message = supports(plan)
    assert message is not None
    assert reason in message
    with pytest.raises(ValueError, match=reason):
        train_packed(plan, runs_for(("zeros",)), banknote, lambda *_: True)
