"""The names the API accepts all mean something to the installed Keras."""

from typing import Any

import keras
import pytest

from service import catalog
from worker.engine.common import LEGACY_ALIASES, initializer_class, make_initializer
from worker.engine.plan import InitializerRef


@pytest.mark.parametrize("name", catalog.INITIALIZERS)
def test_initializer_names_resolve_to_classes_the_engines_build(name: str) -> None:
    initializer = make_initializer(InitializerRef(name), seed=1)

    assert isinstance(initializer, keras.initializers.Initializer)


def test_legacy_aliases_match_keras() -> None:
    for alias, canonical in LEGACY_ALIASES.items():
        assert initializer_class(alias) is initializer_class(canonical)
        assert initializer_class(alias) is type(keras.initializers.get(alias))


def test_every_builtin_initializer_is_offered() -> None:
    builtin = {
        name
        for name in dir(keras.initializers)
        if name.islower() and not name.startswith("_")
    } - {"get", "serialize", "deserialize", "stft"}

    assert builtin <= set(catalog.INITIALIZERS)


@pytest.mark.parametrize("name", catalog.ACTIVATIONS)
def test_activation_names_resolve(name: str) -> None:
    assert callable(keras.activations.get(name))


@pytest.mark.parametrize("name", catalog.OPTIMIZERS)
def test_optimizer_names_resolve(name: str) -> None:
    assert isinstance(keras.optimizers.get(name), keras.optimizers.Optimizer)


@pytest.mark.parametrize("name", catalog.LOSSES)
def test_loss_names_resolve(name: str) -> None:
    assert callable(keras.losses.get(name))


@pytest.mark.parametrize("name", catalog.INITIALIZERS)
def test_every_initializer_builds_and_trains_the_reference_model(name: str) -> None:
    import numpy as np

    from worker.engine.keras_engine import train_keras
    from worker.engine.plan import LayerPlan, RunPlan, SplitData, TrainingPlan

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    data = SplitData(x[:30], y[:30], x[30:], y[30:])
    plan = TrainingPlan(
        layers=(LayerPlan(1, "sigmoid"),),
        optimizer="rmsprop",
        loss="binary_crossentropy",
        metrics=("accuracy",),
        batch_size=16,
        epochs=1,
        diagnostics=False,
    )
    seen: list[dict[str, float]] = []

    train_keras(
        plan,
        [RunPlan(seed=1, kernel_initializer=InitializerRef(name))],
        data,
        lambda _run, _epoch, metrics: seen.append(metrics) is None,
    )

    assert len(seen) == 1
    assert set(seen[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}


@pytest.mark.parametrize("name", catalog.OPTIMIZERS)
def test_the_api_knows_which_optimizers_the_packed_engine_takes(name: str) -> None:
    from worker.engine.packed import supports
    from worker.engine.plan import LayerPlan, TrainingPlan

    plan = TrainingPlan(
        layers=(LayerPlan(1, "sigmoid"),),
        optimizer=name,
        loss="binary_crossentropy",
        metrics=("accuracy",),
        batch_size=16,
        epochs=1,
    )

    assert (supports(plan) is None) == (name in catalog.PACKED_OPTIMIZERS)


@pytest.mark.parametrize("loss", catalog.LOSSES)
def test_the_packed_engine_takes_every_loss_the_api_accepts(loss: str) -> None:
    from worker.engine.packed import supports
    from worker.engine.plan import LayerPlan, TrainingPlan

    plan = TrainingPlan(
        layers=(LayerPlan(1, "sigmoid"),),
        optimizer="rmsprop",
        loss=loss,
        metrics=("accuracy",),
        batch_size=16,
        epochs=1,
    )

    assert supports(plan) is None


OPTIMIZER_CONFIGS: list[Any] = [
    *catalog.OPTIMIZERS,
    {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
    {"name": "sgd", "clipnorm": 1.0},
    {"name": "rmsprop", "rho": 0.8, "momentum": 0.5, "centered": True},
    {"name": "rmsprop", "epsilon": 1e-5, "global_clipnorm": 2.0},
    {"name": "adam", "learning_rate": 0.01, "beta_1": 0.8, "amsgrad": True},
    {"name": "adam", "clipvalue": 0.5, "epsilon": 1e-6},
    {"name": "adamw", "weight_decay": 0.0},
    {"name": "adamw", "weight_decay": 0.01, "amsgrad": True},
    {"name": "adagrad", "initial_accumulator_value": 0.0},
    {"name": "adadelta", "rho": 0.9, "learning_rate": 1.0},
    {"name": "adamax", "beta_2": 0.99},
    {"name": "nadam", "epsilon": 1e-8, "clipnorm": 1.0},
]


def spec_for(
    optimizer: Any, metrics: list[str], use_bias: bool = True
) -> dict[str, Any]:
    layer = {"units": 1, "activation": "sigmoid", "use_bias": use_bias}
    return {
        "engine": "auto",
        "optimizer": optimizer,
        "loss": "binary_crossentropy",
        "metrics": metrics,
        "batch_size": 16,
        "epochs": 1,
        "model": {"layers": [layer]},
    }


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("metrics", [[], ["accuracy"], ["auc"], ["accuracy", "auc"]])
@pytest.mark.parametrize("optimizer", OPTIMIZER_CONFIGS)
def test_the_api_and_the_packed_engine_agree_on_what_it_trains(
    optimizer: Any, metrics: list[str], use_bias: bool
) -> None:
    from service.queue import uses_packed_engine
    from worker.engine.packed import supports
    from worker.planning import training_plan

    spec = spec_for(optimizer, metrics, use_bias)

    assert uses_packed_engine(spec) == (supports(training_plan(spec)) is None)


@pytest.mark.parametrize("optimizer", OPTIMIZER_CONFIGS)
def test_accepted_optimizer_configs_build_in_keras(optimizer: Any) -> None:
    from service.optimizers import check_optimizer
    from worker.engine.common import keras_optimizer

    built = keras_optimizer(check_optimizer(optimizer))

    assert isinstance(built, keras.optimizers.Optimizer)
    if isinstance(optimizer, dict):
        config = built.get_config()
        for key, value in optimizer.items():
            if key != "name":
                assert config[key] == pytest.approx(value)


@pytest.mark.parametrize("name", catalog.OPTIMIZERS)
def test_optimizer_parameters_are_keras_arguments(name: str) -> None:
    import inspect

    from service.optimizers import PARAMETERS

    cls = type(keras.optimizers.get(name))

    assert set(PARAMETERS[name]) <= set(inspect.signature(cls.__init__).parameters)


@pytest.mark.parametrize(
    ("loss", "metrics"),
    [("binary_crossentropy", ("accuracy", "auc")), ("mse", ("mse", "mae"))],
)
def test_history_names_the_metrics_as_given(
    loss: str, metrics: tuple[str, ...]
) -> None:
    import numpy as np

    from worker.engine.keras_engine import train_keras
    from worker.engine.plan import LayerPlan, RunPlan, SplitData, TrainingPlan

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    activation = "sigmoid" if loss == "binary_crossentropy" else "linear"
    plan = TrainingPlan(
        layers=(LayerPlan(1, activation),),
        optimizer={"name": "adam", "learning_rate": 0.01},
        loss=loss,
        metrics=metrics,
        batch_size=16,
        epochs=2,
        diagnostics=False,
    )
    seen: list[dict[str, float]] = []

    for _ in range(2):
        train_keras(
            plan,
            [RunPlan(seed=1, kernel_initializer=InitializerRef("he_normal"))],
            SplitData(x[:30], y[:30], x[30:], y[30:]),
            lambda _run, _epoch, metrics: seen.append(metrics) is None,
        )

    expected = {"loss", "val_loss", *metrics, *(f"val_{name}" for name in metrics)}
    assert [set(point) for point in seen] == [expected] * 4
